"""Crash safety of ``facebench train``: same seed, same bytes, and ``kill -9`` at any instant is resumable.

The kill tests run the real CLI in a subprocess and SIGKILL it, half the time at a random instant, half the
time while a save is being written (found by polling for the save's temporary folder). After every kill the
run folder must be absent (nothing saved yet) or one whole verified state, never older than the last one; the
final uninterrupted rerun must give the same bytes as a run that was never killed.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import blob_sample_arrays
from safetensors.torch import load as load_safetensors

from baselines.checkpoint import load_state, safetensors_bytes, sha256
from facebench.dataset import Sample, build_dataset
from facebench.files import recover_dir, replace_dir, temp_dir

STEPS = 80  # 24 kills advance a run by ~1 step each (measured: 21 steps in all), so none finishes it
STATE_FILES = ("config.json", "model.safetensors", "train_state.json", "train_state.safetensors")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """Eight 32² blob images, train split only (no validation: the kill test is about saving)."""
    rng = np.random.default_rng(3)
    samples = []
    for i in range(8):
        img, mask = blob_sample_arrays(rng, 32)
        samples.append(Sample(f"t{i}", img, mask, f"s{i % 2}", float(rng.uniform(-90, 90)), 0.0))
    return build_dataset({"train": samples}, tmp_path_factory.mktemp("crash") / "ds")


def _command(data: Path, steps: int = STEPS) -> list[str]:
    """A tiny run that saves after every step; ``--out run`` is relative, so config.json (which records the
    command) is the same in every working folder."""
    return [sys.executable, "-m", "facebench", "train", "bisenet", "--data", str(data), "--out", "run",
            "--steps", str(steps), "--size", "32", "--batch-size", "2", "--width", "0.25", "--save-every", "1",
            "--val-split", "", "--threads", "1", "--seed", "0"]  # fmt: skip


def _files(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in STATE_FILES}


def _train(data: Path, work: Path) -> dict[str, bytes]:
    work.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(_command(data), cwd=work, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return _files(work / "run")


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory) -> dict[str, bytes]:
    """The bytes of a run that was never interrupted."""
    return _train(tiny_data, tmp_path_factory.mktemp("reference"))


def test_safetensors_bytes_do_not_depend_on_hash_order():
    """The library's metadata order changes from map to map; ours is sorted, and it still loads."""
    tensors = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(3, dtype=torch.int64)}
    meta = {k: k.upper() for k in ("format", "architecture", "zeta", "alpha", "mid")}
    outs = {safetensors_bytes(tensors, meta) for _ in range(20)}
    assert len(outs) == 1
    data = outs.pop()
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0 and list(json.loads(data[8 : 8 + n])["__metadata__"]) == sorted(meta)
    back = load_safetensors(data)
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)


def test_two_identical_runs_write_identical_bytes(tiny_data, reference, tmp_path):
    """Two processes, same seed and command: every file of the run folder is byte-identical."""
    assert _train(tiny_data, tmp_path) == reference
    assert json.loads(reference["train_state.json"])["step"] == STEPS
    assert not [p.name for p in tmp_path.iterdir() if p.name != "run"]  # no temporary left behind


def _temporaries(work: Path) -> set[str]:
    return {p.name for p in work.iterdir() if p.name.startswith(".run.tmp-")}


def _saving(work: Path, before: set[str] = frozenset()) -> bool:
    """A save is being written: a temporary folder exists that was not there (left by a kill) ``before``."""
    return bool(_temporaries(work) - before)


def _check_state(run: Path) -> int:
    """The step of the one whole state in ``run`` (weights, config, optimizer state and record agree)."""
    state, config = load_state(run)  # weights sha256 == config's
    record = json.loads((run / "train_state.json").read_text())
    assert record["weights_sha256"] == config["weights"]["sha256"]
    assert sha256((run / "train_state.safetensors").read_bytes()) == record["state_sha256"]
    assert config["training"]["steps"] == record["step"] and state
    return int(record["step"])


def _wait(proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.002)


def _wait_for_save(proc: subprocess.Popen, work: Path, skip: int, before: set[str]) -> None:
    """Return as soon as the (skip+1)-th save of ``proc`` has started."""
    while proc.poll() is None:
        if _saving(work, before):
            if skip == 0:
                return
            skip -= 1
            while _saving(work, before) and proc.poll() is None:
                time.sleep(0.0002)
        time.sleep(0.0002)


def _kill_and_resume(data: Path, work: Path, kills: int, seed: int) -> dict[str, int]:
    """SIGKILL ``kills`` runs in ``work``, cycling through three kinds of instant, and check the folder after
    each; returns counts for the report. Kinds: (0) a random instant after start (start-up, reading the saved
    state, the first steps); (1) a random instant in the 0.3 s after the run's first save (steps and saves);
    (2) at once or 0-4 ms into the 1st-3rd save of the run (a save takes ~10 ms here)."""
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    run, last = work / "run", -1
    stats = {"kills": 0, "mid_save": 0, "absent": 0, "steps_at_kills": 0}
    while stats["kills"] < kills:
        before = _temporaries(work)  # left by the previous kill; the new run removes them first
        proc = subprocess.Popen(_command(data), cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            kind = stats["kills"] % 3
            if kind == 0:
                _wait(proc, rng.uniform(0.0, 2.5))
            elif kind == 1:
                _wait_for_save(proc, work, 0, before)
                _wait(proc, rng.uniform(0.0, 0.3))
            else:
                _wait_for_save(proc, work, rng.randrange(3), before)
                _wait(proc, rng.choice([0.0, rng.uniform(0.0, 0.004)]))
            assert proc.poll() is None, "the run finished before it could be killed: raise STEPS"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        stats["kills"] += 1
        stats["mid_save"] += _saving(work, before)  # killed with its save's temporary folder still there
        if not run.exists():
            assert last < 0, "a saved state disappeared"
            stats["absent"] += 1
            continue
        step = _check_state(run)
        assert step >= last, (step, last)
        stats["steps_at_kills"] += step - max(last, 0)
        last = step
    return stats


def _kill_test(tiny_data, reference, tmp_path, kills: int, seed: int) -> None:
    work = tmp_path / "killed"
    t0 = time.perf_counter()
    stats = _kill_and_resume(tiny_data, work, kills, seed)
    t1 = time.perf_counter()
    assert _train(tiny_data, work) == reference  # the last, uninterrupted resume: the same bytes
    assert not [p.name for p in work.iterdir() if p.name != "run"]  # what the kills left was cleaned up
    print(f"\n{stats}; kills {t1 - t0:.1f} s, final resume {time.perf_counter() - t1:.1f} s")
    assert stats["mid_save"] >= 1, stats  # at least one kill landed inside a save


def test_kill_during_training_and_saves_then_resume_gives_the_same_bytes(tiny_data, reference, tmp_path):
    _kill_test(tiny_data, reference, tmp_path, kills=6, seed=1)


@pytest.mark.slow
def test_kill_24_times_then_resume_gives_the_same_bytes(tiny_data, reference, tmp_path):
    _kill_test(tiny_data, reference, tmp_path, kills=24, seed=2)


def test_a_kill_between_the_two_renames_leaves_the_old_folder(tmp_path, monkeypatch):
    """Where the filesystem cannot swap in one step, replace_dir renames twice; recover_dir undoes a kill
    between the renames by putting the old folder back."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "a.txt").write_text("old")
    new = temp_dir(tmp_path, ".run.tmp-")
    (new / "a.txt").write_text("new")
    monkeypatch.setattr("facebench.files.exchange", lambda a, b: False)
    real = Path.rename

    def killed_before_the_second(self, target):
        if self == new:
            raise KeyboardInterrupt  # as if the process died here
        return real(self, target)

    monkeypatch.setattr(Path, "rename", killed_before_the_second)
    with pytest.raises(KeyboardInterrupt):
        replace_dir(new, out)
    monkeypatch.setattr(Path, "rename", real)
    assert not out.exists()
    removed = recover_dir(out)
    assert (out / "a.txt").read_text() == "old" and len(removed) == 2  # the new temporary and the empty trash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_train_refuses_a_folder_holding_other_files(tiny_data, tmp_path):
    """Each save replaces the run folder whole, so a folder with someone else's files is not taken."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    r = subprocess.run(_command(tiny_data, steps=1), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "notes.txt" in lines[0], r.stderr
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
