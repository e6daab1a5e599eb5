"""Many subjects: resumable per subject, optionally in parallel, assembled into one dataset at the end.

Each subject's results land in ``<work>/<subject>/`` and a ``done.json`` marker is written last, so an
interrupted run resumes without redoing finished subjects and a subject that failed leaves nothing
behind that the assembly would read. The dataset is written once, atomically, from the finished parts;
rows are sorted by id, so the bytes do not depend on worker count or finishing order.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from facebench.captures import Capture, read_transforms
from facebench.dataset import DatasetInfo, build_dataset_from_tables, samples_table
from facebench.errors import FacebenchError, InvalidCapture
from facebench.imageio import atomic_write_bytes
from facebench.labels import FACEBENCH
from facebench.metrics import Evaluation
from facebench.parsing import MaskFolderParser, Parser
from generators.refine.lift import LiftInput
from generators.refine.subject import RefineConfig, refine_subject

if TYPE_CHECKING:
    from generators.refine.ray_backend import RayOptions

# Builds the parser in the worker (a checkpoint is loaded once per process): () -> facebench Parser
ParserFactory = Callable[[], Parser]
# Optionally rebuilds ground truth for a capture (synthetic subjects): capture -> camera -> (rgb, labels)
TruthFactory = Callable[[Capture], Callable | None]
# Marks a subject's scratch folder; only ``work/<subject>/`` with a done.json is ever read.
SCRATCH_SUFFIX = ".scratch"


@dataclass
class SubjectJob:
    subject: str
    capture: Path


@dataclass
class RunSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def check_capture(capture: Capture) -> None:
    """Fail early, naming the file: missing images, mixed sizes, cameras that don't see the head."""
    sizes = {}
    for v in capture.views:
        if v.image_path is None or not v.image_path.exists():
            raise InvalidCapture(f"view {v.id}: image missing", v.image_path or capture.root)
        sizes.setdefault((v.camera.width, v.camera.height), v.image_path)
    if len(sizes) != 1:
        (a, pa), (b, pb) = list(sizes.items())[:2]
        raise InvalidCapture(f"inconsistent image sizes: {a[0]}×{a[1]} ({pa.name}) vs {b[0]}×{b[1]} ({pb.name})",
                             capture.root / "transforms.json")
    _check_cameras_see_head(capture)


def _inputs(capture: Capture, parser: Parser) -> tuple[list[LiftInput], list, list[np.ndarray] | None]:
    check_capture(capture)
    images = [v.load_image() for v in capture.views]
    masks = parser.predict(images, [v.id for v in capture.views])
    for v, m in zip(capture.views, masks, strict=True):
        FACEBENCH.validate(m, f"initial mask of {v.id}")
    truth = [v.load_labels() for v in capture.views] if all(v.label_path for v in capture.views) else None
    if truth is not None:
        for v, t in zip(capture.views, truth, strict=True):
            FACEBENCH.validate(t, v.label_path)
    inputs = [LiftInput(image=im, viewmat=v.camera.world_to_camera, K=v.camera.K, mask=m, yaw=capture.pose_of(v).yaw)
              for im, v, m in zip(images, capture.views, masks, strict=True)]
    return inputs, [v.camera for v in capture.views], truth


def _check_cameras_see_head(capture: Capture) -> None:
    """The head origin must project inside every image, in front of the camera."""
    origin = capture.head_to_world[:3, 3][None]
    for v in capture.views:
        uv, z = v.camera.project(origin)
        u, w = uv[0]
        if z[0] <= 0 or not (0 <= u < v.camera.width and 0 <= w < v.camera.height):
            raise InvalidCapture(f"camera of view {v.id} does not see the head (origin projects to "
                                 f"({u:.0f}, {w:.0f}) at depth {z[0]:.2f})", capture.root / "transforms.json")


def _save_evaluations(path: Path, quality: dict[str, Evaluation]) -> None:
    arrays = {}
    for key, ev in quality.items():
        k = key.replace("/", "__")
        arrays[f"{k}__cm"] = ev.per_image
        arrays[f"{k}__ids"] = np.array(ev.ids, dtype=str)
        arrays[f"{k}__groups"] = np.array(ev.groups, dtype=str)
        arrays[f"{k}__yaws"] = np.array(ev.yaws, dtype=np.float64)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_evaluations(paths: list[Path]) -> dict[str, Evaluation]:
    """Merge per-subject quality accumulators into one per key."""
    out: dict[str, Evaluation] = {}
    for p in paths:
        with np.load(p) as z:
            keys = sorted({k.rsplit("__", 1)[0] for k in z.files})
            for k in keys:
                ev = out.setdefault(k.replace("__", "/"), Evaluation(labels=FACEBENCH))
                ev.matrices.extend(list(z[f"{k}__cm"]))
                ev.ids.extend(z[f"{k}__ids"].tolist())
                ev.groups.extend(z[f"{k}__groups"].tolist())
                ev.yaws.extend(z[f"{k}__yaws"].tolist())
    return out


def refine_into(job: SubjectJob, scratch: Path, cfg: RefineConfig, parser_factory: ParserFactory,
                truth_factory: TruthFactory | None, threads: int | None = None) -> bytes:
    """Refine one subject, writing its part files into ``scratch``; returns the done.json bytes (not written).

    Kept apart from committing the part so a remote worker can compute on its own disk and ship the bytes back.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    capture = read_transforms(job.capture)
    parser = parser_factory()
    inputs, cameras, input_truth = _inputs(capture, parser)
    truth = truth_factory(capture) if truth_factory is not None else None
    # A folder of masks can't label new views; a network can, which measures the initial parser there.
    predict = None if isinstance(parser, MaskFolderParser) else (lambda images: parser.predict(images))
    res = refine_subject(job.subject, inputs, cameras, capture.head_to_world, FACEBENCH, cfg, predict=predict,
                         truth=truth, input_truth=input_truth, checkpoint_dir=str(scratch / "fit"))
    pq.write_table(samples_table(res.samples), scratch / "samples.parquet", compression="zstd")
    _save_evaluations(scratch / "quality.npz", res.quality)
    if res.examples:
        np.savez_compressed(scratch / "examples.npz", **{f"{i}__{k}": (v if v is not None else np.zeros(0))
                                                         for i, e in enumerate(res.examples) for k, v in e.items()})
    shutil.rmtree(scratch / "fit", ignore_errors=True)
    return json.dumps({"subject": job.subject, **res.stats}).encode()


def scratch_dir(work: Path, subject: str) -> Path:
    """A fresh hidden sibling of the subject's folder (same filesystem, so the commit is a rename)."""
    work.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=work, prefix=f".{subject}.", suffix=SCRATCH_SUFFIX))


def commit_part(scratch: Path, work: Path, subject: str, done: bytes) -> str:
    """Move a finished scratch folder to ``work/<subject>`` by rename, then write done.json last.

    A reader sees either no folder, a folder without done.json (ignored), or the whole part. If the subject
    was finished meanwhile (a duplicate attempt), the existing part wins and the scratch is dropped.
    """
    out = work / subject
    if (out / "done.json").exists():
        shutil.rmtree(scratch, ignore_errors=True)
        return "skipped"
    shutil.rmtree(out, ignore_errors=True)  # a part left unfinished by an older version or a crash
    os.rename(scratch, out)
    atomic_write_bytes(out / "done.json", done)
    return "done"


def clear_scratch(work: Path) -> None:
    """Scratch folders left by killed attempts are never read; drop them when a run starts."""
    if work.is_dir():
        for d in work.glob(f".*{SCRATCH_SUFFIX}"):
            shutil.rmtree(d, ignore_errors=True)


def run_subject(job: SubjectJob, work: Path, cfg: RefineConfig, parser_factory: ParserFactory,
                truth_factory: TruthFactory | None, threads: int | None = None) -> str:
    """Refine one subject into ``work/<subject>/`` (samples.parquet, quality.npz, examples.npz, done.json)."""
    if (work / job.subject / "done.json").exists():
        return "skipped"
    scratch = scratch_dir(work, job.subject)
    try:
        done = refine_into(job, scratch, cfg, parser_factory, truth_factory, threads)
        return commit_part(scratch, work, job.subject, done)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _worker(args: tuple) -> tuple[str, str, str | None]:
    job, work, cfg, parser_factory, truth_factory, threads = args
    try:
        return job.subject, run_subject(job, work, cfg, parser_factory, truth_factory, threads), None
    except FacebenchError as e:
        return job.subject, "failed", str(e)
    except Exception:
        return job.subject, "failed", traceback.format_exc(limit=4)


def run_subjects(jobs: list[SubjectJob], work: Path, cfg: RefineConfig, parser_factory: ParserFactory,
                 truth_factory: TruthFactory | None = None, workers: int = 1,
                 progress: Callable[[str, str], None] | None = None, ray: RayOptions | None = None) -> RunSummary:
    """Process subjects (skipping finished ones); failures are recorded, never fatal to the others.

    ``workers`` processes on this machine, or, given ``ray``, one Ray task per subject on a cluster.
    """
    work.mkdir(parents=True, exist_ok=True)
    clear_scratch(work)
    if ray is not None:
        from generators.refine.ray_backend import run_subjects_ray

        return run_subjects_ray(jobs, work, cfg, parser_factory, truth_factory, ray, progress)
    summary = RunSummary()
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    args = [(j, work, cfg, parser_factory, truth_factory, threads if workers > 1 else None) for j in jobs]
    if workers <= 1:
        iterate = (_worker(a) for a in args)
    else:
        import multiprocessing as mp

        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        iterate = (f.result() for f in as_completed([pool.submit(_worker, a) for a in args]))
    try:
        for subject, status, err in iterate:
            if status == "failed":
                summary.failed[subject] = err or "unknown error"
            else:
                (summary.done if status == "done" else summary.skipped).append(subject)
            if progress:
                progress(subject, status)
    finally:
        if workers > 1:
            pool.shutdown(cancel_futures=True)
    return summary


def assemble(work: Path, out: Path, cfg: RefineConfig, info: DatasetInfo, split: str = "train",
             overwrite: bool = True) -> Path:
    """Write the dataset from every finished subject's part."""
    parts = [pq.read_table(d / "samples.parquet") for d in finished_parts(work)]
    if not parts:
        raise FacebenchError("no subject finished; nothing to assemble", work)
    info.generation = {**info.generation, "refine": _jsonable(asdict(cfg))}
    return build_dataset_from_tables({split: parts}, out, info, overwrite=overwrite)


def finished_parts(work: Path) -> list[Path]:
    """Subject folders whose done.json exists, in name order (scratch folders are hidden and never count)."""
    return [d for d in sorted(work.iterdir()) if not d.name.startswith(".") and (d / "done.json").exists()]


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x
