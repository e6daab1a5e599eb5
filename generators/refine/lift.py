"""Stages 1–2: fit RGB Gaussians, then labels on the shared geometry.

Three ways to put labels on Gaussians (compared in BENCHMARKS.md, default chosen by measurement):
- ``logits``: geometry frozen from the RGB fit; per-Gaussian class logits trained by (weighted)
  cross-entropy against the initial masks. LangSplat's freeze-and-learn-a-feature template.
- ``palette``: the paper's way; per-Gaussian colours fitted to palette-coloured masks, later mapped
  back to classes by clustering.
- ``joint``: one model fitted to RGB and cross-entropy together, geometry free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from facebench.labels import IGNORE, LabelSet
from generators.gaussians.densify import DensifyConfig
from generators.gaussians.fit import FitConfig, FitView, fit
from generators.gaussians.model import GaussianModel, Render
from generators.gaussians.ssim import ssim

Variant = Literal["logits", "palette", "joint"]


@dataclass(frozen=True)
class LiftConfig:
    """How to fit both Gaussian models."""

    variant: Variant = "logits"
    rgb_steps: int = 1500
    label_steps: int = 300
    num_init: int = 4000
    sh_degree: int | None = 0
    alpha_weight: float = 0.5
    view_weighting: bool = True  # trust frontal input views more: the parser was trained on them
    confidence_weighting: bool = True  # weight pixels by the parser's confidence, when it gives one
    # "pixels": a view's weighted CE is divided by its pixel count, so view weights scale whole views;
    # "weights": divided by the weights' sum, which cancels any weight that is constant over a view (the
    # old behaviour: view weighting did nothing). Chosen by benchmarks/tune_generate.py (BENCHMARKS.md).
    ce_normalise: Literal["pixels", "weights"] = "pixels"
    class_balance: float = 0.5  # CE weight ∝ class frequency^-power over the input masks (0 = off); tuned
    densify: DensifyConfig | None = field(default_factory=lambda: DensifyConfig())
    backend: str = "auto"
    device: str = "auto"  # where the fits run; "auto": CUDA (gsplat) when present and the backend allows it
    seed: int = 0
    progress: bool = False


def fit_device(cfg: LiftConfig) -> str:
    """The fits' device. Fitted models come back on the CPU: everything after the fits is CPU code."""
    if cfg.device != "auto":
        return cfg.device
    return "cuda" if torch.cuda.is_available() and cfg.backend in ("auto", "gsplat", "torch") else "cpu"


@dataclass
class LiftInput:
    """One input view: RGB, camera, the parser's mask and (optionally) its per-pixel confidence."""

    image: np.ndarray  # H×W×3 uint8
    viewmat: np.ndarray  # 4×4 world→camera (OpenCV)
    K: np.ndarray
    mask: np.ndarray  # H×W uint8 initial labels
    yaw: float = 0.0
    confidence: np.ndarray | None = None  # H×W float in [0, 1]


def view_weight(yaw: float) -> float:
    """How much to trust a parser on a view: 1 frontal, falling linearly to 0.25 at |yaw| ≥ 90°."""
    a = min(abs(yaw), 90.0)
    return 1.0 - 0.75 * max(0.0, a - 30.0) / 60.0


def _alpha(mask: np.ndarray) -> np.ndarray:
    return ((mask != 0) & (mask != IGNORE)).astype(np.float32)


def fit_rgb(inputs: list[LiftInput], cfg: LiftConfig, checkpoint_dir: str | None = None) -> GaussianModel:
    """Stage 1: RGB Gaussians over a black background; coverage supervised by the parser's foreground."""
    views = []
    for v in inputs:
        a = _alpha(v.mask)
        img = v.image.astype(np.float32) / 255 * a[..., None]
        views.append(FitView(image=img, viewmat=v.viewmat, K=v.K, alpha=a))
    fc = FitConfig(steps=cfg.rgb_steps, seed=cfg.seed, num_init=cfg.num_init, sh_degree=cfg.sh_degree,
                   alpha_weight=cfg.alpha_weight, background=(0.0, 0.0, 0.0), densify=cfg.densify,
                   holdout_every=0, checkpoint_dir=checkpoint_dir, progress=cfg.progress, backend=cfg.backend,
                   device=fit_device(cfg))
    return fit(views, fc).to("cpu")


def class_weights(inputs: list[LiftInput], num_classes: int, power: float) -> np.ndarray | None:
    """Per-class CE weights ∝ frequency^-power over all input masks' foreground, averaging 1 over pixels
    (so the cross-entropy keeps its weight against the RGB loss).

    Small parts (eyes, brows) cover a few pixels of a few views; without this the fit barely sees them."""
    if power <= 0:
        return None
    counts = np.zeros(num_classes, dtype=np.float64)
    for v in inputs:
        ids = v.mask[(v.mask != 0) & (v.mask != IGNORE)]
        counts += np.bincount(ids, minlength=num_classes)[:num_classes]
    present = counts > 0
    freq = counts[present] / counts[present].sum()
    w = np.ones(num_classes)
    w[present] = freq**-power / (freq * freq**-power).sum()
    return w.astype(np.float32)


def _ce_weights(v: LiftInput, cfg: LiftConfig, per_class: np.ndarray | None = None) -> torch.Tensor:
    w = torch.ones(v.mask.shape, dtype=torch.float32)
    if cfg.confidence_weighting and v.confidence is not None:
        w = w * torch.from_numpy(v.confidence.astype(np.float32))
    if cfg.view_weighting:
        w = w * view_weight(v.yaw)
    if per_class is not None:
        ids = np.where(v.mask == IGNORE, 0, v.mask)
        w = w * torch.from_numpy(per_class[ids])
    return w


def _weighted_ce(
    features: torch.Tensor, alpha: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
    normalise: str = "weights",
) -> torch.Tensor:
    """Cross-entropy of rendered logits against labels; rendered logits are divided by alpha so
    a pixel's class scores don't shrink at the head's soft silhouette."""
    logits = features / alpha.clamp_min(1e-3)[None]
    valid = (labels != IGNORE) & (labels != 0)
    if not valid.any():
        return features.sum() * 0
    ce = torch.nn.functional.cross_entropy(logits[:, valid].T, labels[valid].long(), reduction="none")
    w = weights[valid]
    denominator = w.sum().clamp_min(1e-6) if normalise == "weights" else w.new_tensor(float(w.numel()))
    return (ce * w).sum() / denominator


def fit_labels(rgb: GaussianModel, inputs: list[LiftInput], labels: LabelSet, cfg: LiftConfig) -> GaussianModel:
    """Stage 2 for ``logits`` and ``palette``: geometry and colours frozen, only per-Gaussian features learn."""
    dev = fit_device(cfg)
    if cfg.variant == "palette":
        pal = torch.from_numpy(labels.palette_array.astype(np.float32) / 255).to(dev)
        init = rgb.with_features(3, names=["r", "g", "b"], fill=0.0)
    else:
        pal = None
        init = rgb.with_features(labels.num_classes, names=list(labels.names), fill=0.0)
    per_class = class_weights(inputs, labels.num_classes, cfg.class_balance)
    targets = [(torch.from_numpy(v.mask.astype(np.int64)).to(dev), _ce_weights(v, cfg, per_class).to(dev))
               for v in inputs]
    views = [FitView(image=None, viewmat=v.viewmat, K=v.K, labels=v.mask, extra={"i": i})
             for i, v in enumerate(inputs)]

    def loss(r: Render, view: FitView, step: int) -> torch.Tensor:
        lab, w = targets[view.extra["i"]]
        if pal is None:
            return _weighted_ce(r.features, r.alpha, lab, w, cfg.ce_normalise)
        fg = (lab != 0) & (lab != IGNORE)
        target = pal[lab.clamp_max(labels.num_classes - 1)].permute(2, 0, 1)
        err = (r.features - target * r.alpha[None]).abs().sum(0)
        return (err * w * fg).sum() / (w * fg).sum().clamp_min(1e-6)

    fc = FitConfig(steps=cfg.label_steps, seed=cfg.seed + 1, target="features", trainable=("features",),
                   lr_features=0.05 if pal is None else 0.01, densify=None, holdout_every=0,
                   progress=cfg.progress, backend=cfg.backend, device=dev)
    return fit(views, fc, init=init, loss_fn=loss).to("cpu")


def fit_joint(inputs: list[LiftInput], labels: LabelSet, cfg: LiftConfig, ssim_weight: float = 0.2) -> GaussianModel:
    """Variant ``joint``: one model, RGB (L1 + D-SSIM) + alpha + weighted cross-entropy, every parameter free."""
    per_class = class_weights(inputs, labels.num_classes, cfg.class_balance)
    dev = fit_device(cfg)
    targets = []
    views = []
    for i, v in enumerate(inputs):
        a = _alpha(v.mask)
        img = v.image.astype(np.float32) / 255 * a[..., None]
        targets.append(tuple(t.to(dev) for t in (
            torch.from_numpy(img).permute(2, 0, 1).contiguous(), torch.from_numpy(a),
            torch.from_numpy(v.mask.astype(np.int64)), _ce_weights(v, cfg, per_class))))
        views.append(FitView(image=img, viewmat=v.viewmat, K=v.K, alpha=a, extra={"i": i}))

    def loss(r: Render, view: FitView, step: int) -> torch.Tensor:
        img, a, lab, w = targets[view.extra["i"]]
        rgb = (1 - ssim_weight) * (r.rgb - img).abs().mean() + ssim_weight * (1 - ssim(r.rgb, img))
        return rgb + cfg.alpha_weight * (r.alpha - a).abs().mean() + _weighted_ce(r.features, r.alpha, lab, w,
                                                                                     cfg.ce_normalise)

    fc = FitConfig(steps=cfg.rgb_steps, seed=cfg.seed, num_init=cfg.num_init, sh_degree=cfg.sh_degree,
                   num_features=labels.num_classes, target="both", background=(0.0, 0.0, 0.0),
                   densify=cfg.densify, holdout_every=0, progress=cfg.progress, backend=cfg.backend,
                   device=dev)
    return fit(views, fc, loss_fn=loss).to("cpu")
