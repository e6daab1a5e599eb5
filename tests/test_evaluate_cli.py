"""`facebench evaluate` end to end through the real console entry point."""

import json

import numpy as np
import pandas as pd
from conftest import run_cli

from facebench.dataset import load
from facebench.imageio import write_png
from facebench.metrics import Evaluation


def _predictions(ds_root, out, corrupt_every=3):
    """Truth with some regions wiped on every third image: a known, imperfect parser."""
    ev = Evaluation()
    for i, s in enumerate(load(ds_root).iter_samples("test")):
        pred = s.mask.copy()
        if i % corrupt_every == 0:
            pred[: pred.shape[0] // 2] = 1
        write_png(out / f"{s.id}.png", pred)
        ev.add(pred, s.mask, s.id, s.pose_bin, s.yaw)
    return ev


def test_evaluate_writes_full_report(tmp_path, small_dataset):
    preds = tmp_path / "preds"
    ev = _predictions(small_dataset, preds)
    out = tmp_path / "report"
    r = run_cli("evaluate", str(preds), "--data", str(small_dataset), "--out", str(out), "--n-boot", "200")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["overall"]["mean_f1_fg"] == ev.scores(n_boot=0)["mean_f1_fg"]
    assert "Dataset-level confusion matrix" in m["convention"] and m["dataset_revision"].startswith("sha256:")
    bins = pd.read_csv(out / "per_pose_bin.csv")
    assert set(bins.pose_bin) == {"frontal", "three_quarter", "profile", "rear"}
    for b in bins.itertuples():
        assert b.mean_f1_fg == ev.scores(b.pose_bin, n_boot=0)["mean_f1_fg"]
        assert b.lo <= b.mean_f1_fg <= b.hi
    region = pd.read_csv(out / "per_region.csv")
    assert len(region) == 19 and region.f1.max() <= 1
    kept = Evaluation.load(out / "evaluation.npz")  # the per-image matrices, for paired comparisons
    assert kept.ids == ev.ids and (kept.per_image == ev.per_image).all()
    for name in ("per_region_f1", "per_pose_bin", "f1_vs_yaw", "confusion", "worst", "best"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 5000
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6 and "src=\"figures" not in html
    assert "mean F1 (fg)" in r.stdout
    from facebench.outputs import REPORT_ENTRIES  # what a rerun may replace without asking

    assert {p.name for p in out.iterdir()} == set(REPORT_ENTRIES)


def test_evaluate_errors_are_one_line_exit_2(tmp_path, small_dataset):
    preds = tmp_path / "preds"
    _predictions(small_dataset, preds)
    ids = sorted(p.stem for p in preds.glob("*.png"))

    def fails(*args, match):
        r = run_cli("evaluate", *args)
        assert r.returncode == 2, (r.stdout, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and match in lines[0], r.stderr

    fails(str(tmp_path / "nope"), "--data", str(small_dataset), match="nope: prediction folder does not exist")
    fails(str(preds), "--data", str(tmp_path / "nods"), match="nods: dataset does not exist")
    fails(str(preds), "--data", str(preds), match="not a facebench dataset")
    for i in ids[:4]:
        (preds / f"{i}.png").unlink()
    fails(str(preds), "--data", str(small_dataset), match=f"4 of 24 predictions missing (first: {ids[0]}")
    _predictions(small_dataset, preds)
    write_png(preds / f"{ids[5]}.png", np.zeros((10, 10), np.uint8))
    fails(str(preds), "--data", str(small_dataset), match=f"{ids[5]}.png: mask is 10×10, image is 48×48")
    write_png(preds / f"{ids[5]}.png", np.full((48, 48), 30, np.uint8))
    fails(str(preds), "--data", str(small_dataset), match=f"{ids[5]}.png: illegal label values 30")


def test_help_is_fast_and_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0 and "evaluate" in r.stdout


def test_evaluate_runs_a_checkpoint(tmp_path, small_dataset):
    """`evaluate <checkpoint>` predicts with the model itself: here the shipped frontal BiSeNet."""
    from pathlib import Path

    ckpt = Path(__file__).resolve().parent.parent / "baselines" / "weights" / "bisenet-frontal"
    out = tmp_path / "rep"
    r = run_cli("evaluate", str(ckpt), "--data", str(small_dataset), "--out", str(out), "--n-boot", "0")
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["overall"]["n_images"] == 24 and 0 <= m["overall"]["pixel_acc"] <= 1


def test_evaluate_caches_a_models_predictions_by_weights_and_dataset_revision(tmp_path, small_dataset):
    """A rerun scores the cached predictions (same numbers, no model run); a changed dataset is predicted anew."""
    from pathlib import Path

    from facebench.dataset import FacebenchDataset

    ckpt = Path(__file__).resolve().parent.parent / "baselines" / "weights" / "bisenet-frontal"
    out = tmp_path / "rep"
    first = run_cli("evaluate", str(ckpt), "--data", str(small_dataset), "--out", str(out), "--n-boot", "0")
    assert first.returncode == 0 and "cached" not in first.stdout, first.stderr[-2000:]
    key = json.loads((out / "predictions" / "cache.json").read_text())
    assert key["dataset_revision"] == FacebenchDataset(small_dataset).revision and len(key["model_sha256"]) == 64
    assert len(list((out / "predictions").glob("*.png"))) == 24
    stamp = (out / "predictions" / "img000.png").stat().st_mtime_ns
    again = run_cli("evaluate", str(ckpt), "--data", str(small_dataset), "--out", str(out), "--n-boot", "0")
    assert again.returncode == 0 and "predictions: cached" in again.stdout
    assert (out / "predictions" / "img000.png").stat().st_mtime_ns == stamp  # not rewritten
    assert again.stdout.splitlines()[-6:] == first.stdout.splitlines()[-6:]  # the same scores
    key["dataset_revision"] = "sha256:somethingelse"  # as if the dataset had changed
    (out / "predictions" / "cache.json").write_text(json.dumps(key))
    third = run_cli("evaluate", str(ckpt), "--data", str(small_dataset), "--out", str(out), "--n-boot", "0")
    assert third.returncode == 0 and "cached" not in third.stdout


def test_a_killed_evaluate_leaves_the_previous_report_whole(tmp_path, small_dataset):
    """SIGKILL while the new report's figures are drawn: the folder still holds the previous run's report,
    whole; the next run clears the leftover and writes its own."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "report"
    _predictions(small_dataset, tmp_path / "a", corrupt_every=3)
    assert run_cli("evaluate", str(tmp_path / "a"), "--data", str(small_dataset), "--out", str(out),
                   "--n-boot", "0").returncode == 0
    old = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    ev_b = _predictions(small_dataset, tmp_path / "b", corrupt_every=2)
    proc = subprocess.Popen([sys.executable, "-m", "facebench", "evaluate", str(tmp_path / "b"), "--data",
                             str(small_dataset), "--out", str(out), "--n-boot", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".report.tmp-*/metrics.json")):  # the new report is half written
        assert proc.poll() is None and time.monotonic() < deadline, "evaluate ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == old
    r = run_cli("evaluate", str(tmp_path / "b"), "--data", str(small_dataset), "--out", str(out), "--n-boot", "0")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["overall"]["mean_f1_fg"] == ev_b.scores(n_boot=0)["mean_f1_fg"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.")]


def test_usage_mistakes_are_one_line_and_exit_2():
    """A missing argument, a bad option value, an unknown command or option: one line naming the mistake and
    where the help is, exit 2 (no framed usage box); --help itself still succeeds."""
    cases = {("evaluate",): "Missing argument 'model'", ("generate", "--subjects", "two"): "'--subjects'",
             ("nosuch",): "No such command 'nosuch'", ("evaluate", "x", "--data", "d", "--bogus"): "--bogus",
             ("study", "nosuch"): "No such command 'nosuch'"}
    for args, match in cases.items():
        r = run_cli(*args)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1, (args, r.stderr)
        assert lines[0].startswith("error: ") and match in lines[0] and "--help" in lines[0], lines[0]
    r = run_cli("evaluate", "--help")
    assert r.returncode == 0 and "Score a face parser" in r.stdout and not r.stderr.strip()
