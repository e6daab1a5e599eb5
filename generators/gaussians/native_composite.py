"""``native_composite``: the C++ compositor behind the same interface as ``composite.composite``.

Forward and backward both walk the tiles in C++ (``csrc/composite.cpp``); the backward recomputes the
front-to-back pass per tile instead of keeping per-pair state, so the forward saves only its inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .native_build import load, require
from .native_build import ptr as _ptr


def native_available() -> bool:
    return load() is not None


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The kernel has float32 and float64 versions; half precisions run in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _scene_args(means2d, conics, opacities, colors, width, height, alpha_max):
    double = colors.dtype == torch.float64
    return (
        int(double), _ptr(means2d), _ptr(conics), _ptr(opacities), _ptr(colors),
        colors.shape[0], colors.shape[1], width, height, float(alpha_max),
    )  # fmt: skip


class NativeComposite(torch.autograd.Function):
    """Differentiable compositing of depth-sorted Gaussians by the C++ kernel (float32 or float64)."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, width: int, height: int, alpha_max: float):
        lib = require()
        dtype = _work_dtype(colors.dtype)
        ins = [t.detach().to(dtype).contiguous() for t in (means2d, conics, opacities, colors)]
        hw = width * height
        image = torch.empty(hw, colors.shape[1], dtype=dtype)
        t_final = torch.empty(hw, dtype=dtype)
        lib.fb_composite_forward(
            *_scene_args(*ins, width, height, alpha_max), _ptr(image), _ptr(t_final), torch.get_num_threads()
        )
        ctx.save_for_backward(*ins)
        ctx.size, ctx.alpha_max = (width, height), alpha_max
        return image.to(colors.dtype), (1.0 - t_final).to(colors.dtype)

    @staticmethod
    def backward(ctx, d_image, d_alpha):
        means2d, conics, opacities, colors = ctx.saved_tensors
        (width, height), dtype = ctx.size, colors.dtype
        hw = width * height
        d_image = (d_image if d_image is not None else colors.new_zeros(hw, colors.shape[1])).to(dtype).contiguous()
        d_alpha = (d_alpha if d_alpha is not None else colors.new_zeros(hw)).to(dtype).contiguous()
        outs = [torch.empty_like(t) for t in (means2d, conics, opacities, colors)]
        load().fb_composite_backward(
            *_scene_args(means2d, conics, opacities, colors, width, height, ctx.alpha_max),
            _ptr(d_image), _ptr(d_alpha), *(_ptr(t) for t in outs), torch.get_num_threads(),
        )  # fmt: skip
        return *outs, None, None, None


def native_composite(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    colors: Tensor,
    width: int,
    height: int,
    alpha_max: float = 0.999,
) -> tuple[Tensor, Tensor]:
    """Composite ``M`` depth-sorted Gaussians into ``(image [H*W, D], alpha [H*W])`` on the CPU.

    Same inputs, rules and outputs as ``composite.composite``; raises ``BackendUnavailable`` without the library.
    """
    return NativeComposite.apply(means2d, conics, opacities, colors, width, height, alpha_max)
