"""Front-to-back alpha compositing of screen-space Gaussians on the CPU, with a hand-written backward.

Why this shape: a per-pixel loop is hopeless in Python and gsplat's tile kernels are CUDA-only, so
the work is expressed as one flat list of (Gaussian, pixel) pairs.

1. Each Gaussian covers a few pixel rows; on each row the pixels with alpha >= 1/255 form an exact
   interval (a quadratic inequality), so pairs are generated only where they matter.
2. Pairs are produced Gaussian-major in depth order; a stable sort by pixel keeps depth order per pixel.
3. Transmittance is a segmented cumulative sum of log(1 - alpha), in float64 (float32 drifts visibly).
4. Colours of every channel go through one sparse (pixels x Gaussians) product, so 19 channels cost
   about what 3 do.
5. Gradients of the per-pair ellipse parameters are summed per row first (dy is constant on a row),
   then per Gaussian.

Conventions are gsplat's "classic" ones: pixel centres at +0.5, alpha = min(alpha_max, o exp(-sigma)),
pairs with alpha < 1/255 are skipped, and a pixel stops before the Gaussian that would bring its
transmittance to 1e-4 or below.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

ALPHA_MIN = 1.0 / 255.0
T_MIN = 1e-4
_SPAN_EPS = 1e-3  # widen the exact intervals a little; the alpha test below trims them back


def _csr(crow: Tensor, col: Tensor, val: Tensor, shape: tuple[int, int]) -> Tensor:
    """A CSR matrix, without torch's "beta" warning (spam in a training loop)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(crow, col, val, size=shape, check_invariants=False)


@dataclass
class _Pairs:
    """Pixel-major pair list and the row bookkeeping needed by the backward."""

    crow: Tensor  # [HW+1] int64 CSR offsets of each pixel's pairs
    gauss: Tensor  # [P] int64 Gaussian of each pair (pixel-major order)
    pix: Tensor  # [P] int64 pixel of each pair (pixel-major order)
    row: Tensor  # [P] int64 row (Gaussian, y) of each pair (pixel-major order)
    perm: Tensor  # [P] int64 pixel-major position -> Gaussian-major position
    dx: Tensor  # [P] pixel-centre x minus mean x
    g_row: Tensor  # [R] Gaussian of each row
    dy_row: Tensor  # [R] pixel-centre y minus mean y
    pairs_per_gauss: Tensor  # [M] int64
    pix_gmajor: Tensor  # [P] int64 pixel of each pair in Gaussian-major order


def _segment_ids(counts: Tensor, total: int) -> tuple[Tensor, Tensor]:
    """For segments of the given lengths: the segment of each element and its index inside it."""
    ids = torch.arange(counts.numel(), device=counts.device)
    seg = torch.repeat_interleave(ids, counts, output_size=total)
    starts = torch.cumsum(counts, 0) - counts
    local = torch.arange(total, device=counts.device) - starts[seg]
    return seg, local


@torch.no_grad()
def build_pairs(means2d: Tensor, conics: Tensor, opacities: Tensor, width: int, height: int) -> _Pairs:
    """All (Gaussian, pixel) pairs with o·exp(-sigma) >= 1/255, up to a ~1e-3 px margin."""
    dev = means2d.device
    m = means2d.double()
    a, b, c = conics.double().unbind(-1)
    tau = torch.log(opacities.double().clamp_min(1e-30) * 255.0).clamp_min(0.0)  # sigma <= tau
    detc = (a * c - b * b).clamp_min(1e-30)
    half_h = torch.sqrt(2.0 * tau * a / detc)
    y0 = torch.ceil(m[:, 1] - half_h - 0.5 - _SPAN_EPS).clamp(0, height)
    y1 = torch.floor(m[:, 1] + half_h - 0.5 + _SPAN_EPS).clamp(-1, height - 1)
    nrows = (y1 - y0 + 1).clamp_min(0).long()
    nrows = torch.where(tau > 0, nrows, torch.zeros_like(nrows))
    n_rows = int(nrows.sum())
    g_row, local_y = _segment_ids(nrows, n_rows)
    y_row = y0.long()[g_row] + local_y
    dy = y_row.double() + 0.5 - m[g_row, 1]
    ar, br = a[g_row], b[g_row]
    disc = (2.0 * ar * tau[g_row] - detc[g_row] * dy * dy).clamp_min(0.0).sqrt()
    xc = m[g_row, 0] - 0.5 - br * dy / ar
    x0 = torch.ceil(xc - disc / ar - _SPAN_EPS).clamp(0, width)
    x1 = torch.floor(xc + disc / ar + _SPAN_EPS).clamp(-1, width - 1)
    npix = (x1 - x0 + 1).clamp_min(0).long()
    n_pairs = int(npix.sum())
    row, local_x = _segment_ids(npix, n_pairs)
    pix_g = y_row[row] * width + x0.long()[row] + local_x
    key = pix_g.to(torch.int32) if width * height < 2**31 else pix_g
    pix_sorted, perm = torch.sort(key, stable=True)
    pix_sorted = pix_sorted.long()
    counts = torch.bincount(pix_sorted, minlength=width * height)
    crow = torch.zeros(width * height + 1, dtype=torch.int64, device=dev)
    torch.cumsum(counts, 0, out=crow[1:])
    row_sorted = row[perm]
    g_sorted = g_row[row_sorted]
    x_sorted = pix_sorted % width
    dx = (x_sorted.to(means2d.dtype) + 0.5) - means2d[g_sorted, 0]
    dy_row = (y_row.to(means2d.dtype) + 0.5) - means2d[g_row, 1]
    per_gauss = torch.zeros(means2d.shape[0], dtype=torch.int64, device=dev).index_add_(0, g_row, npix)
    return _Pairs(crow, g_sorted, pix_sorted, row_sorted, perm, dx, g_row, dy_row, per_gauss, pix_g)


def _pair_alpha(dx: Tensor, dy: Tensor, a: Tensor, b: Tensor, c: Tensor, o: Tensor, alpha_max: float):
    """Per-pair alpha (0 where skipped) and whether it was clamped at alpha_max."""
    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    raw = o * torch.exp(-sigma)
    alpha = torch.clamp_max(raw, alpha_max)
    alpha = torch.where((alpha >= ALPHA_MIN) & (sigma >= 0), alpha, torch.zeros_like(alpha))
    return alpha, raw > alpha_max


class Composite(torch.autograd.Function):
    """Differentiable compositing; inputs must already be culled and sorted front to back."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, width: int, height: int, alpha_max: float):
        hw = width * height
        pairs = build_pairs(means2d.detach(), conics.detach(), opacities.detach(), width, height)
        g = pairs.gauss
        dy = pairs.dy_row[pairs.row]
        cg = conics[g]
        alpha, clamped = _pair_alpha(pairs.dx, dy, cg[:, 0], cg[:, 1], cg[:, 2], opacities[g], alpha_max)
        log1m = torch.log1p(-alpha.double())
        cs_excl = torch.cumsum(log1m, 0) - log1m
        first = pairs.crow[:-1][pairs.pix]
        log_t = cs_excl - cs_excl[first]
        keep = (log_t + log1m) > math.log(T_MIN)
        trans = torch.exp(log_t)
        w64 = torch.where(keep, alpha.double() * trans, torch.zeros_like(trans))
        log_tfin = torch.zeros(hw, dtype=torch.float64, device=means2d.device)
        log_tfin.index_add_(0, pairs.pix, torch.where(keep, log1m, torch.zeros_like(log1m)))
        t_final = torch.exp(log_tfin)
        w = w64.to(colors.dtype)
        mat = _csr(pairs.crow, g, w, (hw, colors.shape[0]))
        image = (mat @ colors) if colors.shape[0] > 0 else colors.new_zeros(hw, colors.shape[1])
        ctx.save_for_backward(conics, opacities, colors, alpha, clamped, keep, trans, w, t_final)
        ctx.pairs, ctx.mat, ctx.hw = pairs, mat, hw
        return image, (1.0 - t_final).to(colors.dtype)

    @staticmethod
    def backward(ctx, d_image, d_alpha):
        conics, opacities, colors, alpha, clamped, keep, trans, w, t_final = ctx.saved_tensors
        pairs, mat, hw = ctx.pairs, ctx.mat, ctx.hw
        m = colors.shape[0]
        dtype = colors.dtype
        d_image = d_image.contiguous() if d_image is not None else colors.new_zeros(hw, colors.shape[1])
        d_alpha = d_alpha if d_alpha is not None else colors.new_zeros(hw)
        if alpha.numel() == 0:
            z = torch.zeros_like
            return z(conics[:, :2]), z(conics), z(opacities), z(colors), None, None, None
        # d colour: (Gaussians x pixels) product, built Gaussian-major so no sparse transpose is needed.
        w_g = torch.empty_like(w)
        w_g[pairs.perm] = w
        crow_g = torch.zeros(m + 1, dtype=torch.int64, device=w.device)
        torch.cumsum(pairs.pairs_per_gauss, 0, out=crow_g[1:])
        mat_t = _csr(crow_g, pairs.pix_gmajor, w_g, (m, hw))
        d_colors = mat_t @ d_image
        # v_i = <dL/dC_pixel, colour_gauss> for every pair, as one sampled product.
        v = torch.sparse.sampled_addmm(mat, d_image, colors.T.contiguous(), beta=0.0).values().double()
        wv = w.double() * v
        cs = torch.cumsum(wv, 0)
        first = pairs.crow[:-1][pairs.pix]
        prefix = cs - (cs[first] - wv[first])  # inclusive prefix within the pixel
        total = torch.zeros(hw, dtype=torch.float64, device=w.device).index_add_(0, pairs.pix, wv)
        after = total[pairs.pix] - prefix
        d_tfin = -d_alpha.double() * t_final
        a64 = alpha.double()
        d_a = trans * v - (after + d_tfin[pairs.pix]) / (1.0 - a64)
        h = torch.where(keep & ~clamped, d_a * a64, torch.zeros_like(d_a))  # dL/dlog(o) = -dL/dsigma
        dx = pairs.dx.double()
        n_rows = pairs.g_row.numel()
        s0 = torch.bincount(pairs.row, weights=h, minlength=n_rows)
        s1 = torch.bincount(pairs.row, weights=h * dx, minlength=n_rows)
        s2 = torch.bincount(pairs.row, weights=h * dx * dx, minlength=n_rows)
        gr = pairs.g_row
        a, b, c = conics.double()[gr].unbind(-1)
        dy = pairs.dy_row.double()
        per_row = torch.stack(
            [a * s1 + b * dy * s0, b * s1 + c * dy * s0, -0.5 * s2, -dy * s1, -0.5 * dy * dy * s0, s0], -1
        )
        per_gauss = torch.zeros(m, 6, dtype=torch.float64, device=w.device).index_add_(0, gr, per_row)
        d_means2d = per_gauss[:, :2].to(dtype)
        d_conics = per_gauss[:, 2:5].to(dtype)
        d_opac = (per_gauss[:, 5] / opacities.double()).to(dtype)
        return d_means2d, d_conics, d_opac, d_colors, None, None, None


def composite(
    means2d: Tensor, conics: Tensor, opacities: Tensor, colors: Tensor, width: int, height: int,
    alpha_max: float = 0.999,
) -> tuple[Tensor, Tensor]:
    """Composite ``M`` depth-sorted Gaussians into ``(image [H*W, D], alpha [H*W])``.

    ``means2d [M,2]``, ``conics [M,3]``, ``opacities [M]`` (in [0,1]), ``colors [M,D]``.
    """
    return Composite.apply(means2d, conics, opacities, colors.contiguous(), width, height, alpha_max)
