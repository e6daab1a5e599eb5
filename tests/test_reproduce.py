"""`facebench reproduce --scale small` through the real CLI: real heads, fits, fine-tunes and evaluations."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from facebench.app.reproduce.models import FINETUNES, MODELS
from facebench.app.reproduce.stages import MARKER
from facebench.pose import POSE_BIN_NAMES

STAGES = ["baseline", "test", "generate", "frontal", "variants", *(f"finetune/{m}" for m in FINETUNES),
          *(f"evaluate/{m}" for m in MODELS), "report"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("repro") / "run"
    r = run_cli("reproduce", "--scale", "small", "--out", str(out))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return out, r.stdout


def test_every_model_is_scored_on_every_pose_bin_with_sound_intervals(small_run):
    out, stdout = small_run
    doc = json.loads((out / "report" / "comparison.json").read_text())
    assert list(doc["models"]) == list(MODELS)
    assert doc["scale"]["name"] == "small"
    # the four fine-tunes share one budget
    for m in FINETUNES:
        cfg = json.loads((out / "finetune" / m / "config.json").read_text())["training"]
        assert (cfg["steps"], cfg["batch_size"], cfg["seed"], cfg["lr"]) == (30, 4, 0, 1e-3)
        assert cfg["init"] == str(out / "baseline")
    for m in MODELS:
        for g in ("all", *POSE_BIN_NAMES, "|yaw|>=60"):
            s = doc["scores"][m][g]
            assert s["n_images"] > 0, (m, g)
            for key in ("mean_f1_fg", "miou"):
                lo, hi = s[f"{key}_ci"]
                assert all(math.isfinite(v) for v in (s[key], lo, hi)), (m, g, key)
                assert lo <= s[key] <= hi, (m, g, key, lo, s[key], hi)
            assert 0 <= s["mean_f1_fg"] <= 1
        # each model's standard `facebench evaluate` report exists and agrees with the comparison
        metrics = json.loads((out / "evaluate" / m / "metrics.json").read_text())
        assert metrics["overall"]["mean_f1_fg"] == pytest.approx(doc["scores"][m]["all"]["mean_f1_fg"], abs=1e-6)
        assert set(metrics["by_pose_bin"]) == set(POSE_BIN_NAMES)
    # the test split has every pose bin and the same images for every model
    assert sum(doc["scores"]["baseline"][b]["n_images"] for b in POSE_BIN_NAMES) == doc["test"]["n_images"] == 32
    assert "report:" in stdout and stdout.count("[done]") == len(STAGES)


def test_every_finetune_but_the_ablation_keeps_the_frontal_recipe_data(small_run):
    from baselines.data import FRONTAL
    from facebench.dataset import load
    from generators.heads.capture import subject_seed

    out, _ = small_run
    front = load(out / "frontal" / "data").metadata("train")
    refined = load(out / "generate" / "data").metadata("train")
    assert len(front) == 2 * 12 and sorted(set(front["subject"])) == ["synth-train-00000", "synth-train-00001"]
    assert (front["yaw"].abs() < FRONTAL.max_yaw).all() and (front["pitch"].abs() < FRONTAL.max_pitch).all()
    meta = json.loads((out / "frontal" / "captures" / "synth-train-00001" / "transforms.json").read_text())
    assert meta["facebench"]["seed"] == subject_seed(0, "train", 1)  # the recipe's own subject, not a new one
    for m in ("a_raw", "b_refined", "c_oracle"):
        ids = set(load(out / "variants" / m).metadata("train")["id"])
        assert len(ids) == len(refined) + len(front) and set(front["id"]) <= ids and set(refined["id"]) <= ids
    trained_on = {m: json.loads((out / "finetune" / m / "config.json").read_text())["training"]["command"]
                  for m in FINETUNES}
    assert trained_on["b_pure"].endswith("(fine-tune on data)")
    assert trained_on["b_refined"].endswith("(fine-tune on b_refined)")


def test_claims_are_judged_with_their_numbers(small_run):
    out, _ = small_run
    doc = json.loads((out / "report" / "comparison.json").read_text())
    claims = {c["id"]: c for c in doc["claims"]}
    assert set(claims) == {"gain_yaw60", "frontal_within_1pt", "gap_closure"}
    gain = claims["gain_yaw60"]
    assert gain["delta"] == pytest.approx(gain["refined"] - gain["baseline"], abs=1e-5)
    assert gain["pass"] == (gain["delta"] >= 0.10 and gain["refined_ci"][0] > gain["baseline_ci"][1])
    front = claims["frontal_within_1pt"]
    assert front["pass"] == (front["delta"] >= -0.01)
    gap = claims["gap_closure"]
    if gap["oracle"] > gap["raw"]:
        assert gap["closure"] == pytest.approx((gap["refined"] - gap["raw"]) / (gap["oracle"] - gap["raw"]), abs=1e-4)
        assert gap["pass"] == (gap["closure"] >= 0.5)
    else:  # no gap to close: the claim cannot be judged, and says so
        assert gap["closure"] is None and gap["pass"] is None
    md = (out / "report" / "comparison.md").read_text()
    assert "## Claims" in md and md.count("PASS**") + md.count("FAIL**") + md.count("n/a**") == 3
    assert f"{gain['baseline']:.3f}" in md and f"{front['delta']:.3f}" in md
    for name in MODELS.values():
        assert name in md
    for csv in ("by_pose_bin.csv", "per_region.csv"):
        assert len((out / "report" / csv).read_text().splitlines()) > 10


@pytest.mark.parametrize("name", ["f1_vs_yaw.png", "profile_regions.png", "extreme_grid.png"])
def test_figures_decode_and_show_something(small_run, name):
    out, _ = small_run
    img = np.asarray(Image.open(io.BytesIO((out / "report" / name).read_bytes())).convert("RGB"))
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert img.std() > 10 and len(np.unique(img.reshape(-1, 3), axis=0)) > 50


def test_rerun_resumes_and_reproduces_the_comparison(small_run):
    out, _ = small_run
    before = (out / "report" / "comparison.json").read_bytes()
    r = run_cli("reproduce", "--scale", "small", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("[skip]") == len(STAGES) and "[run]" not in r.stdout
    assert (out / "report" / "comparison.json").read_bytes() == before
    # an interrupted run: a fine-tune finished but not marked, its evaluation and the report missing
    (out / "finetune" / "b_pure" / MARKER).unlink()
    shutil.rmtree(out / "evaluate" / "b_pure")
    shutil.rmtree(out / "report")
    r = run_cli("reproduce", "--scale", "small", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming" in r.stdout + r.stderr and "[skip] generate" in r.stdout
    assert r.stdout.count("[run]") == 3
    assert (out / "report" / "comparison.json").read_bytes() == before


def test_bad_input_is_one_line_and_exit_2(tmp_path, small_run):
    r = run_cli("reproduce", "--scale", "huge", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "unknown --scale 'huge'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = run_cli("reproduce", "--scale", "small", "--out", str(blocker / "sub"))
    assert r.returncode == 2 and "cannot write the output folder" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    out, _ = small_run  # another scale in a finished run's folder is refused, not mixed in
    r = run_cli("reproduce", "--scale", "default", "--out", str(out))
    assert r.returncode == 2 and "use the same --scale" in r.stderr
