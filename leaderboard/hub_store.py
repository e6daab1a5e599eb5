"""``hf://datasets/ORG/NAME[@BRANCH]``: a leaderboard store kept in a Hugging Face dataset repo.

The field's leaderboards keep requests and results in Hub repos: anyone with a token can reach them, and the
commit history is the audit trail. Here a ``write`` is a commit, reads see one resolved commit, and ``lock()``
is optimistic: reads inside it are pinned to the head commit it started from, writes are buffered, and on exit
they become one commit with ``parent_commit`` set. If anyone committed meanwhile the Hub refuses it (HTTP 412,
or 409 while another commit is in flight) and ``StoreConflict`` is raised; ``store.locked`` re-runs the block.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from leaderboard.errors import StoreConflict, StoreError
from leaderboard.keys import check_key, listable

_LOCATION = re.compile(r"hf://datasets/(?P<repo>[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*)(?:@(?P<branch>[\w.\-/]+))?")


@dataclass
class _Transaction:
    sha: str
    writes: dict[str, bytes] = field(default_factory=dict)
    message: str = ""


def _status(e: Exception) -> int | None:
    for err in (e, e.__context__):
        response = getattr(err, "response", None)
        if response is not None and getattr(response, "status_code", None):
            return int(response.status_code)
    return None


class HubStore:
    """The ``Store`` interface over a Hub dataset repo (see the module docstring)."""

    def __init__(self, location: str, token: str | None = None, create: bool = False):
        from huggingface_hub import HfApi

        m = _LOCATION.fullmatch(location)
        if m is None:
            raise StoreError("a Hub store is hf://datasets/ORG/NAME[@BRANCH]", location)
        self.location = location
        self.repo_id, self.branch = m["repo"], m["branch"] or "main"
        # read the environment now, not at import: HF_ENDPOINT and HF_TOKEN name the Hub and the identity
        self.api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token or os.environ.get("HF_TOKEN"))
        self._local = threading.local()
        self._files_at: dict[str, frozenset[str]] = {}
        self._cache = Path(tempfile.mkdtemp(prefix="facebench-hubstore-"))
        try:
            if create:
                self.api.create_repo(self.repo_id, repo_type="dataset", exist_ok=True)
            self.api.repo_info(self.repo_id, repo_type="dataset", revision=self.branch)
        except Exception as e:  # huggingface_hub's RepositoryNotFound, RevisionNotFound, HTTP and connection errors
            raise StoreError(f"cannot open the Hub store ({_reason(e)})", location,
                             hint="check the repo id and branch, HF_ENDPOINT and your token") from None

    # -- reading at one commit ---------------------------------------------------------------------------
    @property
    def _txn(self) -> _Transaction | None:
        return getattr(self._local, "txn", None)

    def head(self) -> str:
        try:
            return self.api.repo_info(self.repo_id, repo_type="dataset", revision=self.branch).sha
        except Exception as e:
            raise StoreError(f"cannot read the Hub store ({_reason(e)})", self.location) from None

    def _sha(self) -> str:
        txn = self._txn
        return txn.sha if txn is not None else self.head()

    def _files(self, sha: str) -> frozenset[str]:
        if sha not in self._files_at:
            try:
                names = self.api.list_repo_files(self.repo_id, repo_type="dataset", revision=sha)
            except Exception as e:
                raise StoreError(f"cannot list the Hub store ({_reason(e)})", self.location) from None
            self._files_at[sha] = frozenset(n for n in names if listable(n))
        return self._files_at[sha]

    def read(self, key: str) -> bytes:
        check_key(key)
        txn = self._txn
        if txn is not None and key in txn.writes:
            return txn.writes[key]
        sha = self._sha()
        if key not in self._files(sha):
            raise StoreError(f"no such key {key!r}", self.location)
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(self.repo_id, key, repo_type="dataset", revision=sha, token=self.api.token,
                                   cache_dir=self._cache, endpoint=self.api.endpoint)
        except Exception as e:
            raise StoreError(f"cannot read {key} from the Hub store ({_reason(e)})", self.location) from None
        return Path(path).read_bytes()

    def exists(self, key: str) -> bool:
        check_key(key)
        txn = self._txn
        return (txn is not None and key in txn.writes) or key in self._files(self._sha())

    def list(self, prefix: str = "") -> list[str]:
        txn = self._txn
        keys = set(self._files(self._sha())) | (set(txn.writes) if txn is not None else set())
        if prefix:
            keys = {k for k in keys if k.startswith(prefix.rstrip("/") + "/")}
        return sorted(keys)

    # -- writing: one commit per write, or one per locked block ---------------------------------------------
    def write(self, key: str, data: bytes) -> None:
        check_key(key)
        txn = self._txn
        if txn is not None:
            txn.writes[key] = bytes(data)
        else:
            self._commit({key: bytes(data)}, f"write {key}", parent=None)

    @contextmanager
    def lock(self, timeout_s: float = 60.0, message: str = "") -> Iterator[None]:
        """Optimistic: reads pinned to the head, writes committed together with ``parent_commit`` on exit."""
        if self._txn is not None:
            raise StoreError("Hub store transactions do not nest", self.location)
        txn = _Transaction(sha=self.head(), message=message)
        self._local.txn = txn
        try:
            yield
            if txn.writes:
                self._commit(txn.writes, txn.message or f"update {', '.join(sorted(txn.writes))[:200]}",
                             parent=txn.sha)
        finally:
            self._local.txn = None

    def _commit(self, files: dict[str, bytes], message: str, parent: str | None) -> str:
        from huggingface_hub import CommitOperationAdd

        ops = [CommitOperationAdd(path_in_repo=k, path_or_fileobj=v) for k, v in sorted(files.items())]
        try:
            info = self.api.create_commit(self.repo_id, operations=ops, commit_message=message,
                                          repo_type="dataset", revision=self.branch, parent_commit=parent)
        except Exception as e:
            if _status(e) in (409, 412):
                raise StoreConflict("the Hub store moved on since it was read", self.location) from None
            raise StoreError(f"commit to the Hub store failed ({_reason(e)})", self.location,
                             hint="nothing was written; retry") from None
        return info.oid

    # -- who wrote what ------------------------------------------------------------------------------------------
    def identity(self) -> str:
        """The Hub's name for this store's token (what rate limits key on)."""
        try:
            return str(self.api.whoami()["name"])
        except Exception as e:
            raise StoreError(f"the Hub does not know this token ({_reason(e)})", self.location,
                             hint="log in with `hf auth login` or set HF_TOKEN") from None

    def author_of(self, message: str) -> str | None:
        """The author of the oldest commit titled ``message``, as the Hub recorded it (not as a file claims)."""
        try:
            commits = self.api.list_repo_commits(self.repo_id, repo_type="dataset", revision=self.branch)
        except Exception as e:
            raise StoreError(f"cannot read the Hub store's history ({_reason(e)})", self.location) from None
        for c in sorted(commits, key=lambda c: c.created_at):
            if c.title == message:
                return c.authors[0] if c.authors else None
        return None

    def __repr__(self) -> str:
        return f"HubStore({self.location})"


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__
