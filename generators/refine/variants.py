"""Label-lifting variants: how a parser's 2D masks become labels on Gaussians, and how they come back as ids.

Each variant is a small frozen dataclass (its own parameters, documented once), in the spirit of gsplat's
densification strategies, with two methods:

- ``lift(views, labels, lift, cleanup, seed, head_to_world, checkpoint_dir) -> Lifted``: fit the Gaussians
  (``lift``: the shared fit settings, ``cleanup``: whether the 3D side step runs);
- ``render(lifted, camera, labels) -> (rgb H×W×3 uint8, ids H×W uint8, confidence H×W in [0, 1])``.

Adding one is one class plus one line: subclass ``LabelLifting``, give it a ``name``, decorate it with
``@register``. ``facebench generate --variant`` takes its choices from ``VARIANTS``. This module stays free
of torch at import time (the CLI reads the registry for ``--help``); the work happens in ``lift.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from facebench.errors import InvalidConfig
from generators.refine.config import CleanupConfig, LiftConfig

if TYPE_CHECKING:
    import numpy as np

    from facebench.captures import Camera
    from facebench.labels import LabelSet
    from generators.gaussians.model import GaussianModel
    from generators.refine.inputs import SubjectView

# Chosen by benchmarks/ablate_generate.py on a tuning subject (BENCHMARKS.md).
DEFAULT_VARIANT = "logits"


@dataclass
class Lifted:
    """A variant's fitted models: RGB Gaussians and label Gaussians (the same model for ``joint``)."""

    rgb: GaussianModel
    labels: GaussianModel


@dataclass(frozen=True)
class LabelLifting:
    """Base class of the variants. ``name`` is the registry key, recorded in every dataset's provenance."""

    name: str = field(default="", init=False)
    alpha_min: float = 0.5  # rendered coverage below this is background

    def lift(self, views: list[SubjectView], labels: LabelSet, lift: LiftConfig, cleanup: CleanupConfig, seed: int,
             head_to_world: np.ndarray, checkpoint_dir: str | None = None) -> Lifted:
        raise NotImplementedError

    def render(self, lifted: Lifted, camera: Camera, labels: LabelSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError


VARIANTS: dict[str, type[LabelLifting]] = {}


def register(cls: type[LabelLifting]) -> type[LabelLifting]:
    """Add a variant to the registry under its ``name`` (a class decorator)."""
    name = cls().name
    if not name:
        raise ValueError(f"{cls.__name__} needs a name: name: str = field(default='...', init=False)")
    VARIANTS[name] = cls
    return cls


def make_variant(name: str, **params: Any) -> LabelLifting:
    """The registered variant called ``name``, with its default parameters unless given."""
    if name not in VARIANTS:
        raise InvalidConfig(f"unknown variant {name!r}", hint=f"use one of {', '.join(sorted(VARIANTS))}")
    return VARIANTS[name](**params)


def _rgb_image(lifted: Lifted, vm, K, camera: Camera) -> np.ndarray:
    import numpy as np

    r = lifted.rgb.render(vm, K, camera.width, camera.height, what="rgb")
    return (r.rgb.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _camera_tensors(camera: Camera):
    import torch

    return torch.from_numpy(camera.world_to_camera).float(), torch.from_numpy(camera.K).float()


@dataclass(frozen=True)
class _ClassScores(LabelLifting):
    """Shared by the variants whose label Gaussians carry per-class logits: 3D smoothing over neighbours,
    left/right from the head frame, then log-probabilities; rendered and read off by argmax."""

    # How a pixel's class is read off the label Gaussians: "probs" composites per-Gaussian class
    # probabilities; "logits" composites the raw per-Gaussian logits, as the cross-entropy saw them in training.
    label_render: str = "probs"
    knn_k: int = 8  # per-Gaussian smoothing of class logits over this many 3D neighbours (0 = off)
    knn_weight: float = 0.5
    side_margin: float = 0.01  # metres from the head's mid-plane before a side is certain (3D side step)

    def __post_init__(self) -> None:
        if self.label_render not in ("probs", "logits"):
            raise InvalidConfig(f"unknown label_render {self.label_render!r}", hint="use probs or logits")

    def _fit(self, views, labels, lift, seed, checkpoint_dir) -> Lifted:
        raise NotImplementedError

    def lift(self, views, labels, lift, cleanup, seed, head_to_world, checkpoint_dir=None) -> Lifted:
        import torch

        from generators.refine.knn import smooth_logits
        from generators.refine.postprocess import enforce_sides_3d, head_x

        lifted = self._fit(views, labels, lift, seed, checkpoint_dir)
        lab = lifted.labels
        feats = lab.features.detach()
        if self.knn_k and self.knn_weight:
            feats = smooth_logits(feats, lab.means, self.knn_k, self.knn_weight)
        if cleanup.enabled and cleanup.sides_from_3d:
            feats = enforce_sides_3d(feats, head_x(lab.means, head_to_world), labels, self.side_margin)
        return Lifted(lifted.rgb, dataclasses.replace(lab.detach(), features=torch.log_softmax(feats, 1)))

    def render(self, lifted, camera, labels):
        import torch

        from generators.refine.clustering import argmax_labels

        vm, K = _camera_tensors(camera)
        with torch.no_grad():
            image = _rgb_image(lifted, vm, K, camera)
            lab = lifted.labels
            scores = lab if self.label_render == "logits" else dataclasses.replace(
                lab, features=torch.softmax(lab.features, 1))
            r = scores.render(vm, K, camera.width, camera.height, what="features")
            p = r.features / r.alpha.clamp_min(1e-6)[None]
            ids = argmax_labels(r.features, r.alpha, self.alpha_min)
            if self.label_render == "logits":
                p = torch.softmax(p, 0)
            conf = p[1:].max(0).values.numpy()
        return image, ids, conf


@register
@dataclass(frozen=True)
class Logits(_ClassScores):
    """Geometry frozen from the RGB fit; per-Gaussian class logits learnt by weighted cross-entropy
    (LangSplat's freeze-and-learn-a-feature template). The default, by measurement."""

    name: str = field(default="logits", init=False)

    def _fit(self, views, labels, lift, seed, checkpoint_dir):
        from generators.refine.lift import fit_labels, fit_rgb

        rgb = fit_rgb(views, lift, seed, checkpoint_dir)
        return Lifted(rgb, fit_labels(rgb, views, labels, lift, seed))


@register
@dataclass(frozen=True)
class Votes(_ClassScores):
    """Geometry frozen from the RGB fit; per-Gaussian class probabilities from visibility-weighted votes of
    the labelled pixels, in closed form (``lift.vote_labels``): the label stage costs one render per view."""

    name: str = field(default="votes", init=False)

    def _fit(self, views, labels, lift, seed, checkpoint_dir):
        from generators.refine.lift import fit_rgb, vote_labels

        rgb = fit_rgb(views, lift, seed, checkpoint_dir)
        return Lifted(rgb, vote_labels(rgb, views, labels, lift))


@register
@dataclass(frozen=True)
class Joint(_ClassScores):
    """One model fitted to RGB (L1 + D-SSIM), coverage and cross-entropy together, every parameter free."""

    name: str = field(default="joint", init=False)
    ssim_weight: float = 0.2  # RGB loss = (1-w) L1 + w (1 - SSIM), as 3DGS

    def _fit(self, views, labels, lift, seed, checkpoint_dir):
        from generators.refine.lift import fit_joint

        joint = fit_joint(views, labels, lift, seed, self.ssim_weight)
        return Lifted(joint, joint)


@register
@dataclass(frozen=True)
class Palette(LabelLifting):
    """The paper's way: per-Gaussian colours fitted to palette-coloured masks on the frozen geometry,
    mapped back to classes by the nearest palette colour."""

    name: str = field(default="palette", init=False)

    def lift(self, views, labels, lift, cleanup, seed, head_to_world, checkpoint_dir=None) -> Lifted:
        from generators.refine.lift import fit_labels, fit_rgb

        rgb = fit_rgb(views, lift, seed, checkpoint_dir)
        return Lifted(rgb, fit_labels(rgb, views, labels, lift, seed, palette=True))

    def render(self, lifted, camera, labels):
        import numpy as np
        import torch

        from generators.refine.clustering import nearest_palette

        vm, K = _camera_tensors(camera)
        with torch.no_grad():
            image = _rgb_image(lifted, vm, K, camera)
            r = lifted.labels.render(vm, K, camera.width, camera.height, what="features")
            a = r.alpha.numpy()
            colors = (r.features / r.alpha.clamp_min(1e-3)[None]).permute(1, 2, 0).numpy()
        return image, nearest_palette(colors, a, labels, self.alpha_min), np.ones_like(a)
