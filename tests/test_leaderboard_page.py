"""Round trip: CLI submit → process → build, then the page checked in headless Chromium."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_leaderboard_support import noisy, write_parquet, write_zip
from typer.testing import CliRunner

from facebench.app.cli import app

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1600,900")
HOSTILE_NAME = "<img src=x onerror=alert(1)>"


def cli(*args: str) -> str:
    r = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("needs chromium and chromium-driver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in (*FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(f)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(tmp_path):
    """Serve tmp_path/site on 127.0.0.1 (an ephemeral port)."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield site, f"http://127.0.0.1:{srv.server_address[1]}/index.html"
    srv.shutdown()
    srv.server_close()


def _checkpoint(tmp_path: Path) -> Path | None:
    try:
        import torch

        from baselines.checkpoint import save_checkpoint
        from baselines.models import build_model
    except ImportError:
        return None
    from facebench.labels import FACEBENCH

    torch.manual_seed(1)
    config = {"architecture": "unet", "width": 0.25, "labels": {"name": "facebench", "names": list(FACEBENCH.names)},
              "input_size": 64, "normalisation": {"mean": [0.5] * 3, "std": [0.25] * 3}}
    return save_checkpoint(tmp_path / "ck", build_model("unet", width=0.25).eval(), config)


TABLE_JS = """
var keys = Array.from(document.querySelectorAll('#board thead th')).map(function (th) { return th.dataset.key; });
return Array.from(document.querySelectorAll('#board tbody tr')).map(function (tr) {
  var row = {};
  Array.from(tr.cells).forEach(function (td, i) { row[keys[i]] = [td.dataset.v, td.innerText]; });
  return row;
});
"""


def _table(driver) -> list[dict[str, tuple[str, str]]]:
    """The rendered table, read in one round trip: {column key: (data-v, visible text)} per row."""
    return [{k: tuple(v) for k, v in row.items()} for row in driver.execute_script(TABLE_JS)]


def _click(driver, key: str) -> None:
    driver.find_element("css selector", f'#board th[data-key="{key}"]').click()


@pytest.fixture(params=["local", "hub"])
def stores(request, tmp_path, monkeypatch):
    """Where requests and results live: folders in the host, or two repos on the loopback Hub server."""
    if request.param == "local":
        yield str(tmp_path / "host" / "requests"), []
        return
    from hubserver import HubServer

    with HubServer(tokens={"hf_host_token": "host"}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_TOKEN", "hf_host_token")
        import huggingface_hub.constants  # read at import: the loopback Hub speaks LFS, not Xet

        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
        yield "hf://datasets/host/requests", ["--requests", "hf://datasets/host/requests", "--results",
                                              "hf://datasets/host/results"]


def test_submit_process_build_and_browse(tmp_path, small_dataset, browser, served, stores):
    """The whole round trip, with the page built from a local results folder or from a Hub results repo."""
    site, url = served
    requests, init_stores = stores
    host, public = tmp_path / "host", tmp_path / "public"
    out = cli("leaderboard", "init", str(small_dataset), "--host", str(host), "--public", str(public),
              "--n-boot", "200", "--public-dataset", "facebench/public-test", *init_stores)
    assert "hidden labels sha256" in out
    manifest = json.loads((public / "manifest.json").read_text())
    assert manifest["n_images"] == 24 and "mask" not in json.dumps(manifest["images"])
    import pyarrow.parquet as pq  # what is published: images to predict, never the hidden labels

    assert pq.read_schema(public / "hidden-images.parquet").names == ["id", "image", "height", "width"]
    assert sorted(p.name for p in public.iterdir()) == ["hidden-images.parquet", "manifest.json"]
    common = ["--manifest", str(public / "manifest.json"), "--requests", requests]
    subs = {"light noise": 0.05, "heavy noise": 0.4, HOSTILE_NAME: 0.2}
    for k, (name, frac) in enumerate(subs.items()):
        masks = noisy(small_dataset, seed=20 + k, frac=frac)
        path = write_zip(masks, tmp_path / f"s{k}.zip") if k % 2 == 0 else write_parquet(masks, tmp_path / f"s{k}.pq")
        if k % 2:
            path = path.rename(path.with_suffix(".parquet"))
        out = cli("submit", str(path), "--name", name, "--contact", f"c{k}@x.org", "--training-data",
                  f"synthetic heads v{k}", *common)
        assert ": PENDING (predictions" in out
    ck = _checkpoint(tmp_path)
    if ck is not None:
        cli("submit", str(ck), "--name", "unet (untrained)", "--contact", "u@x.org", "--training-data", "none",
            *common)
    out = cli("leaderboard", "process", "--host", str(host))
    n = len(subs) + (ck is not None)
    assert f"processed {n} request(s)" in out and "FAILED" not in out
    assert out.count("FINISHED") == n
    assert "FINISHED" in cli("leaderboard", "status", "--requests", requests)
    cli("leaderboard", "build", "--host", str(host), "--out", str(site))
    results = {r["name"]: r for r in json.loads((site / "results.json").read_text())}

    browser.get(url)
    rows = _table(browser)
    assert len(rows) == n
    by_name = {r["name"][1]: r for r in rows}
    assert set(by_name) == set(results)  # the hostile name is shown as text, not markup
    assert browser.find_elements("css selector", "#board img") == []
    for name, res in results.items():
        row = by_name[name]
        assert row["mean_f1"] == (repr(res["overall"]["mean_f1_fg"]), f"{res['overall']['mean_f1_fg']:.4f}")
        assert row["miou"][0] == repr(res["overall"]["miou"])
        assert row["bin:profile"][0] == repr(res["by_pose_bin"]["profile"]["mean_f1_fg"])
        assert row["region:nose"][0] == repr(res["overall"]["per_class"]["nose"]["f1"])
        assert row["training_data"][1] == res["training_data"]
        assert row["sha"][0] == res["predictions_sha256"]
        assert row["badge"][1] == ("verified" if res["verified"] else "predictions-only")
    assert [r["name"][1] for r in rows][0] == "light noise"  # default order: best mean F1 first
    means = [float(r["mean_f1"][0]) for r in rows]
    assert means == sorted(means, reverse=True)
    body = browser.find_element("tag name", "body").text
    rev = next(iter(results.values()))["dataset"]["revision"]
    assert rev in body and "facebench-leaderboard-evaluator/1" in body and manifest["labels_sha256"] in body

    for key, cast in (("miou", float), ("bin:rear", float), ("region:l_ear", float), ("name", str)):
        _click(browser, key)
        first = [cast(r[key][0]) if cast is str else float(r[key][0] or "nan") for r in _table(browser)]
        _click(browser, key)
        second = [cast(r[key][0]) if cast is str else float(r[key][0] or "nan") for r in _table(browser)]
        if cast is float:
            assert first == sorted(first, reverse=True) and second == sorted(second)
        else:
            assert first == sorted(first) and second == sorted(second, reverse=True)
        th = browser.find_element("css selector", f'#board th[data-key="{key}"]')
        assert th.get_attribute("aria-sort") in ("ascending", "descending")
    _click(browser, "mean_f1")
    shot = Path(os.environ.get("FACEBENCH_SCREENSHOT", tmp_path / "leaderboard.png"))
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

    md = (site / "leaderboard.md").read_text()
    assert md.splitlines()[0].startswith("| # | submission | type | mean F1 | mIoU |")
    assert f"| 1 | light noise | predictions-only | {results['light noise']['overall']['mean_f1_fg']:.4f} |" in md


def test_cli_errors_are_one_line_exit_2(tmp_path, small_dataset):
    public = tmp_path / "public"
    cli("leaderboard", "init", str(small_dataset), "--host", str(tmp_path / "host"), "--public", str(public),
        "--n-boot", "0")
    (tmp_path / "x.pkl").write_bytes(b"\x80\x04K\x01.")
    r = subprocess.run([sys.executable, "-m", "facebench", "submit", str(tmp_path / "x.pkl"), "--name", "n",
                        "--contact", "c", "--training-data", "d", "--manifest", str(public / "manifest.json"),
                        "--requests", str(tmp_path / "host" / "requests")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "x.pkl: is a pickle" in lines[0]
