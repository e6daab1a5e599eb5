"""Front-to-back alpha compositing of screen-space Gaussians on the CPU, with a hand-written backward.

Why this shape: a per-pixel loop is hopeless in Python and gsplat's tile kernels are CUDA-only, so
the work is expressed as one flat list of (Gaussian, pixel) pairs.

1. Each Gaussian covers a few pixel rows; on each row the pixels with alpha >= 1/255 form an exact
   interval (a quadratic inequality), so pairs are generated only where they matter.
2. Pairs are produced Gaussian-major in depth order; a stable sort by pixel keeps depth order per pixel.
   This happens per depth chunk: a farther chunk's row intervals are first trimmed to the pixels the
   nearer chunks left open, so pairs behind an opaque surface are mostly never made.
3. Transmittance is a segmented cumulative sum of log(1 - alpha), in float64 (float32 drifts visibly).
   Pairs that contribute nothing (pixel already stopped, alpha 0) are dropped right after it.
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
    """The pair list, pixel-major, plus what the backward needs."""

    crow: Tensor  # [HW+1] CSR offsets of each pixel's pairs
    gauss: Tensor  # [P] Gaussian of each pair (the CSR columns)
    pix: Tensor  # [P] pixel of each pair (sorted)
    row: Tensor  # [P] row (Gaussian, y) of each pair
    alpha: Tensor  # [P] alpha of each pair (> 0)
    perm: Tensor  # [P] position of each pair in the Gaussian-major order
    pix_g: Tensor  # [P] pixels in Gaussian-major order (columns of the transposed matrix)
    g_row: Tensor  # [R] Gaussian of each row
    dy_row: Tensor  # [R] pixel-centre y minus mean y
    per_gauss: Tensor  # [M] number of pairs of each Gaussian


def _take(x: Tensor, idx: Tensor) -> Tensor:
    """``x[idx]`` along dim 0 via ``index_select``: several times faster than advanced indexing on CPU."""
    return torch.index_select(x, 0, idx)


def _segment_ids(counts: Tensor, total: int) -> tuple[Tensor, Tensor]:
    """For segments of the given lengths: the segment of each element and its index inside it."""
    ids = torch.arange(counts.numel(), device=counts.device)
    seg = torch.repeat_interleave(ids, counts, output_size=total)
    starts = torch.cumsum(counts, 0) - counts
    local = torch.arange(total, device=counts.device) - _take(starts, seg)
    return seg, local


@torch.no_grad()
def _rows(means2d: Tensor, conics: Tensor, opacities: Tensor, width: int, height: int, compiled: bool = False):
    """Pixel rows of each Gaussian and, on each, the x-interval where o·exp(-sigma) >= 1/255.

    Solved in float64 and widened by ``_SPAN_EPS``; the exact alpha test later trims the excess.
    Returns ``g_row, y_row, x0, npix`` and the per-row constants of the pair kernel
    ``(mx, a/2, b·dy, c·dy²/2, opacity)`` and ``dy`` in the input precision.
    """
    m = means2d.double()
    a, b, c = conics.double().unbind(-1)
    tau = torch.log(opacities.double().clamp_min(1e-30) * 255.0).clamp_min(0.0)  # sigma <= tau
    detc = (a * c - b * b).clamp_min(1e-30)
    half_h = torch.sqrt(2.0 * tau * a / detc)  # = sqrt(2 tau cov_yy)
    y0 = torch.ceil(m[:, 1] - half_h - 0.5 - _SPAN_EPS).clamp(0, height)
    y1 = torch.floor(m[:, 1] + half_h - 0.5 + _SPAN_EPS).clamp(-1, height - 1)
    nrows = torch.where(tau > 0, (y1 - y0 + 1).clamp_min(0), torch.zeros_like(y0)).long()
    g_row, local_y = _segment_ids(nrows, int(nrows.sum()))
    gauss64 = torch.stack([m[:, 0], m[:, 1], a, b, tau, detc], 0)
    spans = _kernels(compiled)[3](g_row, local_y, y0.long(), gauss64, means2d, conics, opacities, width)
    return g_row, *spans


def _row_spans(g_row, local_y, y0, gauss64, means2d, conics, opacities, width: int):
    """Per row (Gaussian-major, sequential gathers): y, the widened x-interval, and the kernel constants."""
    mx, my, a, b, tau, detc = (_take(t, g_row) for t in gauss64.unbind(0))
    y_row = _take(y0, g_row) + local_y
    dy = y_row.double() + 0.5 - my
    half_w = (2.0 * a * tau - detc * dy * dy).clamp_min(0.0).sqrt() / a
    xc = mx - 0.5 - b * dy / a
    x0 = torch.ceil(xc - half_w - _SPAN_EPS).clamp(0, width)
    x1 = torch.floor(xc + half_w + _SPAN_EPS).clamp(-1, width - 1)
    npix = (x1 - x0 + 1).clamp_min(0).long()
    # The kernel's constants in the input precision (dy is fixed on a row).
    ca, cb, cc = _take(conics, g_row).unbind(-1)
    mg = _take(means2d, g_row)
    dyt = (y_row.to(mg.dtype) + 0.5) - mg[:, 1]
    consts = (mg[:, 0], 0.5 * ca, cb * dyt, 0.5 * cc * dyt * dyt, _take(opacities, g_row))
    return y_row, x0.long(), npix, consts, dyt


def _pair_alpha(row, pixbase, mx, ha, bdy, cdy, opac, width: int, alpha_max: float):
    """Gaussian-major per-pair arithmetic: alpha (0 where skipped) and pixel id.

    ``pixbase`` is each row's first pixel minus the row's first pair index, so a pair's pixel is one
    gather plus its own index; dx is measured from the pixel centre, as in the backward.
    """
    pix = _take(pixbase, row) + torch.arange(row.numel(), dtype=pixbase.dtype, device=row.device)
    dx = ((pix % width).to(mx.dtype) + 0.5) - _take(mx, row)
    sigma = dx * (_take(ha, row) * dx + _take(bdy, row)) + _take(cdy, row)
    alpha = torch.clamp_max(_take(opac, row) * torch.exp(-sigma), alpha_max)
    alpha = torch.where((alpha >= ALPHA_MIN) & (sigma >= 0), alpha, torch.zeros_like(alpha))
    return alpha, pix


def _transmittance(alpha, crow, pix, log_t0):
    """Pixel-major: transmittance before each pair, which pairs count, and every pair's log(1-a).

    ``log_t0 [HW]`` is each pixel's log-transmittance before this list (nearer depth chunks).
    A pair counts if its pixel is still open (stop before transmittance reaches 1e-4) and alpha > 0;
    the others contribute nothing to the image or to any gradient, and are dropped afterwards.
    Only the running sum of log(1 - alpha) needs float64: it runs over the whole list, so in float32
    it would lose the digits of each pixel's own share. log(1 - alpha) of one pair and exp of the
    pixel-local result are fine in the input precision (float32: twice as fast as float64).
    """
    log1m = torch.log1p(-alpha).double()
    cs_excl = torch.cumsum(log1m, 0) - log1m
    # Per pixel, once: the offset minus the running sum before its first pair (empty pixels: unused).
    base = log_t0 - _take(cs_excl, crow[:-1].clamp_max(cs_excl.numel() - 1))
    log_t = cs_excl + _take(base, pix)
    keep = ((log_t + log1m) > math.log(T_MIN)) & (alpha > 0)
    trans = torch.exp(log_t.to(alpha.dtype))
    return trans, keep, log1m


def _pair_grads(w, v, crow, cs, trans, alpha, d_tfin_px, pix, mx_g, gauss, width: int, alpha_max: float):
    """Per (kept) pair: h = dL/dlog(o) = -dL/dsigma (0 if clamped), h·dx and h·dx²."""
    last = _take(cs, (crow[1:] - 1).clamp_min(0))  # running sum at each pixel's last pair (empty: unused)
    cs_end = _take(last, pix)
    d_tfin, mx = _take(d_tfin_px, pix), _take(mx_g, gauss)
    after = (cs_end - cs).to(alpha.dtype)  # sum of w v behind each pair in its pixel
    d_a = trans * v - (after + d_tfin) / (1.0 - alpha)
    h = torch.where(alpha < alpha_max, d_a * alpha, torch.zeros_like(d_a))
    dx = (pix % width).to(alpha.dtype) + 0.5 - mx
    hdx = h * dx
    return h, hdx, hdx * dx


_KERNELS: dict[bool, tuple] = {}


def _kernels(compiled: bool) -> tuple:
    """The per-pair kernels, optionally through ``torch.compile`` (fuses the gathers and arithmetic).

    The transmittance stays eager: its cumulative sum is the bulk of it, and the compiled version
    (torch 2.13, CPU) was 25% slower than eager.
    """
    if compiled not in _KERNELS:
        fns = (_pair_alpha, _transmittance, _pair_grads, _row_spans)
        if compiled:
            c = lambda f: torch.compile(f, dynamic=True)  # noqa: E731
            fns = (c(_pair_alpha), _transmittance, c(_pair_grads), c(_row_spans))
        _KERNELS[compiled] = fns
    return _KERNELS[compiled]


# Depth chunks, as fractions of all candidate pairs: each chunk is composited before the next one's
# pairs are made, and the next chunk's row intervals are trimmed to pixels that are still open.
_CHUNKS = (0.45,)
_CHUNK_PAIRS = 1 << 20  # and no chunk holds more candidate pairs than this (fresh scenes: -14% time)


def _open_neighbours(stopped: Tensor, width: int, height: int) -> tuple[Tensor, Tensor]:
    """Per pixel: the x of the nearest open pixel at or right of it (width if none) and at or left (-1)."""
    st = stopped.view(height, width)
    xs = torch.arange(width, device=stopped.device).expand(height, width)
    right = torch.flip(torch.cummin(torch.flip(torch.where(st, width, xs), [1]), 1).values, [1])
    left = torch.cummax(torch.where(st, -1, xs), 1).values
    return right.reshape(-1), left.reshape(-1)


def _trim(y, x0, npix, log_t, width: int, height: int):
    """Shrink row intervals to their first..last open pixel (a pixel stops at transmittance 1e-4)."""
    right, left = _open_neighbours(log_t <= math.log(T_MIN), width, height)
    base = y * width
    lo = _take(right, base + x0.clamp_max(width - 1))
    hi = _take(left, base + (x0 + npix - 1).clamp(0, width - 1))
    return lo, torch.where(npix > 0, (hi - lo + 1).clamp_min(0), torch.zeros_like(npix))


def _chunk(r0, r1, rows, log_t, width, height, alpha_max, idx_t, compiled, last):
    """Pairs of rows ``r0:r1`` behind ``log_t``: generated, sorted by pixel, composited, only kept ones.

    Returns the kept pairs pixel-major (pix, row, alpha, trans, log1m), their ranks in the chunk's
    Gaussian-major order, the pixels in that order, and ``log_t`` updated with every pair (unless
    this is the ``last`` chunk).
    """
    y, x0, npix = (t[r0:r1] for t in rows[1:4])
    mx, ha, bdy, cdy, opac = (t[r0:r1] for t in rows[4:])
    if r0 > 0:
        x0, npix = _trim(y, x0, npix, log_t, width, height)
    n = int(npix.sum())
    if n == 0:
        return None, log_t
    hw = width * height
    kern = _kernels(compiled)
    row = torch.repeat_interleave(npix.to(idx_t), output_size=n)  # the (chunk) row of each pair
    pixbase = (y * width + x0 - (torch.cumsum(npix, 0) - npix)).to(idx_t)
    alpha, pix_g = kern[0](row, pixbase, mx, ha, bdy, cdy, opac, width, alpha_max)
    if hw <= 2**15:  # a 16-bit key sorts faster (stable: depth order inside each pixel is kept)
        pix16, perm = torch.sort(pix_g.to(torch.int16), stable=True)
        pix = pix16.to(idx_t)
    else:
        pix, perm = torch.sort(pix_g, stable=True)
    crow = torch.zeros(hw + 1, dtype=idx_t, device=pix.device)
    torch.cumsum(torch.bincount(pix, minlength=hw), 0, out=crow[1:])
    alpha = _take(alpha, perm)
    trans, keep, log1m = kern[1](alpha, crow, pix, log_t)
    if not last:
        log_t = log_t + torch.bincount(pix, weights=log1m, minlength=hw)
    # Keep only the pairs that count; their Gaussian-major order without a sort: mark them in it.
    kidx = torch.nonzero(keep).squeeze(1)
    gpos = _take(perm, kidx)
    mark = torch.zeros(n, dtype=torch.bool, device=pix.device).index_fill_(0, gpos, True)
    rank = torch.cumsum(mark, 0) - 1
    kept = [_take(pix, kidx), _take(row, gpos) + r0, *(_take(x, kidx) for x in (alpha, trans, log1m))]
    return (*kept, _take(rank, gpos), torch.masked_select(pix_g, mark)), log_t


def build_pairs(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    width: int,
    height: int,
    alpha_max: float,
    compiled: bool = False,
) -> tuple[_Pairs, Tensor, Tensor]:
    """The (Gaussian, pixel) pairs that count, sorted by pixel then depth, their transmittance and log(1-a).

    A pair counts if alpha >= 1/255 and its pixel has not stopped. Depth-sorted Gaussians are split
    into chunks (``_CHUNKS``); pixels that a nearer chunk made opaque are cut from the farther chunks'
    rows before their pairs exist. In a fitted scene most pairs lie behind an opaque surface, so this
    halves the pairs that are generated and sorted, and everything after (products, backward) runs
    on the kept ones only.
    """
    hw, dev = width * height, means2d.device
    g_row, y_row, x0, npix, consts, dy = _rows(means2d, conics, opacities, width, height, compiled)
    n_all = int(npix.sum())
    idx_t = torch.int32 if max(hw, n_all) < 2**31 else torch.int64
    rows = (g_row, y_row, x0, npix, *(t.contiguous() for t in consts))
    # Chunk boundaries on rows (rows are Gaussian-major, so a prefix of rows is a prefix in depth).
    cuts = [0]
    if n_all:
        cum = torch.cumsum(npix, 0)
        fracs = list(_CHUNKS)
        if _CHUNK_PAIRS and n_all > _CHUNK_PAIRS:  # also split chunks with too many candidate pairs
            bounds = [0.0, *fracs, 1.0]
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                k = math.ceil((hi - lo) * n_all / _CHUNK_PAIRS)
                fracs += [lo + (hi - lo) * i / k for i in range(1, k)]
            fracs.sort()
        cuts += [int(torch.searchsorted(cum, int(f * n_all))) for f in fracs]
    cuts.append(g_row.numel())
    log_t = torch.zeros(hw, dtype=torch.float64, device=dev)
    parts = []
    for r0, r1 in zip(cuts[:-1], cuts[1:], strict=True):
        if r1 > r0:
            last = r1 == cuts[-1]
            out, log_t = _chunk(r0, r1, rows, log_t, width, height, alpha_max, idx_t, compiled, last)
            if out is not None:
                parts.append(out)
    if not parts:
        e = torch.zeros(0, dtype=idx_t, device=dev)
        crow = torch.zeros(hw + 1, dtype=idx_t, device=dev)
        per_gauss = torch.zeros(means2d.shape[0], dtype=torch.int64, device=dev)
        empty = _Pairs(crow, e, e, e, means2d.new_zeros(0), e.long(), e, g_row, dy, per_gauss)
        return empty, means2d.new_zeros(0), torch.zeros(0, dtype=torch.float64, device=dev)
    # Chunk ranks become global Gaussian-major positions: chunks follow each other in depth.
    offset = 0
    for part in parts:
        part[5].add_(offset)
        offset += part[0].numel()
    pix_g = torch.cat([part[6] for part in parts])
    counts = [torch.bincount(part[0], minlength=hw) for part in parts]
    total = counts[0] if len(parts) == 1 else torch.stack(counts).sum(0)
    crow = torch.zeros(hw + 1, dtype=idx_t, device=dev)
    torch.cumsum(total, 0, out=crow[1:])
    if len(parts) == 1:
        pix, row, alpha, trans, log1m, perm = parts[0][:6]
    else:  # merge pixel-major, nearer chunks first in each pixel: every pair has a known place
        pix = torch.repeat_interleave(total.to(idx_t), output_size=offset)
        merged = [torch.empty(offset, dtype=x.dtype, device=dev) for x in parts[0][1:6]]
        before = crow[:-1].long()  # pairs of nearer chunks and earlier pixels
        for part, cnt in zip(parts, counts, strict=True):
            n_c = part[0].numel()
            shift = before - (torch.cumsum(cnt, 0) - cnt)  # place minus index inside the chunk, per pixel
            pos = torch.arange(n_c, device=dev) + _take(shift, part[0])
            for out, x in zip(merged, part[1:6], strict=True):
                out.scatter_(0, pos, x)  # scatter_: ~3x faster than index_copy_ on CPU
            before = before + cnt
        row, alpha, trans, log1m, perm = merged
    gauss = _take(g_row.to(idx_t), row)
    per_gauss = torch.bincount(gauss, minlength=means2d.shape[0])
    return _Pairs(crow, gauss, pix, row, alpha, perm, pix_g, g_row, dy, per_gauss), trans, log1m


class Composite(torch.autograd.Function):
    """Differentiable compositing; inputs must already be culled and sorted front to back."""

    @staticmethod
    def forward(
        ctx,
        means2d,
        conics,
        opacities,
        colors,
        width: int,
        height: int,
        alpha_max: float,
        compiled: bool = False,
    ):
        hw = width * height
        with torch.no_grad():
            p, trans, log1m = build_pairs(means2d, conics, opacities, width, height, alpha_max, compiled)
            w = (p.alpha * trans).to(colors.dtype)
            t_final = torch.exp(torch.bincount(p.pix, weights=log1m, minlength=hw))
            mat = _csr(p.crow, p.gauss, w, (hw, colors.shape[0]))
            image = (mat @ colors) if p.alpha.numel() else colors.new_zeros(hw, colors.shape[1])
        ctx.save_for_backward(means2d, conics, opacities, colors, trans, w, t_final)
        ctx.pairs, ctx.mat, ctx.compiled, ctx.size, ctx.alpha_max = (
            p,
            mat,
            compiled,
            (width, height),
            alpha_max,
        )
        return image, (1.0 - t_final).to(colors.dtype)

    @staticmethod
    def backward(ctx, d_image, d_alpha):
        means2d, conics, opacities, colors, trans, w, t_final = ctx.saved_tensors
        p, mat, (width, height) = ctx.pairs, ctx.mat, ctx.size
        hw, m, dtype = width * height, colors.shape[0], colors.dtype
        if p.alpha.numel() == 0:
            z = torch.zeros_like
            return z(means2d), z(conics), z(opacities), z(colors), None, None, None, None
        d_image = d_image.contiguous() if d_image is not None else colors.new_zeros(hw, colors.shape[1])
        d_alpha = d_alpha if d_alpha is not None else colors.new_zeros(hw)
        # Colours: a (Gaussians x pixels) product built Gaussian-major (a CSR transpose is slow on CPU).
        w_g = torch.empty_like(w)
        w_g.scatter_(0, p.perm, w)
        crow_g = torch.zeros(m + 1, dtype=p.crow.dtype, device=w.device)
        torch.cumsum(p.per_gauss, 0, out=crow_g[1:])
        d_colors = _csr(crow_g, p.pix_g, w_g, (m, hw)) @ d_image
        # v_i = <dL/dC(pixel), colour(Gaussian)> for every pair, as one sampled dense product.
        v = torch.sparse.sampled_addmm(mat, d_image, colors.T.contiguous(), beta=0.0).values()
        if ctx.compiled:  # dynamo cannot trace a view whose base is a sparse tensor
            v = v.clone()
        cs = torch.cumsum((w * v).double(), 0)
        d_tfin = -(d_alpha.double() * t_final).to(dtype)
        h, hdx, hdx2 = _kernels(ctx.compiled)[2](
            w,
            v,
            p.crow,
            cs,
            trans,
            p.alpha,
            d_tfin,
            p.pix,
            means2d[:, 0].contiguous(),
            p.gauss,
            width,
            ctx.alpha_max,
        )
        # Sum per row first (dy is constant on a row), then per Gaussian; the conic is per Gaussian,
        # so only six weighted sums per Gaussian are needed (bincount: the fastest segment sum here).
        n_rows = p.g_row.numel()
        s0 = torch.bincount(p.row, weights=h, minlength=n_rows)
        s1 = torch.bincount(p.row, weights=hdx, minlength=n_rows)
        s2 = torch.bincount(p.row, weights=hdx2, minlength=n_rows)
        dy = p.dy_row.double()
        dys0 = dy * s0
        S0, S1, S2, D0, D1, DD0 = (
            torch.bincount(p.g_row, weights=x, minlength=m) for x in (s0, s1, s2, dys0, dy * s1, dy * dys0)
        )
        a, b, c = conics.double().unbind(-1)
        d_means = torch.stack([a * S1 + b * D0, b * S1 + c * D0], -1)
        d_conics = torch.stack([-0.5 * S2, -D1, -0.5 * DD0], -1)
        d_opac = S0 / opacities.double()
        grads = d_means.to(dtype), d_conics.to(dtype), d_opac.to(dtype), d_colors
        return *grads, None, None, None, None


def composite(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    colors: Tensor,
    width: int,
    height: int,
    alpha_max: float = 0.999,
    compiled: bool = False,
) -> tuple[Tensor, Tensor]:
    """Composite ``M`` depth-sorted Gaussians into ``(image [H*W, D], alpha [H*W])``.

    ``means2d [M,2]``, ``conics [M,3]``, ``opacities [M]`` (in [0,1]), ``colors [M,D]``;
    ``compiled`` runs the per-pair arithmetic through ``torch.compile`` (first call compiles, ~20 s).
    """
    return Composite.apply(
        means2d, conics, opacities, colors.contiguous(), width, height, alpha_max, compiled
    )
