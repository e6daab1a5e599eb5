"""`facebench generate --backend ray` against a real Ray cluster that this module starts with `ray start --head`.

One cluster (2 CPUs, its own temp dir, free ports, its own auth token) serves every test; the CLI joins it
with `--address host:port` or `--address ray://host:port`, the in-process tests with `ray.init(address=…)`.
Covers: the same dataset bytes as the local backend, a worker killed halfway through a subject (retried,
nothing lost or duplicated), retries that run out (recorded as failed, finished parts untouched, the dataset
still assembles), resume after the driver is killed, and the one-line error when a token is missing (marked
slow: Ray takes ~20 s to give up on the refused connection).
Runs in the default suite; skips if Ray is not installed:

    .venv/bin/python -m pytest -q tests/test_generate_ray.py            # default: everything but the token test
    .venv/bin/python -m pytest -q -m '' tests/test_generate_ray.py      # all of it
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import noisy_synthetic_captures, run_cli

PARAMS = dict(variant="logits", rgb_steps=40, label_steps=15, new_views=6, size=48, seed=3, cleanup=True)
# The tiny captures (8 views at 48²) are too coarse to estimate a head frame from: they use the declared one.
SMALL = ["--variant", "logits", "--cleanup", "--new-views", "6", "--size", "48", "--rgb-steps", "40",
         "--label-steps", "15", "--seed", "3", "--head-frame", "capture"]
SUBJECTS = ["subj0", "subj1"]
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@dataclass(frozen=True)
class Head:
    address: str  # the GCS, host:port
    client: str  # Ray Client, ray://host:port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head():
    """`ray start --head --block` with 2 CPUs on free ports; stopped (its own process group only) at the end.

    `ray start` turns on token authentication (Ray 2.60), so the cluster gets a fresh token and every driver
    in this module is given RAY_AUTH_MODE=token and the token's path (the CLI subprocesses inherit them).
    Workers run at the launcher's priority (RAY_worker_niceness=0: Ray's default nice 15 starves them on a
    shared machine), import this module (PYTHONPATH, for the fault-injecting parser factories), and keep
    their scratch folders in the module's temp dir (TMPDIR).
    """
    ray_cli = Path(sys.executable).parent / "ray"
    if not ray_cli.exists():
        pytest.importorskip("ray", reason="Ray is not installed (pip install 'facebench[distributed]')")
        pytest.skip(f"no `ray` command next to {sys.executable}")
    root = Path(tempfile.mkdtemp(prefix="fbray"))  # short: Ray's unix socket paths must stay under 108 bytes
    (root / "tmp").mkdir()
    token = root / "token"
    token.write_text(secrets.token_hex(32))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    here = str(Path(__file__).parent)
    env = {k: v for k, v in os.environ.items() if k not in AUTH_VARS} | auth | {
        "RAY_worker_niceness": "0", "TMPDIR": str(root / "tmp"),
        "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)}
    proc = None
    try:
        for attempt in range(3):  # a port picked here can be taken before Ray binds it: retry with new ones
            port, client = _free_port(), _free_port()
            cmd = [str(ray_cli), "start", "--head", "--block", "--port", str(port), "--ray-client-server-port",
                   str(client), "--dashboard-agent-listen-port", str(_free_port()), "--num-cpus", "2",
                   "--include-dashboard", "false", "--object-store-memory", str(200 * 1024**2),
                   "--temp-dir", str(root / "ray"), "--disable-usage-stats"]
            log = root / f"head{attempt}.log"
            with open(log, "wb") as f:
                proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=root,
                                        start_new_session=True)
            if _head_ready(proc, log, f"127.0.0.1:{port}", env):
                break
            _stop(proc)
        else:
            pytest.fail(f"`ray start --head` did not come up in 3 attempts:\n{log.read_text()[-3000:]}")
        with pytest.MonkeyPatch.context() as mp:
            for k in AUTH_VARS:
                mp.delenv(k, raising=False)
            for k, v in auth.items():
                mp.setenv(k, v)
            yield Head(address=f"127.0.0.1:{port}", client=f"ray://127.0.0.1:{client}")
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _head_ready(proc: subprocess.Popen, log: Path, address: str, env: dict[str, str]) -> bool:
    """Started, and a task really runs (a Ray agent can still die just after "Ray runtime started")."""
    deadline = time.monotonic() + 120
    while b"Ray runtime started" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    probe = (f"import ray; ray.init(address={address!r}, log_to_driver=False); "
             "assert ray.get(ray.remote(lambda: 1).remote(), timeout=60) == 1")
    try:
        ok = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=90).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    return ok and proc.poll() is None


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to `ray start --block` (it stops what it started), then SIGKILL to the group we created."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.fixture(scope="module")
def cluster(head):
    """This process as a driver on the head (one Ray job, so its workers stay warm across tests)."""
    import ray

    ray.init(address=head.address, log_to_driver=False)
    try:
        yield head
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> tuple[Path, Path]:
    """Two synthetic subjects, 8 views at 48², noisy initial masks (as in test_generate)."""
    return noisy_synthetic_captures(tmp_path_factory.mktemp("genray"))


@pytest.fixture(scope="module")
def reference(captures, tmp_path_factory) -> Path:
    """The local backend's dataset, the yardstick for every Ray run (its work folder holds the parts)."""
    caps, masks = captures
    out = tmp_path_factory.mktemp("ref") / "data"
    r = run_cli("generate", str(caps), "--masks", str(masks), "--out", str(out), *SMALL)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def _bytes(ds: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((ds / "data").glob("*.parquet"))}


def _parts(ds: Path) -> Path:
    return ds.parent / f".{ds.name}.work" / "subjects"


def _cfg(max_retries: int = 2):
    """SMALL as a library config, on Ray."""
    from dataclasses import replace

    from generators.refine.config import RayOptions
    from generators.refine.generate_config import GenerateConfig

    d = GenerateConfig()
    refine = replace(d.refine, out_size=PARAMS["size"], views=replace(d.refine.views, n_views=PARAMS["new_views"]),
                     lift=replace(d.refine.lift, rgb_steps=PARAMS["rgb_steps"], label_steps=PARAMS["label_steps"]),
                     cleanup=replace(d.refine.cleanup, enabled=PARAMS["cleanup"]), head_frame="capture")
    return replace(d, refine=refine, seed=PARAMS["seed"], backend="ray", ray=RayOptions(max_retries=max_retries))


def _jobs(caps: Path):
    from facebench.captures import read_capture
    from generators.refine.parts import SubjectJob

    return [SubjectJob(s, read_capture(caps / s)) for s in SUBJECTS]


def _attempts(markers: Path, subject: str) -> list[str]:
    return sorted(p.name for p in markers.glob(f"{subject}.*.attempt"))


@dataclass(frozen=True)
class DieOnceMidSubject:
    """Parser factory: every attempt leaves a marker; the victim's first attempt kills its worker process as soon
    as its RGB fit has finished (the fit checkpoint appears in the task's scratch folder), before the label fit."""

    masks: str
    markers: str
    victim: str

    def __call__(self):
        from facebench.parsing import MaskFolderParser

        markers, victim = Path(self.markers), self.victim

        class Dying(MaskFolderParser):
            def predict(self, images, ids=None):
                subject = ids[0].split("-", 1)[0]  # view ids are {subject}-{view}
                (markers / f"{subject}.{os.getpid()}.attempt").write_text("")
                died = markers / f"{victim}.died"
                if subject == victim and not died.exists():
                    tmp, pattern = Path(tempfile.gettempdir()), f"facebench-{victim}-*/fit/fit.safetensors"
                    before = set(tmp.glob(pattern))

                    def die_after_the_rgb_fit():
                        while not set(tmp.glob(pattern)) - before:
                            time.sleep(0.01)
                        died.write_text(str(os.getpid()))
                        os._exit(1)  # a lost machine: no exception, no clean-up

                    threading.Thread(target=die_after_the_rgb_fit, daemon=True).start()
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


def _same_bytes_through(address: str, captures, reference, tmp_path) -> None:
    caps, masks = captures
    out = tmp_path / "data"
    r = run_cli("generate", str(caps), "--masks", str(masks), "--out", str(out), *SMALL,
                "--backend", "ray", "--address", address)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count(": done") == 2, r.stdout
    assert _bytes(out) == _bytes(reference)
    assert (out / "README.md").read_bytes() == (reference / "README.md").read_bytes()


def test_ray_backend_writes_the_local_bytes(head, captures, reference, tmp_path):
    """Joining the head by its GCS address (host:port), 2 subjects on 2 CPUs at once, finishing in either order."""
    _same_bytes_through(head.address, captures, reference, tmp_path)


@pytest.mark.slow  # Ray Client's per-client server failed to start in time once on a loaded CI box
def test_ray_client_address_writes_the_local_bytes(head, captures, reference, tmp_path):
    """The same through Ray Client (ray://host:port)."""
    _same_bytes_through(head.client, captures, reference, tmp_path)


def test_a_worker_killed_mid_subject_is_retried_nothing_lost_or_duplicated(cluster, captures, reference, tmp_path):
    from generators.refine.pipeline import synthetic_truth
    from generators.refine.run import run_subjects

    caps, masks = captures
    markers = tmp_path / "markers"
    markers.mkdir()
    work = tmp_path / "work"
    seen: list[tuple[str, str]] = []
    factory = DieOnceMidSubject(str(masks), str(markers), victim="subj1")
    summary = run_subjects(_jobs(caps), work, _cfg(max_retries=2), factory, synthetic_truth,
                           progress=lambda s, st: seen.append((s, st)))
    assert (markers / "subj1.died").exists(), "the victim's worker was never killed"
    died = (markers / "subj1.died").read_text()
    victim = _attempts(markers, "subj1")
    assert len(victim) == 2 and f"subj1.{died}.attempt" in victim  # killed once, retried in another process
    assert len(_attempts(markers, "subj0")) == 1
    assert sorted(summary.done) == SUBJECTS and not summary.failed and not summary.skipped
    assert sorted(seen) == [(s, "done") for s in SUBJECTS]  # each subject reported exactly once
    assert sorted(d.name for d in work.iterdir()) == SUBJECTS  # no scratch folders left behind
    for s in SUBJECTS:
        assert (work / s / "samples.parquet").read_bytes() == (_parts(reference) / s / "samples.parquet").read_bytes()
    ids = [i for s in SUBJECTS for i in pq.read_table(work / s / "samples.parquet").column("id").to_pylist()]
    assert len(ids) == len(set(ids)) == len(SUBJECTS) * PARAMS["new_views"]


def test_retries_run_out_the_subject_is_recorded_failed_and_the_rest_is_intact(cluster, reference, captures,
                                                                                tmp_path):
    from facebench.dataset import DatasetInfo, validate
    from generators.refine.run import assemble, run_subjects

    caps, _ = captures
    work = tmp_path / "work"
    shutil.copytree(_parts(reference) / "subj0", work / "subj0")  # a subject finished by an earlier run
    before = {p.name: p.read_bytes() for p in (work / "subj0").iterdir()}
    markers = tmp_path / "attempts"
    markers.mkdir()
    summary = run_subjects(_jobs(caps), work, _cfg(max_retries=1), AlwaysRaises(str(markers)))
    assert summary.skipped == ["subj0"] and list(summary.failed) == ["subj1"] and not summary.done
    assert "after 2 attempts" in summary.failed["subj1"] and "simulated crash" in summary.failed["subj1"]
    assert len(list(markers.iterdir())) == 2  # 1 + max_retries, and subj0 never scheduled
    assert sorted(d.name for d in work.iterdir()) == ["subj0"]  # nothing of subj1, no scratch
    assert {p.name: p.read_bytes() for p in (work / "subj0").iterdir()} == before
    ds = assemble(work, tmp_path / "data", _cfg(), DatasetInfo())
    assert validate(ds) == {"train": PARAMS["new_views"]}


def test_resume_after_the_driver_is_killed(head, captures, reference, tmp_path):
    """The first driver runs one subject at a time (--cpus-per-subject 2) and is SIGKILLed after the first."""
    caps, masks = captures
    out = tmp_path / "data"
    subjects = _parts(out)
    cmd = [sys.executable, "-m", "facebench", "generate", str(caps), "--masks", str(masks), "--out", str(out), *SMALL,
           "--backend", "ray", "--address", head.address]
    driver = subprocess.Popen([*cmd, "--cpus-per-subject", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not list(subjects.glob("*/done.json")) and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(driver.pid, signal.SIGKILL)
    finally:
        driver.wait()
    first = [p.parent.name for p in subjects.glob("*/done.json")]
    assert len(first) == 1 and not out.exists(), "the driver was not interrupted between the subjects"
    stamps = {s: (subjects / s / "done.json").stat().st_mtime_ns for s in first}

    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    for s in SUBJECTS:
        assert r.stdout.count(f"{s}: ") == 1, r.stdout
        assert f"{s}: {'skipped' if s in first else 'done'}" in r.stdout, r.stdout
    assert {s: (subjects / s / "done.json").stat().st_mtime_ns for s in first} == stamps  # not redone
    assert sorted(d.name for d in subjects.iterdir()) == SUBJECTS
    assert _bytes(out) == _bytes(reference)


@pytest.mark.slow  # Ray itself takes ~20 s to give up on the refused connection
def test_a_cluster_that_needs_a_token_is_refused_in_one_line(head, captures, tmp_path):
    """`ray start` clusters use token auth; a driver given --address but no token gets told how to fix it."""
    caps, masks = captures
    env = {k: v for k, v in os.environ.items() if k not in AUTH_VARS}
    r = subprocess.run([sys.executable, "-m", "facebench", "generate", str(caps), "--masks", str(masks),
                        "--out", str(tmp_path / "o"), *SMALL, "--backend", "ray", "--address", head.address],
                       capture_output=True, text=True, timeout=300, env=env)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 2 and len(errors) == 1, r.stderr[-3000:]
    assert "cannot reach the Ray cluster" in errors[0] and "RAY_AUTH_MODE=token" in errors[0], errors[0]
    assert not (tmp_path / "o").exists()


def test_an_address_nobody_listens_at_fails_in_seconds_in_one_line(captures, tmp_path):
    """ray.init alone keeps retrying a dead GCS address for minutes; facebench checks the port first."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'facebench[distributed]')")
    caps, masks = captures
    address = f"127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    r = run_cli("generate", str(caps), "--masks", str(masks), "--out", str(tmp_path / "o"), *SMALL,
                "--backend", "ray", "--address", address)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 2 and len(errors) == 1, r.stderr[-3000:]
    assert errors[0].startswith(f"error: cannot reach the Ray cluster at {address}"), errors[0]
    assert time.monotonic() - t0 < 60 and not (tmp_path / "o").exists()


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
    assert r.returncode == 2 and "unknown backend 'spark'" in r.stderr
    r = run_cli("generate", "--address", "auto", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "Ray options (address, cpus_per_subject, max_retries) need backend 'ray'" in r.stderr
