"""Which arithmetic a baseline trains and predicts in, and the memory layout that goes with it.

bf16 autocast roughly halves BiSeNet's training step and inference on CPUs with AVX512-BF16 or AMX
(oneDNN's bf16 kernels), where fp32 convolutions alone cost more than the inference target. Those
kernels are fastest in channels_last, which also helps fp32 convolutions by ~15%.
"""

from __future__ import annotations

import torch

from facebench.errors import InvalidConfig

PRECISIONS = ("auto", "fp32", "bf16")


def bf16_supported() -> bool:
    """True where oneDNN has native bf16 kernels (AVX512-BF16 or AMX)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str | None) -> str:
    """'auto' -> 'bf16' where the CPU has bf16 kernels, else 'fp32'; None means 'fp32' (older configs)."""
    precision = precision or "fp32"
    if precision not in PRECISIONS:
        raise InvalidConfig(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    return precision
