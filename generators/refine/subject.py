"""One subject through the whole refinement: lift, sample views, render, clean, compare.

Inputs are plain arrays (images, cameras, initial masks), so any capture and any parser work.
Ground truth, when there is some (synthetic subjects), is only ever used to *measure* the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from facebench.captures import Camera
from facebench.dataset import Sample
from facebench.labels import IGNORE, LabelSet
from facebench.metrics import Evaluation
from facebench.pose import Pose, split_frame, view_pose
from generators.refine.config import ViewSampling
from generators.refine.coverage import seen_gaussians, unseen_pixels
from generators.refine.fidelity import head_psnr_ssim
from generators.refine.generate_config import RefineConfig
from generators.refine.inputs import SubjectView
from generators.refine.postprocess import cleanup
from generators.refine.views import sample_cameras

# (camera) -> (true RGB H×W×3 uint8, true labels H×W uint8), for subjects that have ground truth.
TruthFn = Callable[[Camera], tuple[np.ndarray, np.ndarray]]
# (images) -> masks: the parser whose labels are being refined.
PredictFn = Callable[[list[np.ndarray]], list[np.ndarray]]
QUALITY_KEYS = ("input/initial", "input/refined", "novel/initial", "novel/refined", "input/agreement")
# Overlays kept per subject: input views (image | initial | refined re-rendered there), new views per pose bin.
INPUT_EXAMPLES, NEW_PER_BIN = 3, 2


@dataclass
class SubjectResult:
    samples: list[Sample]
    quality: dict[str, Evaluation]  # QUALITY_KEYS
    examples: list[dict]  # a few novel views with image, truth, initial, refined for overlays
    stats: dict
    input_examples: list[dict] = field(default_factory=list)  # image, initial, refined on input views
    new_examples: list[dict] = field(default_factory=list)  # image, refined on new views, a few per pose bin


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


def new_view_focal(views: ViewSampling, distance: float, head_to_world: np.ndarray, size: int,
                   input_focal: float) -> float:
    """The new views' focal length in pixels: ``frame_height`` metres at the head origin (``distance`` world
    units away) fill ``size`` pixels, whatever the world's scale and the input rig's framing; the input rig's
    own focal (rescaled to ``size``) when ``frame_height`` is None."""
    if views.frame_height is None:
        return input_focal
    metres = distance / split_frame(head_to_world)[1]
    return 0.5 * size * metres / (0.5 * views.frame_height)


def refine_subject(
    subject: str,
    views: list[SubjectView],
    head_to_world: np.ndarray,
    labels: LabelSet,
    cfg: RefineConfig,
    seed: int,
    predict: PredictFn | None = None,
    truth: TruthFn | None = None,
    checkpoint_dir: str | None = None,
    n_examples: int = 4,
) -> SubjectResult:
    """Refine one subject. Returns the new-view samples (label_source='refined') and quality accumulators."""
    variant = cfg.variant
    lifted = variant.lift(views, labels, cfg.lift, cfg.cleanup, seed, head_to_world, checkpoint_dir)
    quality = {k: Evaluation(labels=labels) for k in QUALITY_KEYS}
    has_truth = all(v.truth is not None for v in views)
    input_examples = []
    for v in sorted(views, key=lambda v: abs(v.yaw)):  # frontal first, for the examples
        _, ids, conf = variant.render(lifted, v.camera, labels)
        ids = cleanup(ids, cfg.cleanup, labels.num_classes, conf)
        group, vid = Pose(v.yaw, 0).bin, f"{subject}/{v.id}"
        # Without truth, what can be measured: do the refined labels, re-rendered at an input camera, agree
        # with what the parser said there (by pose bin)? Agreement, not accuracy.
        quality["input/agreement"].add(ids, v.mask, vid, group, v.yaw)
        if has_truth:
            quality["input/initial"].add(v.mask, v.truth, vid, group, v.yaw)
            quality["input/refined"].add(ids, v.truth, vid, group, v.yaw)
        if len(input_examples) < INPUT_EXAMPLES and (not input_examples or abs(v.yaw) - abs(input_examples[-1]["yaw"])
                                                     >= 30):
            input_examples.append({"id": vid, "yaw": v.yaw, "image": v.image, "initial": v.mask, "refined": ids})
    cameras = [v.camera for v in views]
    distance = float(np.median([np.linalg.norm(c.center - head_to_world[:3, 3]) for c in cameras]))
    focal = new_view_focal(cfg.views, distance, head_to_world, cfg.out_size,
                           float(np.median([c.K[0, 0] * cfg.out_size / c.width for c in cameras])))
    rng = np.random.default_rng([seed, 7])
    input_poses = [view_pose(c.world_to_camera, head_to_world) for c in cameras]
    seen = seen_gaussians(lifted.labels, views, head_to_world)
    samples, examples = [], []
    unseen_px, head_px, dropped, new_examples, fidelity = 0, 0, [], [], []
    new_cameras = sample_cameras(cfg.views, seed, head_to_world, distance, focal, cfg.out_size, input_poses)
    for j, (_, cam) in enumerate(new_cameras):
        image, ids, conf = variant.render(lifted, cam, labels)
        refined = cleanup(ids, cfg.cleanup, labels.num_classes, conf)
        alpha = (ids != 0)[..., None]
        unseen = unseen_pixels(lifted.labels, seen, cam.world_to_camera, cam.K, cam.width, cam.height) & (ids != 0)
        n_head = int((ids != 0).sum())
        if n_head and unseen.sum() > cfg.views.max_unseen * n_head:
            dropped.append(j)  # mostly what no input camera saw: not written
            continue
        unseen_px, head_px = unseen_px + int(unseen.sum()), head_px + n_head
        refined = np.where(unseen, IGNORE, refined).astype(np.uint8)
        composed = np.where(alpha, image, (_background(rng, cfg.out_size) * 255).round().astype(np.uint8))
        got = view_pose(cam.world_to_camera, head_to_world)
        sid = f"{subject}-v{j:03d}"
        samples.append(Sample(id=sid, image=composed, mask=refined, subject=subject, yaw=got.yaw, pitch=got.pitch,
                              roll=got.roll, label_source="refined",
                              provenance={"method": f"dual-3dgs/{variant.name}", "seed": seed, "view": j,
                                          "camera": camera_record(cam), "head_to_world": head_to_world.tolist()}))
        if sum(e["bin"] == got.bin for e in new_examples) < NEW_PER_BIN:
            new_examples.append({"id": sid, "yaw": got.yaw, "bin": got.bin, "image": composed, "refined": refined})
        if truth is not None:
            true_rgb, true_ids = truth(cam)
            psnr, ssim = head_psnr_ssim(image, true_rgb, true_ids != 0)
            fidelity.append({"id": sid, "bin": got.bin, "yaw": round(got.yaw, 2), "psnr": psnr, "ssim": ssim})
            initial = predict([true_rgb])[0] if predict is not None else None
            if initial is not None:
                quality["novel/initial"].add(initial, true_ids, sid, got.bin, got.yaw)
            quality["novel/refined"].add(refined, true_ids, sid, got.bin, got.yaw)
            if len(examples) < n_examples and abs(got.yaw) >= 60:
                examples.append({"id": sid, "yaw": got.yaw, "image": true_rgb, "truth": true_ids,
                                 "initial": initial, "refined": refined})
    stats = {"gaussians": len(lifted.labels), "variant": variant.name, "ignored_frac": float(np.mean(
        [np.mean(s.mask == IGNORE) for s in samples])) if samples else float("nan"),
             "gaussians_seen": int(seen.sum()), "new_views": len(new_cameras), "views_dropped_unseen": len(dropped),
             "unseen_head_pixels_frac": unseen_px / head_px if head_px else 0.0, "rgb_fidelity": fidelity}
    return SubjectResult(samples, quality, examples, stats, input_examples, new_examples)
