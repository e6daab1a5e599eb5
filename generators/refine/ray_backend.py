"""One Ray task per subject: the same parts as a local run, committed by the driver as tasks finish.

Ray is imported only here, and only when this backend is chosen. Workers refine a subject on their own
disk and return the part's bytes through the object store; the driver is the only writer of the work folder
(scratch folder, rename, done.json last), so duplicate or killed attempts can never leave a half part that
the assembly would read. Captures, mask folders and parser checkpoints must be at the same path on every
node (a shared filesystem); the work and output folders need only exist on the driver.

Retries are bounded: Ray re-runs a task whose worker died, and (``retry_exceptions``) one that raised an
unexpected exception, up to ``max_retries`` times in all. A ``FacebenchError`` (bad input) is not retried:
the same input would fail the same way. After that the subject is recorded as failed and the others go on.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from facebench.errors import BackendUnavailable, FacebenchError
from generators.refine.generate_config import GenerateConfig, RefineConfig
from generators.refine.parts import (
    ParserFactory,
    RunSummary,
    SubjectJob,
    TruthFactory,
    commit_part,
    is_finished,
    refine_into,
    scratch_dir,
)


def require_ray():
    """Import Ray or say in one line how to get it."""
    try:
        import ray
    except ImportError:
        raise BackendUnavailable("--backend ray needs Ray, which is not installed",
                                 hint="pip install 'facebench[distributed]'") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on a GCS address nobody listens at: ray.init keeps retrying it (seen: over 8 minutes)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():  # "auto", ray:// (Ray Client times out by itself)
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise BackendUnavailable(f"cannot reach the Ray cluster at {address}: {e}",
                                 hint="is it running (`ray status`)? start one with `ray start --head` or omit "
                                      "--address") from None


def _connection_hint(error: BaseException) -> str:
    """`ray start` (Ray 2.60) turns on token auth; ray.init with an explicit address sends no token unless told."""
    e: BaseException | None = error
    while e is not None:
        if type(e).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(e):
            return ("the cluster uses token authentication: set RAY_AUTH_MODE=token and provide its token "
                    "(RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)")
        e = e.__cause__ or e.__context__
    return "start one with `ray start --head` or omit --address; a token-auth cluster also needs RAY_AUTH_MODE=token"


def refine_task(job: SubjectJob, cfg: RefineConfig, seed: int, parser_factory: ParserFactory,
                truth_factory: TruthFactory | None, threads: int) -> tuple[str, dict[str, bytes] | None, str | None]:
    """Body of the Ray task: (status, part files by name, error). Bad input is returned, not raised."""
    scratch = Path(tempfile.mkdtemp(prefix=f"facebench-{job.subject}-"))  # the worker's own disk
    try:
        done = refine_into(job, scratch, cfg, seed, parser_factory, truth_factory, threads)
        files = {p.name: p.read_bytes() for p in sorted(scratch.iterdir()) if p.is_file()}
        return "done", {**files, "done.json": done}, None
    except FacebenchError as e:
        return "failed", None, str(e)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_part(work: Path, subject: str, files: dict[str, bytes]) -> str:
    """Commit a part returned by a task: files into a scratch folder, rename, done.json last."""
    scratch = scratch_dir(work, subject)
    try:
        for name, data in files.items():
            if name != "done.json":
                (scratch / name).write_bytes(data)
        return commit_part(scratch, work, subject, files["done.json"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_subjects_ray(jobs: list[SubjectJob], work: Path, cfg: GenerateConfig, parser_factory: ParserFactory,
                     truth_factory: TruthFactory | None,
                     progress: Callable[[str, str], None] | None = None) -> RunSummary:
    """Fan subjects out as Ray tasks (``cfg.ray``); finished subjects are skipped before anything is scheduled."""
    ray = require_ray()
    options = cfg.ray
    started = not ray.is_initialized()
    if started:
        try:
            # Local-cluster settings only when we start one: ray:// clients forward non-default kwargs.
            local = {} if options.address else {"include_dashboard": False,
                                                "object_store_memory": options.object_store_memory}
            if options.address:
                _check_reachable(options.address)
            ray.init(address=options.address or "local", log_to_driver=False, **local)
        except ConnectionError as e:
            raise BackendUnavailable(f"cannot reach the Ray cluster at {options.address}: {e}",
                                     hint=_connection_hint(e)) from None
    task = ray.remote(refine_task).options(num_cpus=options.cpus_per_subject, max_retries=options.max_retries,
                                           retry_exceptions=True)
    summary = RunSummary()

    def report(subject: str, status: str) -> None:
        if progress:
            progress(subject, status)

    queue = []
    for job in jobs:
        if is_finished(work, job.subject):
            summary.skipped.append(job.subject)
            report(job.subject, "skipped")
        else:
            queue.append(job)
    queue.reverse()  # pop() from the end submits in the given order
    pending: dict = {}
    try:
        while queue or pending:
            # A bounded window keeps the object store and the wait list small on 10,000-subject runs.
            window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)) // options.cpus_per_subject)
            while queue and len(pending) < window:
                job = queue.pop()
                pending[task.remote(job, cfg.refine, cfg.seed, parser_factory, truth_factory,
                                    options.cpus_per_subject)] = job.subject
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                subject = pending.pop(ref)
                try:
                    status, files, err = ray.get(ref)
                except ray.exceptions.RayError as e:  # retries exhausted: exception or dead worker
                    last = (str(e).strip().splitlines() or [""])[-1]
                    status, files = "failed", None
                    err = f"{type(e).__name__} after {options.max_retries + 1} attempts: {last}"
                if status == "done":
                    status = write_part(work, subject, files)
                    (summary.done if status == "done" else summary.skipped).append(subject)
                else:
                    summary.failed[subject] = err or "unknown error"
                report(subject, status)
    finally:
        for ref in pending:  # interrupted: stop the remaining work (finished parts are already committed)
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
    return summary
