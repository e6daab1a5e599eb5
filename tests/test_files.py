"""facebench.files: outputs others can read (modes follow the umask), atomic replacement, strict JSON."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import blob_sample_arrays, run_cli

from facebench.dataset import Sample, build_dataset, load
from facebench.files import atomic_path, atomic_write, json_dumps_strict, temp_dir
from facebench.imageio import write_png


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _samples(n: int = 8, drop_class: int | None = None) -> list[Sample]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(n):
        img, mask = blob_sample_arrays(rng)
        if drop_class is not None:
            mask[mask == drop_class] = 0
        yaw = float([-10, 45, -75, 150][i % 4])
        out.append(Sample(id=f"img{i:03d}", image=img, mask=mask, subject=f"s{i % 2}", yaw=yaw, pitch=0.0))
    return out


def test_dataset_is_readable_by_others_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        root = build_dataset({"test": _samples()}, tmp_path / "ds")
        root = build_dataset({"test": _samples()}, root, overwrite=True)  # the replace path too
    finally:
        os.umask(old)
    paths = [root, *root.rglob("*")]
    assert any(p.suffix == ".parquet" for p in paths)
    for p in paths:
        if p.is_dir():
            assert _mode(p) & 0o055 == 0o055, (p, oct(_mode(p)))
        else:
            assert _mode(p) & 0o044 == 0o044, (p, oct(_mode(p)))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_modes_follow_the_umask_both_ways(tmp_path):
    old = os.umask(0o022)
    try:
        assert _mode(atomic_write(tmp_path / "a.txt", "x")) == 0o644
        assert _mode(write_png(tmp_path / "m.png", np.zeros((4, 4), np.uint8))) == 0o644
        assert _mode(temp_dir(tmp_path, ".t-")) == 0o755
        with atomic_path(tmp_path / "arr.npz") as tmp:
            np.savez(tmp, a=np.arange(3))  # keeps the suffix, so np.savez writes exactly there
        assert _mode(tmp_path / "arr.npz") == 0o644 and np.load(tmp_path / "arr.npz")["a"].tolist() == [0, 1, 2]
        os.umask(0o077)
        assert _mode(atomic_write(tmp_path / "b.txt", b"y")) == 0o600
        assert _mode(temp_dir(tmp_path, ".u-")) == 0o700
    finally:
        os.umask(old)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = atomic_write(tmp_path / "sub" / "keep.json", '{"old": true}')
    before = sorted(p.name for p in target.parent.iterdir())
    with pytest.raises(RuntimeError, match="writer died"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer died")
    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # not bytes or str: fails after the temporary exists
    assert target.read_text() == '{"old": true}'
    assert sorted(p.name for p in target.parent.iterdir()) == before == ["keep.json"]


def test_json_dumps_strict_writes_null():
    doc = {"a": float("nan"), "b": [1.5, float("inf"), (np.float32("nan"), np.float64(2.0))], "c": -float("inf")}
    text = json_dumps_strict(doc, sort_keys=True)
    assert json.loads(text) == {"a": None, "b": [1.5, None, [None, 2.0]], "c": None}
    assert json.loads(json_dumps_strict({"x": np.float32(np.nan)}, default=float)) == {"x": None}


def _reject(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def test_evaluate_metrics_json_is_strict_json_with_null(tmp_path):
    old = os.umask(0o022)
    try:
        data = build_dataset({"test": _samples(drop_class=18)}, tmp_path / "ds")  # no hat anywhere: hat is NaN
        preds = tmp_path / "preds"
        for s in load(data).iter_samples("test"):
            write_png(preds / f"{s.id}.png", s.mask)
        out = tmp_path / "report"
        r = run_cli("evaluate", str(preds), "--data", str(data), "--out", str(out), "--n-boot", "20")
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    text = (out / "metrics.json").read_text()
    m = json.loads(text, parse_constant=_reject)  # a bare NaN/Infinity anywhere would raise here
    assert ": null" in text
    assert m["overall"]["per_class"]["hat"]["f1"] is None and m["overall"]["per_class"]["skin"]["f1"] == 1.0
    assert "null" in m["convention"]
    for p in (out / "metrics.json", out / "report.md", out / "report.html"):
        assert _mode(p) == 0o644, (p, oct(_mode(p)))
