"""The training sets of the comparison, all built on the refined dataset's own views.

(b) is the refined dataset itself. The others change one thing each:

- (a) ``raw``: the same rendered images, labelled by the frontal parser alone (no 3D refinement);
- (c) ``oracle``: the same rendered images, labelled with ground truth rendered at each view's recorded
  camera (``provenance["camera"]``), the best any label source could do for these images;
- (d) ``mixed``: the refined samples plus near-frontal ground-truth views of the same training subjects
  (|yaw| < 30°, |pitch| < 20°, like the frontal baseline's training data).

Ground truth exists because the training subjects are synthetic: ``synthetic_truth`` rebuilds each
subject's head from the seed its capture records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from facebench.captures import Camera, read_transforms
from facebench.dataset import DatasetInfo, FacebenchDataset, Sample, build_dataset
from facebench.errors import InvalidCapture
from facebench.parsing import Parser
from facebench.pose import Pose, view_pose

TruthFn = Callable[[Camera], tuple[np.ndarray, np.ndarray]]

# The frontal baseline's training range (baselines.data.FRONTAL), strictly inside.
FRONTAL_MAX_YAW = 30.0
FRONTAL_MAX_PITCH = 20.0


def subject_truths(captures: Path) -> dict[str, tuple[TruthFn, dict]]:
    """Subject name → (camera → (rgb, labels), its capture's meta) for every synthetic capture under ``captures``."""
    from generators.refine.pipeline import synthetic_truth

    out = {}
    for p in sorted(d for d in captures.iterdir() if (d / "transforms.json").exists()):
        cap = read_transforms(p)
        fn = synthetic_truth(cap)
        if fn is None:
            raise InvalidCapture("not a synthetic capture: no ground truth for the oracle", p)
        out[cap.subject] = (fn, cap.meta)
    return out


def _camera(sample: Sample) -> Camera:
    c = sample.provenance["camera"]
    return Camera(K=np.asarray(c["K"]), world_to_camera=np.asarray(c["world_to_camera"]), width=int(c["width"]),
                  height=int(c["height"]))


def _relabel(sample: Sample, mask: np.ndarray, source: str, how: str) -> Sample:
    return Sample(id=sample.id, image=sample.image, mask=mask, subject=sample.subject, yaw=sample.yaw,
                  pitch=sample.pitch, roll=sample.roll, label_source=source,
                  provenance={**sample.provenance, "labels": how})


def raw_samples(refined: FacebenchDataset, parser: Parser, batch: int = 16) -> Iterator[Sample]:
    """(a): every refined view, its mask replaced by the frontal parser's prediction on the same image."""
    chunk: list[Sample] = []

    def flush() -> Iterator[Sample]:
        for s, m in zip(chunk, parser.predict([s.image for s in chunk], [s.id for s in chunk]), strict=True):
            yield _relabel(s, m, "initial", "frontal parser on the rendered image (no 3D refinement)")
        chunk.clear()

    for s in refined.iter_samples("train"):
        chunk.append(s)
        if len(chunk) == batch:
            yield from flush()
    yield from flush()


def oracle_samples(refined: FacebenchDataset, truths: dict[str, tuple[TruthFn, dict]]) -> Iterator[Sample]:
    """(c): every refined view, its mask replaced by ground truth rendered at the view's recorded camera."""
    for s in refined.iter_samples("train"):
        _, labels = truths[s.subject][0](_camera(s))
        yield _relabel(s, labels, "gt", "ground truth at provenance.camera")


def frontal_samples(truths: dict[str, tuple[TruthFn, dict]], per_subject: int, size: int,
                    seed: int) -> Iterator[Sample]:
    """Near-frontal ground-truth views of each subject (seeded poses), rendered at ``size``².

    Rendered here rather than through the truth function so that each view gets its own backdrop
    (``bg_seed``), as the baseline's frontal training views did."""
    from generators.heads import camera_for_pose, render_view, sample_head

    for k, (subject, (_, meta)) in enumerate(sorted(truths.items())):
        head = sample_head(int(meta["seed"]))
        rig = meta.get("rig", {})
        rng = np.random.default_rng([seed, 0xF0, k])
        for j in range(per_subject):
            pose = Pose(float(rng.uniform(-FRONTAL_MAX_YAW, FRONTAL_MAX_YAW) * 0.999),
                        float(rng.uniform(-FRONTAL_MAX_PITCH, FRONTAL_MAX_PITCH) * 0.999), 0.0)
            cam = camera_for_pose(pose, size, float(rig.get("distance", 0.85)), float(rig.get("fov", 30.0)))
            r = render_view(head, cam, bg_seed=int(rng.integers(2**31 - 1)))
            rgb, labels = r.rgb, r.labels
            got = view_pose(cam.world_to_camera)
            yield Sample(id=f"{subject}-f{j:03d}", image=rgb, mask=labels, subject=subject, yaw=got.yaw,
                         pitch=got.pitch, roll=got.roll, label_source="gt",
                         provenance={"labels": "ground truth, near-frontal view", "seed": seed, "view": j,
                                     "camera": {"K": cam.K.tolist(), "world_to_camera": cam.world_to_camera.tolist(),
                                                "width": cam.width, "height": cam.height}})


def mixed_samples(refined: FacebenchDataset, truths: dict[str, tuple[TruthFn, dict]], per_subject: int,
                  size: int, seed: int) -> Iterator[Sample]:
    """(d): the refined samples as they are, plus ``per_subject`` near-frontal ground-truth views each."""
    yield from refined.iter_samples("train")
    yield from frontal_samples(truths, per_subject, size, seed)


def write_variant(samples: Iterator[Sample], out: Path, name: str, description: str) -> Path:
    """One training set as a facebench dataset (split ``train``)."""
    info = DatasetInfo(pretty_name=f"facebench reproduce: {name}", description=description,
                       annotations_creators="machine-generated")
    return build_dataset({"train": samples}, out, info, overwrite=True)
