"""Every (command, damage) pair of tests/broken_inputs.py through the real entry point: exit 2, exactly one
line on stderr naming the file (or option) at fault, no traceback, and nothing new or changed on disk.

The pairs run in-process (``facebench.app.cli.main()`` with ``sys.argv`` patched: the console script's own
code path) so that the corpus takes seconds; a handful also run as real subprocesses.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from broken_inputs import CASES, Call, Case, Good

TOKEN = "hf_test_token"


@dataclass
class Outcome:
    code: int | None
    stdout: str
    stderr: str


def run_in_process(argv: list[str]) -> Outcome:
    """``facebench ARGV`` in this process: what the console script does, with its streams captured. An exception
    that escapes ``main()`` is printed the way the interpreter would print it (a traceback, exit 1)."""
    from facebench.app.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | None = 0
    old = sys.argv
    sys.argv = ["facebench", *argv]
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) or e.code is None else 1
            except BaseException:  # noqa: B036 - what the interpreter would print
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = old
    return Outcome(code, out.getvalue(), err.getvalue())


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time (folders included)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size if p.is_file() else 0, st.st_mtime_ns if p.is_file() else 0)
    return out


@pytest.fixture(scope="module", autouse=True)
def click_tree_built_once():
    """Typer turns every command's annotations into a click command tree on each call of the app (≈ 75 ms, most
    of a case's time); a console script pays that once per process, and so does this module: the tree is built
    by typer's own ``get_command``, once, and reused."""
    import typer.main

    real = typer.main.get_command
    built: dict[object, object] = {}

    def get_command(app):
        if app not in built:
            built[app] = real(app)
        return built[app]

    typer.main.get_command = get_command
    yield
    typer.main.get_command = real


@pytest.fixture(scope="session")
def good(tmp_path_factory) -> Good:
    return Good(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="session")
def hub():
    from hubserver import HubServer

    with HubServer(tokens={TOKEN}) as h:
        yield h


@pytest.fixture
def hub_env(hub, monkeypatch, tmp_path_factory):
    """The loopback Hub, emptied, for an in-process call (huggingface_hub reads these at import, so its constants
    too). Emptied because a Hub that already holds the dataset's LFS objects would skip their upload."""
    import huggingface_hub.constants as constants

    with hub.state.lock:
        for table in (hub.state.repos, hub.state.models, hub.state.blobs, hub.state.fail):
            table.clear()

    home = tmp_path_factory.mktemp("hfhome")
    for k, v in {"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1",
                 "HF_HOME": str(home), "FACEBENCH_CACHE": str(home / "fc")}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    return hub


def check_one_line(case_id: str, r: Outcome, names: str) -> None:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.code == 2, f"{case_id}: exit {r.code}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in r.stderr, f"{case_id}: {r.stderr}"
    assert len(lines) == 1, f"{case_id}: {len(lines)} lines on stderr:\n{r.stderr}"
    assert names in lines[0], f"{case_id}: the line does not name {names!r}: {lines[0]}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_input(case: Case, good: Good, tmp_path: Path, monkeypatch, request) -> None:
    work = tmp_path / "case"
    work.mkdir()
    call: Call = case.make(good, work)
    monkeypatch.chdir(work)  # default output folders (reports/, masks/) land here, where they are seen
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    if call.hub:
        hub = request.getfixturevalue("hub_env")
        hub.state.fail.clear()
        hub.state.fail.update(call.hub_fail)
        if call.hub_fail or call.hub_down:  # retries back off for seconds (ours and huggingface_hub's)
            monkeypatch.setattr(time, "sleep", lambda s: None)
        if call.hub_down:
            import huggingface_hub.constants as constants

            monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # discard: nothing answers
            monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    before = snapshot(work)
    r = run_in_process(call.argv)
    if call.hub:
        hub.state.fail.clear()
    check_one_line(case.id, r, call.names)
    assert snapshot(work) == before, f"{case.id}: the command changed files under {work}"
    if call.hub:
        assert "tester/faces" not in hub.state.repos or len(hub.state.repos["tester/faces"].commits) <= 1, case.id


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)
    commands = {c.command.split()[0] for c in CASES}
    assert {"evaluate", "validate", "generate", "import", "train", "predict", "publish", "study", "submit",
            "leaderboard", "export-onnx", "convert", "heads", "reproduce"} <= commands


SUBPROCESS = ["validate: dataset: mask null", "evaluate: dataset: id2label.json a list",
              "predict: dataset: id escapes the folder", "train: dataset: shard truncated",
              "import: lapa: landmarks NaN"]


@pytest.mark.parametrize("case_id", SUBPROCESS)
def test_broken_input_as_a_subprocess(case_id: str, good: Good, tmp_path: Path) -> None:
    """The same answer from the real console script in its own process."""
    case = next(c for c in CASES if c.id == case_id)
    work = tmp_path / "case"
    work.mkdir()
    call = case.make(good, work)
    before = snapshot(work)
    p = subprocess.run([sys.executable, "-m", "facebench", *call.argv], capture_output=True, text=True, cwd=work,
                       timeout=300, env={**os.environ, "FACEBENCH_CACHE": str(tmp_path / "cache")})
    check_one_line(case_id, Outcome(p.returncode, p.stdout, p.stderr), call.names)
    assert snapshot(work) == before


@pytest.mark.slow
def test_publish_through_a_persistent_http_500_as_a_subprocess(good: Good, tmp_path: Path) -> None:
    """Every LFS upload answered 500, with the real back-off (huggingface_hub's, then ours: about two minutes):
    one line, exit 2, and the repo keeps only its initial commit."""
    from hubserver import HubServer

    ds = good.copy_dataset(tmp_path / "dataset")
    with HubServer(tokens={TOKEN}) as hub:
        hub.state.fail["lfs_upload"] = 10**6
        env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1",
               "HF_HOME": str(tmp_path / "hf")}
        p = subprocess.run([sys.executable, "-m", "facebench", "publish", str(ds), "--repo-id", "tester/faces"],
                           capture_output=True, text=True, env=env, timeout=900)
        check_one_line("publish: persistent HTTP 500", Outcome(p.returncode, p.stdout, p.stderr), "tester/faces")
        assert len(hub.state.repos["tester/faces"].commits) == 1
