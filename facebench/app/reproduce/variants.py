"""The training sets of the comparison, all built on the refined dataset's own views.

Every fine-tune but the ablation keeps the baseline's own frontal training data in the mix, as a
practitioner fine-tunes (a parser fine-tuned on new views alone forgets the frontal domain: measured,
BENCHMARKS.md). The mix is documented once, here: each set's samples plus the first ``frontal_subjects``
subjects of the frontal recipe's stream (``baselines/recipes/frontal.sh`` step 1, re-rendered: same seeds,
same rig), about one frontal view per refined view at the default scale; batches draw uniformly from the
union. The sets change one thing each:

- (a) ``raw``: the same rendered images, labelled by the frontal parser alone (no 3D refinement), + frontal;
- (b) ``refined``: the refined dataset, + frontal (the default recipe);
- (c) ``oracle``: the same rendered images, labelled with ground truth rendered at each view's recorded
  camera (``provenance["camera"]``), the best any label source could do for these images, + frontal;
- (b′) ``refined only``: the refined dataset alone, the ablation without the frontal mix.

Ground truth exists because the training subjects are synthetic: ``synthetic_truth`` rebuilds each
subject's head from the seed its capture records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from facebench.captures import Camera, read_transforms
from facebench.dataset import DatasetInfo, FacebenchDataset, Sample, build_dataset
from facebench.errors import InvalidCapture
from facebench.parsing import Parser

TruthFn = Callable[[Camera], tuple[np.ndarray, np.ndarray]]


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


# baselines/recipes/frontal.sh step 1: the train-split subject stream of seed 0, 12 random near-frontal views each.
RECIPE_SEED = 0
RECIPE_VIEWS = 12


def render_recipe_frontal(out: Path, subjects: int, size: int, workers: int) -> Path:
    """The first ``subjects`` of the frontal baseline's own training subjects, re-rendered as the recipe did
    (captures under ``out/captures``), as a dataset at ``out/data`` (split ``train``)."""
    from baselines.captures import captures_to_dataset
    from baselines.data import FRONTAL
    from generators.heads.capture import write_captures
    from generators.heads.rig import RigConfig

    rig = RigConfig(views=RECIPE_VIEWS, yaw_range=(-FRONTAL.max_yaw, FRONTAL.max_yaw),
                    pitch_range=(-FRONTAL.max_pitch, FRONTAL.max_pitch), mode="random")
    write_captures(out / "captures", subjects, rig, size, RECIPE_SEED, workers=workers)
    return captures_to_dataset(out / "captures", out / "data", overwrite=True)


def with_frontal(samples: Iterable[Sample], frontal: FacebenchDataset) -> Iterator[Sample]:
    """A training set's samples, then the frontal recipe's (the mix of every fine-tune but the ablation)."""
    yield from samples
    yield from frontal.iter_samples("train")


def write_variant(samples: Iterator[Sample], out: Path, name: str, description: str) -> Path:
    """One training set as a facebench dataset (split ``train``)."""
    info = DatasetInfo(pretty_name=f"facebench reproduce: {name}", description=description,
                       annotations_creators="machine-generated")
    return build_dataset({"train": samples}, out, info, overwrite=True)
