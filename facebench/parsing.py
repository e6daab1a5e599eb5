"""The Parser protocol: images in, label maps out.

Anything that labels faces plugs into facebench through this one method, so the refinement
pipeline, ``evaluate`` and the leaderboard never care whether masks come from a network
(``baselines.predict``) or from a folder someone else filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from facebench.errors import InvalidDataset, MissingPredictions, require_exists
from facebench.imageio import read_mask
from facebench.labels import FACEBENCH, LabelSet


@runtime_checkable
class Parser(Protocol):
    """Labels faces. ``images``: H×W×3 uint8 RGB; returns H×W uint8 ids in ``labels``, same sizes."""

    labels: LabelSet
    name: str

    def predict(self, images: Sequence[np.ndarray], ids: Sequence[str] | None = None) -> list[np.ndarray]: ...


class MaskFolderParser:
    """A 'parser' whose predictions were made elsewhere: ``{id}.png`` label maps in a folder."""

    def __init__(self, folder: str | Path, labels: LabelSet = FACEBENCH):
        self.folder = require_exists(folder, "prediction folder")
        if not self.folder.is_dir():
            raise InvalidDataset("is not a folder of {id}.png masks", self.folder)
        self.labels = labels
        self.name = self.folder.name
        self.available = {p.stem: p for p in self.folder.glob("*.png")}

    def check_ids(self, ids: Sequence[str]) -> None:
        """Raise one line naming how many predictions are missing, and the first few."""
        missing = [i for i in ids if i not in self.available]
        if missing:
            first = ", ".join(missing[:5])
            raise MissingPredictions(
                f"{len(missing)} of {len(ids)} predictions missing (first: {first})", self.folder,
                hint="expected one {id}.png per sample",
            )

    def predict(self, images: Sequence[np.ndarray], ids: Sequence[str] | None = None) -> list[np.ndarray]:
        if ids is None:
            raise ValueError("MaskFolderParser needs sample ids")
        self.check_ids(ids)
        out = []
        for img, i in zip(images, ids, strict=True):
            path = self.available[i]
            mask = self.labels.validate(read_mask(path), path)
            if img.size and mask.shape != img.shape[:2]:
                from facebench.errors import InvalidMask

                raise InvalidMask(f"mask is {mask.shape[1]}×{mask.shape[0]}, image is {img.shape[1]}×{img.shape[0]}",
                                  path)
            out.append(mask)
        return out
