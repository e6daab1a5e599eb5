"""Publish a facebench dataset to the Hugging Face Hub in one commit, and download it back.

Only public APIs of huggingface_hub are used, so any Hub-compatible endpoint works (``HF_ENDPOINT``).
Publishing sends every file of the dataset folder in a single commit and deletes remote files the
dataset no longer has: the repo is either the old dataset or the new one, never half of each.
Unchanged content makes no commit (huggingface_hub skips files whose remote oid matches).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from facebench.dataset import FacebenchDataset, validate
from facebench.errors import FacebenchError, InvalidConfig, InvalidDataset
from facebench.files import replace_dir, temp_dir

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
REVISION_FILE = ".facebench_revision"


class HubError(FacebenchError):
    """The Hub refused or failed a request in a way the user can act on."""


@dataclass(frozen=True)
class HubRef:
    """``ns/name[@revision]``."""

    repo_id: str
    revision: str | None = None

    @classmethod
    def parse(cls, spec: str) -> HubRef:
        repo, _, rev = spec.partition("@")
        if not REPO_ID.match(repo):
            raise InvalidConfig(f"'{spec}' is not a Hub dataset id (expected namespace/name[@revision])")
        return cls(repo, rev or None)


def _token(token: str | None) -> str:
    from huggingface_hub import get_token

    tok = token or get_token()
    if not tok:
        raise HubError("no Hugging Face token found", hint="set HF_TOKEN or run `hf auth login`")
    return tok


def _api(token: str | None = None, endpoint: str | None = None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token)


def _hub_call(what: str, fn, retries: int = 3, backoff: float = 0.5):
    """Call ``fn``; retry server errors a few times, then raise one clear line.

    huggingface_hub reports an HTTP failure as ``HfHubHTTPError``, but a failed LFS upload arrives wrapped in a
    ``RuntimeError`` (from a worker thread) and an unreachable server as an httpx transport error: the cause
    chain is searched for either, so a persistent HTTP 500 is one line, not a traceback. Anything else is ours."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    for attempt in range(retries + 1):
        try:
            with _quiet_progress():
                return fn()
        except Exception as e:  # noqa: BLE001 - narrowed below by the cause chain
            cause = _cause(e, (RepositoryNotFoundError, RevisionNotFoundError, HfHubHTTPError, *_transport_errors()))
            if cause is None:
                raise
            if isinstance(cause, RepositoryNotFoundError):
                raise HubError(f"{what}: repository not found (or private and your token cannot see it)") from None
            if isinstance(cause, RevisionNotFoundError):
                raise HubError(f"{what}: revision not found") from None
            status = getattr(getattr(cause, "response", None), "status_code", None)
            if (status is None or status >= 500) and attempt < retries:
                time.sleep(backoff * 2**attempt)
                continue
            if status in (401, 403):
                raise HubError(f"{what}: not authorised (HTTP {status})", hint="check HF_TOKEN") from None
            if status is None:
                raise HubError(f"{what} failed: cannot reach the Hub ({type(cause).__name__}: "
                               f"{' '.join(str(cause).split())[:160]})", hint="check HF_ENDPOINT and the network"
                               ) from None
            raise HubError(f"{what} failed: HTTP {status}: {(str(cause).splitlines() or [''])[0][:200]}") from None


def _cause(e: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """``e`` or the first exception of ``kinds`` in its cause/context chain."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, kinds):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level failures of the HTTP clients huggingface_hub may use (httpx2 since 1.x, httpx before)."""
    import importlib

    found = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(found)


@contextmanager
def _quiet_progress():
    """No lines from huggingface_hub around ours: its retry warnings ("Retrying in 8s") are silenced (facebench
    retries and reports in one line itself), and its upload/download bars are shown only on a terminal, where
    they redraw in place; in a log or a pipe they are lines of noise before a one-line error."""
    import logging
    import sys

    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    hf_log = logging.getLogger("huggingface_hub")
    level = hf_log.level
    hide_bars = not sys.stderr.isatty() and not are_progress_bars_disabled()
    hf_log.setLevel(logging.ERROR)
    if hide_bars:
        disable_progress_bars()
    try:
        yield
    finally:
        hf_log.setLevel(level)
        if hide_bars:
            enable_progress_bars()


def _require_license(card: Path) -> None:
    """Refuse to guess: a dataset whose card says ``license: unknown`` is not published."""
    head = card.read_text(encoding="utf-8").split("---", 2)[1] if card.exists() else ""
    if any(line.strip() == "license: unknown" for line in head.splitlines()):
        raise InvalidDataset("the dataset's licence is unknown: it is not published", card,
                             hint="generate it with --license ID (the captures' terms allow it), or set license: in "
                                  "the card")


def publish(
    dataset_dir: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Push ``dataset_dir`` to ``repo_id`` in one commit; returns the commit sha (the old one if unchanged)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    HubRef.parse(repo_id)
    try:
        validate(dataset_dir)  # every shard, id, pose and pixel, as evaluate and train will read them
    except FacebenchError as e:
        raise type(e)(f"not published: {e}", hint="fix the dataset; `facebench validate` checks it") from None
    ds = FacebenchDataset(dataset_dir)
    _require_license(ds.root / "README.md")
    tok = _token(token)
    api = _api(tok, endpoint)
    _hub_call(f"{repo_id}: create repo",
              lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True))
    branch = revision or "main"
    if branch != "main":
        _hub_call(f"{repo_id}: create branch",
                  lambda: api.create_branch(repo_id, repo_type="dataset", branch=branch, exist_ok=True))
    local = sorted(p.relative_to(ds.root).as_posix() for p in ds.root.rglob("*")
                   if p.is_file() and not p.name.startswith("."))
    remote = _hub_call(f"{repo_id}: list files",
                       lambda: api.list_repo_files(repo_id, repo_type="dataset", revision=branch))
    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(ds.root / p)) for p in local]
    ops += [CommitOperationDelete(path_in_repo=p) for p in remote if p not in local and p != ".gitattributes"]
    msg = message or f"Publish facebench dataset ({', '.join(ds.splits)})"
    info = _hub_call(f"{repo_id}: commit", lambda: api.create_commit(repo_id, operations=ops, commit_message=msg,
                                                          repo_type="dataset", revision=branch))
    return info.oid


def download(
    spec: str,
    out: str | Path | None = None,
    split: str | None = None,
    pose_bin: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> Path:
    """Fetch ``ns/name[@revision]`` (optionally one split and/or pose bin) into the local layout.

    Files land in a temporary folder first and are renamed into place, so ``out`` is never partial.
    The resolved commit sha is written to ``.facebench_revision``.
    """
    from huggingface_hub import snapshot_download

    from facebench.outputs import check_output_folder
    from facebench.pose import POSE_BIN_NAMES

    ref = HubRef.parse(spec)
    # Options first, before any request: a typo costs no round trip and no half download.
    if pose_bin is not None and pose_bin not in POSE_BIN_NAMES:
        raise InvalidConfig(f"unknown --pose-bin {pose_bin!r}", hint=f"use {', '.join(POSE_BIN_NAMES)}")
    if split is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", split):
        raise InvalidConfig(f"--split {split!r} is not a split name", hint="e.g. train, validation, test")
    if out is not None:
        check_output_folder(out)
    api = _api(token, endpoint)
    info = _hub_call(f"dataset {ref.repo_id}", lambda: api.dataset_info(ref.repo_id, revision=ref.revision or "main"))
    sha = info.sha
    out = Path(out) if out is not None else default_cache_dir() / ref.repo_id.replace("/", "--") / sha
    if (out / REVISION_FILE).exists() and (out / REVISION_FILE).read_text().strip() == sha and not (split or pose_bin):
        return out
    pattern = f"data/{split or '*'}-{pose_bin or '*'}-*.parquet"
    tmp = temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        _hub_call(f"download {ref.repo_id}", lambda: snapshot_download(
            ref.repo_id, repo_type="dataset", revision=sha, local_dir=tmp, token=token, endpoint=endpoint,
            allow_patterns=["README.md", "id2label.json", pattern]))
        shutil.rmtree(tmp / ".cache", ignore_errors=True)
        if not list((tmp / "data").glob("*.parquet")) if (tmp / "data").exists() else True:
            raise HubError(f"{spec}: nothing matches split={split or '*'} pose_bin={pose_bin or '*'}")
        (tmp / REVISION_FILE).write_text(sha + "\n")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def default_cache_dir() -> Path:
    return Path(os.environ.get("FACEBENCH_CACHE", Path.home() / ".cache" / "facebench")) / "datasets"


def resolve_data(spec: str | Path) -> Path:
    """A local dataset folder as is; ``ns/name[@rev]`` (when no such local path exists) downloaded and cached."""
    p = Path(spec)
    if p.exists() or not REPO_ID.match(str(spec).partition("@")[0]):
        return p
    return download(str(spec))
