"""One entry point, ``rasterize()``: gsplat's CUDA kernels on a GPU, facebench's own code on a CPU.

On a CPU either both steps run as C++ kernels with hand-written backwards ("cpp", built on first use
with the system compiler), or the projection is torch autograd and the compositing the pure-torch pair
compositor ("torch"), which needs nothing but torch. "auto" takes gsplat for CUDA tensors, else "cpp"
when it builds, else "torch".
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any, Literal

import torch
from torch import Tensor

from facebench.errors import BackendUnavailable

from ._malloc import tune_malloc
from .composite import composite
from .native_build import require
from .native_composite import native_available, native_composite
from .native_project import native_project
from .project import project
from .sh import eval_sh

log = logging.getLogger(__name__)

Renderer = Literal["auto", "torch", "cpp", "gsplat"]
Chosen = Literal["torch", "cpp", "gsplat"]


def choose_renderer(device: torch.device, renderer: Renderer = "auto") -> Chosen:
    """Pick the renderer for tensors on ``device``; never touches gsplat's CUDA extension on a CPU."""
    if renderer not in ("auto", "torch", "cpp", "gsplat"):
        raise BackendUnavailable(f"unknown renderer {renderer!r}", hint="use auto, torch, cpp or gsplat")
    if renderer == "torch":
        return "torch"
    if renderer == "cpp":
        if device.type != "cpu":
            raise BackendUnavailable(f"the C++ compositor needs CPU tensors, got tensors on {device}")
        require()  # raises BackendUnavailable with the reason
        return "cpp"
    cuda = device.type == "cuda" and torch.cuda.is_available()
    if renderer == "gsplat" and not cuda:
        raise BackendUnavailable(
            f"the gsplat rasterizer needs CUDA tensors, got tensors on {device}"
            + ("" if torch.cuda.is_available() else " and no CUDA device"),
            hint="use renderer='torch' (or 'auto') on a CPU",
        )
    if cuda and renderer == "auto" and importlib.util.find_spec("gsplat") is None:
        log.info("CUDA tensors but gsplat is not installed: using the torch rasterizer")
        return "torch"
    if cuda:
        return "gsplat"
    return "cpp" if device.type == "cpu" and native_available() else "torch"


def rasterize(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    *,
    sh_degree: int | None = None,
    background: Tensor | None = None,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    alpha_max: float = 0.999,
    renderer: Renderer = "auto",
    use_compile: bool = False,
    return_meta: bool = False,
) -> tuple[Tensor, Tensor, Tensor] | tuple[Tensor, Tensor, Tensor, dict[str, Any]]:
    """Render N 3D Gaussians from one pinhole camera, differentiably in every input.

    Args:
        means: ``[N, 3]`` world-space centres.
        quats: ``[N, 4]`` rotations as (w, x, y, z) quaternions, normalised internally.
        scales: ``[N, 3]`` standard deviations along the local axes (already exp'd, not log).
        opacities: ``[N]`` opacities in [0, 1] (already sigmoid'd).
        colors: ``[N, D]`` features of any width D (RGB, 19 label logits, ...), or SH coefficients
            ``[N, K, 3]`` with K >= (sh_degree+1)² when ``sh_degree`` is given; SH colours are
            ``clamp_min(SH(dir) + 0.5, 0)`` with dir from the camera centre to the mean (gsplat's rule).
        viewmat: ``[4, 4]`` world-to-camera matrix, OpenCV axes (x right, y down, z forward).
        K: ``[3, 3]`` intrinsics.
        width, height: image size in pixels.
        sh_degree: SH degree 0..3 to evaluate, or None when ``colors`` are plain features.
        background: ``[D]`` colour added where the image is not opaque, or None (black).
        near_plane, far_plane: camera-space z range; Gaussians outside are culled.
        eps2d: low-pass added to the 2D covariance in px² (0.3, as in 3DGS and gsplat "classic").
        alpha_max: per-Gaussian alpha clamp; 0.999 is gsplat's value (the 3DGS paper's code uses 0.99).
        renderer: "auto" (gsplat for CUDA tensors; on a CPU "cpp" if it builds, else "torch"), "torch",
            "cpp" or "gsplat".
        use_compile: CPU renderers: run the projection (and, for "torch", the per-pair arithmetic)
            through ``torch.compile``
            (needs a C++ compiler; the first call per process compiles for ~20 s).
        return_meta: also return a dict with ``means2d [N, 2]`` (its ``.grad`` is kept, for
            densification), ``radii [N, 2]``, ``depths [N]`` and ``renderer``.

    Returns:
        ``image [D, H, W]``, ``alpha [H, W]`` and ``depth [H, W]``, where depth is the alpha-weighted
        sum of camera-space z (gsplat's "D" mode; divide by alpha for the expected depth), plus the
        meta dict when asked.

    Rules (gsplat "classic"): EWA splatting with a 3.33-sigma extent, alpha = min(alpha_max,
    o·exp(-sigma)), pixels with alpha < 1/255 skipped, front-to-back compositing that stops before
    transmittance falls to 1e-4, pixel centres at +0.5.
    """
    chosen = choose_renderer(means.device, renderer)
    log.debug(
        "rasterize: %d Gaussians, %dx%d, renderer %s (asked %s)", len(means), width, height, chosen, renderer
    )
    if chosen == "gsplat":
        out = _rasterize_gsplat(
            means,
            quats,
            scales,
            opacities,
            colors,
            viewmat,
            K,
            width,
            height,
            sh_degree,
            background,
            near_plane,
            far_plane,
            eps2d,
        )
    else:
        out = _rasterize_torch(
            means,
            quats,
            scales,
            opacities,
            colors,
            viewmat,
            K,
            width,
            height,
            sh_degree,
            background,
            near_plane,
            far_plane,
            eps2d,
            alpha_max,
            use_compile,
            chosen,
        )
    return out if return_meta else out[:3]


_COMPILED_PROJECT = []


def _projector(use_compile: bool):
    """``project``, or its ``torch.compile``d twin (4x faster for 20k Gaussians once compiled)."""
    if not use_compile:
        return project
    if not _COMPILED_PROJECT:
        _COMPILED_PROJECT.append(torch.compile(project, dynamic=True))
    return _COMPILED_PROJECT[0]


def _rasterize_torch(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmat,
    K,
    width,
    height,
    sh_degree,
    background,
    near_plane,
    far_plane,
    eps2d,
    alpha_max,
    use_compile,
    compositor="torch",
):
    tune_malloc()
    project_fn = _projector(use_compile)
    if compositor == "cpp" and not (viewmat.requires_grad or K.requires_grad):
        project_fn = native_project  # hand-written backward; a camera that needs gradients stays on autograd
    proj = project_fn(means, quats, scales, viewmat, K, width, height, eps2d, near_plane, far_plane)
    if proj.means2d.requires_grad:
        proj.means2d.retain_grad()
    with torch.no_grad():
        vis = torch.nonzero((proj.radii > 0).all(-1)).squeeze(1)
        sel = vis[torch.argsort(proj.depths[vis], stable=True)]
    if sh_degree is not None:
        campos = -viewmat[:3, :3].T @ viewmat[:3, 3]
        dirs = torch.index_select(means, 0, sel) - campos
        feats = torch.clamp_min(eval_sh(sh_degree, torch.index_select(colors, 0, sel), dirs) + 0.5, 0.0)
    else:
        feats = torch.index_select(colors, 0, sel)
    d = feats.shape[1]
    take = lambda x: torch.index_select(x, 0, sel)  # noqa: E731  (faster than x[sel], also backward)
    feats = torch.cat([feats, take(proj.depths)[:, None].to(feats.dtype)], 1)
    screen = take(proj.means2d), take(proj.conics), take(opacities), feats, width, height, alpha_max
    if compositor == "cpp":
        img, alpha = native_composite(*screen)
    else:
        img, alpha = composite(*screen, use_compile)
    image, depth = img[:, :d], img[:, d]
    if background is not None:
        image = image + (1.0 - alpha)[:, None] * background
    meta = {"means2d": proj.means2d, "radii": proj.radii, "depths": proj.depths, "renderer": compositor}
    return image.T.reshape(d, height, width), alpha.reshape(height, width), depth.reshape(height, width), meta


def _rasterize_gsplat(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmat,
    K,
    width,
    height,
    sh_degree,
    background,
    near_plane,
    far_plane,
    eps2d,
):
    from gsplat import rasterization  # imported only here: CUDA tensors, CUDA machine

    render, alphas, meta = rasterization(
        means, quats, scales, opacities, colors, viewmat[None], K[None], width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, sh_degree=sh_degree,
        backgrounds=None if background is None else torch.cat([background, background.new_zeros(1)])[None],
        render_mode="RGB+D", packed=False,
    )  # fmt: skip
    render, alphas = render[0], alphas[0, ..., 0]
    image = render[..., :-1].permute(2, 0, 1)
    m2d = meta["means2d"][0] if meta["means2d"].dim() == 3 else meta["means2d"]
    out_meta = {"means2d": m2d, "radii": meta["radii"][0], "depths": meta["depths"][0], "renderer": "gsplat"}
    if m2d.requires_grad:
        m2d.retain_grad()
    return image, alphas, render[..., -1], out_meta
