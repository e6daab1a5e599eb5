"""Seeded synthetic Gaussian scenes for tests and benchmarks: a fresh initialisation and a fitted-like one."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor


def _quat_mul(p: Tensor, q: Tensor) -> Tensor:
    pw, px, py, pz = p.unbind(-1)
    qw, qx, qy, qz = q.unbind(-1)
    return torch.stack([
        pw * qw - px * qx - py * qy - pz * qz,
        pw * qx + px * qw + py * qz - pz * qy,
        pw * qy - px * qz + py * qw + pz * qx,
        pw * qz + px * qy - py * qx + pz * qw,
    ], -1)  # fmt: skip


def random_scene(
    n: int, kind: Literal["fresh", "fitted"] = "fresh", seed: int = 0, channels: int = 3
) -> dict[str, Tensor]:
    """Gaussians in a unit-sized volume, as ``dict(means, quats, scales, opacities, colors)`` (activated).

    ``fresh`` mimics a 3DGS initialisation: uniform in a ball, isotropic scales equal to the mean
    spacing, opacity 0.1. ``fitted`` mimics a trained surface: flat anisotropic splats on an
    ellipsoid "head" about one spacing wide, opacities mostly near 1 with a low tail.
    """
    g = torch.Generator().manual_seed(seed)
    if kind == "fresh":
        r = torch.rand(n, 1, generator=g) ** (1 / 3)
        means = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1) * r
        spacing = (4 / 3 * math.pi / n) ** (1 / 3)
        scales = torch.full((n, 3), spacing)
        quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=1)
        opacities = torch.full((n,), 0.1)
    elif kind == "fitted":
        axes = torch.tensor([0.75, 1.0, 0.85])
        normal = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
        means = normal * axes * (1 + 0.01 * torch.randn(n, 1, generator=g))
        normal = torch.nn.functional.normalize(normal / axes, dim=1)
        spacing = math.sqrt(4 * math.pi * 0.85**2 / n)
        s = spacing * torch.exp(0.4 * torch.randn(n, 2, generator=g))
        scales = torch.cat([s, 0.1 * s.min(1, keepdim=True).values], 1)
        half = torch.acos(normal[:, 2].clamp(-1, 1)) / 2
        axis = torch.stack([-normal[:, 1], normal[:, 0], torch.zeros(n)], 1)
        axis = torch.nn.functional.normalize(axis, dim=1)
        align = torch.cat([torch.cos(half)[:, None], torch.sin(half)[:, None] * axis], 1)
        phi = torch.rand(n, generator=g) * math.pi
        spin = torch.stack([torch.cos(phi), torch.zeros(n), torch.zeros(n), torch.sin(phi)], 1)
        quats = _quat_mul(align, spin)
        opacities = torch.sigmoid(2.5 + 2.0 * torch.randn(n, generator=g))
    else:
        raise ValueError(f"unknown scene kind {kind!r}")
    freq = torch.randn(3, channels, generator=g) * 2
    colors = 0.5 + 0.4 * torch.sin(means @ freq + torch.rand(channels, generator=g) * 6)
    return {"means": means, "quats": quats, "scales": scales, "opacities": opacities, "colors": colors}


@torch.no_grad()
def render_scene(
    scene: dict[str, Tensor], viewmats: list[Tensor], K: Tensor, width: int, height: int
) -> list[tuple[Tensor, Tensor]]:
    """Ground-truth ``(image [C,H,W], alpha [H,W])`` of a scene from each camera (clamped to [0, 1])."""
    from .rasterize import rasterize

    out = []
    for vm in viewmats:
        img, alpha, _ = rasterize(
            scene["means"],
            scene["quats"],
            scene["scales"],
            scene["opacities"],
            scene["colors"],
            vm,
            K,
            width,
            height,
        )
        out.append((img.clamp(0, 1), alpha))
    return out
