"""The host: status transitions, host-side checks, bit-for-bit agreement with `facebench evaluate`."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from conftest import run_cli
from test_leaderboard_support import (
    make_host,
    noisy,
    truth,
    upload_raw,
    write_folder,
    write_parquet,
    write_zip,
    zip_bytes,
)

from facebench.dataset import load
from facebench.evaluate import evaluate_parser
from facebench.files import json_dumps_strict
from facebench.imageio import encode_png
from leaderboard.host import HiddenSplitMismatch, process
from leaderboard.limits import Limits
from leaderboard.page import build_site
from leaderboard.submissions import Request, Status, all_requests, get, iso, now_utc, transition
from leaderboard.submit import build_request, submit


def _canon(x) -> str:
    return json_dumps_strict(x, sort_keys=True)  # metrics.json writes NaN as null; the results store keeps NaN


def test_host_numbers_equal_facebench_evaluate_bit_for_bit(tmp_path, small_dataset):
    cfg, manifest = make_host(tmp_path, small_dataset)  # n_boot 1000, seed 0: evaluate's defaults
    masks = noisy(small_dataset, seed=3, frac=0.3)
    req = submit(write_zip(masks, tmp_path / "p.zip"), manifest, cfg.request_store(), "noisy", "n@x.org", "none")
    assert get(cfg.request_store(), req.id).status == Status.PENDING
    [done] = process(cfg)
    assert done.status == Status.FINISHED and done.error == "" and done.started_at <= done.finished_at
    result = json.loads(cfg.result_store().read(done.result))

    r = run_cli("evaluate", str(write_folder(masks, tmp_path / "folder")), "--data", str(small_dataset),
                "--out", str(tmp_path / "report"))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    from leaderboard.scoring import public

    assert _canon(result["overall"]) == _canon(public(metrics["overall"]))  # the same numbers, no supports
    assert _canon(result["by_pose_bin"]) == _canon({b: public(v) for b, v in metrics["by_pose_bin"].items()})
    assert "support" not in json.dumps(result) and "support" in json.dumps(metrics)
    assert result["dataset"]["revision"] == metrics["dataset_revision"]
    assert result["evaluator"]["metric_settings"] == {"n_boot": metrics["n_bootstrap"], "seed": metrics["seed"]}
    assert result["evaluator"]["convention"] == metrics["convention"]
    assert result["predictions_sha256"] == req.sha256 and result["training_data"] == "none"
    assert result["dataset"]["labels_sha256"] == manifest.labels_sha256 and "contact" not in result
    assert set(result["by_pose_bin"]) == {"frontal", "three_quarter", "profile", "rear"}
    assert len(result["overall"]["per_class"]) == 19 and result["verified"] is False


def test_transitions_are_guarded(tmp_path, small_dataset):
    cfg, manifest = make_host(tmp_path, small_dataset, n_boot=0)
    store = cfg.request_store()
    req = submit(write_zip(truth(small_dataset), tmp_path / "p.zip"), manifest, store, "t", "t@x.org", "d")
    with pytest.raises(ValueError, match="illegal transition"):
        transition(store, req.id, Status.PENDING, Status.FINISHED)
    assert transition(store, req.id, Status.RUNNING, Status.FAILED) is None  # not RUNNING: untouched
    started = now_utc() - timedelta(hours=7)
    assert transition(store, req.id, Status.PENDING, Status.RUNNING, started_at=iso(started)).status == "RUNNING"
    assert process(cfg, clock=lambda: started + timedelta(hours=1)) == []  # a live RUNNING one is left alone
    [done] = process(cfg)  # host died 7 h ago: stale RUNNING goes back to PENDING, then runs
    assert done.status == Status.FINISHED
    result = json.loads(cfg.result_store().read(done.result))
    assert result["overall"]["mean_f1_fg"] == 1.0 and result["overall"]["miou"] == 1.0
    assert process(cfg) == []  # nothing left; FINISHED requests are never re-run


def _raw(tmp_path, small_dataset, manifest, masks, name, contact="h@x.org", at=None):
    return build_request(write_zip(masks, tmp_path / f"{name}.zip"), manifest, name, contact, "d", at=at)


def test_host_checks_again_what_submit_checked(tmp_path, small_dataset):
    """Requests written straight into the store (no local checks) are judged by the same rules."""
    cfg, manifest = make_host(tmp_path, small_dataset, Limits(rate_limit=2), n_boot=0)
    store = cfg.request_store()
    t0 = now_utc()
    good, pay = _raw(tmp_path, small_dataset, manifest, noisy(small_dataset, 1), "good", at=t0)
    upload_raw(store, good, pay)
    dup, pay2 = _raw(tmp_path, small_dataset, manifest, noisy(small_dataset, 1), "dup", "other@x.org",
                     at=t0 + timedelta(seconds=1))
    upload_raw(store, dup, pay2)
    second, pay3 = _raw(tmp_path, small_dataset, manifest, noisy(small_dataset, 2), "second",
                        at=t0 + timedelta(seconds=2))
    upload_raw(store, second, pay3)
    third, pay4 = _raw(tmp_path, small_dataset, manifest, noisy(small_dataset, 3), "third",
                       at=t0 + timedelta(seconds=3))
    upload_raw(store, third, pay4)
    # hostile: a traversal archive, a tampered payload, a missing payload, an illegal-value mask
    masks = truth(small_dataset)
    first = next(iter(masks))
    trav = Request(id="t-1", name="trav", contact="x@x.org", training_data="d", kind="predictions", format="zip",
                   sha256="f" * 64, submitted_at=iso(t0 + timedelta(seconds=4)))
    entries = {f"{i}.png": encode_png(m) for i, m in masks.items() if i != first}
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"../{first}.png", encode_png(masks[first]))
        for k, v in entries.items():
            zf.writestr(k, v)
    upload_raw(store, trav, {"predictions.zip": buf.getvalue()})
    tampered, pay5 = _raw(tmp_path, small_dataset, manifest, noisy(small_dataset, 4), "tampered", "y@x.org",
                          at=t0 + timedelta(seconds=5))
    pay5 = {"predictions.zip": zip_bytes({f"{i}.png": encode_png(m) for i, m in noisy(small_dataset, 5).items()})}
    upload_raw(store, tampered, pay5)
    nofile = Request(id="t-2", name="nofile", contact="z@x.org", training_data="d", kind="predictions",
                     format="zip", sha256="e" * 64, submitted_at=iso(t0 + timedelta(seconds=6)))
    upload_raw(store, nofile, {})
    bad = dict(masks)
    bad[first] = masks[first].copy()
    bad[first][0, 0] = 200
    illegal = Request(id="t-3", name="illegal", contact="w@x.org", training_data="d", kind="predictions",
                      format="zip", sha256="d" * 64, submitted_at=iso(t0 + timedelta(seconds=7)))
    upload_raw(store, illegal, {"predictions.zip": zip_bytes({f"{i}.png": encode_png(m) for i, m in bad.items()})})
    store.write("requests/garbage.json", b"{not json")  # unreadable records fail alone, never the run
    forged = {**good.to_json(), "id": "../../escape", "sha256": "c" * 64}
    store.write("requests/forged.json", json.dumps(forged).encode())  # id must match its file name
    stale = {**good.to_json(), "id": "stale", "status": "RUNNING", "started_at": "garbage"}
    store.write("requests/stale.json", json.dumps(stale).encode())  # crashed every `process` once
    naive = {**good.to_json(), "id": "naive", "status": "RUNNING", "started_at": "2026-01-01T00:00:00"}
    store.write("requests/naive.json", json.dumps(naive).encode())  # a time without a zone
    baddate = {**good.to_json(), "id": "baddate", "submitted_at": "yesterday", "contact": "h@x.org"}
    store.write("requests/baddate.json", json.dumps(baddate).encode())  # would break everyone's rate limit
    badtype = {**good.to_json(), "id": "badtype", "contact": 5}
    store.write("requests/badtype.json", json.dumps(badtype).encode())

    done = {r.name: r for r in process(cfg)}
    assert {n: r.status for n, r in done.items()} == {
        "good": "FINISHED", "dup": "FAILED", "second": "FINISHED", "third": "FAILED", "trav": "FAILED",
        "tampered": "FAILED", "nofile": "FAILED", "illegal": "FAILED"}
    assert f"already submitted as request {good.id}" in done["dup"].error
    assert done["dup"].error_kind == "DuplicateSubmission"
    assert "already has 2 submissions" in done["third"].error and "try again after" in done["third"].error
    assert "path traversal" in done["trav"].error
    assert "do not match the request's sha256" in done["tampered"].error
    assert "has no payload predictions.zip" in done["nofile"].error
    assert "illegal class ids [200]" in done["illegal"].error
    # the stores hold exactly the good results; every record is still readable
    assert sorted(cfg.result_store().list()) == sorted([done["good"].result, done["second"].result])
    assert len(all_requests(store)) == 14  # every record is readable now, the bad ones FAILED with their reason
    reasons = {r.id: r.error for r in all_requests(store) if r.error_kind == "MalformedRecord"}
    assert all(r.status == "FAILED" for r in all_requests(store) if r.id in reasons)
    assert set(reasons) == {"garbage", "forged", "baddate", "badtype", "stale", "naive"}
    assert "not valid JSON" in reasons["garbage"] and "malformed request record (id)" in reasons["forged"]
    assert "submitted_at" in reasons["baddate"] and "started_at" in reasons["stale"]
    assert "time zone" in reasons["naive"] and "strings" in reasons["badtype"]
    page = build_site(cfg.result_store(), tmp_path / "site")
    assert page.read_text().count("<tr id=") == 2


def test_hidden_split_must_match_published_sha(tmp_path, small_dataset):
    cfg, manifest = make_host(tmp_path, small_dataset, n_boot=0)
    manifest.labels_sha256 = "0" * 64
    manifest.save(cfg._path(cfg.manifest))
    with pytest.raises(HiddenSplitMismatch, match="differ from the published"):
        process(cfg)


def test_checkpoint_is_run_by_the_host_and_marked_verified(tmp_path, small_dataset):
    torch = pytest.importorskip("torch")
    from baselines.checkpoint import save_checkpoint
    from baselines.models import MODELS, build_model
    from baselines.predict import load_parser
    from facebench.labels import FACEBENCH

    torch.manual_seed(0)
    model = build_model("unet", width=0.25).eval()
    config = {"architecture": "unet", "width": 0.25, "labels": {"name": "facebench", "names": list(FACEBENCH.names)},
              "input_size": 64, "normalisation": {"mean": [0.5] * 3, "std": [0.25] * 3}}
    save_checkpoint(tmp_path / "ck", model, config)
    cfg, manifest = make_host(tmp_path, small_dataset, n_boot=50)
    req = submit(tmp_path / "ck", manifest, cfg.request_store(), "unet", "u@x.org", "nothing (untrained)",
                 architectures=sorted(MODELS))
    assert req.kind == "checkpoint" and sorted(cfg.request_store().list(f"payloads/{req.id}")) == [
        f"payloads/{req.id}/config.json", f"payloads/{req.id}/model.safetensors"]
    [done] = process(cfg, parser_factory=load_parser, architectures=sorted(MODELS))
    assert done.status == Status.FINISHED, done.error
    result = json.loads(cfg.result_store().read(done.result))
    assert result["verified"] is True and result["kind"] == "checkpoint"
    ev = evaluate_parser(load_parser(str(tmp_path / "ck")), load(small_dataset)).evaluation
    from leaderboard.scoring import public

    assert _canon(result["overall"]) == _canon(public(ev.scores(n_boot=50, seed=0)))
    assert len(result["predictions_sha256"]) == 64 and result["predictions_sha256"] != result["submission_sha256"]
    edited = json.loads((tmp_path / "ck" / "config.json").read_text())
    edited["notes"] = "the same weights, another config"
    (tmp_path / "ck" / "config.json").write_text(json.dumps(edited))
    with pytest.raises(Exception, match="already submitted"):  # deduplicated by the weights' sha256
        submit(tmp_path / "ck", manifest, cfg.request_store(), "unet again", "v@x.org", "nothing",
               architectures=sorted(MODELS))


def test_predictions_in_a_declared_label_order_score_as_the_benchmarks(tmp_path, small_dataset):
    """--labels celebamask-hq: masks written in CelebAMask-HQ's order score exactly as the same masks in ours."""
    from facebench.labels import CELEBAMASK_HQ, FACEBENCH

    cfg, manifest = make_host(tmp_path, small_dataset)
    masks = noisy(small_dataset, seed=5, frac=0.3)
    theirs = {k: CELEBAMASK_HQ.remap_from(m, FACEBENCH) for k, m in masks.items()}
    ours = submit(write_zip(masks, tmp_path / "a.zip"), manifest, cfg.request_store(), "ours", "a@x.org", "none")
    declared = submit(write_zip(theirs, tmp_path / "b.zip"), manifest, cfg.request_store(), "theirs", "b@x.org",
                      "none", labels=CELEBAMASK_HQ)
    assert json.loads(declared.labels) == list(CELEBAMASK_HQ.names)
    done = {r.id: r for r in process(cfg)}
    assert all(done[r.id].status == Status.FINISHED for r in (ours, declared))
    score = {r.id: json.loads(cfg.result_store().read(done[r.id].result))["overall"] for r in (ours, declared)}
    assert _canon(score[declared.id]) == _canon(score[ours.id])
    assert score[ours.id]["mean_f1_fg"] < 0.99  # noisy masks: equal scores are not a coincidence of perfection
    bad = Request.from_json({**get(cfg.request_store(), declared.id).to_json(), "labels": '{"0": 1}'})
    from leaderboard.host import declared_labels

    with pytest.raises(Exception, match="list of 1–255 class names"):
        declared_labels(bad, FACEBENCH)


def test_a_payload_that_links_elsewhere_is_never_followed(tmp_path, small_dataset):
    """The forged perfect score: payloads/<id>/predictions.parquet a symlink to perfect predictions the host can
    read (sha256 set to match), or the payload folder itself a link. Both FAIL; nothing is scored."""
    import os

    from leaderboard.predictions import load_predictions

    cfg, manifest = make_host(tmp_path, small_dataset, n_boot=0)
    store = cfg.request_store()
    (tmp_path / "host-secret").mkdir()
    secret = write_parquet(truth(small_dataset), tmp_path / "host-secret" / "perfect.parquet")
    sha = load_predictions(secret, manifest).sha256
    t0 = now_utc()
    forged = Request(id="forged-file", name="perfect", contact="p@x.org", training_data="d", kind="predictions",
                     format="parquet", sha256=sha, submitted_at=iso(t0))
    upload_raw(store, forged, {})
    key = "payloads/forged-file/predictions.parquet"
    (store.root / key).parent.mkdir(parents=True)
    os.symlink(secret, store.root / key)
    forged.payload = [key]
    store.write("requests/forged-file.json", json.dumps(forged.to_json()).encode())
    linked = Request(id="forged-dir", name="perfect too", contact="q@x.org", training_data="d", kind="predictions",
                     format="parquet", sha256=sha, submitted_at=iso(t0 + timedelta(seconds=1)),
                     payload=["payloads/forged-dir/predictions.parquet"])
    os.symlink(secret.parent, store.root / "payloads" / "forged-dir")
    (secret.parent / "predictions.parquet").write_bytes(secret.read_bytes())
    store.write("requests/forged-dir.json", json.dumps(linked.to_json()).encode())
    assert not store.exists(key) and key not in store.list("payloads")
    done = {r.id: r for r in process(cfg)}
    assert done["forged-file"].status == done["forged-dir"].status == Status.FAILED
    assert all("has no payload" in done[i].error for i in done)
    assert cfg.result_store().list() == []


def test_the_site_is_inert_strict_and_readable(tmp_path, small_dataset):
    """Submitted names cannot inject HTML into leaderboard.md; results.json is strict JSON; files are 0644."""
    import os

    cfg, manifest = make_host(tmp_path, small_dataset, n_boot=0)
    masks = {k: v * 0 for k, v in truth(small_dataset).items()}  # all background: NaN F1 for absent classes
    hostile = "<script>alert(1)</script>|[x](javascript:alert(1))"
    submit(write_zip(masks, tmp_path / "p.zip"), manifest, cfg.request_store(), hostile, "h@x.org",
           "<img src=x onerror=alert(1)>")
    [done] = process(cfg)
    assert done.status == Status.FINISHED
    old = os.umask(0o022)
    try:
        site = build_site(cfg.result_store(), tmp_path / "site").parent
    finally:
        os.umask(old)
    md = (site / "leaderboard.md").read_text()
    assert "<script" not in md and "<img" not in md and "](javascript" not in md and "&lt;script&gt;" in md

    def no_constants(name):
        raise ValueError(f"bare {name} in results.json")

    rows = json.loads((site / "results.json").read_text(), parse_constant=no_constants)
    assert rows[0]["overall"]["per_class"]["hair"]["f1"] == 0.0 and "support" not in json.dumps(rows)
    json.loads(cfg.result_store().read(done.result), parse_constant=no_constants)
    from leaderboard.store import write_json

    write_json(cfg.result_store(), "results/probe.json", {"f1": float("nan")})
    assert json.loads(cfg.result_store().read("results/probe.json"), parse_constant=no_constants) == {"f1": None}
    for f in ("index.html", "leaderboard.md", "results.json"):
        assert (site / f).stat().st_mode & 0o777 == 0o644, f


def test_a_mistyped_store_is_an_error_not_a_new_empty_store(tmp_path, small_dataset):
    cfg, manifest = make_host(tmp_path, small_dataset, n_boot=0)
    r = run_cli("submit", str(write_zip(truth(small_dataset), tmp_path / "p.zip")), "--name", "n", "--contact",
                "c@x.org", "--training-data", "d", "--manifest", str(cfg.root.parent / "public" / "manifest.json"),
                "--requests", str(tmp_path / "requets"))
    assert r.returncode == 2 and "store folder does not exist" in r.stderr and not (tmp_path / "requets").exists()
    r = run_cli("leaderboard", "status", "x", "--requests", str(tmp_path / "nope"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_the_site_appears_whole_or_not_at_all(tmp_path, small_dataset, monkeypatch):
    """A build that dies half-way leaves the previous site, byte for byte, and no temporary folder."""
    cfg, manifest = make_host(tmp_path, small_dataset, n_boot=0)
    submit(write_zip(noisy(small_dataset, 9), tmp_path / "p.zip"), manifest, cfg.request_store(), "n", "n@x.org", "d")
    process(cfg)
    site = build_site(cfg.result_store(), tmp_path / "site").parent
    before = {p.name: p.read_bytes() for p in site.iterdir()}
    import leaderboard.page as page

    def dies(*a, **k):
        raise RuntimeError("killed while rendering")

    monkeypatch.setattr(page, "render_html", dies)
    with pytest.raises(RuntimeError):
        build_site(cfg.result_store(), site)
    assert {p.name: p.read_bytes() for p in site.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".site")) == []
