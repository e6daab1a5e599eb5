"""Camera helpers in the library's OpenCV convention (world-to-camera 4x4, x right, y down, z forward)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """World-to-camera ``[4, 4]`` for a camera at ``eye`` looking at ``target``; ``up`` is world up (+y)."""
    eye, target = torch.as_tensor(eye, dtype=torch.float64), torch.as_tensor(target, dtype=torch.float64)
    up = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64) if up is None else torch.as_tensor(up).double()
    f = torch.nn.functional.normalize(target - eye, dim=0)
    r = torch.linalg.cross(f, up)
    if r.norm() < 1e-8:  # looking straight up or down: any perpendicular will do
        r = torch.linalg.cross(f, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    r = torch.nn.functional.normalize(r, dim=0)
    d = torch.linalg.cross(f, r)
    rot = torch.stack([r, d, f])
    view = torch.eye(4, dtype=torch.float64)
    view[:3, :3] = rot
    view[:3, 3] = -rot @ eye
    return view.float()


def intrinsics(width: int, height: int, fov_x_deg: float) -> Tensor:
    """Pinhole ``K [3, 3]`` with square pixels and the principal point at the image centre."""
    f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
    return torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def orbit_viewmats(
    n: int,
    radius: float,
    target=(0.0, 0.0, 0.0),
    min_elev_deg: float = -35.0,
    max_elev_deg: float = 50.0,
    seed: int = 0,
    jitter: float = 0.0,
) -> list[Tensor]:
    """``n`` cameras on a sphere band around ``target`` (golden-angle spiral, optional seeded jitter)."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = math.sin(math.radians(min_elev_deg)), math.sin(math.radians(max_elev_deg))
    out = []
    for i in range(n):
        s = lo + (hi - lo) * (i + 0.5) / n
        az = i * math.pi * (3 - math.sqrt(5)) + jitter * float(torch.rand((), generator=g) - 0.5)
        c = math.sqrt(max(0.0, 1 - s * s))
        eye = torch.tensor([c * math.sin(az), -s, c * math.cos(az)]) * radius + torch.tensor(target)
        out.append(look_at(eye, torch.tensor(target)))
    return out


def camera_center(viewmat: Tensor) -> Tensor:
    """World position ``[3]`` of a camera from its world-to-camera matrix."""
    return -viewmat[:3, :3].T @ viewmat[:3, 3]
