"""The download path against olah, a real third-party Hub mirror (PyPI), serving a local git repo offline."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_hub import _dataset

from facebench.dataset import load


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def olah(tmp_path):
    exe = Path(sys.executable).parent / "olah-cli"
    if not exe.exists() or shutil.which("git") is None:
        pytest.skip("olah-cli (dev extra) or git not installed")
    port = _free_port()
    mirrors = tmp_path / "mirrors"
    cfg = tmp_path / "olah.toml"
    cfg.write_text(f'[basic]\nhost = "127.0.0.1"\nport = {port}\nmirrors-path = ["{mirrors}"]\n'
                   f'repos-path = "{tmp_path / "olah-repos"}"\n\n[accessibility]\noffline = true\n')
    proc = subprocess.Popen([str(exe), "-c", str(cfg)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("olah did not start")
    yield f"http://127.0.0.1:{port}", mirrors
    proc.terminate()
    proc.wait(10)


def test_download_through_olah_mirror(olah, tmp_path):
    endpoint, mirrors = olah
    ds = _dataset(tmp_path / "ds")
    repo = mirrors / "datasets" / "org" / "faces"
    shutil.copytree(ds, repo)
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], cwd=repo, check=True)
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf"),
           "FACEBENCH_CACHE": str(tmp_path / "fc")}
    env.pop("HF_TOKEN", None)
    out = tmp_path / "dl"
    r = subprocess.run([sys.executable, "-m", "facebench", "download", "org/faces", "--out", str(out)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert load(out).revision == head
    for split in ("train", "test"):
        for a, b in zip(load(ds).iter_samples(split), load(out).iter_samples(split), strict=True):
            assert a.id == b.id and np.array_equal(a.mask, b.mask)
        assert load(ds).metadata(split).equals(load(out).metadata(split))
