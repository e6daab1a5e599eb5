"""What an imported dataset labels, and how predictions are compared with it.

A dataset with fewer classes than facebench (LaPa, Helen, iBugMask have 11) cannot say where a neck
or an ear is. Its ground truth is remapped by name; the facebench classes it never labels are
*absent*. So that no model is punished for them, a prediction of an absent class is first merged
into the class the dataset would have used there (``merge``, documented per dataset and overridable
on the command line), e.g. a predicted ``neck`` becomes ``background`` on LaPa.

The policy travels with the data: every sample's provenance carries it (so it survives the Hub,
which downloads only shards, card and id2label) and the card prints it. ``policy_of(dataset)``
reads it back; ``merge_predictions`` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facebench.errors import InvalidConfig
from facebench.labels import FACEBENCH, LabelSet, canonical_name


@dataclass(frozen=True)
class LabelPolicy:
    """Remapping of one dataset's classes onto facebench's, and the merge applied to predictions."""

    dataset: str
    source_classes: tuple[str, ...]  # the dataset's own class names, in its id order
    sides: str  # "subject" (l_ = subject's left) or "image" (l_ = image left, swapped on import)
    absent: tuple[str, ...]  # facebench classes the dataset never labels
    merge: dict[str, str] = field(default_factory=dict)  # absent class -> class it is scored as
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "source_classes": list(self.source_classes), "sides": self.sides,
                "absent": list(self.absent), "merge": dict(sorted(self.merge.items())), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelPolicy:
        return cls(d["dataset"], tuple(d["source_classes"]), d["sides"], tuple(d["absent"]), dict(d["merge"]),
                   tuple(d.get("notes", ())))

    def remap_table(self) -> dict[str, str]:
        """Dataset class name -> facebench class name (after the left/right fix)."""
        out = {}
        swap = {"l_brow": "r_brow", "r_brow": "l_brow", "l_eye": "r_eye", "r_eye": "l_eye", "l_ear": "r_ear",
                "r_ear": "l_ear"}
        for n in self.source_classes:
            c = canonical_name(n)
            c = swap.get(c, c) if self.sides == "image" else c
            out[n] = c if c in FACEBENCH.names else "ignore (255)"
        return out

    def prediction_lut(self) -> np.ndarray:
        """256-entry LUT over facebench ids: absent classes -> their merge target, others unchanged."""
        lut = np.arange(256, dtype=np.uint8)
        for a, b in self.merge.items():
            lut[FACEBENCH.index(a)] = FACEBENCH.index(b)
        return lut

    def describe(self) -> list[str]:
        """Markdown lines for a card or a report."""
        remap = ", ".join(f"{k} → {v}" for k, v in self.remap_table().items())
        lines = [f"- Source labels ({self.dataset}): {remap}.",
                 f"- Left/right: the dataset's `l_`/`r_` are the {self.sides}'s"
                 + (" (swapped on import so that facebench's `l_` is the subject's left)." if self.sides == "image"
                    else " left/right, as in facebench.")]
        if self.absent:
            lines.append("- Classes this dataset does not label: " + ", ".join(self.absent) + ".")
            lines.append("- Predictions of those classes are scored as: "
                         + ", ".join(f"{k} → {v}" for k, v in sorted(self.merge.items())) + ".")
        lines += [f"- {n}" for n in self.notes]
        return lines


def absent_classes(source: LabelSet) -> tuple[str, ...]:
    have = {canonical_name(n) for n in source.names}
    return tuple(n for n in FACEBENCH.names if n not in have)


def parse_merges(specs: list[str] | None) -> dict[str, str]:
    """``["l_ear=background", ...]`` -> {facebench name: facebench name}."""
    out = {}
    for s in specs or []:
        if "=" not in s:
            raise InvalidConfig(f"--merge expects CLASS=TARGET, got {s!r}")
        a, b = (canonical_name(x) for x in s.split("=", 1))
        for n in (a, b):
            if n not in FACEBENCH.names:
                raise InvalidConfig(f"--merge: unknown class {n!r}", hint="use facebench class names (id2label.json)")
        out[a] = b
    return out


def merge_predictions(policy: LabelPolicy | None, pred: np.ndarray) -> np.ndarray:
    """A facebench-labelled prediction re-expressed in the dataset's scheme (identity without a policy)."""
    return pred if policy is None or not policy.merge else policy.prediction_lut()[pred]


def policy_of(dataset) -> LabelPolicy | None:
    """The label policy recorded by ``facebench import`` in a dataset's provenance, or None."""
    for split in dataset.splits:
        meta = dataset.metadata(split)
        if len(meta):
            import json

            prov = json.loads(meta["provenance"].iloc[0] or "{}")
            return LabelPolicy.from_dict(prov["label_policy"]) if "label_policy" in prov else None
    return None
