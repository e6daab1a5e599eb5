"""Where the Gaussians start: inside a sphere every camera sees, or carved by the views' alpha masks."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from .cameras import camera_center


def look_center(viewmats: list[Tensor]) -> Tensor:
    """Least-squares point closest to every camera's optical axis (what the rig looks at)."""
    a = torch.zeros(3, 3, dtype=torch.float64)
    b = torch.zeros(3, dtype=torch.float64)
    for v in viewmats:
        c = camera_center(v.double())
        d = v[2, :3].double()  # optical axis in world space
        p = torch.eye(3, dtype=torch.float64) - torch.outer(d, d)
        a += p
        b += p @ c
    return torch.linalg.lstsq(a, b[:, None]).solution[:, 0].float()


def visible_radius(
    center: Tensor, viewmats: list[Tensor], Ks: list[Tensor], sizes: list[tuple[int, int]]
) -> float:
    """Radius of the largest sphere about ``center`` that every view sees whole."""
    r = math.inf
    for v, k, (h, w) in zip(viewmats, Ks, sizes, strict=True):
        dist = float((camera_center(v) - center).norm())
        half_fov = math.atan(min(w / (2 * float(k[0, 0])), h / (2 * float(k[1, 1]))))
        r = min(r, dist * math.sin(half_fov))
    return r


def sample_ball(n: int, center: Tensor, radius: float, gen: torch.Generator) -> Tensor:
    """``n`` points uniform in a ball."""
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=1)
    return center + d * radius * torch.rand(n, 1, generator=gen) ** (1 / 3)


def project_points(points: Tensor, viewmat: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel coordinates ``[N, 2]`` and depths ``[N]`` of world points."""
    pc = points @ viewmat[:3, :3].T + viewmat[:3, 3]
    uv = (pc @ K.T)[:, :2] / pc[:, 2:3].clamp_min(1e-6)
    return uv, pc[:, 2]


def carve(points: Tensor, viewmats, Ks, alphas: list[Tensor], threshold: float = 0.5) -> Tensor:
    """Mask of points inside the visual hull: in every view that sees them, they land on alpha > threshold."""
    keep = torch.ones(len(points), dtype=torch.bool)
    seen = torch.zeros(len(points), dtype=torch.bool)
    for v, k, a in zip(viewmats, Ks, alphas, strict=True):
        h, w = a.shape
        uv, z = project_points(points, v, k)
        x, y = uv[:, 0].floor().long(), uv[:, 1].floor().long()
        inside = (z > 0) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
        val = torch.zeros(len(points))
        val[inside] = a[y[inside], x[inside]].float()
        keep &= ~inside | (val > threshold)
        seen |= inside
    return keep & seen


def near_surface(points: Tensor, viewmats, Ks, alphas: list[Tensor], step: float) -> Tensor:
    """Mask of hull points within ``step`` of the hull's boundary (some axis-offset neighbour is outside).

    Why: only the surface is visible, and interior Gaussians cost compositing work while learning little.
    """
    offsets = torch.cat([torch.eye(3), -torch.eye(3)]) * step
    edge = torch.zeros(len(points), dtype=torch.bool)
    for off in offsets:
        edge |= ~carve(points + off, viewmats, Ks, alphas)
    return edge


def mean_colors(points: Tensor, viewmats, Ks, images: list[Tensor]) -> Tensor:
    """Average colour ``[N, 3]`` of each point's pixel over the views that see it (occlusion ignored)."""
    total = torch.zeros(len(points), 3)
    count = torch.zeros(len(points), 1)
    for v, k, img in zip(viewmats, Ks, images, strict=True):
        _, h, w = img.shape
        uv, z = project_points(points, v, k)
        x, y = uv[:, 0].floor().long(), uv[:, 1].floor().long()
        inside = (z > 0) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
        total[inside] += img[:3, y[inside], x[inside]].T.float()
        count[inside] += 1
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, 0.5))


def knn_scale(points: Tensor, k: int = 3) -> Tensor:
    """Mean distance to the ``k`` nearest neighbours (3DGS's initial scale), ``[N]``."""
    if len(points) <= k:
        return torch.full((len(points),), 0.01)
    tree = cKDTree(points.numpy().astype(np.float64))
    d, _ = tree.query(points.numpy().astype(np.float64), k=k + 1)
    return torch.from_numpy(d[:, 1:].mean(1)).float().clamp_min(1e-7)
