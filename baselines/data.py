"""A facebench dataset split as in-memory uint8 tensors at one training size.

Synthetic and refined datasets are small (thousands of 256² images = a few hundred MB), so the
whole split is decoded once and batches are plain tensor indexing: no loader workers competing
for the two CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import Progress

from baselines.transforms import image_to_tensor, mask_to_tensor
from facebench.dataset import FacebenchDataset
from facebench.errors import InvalidConfig
from facebench.labels import FACEBENCH
from facebench.pose import wrap_degrees


@dataclass(frozen=True)
class PoseFilter:
    """Keep views with |yaw| < max_yaw and |pitch| < max_pitch (None = no limit)."""

    max_yaw: float | None = None
    max_pitch: float | None = None

    def keep(self, yaw: float, pitch: float) -> bool:
        ok_yaw = self.max_yaw is None or abs(float(wrap_degrees(yaw))) < self.max_yaw
        ok_pitch = self.max_pitch is None or abs(float(pitch)) < self.max_pitch
        return ok_yaw and ok_pitch

    def as_dict(self) -> dict[str, float | None]:
        return {"max_yaw": self.max_yaw, "max_pitch": self.max_pitch}


# Near-frontal, like the views a parser trained on CelebAMask-HQ has seen.
FRONTAL = PoseFilter(max_yaw=30.0, max_pitch=20.0)


@dataclass
class SplitTensors:
    """images N×3×S×S uint8, masks N×S×S uint8, plus per-sample ids and pose."""

    images: torch.Tensor
    masks: torch.Tensor
    ids: list[str]
    yaws: list[float]
    pitches: list[float]

    def __len__(self) -> int:
        return len(self.ids)


def load_split(
    ds: FacebenchDataset,
    split: str,
    size: int,
    pose: PoseFilter = PoseFilter(),
    limit: int | None = None,
    progress: Progress | None = None,
) -> SplitTensors:
    """Decode ``split`` of ``ds`` (filtered by pose, at most ``limit`` samples) at ``size``²."""
    if ds.labels.names != FACEBENCH.names:
        raise InvalidConfig(
            f"dataset classes {ds.labels.names[:3]}… are not the facebench label set",
            ds.root,
            hint="remap the dataset to facebench's 19 classes first",
        )
    meta = ds.metadata(split)
    keep = np.array([pose.keep(y, p) for y, p in zip(meta["yaw"], meta["pitch"], strict=True)], dtype=bool)
    n = int(keep.sum()) if limit is None else min(int(keep.sum()), limit)
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    masks = torch.empty((n, size, size), dtype=torch.uint8)
    ids, yaws, pitches = [], [], []
    task = progress.add_task(f"loading {split}", total=n) if progress else None
    row = 0
    for i, sample in enumerate(ds.iter_samples(split)):
        if row >= n:
            break
        if not keep[i]:
            continue
        images[row] = image_to_tensor(sample.image, size).mul_(255).round_().to(torch.uint8)
        masks[row] = mask_to_tensor(sample.mask, size)
        ids.append(sample.id)
        yaws.append(float(sample.yaw))
        pitches.append(float(sample.pitch))
        row += 1
        if progress is not None and task is not None:
            progress.advance(task)
    if progress is not None and task is not None:
        progress.remove_task(task)
    return SplitTensors(images, masks, ids, yaws, pitches)
