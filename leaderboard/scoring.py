"""Score a Parser on the hidden split exactly as ``facebench evaluate`` does, and record how.

Scoring goes through ``facebench.evaluate.evaluate_parser`` and ``Evaluation.scores`` with the same
bootstrap settings as ``write_report``, so a host result equals ``metrics.json`` of
``facebench evaluate`` on the same predictions, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from facebench.dataset import FacebenchDataset
from facebench.evaluate import evaluate_parser
from facebench.metrics import CONVENTION
from facebench.parsing import Parser
from facebench.pose import POSE_BIN_NAMES, POSE_BINS
from leaderboard.manifest import combine_digests, mask_digest

EVALUATOR = "facebench-leaderboard-evaluator/1"  # bump when scoring changes in any way


@dataclass(frozen=True)
class MetricSettings:
    """Bootstrap settings; the defaults are ``facebench evaluate``'s."""

    n_boot: int = 1000
    seed: int = 0


def evaluator_version() -> str:
    try:
        fb = version("facebench")
    except PackageNotFoundError:
        fb = "unknown"
    return f"{EVALUATOR} (facebench {fb}, numpy {np.__version__})"


class DigestingParser:
    """Wraps a Parser and hashes what it predicts, to give a checkpoint's predictions a sha256 too."""

    def __init__(self, parser: Parser):
        self.parser = parser
        self.labels = parser.labels
        self.name = parser.name
        self.lines: dict[str, str] = {}

    def predict(self, images: Sequence[np.ndarray], ids: Sequence[str] | None = None) -> list[np.ndarray]:
        preds = self.parser.predict(images, ids)
        for i, p in zip(ids or [], preds, strict=False):
            p = np.ascontiguousarray(p)
            self.lines[i] = mask_digest(i, p.tobytes(), *p.shape[:2])
        return preds

    @property
    def sha256(self) -> str:
        return combine_digests(self.lines)


def public(scores: dict[str, Any]) -> dict[str, Any]:
    """Scores without what they were computed from: per-class ``support`` is the hidden pixel count of each
    class, so it is never published (docs/leaderboard/README.md, threat model)."""
    out = dict(scores)
    out["per_class"] = {k: {m: v for m, v in c.items() if m != "support"} for k, c in scores["per_class"].items()}
    return out


def score(parser: Parser, hidden: FacebenchDataset, split: str, settings: MetricSettings) -> dict[str, Any]:
    """Overall and per-pose-bin scores, plus the settings that produced them."""
    run = evaluate_parser(parser, hidden, split)
    ev = run.evaluation
    overall = public(ev.scores(n_boot=settings.n_boot, seed=settings.seed))
    by_bin = {b: public(ev.scores(b, n_boot=settings.n_boot, seed=settings.seed))
              for b in POSE_BIN_NAMES if b in ev.group_names()}
    return {
        "overall": overall,
        "by_pose_bin": by_bin,
        "evaluator": {"version": evaluator_version(), "metric_settings": asdict(settings), "convention": CONVENTION,
                      "pose_bins": [list(b) for b in POSE_BINS], "labels": list(hidden.labels.names)},
    }
