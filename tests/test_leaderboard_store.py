"""The store under concurrency: ≥ 20 simultaneous submissions lose nothing; writes are atomic."""

from __future__ import annotations

import multiprocessing as mp
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_leaderboard_support import make_host, noisy, write_zip

from leaderboard.errors import StoreError
from leaderboard.limits import Limits
from leaderboard.manifest import Manifest
from leaderboard.predictions import load_predictions
from leaderboard.store import LocalStore, check_key, open_store, read_json, write_json
from leaderboard.submissions import Status, all_requests
from leaderboard.submit import submit

N = 24


def _submit_one(args) -> str:
    path, manifest_path, store_path, k = args
    manifest = Manifest.load(manifest_path)
    return submit(path, manifest, LocalStore(store_path, create=True), f"team{k}", f"t{k}@x.org", "synthetic").id


def _check_all_there(store: LocalStore, ids: list[str], manifest: Manifest, tmp_path) -> None:
    reqs = {r.id: r for r in all_requests(store)}
    assert sorted(reqs) == sorted(ids) and len(set(ids)) == N
    for r in reqs.values():
        assert r.status == Status.PENDING
        data = store.read(r.payload[0])
        p = tmp_path / f"check-{r.id}.zip"
        p.write_bytes(data)
        assert load_predictions(p, manifest).sha256 == r.sha256  # every payload intact and matching


@pytest.fixture
def files(tmp_path, small_dataset):
    cfg, manifest = make_host(tmp_path, small_dataset, Limits(rate_limit=1000), n_boot=0)
    paths = [write_zip(noisy(small_dataset, seed=100 + k, frac=0.05), tmp_path / f"p{k}.zip") for k in range(N)]
    return cfg, manifest, paths


def test_concurrent_submissions_threads(tmp_path, files):
    cfg, manifest, paths = files
    store = cfg.request_store()
    start = threading.Barrier(N)

    def go(k):
        start.wait()
        return _submit_one((paths[k], cfg._path(cfg.manifest), store.root, k))

    with ThreadPoolExecutor(N) as pool:
        ids = list(pool.map(go, range(N)))
    _check_all_there(store, ids, manifest, tmp_path)


def test_concurrent_submissions_processes(tmp_path, files):
    cfg, manifest, paths = files
    store = cfg.request_store()
    ctx = mp.get_context("fork")
    with ctx.Pool(N) as pool:
        ids = pool.map(_submit_one, [(paths[k], cfg._path(cfg.manifest), store.root, k) for k in range(N)])
    _check_all_there(store, ids, manifest, tmp_path)


def _increment(root: str, times: int) -> None:
    store = LocalStore(root, create=True)
    for _ in range(times):
        with store.lock():
            n = read_json(store, "counter.json")["n"]
            write_json(store, "counter.json", {"n": n + 1})


def test_lock_serialises_read_modify_write_across_processes(tmp_path):
    store = LocalStore(tmp_path / "s", create=True)
    write_json(store, "counter.json", {"n": 0})
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_increment, args=(str(store.root), 10)) for _ in range(20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert read_json(store, "counter.json") == {"n": 200}


def test_readers_never_see_half_a_file(tmp_path):
    store = LocalStore(tmp_path / "s", create=True)
    a, b = b"a" * 2_000_000, b"b" * 3_000_000
    store.write("x.bin", a)
    stop = threading.Event()
    seen = set()

    def reader():
        while not stop.is_set():
            d = store.read("x.bin")
            seen.add((len(d), d[:1], d[-1:]))

    t = threading.Thread(target=reader)
    t.start()
    for k in range(60):
        store.write("x.bin", b if k % 2 == 0 else a)
    stop.set()
    t.join()
    assert seen <= {(len(a), b"a", b"a"), (len(b), b"b", b"b")}
    assert store.list() == ["x.bin"]  # no temp files left behind, lock file hidden


def test_keys_cannot_escape_the_store(tmp_path):
    store = LocalStore(tmp_path / "s", create=True)
    for bad in ("../x", "/etc/passwd", ".lock", "a//b", "a/../b", "", "a/.hidden", "x\n"):
        with pytest.raises(StoreError, match="invalid store key"):
            store.write(bad, b"1")
    assert check_key("payloads/2026-abc/predictions.zip")
    (store.root / "odd name.json").write_text("{}")  # put there by hand: never listed, so never acted on
    assert store.list() == []
    with pytest.raises(StoreError, match="a Hub store is hf://datasets/ORG/NAME"):
        open_store("hf://models/facebench/requests")


def _host_worker(host_root: str, queue) -> None:
    from leaderboard.host import HostConfig, process

    queue.put([r.id for r in process(HostConfig.load(host_root))])


def test_two_host_workers_never_score_a_request_twice(tmp_path, files):
    cfg, manifest, paths = files
    store = cfg.request_store()
    ids = [_submit_one((paths[k], cfg._path(cfg.manifest), store.root, k)) for k in range(8)]
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_host_worker, args=(str(cfg.root), queue)) for _ in range(2)]
    for w in workers:
        w.start()
    done = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(60)
    assert sorted(done[0] + done[1]) == sorted(ids)  # each request claimed by exactly one worker
    assert {r.status for r in all_requests(store)} == {Status.FINISHED}
    assert len(cfg.result_store().list("results")) == 8
