"""Stages 1–2: fit RGB Gaussians, then labels on the shared geometry (the fits every variant uses).

Three ways to put labels on Gaussians are registered in ``variants.py`` (compared in BENCHMARKS.md):
- ``logits``: geometry frozen from the RGB fit; per-Gaussian class logits trained by (weighted)
  cross-entropy against the initial masks. LangSplat's freeze-and-learn-a-feature template.
- ``palette``: the paper's way; per-Gaussian colours fitted to palette-coloured masks, later mapped
  back to classes by clustering.
- ``joint``: one model fitted to RGB and cross-entropy together, geometry free.
- ``votes``: geometry frozen from the RGB fit; per-Gaussian class probabilities in closed form, each labelled
  pixel voting for the Gaussians that made it (no label optimisation at all).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from facebench.labels import IGNORE, LabelSet
from generators.gaussians.fit import FitConfig, FitView, fit
from generators.gaussians.model import GaussianModel, Render
from generators.gaussians.ssim import ssim
from generators.refine.config import LiftConfig
from generators.refine.inputs import SubjectView


def fit_device(cfg: LiftConfig) -> str:
    """The fits' device. Fitted models come back on the CPU: everything after the fits is CPU code."""
    if cfg.device != "auto":
        return cfg.device
    return "cuda" if torch.cuda.is_available() and cfg.renderer in ("auto", "gsplat", "torch") else "cpu"


def _fit_config(cfg: LiftConfig, seed: int, **stage) -> FitConfig:
    """The one place a LiftConfig becomes the engine's FitConfig; each stage adds its own settings."""
    return FitConfig(seed=seed, holdout_every=0, progress=cfg.progress, renderer=cfg.renderer,
                     device=fit_device(cfg), **stage)


def _geometry(cfg: LiftConfig) -> dict:
    """What a fit that creates the Gaussians needs (stage 1 and ``joint``): initialisation and growth."""
    return {"num_init": cfg.num_init, "sh_degree": cfg.sh_degree, "alpha_weight": cfg.alpha_weight,
            "background": (0.0, 0.0, 0.0), "densify": cfg.densify}


def view_weight(yaw: float) -> float:
    """How much to trust a parser on a view: 1 frontal, falling linearly to 0.25 at |yaw| ≥ 90°."""
    a = min(abs(yaw), 90.0)
    return 1.0 - 0.75 * max(0.0, a - 30.0) / 60.0


def _alpha(mask: np.ndarray) -> np.ndarray:
    return ((mask != 0) & (mask != IGNORE)).astype(np.float32)


def _rgb_view(v: SubjectView, **extra) -> FitView:
    """The RGB target of a view: its image over black outside the parser's foreground, and that coverage."""
    a = _alpha(v.mask)
    img = v.image.astype(np.float32) / 255 * a[..., None]
    return FitView(image=img, viewmat=v.camera.world_to_camera, K=v.camera.K, alpha=a, **extra)


def fit_rgb(views: list[SubjectView], cfg: LiftConfig, seed: int, checkpoint_dir: str | None = None) -> GaussianModel:
    """Stage 1: RGB Gaussians over a black background; coverage supervised by the parser's foreground."""
    fc = _fit_config(cfg, seed, steps=cfg.rgb_steps, checkpoint_dir=checkpoint_dir, **_geometry(cfg))
    return fit([_rgb_view(v) for v in views], fc).to("cpu")


def class_weights(views: list[SubjectView], num_classes: int, power: float) -> np.ndarray | None:
    """Per-class CE weights ∝ frequency^-power over all input masks' foreground, averaging 1 over pixels
    (so the cross-entropy keeps its weight against the RGB loss).

    Small parts (eyes, brows) cover a few pixels of a few views; without this the fit barely sees them."""
    if power <= 0:
        return None
    counts = np.zeros(num_classes, dtype=np.float64)
    for v in views:
        ids = v.mask[(v.mask != 0) & (v.mask != IGNORE)]
        counts += np.bincount(ids, minlength=num_classes)[:num_classes]
    present = counts > 0
    freq = counts[present] / counts[present].sum()
    w = np.ones(num_classes)
    w[present] = freq**-power / (freq * freq**-power).sum()
    return w.astype(np.float32)


def _ce_weights(v: SubjectView, cfg: LiftConfig, per_class: np.ndarray | None = None) -> torch.Tensor:
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


def _label_targets(views: list[SubjectView], labels: LabelSet, cfg: LiftConfig, device: str) -> list[FitView]:
    """Each view's label target for a custom loss: ids and per-pixel CE weights as tensors in ``extra``."""
    per_class = class_weights(views, labels.num_classes, cfg.class_balance)
    return [FitView(image=None, viewmat=v.camera.world_to_camera, K=v.camera.K, labels=v.mask,
                    extra={"ids": torch.from_numpy(v.mask.astype(np.int64)).to(device),
                           "weights": _ce_weights(v, cfg, per_class).to(device)})
            for v in views]


def fit_labels(rgb: GaussianModel, views: list[SubjectView], labels: LabelSet, cfg: LiftConfig, seed: int,
               palette: bool = False) -> GaussianModel:
    """Stage 2: geometry and colours frozen, only per-Gaussian features learn: class logits by weighted
    cross-entropy, or (``palette``) the classes' palette colours by L1."""
    dev = fit_device(cfg)
    if palette:
        pal = torch.from_numpy(labels.palette_array.astype(np.float32) / 255).to(dev)
        init = rgb.with_features(3, names=["r", "g", "b"], fill=0.0)
    else:
        pal = None
        init = rgb.with_features(labels.num_classes, names=list(labels.names), fill=0.0)

    def loss(r: Render, view: FitView, step: int) -> torch.Tensor:
        lab, w = view.extra["ids"], view.extra["weights"]
        if pal is None:
            return _weighted_ce(r.features, r.alpha, lab, w, cfg.ce_normalise)
        fg = (lab != 0) & (lab != IGNORE)
        target = pal[lab.clamp_max(labels.num_classes - 1)].permute(2, 0, 1)
        err = (r.features - target * r.alpha[None]).abs().sum(0)
        return (err * w * fg).sum() / (w * fg).sum().clamp_min(1e-6)

    fc = _fit_config(cfg, seed + 1, steps=cfg.label_steps, target="features", trainable=("features",),
                     lr_features=0.05 if pal is None else 0.01, densify=None)
    return fit(_label_targets(views, labels, cfg, dev), fc, init=init, loss_fn=loss).to("cpu")


def fit_joint(views: list[SubjectView], labels: LabelSet, cfg: LiftConfig, seed: int,
              ssim_weight: float = 0.2) -> GaussianModel:
    """Variant ``joint``: one model, RGB (L1 + D-SSIM) + alpha + weighted cross-entropy, every parameter free."""
    per_class = class_weights(views, labels.num_classes, cfg.class_balance)
    dev = fit_device(cfg)
    targets = []
    for v in views:
        t = _rgb_view(v)
        t.extra = {"rgb": torch.from_numpy(t.image).permute(2, 0, 1).contiguous().to(dev),
                   "alpha": torch.from_numpy(t.alpha).to(dev),
                   "ids": torch.from_numpy(v.mask.astype(np.int64)).to(dev),
                   "weights": _ce_weights(v, cfg, per_class).to(dev)}
        targets.append(t)

    def loss(r: Render, view: FitView, step: int) -> torch.Tensor:
        img, a, lab, w = (view.extra[k] for k in ("rgb", "alpha", "ids", "weights"))
        rgb = (1 - ssim_weight) * (r.rgb - img).abs().mean() + ssim_weight * (1 - ssim(r.rgb, img))
        return rgb + cfg.alpha_weight * (r.alpha - a).abs().mean() + _weighted_ce(r.features, r.alpha, lab, w,
                                                                                     cfg.ce_normalise)

    fc = _fit_config(cfg, seed, steps=cfg.rgb_steps, num_features=labels.num_classes, target="both",
                     **_geometry(cfg))
    return fit(targets, fc, loss_fn=loss).to("cpu")


def vote_labels(rgb: GaussianModel, views: list[SubjectView], labels: LabelSet, cfg: LiftConfig,
                prior: float = 1e-3) -> GaussianModel:
    """Variant ``votes``: per-Gaussian class log-probabilities in closed form, on the frozen RGB geometry.

    Each labelled pixel votes for its class in every Gaussian that made it, in proportion to that Gaussian's
    blending weight there (T·α), times the pixel's CE weight (view, class balance, confidence). A rendered
    feature is linear in the per-Gaussian features, so the gradient of Σ_p w_p ⟨onehot(label_p), f(p)⟩ with
    respect to them is exactly those votes: one render and one backward per view, no optimisation, no
    learning rate. ``prior`` (a fraction of the median Gaussian's vote mass) keeps unseen Gaussians uniform."""
    dev = fit_device(cfg)
    c = labels.num_classes
    per_class = class_weights(views, c, cfg.class_balance)
    model = rgb.to(dev).with_features(c, names=list(labels.names), fill=0.0)
    feats = model.features.requires_grad_(True)
    for v in views:
        ids = torch.from_numpy(v.mask.astype(np.int64)).to(dev)
        valid = (ids != 0) & (ids != IGNORE)
        w = _ce_weights(v, cfg, per_class).to(dev) * valid
        target = torch.nn.functional.one_hot(torch.where(valid, ids, 0), c).permute(2, 0, 1).float() * w[None]
        r = model.render(torch.from_numpy(v.camera.world_to_camera).float(), torch.from_numpy(v.camera.K).float(),
                         v.camera.width, v.camera.height, what="features")
        (r.features * target).sum().backward()
    votes = feats.grad.detach().clamp_min(0).to("cpu")
    mass = votes.sum(1, keepdim=True)
    eps = prior * float(mass[mass > 0].median()) if bool((mass > 0).any()) else 1.0
    logp = torch.log((votes + eps) / (mass + c * eps))
    return dataclasses.replace(model.to("cpu").detach(), features=logp)
