"""The leaderboard across machines: requests and results in Hub dataset repos (``HubStore``), against the loopback
Hub server, which speaks the Hub's wire protocol and refuses a stale ``parent_commit`` with HTTP 412 as the Hub does.

Each "machine" is a subprocess with its own HOME, HF_HOME and token; they share nothing but the Hub.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hubserver import HubServer
from test_leaderboard_support import noisy, truth, write_folder, write_zip

from leaderboard.scoring import public

HOST = "hf_host_token"
SUBMITTERS = {f"hf_user{k}_token": f"user{k}" for k in range(22)}
TOKENS = {HOST: "host", "hf_mallory_token": "mallory", **SUBMITTERS}
REQUESTS, RESULTS = "hf://datasets/host/requests", "hf://datasets/host/results"


@pytest.fixture
def hub():
    with HubServer(tokens=TOKENS) as h:
        yield h


def machine(hub: HubServer, home: Path, token: str) -> dict[str, str]:
    """The environment of a separate machine: its own home and Hub cache, one token, the loopback Hub."""
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "HOME": str(home), "HF_HOME": str(home / "hf"), "HF_ENDPOINT": hub.endpoint,
            "HF_TOKEN": token, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "FACEBENCH_CACHE": str(home / "fc")}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facebench", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def _ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.fixture
def host(hub, tmp_path, small_dataset):
    """A host machine that created the two repos and published the manifest and hidden images there."""
    env = machine(hub, tmp_path / "host-machine", HOST)
    _ok(cli(env, "leaderboard", "init", str(small_dataset), "--host", str(tmp_path / "host-machine" / "lb"),
            "--public", str(tmp_path / "host-machine" / "public"), "--requests", REQUESTS, "--results", RESULTS,
            "--n-boot", "0", "--rate-limit", "2"))
    return env, tmp_path / "host-machine" / "lb"


def _hub_store(hub, monkeypatch, token: str, location: str):
    from leaderboard.hub_store import HubStore

    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", token)
    return HubStore(location)


def _alice_then_host(hub, host, tmp_path, small_dataset, monkeypatch) -> list:
    """alice submits one honest request, the host processes the queue; every request as the host left it."""
    from leaderboard.submissions import all_requests

    host_env, lb = host
    alice = machine(hub, tmp_path / "alice", "hf_user0_token")
    _ok(cli(alice, "submit", str(write_zip(noisy(small_dataset, 4), tmp_path / "a.zip")), "--name", "alice",
            "--contact", "a", "--training-data", "d", "--requests", REQUESTS))
    _ok(cli(host_env, "leaderboard", "process", "--host", str(lb)))
    return all_requests(_hub_store(hub, monkeypatch, HOST, REQUESTS))


def test_two_machines_submit_and_host_through_the_hub(hub, host, tmp_path, small_dataset, monkeypatch):
    host_env, lb = host
    alice = machine(hub, tmp_path / "alice", "hf_user0_token")
    masks = noisy(small_dataset, seed=11, frac=0.25)
    out = _ok(cli(alice, "submit", str(write_zip(masks, tmp_path / "alice" / "p.zip")), "--name", "alice's parser",
                  "--contact", "free text, not the identity", "--training-data", "synthetic", "--requests", REQUESTS))
    assert ": PENDING (predictions" in out  # no --manifest: it was read from the request repo
    bob = machine(hub, tmp_path / "bob", "hf_user1_token")
    from test_leaderboard_page import _checkpoint

    ck = _checkpoint(tmp_path / "bob")
    _ok(cli(bob, "submit", str(ck), "--name", "bob's unet", "--contact", "b", "--training-data", "none",
            "--requests", REQUESTS))

    out = _ok(cli(host_env, "leaderboard", "process", "--host", str(lb)))
    assert out.count("FINISHED") == 2 and "processed 2 request(s)" in out
    assert "FINISHED" in _ok(cli(alice, "leaderboard", "status", "--requests", REQUESTS))

    results = _hub_store(hub, monkeypatch, HOST, RESULTS)
    rows = {json.loads(results.read(k))["name"]: json.loads(results.read(k)) for k in results.list("results")}
    assert set(rows) == {"alice's parser", "bob's unet"} and rows["bob's unet"]["verified"] is True
    local = _ok(cli(alice, "evaluate", str(write_folder(masks, tmp_path / "alice" / "folder")), "--data",
                    str(small_dataset), "--out", str(tmp_path / "alice" / "report"), "--n-boot", "0"))
    assert "report" in local
    metrics = json.loads((tmp_path / "alice" / "report" / "metrics.json").read_text())
    assert rows["alice's parser"]["overall"] == json.loads(json.dumps(public(metrics["overall"])))
    requests = _hub_store(hub, monkeypatch, HOST, REQUESTS)
    from leaderboard.submissions import all_requests

    by_name = {r.name: r for r in all_requests(requests)}
    assert by_name["alice's parser"].identity == "user0" and by_name["bob's unet"].identity == "user1"


def test_a_record_claiming_another_identity_fails_alone(hub, host, tmp_path, small_dataset, monkeypatch):
    """mallory writes a request naming alice (to spend her rate-limit slots); the Hub says who committed it."""
    from leaderboard.submissions import enqueue
    from leaderboard.submit import build_request, manifest_from

    store = _hub_store(hub, monkeypatch, "hf_mallory_token", REQUESTS)
    manifest = manifest_from(store)
    req, payload = build_request(write_zip(noisy(small_dataset, 3), tmp_path / "m.zip"), manifest, "forged",
                                 "alice", "d")
    req.identity = "user0"
    enqueue(store, req, payload, manifest.limits)
    done = {r.name: r for r in _alice_then_host(hub, host, tmp_path, small_dataset, monkeypatch)}
    assert done["forged"].status == "FAILED" and done["forged"].error_kind == "IdentityMismatch"
    assert "mallory" in done["forged"].error
    assert done["alice"].status == "FINISHED"


def test_a_commit_failing_on_the_server_writes_nothing(hub, host, tmp_path, small_dataset, monkeypatch):
    alice = machine(hub, tmp_path / "alice", "hf_user0_token")
    store = _hub_store(hub, monkeypatch, HOST, REQUESTS)
    before = store.head()
    hub.state.fail["commit"] = 100  # every commit answers 500 (the client's own retries included)
    path = write_zip(truth(small_dataset), tmp_path / "p.zip")
    r = cli(alice, "submit", str(path), "--name", "n", "--contact", "c", "--training-data", "d", "--requests",
            REQUESTS)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "nothing was written" in lines[0], r.stderr[-2000:]
    assert store.head() == before and store.list("requests") == [] and store.list("payloads") == []
    hub.state.fail["commit"] = 0
    _ok(cli(alice, "submit", str(path), "--name", "n", "--contact", "c", "--training-data", "d", "--requests",
            REQUESTS))
    keys = _hub_store(hub, monkeypatch, HOST, REQUESTS).list()
    assert len([k for k in keys if k.startswith("requests/")]) == 1 and len([k for k in keys if "payloads/" in k]) == 1


@pytest.mark.parametrize("n", [6, pytest.param(20, marks=pytest.mark.slow)])
def test_concurrent_submitters_none_lost_none_duplicated(n, hub, host, tmp_path, small_dataset, monkeypatch):
    """n processes submit at once (each its own token); every request ends FINISHED or FAILED with its reason,
    and the history holds one commit per state change. (20 in the slow run, 6 in the default one.)"""
    host_env, lb = host
    procs = []
    for k in range(n):
        env = machine(hub, tmp_path / f"m{k}", f"hf_user{k}_token")
        path = write_zip(noisy(small_dataset, seed=100 + k), tmp_path / f"m{k}" / "p.zip")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "facebench", "submit", str(path), "--name", f"team {k}", "--contact", f"c{k}",
             "--training-data", "d", "--requests", REQUESTS], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o, p in zip(outs, procs, strict=True)
                                                   if p.returncode]
    out = _ok(cli(host_env, "leaderboard", "process", "--host", str(lb)))
    assert f"processed {n} request(s)" in out
    from leaderboard.submissions import all_requests

    store = _hub_store(hub, monkeypatch, HOST, REQUESTS)
    reqs = all_requests(store)
    assert len(reqs) == n and len({r.id for r in reqs}) == n and len({r.name for r in reqs}) == n
    assert all(r.status == "FINISHED" or (r.status == "FAILED" and r.error) for r in reqs)
    titles = [c.title for c in store.api.list_repo_commits("host/requests", repo_type="dataset")]
    for r in reqs:
        assert titles.count(f"submit {r.id}") == 1
        assert titles.count(f"{r.id}: PENDING -> RUNNING") == 1
        assert titles.count(f"{r.id}: RUNNING -> {r.status}") == 1
    assert len(titles) == 1 + 1 + 3 * n  # the repo's creation, the published manifest, 3 per request
    posts = sum(1 for _, m, p in hub.state.requests if m == "POST" and "/requests/commit/" in p)
    print(f"{n} concurrent submitters: {posts} commit requests for {len(titles) - 1} commits "
          f"({posts - len(titles) + 1} refused as stale and retried)")
    assert posts >= len(titles) - 1
    results = _hub_store(hub, monkeypatch, HOST, RESULTS)
    assert len(results.list("results")) == sum(r.status == "FINISHED" for r in reqs)


def test_the_rate_limit_keys_on_the_hub_identity_not_the_contact(hub, host, tmp_path, small_dataset):
    """Changing the free-text contact does not buy more submissions; another identity is unaffected."""
    alice = machine(hub, tmp_path / "alice", "hf_user0_token")
    for k in range(2):
        _ok(cli(alice, "submit", str(write_zip(noisy(small_dataset, 30 + k), tmp_path / f"a{k}.zip")), "--name",
                f"a{k}", "--contact", f"alias{k}@x.org", "--training-data", "d", "--requests", REQUESTS))
    r = cli(alice, "submit", str(write_zip(noisy(small_dataset, 40), tmp_path / "a2.zip")), "--name", "a2",
            "--contact", "someone-else@x.org", "--training-data", "d", "--requests", REQUESTS)
    assert r.returncode == 2 and "user0 already has 2 submissions" in r.stderr, r.stderr[-1500:]
    bob = machine(hub, tmp_path / "bob", "hf_user1_token")
    _ok(cli(bob, "submit", str(tmp_path / "a2.zip"), "--name", "b", "--contact", "alias0@x.org",
            "--training-data", "d", "--requests", REQUESTS))


def test_a_bad_record_in_the_repo_fails_alone_and_a_mistyped_repo_is_an_error(hub, host, tmp_path, small_dataset,
                                                                              monkeypatch):
    store = _hub_store(hub, monkeypatch, "hf_mallory_token", REQUESTS)
    store.write("requests/broken.json", b'{"id": "broken", "status": "RUNNING", "started_at": "garbage"}')
    done = {r.id: r for r in _alice_then_host(hub, host, tmp_path, small_dataset, monkeypatch)}
    assert done["broken"].status == "FAILED" and done["broken"].error_kind == "MalformedRecord"
    assert [r.status for r in done.values() if r.name == "alice"] == ["FINISHED"]
    r = cli(machine(hub, tmp_path / "alice", "hf_user0_token"), "leaderboard", "status", "--requests", "hf://datasets/host/requets")
    assert r.returncode == 2 and "cannot open the Hub store" in r.stderr and len(r.stderr.strip().splitlines()) == 1
