"""Real spherical harmonics up to degree 3, in the basis order and sign convention 3DGS uses.

Colours stored as SH coefficients turn into RGB as ``clamp_min(sum_k Y_k(d) c_k + 0.5, 0)``,
with ``d`` the unit direction from the camera centre to the Gaussian (gsplat's rule).
"""

from __future__ import annotations

import torch
from torch import Tensor

SH_C0 = 0.28209479177387814

_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def num_sh_bases(degree: int) -> int:
    """Number of coefficients per colour channel for an SH degree."""
    return (degree + 1) ** 2


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """SH basis values ``[..., (degree+1)**2]`` at unit directions ``dirs [..., 3]``."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [
            _C2[0] * xy,
            _C2[1] * yz,
            _C2[2] * (2.0 * zz - xx - yy),
            _C2[3] * xz,
            _C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            _C3[0] * y * (3 * xx - yy),
            _C3[1] * xy * z,
            _C3[2] * y * (4 * zz - xx - yy),
            _C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            _C3[4] * x * (4 * zz - xx - yy),
            _C3[5] * z * (xx - yy),
            _C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, coeffs: Tensor, dirs: Tensor) -> Tensor:
    """Raw SH colour ``[N, 3]`` from coefficients ``[N, K, 3]`` (K ≥ (degree+1)²) and directions ``[N, 3]``.

    Only the first ``(degree+1)**2`` coefficients are used, so a model can train its degree up
    progressively. Directions need not be normalised.
    """
    k = num_sh_bases(degree)
    d = torch.nn.functional.normalize(dirs, dim=-1)
    basis = sh_basis(degree, d)  # [N, k]
    return torch.einsum("nk,nkc->nc", basis, coeffs[:, :k, :])


def rgb_to_sh0(rgb: Tensor) -> Tensor:
    """DC coefficient whose rendered colour is ``rgb`` (inverse of ``c * SH_C0 + 0.5``)."""
    return (rgb - 0.5) / SH_C0


def sh0_to_rgb(dc: Tensor) -> Tensor:
    """Colour of a DC-only SH coefficient."""
    return dc * SH_C0 + 0.5
