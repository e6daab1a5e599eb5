"""``native_project``: ``project.project`` in C++ with a hand-written backward (same rules, same outputs).

Why: for 20k Gaussians the autograd graph of the eager projection (a few dozen small ops, each with
its own backward) cost about as much as compositing once that moved to C++; one fused loop per
direction costs well under a millisecond.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .native_build import load, require
from .native_build import ptr as _ptr
from .project import Projected


class NativeProject(torch.autograd.Function):
    """Differentiable in means, quats and scales (the camera is data here, not a parameter)."""

    @staticmethod
    def forward(ctx, means, quats, scales, viewmat, K, width, height, eps2d, near_plane, far_plane):
        dtype = torch.float64 if means.dtype == torch.float64 else torch.float32
        ins = [t.detach().to(dtype).contiguous() for t in (means, quats, scales)]
        cam = [t.detach().to(torch.float64).contiguous() for t in (viewmat, K)]
        n = means.shape[0]
        means2d, conics = means.new_empty(n, 2, dtype=dtype), means.new_empty(n, 3, dtype=dtype)
        depths, means_cam = means.new_empty(n, dtype=dtype), means.new_empty(n, 3, dtype=dtype)
        radii = torch.empty(n, 2, dtype=torch.int32)
        args = (int(dtype == torch.float64), *(_ptr(t) for t in ins), n, *(_ptr(t) for t in cam), width, height,
                float(eps2d), float(near_plane), float(far_plane))  # fmt: skip
        require().fb_project_forward(*args, _ptr(means2d), _ptr(conics), _ptr(depths), _ptr(radii), _ptr(means_cam))
        ctx.save_for_backward(*ins, *cam)
        ctx.args = (width, height, float(eps2d), float(near_plane), float(far_plane))
        ctx.mark_non_differentiable(radii, means_cam)
        out_dtype = means.dtype
        return means2d.to(out_dtype), conics.to(out_dtype), depths.to(out_dtype), radii, means_cam.to(out_dtype)

    @staticmethod
    def backward(ctx, d_means2d, d_conics, d_depths, _d_radii, _d_means_cam):
        means, quats, scales, viewmat, K = ctx.saved_tensors
        dtype, n = means.dtype, means.shape[0]

        def grad_in(g, shape):
            return (g if g is not None else torch.zeros(shape, dtype=dtype)).to(dtype).contiguous()

        ups = [grad_in(d_means2d, (n, 2)), grad_in(d_conics, (n, 3)), grad_in(d_depths, (n,))]
        outs = [torch.empty_like(t) for t in (means, quats, scales)]
        load().fb_project_backward(
            int(dtype == torch.float64), *(_ptr(t) for t in (means, quats, scales)), n, _ptr(viewmat), _ptr(K),
            *ctx.args, *(_ptr(t) for t in ups), *(_ptr(t) for t in outs),
        )  # fmt: skip
        return *outs, None, None, None, None, None, None, None


def native_project(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
) -> Projected:
    """``project.project`` through the C++ kernel; raises ``BackendUnavailable`` without the library."""
    means2d, conics, depths, radii, means_cam = NativeProject.apply(
        means, quats, scales, viewmat, K, width, height, eps2d, near_plane, far_plane
    )
    return Projected(means2d=means2d, conics=conics, depths=depths, radii=radii, means_cam=means_cam)
