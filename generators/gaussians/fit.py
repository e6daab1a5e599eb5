"""``fit(views, config) -> GaussianModel``: one readable training loop, top to bottom (nanoGPT style).

RGB fitting (L1 + D-SSIM, optional alpha loss) and feature fitting (cross-entropy on rendered label
logits, or MSE/L1 on rendered feature maps) share the loop; ``trainable`` freezes the rest, which is
how stage 2 of dual 3DGS fits labels on the geometry of the RGB fit. Deterministic for a seed,
resumable from atomic checkpoints, and interruptible (Ctrl-C writes a checkpoint first).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from facebench.errors import CheckpointError, InvalidConfig

from .cameras import camera_center
from .densify import Densifier, scene_scale_from_cameras
from .densify_config import DensifyConfig
from .init import carve, knn_scale, look_center, mean_colors, near_surface, sample_ball, visible_radius
from .model import PARAM_NAMES, GaussianModel, Render, read_safetensors, write_safetensors_atomic
from .rasterize import Renderer
from .ssim import ssim

log = logging.getLogger(__name__)
CKPT_FORMAT = "facebench.gaussians.fit"
IGNORE = 255


@dataclass
class FitView:
    """One calibrated view to fit.

    ``image``: colours in [0, 1] (uint8 is scaled), H×W×C or C×H×W (see ``layout``); may be None when
    only labels or features are fitted. ``viewmat [4,4]`` world-to-camera (OpenCV), ``K [3,3]``.
    ``alpha``: H×W coverage in [0, 1] (used for hull init and the alpha loss). ``labels``: H×W class
    ids, 255 = ignore (cross-entropy target). ``features``: F×H×W float targets (MSE/L1).
    ``extra``: anything a custom loss needs.
    """

    image: Tensor | np.ndarray | None
    viewmat: Tensor | np.ndarray
    K: Tensor | np.ndarray
    alpha: Tensor | np.ndarray | None = None
    labels: Tensor | np.ndarray | None = None
    features: Tensor | np.ndarray | None = None
    layout: Literal["auto", "hwc", "chw"] = "auto"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitConfig:
    """Everything ``fit`` needs, with defaults for a few thousand steps at 128² on a CPU."""

    steps: int = 2000
    seed: int = 0
    num_init: int = 5000  # Gaussians at initialisation
    init: Literal["auto", "sphere", "hull"] = "auto"  # auto: hull when every training view has alpha
    init_radius: float | None = None  # default: the largest sphere about the rig's focus all views see
    sh_degree: int | None = 0  # None: plain RGB colours
    sh_degree_interval: int = 1000  # raise the active SH degree every this many steps (3DGS)
    num_features: int = 0  # feature channels created at initialisation
    target: Literal["rgb", "features", "both"] = "rgb"
    feature_loss: Literal["ce", "mse", "l1"] = "ce"
    feature_weight: float = 1.0
    trainable: tuple[str, ...] = PARAM_NAMES
    # Learning rates: 3DGS's (1.6e-4, 1.6e-6, 5e-3, 1e-3, 5e-2, 2.5e-3) raised for fits of a few thousand
    # steps at low resolution; on synthetic scenes these reach the same PSNR in roughly a third of the steps.
    lr_means: float = 1e-3  # x scene scale, decayed exponentially to lr_means_final x scene scale
    lr_means_final: float = 1e-5
    lr_scales: float = 2e-2
    lr_quats: float = 5e-3
    lr_opacity: float = 5e-2
    lr_colors: float = 2e-2  # SH coefficients (all degrees), or RGB scaled by SH_C0
    lr_features: float = 2e-2
    ssim_weight: float = 0.2  # loss = (1-w) L1 + w (1 - SSIM)   (3DGS: 0.2)
    alpha_weight: float = 0.0  # L1 between rendered and given alpha
    background: tuple[float, float, float] | None = None  # RGB behind the Gaussians (None: black)
    densify: DensifyConfig | None = field(default_factory=DensifyConfig)  # None: fixed set of Gaussians
    holdout_every: int = 8  # without eval_views, every n-th view is held out (0: none)
    eval_every: int = 0  # held-out evaluation interval (0: at the end only)
    max_seconds: float | None = None  # stop early once this much wall time has passed in this call
    checkpoint_dir: str | None = None
    checkpoint_every: int = 500
    resume: bool = True  # continue from checkpoint_dir's checkpoint when there is one
    progress: bool = True
    device: str = "cpu"
    renderer: Renderer = "auto"
    use_compile: bool = False  # torch.compile the rasterizer's per-pair kernels (~20 s once, then faster)
    num_threads: int | None = None  # torch threads during the fit (restored after); 1 is best on a busy box


@dataclass
class _Target:
    view: FitView
    image: Tensor | None  # [C, H, W]
    alpha: Tensor | None  # [H, W]
    labels: Tensor | None  # [H, W] int64
    features: Tensor | None  # [F, H, W]
    viewmat: Tensor
    K: Tensor
    height: int
    width: int


LossFn = Callable[[Render, FitView, int], Tensor]


def fit(
    views: Sequence[FitView],
    config: FitConfig | None = None,
    *,
    eval_views: Sequence[FitView] | None = None,
    init: GaussianModel | None = None,
    loss_fn: LossFn | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> GaussianModel:
    """Fit Gaussians to calibrated views and return the model (``model.meta["fit"]`` holds the scores).

    ``init`` starts from an existing model (e.g. an RGB fit ``.with_features(19)``); ``loss_fn(render,
    view, step)`` replaces the built-in loss; ``callback(step, stats)`` runs after every step.
    """
    cfg = config or FitConfig()
    _check(cfg)
    if cfg.num_threads:
        previous = torch.get_num_threads()
        torch.set_num_threads(cfg.num_threads)
        try:
            return fit(
                views,
                dataclasses.replace(cfg, num_threads=None),
                eval_views=eval_views,
                init=init,
                loss_fn=loss_fn,
                callback=callback,
            )
        finally:
            torch.set_num_threads(previous)
    dev = torch.device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    if eval_views is None and cfg.holdout_every and len(views) > 1:
        eval_views = [v for i, v in enumerate(views) if i % cfg.holdout_every == 0]
        views = [v for i, v in enumerate(views) if i % cfg.holdout_every != 0]
    train = [_prepare(v, dev) for v in views]
    held = [_prepare(v, dev) for v in (eval_views or [])]
    if not train:
        raise InvalidConfig("fit needs at least one training view")
    scene_scale = scene_scale_from_cameras(torch.stack([camera_center(t.viewmat.cpu()) for t in train]))
    model = init.detach().to(dev) if init is not None else _initialize(train, cfg, gen).to(dev)
    if cfg.target != "rgb" and model.features is None:
        raise InvalidConfig("fitting features needs feature channels", hint="set num_features or pass init")
    params = {k: v.detach().clone() for k, v in model.params().items()}
    lrs = _learning_rates(cfg, scene_scale, model.sh_degree)
    groups = []
    for name in cfg.trainable:
        if name in params:
            params[name] = torch.nn.Parameter(params[name])
            groups.append({"params": [params[name]], "lr": lrs[name], "name": name})
    optimizer = torch.optim.Adam(groups, eps=1e-15)
    densify_on = cfg.densify is not None and "means" in cfg.trainable
    densifier = Densifier(cfg.densify or DensifyConfig(), scene_scale, len(model), seed=cfg.seed)
    bg = None if cfg.background is None else torch.tensor(cfg.background, dtype=torch.float32, device=dev)
    state = {"step": 0, "order": torch.randperm(len(train), generator=gen), "history": []}
    ckpt = Path(cfg.checkpoint_dir) / "fit.safetensors" if cfg.checkpoint_dir else None
    if ckpt is not None and cfg.resume and ckpt.exists():
        _load_checkpoint(ckpt, params, optimizer, densifier, gen, state, model)
        log.info("resumed from %s at step %d", ckpt, state["step"])

    def as_model() -> GaussianModel:
        return dataclasses.replace(model, **params)

    decay = (cfg.lr_means_final / cfg.lr_means) ** (1.0 / max(1, cfg.steps))
    progress = _Progress(cfg.progress, cfg.steps, state["step"])
    t0 = time.perf_counter()
    step = state["step"]
    try:
        for step in range(state["step"], cfg.steps):
            if step % len(train) == 0 and step > 0:
                state["order"] = torch.randperm(len(train), generator=gen)
            t = train[int(state["order"][step % len(train)])]
            deg = None if model.sh_degree is None else min(model.sh_degree, step // cfg.sh_degree_interval)
            what = {"rgb": "rgb", "features": "features", "both": "both"}[cfg.target]
            r = as_model().render(
                t.viewmat,
                t.K,
                t.width,
                t.height,
                what=what,
                background=bg,
                sh_degree=deg,
                renderer=cfg.renderer,
                use_compile=cfg.use_compile,
                return_meta=True,
            )
            loss = loss_fn(r, t.view, step) if loss_fn is not None else default_loss(r, t, cfg)
            loss.backward()
            if densify_on:
                densifier.accumulate(r.meta["means2d"], r.meta["radii"], t.width, t.height)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            for g in optimizer.param_groups:
                if g["name"] == "means":
                    g["lr"] = lrs["means"] * decay ** (step + 1)
            if densify_on:
                densifier.step(step + 1, params, optimizer)
            state["step"] = step + 1
            stats = {"loss": float(loss.detach()), "gaussians": float(params["means"].shape[0])}
            if cfg.eval_every and held and (step + 1) % cfg.eval_every == 0:
                stats.update(evaluate(as_model(), held, cfg))
                state["history"].append({"step": step + 1, **stats})
            progress.update(stats)
            if callback is not None:
                callback(step, stats)
            if ckpt is not None and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
                _save_checkpoint(ckpt, params, optimizer, densifier, gen, state, model)
            if cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds:
                log.info("time budget of %.0f s reached at step %d", cfg.max_seconds, step + 1)
                break
    except KeyboardInterrupt:
        if ckpt is not None:
            _save_checkpoint(ckpt, params, optimizer, densifier, gen, state, model)
            log.warning("interrupted at step %d; checkpoint written to %s", state["step"], ckpt)
        raise
    finally:
        progress.close()
    if ckpt is not None:
        _save_checkpoint(ckpt, params, optimizer, densifier, gen, state, model)
    result = as_model().detach()
    scores = evaluate(result, held, cfg) if held else {}
    result.meta["fit"] = {
        "steps": state["step"],
        "seconds_this_run": round(time.perf_counter() - t0, 2),
        "num_train_views": len(train),
        "num_eval_views": len(held),
        **scores,
        "history": state["history"],
    }
    return result


def default_loss(r: Render, t: _Target, cfg: FitConfig) -> Tensor:
    """(1-w)·L1 + w·(1-SSIM) on RGB, the feature loss, and the optional alpha L1."""
    loss = r.alpha.new_zeros(())
    if r.rgb is not None and t.image is not None:
        img = t.image[:3]
        loss = loss + (1 - cfg.ssim_weight) * (r.rgb - img).abs().mean()
        if cfg.ssim_weight:
            loss = loss + cfg.ssim_weight * (1 - ssim(r.rgb, img))
    if r.features is not None:
        if cfg.feature_loss == "ce":
            if t.labels is None:
                raise InvalidConfig("feature_loss='ce' needs FitView.labels")
            loss = loss + cfg.feature_weight * F.cross_entropy(
                r.features[None], t.labels[None], ignore_index=IGNORE
            )
        else:
            if t.features is None:
                raise InvalidConfig(f"feature_loss={cfg.feature_loss!r} needs FitView.features")
            diff = r.features - t.features
            loss = loss + cfg.feature_weight * (diff.abs() if cfg.feature_loss == "l1" else diff**2).mean()
    if cfg.alpha_weight and t.alpha is not None:
        loss = loss + cfg.alpha_weight * (r.alpha - t.alpha).abs().mean()
    return loss


@torch.no_grad()
def evaluate(model: GaussianModel, targets: Sequence[_Target], cfg: FitConfig) -> dict[str, float]:
    """Mean held-out PSNR (dB) of RGB, and label accuracy when labels are fitted."""
    bg = None if cfg.background is None else torch.tensor(cfg.background, device=model.means.device)
    psnrs, correct, total = [], 0, 0
    for t in targets:
        what = "rgb" if cfg.target == "rgb" or model.features is None else "both"
        if cfg.target == "features":
            what = "features"
        r = model.render(t.viewmat, t.K, t.width, t.height, what=what, background=bg, renderer=cfg.renderer)
        if r.rgb is not None and t.image is not None:
            mse = float(((r.rgb.clamp(0, 1) - t.image[:3]) ** 2).mean())
            psnrs.append(10 * math.log10(1.0 / max(mse, 1e-12)))
        if r.features is not None and t.labels is not None:
            valid = t.labels != IGNORE
            correct += int((r.features.argmax(0) == t.labels)[valid].sum())
            total += int(valid.sum())
    out = {}
    if psnrs:
        out["heldout_psnr"] = float(np.mean(psnrs))
    if total:
        out["heldout_label_accuracy"] = correct / total
    return out


# ---- preparation ----------------------------------------------------------------------------------


def _check(cfg: FitConfig) -> None:
    bad = [n for n in cfg.trainable if n not in PARAM_NAMES]
    if bad:
        raise InvalidConfig(f"unknown trainable parameters {bad}", hint=f"choose from {PARAM_NAMES}")
    if cfg.steps < 0 or cfg.num_init < 1:
        raise InvalidConfig("steps must be >= 0 and num_init >= 1")
    if cfg.sh_degree is not None and not 0 <= cfg.sh_degree <= 3:
        raise InvalidConfig(f"sh_degree must be 0..3 or None, got {cfg.sh_degree}")


def _as_tensor(x, dtype=torch.float32) -> Tensor | None:
    if x is None:
        return None
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, Tensor) else x
    return t.to(dtype) if dtype is not None else t


def _prepare(v: FitView, dev: torch.device) -> _Target:
    img = _as_tensor(v.image, dtype=None)
    if img is not None:
        if img.dim() == 2:
            img = img[None]
        layout = v.layout
        if layout == "auto":
            if img.shape[-1] <= 4 < img.shape[0]:
                layout = "hwc"
            elif img.shape[0] <= 4 < img.shape[-1]:
                layout = "chw"
            else:
                raise InvalidConfig(
                    f"cannot tell the channel axis of an image of shape {tuple(img.shape)}",
                    hint="set FitView.layout to 'hwc' or 'chw'",
                )
        if layout == "hwc":
            img = img.permute(2, 0, 1)
        img = img.float() / 255.0 if img.dtype == torch.uint8 else img.float()
        img = img.contiguous()
    alpha = _as_tensor(v.alpha, dtype=None)
    if alpha is not None:
        alpha = alpha.float() / 255.0 if alpha.dtype == torch.uint8 else alpha.float()
        alpha = alpha.squeeze()
    labels = _as_tensor(v.labels, dtype=torch.int64)
    feats = _as_tensor(v.features)
    shapes = [x.shape[-2:] for x in (img, alpha, labels, feats) if x is not None]
    if not shapes:
        raise InvalidConfig("a FitView needs an image, alpha, labels or features")
    if any(s != shapes[0] for s in shapes):
        raise InvalidConfig(f"image/alpha/labels/features sizes differ: {[tuple(s) for s in shapes]}")
    h, w = shapes[0]
    mv = lambda x: None if x is None else x.to(dev)  # noqa: E731
    return _Target(
        v,
        mv(img),
        mv(alpha),
        mv(labels),
        mv(feats),
        _as_tensor(v.viewmat).to(dev),
        _as_tensor(v.K).to(dev),
        int(h),
        int(w),
    )


def _initialize(train: list[_Target], cfg: FitConfig, gen: torch.Generator) -> GaussianModel:
    vms = [t.viewmat.cpu() for t in train]
    ks = [t.K.cpu() for t in train]
    center = look_center(vms)
    radius = cfg.init_radius or visible_radius(center, vms, ks, [(t.height, t.width) for t in train])
    mode = cfg.init
    if mode == "auto":
        mode = "hull" if all(t.alpha is not None for t in train) else "sphere"
    if mode == "hull":
        alphas = [t.alpha.cpu() for t in train]
        if any(a is None for a in alphas):
            raise InvalidConfig("init='hull' needs alpha on every training view")
        found, tries = [], 0
        while sum(len(p) for p in found) < cfg.num_init and tries < 40:
            cand = sample_ball(max(8 * cfg.num_init, 20_000), center, radius, gen)
            cand = cand[carve(cand, vms, ks, alphas)]
            found.append(cand[near_surface(cand, vms, ks, alphas, 0.05 * radius)])
            tries += 1
        pts = torch.cat(found)[: cfg.num_init]
        if len(pts) < max(16, cfg.num_init // 10):
            log.warning("visual hull is nearly empty (%d points); falling back to a sphere", len(pts))
            pts = sample_ball(cfg.num_init, center, radius, gen)
    else:
        pts = sample_ball(cfg.num_init, center, radius, gen)
    imgs = [t.image.cpu() for t in train if t.image is not None and t.image.shape[0] >= 3]
    rgb = mean_colors(pts, vms, ks, imgs) if len(imgs) == len(train) else None
    log.info("initialised %d Gaussians (%s, radius %.3f)", len(pts), mode, radius)
    return GaussianModel.from_points(
        pts, rgb, knn_scale(pts), opacity=0.1, sh_degree=cfg.sh_degree, num_features=cfg.num_features
    )


def _learning_rates(cfg: FitConfig, scene_scale: float, sh_degree: int | None) -> dict[str, float]:
    return {
        "means": cfg.lr_means * scene_scale,
        "log_scales": cfg.lr_scales,
        "quats": cfg.lr_quats,
        "opacity_logits": cfg.lr_opacity,
        "colors": cfg.lr_colors if sh_degree is not None else cfg.lr_colors * 0.28209479177387814,
        "features": cfg.lr_features,
    }


# ---- checkpoints ----------------------------------------------------------------------------------


def _save_checkpoint(path, params, optimizer, densifier, gen, state, model: GaussianModel) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in params.items()}
    adam_steps = {}
    for g in optimizer.param_groups:
        st = optimizer.state.get(g["params"][0], {})
        if st:
            tensors[f"adam.{g['name']}.exp_avg"] = st["exp_avg"].cpu().contiguous()
            tensors[f"adam.{g['name']}.exp_avg_sq"] = st["exp_avg_sq"].cpu().contiguous()
            adam_steps[g["name"]] = float(st["step"])
    for k, v in densifier.state().items():
        tensors[f"densify.{k}"] = v.contiguous()
    tensors["rng"] = gen.get_state()
    tensors["order"] = state["order"]
    header = {
        "format": CKPT_FORMAT,
        "step": state["step"],
        "adam_steps": adam_steps,
        "lrs": {g["name"]: g["lr"] for g in optimizer.param_groups},
        "model": model.header(),
        "history": state["history"],
    }
    write_safetensors_atomic(Path(path), tensors, {CKPT_FORMAT: json.dumps(header)})


def _load_checkpoint(path, params, optimizer, densifier, gen, state, model: GaussianModel) -> None:
    tensors, header = read_safetensors(path, CKPT_FORMAT)
    if header.get("format") != CKPT_FORMAT:
        raise CheckpointError("not a facebench fit checkpoint", path)
    if header["model"].get("sh_degree") != model.sh_degree:
        raise CheckpointError(
            "checkpoint has a different SH degree than this fit",
            path,
            hint="delete it or use another checkpoint_dir",
        )
    dev = next(iter(params.values())).device
    for name in list(params):
        params[name] = tensors[f"model.{name}"].to(dev)
    for g in optimizer.param_groups:
        name = g["name"]
        p = torch.nn.Parameter(params[name])
        params[name] = p
        g["params"][0] = p
        g["lr"] = header["lrs"][name]
        if f"adam.{name}.exp_avg" in tensors:
            optimizer.state[p] = {
                "step": torch.tensor(header["adam_steps"][name]),
                "exp_avg": tensors[f"adam.{name}.exp_avg"].to(dev),
                "exp_avg_sq": tensors[f"adam.{name}.exp_avg_sq"].to(dev),
            }
    densifier.load_state({"grad_accum": tensors["densify.grad_accum"], "count": tensors["densify.count"]})
    gen.set_state(tensors["rng"])
    state.update(step=header["step"], order=tensors["order"], history=header["history"])


class _Progress:
    """A rich progress bar that is a no-op when disabled (tests, logs)."""

    def __init__(self, enabled: bool, total: int, done: int):
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("fit"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self.task = self.bar.add_task("fit", total=total, completed=done, info="")
            self.bar.start()

    def update(self, stats: dict[str, float]) -> None:
        if self.bar is not None:
            info = " ".join(f"{k}={v:.4g}" for k, v in stats.items())
            self.bar.update(self.task, advance=1, info=info)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
