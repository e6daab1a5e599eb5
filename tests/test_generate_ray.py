"""`facebench generate --backend ray` against a real local Ray cluster (2 CPUs, started by this module).

Covers: the same dataset bytes as the local backend, a worker killed mid-fit (retried, nothing lost or
duplicated), retries that run out (recorded as failed), and resume after the driver is killed.
The cluster tests take ~2 minutes on 2 shared cores, so they are marked slow; run them with
``.venv/bin/python -m pytest -m slow tests/test_generate_ray.py``. They skip if Ray is not installed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from facebench.imageio import write_png
from facebench.pose import Pose
from generators.heads import sample_head, write_capture

SMALL = ["--new-views", "6", "--size", "48", "--rgb-steps", "40", "--label-steps", "15", "--seed", "3"]
SUBJECTS = ["subj0", "subj1", "subj2"]


@pytest.fixture(scope="module")
def cluster() -> str:
    """A 2-CPU cluster with a small object store; workers can import this module (for the fault factories)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'facebench[distributed]')")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    here = str(Path(__file__).parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2,
             log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> tuple[Path, Path]:
    """Three synthetic subjects, 8 views at 48², noisy initial masks (as in test_generate)."""
    root = tmp_path_factory.mktemp("genray")
    poses = [Pose(y, p) for y, p in zip(np.linspace(-180, 135, 8), [15, -15] * 4, strict=True)]
    for k, seed in enumerate((5, 9, 13)):
        cap = write_capture(sample_head(seed), root / "caps" / f"subj{k}", poses, size=48, subject=f"subj{k}")
        for v in cap.views:
            m = v.load_labels()
            if abs(cap.pose_of(v).yaw) > 45:
                m[np.isin(m, [7, 8])] = 1
            write_png(root / "masks" / f"{v.id}.png", m)
    return root / "caps", root / "masks"


@pytest.fixture(scope="module")
def reference(captures, tmp_path_factory) -> Path:
    """The local backend's dataset, the yardstick for every Ray run."""
    caps, masks = captures
    out = tmp_path_factory.mktemp("ref") / "data"
    r = run_cli("generate", str(caps), "--masks", str(masks), "--out", str(out), *SMALL)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def _bytes(ds: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((ds / "data").glob("*.parquet"))}


def _part(ds: Path, subject: str) -> bytes:
    return (ds.parent / f".{ds.name}.work" / "subjects" / subject / "samples.parquet").read_bytes()


def _cfg():
    from facebench.cli_generate import refine_config

    return refine_config(variant="logits", rgb_steps=40, label_steps=15, new_views=6, size=48, seed=3, cleanup=True)


@dataclass(frozen=True)
class DieOnceMidFit:
    """Parser factory whose worker process dies ~1 s into the victim's first fit (a lost machine)."""

    masks: str
    markers: str
    victim: str

    def __call__(self):
        from facebench.parsing import MaskFolderParser

        markers, victim = Path(self.markers), self.victim

        class Dying(MaskFolderParser):
            def predict(self, images, ids=None):
                marker = markers / f"{victim}.died"
                if ids and ids[0].startswith(f"{victim}-") and not marker.exists():
                    marker.write_text(str(os.getpid()))
                    threading.Timer(1.0, os._exit, (1,)).start()  # mid-fit: the masks are read, fitting starts
                return super().predict(images, ids)

        return Dying(self.masks)


@dataclass(frozen=True)
class AlwaysRaises:
    """Parser factory that counts its attempts in a folder and raises (an unexpected bug, not bad input)."""

    markers: str

    def __call__(self):
        n = len(list(Path(self.markers).iterdir()))
        (Path(self.markers) / f"attempt{n}").write_text(str(os.getpid()))
        raise RuntimeError("simulated crash in the parser")


@pytest.mark.slow
def test_ray_backend_writes_the_local_bytes(cluster, captures, reference, tmp_path):
    caps, masks = captures
    out = tmp_path / "data"
    r = run_cli("generate", str(caps), "--masks", str(masks), "--out", str(out), *SMALL,
                "--backend", "ray", "--address", cluster)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count(": done") == 3, r.stdout
    assert _bytes(out) == _bytes(reference)
    assert (out / "README.md").read_bytes() == (reference / "README.md").read_bytes()


@pytest.mark.slow
def test_a_worker_killed_mid_fit_is_retried_nothing_lost_or_duplicated(cluster, captures, reference, tmp_path):
    from facebench.cli_generate import synthetic_truth
    from generators.refine.ray_backend import RayOptions
    from generators.refine.run import SubjectJob, run_subjects

    caps, masks = captures
    markers = tmp_path / "markers"
    markers.mkdir()
    work = tmp_path / "work"
    seen: list[tuple[str, str]] = []
    jobs = [SubjectJob(s, caps / s) for s in SUBJECTS]
    factory = DieOnceMidFit(str(masks), str(markers), victim="subj1")
    summary = run_subjects(jobs, work, _cfg(), factory, synthetic_truth, progress=lambda s, st: seen.append((s, st)),
                           ray=RayOptions(max_retries=2))
    assert (markers / "subj1.died").exists(), "the victim's worker was never killed"
    assert sorted(summary.done) == SUBJECTS and not summary.failed and not summary.skipped
    assert sorted(seen) == [(s, "done") for s in SUBJECTS]  # each subject reported exactly once
    assert sorted(d.name for d in work.iterdir()) == SUBJECTS  # no scratch folders left behind
    for s in SUBJECTS:
        assert (work / s / "samples.parquet").read_bytes() == _part(reference, s)
    ids = [i for s in SUBJECTS for i in pq.read_table(work / s / "samples.parquet").column("id").to_pylist()]
    assert len(ids) == len(set(ids)) == 3 * 6


@pytest.mark.slow
def test_retries_run_out_and_the_subject_is_recorded_failed(cluster, captures, tmp_path):
    from generators.refine.ray_backend import RayOptions
    from generators.refine.run import SubjectJob, run_subjects

    caps, _ = captures
    markers = tmp_path / "attempts"
    markers.mkdir()
    summary = run_subjects([SubjectJob("subj0", caps / "subj0")], tmp_path / "work", _cfg(), AlwaysRaises(str(markers)),
                           ray=RayOptions(max_retries=1))
    assert list(summary.failed) == ["subj0"] and not summary.done
    assert "after 2 attempts" in summary.failed["subj0"] and "simulated crash" in summary.failed["subj0"]
    assert len(list(markers.iterdir())) == 2
    assert not (tmp_path / "work" / "subj0").exists()


@pytest.mark.slow
def test_resume_after_the_driver_is_killed(cluster, captures, reference, tmp_path):
    caps, masks = captures
    out = tmp_path / "data"
    subjects = tmp_path / ".data.work" / "subjects"
    cmd = [sys.executable, "-m", "facebench", "generate", str(caps), "--masks", str(masks), "--out", str(out), *SMALL,
           "--backend", "ray", "--address", cluster]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not list(subjects.glob("*/done.json")) and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(driver.pid, signal.SIGKILL)
    finally:
        driver.wait()
    first = [p.parent.name for p in subjects.glob("*/done.json")]
    assert first and not out.exists(), "the driver finished before it could be interrupted"
    stamps = {s: (subjects / s / "done.json").stat().st_mtime_ns for s in first}

    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    for s in SUBJECTS:
        assert r.stdout.count(f"{s}: ") == 1, r.stdout
        assert f"{s}: {'skipped' if s in first else 'done'}" in r.stdout, r.stdout
    assert {s: (subjects / s / "done.json").stat().st_mtime_ns for s in first} == stamps  # not redone
    assert _bytes(out) == _bytes(reference)


def test_without_ray_the_backend_fails_in_one_line(tmp_path):
    """Ray hidden from the import system: exit 2 and the install hint, before any work starts."""
    code = ("import runpy, sys; sys.modules['ray'] = None; sys.argv[0] = 'facebench'; "
            "runpy.run_module('facebench', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code, "generate", "--backend", "ray", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "needs Ray" in lines[0] and "pip install 'facebench[distributed]'" in lines[0]
    assert not (tmp_path / ".o.work").exists()
    r = run_cli("generate", "--backend", "spark", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "unknown --backend 'spark'" in r.stderr
    r = run_cli("generate", "--address", "auto", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "--address needs --backend ray" in r.stderr
