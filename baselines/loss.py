"""OHEM cross-entropy, as in the BiSeNet face-parsing recipe.

Only hard pixels teach: keep those whose true-class probability is below ``thresh`` (0.7), but never
fewer than ``n_min`` (the recipe uses B·H·W/16), taking the n_min largest losses if too few are hard.
Pixels labelled 255 are ignored (their loss is 0, so they are never selected as hard).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE = 255


def ohem_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, thresh: float = 0.7, min_fraction: float = 1 / 16
) -> torch.Tensor:
    """logits N×C×H×W, target N×H×W int64 -> scalar mean loss over the kept pixels."""
    loss = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none").flatten()
    n_min = max(1, int(loss.numel() * min_fraction))
    hard = loss[loss > -math.log(thresh)]
    if hard.numel() >= n_min:
        return hard.mean()
    return torch.topk(loss, n_min, sorted=False).values.mean()
