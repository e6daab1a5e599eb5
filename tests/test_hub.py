"""publish / download against a Hub-compatible server on 127.0.0.1 (tests/hubserver.py), via the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hubserver import HubServer

from facebench.dataset import Sample, build_dataset, load

TOKEN = "hf_test_token"


@pytest.fixture
def hub():
    with HubServer(tokens={TOKEN}) as h:
        yield h


@pytest.fixture
def env(hub, tmp_path):
    """Environment for a subprocess that talks only to the loopback Hub, and logs every socket it opens."""
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import sys
        def _hook(event, args):
            if event == "socket.connect":
                addr = args[1]
                with open({str(tmp_path / 'connections.log')!r}, "a") as f:
                    f.write(repr(addr) + "\\n")
        sys.addaudithook(_hook)
    """))
    return {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "HF_TOKEN": TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "dc"),
        "FACEBENCH_CACHE": str(tmp_path / "fc"),
        "PYTHONPATH": f"{audit}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }


def cli(env, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facebench", *args], env=env, capture_output=True, text=True,
                          timeout=300, **kw)


def _dataset(root: Path, n: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        mask = rng.integers(0, 19, (24, 32), dtype=np.uint8)
        img = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        samples.append(Sample(id=f"x{i:02d}", image=img, mask=mask, subject="s", yaw=[0, 40, 80, 150][i % 4],
                              pitch=0.0, label_source="refined", provenance={"seed": seed}))
    return build_dataset({"train": samples[: n // 2], "test": samples[n // 2 :]}, root, overwrite=True)


def _commits(hub, repo="tester/faces") -> int:
    return len(hub.state.repos[repo].commits)


def test_publish_republish_change_and_download(hub, env, tmp_path):
    ds = _dataset(tmp_path / "ds")
    r = cli(env, "publish", str(ds), "--repo-id", "tester/faces")
    assert r.returncode == 0, r.stderr
    sha1 = r.stdout.strip().splitlines()[-1]
    assert len(sha1) == 40 and hub.state.repos["tester/faces"].branches["main"] == sha1
    assert _commits(hub) == 2  # the repo's initial commit + ours: everything in ONE commit
    files = set(hub.state.repos["tester/faces"].commits[sha1])
    assert {"README.md", "id2label.json", "data/train-frontal-00000-of-00001.parquet"} <= files

    # identical content: no new commit, same sha
    r = cli(env, "publish", str(ds), "--repo-id", "tester/faces")
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == sha1 and _commits(hub) == 2

    # changed dataset: a new commit; the stale shard is deleted in the same commit
    _dataset(tmp_path / "ds", n=8, seed=1)
    r = cli(env, "publish", str(ds), "--repo-id", "tester/faces", "--message", "v2")
    sha2 = r.stdout.strip().splitlines()[-1]
    assert r.returncode == 0 and sha2 != sha1 and _commits(hub) == 3

    # both revisions download into the layout, byte-identical masks and equal metadata
    old = tmp_path / "old"
    r = cli(env, "download", f"tester/faces@{sha1}", "--out", str(old))
    assert r.returncode == 0, r.stderr
    _dataset(tmp_path / "ds_v1")  # rebuild v1 locally to compare
    for split in ("train", "test"):
        a, b = load(tmp_path / "ds_v1"), load(old)
        ma, mb = a.metadata(split), b.metadata(split)
        assert ma.drop(columns=[]).equals(mb)
        for sa, sb in zip(a.iter_samples(split), b.iter_samples(split), strict=True):
            assert sa.id == sb.id and np.array_equal(sa.mask, sb.mask) and np.array_equal(sa.image, sb.image)
    assert (old / ".facebench_revision").read_text().strip() == sha1
    assert load(old).revision == sha1
    new = tmp_path / "new"
    assert cli(env, "download", "tester/faces", "--out", str(new)).returncode == 0
    assert len(load(new).metadata("train")) == 4

    # a subset: one split and one pose bin
    sub = tmp_path / "sub"
    r = cli(env, "download", "tester/faces", "--revision", sha1, "--split", "test", "--pose-bin", "profile",
            "--out", str(sub))
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (sub / "data").iterdir()] == ["test-profile-00000-of-00001.parquet"]

    # every connection the subprocesses opened went to loopback, and the server saw the traffic
    conns = (tmp_path / "connections.log").read_text().splitlines()
    assert conns and all(c.startswith("('127.0.0.1'") for c in conns), set(conns)
    assert {ip for ip, _, _ in hub.state.requests} == {"127.0.0.1"}


def test_load_dataset_through_the_endpoint_without_facebench(hub, env, tmp_path):
    ds = _dataset(tmp_path / "ds")
    assert cli(env, "publish", str(ds), "--repo-id", "tester/faces").returncode == 0
    code = textwrap.dedent("""
        import sys, datasets, numpy as np
        assert "facebench" not in sys.modules
        d = datasets.load_dataset("tester/faces")
        m = np.asarray(d["test"][0]["mask"])
        p = datasets.load_dataset("tester/faces", "profile")
        print(d["train"].num_rows, d["test"].num_rows, m.dtype, sorted(set(p["test"]["pose_bin"])))
    """)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["6", "6", "uint8", "['profile']"]


def test_evaluate_accepts_a_hub_dataset_id(hub, env, tmp_path):
    ds = _dataset(tmp_path / "ds")
    assert cli(env, "publish", str(ds), "--repo-id", "tester/faces").returncode == 0
    preds = tmp_path / "preds"
    from facebench.imageio import write_png

    for s in load(ds).iter_samples("test"):
        write_png(preds / f"{s.id}.png", s.mask)
    r = cli(env, "evaluate", str(preds), "--data", "tester/faces", "--out", str(tmp_path / "rep"), "--n-boot", "0")
    assert r.returncode == 0, r.stderr
    assert "mean F1 (fg) 1.0000" in r.stdout


def test_private_repo_and_missing_token_are_refused(hub, env, tmp_path):
    ds = _dataset(tmp_path / "ds")
    assert cli(env, "publish", str(ds), "--repo-id", "tester/secret", "--private").returncode == 0
    anon = {k: v for k, v in env.items() if k != "HF_TOKEN"}
    r = cli(anon, "download", "tester/secret", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "repository not found (or private" in r.stderr
    assert not (tmp_path / "x").exists()
    r = cli(anon, "publish", str(ds), "--repo-id", "tester/other")
    assert r.returncode == 2 and "no Hugging Face token found" in r.stderr and "HF_TOKEN" in r.stderr
    assert "tester/other" not in hub.state.repos


def test_server_errors_are_retried_or_fail_cleanly(hub, env, tmp_path):
    ds = _dataset(tmp_path / "ds")
    hub.state.fail["lfs_upload"] = 1  # one transient failure mid-upload: retried
    r = cli(env, "publish", str(ds), "--repo-id", "tester/faces")
    assert r.returncode == 0, r.stderr
    head = hub.state.repos["tester/faces"].branches["main"]
    _dataset(tmp_path / "ds", n=8, seed=3)
    hub.state.fail["commit"] = 100  # the commit keeps failing: clear error, nothing half-committed
    r = cli(env, "publish", str(ds), "--repo-id", "tester/faces")
    assert r.returncode == 2 and "commit failed: HTTP 500" in r.stderr, r.stderr[-500:]
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert hub.state.repos["tester/faces"].branches["main"] == head


def test_bad_arguments(env, tmp_path):
    r = cli(env, "publish", str(tmp_path), "--repo-id", "tester/x")
    assert r.returncode == 2 and "no id2label.json" in r.stderr
    ds = _dataset(tmp_path / "ds")
    r = cli(env, "publish", str(ds), "--repo-id", "not a repo")
    assert r.returncode == 2 and "is not a Hub dataset id" in r.stderr
    r = cli(env, "download", "tester/missing", "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "repository not found" in r.stderr
