"""Tensor conversions at the model boundary: uint8 arrays in, normalised float batches out.

Non-square images are letterboxed (centred on a square canvas: image padded with 0, mask with
255 = ignore) before resizing, so faces keep their aspect ratio in training and in prediction.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE = 255


def square_box(h: int, w: int) -> tuple[int, int, int]:
    """(side, top, left) of an h×w image centred on its letterbox square."""
    side = max(h, w)
    return side, (side - h) // 2, (side - w) // 2


def image_to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """H×W×3 uint8 -> 3×size×size float in [0, 1], letterboxed and resized (antialiased when shrinking)."""
    x = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255)
    h, w = x.shape[-2:]
    side, top, left = square_box(h, w)
    if side != h or side != w:
        x = F.pad(x, (left, side - w - left, top, side - h - top))
    if side != size:
        x = F.interpolate(
            x[None], size=(size, size), mode="bilinear", align_corners=False, antialias=side > size
        )[0]
    return x


def mask_to_tensor(mask: np.ndarray, size: int) -> torch.Tensor:
    """H×W uint8 ids -> size×size uint8 ids, letterboxed with ignore and resized by nearest neighbour."""
    m = torch.from_numpy(np.require(mask, requirements=["C", "W"]))
    h, w = m.shape
    side, top, left = square_box(h, w)
    if side != h or side != w:
        m = F.pad(m, (left, side - w - left, top, side - h - top), value=IGNORE)
    if side != size:
        m = F.interpolate(m[None, None].float(), size=(size, size), mode="nearest-exact")[0, 0].to(
            torch.uint8
        )
    return m


def logits_to_mask(logits: torch.Tensor, h: int, w: int) -> np.ndarray:
    """C×S×S logits of a letterboxed image -> h×w uint8 label map (bilinear logits, then argmax)."""
    side, top, left = square_box(h, w)
    if logits.shape[-1] != side:
        logits = F.interpolate(logits[None], size=(side, side), mode="bilinear", align_corners=False)[0]
    return logits[:, top : top + h, left : left + w].argmax(0).to(torch.uint8).numpy()


def normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """N×3×H×W in [0, 1] -> (x - mean) / std per channel."""
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s
