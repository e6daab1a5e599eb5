"""One subject through the whole refinement: lift, sample views, render, cluster, clean, compare.

Inputs are plain arrays (images, cameras, initial masks), so any capture and any parser work.
Ground truth, when there is some (synthetic subjects), is only ever used to *measure* the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from facebench.captures import Camera
from facebench.dataset import Sample
from facebench.labels import IGNORE, LabelSet
from facebench.metrics import Evaluation
from facebench.pose import Pose, view_pose
from generators.gaussians.model import GaussianModel
from generators.refine.clustering import argmax_labels, nearest_palette
from generators.refine.knn import smooth_logits
from generators.refine.lift import LiftConfig, LiftInput, fit_joint, fit_labels, fit_rgb
from generators.refine.postprocess import CleanupConfig, cleanup, enforce_sides_3d
from generators.refine.views import ViewSampling

# (camera) -> (true RGB H×W×3 uint8, true labels H×W uint8), for subjects that have ground truth.
TruthFn = Callable[[Camera], tuple[np.ndarray, np.ndarray]]
# (images) -> masks: the parser whose labels are being refined.
PredictFn = Callable[[list[np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class RefineConfig:
    """The whole refinement of one subject."""

    lift: LiftConfig = field(default_factory=LiftConfig)
    views: ViewSampling = field(default_factory=ViewSampling)
    cleanup: CleanupConfig = field(default_factory=CleanupConfig)
    out_size: int = 256
    knn_k: int = 8
    knn_weight: float = 0.5
    side_margin: float = 0.01  # metres from the head's mid-plane before a side is certain
    alpha_min: float = 0.5
    # How a pixel's class is read off the label Gaussians: "probs" composites per-Gaussian class
    # probabilities; "logits" composites the raw per-Gaussian logits, as the cross-entropy saw them in training.
    label_render: str = "probs"
    seed: int = 0


@dataclass
class SubjectResult:
    samples: list[Sample]
    quality: dict[str, Evaluation]  # "input/initial", "input/refined", "novel/initial", "novel/refined"
    examples: list[dict]  # a few novel views with image, truth, initial, refined for overlays
    stats: dict


def _head_x(model: GaussianModel, head_to_world: np.ndarray) -> torch.Tensor:
    w2h = torch.from_numpy(np.linalg.inv(head_to_world)).to(model.means)
    return model.means.detach() @ w2h[0, :3] + w2h[0, 3]


def label_model(inputs: list[LiftInput], labels: LabelSet, cfg: RefineConfig, head_to_world: np.ndarray,
                checkpoint_dir: str | None = None) -> tuple[GaussianModel, GaussianModel]:
    """Stages 1–2 plus 3D regularisation: (RGB model, label model with class log-probs or palette colours)."""
    lc = cfg.lift
    if lc.variant == "joint":
        joint = fit_joint(inputs, labels, lc)
        rgb, lab = joint, joint
    else:
        rgb = fit_rgb(inputs, lc, checkpoint_dir)
        lab = fit_labels(rgb, inputs, labels, lc)
    if lc.variant == "palette":
        return rgb, lab
    feats = lab.features.detach()
    if cfg.knn_k and cfg.knn_weight:
        feats = smooth_logits(feats, lab.means, cfg.knn_k, cfg.knn_weight)
    if cfg.cleanup.sides_from_3d:
        feats = enforce_sides_3d(feats, _head_x(lab, head_to_world), labels, cfg.side_margin)
    return rgb, dataclasses.replace(lab.detach(), features=torch.log_softmax(feats, 1))


def render_labels(rgb: GaussianModel, lab: GaussianModel, cam: Camera, labels: LabelSet, cfg: RefineConfig,
                  variant: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one camera: (RGB H×W×3 uint8 over black, refined ids, confidence in [0, 1])."""
    vm = torch.from_numpy(cam.world_to_camera).float()
    K = torch.from_numpy(cam.K).float()
    with torch.no_grad():
        r_rgb = rgb.render(vm, K, cam.width, cam.height, what="rgb")
        if variant == "palette":
            r = lab.render(vm, K, cam.width, cam.height, what="features")
            a = r.alpha.numpy()
            colors = (r.features / r.alpha.clamp_min(1e-3)[None]).permute(1, 2, 0).numpy()
            ids = nearest_palette(colors, a, labels, cfg.alpha_min)
            conf = np.ones_like(a)
        else:
            scores = lab if cfg.label_render == "logits" else dataclasses.replace(
                lab, features=torch.softmax(lab.features, 1))
            r = scores.render(vm, K, cam.width, cam.height, what="features")
            p = r.features / r.alpha.clamp_min(1e-6)[None]
            ids = argmax_labels(r.features, r.alpha, cfg.alpha_min)
            if cfg.label_render == "logits":
                p = torch.softmax(p, 0)
            conf = p[1:].max(0).values.numpy()
    image = (r_rgb.rgb.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return image, ids, conf


def camera_record(cam: Camera) -> dict:
    """The camera of a new view, in the capture's world frame: enough to re-render it (e.g. truth)."""
    return {"K": cam.K.tolist(), "world_to_camera": cam.world_to_camera.tolist(), "width": cam.width,
            "height": cam.height}


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A seeded plain, gradient or noise backdrop for the rendered head (parsers must not learn 'black = bg')."""
    kind = rng.integers(3)
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    t = np.linspace(0, 1, size)[:, None, None]
    if kind == 0:
        bg = np.broadcast_to(c0, (size, size, 3))
    elif kind == 1:
        bg = (1 - t) * c0 + t * c1 + np.zeros((1, size, 1))
    else:
        bg = c0 + 0.15 * rng.standard_normal((size, size, 3))
    return np.clip(bg, 0, 1)


def refine_subject(
    subject: str,
    inputs: list[LiftInput],
    input_cameras: list[Camera],
    head_to_world: np.ndarray,
    labels: LabelSet,
    cfg: RefineConfig,
    predict: PredictFn | None = None,
    truth: TruthFn | None = None,
    input_truth: list[np.ndarray] | None = None,
    checkpoint_dir: str | None = None,
    n_examples: int = 4,
) -> SubjectResult:
    """Refine one subject. Returns the new-view samples (label_source='refined') and quality accumulators."""
    rgb, lab = label_model(inputs, labels, cfg, head_to_world, checkpoint_dir)
    variant = cfg.lift.variant
    quality = {k: Evaluation(labels=labels) for k in ("input/initial", "input/refined", "novel/initial",
                                                      "novel/refined")}
    if input_truth is not None:
        for i, (v, cam, t) in enumerate(zip(inputs, input_cameras, input_truth, strict=True)):
            _, ids, conf = render_labels(rgb, lab, cam, labels, cfg, variant)
            ids = cleanup(ids, cfg.cleanup, labels.num_classes, conf)
            group = Pose(v.yaw, 0).bin
            quality["input/initial"].add(v.mask, t, f"{subject}/in{i:03d}", group, v.yaw)
            quality["input/refined"].add(ids, t, f"{subject}/in{i:03d}", group, v.yaw)
    distance = float(np.median([np.linalg.norm(c.center - head_to_world[:3, 3]) for c in input_cameras]))
    focal = float(np.median([c.K[0, 0] * cfg.out_size / c.width for c in input_cameras]))
    rng = np.random.default_rng([cfg.seed, 7])
    samples, examples = [], []
    for j, (_, cam) in enumerate(cfg.views.sample_cameras(cfg.seed, head_to_world, distance, focal, cfg.out_size)):
        image, ids, conf = render_labels(rgb, lab, cam, labels, cfg, variant)
        refined = cleanup(ids, cfg.cleanup, labels.num_classes, conf)
        alpha = (ids != 0)[..., None]
        composed = np.where(alpha, image, (_background(rng, cfg.out_size) * 255).round().astype(np.uint8))
        got = view_pose(cam.world_to_camera, head_to_world)
        sid = f"{subject}-v{j:03d}"
        samples.append(Sample(id=sid, image=composed, mask=refined, subject=subject, yaw=got.yaw, pitch=got.pitch,
                              roll=got.roll, label_source="refined",
                              provenance={"method": f"dual-3dgs/{variant}", "seed": cfg.seed, "view": j,
                                          "camera": camera_record(cam)}))
        if truth is not None:
            true_rgb, true_ids = truth(cam)
            initial = predict([true_rgb])[0] if predict is not None else None
            if initial is not None:
                quality["novel/initial"].add(initial, true_ids, sid, got.bin, got.yaw)
            quality["novel/refined"].add(refined, true_ids, sid, got.bin, got.yaw)
            if len(examples) < n_examples and abs(got.yaw) >= 60:
                examples.append({"id": sid, "yaw": got.yaw, "image": true_rgb, "truth": true_ids,
                                 "initial": initial, "refined": refined})
    stats = {"gaussians": len(lab), "variant": variant, "ignored_frac": float(np.mean(
        [np.mean(s.mask == IGNORE) for s in samples]))}
    return SubjectResult(samples, quality, examples, stats)
