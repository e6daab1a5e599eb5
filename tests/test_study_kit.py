"""The rating kit end to end without a browser: build, blinding, per-rater plans, the HTTP API, SQLite, export."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebench.dataset import load
from facebench.imageio import write_png
from facebench.study.errors import StudyError
from facebench.study.export import export_csv
from facebench.study.items import build_study, parse_models
from facebench.study.layout import read_key, read_manifest
from facebench.study.order import plan_for
from facebench.study.server import serve_in_thread
from facebench.study.store import Store


def prediction_folders(dataset: Path, out: Path) -> dict[str, Path]:
    """Two 'models': ``good`` predicts the truth, ``rough`` a shifted, speckled copy of it."""
    rng = np.random.default_rng(0)
    folders = {"good": out / "good", "rough": out / "rough"}
    for s in load(dataset).iter_samples("test"):
        write_png(folders["good"] / f"{s.id}.png", s.mask)
        rough = np.roll(s.mask, 3, axis=1)
        rough[rng.random(rough.shape) < 0.05] = 1
        write_png(folders["rough"] / f"{s.id}.png", rough)
    return folders


def make_study(dataset: Path, tmp: Path, mode: str = "both", n_items: int = 8, seed: int = 3) -> Path:
    build_study(prediction_folders(dataset, tmp / "preds"), dataset, tmp / "study", n_items=n_items, seed=seed,
                mode=mode)
    return tmp / "study"


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


@pytest.fixture
def study(small_dataset: Path, tmp_path: Path) -> Path:
    return make_study(small_dataset, tmp_path)


@pytest.fixture
def served(study: Path):
    server, url = serve_in_thread(study)
    yield study, url
    server.shutdown()
    server.server_close()


def test_build_blinds_models_and_balances_pose_bins(study: Path):
    manifest, (key, info) = read_manifest(study), read_key(study)
    assert {t.kind for t in manifest.tasks} == {"rating", "pairwise"}
    public = (study / "study.json").read_text()
    assert "good" not in public and "rough" not in public and "img0" not in public  # no model or image names
    assert all("good" not in p.name and "rough" not in p.name for p in (study / "media").iterdir())
    real = [k for k in key.values() if not k.attention]
    checks = [k for k in key.values() if k.attention]
    assert len([k for k in real if k.kind == "rating"]) == 8 * 2 and len([k for k in real if k.kind == "pairwise"]) == 8
    assert len(checks) >= 4 and {k.models[-1] for k in checks} == {"attention"}
    assert {k.attention for k in checks} == {"shifted", "other_image"}
    bins = pd.Series([k.pose_bin for k in real if k.kind == "pairwise"]).value_counts()
    assert set(bins) == {2}  # 8 images over 4 pose bins
    assert info["seed"] == 3 and set(info["models"]) == {"good", "rough"}


def test_build_is_reproducible_and_orders_differ_per_rater(small_dataset: Path, tmp_path: Path):
    a = make_study(small_dataset, tmp_path / "a")
    b = make_study(small_dataset, tmp_path / "b")
    assert (a / "study.json").read_text() == (b / "study.json").read_text()
    m = read_manifest(a)
    p1, p1_again, p2 = plan_for(m, "alice"), plan_for(m, "alice"), plan_for(m, "bob")
    assert [p.task.item for p in p1] == [p.task.item for p in p1_again]
    assert [p.task.item for p in p1] != [p.task.item for p in p2]
    assert sorted(p.task.item for p in p1) == sorted(t.item for t in m.tasks)
    kinds = [p.task.kind for p in p1]
    assert kinds == sorted(kinds, key=["rating", "pairwise"].index)  # ratings first, then pairs
    swaps = [p.swapped for p in p1 if p.task.kind == "pairwise"]
    assert any(swaps) and not all(swaps)


def test_build_errors_are_one_line(small_dataset: Path, tmp_path: Path):
    with pytest.raises(StudyError, match="NAME=FOLDER"):
        parse_models("good")
    with pytest.raises(StudyError, match="given twice"):
        parse_models("a=x,a=y")
    folders = prediction_folders(small_dataset, tmp_path / "preds")
    (folders["rough"] / "img000.png").unlink()
    with pytest.raises(StudyError, match="only 23 of 24"):
        build_study(folders, small_dataset, tmp_path / "s", n_items=24, seed=0)
    with pytest.raises(StudyError, match="at least two models"):
        build_study({"good": folders["good"]}, small_dataset, tmp_path / "s", n_items=4, seed=0, mode="pairwise")
    build_study(folders, small_dataset, tmp_path / "s", n_items=4, seed=0)
    with pytest.raises(StudyError, match="already exists"):
        build_study(folders, small_dataset, tmp_path / "s", n_items=4, seed=0)


def test_api_resume_validation_and_blinding(served):
    study, url = served
    info = get(f"{url}/api/study")
    total = info["total"]
    assert get(f"{url}/api/next?rater=ann") == {"next": 0, "answered": 0, "total": total}
    for pos in range(3):
        t = get(f"{url}/api/task?rater=ann&position={pos}")
        assert t["kind"] == "rating" and t["value"] is None
        assert post(f"{url}/api/answer", {"rater": "ann", "position": pos, "item": t["item"], "value": pos + 2})[
            "next"] == pos + 1
    assert get(f"{url}/api/next?rater=ann")["next"] == 3  # a fresh page resumes here
    assert get(f"{url}/api/task?rater=ann&position=1")["value"] == 3
    t = get(f"{url}/api/task?rater=ann&position=3")
    for bad, why in (({"value": 6}, "integer in 1..5"), ({"value": "4"}, "integer"), ({"position": 4}, "plan"),
                     ({"rater": "x y"}, "rater id")):
        body = {"rater": "ann", "position": 3, "item": t["item"], "value": 4} | bad
        with pytest.raises(urllib.error.HTTPError) as e:
            post(f"{url}/api/answer", body)
        assert e.value.code == 400 and why in json.load(e.value)["error"]
    for path in ("/key.json", "/media/../key.json", "/study.json", "/ratings.sqlite", "/media/%2e%2e/key.json"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + path, timeout=5)
        assert e.value.code == 404
    with urllib.request.urlopen(url + "/" + t["image"], timeout=5) as r:
        assert r.headers["Content-Type"] == "image/png" and r.read(4) == b"\x89PNG"


def test_concurrent_raters_lose_no_answers(served):
    study, url = served
    raters = [f"r{i}" for i in range(6)]
    errors: list[Exception] = []

    def rate(rater: str) -> None:
        try:
            for pos in range(10):
                t = get(f"{url}/api/task?rater={rater}&position={pos}")
                post(f"{url}/api/answer", {"rater": rater, "position": pos, "item": t["item"], "value": 1 + pos % 5})
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=rate, args=(r,)) for r in raters]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    # A second process-like writer (its own connection) at the same time as the server's.
    other = Store(study / "ratings.sqlite")
    writers = [threading.Thread(target=lambda i=i: other.answer("side", f"x{i}", "rating", i, 3, False))
               for i in range(20)]
    for th in writers:
        th.start()
    for th in writers:
        th.join(60)
    other.close()
    with sqlite3.connect(study / "ratings.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM responses WHERE rater='side'").fetchone()[0] == 20
        assert db.execute("SELECT COUNT(*) FROM responses WHERE rater!='side'").fetchone()[0] == 60
        assert db.execute("SELECT COUNT(DISTINCT rater) FROM responses").fetchone()[0] == 7
        unseen = "SELECT COUNT(*) FROM responses WHERE presented_at IS NULL AND rater!='side'"
        assert db.execute(unseen).fetchone()[0] == 0


def test_export_unblinds_pairs_through_the_swap(served):
    study, url = served
    total = get(f"{url}/api/study")["total"]
    # An oracle rater: rates by model, prefers "good" in pairs, spots every check.
    key, _ = read_key(study)
    for pos in range(total):
        t = get(f"{url}/api/task?rater=oracle&position={pos}")
        k = key[t["item"]]
        if t["kind"] == "rating":
            value = {"good": 5, "rough": 3, "attention": 1}[k.models[0]]
        else:
            media = dict(zip(read_manifest(study).task_map()[t["item"]].overlays, k.models, strict=True))
            shown = [media[o] for o in t["overlays"]]
            best = "good" if "good" in shown else next(m for m in shown if m != "attention")
            value = shown.index(best) + 1
        post(f"{url}/api/answer", {"rater": "oracle", "position": pos, "item": t["item"], "value": value})
    path, n = export_csv(study)
    df = pd.read_csv(path, keep_default_na=False)
    assert n == total == len(df)
    rat, pairs = df[df.kind == "rating"], df[df.kind == "pairwise"]
    assert rat.groupby("model")["rating"].unique().map(list).to_dict() == {"good": ["5"], "rough": ["3"],
                                                                          "attention": ["1"]}
    assert (pairs["winner"] != "attention").all()
    assert (pairs.loc[pairs.attention == "", "winner"] == "good").all()
    assert pairs["swapped"].nunique() == 2  # both screen orders occurred, and both were unblinded right


def test_cli_build_export_and_errors(small_dataset: Path, tmp_path: Path):
    folders = prediction_folders(small_dataset, tmp_path / "preds")
    spec = ",".join(f"{m}={p}" for m, p in folders.items())
    cli = [sys.executable, "-m", "facebench.study.cli"]
    ok = subprocess.run([*cli, "build", "--models", spec, "--data", str(small_dataset), "--n-items", "4",
                         "--out", str(tmp_path / "st"), "--seed", "1"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "4 images" in ok.stdout
    bad = subprocess.run([*cli, "build", "--models", "good", "--data", str(small_dataset), "--out",
                          str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "NAME=FOLDER" in bad.stderr
    none = subprocess.run([*cli, "export", str(tmp_path / "st")], capture_output=True, text=True, timeout=120)
    assert none.returncode == 2 and "nobody has rated" in none.stderr
    alien = tmp_path / "alien.csv"
    alien.write_text("rater,sample,model,rating\nr1,img000,good,4\nr1,img001,other,3\n")
    unknown = subprocess.run([*cli, "aggregate", str(alien), "--study", str(tmp_path / "st")], capture_output=True,
                             text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown model(s) other (line 3)" in unknown.stderr


class BlobParser:
    """A real (if poor) parser: labels every pixel brighter than the image mean as skin."""

    name = "blob"

    def __init__(self):
        from facebench.labels import FACEBENCH

        self.labels = FACEBENCH

    def predict(self, images, ids=None):
        return [(im.mean(2) > im.mean()).astype(np.uint8) for im in images]


def test_build_accepts_a_live_parser(small_dataset: Path, tmp_path: Path):
    folders = prediction_folders(small_dataset, tmp_path / "preds")
    s = build_study({"good": folders["good"], "blob": BlobParser()}, small_dataset, tmp_path / "st", n_items=24,
                    seed=0, mode="pairwise", n_checks=3)
    assert (s.n_samples, s.n_rating, s.n_pairwise, s.n_checks) == (24, 0, 27, 3)
    assert read_key(tmp_path / "st")[1]["models"]["blob"] == "parser:blob"


def test_simulated_raters_through_the_server_end_to_end(served):
    """Noisy raters who like ``good`` more than ``rough`` answer over HTTP; the export's aggregate says so."""
    from facebench.study.aggregate import Settings, aggregate
    from facebench.study.ratings import read_ratings

    study, url = served
    key, _ = read_key(study)
    rng = np.random.default_rng(1)
    total = get(f"{url}/api/study")["total"]
    for r in range(6):
        rater = f"sim{r}"
        careless = r == 5
        for pos in range(total):
            t = get(f"{url}/api/task?rater={rater}&position={pos}")
            k = key[t["item"]]
            if t["kind"] == "rating":
                mean = {"good": 4.3, "rough": 2.8, "attention": 1.2}[k.models[0]]
                value = int(rng.integers(1, 6)) if careless else int(np.clip(np.rint(rng.normal(mean, 0.7)), 1, 5))
            else:
                value = int(rng.integers(1, 3))  # pairs: coin flips; only ratings are checked here
            post(f"{url}/api/answer", {"rater": rater, "position": pos, "item": t["item"], "value": value})
    path, n = export_csv(study)
    res = aggregate(read_ratings(path, models=["good", "rough"]), Settings(n_boot=200))
    assert n == 6 * total
    mos = res.mos.set_index("model")["mos"]
    assert mos["good"] > mos["rough"] + 0.8
    assert res.friedman["p"] < 0.05 and res.n_raters_total == 6
    assert (res.attention["median_seconds"] >= 0).all()  # shown-to-answered times survive the export
    assert "sim5" in res.excluded or res.attention.set_index("rater").loc["sim5", "n_failed"] == 0
