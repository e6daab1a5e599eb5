"""Per-vertex light visibility: soft key-light shadows and ambient occlusion, baked once per head.

Both come from shadow maps drawn with the same rasteriser: for a direction d, a distant narrow
camera looks at the head along -d; a vertex is lit from d when its depth is within a small bias of
the nearest surface at its pixel. Ambient occlusion averages that over 24 directions spread on the
sphere (Fibonacci), weighted by max(n·d, 0). Interpolating the per-vertex values per pixel gives
soft shadow edges for free. Lighting is fixed in the head frame, so the bake is view-independent
and a capture stays photometrically consistent across views.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from generators.heads.raster import rasterize

_DIST = 8.0  # metres: far enough that the perspective shadow camera is nearly orthographic
_HALF_EXTENT = 0.36  # metres of the head-and-shoulders bust covered by the map
_BIAS = 0.003  # metres
_LIFT = 0.004  # metres along the normal


def _look_along(d: np.ndarray) -> np.ndarray:
    """World→camera rotation of a camera whose optical axis (+z) is -d."""
    z = -d / np.linalg.norm(d)
    up = np.array([0.0, -1.0, 0.0]) if abs(z[1]) < 0.95 else np.array([0.0, 0.0, 1.0])
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def visibility(verts: np.ndarray, faces: np.ndarray, direction: np.ndarray, res: int = 192,
               two_sided: np.ndarray | None = None, normals: np.ndarray | None = None) -> np.ndarray:
    """(N,) float32 in {0, 1}: vertex sees far away along ``direction`` (head frame).

    With ``normals``, each vertex is tested from a point lifted off the surface by ``_LIFT`` (normal-
    offset shadow mapping: no self-shadowing speckle on curved skin)."""
    r = _look_along(np.asarray(direction, dtype=np.float64))
    probe = verts if normals is None else verts + _LIFT * normals
    vc = verts @ r.T
    pc = probe @ r.T
    pc[:, 2] += _DIST
    vc[:, 2] += _DIST
    f = res / 2 / (_HALF_EXTENT / _DIST)
    # The bust's centre sits ~8 cm below the head origin; aim there.
    centre = (np.array([0.0, 0.08, 0.0]) @ r.T)
    cx = res / 2 - f * centre[0] / _DIST
    cy = res / 2 - f * centre[1] / _DIST
    ts = None if two_sided is None else torch.from_numpy(two_sided)
    fr = rasterize(torch.from_numpy(vc), torch.from_numpy(faces), f, f, cx, cy, res, res, two_sided=ts, near=1.0)
    depth = np.full(res * res, np.inf)
    depth[fr.pix.numpy()] = fr.depth.numpy()
    depth = depth.reshape(res, res)
    u = np.clip(np.floor(f * pc[:, 0] / pc[:, 2] + cx).astype(np.int64), 0, res - 1)
    v = np.clip(np.floor(f * pc[:, 1] / pc[:, 2] + cy).astype(np.int64), 0, res - 1)
    # Nearest surface over the 2×2 neighbourhood: forgiving at silhouettes, no acne.
    u1, v1 = np.minimum(u + 1, res - 1), np.minimum(v + 1, res - 1)
    near = np.maximum.reduce([depth[v, u], depth[v, u1], depth[v1, u], depth[v1, u1]])
    near = np.where(np.isfinite(near), near, np.inf)
    return (pc[:, 2] <= near + _BIAS).astype(np.float32)


def fibonacci_dirs(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    y = 1 - 2 * i / n
    r = np.sqrt(1 - y * y)
    phi = i * math.pi * (3 - math.sqrt(5))
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], 1)


def bake(verts: np.ndarray, faces: np.ndarray, normals: np.ndarray, light_dir: np.ndarray,
         two_sided: np.ndarray | None = None, n_dirs: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """(key-light visibility (N,), ambient occlusion (N,) in [0, 1]) per vertex."""
    key = visibility(verts, faces, light_dir, 384, two_sided, normals)
    acc = np.zeros(len(verts))
    wsum = np.zeros(len(verts))
    for d in fibonacci_dirs(n_dirs):
        w = np.clip(normals @ d, 0.0, None)
        acc += w * visibility(verts, faces, d, 128, two_sided, normals)
        wsum += w
    ao = np.where(wsum > 1e-6, acc / np.maximum(wsum, 1e-6), 1.0)
    return key, ao.astype(np.float32)
