"""Ratings CSV validation (one-line errors) and the aggregate command's report folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from facebench.study.errors import InvalidRatings
from facebench.study.ratings import read_ratings, validate_ratings
from facebench.study.simulate import simulate_pairs, simulate_ratings

CLI = [sys.executable, "-m", "facebench.study.cli"]


def _raw(**cols) -> pd.DataFrame:
    base = {"rater": ["r1", "r1", "r2"], "sample": ["a", "b", "a"], "model": ["A", "B", "A"], "rating": ["4", "3", "5"]}
    base.update(cols)
    return pd.DataFrame({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(("change", "message"), [
    ({"rating": None}, "missing column rating"),
    ({"rater": None, "model": None}, "missing columns rater, model"),
    ({"rating": ["4", "6", "5"]}, "rating '6' is not an integer in 1..5 (line 3)"),
    ({"rating": ["4", "3.5", "5"]}, "rating '3.5'"),
    ({"rating": ["4", "", "5"]}, "rating ''"),
    ({"rating": ["0", "3", "5"]}, "(line 2)"),
    ({"sample": ["a", "a", "a"], "model": ["A", "A", "A"]}, "rater r1 answered item a/A twice (line 3)"),
    ({"model": ["A", "C", "A"]}, "unknown model(s) C (line 3)"),
    ({"rater": ["r1", "", "r2"]}, "empty rater (line 3)"),
])
def test_validation_errors(change: dict, message: str):
    with pytest.raises(InvalidRatings) as e:
        validate_ratings(_raw(**change), models=["A", "B"])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_pairwise_validation():
    pairs = simulate_pairs({"A": 0.5, "B": 0.0}, n_raters=2, n_items=2, seed=0).astype(str)
    assert len(validate_ratings(pairs).pairs) == 4
    bad = pairs.copy()
    bad.loc[1, "winner"] = "C"
    with pytest.raises(InvalidRatings, match="winner is neither model_a nor model_b"):
        validate_ratings(bad)
    with pytest.raises(InvalidRatings, match="unknown model in pair"):
        validate_ratings(pairs, models=["A"])
    with pytest.raises(InvalidRatings, match="missing column winner"):
        validate_ratings(pairs.drop(columns="winner"))
    assert len(validate_ratings(pairs.drop(columns="kind")).pairs) == 4  # a winner makes it a pair


def test_mixed_ratings_and_pairs_from_one_csv(tmp_path: Path):
    rat = simulate_ratings({"A": 0.5, "B": 0.0}, n_raters=3, n_items=4, seed=0)
    both = pd.concat([rat.assign(kind="rating"), simulate_pairs({"A": 0.5, "B": 0.0}, 3, 4, seed=0)])
    both.to_csv(tmp_path / "r.csv", index=False)
    r = read_ratings(tmp_path / "r.csv", models=["A", "B"])
    assert len(r.ratings) == 24 and len(r.pairs) == 12 and r.models == ["A", "B"] and len(r.sha256) == 64


def test_aggregate_cli_writes_the_report(tmp_path: Path):
    df = pd.concat([
        simulate_ratings({"A": 0.6, "B": 0.0, "C": -0.3}, n_raters=12, n_items=16, seed=5, n_checks=3,
                         inattentive=2).assign(kind="rating"),
        simulate_pairs({"A": 0.8, "B": 0.0, "C": -0.4}, n_raters=12, n_items=4, seed=5),
    ])
    csv = tmp_path / "ratings.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "report"
    run = subprocess.run([*CLI, "aggregate", str(csv), "--out", str(out), "--models", "A,B,C", "--n-boot", "300"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "excluded raters: 2 of 12" in run.stdout
    for name in ("report.md", "report.html", "summary.json", "mos.csv", "mos_by_pose.csv", "posthoc.csv",
                 "attention.csv", "bradley_terry.csv", "figures/mos.png", "figures/distribution.png",
                 "figures/mos_by_pose.png", "figures/bradley_terry.png"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    import hashlib

    assert summary["sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert summary["excluded"] == ["r10", "r11"] and summary["versions"]["pingouin"].startswith("0.7")
    md = (out / "report.md").read_text()
    for text in ("Krippendorff's alpha (ordinal)", "ICC(A,1)", "Friedman test over 16 images", "Holm",
                 "Bradley–Terry", summary["sha256"], "Excluded: r10, r11"):
        assert text in md, text
    post = pd.read_csv(out / "posthoc.csv")
    assert len(post) == 3 and (post["p_holm"] >= post["p_unc"]).all()
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4


def test_aggregate_cli_one_line_errors(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    _raw(rating=["4", "9", "5"]).to_csv(bad, index=False)
    run = subprocess.run([*CLI, "aggregate", str(bad), "--out", str(tmp_path / "r")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert run.stderr.startswith(f"error: {bad}: rating '9' is not an integer in 1..5")
    missing = subprocess.run([*CLI, "aggregate", str(tmp_path / "nope.csv")], capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
