"""Many subjects: resumable per subject, optionally in parallel, assembled into one dataset at the end.

Each subject's results land in ``<work>/<subject>/`` (``parts.py``), so an interrupted run resumes without
redoing finished subjects and a subject that failed leaves nothing behind that the assembly would read. The
dataset is written once, atomically, from the finished parts; rows are sorted by id, so the bytes do not
depend on worker count or finishing order.
"""

from __future__ import annotations

import os
import shutil
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq

from facebench.dataset import DatasetInfo, build_dataset_from_tables
from facebench.errors import FacebenchError
from generators.refine.generate_config import GenerateConfig, RefineConfig
from generators.refine.parts import (
    ParserFactory,
    RunSummary,
    SubjectJob,
    TruthFactory,
    clear_scratch,
    commit_part,
    finished_parts,
    is_finished,
    refine_into,
    scratch_dir,
)


def run_subject(job: SubjectJob, work: Path, cfg: RefineConfig, seed: int, parser_factory: ParserFactory,
                truth_factory: TruthFactory | None, threads: int | None = None) -> str:
    """Refine one subject into ``work/<subject>/`` unless it is finished; "done" or "skipped"."""
    if is_finished(work, job.subject):
        return "skipped"
    scratch = scratch_dir(work, job.subject)
    try:
        done = refine_into(job, scratch, cfg, seed, parser_factory, truth_factory, threads)
        return commit_part(scratch, work, job.subject, done)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _worker(args: tuple) -> tuple[str, str, str | None]:
    job = args[0]
    try:
        return job.subject, run_subject(*args), None
    except FacebenchError as e:
        return job.subject, "failed", str(e)
    except Exception:
        return job.subject, "failed", traceback.format_exc(limit=4)


def run_subjects(jobs: list[SubjectJob], work: Path, cfg: GenerateConfig, parser_factory: ParserFactory,
                 truth_factory: TruthFactory | None = None,
                 progress: Callable[[str, str], None] | None = None) -> RunSummary:
    """Process subjects (skipping finished ones); failures are recorded, never fatal to the others.

    ``cfg.workers`` processes on this machine, or with ``cfg.backend == "ray"`` one Ray task per subject.
    """
    work.mkdir(parents=True, exist_ok=True)
    clear_scratch(work)
    if cfg.backend == "ray":
        from generators.refine.ray_backend import run_subjects_ray

        return run_subjects_ray(jobs, work, cfg, parser_factory, truth_factory, progress)
    summary = RunSummary()
    workers = cfg.workers
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    args = [(j, work, cfg.refine, cfg.seed, parser_factory, truth_factory, threads) for j in jobs]
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


def assemble(work: Path, out: Path, cfg: GenerateConfig, info: DatasetInfo, split: str = "train",
             overwrite: bool = True) -> Path:
    """Write the dataset from every finished subject's part, recording the config in its card."""
    parts = [pq.read_table(d / "samples.parquet") for d in finished_parts(work)]
    if not parts:
        raise FacebenchError("no subject finished; nothing to assemble", work)
    info.generation = {**info.generation, "config": config_record(cfg)}
    return build_dataset_from_tables({split: parts}, out, info, overwrite=overwrite)


# Where a run executes never changes its bytes, so it is neither recorded nor a reason to start over.
EXECUTION = ("workers", "backend", "ray")


def config_record(cfg: GenerateConfig) -> dict:
    """What decides the dataset's bytes, as plain JSON values: recorded in the card and the resume stamp."""
    return _jsonable({k: v for k, v in asdict(cfg).items() if k not in EXECUTION})


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x
