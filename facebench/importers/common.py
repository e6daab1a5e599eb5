"""The import pipeline shared by every dataset reader: scan, check conventions, convert, write.

A reader knows one released layout: where the images, labels and landmarks are (``scan``), how to
read one label map in the dataset's own ids (``load_mask``) and how to get a head pose (``pose``).
``run_import`` does the rest the same way for all: a left/right convention vote over a sample of
masks, remapping by name to facebench's 19 classes, size checks, provenance, and one atomic write of
the facebench dataset folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebench.dataset import DatasetInfo, Sample, build_dataset
from facebench.errors import InvalidConfig, InvalidDataset, InvalidMask, require_exists
from facebench.imageio import read_file
from facebench.importers.policy import LabelPolicy, absent_classes
from facebench.importers.sides import SideVote, vote_sides
from facebench.labels import FACEBENCH, IGNORE, LabelSet
from facebench.pose import Pose

CHECK_SAMPLE = 64  # masks read up front to decide conventions
SPLIT_ALIASES = {"val": "validation", "valid": "validation", "tuning": "validation", "exemplars": "train",
                 "testing": "test"}


@dataclass(frozen=True)
class Item:
    """One image of the source dataset, before reading any pixels."""

    id: str
    split: str  # facebench split name: train | validation | test
    subject: str
    image: Path
    files: dict[str, Any] = field(default_factory=dict)  # reader-specific paths (label, landmarks, parts)


@dataclass
class ImportOptions:
    splits: tuple[str, ...] | None = None  # None = every split the dataset has
    limit: int | None = None  # at most this many images per split (first by id)
    merge: dict[str, str] = field(default_factory=dict)  # overrides of the reader's default merges
    sides: str = "auto"  # auto | subject | image
    extra: dict[str, Path | None] = field(default_factory=dict)  # reader-specific files (partition, landmarks)


class Reader:
    """Base class: one released dataset layout."""

    name: str = ""
    pretty_name: str = ""
    source: LabelSet = FACEBENCH
    default_sides: str = "subject"
    merge: dict[str, str] = {}
    license: str = "other"
    citation: str = ""
    notes: tuple[str, ...] = ()

    def __init__(self, root: Path, options: ImportOptions):
        self.root = require_exists(root, f"{self.name} folder")
        self.options = options

    def scan(self) -> list[Item]:
        raise NotImplementedError

    def load_mask(self, item: Item) -> np.ndarray:
        """H×W uint8 label map in the dataset's own ids."""
        raise NotImplementedError

    def load_image(self, item: Item, mask_shape: tuple[int, int]) -> np.ndarray:
        """H×W×3 uint8 RGB, the size of its mask (a wrong size is a one-line error)."""
        img = read_rgb(item.image)
        if img.shape[:2] != mask_shape:
            raise InvalidMask(f"image is {img.shape[1]}×{img.shape[0]} but its label map is "
                              f"{mask_shape[1]}×{mask_shape[0]}", item.image)
        return img

    def prepare(self, checked: list[tuple[Item, np.ndarray]], lut: np.ndarray) -> dict[str, Any]:
        """Hook for dataset-wide checks on the sampled (item, facebench mask) pairs; returns card facts."""
        return {}

    def pose(self, item: Item, mask: np.ndarray) -> tuple[Pose, dict[str, Any]]:
        """Head pose and its provenance (``pose_source`` at least) for one image with its facebench mask."""
        raise NotImplementedError


def read_rgb(path: Path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB; a damaged one is one line naming it (``facebench.imageio``)."""
    return np.asarray(read_file(path, "image", InvalidDataset).convert("RGB"))


def read_lines(path: Path, what: str = "list file") -> list[str]:
    """A text file's lines; a missing, unreadable or binary file is one line naming it."""
    path = require_exists(path, what)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else e.strerror or str(e)
        raise InvalidDataset(f"cannot read the {what} ({reason})", path) from None


def read_gray(path: Path, what: str = "label map") -> np.ndarray:
    """A single-channel PNG as uint8 (colour-encoded greys are reduced to their first channel)."""
    im = read_file(path, what, InvalidMask)
    if im.mode in ("L", "P", "1", "I;16", "I"):
        arr = np.asarray(im.convert("L") if im.mode in ("1", "I;16", "I") else im)
    else:
        arr = np.asarray(im.convert("RGB"))[..., 0]
    return np.ascontiguousarray(arr, dtype=np.uint8)


def subject_of(name: str) -> str:
    """``12345_2`` -> ``12345``: several faces cut from one photo share a subject (and a split)."""
    head, sep, tail = name.rpartition("_")
    return head if sep and tail.isdigit() else name


def side_lut(source: LabelSet, sides: str) -> np.ndarray:
    """256-entry LUT: dataset ids -> facebench ids by name, swapping l/r if the dataset means image sides."""
    lut = FACEBENCH.lut_from(source, missing=IGNORE)
    return FACEBENCH.flip_lut[lut] if sides == "image" else lut


def _select(items: list[Item], options: ImportOptions, root: Path) -> dict[str, list[Item]]:
    by_split: dict[str, list[Item]] = {}
    for it in sorted(items, key=lambda i: i.id):
        by_split.setdefault(it.split, []).append(it)
    if options.splits:
        wanted = [SPLIT_ALIASES.get(s.lower(), s.lower()) for s in options.splits]
        unknown = [s for s in wanted if s not in by_split]
        if unknown:
            raise InvalidDataset(f"has no split {', '.join(unknown)} (it has: {', '.join(sorted(by_split))})", root)
        by_split = {s: by_split[s] for s in dict.fromkeys(wanted)}
    if options.limit:
        by_split = {s: v[: options.limit] for s, v in by_split.items()}
    return by_split


def run_import(
    reader: Reader, out: Path, overwrite: bool = False, progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Convert ``reader``'s dataset into a facebench dataset folder at ``out``; returns a summary."""
    opts = reader.options
    by_split = _select(reader.scan(), opts, reader.root)
    everything = [it for v in by_split.values() for it in v]
    if not everything:
        raise InvalidDataset(f"no {reader.pretty_name} images found", reader.root,
                             hint=f"see docs/datasets.md for the expected {reader.pretty_name} layout")
    if on_total:
        on_total(len(everything))
    step = max(1, len(everything) // CHECK_SAMPLE)
    sample = everything[::step][:CHECK_SAMPLE]
    raw = [(it, reader.load_mask(it)) for it in sample]
    if opts.sides == "auto":
        vote = vote_sides((m for _, m in raw), reader.source, reader.default_sides)
    else:
        vote = SideVote(opts.sides, 0, 0, "--sides option")
    lut = side_lut(reader.source, vote.convention)
    facts = reader.prepare([(it, lut[m]) for it, m in raw], lut)
    absent = absent_classes(reader.source)
    labelled = [k for k in opts.merge if k not in absent]
    if labelled:
        raise InvalidConfig(f"--merge {labelled[0]}=…: {reader.pretty_name} labels {labelled[0]} itself",
                            hint="only classes the dataset lacks can be merged: " + ", ".join(absent))
    merge = {**reader.merge, **opts.merge}
    policy = LabelPolicy(reader.name, reader.source.names, vote.convention, absent, merge, reader.notes)
    pose_sources: dict[str, int] = {}
    fit: list[float] = []

    def samples(items: list[Item]) -> Iterator[Sample]:
        for it in items:
            src = reader.load_mask(it)
            img = reader.load_image(it, src.shape)
            mask = lut[src]
            pose, prov = reader.pose(it, mask)
            pose_sources[prov["pose_source"]] = pose_sources.get(prov["pose_source"], 0) + 1
            if prov.get("pose_rms_rel") is not None:
                fit.append(prov["pose_rms_rel"])
            files = {k: _rel(v, reader.root) if isinstance(v, Path) else v for k, v in it.files.items()
                     if isinstance(v, Path | str)}
            yield Sample(
                id=it.id, image=img, mask=mask, subject=it.subject, yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll,
                label_source="gt",
                provenance={"dataset": reader.name, "source_id": it.id, "image_file": _rel(it.image, reader.root),
                            "files": files, **prov, "label_policy": policy.to_dict()},
            )  # fmt: skip
            if progress:
                progress(1)

    generation = {"importer": reader.name, "source_folder": reader.root.name, "sides": vote.to_dict(),
                  "label_policy": policy.to_dict(), **facts}
    info = DatasetInfo(
        pretty_name=f"{reader.pretty_name} (facebench import)",
        description=_description(reader, policy),
        license=reader.license, annotations_creators="expert-generated", generation=generation,
        citation=reader.citation,
    )  # fmt: skip
    build_dataset({s: samples(v) for s, v in by_split.items()}, out, info, overwrite=overwrite)
    return {"out": str(out), "counts": {s: len(v) for s, v in by_split.items()}, "sides": vote.to_dict(),
            "pose_sources": pose_sources, "pose_fit_median_rel": float(np.median(fit)) if fit else None,
            "label_policy": policy.to_dict(), **facts}


def _rel(p: Path, root: Path) -> str:
    try:
        return Path(p).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(p)


def _description(reader: Reader, policy: LabelPolicy) -> str:
    return "\n".join([
        f"{reader.pretty_name}, converted by `facebench import {reader.name}` into the facebench layout. "
        "The images and labels are the dataset's own and keep its licence: do not redistribute this folder "
        "unless that licence allows it.", "", *policy.describe(),
    ])  # fmt: skip
