"""A subject's part of a run: computed into a scratch folder, committed by rename, finished when done.json exists.

Both backends (local processes in ``run.py``, Ray tasks in ``ray_backend.py``) use these, so there is one
definition of a finished subject and one way to commit one:

    work/<subject>/samples.parquet   the new views (label_source = refined)
    work/<subject>/quality.npz       initial vs refined accumulators (``facebench.metrics.save_evaluations``)
    work/<subject>/examples.npz      a few extreme-pose views for the report's overlays
    work/<subject>/done.json         written last: only a folder holding it is ever read
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from facebench.captures import Capture
from facebench.dataset import samples_table
from facebench.files import atomic_write, temp_dir
from facebench.labels import FACEBENCH
from facebench.metrics import save_evaluations
from facebench.parsing import MaskFolderParser, Parser
from generators.refine.generate_config import RefineConfig
from generators.refine.inputs import crop_to_head, frame_box, head_frame, in_frame, load_views, relabel_crops
from generators.refine.localise import localised_masks
from generators.refine.subject import refine_subject

# Builds the parser in the worker (a checkpoint is loaded once per process): () -> facebench Parser
ParserFactory = Callable[[], Parser]
# Optionally rebuilds ground truth for a capture (synthetic subjects): capture -> camera -> (rgb, labels)
TruthFactory = Callable[[Capture], Callable | None]
# Marks a subject's scratch folder; only ``work/<subject>/`` with a done.json is ever read.
SCRATCH = ".scratch-"
DONE = "done.json"


@dataclass
class SubjectJob:
    """One subject to refine: its name and its capture, read and checked once by the caller."""

    subject: str
    capture: Capture


@dataclass
class RunSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def is_finished(work: Path, subject: str) -> bool:
    """The one definition of a finished subject: its folder holds done.json (committed last)."""
    return (work / subject / DONE).exists()


def finished_parts(work: Path) -> list[Path]:
    """Finished subject folders in name order (scratch folders are hidden and never count)."""
    if not work.is_dir():
        return []
    return [d for d in sorted(work.iterdir()) if not d.name.startswith(".") and is_finished(work, d.name)]


def refine_into(job: SubjectJob, scratch: Path, cfg: RefineConfig, seed: int, parser_factory: ParserFactory,
                truth_factory: TruthFactory | None, threads: int | None = None) -> bytes:
    """Refine one subject, writing its part files into ``scratch``; returns the done.json bytes (not written).

    Kept apart from committing the part so a remote worker can compute on its own disk and ship the bytes back.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    parser = parser_factory()
    views = load_views(job.capture, parser)
    can_parse = not isinstance(parser, MaskFolderParser)  # a folder's masks can't be re-made for new pictures
    localise = cfg.head_frame == "auto" and can_parse and any(max(v.mask.shape) > cfg.work_size for v in views)
    frame, frame_record = head_frame(job.capture, views, cfg.head_frame,
                                     localised_masks(views, parser, cfg.work_size) if localise else None)
    fh = cfg.views.frame_height
    cropped = [crop_to_head(v, cfg.work_size, box=frame_box(v, frame, fh) if fh else None)
               for v in in_frame(views, frame)]
    views = [v for v, _ in cropped]
    if cfg.relabel_crops and can_parse:
        views = relabel_crops(views, [c is not None for _, c in cropped], parser)
    truth = truth_factory(job.capture) if truth_factory is not None else None
    # A folder of masks can't label new views; a network can, which measures the initial parser there.
    predict = (lambda images: parser.predict(images)) if can_parse else None
    res = refine_subject(job.subject, views, frame, FACEBENCH, cfg, seed, predict=predict,
                         truth=truth, checkpoint_dir=str(scratch / "fit"))
    # The scratch folder is the unit of atomicity (committed by rename), so its files are written in place.
    pq.write_table(samples_table(res.samples), scratch / "samples.parquet", compression="zstd")
    save_evaluations(scratch / "quality.npz", res.quality)
    for name, examples in (("examples", res.examples), ("inputs", res.input_examples),
                           ("newviews", res.new_examples)):
        if examples:
            np.savez_compressed(scratch / f"{name}.npz", **{f"{i}__{k}": (v if v is not None else np.zeros(0))
                                                          for i, e in enumerate(examples) for k, v in e.items()})
    shutil.rmtree(scratch / "fit", ignore_errors=True)
    input_yaws = [round(v.yaw, 1) for v in views]
    return json.dumps({"subject": job.subject, **res.stats, "head_frame": frame_record,
                       "input_yaws": input_yaws, "input_crops": [c for _, c in cropped if c is not None]}).encode()


def part_record(work: Path, subject: str) -> dict:
    """What a finished part's done.json says (head frame, input yaws, stats)."""
    return json.loads((work / subject / DONE).read_text())


def load_examples(parts: list[Path], name: str = "examples", per_subject: int = 2) -> list[dict]:
    """The first few overlay examples of each finished part (``examples``: new views with truth; ``inputs``:
    input views re-rendered; ``newviews``: new views by pose bin), as written by ``refine_into``."""
    out = []
    for d in parts:
        p = d / f"{name}.npz"
        if not p.exists():
            continue
        with np.load(p) as z:
            for i in sorted({int(k.split("__")[0]) for k in z.files})[:per_subject]:
                e = {k.split("__", 1)[1]: z[k] for k in z.files if k.startswith(f"{i}__")}
                e["id"], e["yaw"] = str(e["id"]), float(e["yaw"])
                for k in ("initial", "truth"):
                    if k in e and e[k].size == 0:
                        e[k] = None
                out.append(e)
    return out


def scratch_dir(work: Path, subject: str) -> Path:
    """A fresh hidden sibling of the subject's folder (same filesystem, so the commit is a rename)."""
    return temp_dir(work, prefix=f".{subject}{SCRATCH}")


def commit_part(scratch: Path, work: Path, subject: str, done: bytes) -> str:
    """Move a finished scratch folder to ``work/<subject>`` by rename, then write done.json last.

    A reader sees either no folder, a folder without done.json (ignored), or the whole part. If the subject
    was finished meanwhile (a duplicate attempt), the existing part wins and the scratch is dropped.
    """
    if is_finished(work, subject):
        shutil.rmtree(scratch, ignore_errors=True)
        return "skipped"
    out = work / subject
    shutil.rmtree(out, ignore_errors=True)  # a part left unfinished by an older version or a crash
    os.rename(scratch, out)
    atomic_write(out / DONE, done)
    return "done"


def clear_scratch(work: Path) -> None:
    """Scratch folders left by killed attempts are never read; drop them when a run starts."""
    if work.is_dir():
        for d in work.glob(f".*{SCRATCH}*"):
            shutil.rmtree(d, ignore_errors=True)
