"""Labelled multiview captures -> a facebench training dataset (whole subjects per split).

Captures with ground-truth label maps (``facebench heads`` writes them; so can anyone's own rig in
nerfstudio layout) become a dataset that ``facebench train`` reads. Subjects, not views, are split,
so validation never shows a training subject from another angle.

    python -m baselines.captures CAPTURES_DIR --out DATASET [--validation-subjects 16]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facebench.captures import read_transforms
from facebench.dataset import DatasetInfo, Sample, build_dataset
from facebench.errors import InvalidCapture, require_exists


def capture_samples(root: Path, label_source: str = "gt") -> list[Sample]:
    """Every labelled view of one capture folder as a Sample (pose from the capture)."""
    cap = read_transforms(root)
    out = []
    for view in cap.views:
        if view.label_path is None:
            raise InvalidCapture(
                f"view {view.id} has no label map", root, hint="training needs labelled views"
            )
        pose = cap.pose_of(view)
        out.append(Sample(
            id=view.id, image=view.load_image(), mask=view.load_labels(), subject=cap.subject, yaw=pose.yaw,
            pitch=pose.pitch, roll=pose.roll, label_source=label_source,
            provenance={"capture": root.name, "generator": str(cap.meta.get("generator", "unknown"))},
        ))  # fmt: skip
    return out


def captures_to_dataset(captures: str | Path, out: str | Path, validation_subjects: int = 0,
                        overwrite: bool = False) -> Path:  # fmt: skip
    """Build a dataset from every ``*/transforms.json`` under ``captures``; the last N subjects
    (sorted by folder name) form the validation split."""
    root = require_exists(captures, "captures folder")
    folders = sorted(p.parent for p in root.glob("*/transforms.json"))
    if not folders:
        raise InvalidCapture("no */transforms.json capture folders", root)
    cut = len(folders) - min(validation_subjects, len(folders) - 1)
    splits = {"train": [s for f in folders[:cut] for s in capture_samples(f)]}
    if cut < len(folders):
        splits["validation"] = [s for f in folders[cut:] for s in capture_samples(f)]
    info = DatasetInfo(
        pretty_name=f"facebench training set from {root.name}",
        description="Labelled views of multiview captures, split by subject.",
        generation={
            "source": str(root.name),
            "subjects": len(folders),
            "validation_subjects": len(folders) - cut,
        },
    )
    return build_dataset(splits, out, info, overwrite=overwrite)


def main() -> None:
    ap = argparse.ArgumentParser(description="Labelled captures -> facebench dataset (split by subject).")
    ap.add_argument("captures", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--validation-subjects", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    path = captures_to_dataset(args.captures, args.out, args.validation_subjects, args.overwrite)
    print(f"dataset: {path}")


if __name__ == "__main__":
    main()
