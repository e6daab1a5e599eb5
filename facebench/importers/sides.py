"""Which left is ``left``? Decide a dataset's left/right convention from its own masks.

In any view with both eyes visible (|yaw| < 90°), the subject's left eye appears to the image's
right of their right eye. So counting, over a sample of masks, how often the class *named* left
lies right of the class named right tells whether the dataset means the subject's side (facebench's
convention) or the image's side. Documentation of the released datasets is thin on this point, so
facebench checks rather than trusts, and records the vote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from facebench.labels import LabelSet, canonical_name

PAIRS = (("l_eye", "r_eye"), ("l_brow", "r_brow"))
MIN_PIXELS = 8


@dataclass(frozen=True)
class SideVote:
    convention: str  # "subject" | "image"
    subject_votes: int
    image_votes: int
    decided_by: str  # "masks" or "default (no mask had both sides)"

    def to_dict(self) -> dict:
        return {"convention": self.convention, "subject_votes": self.subject_votes, "image_votes": self.image_votes,
                "decided_by": self.decided_by}


def _centroid_x(mask: np.ndarray, cls: int) -> float | None:
    xs = np.nonzero(mask == cls)[1]
    return float(xs.mean()) if xs.size >= MIN_PIXELS else None


def vote_sides(masks: Iterable[np.ndarray], source: LabelSet, default: str = "subject") -> SideVote:
    """Majority vote over masks (in the dataset's own ids) and left/right pairs."""
    canon = [canonical_name(n) for n in source.names]
    pairs = [(canon.index(a), canon.index(b)) for a, b in PAIRS if a in canon and b in canon]
    subj = img = 0
    for m in masks:
        for li, ri in pairs:
            lx, rx = _centroid_x(m, li), _centroid_x(m, ri)
            if lx is None or rx is None:
                continue
            subj += lx > rx
            img += lx < rx
    if subj == img:
        return SideVote(default, subj, img, "default (no mask decided it)")
    return SideVote("subject" if subj > img else "image", subj, img, "masks")
