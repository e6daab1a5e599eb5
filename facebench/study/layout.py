"""The study folder on disk, declared once.

::

    study.json        what the server may show: the tasks (opaque item codes, media file names), scale, mode
    key.json          what it must not: which model and image hide behind each code (read only by export)
    media/*.png       images and overlays, named by opaque codes
    ratings.sqlite    responses (created by ``serve``)

Blinding rests on this split: the server reads ``study.json`` and serves ``media/`` and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from facebench.files import atomic_write
from facebench.study.errors import StudyError

MANIFEST = "study.json"
KEY = "key.json"
MEDIA = "media"
DB = "ratings.sqlite"
ATTENTION = "attention"  # the "model" name of an attention check's known-bad overlay
DEFAULT_LABELS = ("Bad", "Poor", "Fair", "Good", "Excellent")  # ITU-T P.800 absolute category rating


@dataclass(frozen=True)
class Task:
    """One screen for a rater: an image and one overlay (rating) or two (pairwise)."""

    item: str
    kind: str  # "rating" | "pairwise"
    image: str
    overlays: tuple[str, ...]


@dataclass(frozen=True)
class KeyEntry:
    """The truth behind an item code. ``models`` has one name (rating) or two (pairwise, in overlay order)."""

    item: str
    kind: str
    sample: str
    pose_bin: str
    models: tuple[str, ...]
    attention: str = ""  # corruption used for an attention check, "" for a real item


@dataclass
class Manifest:
    """Public part of a study: served tasks and how to ask about them."""

    tasks: list[Task]
    mode: str = "rating"
    seed: int = 0
    scale_min: int = 1
    scale_max: int = 5
    scale_labels: tuple[str, ...] = DEFAULT_LABELS
    question: str = "How well does the coloured overlay outline the face regions of this image?"
    pair_question: str = "Which overlay outlines the face regions better?"
    title: str = "facebench face-parsing study"
    extra: dict = field(default_factory=dict)

    def task_map(self) -> dict[str, Task]:
        return {t.item: t for t in self.tasks}


def write_manifest(folder: Path, manifest: Manifest) -> None:
    data = asdict(manifest)
    atomic_write(folder / MANIFEST, json.dumps(data, indent=1).encode())


def write_key(folder: Path, key: list[KeyEntry], info: dict) -> None:
    data = {"info": info, "items": [asdict(k) for k in key]}
    atomic_write(folder / KEY, json.dumps(data, indent=1).encode())


def _read_json(path: Path, what: str) -> dict:
    if not path.exists():
        raise StudyError(f"no {path.name}: not a study folder", path.parent,
                         hint="make one with `facebench study build`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise StudyError(f"{what} is not valid JSON ({e.msg}, line {e.lineno})", path) from None
    except (OSError, ValueError, RecursionError) as e:  # a folder, not UTF-8, nested too deep
        raise StudyError(f"{what} is not readable JSON ({type(e).__name__})", path) from None


def read_manifest(folder: str | Path) -> Manifest:
    folder = Path(folder)
    data = _read_json(folder / MANIFEST, "manifest")
    tasks = [Task(t["item"], t["kind"], t["image"], tuple(t["overlays"])) for t in data.pop("tasks")]
    data["scale_labels"] = tuple(data.get("scale_labels", DEFAULT_LABELS))
    return Manifest(tasks=tasks, **data)


def read_key(folder: str | Path) -> tuple[dict[str, KeyEntry], dict]:
    folder = Path(folder)
    data = _read_json(folder / KEY, "key")
    entries = {}
    for k in data["items"]:
        k["models"] = tuple(k["models"])
        entries[k["item"]] = KeyEntry(**k)
    return entries, data.get("info", {})
