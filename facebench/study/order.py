"""Each rater's task order: shuffled per rater, yet reproducible from the study seed and the rater id.

Because the plan is a pure function of (seed, rater id), the server keeps no order state: after a
reload the page asks for the first unanswered position and the rater resumes exactly there.
Pairwise tasks also get a per-rater left/right swap, so position bias cancels over raters.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from facebench.study.errors import StudyError
from facebench.study.layout import Manifest, Task

# Matched whole (fullmatch: "$" would also accept a trailing newline) and never stripped first, so one
# person is one id: "bob\n" or " bob" is refused, not stored as a second rater beside "bob".
RATER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
RATER_RULE = "a letter or digit, then up to 63 letters, digits or _.@-"


@dataclass(frozen=True)
class Planned:
    """A task at a position in one rater's plan; ``swapped`` shows a pair's overlays right-to-left."""

    position: int
    task: Task
    swapped: bool = False

    @property
    def overlays(self) -> tuple[str, ...]:
        return self.task.overlays[::-1] if self.swapped else self.task.overlays


def is_rater_id(rater: object) -> bool:
    return isinstance(rater, str) and RATER_ID.fullmatch(rater) is not None


def show_rater(rater: object) -> str:
    """A rater id for a one-line message: escaped (newlines shown as \\n) and cut short."""
    shown = repr(rater)
    return shown[:40] + "…" if len(shown) > 40 else shown


def check_rater(rater: object) -> str:
    """``rater`` itself if it is a valid id; a one-line StudyError otherwise."""
    if not is_rater_id(rater):
        raise StudyError(f"rater id {show_rater(rater)} must be {RATER_RULE}")
    return rater


def rater_seed(study_seed: int, rater: str) -> int:
    """A 64-bit seed from the study seed and the rater id (stable across Python runs, unlike hash())."""
    digest = hashlib.sha256(f"{study_seed}:{rater}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def plan_for(manifest: Manifest, rater: str) -> list[Planned]:
    """Rating tasks first, then pairwise ones, each block shuffled for this rater."""
    rng = np.random.default_rng(rater_seed(manifest.seed, check_rater(rater)))
    plan: list[Planned] = []
    for kind in ("rating", "pairwise"):
        block = [t for t in manifest.tasks if t.kind == kind]
        for i in rng.permutation(len(block)):
            swapped = bool(rng.integers(0, 2)) if kind == "pairwise" else False
            plan.append(Planned(len(plan), block[i], swapped))
    return plan
