"""Batch augmentation in torch, vectorised: one affine warp per sample, one colour jitter per sample.

Random scale + crop, small rotation and horizontal flip are folded into a single affine matrix per
sample and applied with ``grid_sample`` (bilinear for images, nearest for masks, outside = ignore).
A flip mirrors the pixels, so the subject's left becomes the image's right: flipped masks then go
through ``flip_lut`` to swap l_/r_ classes, as the BiSeNet face-parsing recipe does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from baselines.transforms import IGNORE


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms (defaults: the face-parsing recipe, plus small rotations)."""

    scale: tuple[float, float] = (0.75, 2.0)  # zoom factor; >1 crops into the image
    rotate: float = 15.0  # degrees, uniform in ±rotate
    flip: float = 0.5  # probability of a horizontal flip (with left/right label swap)
    brightness: float = 0.5  # factor uniform in [1 - b, 1 + b]
    contrast: float = 0.5
    saturation: float = 0.5


NO_AUGMENT = AugmentConfig(
    scale=(1.0, 1.0), rotate=0.0, flip=0.0, brightness=0.0, contrast=0.0, saturation=0.0
)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def affine_matrices(n: int, cfg: AugmentConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """N×2×3 output->input maps in normalised coordinates, and which samples are flipped.

    Output coordinate u maps to input R(θ)·diag(±1, 1)·u / s + t, with t chosen so a zoomed-in
    crop stays inside the image (and a zoomed-out image stays inside the crop).
    """
    lo, hi = cfg.scale
    s = torch.exp(_uniform(n, math.log(lo), math.log(hi), gen))
    theta = torch.deg2rad(_uniform(n, -cfg.rotate, cfg.rotate, gen))
    flipped = torch.rand(n, generator=gen) < cfg.flip
    sign = 1.0 - 2.0 * flipped.float()
    reach = (1.0 - 1.0 / s).abs()
    t = (torch.rand(n, 2, generator=gen) * 2 - 1) * reach[:, None]
    cos, sin = torch.cos(theta) / s, torch.sin(theta) / s
    mat = torch.stack(
        [torch.stack([cos * sign, -sin, t[:, 0]], 1), torch.stack([sin * sign, cos, t[:, 1]], 1)], 1
    )
    return mat, flipped


def colour_jitter(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Per-sample brightness, contrast and saturation on N×3×H×W in [0, 1]."""
    n = x.shape[0]
    b = _uniform(n, 1 - cfg.brightness, 1 + cfg.brightness, gen).view(n, 1, 1, 1)
    c = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, gen).view(n, 1, 1, 1)
    s = _uniform(n, 1 - cfg.saturation, 1 + cfg.saturation, gen).view(n, 1, 1, 1)
    x = x * b
    grey = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    x = (x - grey.mean((2, 3), keepdim=True)) * c + grey.mean((2, 3), keepdim=True)
    grey = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    x = (x - grey) * s + grey
    return x.clamp_(0, 1)


def augment(
    images: torch.Tensor,
    masks: torch.Tensor,
    size: int,
    cfg: AugmentConfig,
    flip_lut: np.ndarray,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch.

    images: N×3×H×W uint8 (or float in [0, 1]); masks: N×H×W uint8 ids (255 = ignore).
    Returns N×3×size×size float in [0, 1] and N×size×size int64 ids.
    """
    n = images.shape[0]
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    mat, flipped = affine_matrices(n, cfg, gen)
    grid = F.affine_grid(mat, [n, 3, size, size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Shift ids by one so that 0 marks "outside the source image", which becomes ignore.
    m = F.grid_sample(
        (masks.float() + 1)[:, None], grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    m = m[:, 0].long() - 1
    m[m < 0] = IGNORE
    if flipped.any():
        lut = torch.from_numpy(flip_lut.astype(np.int64))
        m[flipped] = lut[m[flipped]]
    if cfg.brightness or cfg.contrast or cfg.saturation:
        x = colour_jitter(x, cfg, gen)
    return x, m
