"""Render a head from cameras: anti-aliased RGB, exact labels, depth and alpha.

One rasterisation per view (raster.py), on a grid with ``supersample`` samples per pixel side,
aligned so that every s-th sample sits exactly on a pixel centre:

- labels and depth are read at the pixel-centre samples, from the nearest surface, with no
  filtering (an exact label per pixel, as a z-buffer sees it);
- colour is shaded at every sample in linear light, composited over the background and filtered
  with a tent kernel centred on the pixel centres, so RGB edges are anti-aliased and aligned with the
  labels; alpha is the tent-filtered coverage.

Per pixel, attributes are interpolated with perspective-correct barycentrics: rest position (for
region rules, brows, iris, cloth stripes), neck and scalp scores, an albedo multiplier, and
per-vertex lighting (diffuse baked per head, specular per view).

Torch runs single-threaded inside this module: the tensors are small (< 1M elements) and OpenMP's
fork/join costs more than it saves, especially on a shared 2-core machine. Parallelism comes from
processes (one subject or view per worker), see ``capture.py`` and the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from facebench.captures import Camera
from facebench.errors import InvalidConfig
from generators.heads.appearance import background, linear_to_srgb_u8
from generators.heads.head import Head
from generators.heads.mesh import (
    PART_EYE_L,
    PART_EYE_R,
    PART_GLASSES,
    PART_HAIR,
    PART_HAT,
    PART_LENS,
    PART_SKIN,
    PART_TEETH,
    PART_TONGUE,
)
from generators.heads.raster import Fragments, rasterize, single_thread
from generators.heads.regions import SURFACE, C, resolve_surface


@dataclass
class Render:
    """One view. ``rgb`` H×W×3 uint8; ``labels`` H×W uint8 FACEBENCH ids; ``depth`` H×W float32
    camera-space z in metres (0 where empty); ``alpha`` H×W float32 coverage in [0, 1]."""

    rgb: np.ndarray
    labels: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray


def _raster(head: Head, cam: Camera, verts_cam: np.ndarray) -> Fragments:
    K = cam.K
    return rasterize(
        torch.from_numpy(verts_cam), torch.from_numpy(head.faces), float(K[0, 0]), float(K[1, 1]),
        float(K[0, 2]), float(K[1, 2]), cam.height, cam.width,
        two_sided=torch.from_numpy(head.two_sided), depth_bias=torch.from_numpy(head.depth_bias),
    )  # fmt: skip


def _interp(attr: np.ndarray, faces_px: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Barycentric interpolation of per-vertex ``attr`` (N, K) at pixels of faces (M, 3).

    ``np.take`` on the flat corner list is ~3× faster than 2-D fancy indexing here."""
    m, k = len(faces_px), attr.shape[1]
    a = np.take(attr, faces_px.reshape(-1), axis=0).reshape(m, 3, k)
    return np.einsum("mjk,mj->mk", a, bary)


# Columns of the per-vertex attribute table (one gather per pass instead of one per attribute).
_REST, _NECK, _SCALP, _NOISE, _DIFF, _DIFF_BACK, _SPEC = slice(0, 3), 3, 4, 5, 6, 7, 8


def _lighting(head: Head) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex diffuse light (front side, back side): view-independent, so baked once per head.

    Wrapped-Lambert key light times its baked visibility (soft shadows), Lambert fill and ambient, both
    scaled by ambient occlusion. Gouraud-interpolated per pixel: vertices are ~5 mm apart, finer than a
    pixel at the default framing."""
    cached = head.meta.get("_diffuse")
    if cached is not None:
        return cached
    app = head.appearance
    ld = np.asarray(app.light_dir)
    fill_d = np.array([-ld[0], 0.2, ld[2]])
    fill_d /= np.linalg.norm(fill_d)
    ao, key = head.ambient_occlusion, head.key_light
    wrap = 0.25
    out = []
    for n in (head.normals, -head.normals):
        ndl = n @ ld
        out.append((app.ambient * (0.25 + 0.75 * ao) + app.light * key * np.clip((ndl + wrap) / (1 + wrap), 0, None)
                    + app.fill * ao * np.clip(n @ fill_d, 0, None)).astype(np.float32))
    head.meta["_diffuse"] = (out[0], out[1])
    return out[0], out[1]


def _specular(head: Head, cam_centre: np.ndarray) -> np.ndarray:
    """Per-vertex Blinn-Phong sheen for this camera (view-dependent, N values: cheap)."""
    app = head.appearance
    ld = np.asarray(app.light_dir)
    n = head.normals
    h = _unit(_unit(cam_centre[None, :] - head.verts) + ld)
    x = np.clip(np.einsum("ij,ij->i", n, h), 0, None)
    x2 = x * x
    x8 = (x2 * x2) ** 2
    part_v = head.meta.get("_vertex_gloss")
    if part_v is None:
        p = head.part
        shiny = (p == PART_EYE_L) | (p == PART_EYE_R) | ((p >= PART_GLASSES) & (p != PART_HAT))
        gloss_f = np.where((p == PART_HAIR) | (p == PART_HAT), 0.3, 1.0) * np.where(shiny, 4.0, 1.0)
        part_v = np.ones(len(head.verts))
        part_v[head.faces.ravel()] = np.repeat(gloss_f, 3)
        head.meta["_vertex_gloss"] = part_v
    return (app.specular * part_v * x8 * x8 * x8 * (n @ ld > 0) * head.key_light).astype(np.float32)


def _table(head: Head, cam_centre: np.ndarray | None) -> np.ndarray:
    """(N, 9) float32: rest xyz, neck score, scalp score, albedo multiplier, diffuse, back diffuse, specular.
    Without a camera, only the first 5 columns (what labels need)."""
    base = head.meta.get("_table")
    if base is None:
        scalp = np.where(np.isfinite(head.scalp), head.scalp, 1e3)
        d, db = _lighting(head)
        base = np.concatenate([head.rest, head.neck_score[:, None], scalp[:, None], head.noise[:, None],
                               d[:, None], db[:, None], np.zeros((len(d), 1))], 1).astype(np.float32)
        head.meta["_table"] = base
    if cam_centre is None:
        return base[:, :5]
    t = base.copy()
    t[:, _SPEC] = _specular(head, cam_centre)
    return t


@dataclass
class _Pixels:
    tri: np.ndarray
    front: np.ndarray
    attrs: np.ndarray  # (M, 9) interpolated attribute table (5 columns when only labels are needed)
    labels: np.ndarray


def _classify(head: Head, fr: Fragments, cam_centre: np.ndarray | None = None) -> _Pixels:
    """Labels of hit samples; with ``cam_centre``, also interpolates what shading needs."""
    tri = fr.tri[fr.pix].numpy()
    bary = fr.bary.numpy().astype(np.float32)
    attrs = _interp(_table(head, cam_centre), head.faces[tri], bary)
    rest = attrs[:, _REST]
    lab = head.face_class[tri].copy()
    part = head.part[tri]
    hair_px = (part == PART_HAIR) & (attrs[:, _SCALP] >= 0)
    lab[hair_px] = C["hair"]
    surf = np.flatnonzero(lab == SURFACE)
    if surf.size:
        lab[surf] = resolve_surface(rest[surf], attrs[surf, _NECK], head.brows, head.collar)
    front = fr.front.numpy()
    inside = ~front & (part == PART_SKIN)
    lab[inside] = C["cloth"]  # the inside of the shirt, seen through the chest cut
    return _Pixels(tri, front, attrs, lab)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.sqrt(np.einsum("ij,ij->i", v, v)), 1e-9)[:, None]


def _class_colours(head: Head) -> np.ndarray:
    """(256, 3) float32 base colour per class (before per-pixel detail), cached per head."""
    lut = head.meta.get("_lut")
    if lut is None:
        app = head.appearance
        skin = np.asarray(app.skin)
        lut = np.tile(skin, (256, 1))
        lut[C["neck"]] = skin * 0.96
        lut[C["l_ear"]] = lut[C["r_ear"]] = skin * np.array([1.02, 0.94, 0.94])
        lut[C["nose"]] = skin * np.array([1.02, 0.97, 0.97])
        lut[C["u_lip"]] = lut[C["l_lip"]] = np.asarray(app.lips)
        lut[C["l_eye"]] = lut[C["r_eye"]] = skin * np.array([0.8, 0.45, 0.45])  # socket (caruncle)
        lut[C["mouth"]] = (0.1, 0.025, 0.025)  # cavity
        lut[C["cloth"]] = np.asarray(app.cloth)
        lut[C["hair"]] = np.asarray(app.hair)
        lut[C["eye_g"]] = np.asarray(app.frame)
        lut[C["ear_r"]] = lut[C["neck_l"]] = np.asarray(app.metal)
        lut[C["hat"]] = np.asarray(app.cloth)[::-1] * 0.8 + 0.02
        lut = lut.astype(np.float32)
        head.meta["_lut"] = lut
    return lut


_SKIN_LIKE = np.zeros(256, bool)
_SKIN_LIKE[[C["skin"], C["nose"], C["neck"], C["l_ear"], C["r_ear"]]] = True


def _shade(head: Head, px: _Pixels) -> np.ndarray:
    """Linear RGB (M, 3) of hit samples."""
    app = head.appearance
    lab, part = px.labels, head.part[px.tri]
    rest, noise = px.attrs[:, _REST], px.attrs[:, _NOISE]
    col = _class_colours(head)[lab] * noise[:, None]
    sk = np.flatnonzero(_SKIN_LIKE[lab])
    if sk.size:
        r = rest[sk]
        # Warmer cheeks, nose tip and ears (blood near the surface), and a fine pore-scale grain.
        ax = np.abs(r[:, 0])
        blush = np.exp(-(((ax - 0.042) ** 2 + (r[:, 1] - 0.012) ** 2) / 0.0006)) * (r[:, 2] < -0.04)
        blush = blush + 0.7 * np.exp(-((ax ** 2 + (r[:, 1] - 0.012) ** 2 + (r[:, 2] + 0.11) ** 2) / 0.0002))
        grain = np.sin(5200.0 * r[:, 0] + 1.3) * np.sin(4700.0 * r[:, 1] + 0.7) * np.sin(5900.0 * r[:, 2])
        f = (1.0 + 0.025 * grain)[:, None] * (1.0 + blush[:, None] * np.array([0.05, -0.05, -0.04], np.float32))
        col[sk] *= f.astype(np.float32)
    brow = np.flatnonzero((lab == C["l_brow"]) | (lab == C["r_brow"]))
    if brow.size:
        r = rest[brow]
        strands = 0.5 + 0.5 * np.sin(2400.0 * (np.abs(r[:, 0]) * 0.35 + r[:, 1]) + 3.0 * np.sin(900 * r[:, 0]))
        dens = (0.65 + 0.3 * strands)[:, None]
        col[brow] = col[brow] * (1 - dens) + np.asarray(app.brows, dtype=np.float32) * dens
    hair = lab == C["hair"]
    hi = np.flatnonzero(hair)
    if hi.size:
        r = rest[hi]
        az = np.arctan2(r[:, 0], -r[:, 2])
        streak = np.sin(260.0 * az + 8.0 * np.sin(40.0 * r[:, 1])) * 0.5 + np.sin(610.0 * az + 2.0) * 0.25
        col[hi] *= (0.8 + 0.3 * streak)[:, None]
    cloth = lab == C["cloth"]
    ci = np.flatnonzero(cloth)
    if ci.size:
        if app.cloth_stripes > 0:
            stripe = np.sin(rest[ci, 1] * 260.0) > 0
            col[ci[stripe]] *= 1 - app.cloth_stripes
        col[ci[~px.front[ci] & (part[ci] == PART_SKIN)]] *= 0.35
    col[part == PART_LENS] = np.asarray(app.frame, dtype=np.float32) * 0.3 + 0.01
    hat = np.flatnonzero(lab == C["hat"])
    if hat.size:  # knit ribs
        r = rest[hat]
        col[hat] *= (0.85 + 0.15 * np.sin(900.0 * np.arctan2(r[:, 0], -r[:, 2]) / np.pi))[:, None]
    col[part == PART_TEETH] = (0.62, 0.58, 0.5)
    col[part == PART_TONGUE] = (0.42, 0.1, 0.1)
    for p, k in ((PART_EYE_L, 0), (PART_EYE_R, 1)):
        ei = np.flatnonzero(part == p)
        if ei.size:
            d = rest[ei, :2] - head.eye_centres[k, :2]
            rr = np.hypot(d[:, 0], d[:, 1])
            e = np.tile(np.array([0.72, 0.7, 0.66], dtype=np.float32), (ei.size, 1))
            iris = rr < 0.0058
            e[iris] = np.asarray(app.iris) * (0.8 + 0.4 * (rr[iris] / 0.0058))[:, None]
            e[rr < 0.0024] = 0.01
            col[ei] = e
    shade = np.where(px.front, px.attrs[:, _DIFF], px.attrs[:, _DIFF_BACK])
    spec = np.where(px.front, px.attrs[:, _SPEC], 0.0)
    return (col * shade[:, None] + spec[:, None]) * np.asarray(app.tint, dtype=np.float32)


def _tent_down(a: np.ndarray, s: int) -> np.ndarray:
    """Filter a sample grid whose every s-th sample sits on a pixel centre with the separable tent
    (triangle) kernel of half-width s, and keep the pixel centres. Edges are padded by replication."""
    if s == 1:
        return a
    w = np.array([s - abs(k) for k in range(-(s - 1), s)], dtype=np.float32)
    w /= w.sum()
    for axis in (0, 1):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (s - 1, 0)
        p = np.pad(a, pad, mode="edge")
        n = a.shape[axis] // s
        acc = None
        for k in range(2 * s - 1):
            sl = [slice(None)] * a.ndim
            sl[axis] = slice(k, k + s * n, s)
            term = w[k] * p[tuple(sl)]
            acc = term if acc is None else acc + term
        a = acc
    return a


def supersample_camera(camera: Camera, s: int) -> Camera:
    """The camera whose pixel grid has s samples per pixel side, with sample (s·i, s·j) exactly on
    pixel centre (i, j): u' = s·u - (s - 1) / 2 … i.e. ``fx' = s fx``, ``cx' = s cx - s/2 + 1/2``."""
    K = camera.K.copy()
    K[0, 0] *= s
    K[1, 1] *= s
    K[0, 2] = s * K[0, 2] - 0.5 * s + 0.5
    K[1, 2] = s * K[1, 2] - 0.5 * s + 0.5
    return Camera(K=K, world_to_camera=camera.world_to_camera, width=camera.width * s, height=camera.height * s)


def render_view(head: Head, camera: Camera, supersample: int = 2, bg_seed: int = 0) -> Render:
    """Render one camera (its own width/height) of ``head``; world frame = head frame.

    One rasterisation on a grid with ``supersample`` samples per pixel side, aligned so that every
    s-th sample is a pixel centre: labels and depth are read at those samples (exact, unfiltered),
    RGB and alpha are tent-filtered around them (anti-aliased, centred on the same pixel centres)."""
    if supersample < 1 or supersample > 4:
        raise InvalidConfig(f"supersample must be 1..4, got {supersample}")
    s = supersample
    w2c = camera.world_to_camera
    vc = head.verts @ w2c[:3, :3].T + w2c[:3, 3]
    cam_centre = camera.center
    H, W = camera.height, camera.width
    with single_thread():
        fr = _raster(head, supersample_camera(camera, s), vc)
        px = _classify(head, fr, cam_centre)
    hit = fr.pix.numpy()
    lab_s = np.zeros(H * W * s * s, np.uint8)
    lab_s[hit] = px.labels
    dep_s = np.zeros(H * W * s * s, np.float32)
    dep_s[hit] = fr.depth.numpy()
    labels = lab_s.reshape(H * s, W * s)[::s, ::s].copy()
    depth = dep_s.reshape(H * s, W * s)[::s, ::s].copy()
    col = background(head.appearance, H * s, W * s, bg_seed).astype(np.float32).reshape(-1, 3)
    cov = np.zeros(H * W * s * s, np.float32)
    col[hit] = _shade(head, px)
    cov[hit] = 1.0
    col, alpha = _tent_down(col.reshape(H * s, W * s, 3), s), _tent_down(cov.reshape(H * s, W * s), s)
    return Render(linear_to_srgb_u8(col), labels, depth, np.clip(alpha, 0.0, 1.0))


def render_views(
    head: Head, cameras: Sequence[Camera], size: int | None = None, supersample: int = 2
) -> list[Render]:
    """Render ``cameras`` (rescaled to ``size``×``size`` if given). Background noise differs per view
    but is seeded by (head seed, view index)."""
    out = []
    for i, cam in enumerate(cameras):
        if size is not None and (cam.width != size or cam.height != size):
            if cam.width != cam.height:
                raise InvalidConfig(f"camera {i} is {cam.width}×{cam.height}; size={size} would stretch it",
                                    hint="pass size=None to render at the camera's own resolution")
            cam = cam.scaled(size, size)
        out.append(render_view(head, cam, supersample, bg_seed=head.seed * 100003 + i))
    return out
