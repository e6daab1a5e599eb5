"""A small SSIM (gaussian window 11, sigma 1.5, as in 3DGS) as separable convolutions, for the D-SSIM loss."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

C1, C2 = 0.01**2, 0.03**2


@functools.lru_cache(maxsize=8)
def _window(size: int, sigma: float, dtype: torch.dtype, device: str) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return (w / w.sum()).to(dtype=dtype, device=device)


def _blur(x: Tensor, w: Tensor) -> Tensor:
    """Separable gaussian blur of ``x [B, C, H, W]`` with zero padding (keeps the image size)."""
    c, k = x.shape[1], w.numel()
    x = F.conv2d(x, w.view(1, 1, 1, k).expand(c, 1, 1, k), padding=(0, k // 2), groups=c)
    return F.conv2d(x, w.view(1, 1, k, 1).expand(c, 1, k, 1), padding=(k // 2, 0), groups=c)


def ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of images ``[C, H, W]`` or ``[B, C, H, W]`` with values in [0, 1]."""
    return ssim_map(a, b, window, sigma).mean()


def ssim_map(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel, per-channel SSIM ``[B, C, H, W]``: to average over a region (a head) rather than the frame."""
    if a.dim() == 3:
        a, b = a[None], b[None]
    w = _window(window, sigma, a.dtype, str(a.device))
    stacked = _blur(torch.cat([a, b, a * a, b * b, a * b], 1), w)
    mu_a, mu_b, aa, bb, ab = stacked.chunk(5, dim=1)
    var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
    num = (2 * mu_a * mu_b + C1) * (2 * cov + C2)
    den = (mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2)
    return num / den
