"""Small building blocks shared by the baseline models."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


def scaled(channels: int, width: float, minimum: int = 8) -> int:
    """Channels times the width multiplier, rounded to a multiple of 8 (fast CPU kernels like that)."""
    return max(minimum, int(round(channels * width / 8)) * 8)


class ConvBNReLU(nn.Sequential):
    """conv -> batch norm -> ReLU, with 'same' padding for odd kernels."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, relu: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of N×C×h×w features or logits to ``size`` (no-op if already there)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


@functools.lru_cache(maxsize=32)
def bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """n_out×n_in weights of 1-D bilinear resizing, exactly ``F.interpolate(align_corners=False)``.

    Cached, so built outside inference mode: an inference tensor could not be reused by training.
    """
    with torch.inference_mode(False):
        return _bilinear_matrix(n_in, n_out)


def _bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = src - lo
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m.index_put_((rows, lo), 1 - frac, accumulate=True)
    m.index_put_((rows, hi), frac, accumulate=True)
    return m.float()


def upsample_logits(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize N×C×h×w class logits to ``size``, in float32, as two small matmuls.

    Same numbers as ``F.interpolate(mode="bilinear")`` (to float rounding), but the separable form
    runs on BLAS: forward and backward together were ~6× faster than the upsample kernels on 2 CPU
    cores at 8×19×256², where the full-resolution loss path dominated BiSeNet's training step. The
    cast comes first because under bf16 autocast the heads emit bf16, and casting the small map
    saves two full-resolution copies; the loss and the argmax want float32 anyway.
    """
    x = x.float()
    if tuple(x.shape[-2:]) == tuple(size):
        return x.contiguous()
    rows = bilinear_matrix(x.shape[-2], size[0]).to(x.device)
    cols = bilinear_matrix(x.shape[-1], size[1]).to(x.device)
    with torch.autocast(x.device.type, enabled=False):
        return torch.matmul(torch.matmul(rows, x), cols.T).contiguous()


def init_weights(module: nn.Module) -> None:
    """He init for convs (we train from scratch: there are no pretrained weights to start from)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
