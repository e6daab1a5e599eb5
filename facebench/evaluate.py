"""Evaluate a Parser on a dataset split: stream samples, accumulate confusion by pose bin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from facebench.dataset import FacebenchDataset
from facebench.errors import InvalidMask
from facebench.importers.policy import LabelPolicy, merge_predictions, policy_of
from facebench.metrics import Evaluation
from facebench.parsing import MaskFolderParser, Parser


@dataclass
class EvalRun:
    """Everything a report needs: the accumulator plus where it came from."""

    evaluation: Evaluation
    dataset: FacebenchDataset
    split: str
    parser: Parser
    label_policy: LabelPolicy | None = None  # set for imported datasets that lack some classes
    warnings: list[str] = field(default_factory=list)  # one line each, printed and put in the report


def evaluate_parser(
    parser: Parser,
    dataset: FacebenchDataset,
    split: str = "test",
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> EvalRun:
    """Run ``parser`` over ``split`` and accumulate per-image confusion matrices grouped by pose bin."""
    meta = dataset.metadata(split)
    if isinstance(parser, MaskFolderParser):
        parser.check_ids(list(meta["id"]))  # fail before decoding anything
    ev = Evaluation(labels=dataset.labels)
    policy = policy_of(dataset)
    # Predictions come in the parser's declared order; they are scored in the dataset's, matched by name.
    remap = None if parser.labels.names == dataset.labels.names else dataset.labels.lut_from(parser.labels)
    batch: list = []

    def flush() -> None:
        preds = parser.predict([s.image for s in batch], [s.id for s in batch])
        for s, p in zip(batch, preds, strict=True):
            p = p if remap is None else remap[p]
            p = merge_predictions(policy, p)
            if p.shape != s.mask.shape:
                raise InvalidMask(f"prediction for {s.id} is {p.shape[1]}×{p.shape[0]}, "
                                  f"truth is {s.mask.shape[1]}×{s.mask.shape[0]}")
            ev.add(p, s.mask, image_id=s.id, group=s.pose_bin, yaw=s.yaw)
        if progress:
            progress(len(batch))
        batch.clear()

    for s in dataset.iter_samples(split):
        batch.append(s)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    run = EvalRun(ev, dataset, split, parser, policy)
    if ev.matrices:
        from facebench.labelcheck import suspected_order

        warning = suspected_order(ev.total(), dataset.labels, parser.labels)
        if warning:
            run.warnings.append(warning)
    return run


def predictions_for(run: EvalRun, ids: list[str]) -> list[tuple[str, float, np.ndarray, np.ndarray, np.ndarray]]:
    """Re-decode a few samples by id and predict them again: (id, yaw, image, truth, prediction)."""
    wanted = set(ids)
    found = {}
    for s in run.dataset.iter_samples(run.split):
        if s.id in wanted:
            found[s.id] = s
    samples = [found[i] for i in ids if i in found]
    preds = run.parser.predict([s.image for s in samples], [s.id for s in samples]) if samples else []
    return [(s.id, s.yaw, s.image, s.mask, p) for s, p in zip(samples, preds, strict=True)]
