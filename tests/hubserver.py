"""A Hugging Face Hub stand-in for tests: the real wire protocol, on 127.0.0.1, standard library only.

No installable server accepts Hub uploads offline, so tests run this one. It speaks the routes that
huggingface_hub, datasets and transformers use to create a repo, upload (preupload, LFS batch + PUT + verify,
NDJSON commit) and download (repo info, tree, paths-info, resolve), for dataset and model repos alike. The two
kinds differ only in URL (``/api/datasets/ORG/NAME`` and ``/datasets/ORG/NAME/resolve/...`` against
``/api/models/ORG/NAME`` and ``/ORG/NAME/resolve/...``), and in which files the initial ``.gitattributes``
sends through LFS, which is what preupload answers from, as the real Hub does. Each commit is an immutable
snapshot, a branch is a pointer to one, and a commit swaps the pointer only after every operation checked out:
a failed commit changes nothing. ``fail`` injects HTTP 500s to test retries.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

GITATTRIBUTES = {
    "dataset": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n",
    "model": b"".join(b"*.%s filter=lfs diff=lfs merge=lfs -text\n" % ext
                      for ext in (b"safetensors", b"bin", b"pt", b"pth", b"onnx", b"h5", b"msgpack", b"ckpt")),
}
URL_PREFIX = {"dataset": "datasets/", "model": ""}  # /{prefix}{repo_id}/resolve/... and the web URL
_KIND = {"datasets": "dataset", "models": "model", None: "model"}  # a URL's segment -> repo kind


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FileEntry:
    path: str
    size: int
    blob: str  # sha256 of the content: the key in the blob store
    lfs: bool
    git_oid: str

    def as_tree(self) -> dict:
        d = {"type": "file", "path": self.path, "size": self.size, "oid": self.git_oid}
        if self.lfs:
            d["lfs"] = {"oid": self.blob, "size": self.size, "pointerSize": 134}
        return d


@dataclass
class Repo:
    repo_id: str
    private: bool
    kind: str = "dataset"
    commits: dict[str, dict[str, FileEntry]] = field(default_factory=dict)
    parents: dict[str, str | None] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    authors: dict[str, str] = field(default_factory=dict)  # commit -> the user whose token made it
    dates: dict[str, str] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> str | None:
        rev = unquote(rev)
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.commits:
            return rev
        matches = [c for c in self.commits if c.startswith(rev)] if len(rev) >= 7 else []
        return matches[0] if len(matches) == 1 else None


class HubState:
    """Everything the fake Hub knows, behind one lock."""

    def __init__(self, tokens: set[str] | dict[str, str] | None = None):
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}  # dataset repos, by id
        self.models: dict[str, Repo] = {}  # model repos, by id (a model and a dataset may share one)
        self.blobs: dict[str, bytes] = {}
        tokens = tokens if tokens is not None else {"hf_test_token"}
        # token -> user name; a plain set of tokens all belong to "tester", as before
        self.tokens = dict(tokens) if isinstance(tokens, dict) else {t: "tester" for t in tokens}
        self.requests: list[tuple[str, str, str]] = []  # (client address, method, path)
        self.fail: dict[str, int] = {}  # route kind -> how many of the next calls answer 500
        self.counter = 0

    def new_commit(self, repo: Repo, parent: str | None, files: dict[str, FileEntry], message: str,
                   author: str = "tester") -> str:
        self.counter += 1
        h = hashlib.sha1(f"{repo.repo_id}|{parent}|{message}|{self.counter}".encode())
        for p in sorted(files):
            h.update(f"{p}:{files[p].blob}".encode())
        sha = h.hexdigest()
        repo.commits[sha] = files
        repo.parents[sha] = parent
        repo.messages[sha] = message
        repo.authors[sha] = author
        repo.dates[sha] = f"2026-01-01T00:00:00.{self.counter:06d}Z"  # strictly increasing, like real commit times
        return sha

    def table(self, kind: str) -> dict[str, Repo]:
        return self.models if kind == "model" else self.repos

    def lfs_patterns(self, files: dict[str, FileEntry]) -> list[str]:
        """File-name patterns that a snapshot's ``.gitattributes`` sends through LFS."""
        entry = files.get(".gitattributes")
        text = b"" if entry is None else self.blobs[entry.blob]
        return [line.split()[0] for line in text.decode().splitlines() if "filter=lfs" in line]

    def store(self, data: bytes, path: str, lfs: bool) -> FileEntry:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return FileEntry(path=path, size=len(data), blob=digest, lfs=lfs, git_oid=git_blob_sha1(data))


_API = r"^/api/(?P<kind>datasets|models)/(?P<repo>[^/]+/[^/]+)"
_WEB = r"^/(?:(?P<kind>datasets)/)?(?P<repo>[^/]+/[^/]+)"  # model repos have no prefix
ROUTES: list[tuple[str, re.Pattern, str]] = [
    ("POST", re.compile(r"^/api/repos/create$"), "create"),
    ("GET", re.compile(r"^/api/whoami-v2$"), "whoami"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("POST", re.compile(_API + r"/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(_API + r"/commit/(?P<rev>[^/]+)$"), "commit"),
    ("POST", re.compile(_API + r"/paths-info/(?P<rev>[^/]+)$"), "paths_info"),
    ("POST", re.compile(_API + r"/branch/(?P<branch>.+)$"), "branch"),
    ("GET", re.compile(_API + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$"), "tree"),
    ("GET", re.compile(_API + r"/refs$"), "refs"),
    ("GET", re.compile(_API + r"/commits/(?P<rev>[^/]+)$"), "commits"),
    ("GET", re.compile(_API + r"(?:/revision/(?P<rev>[^/]+))?$"), "info"),
    ("POST", re.compile(_WEB + r"\.git/info/lfs/objects/batch$"), "lfs_batch"),
    ("PUT", re.compile(r"^/lfs/upload/(?P<oid>[0-9a-f]{64})$"), "lfs_upload"),
    ("POST", re.compile(r"^/lfs/verify$"), "lfs_verify"),
    ("GET", re.compile(_WEB + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ("HEAD", re.compile(_WEB + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
]


class HubHandler(BaseHTTPRequestHandler):
    server_version = "facebench-test-hub/1"
    protocol_version = "HTTP/1.1"
    state: HubState
    endpoint: str

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    # -- plumbing ---------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes | dict | list | None = None, headers: dict | None = None,
              head: bool = False) -> None:
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        body = body or b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not (head or self.command == "HEAD"):
            self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message}, headers)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authed(self) -> bool:
        return self._user() is not None

    def _user(self) -> str | None:
        """The user the request's token belongs to (None without a known token)."""
        auth = self.headers.get("Authorization", "")
        return self.state.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        self.state.requests.append((self.client_address[0], method, url.path))
        body = self._body() if method in ("POST", "PUT") else b""
        for m, pattern, kind in ROUTES:
            match = pattern.match(url.path)
            if m == method and match:
                with self.state.lock:
                    if self.state.fail.get(kind, 0) > 0:
                        self.state.fail[kind] -= 1
                        return self._error(500, f"injected failure in {kind}")
                args = match.groupdict()
                if "repo" in args:
                    args["kind"] = _KIND[args.get("kind")]
                return getattr(self, f"do_{kind}")(body=body, query=parse_qs(url.query), head=method == "HEAD",
                                                   **args)
        self._error(404, f"no route {method} {url.path}")

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def _repo(self, repo: str, kind: str, write: bool = False) -> Repo | None:
        r = self.state.table(kind).get(unquote(repo))
        if r is None or (r.private and not self._authed()):
            self._error(401 if not self._authed() else 404, "Repository not found", "RepoNotFound")
            return None
        if write and not self._authed():
            self._error(401, "Invalid credentials")
            return None
        return r

    def _snapshot(self, r: Repo, rev: str) -> tuple[str, dict[str, FileEntry]] | None:
        sha = r.resolve(rev)
        if sha is None:
            self._error(404, f"Invalid rev id: {unquote(rev)}", "RevisionNotFound")
            return None
        return sha, r.commits[sha]

    # -- routes -----------------------------------------------------------------------------------------
    def do_create(self, body: bytes, **_) -> None:
        if not self._authed():
            return self._error(401, "Invalid credentials in Authorization header")
        req = json.loads(body or b"{}")
        kind = req.get("type") or "model"
        if kind not in GITATTRIBUTES:
            return self._error(400, f"this test Hub serves dataset and model repos, not {kind}")
        repo_id = f"{req.get('organization') or self._user()}/{req['name']}"
        url = f"{self.endpoint}/{URL_PREFIX[kind]}{repo_id}"
        table = self.state.table(kind)
        with self.state.lock:
            if repo_id in table:
                return self._send(409, {"error": f"You already created this {kind} repo", "url": url})
            repo = Repo(repo_id=repo_id, private=bool(req.get("private")) or req.get("visibility") == "private",
                        kind=kind)
            entry = self.state.store(GITATTRIBUTES[kind], ".gitattributes", lfs=False)
            repo.branches["main"] = self.state.new_commit(repo, None, {".gitattributes": entry}, "initial commit",
                                                          self._user() or "tester")
            table[repo_id] = repo
        self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def do_whoami(self, **_) -> None:
        if not self._authed():
            return self._error(401, "Invalid credentials")
        self._send(200, {"type": "user", "name": self._user(), "orgs": [], "auth": {"type": "access_token"}})

    def do_validate_yaml(self, **_) -> None:
        self._send(200, {"errors": [], "warnings": []})

    def do_info(self, repo: str, kind: str, rev: str | None = None, head: bool = False, **_) -> None:
        r = self._repo(repo, kind)
        if r is None:
            return
        snap = self._snapshot(r, rev or "main")
        if snap is None:
            return
        sha, files = snap
        info = {
            "_id": r.repo_id, "id": r.repo_id, "author": r.repo_id.split("/")[0], "sha": sha, "private": r.private,
            "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [], "cardData": {},
            "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": p} for p in sorted(files)],
        }  # fmt: skip
        if kind == "model":
            info["modelId"] = r.repo_id
        self._send(200, info, head=head)

    def do_refs(self, repo: str, kind: str, **_) -> None:
        r = self._repo(repo, kind)
        if r is None:
            return
        self._send(200, {"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c}
                                      for b, c in r.branches.items()], "tags": [], "converts": []})

    def do_branch(self, repo: str, kind: str, branch: str, body: bytes, **_) -> None:
        r = self._repo(repo, kind, write=True)
        if r is None:
            return
        req = json.loads(body or b"{}")
        with self.state.lock:
            if unquote(branch) in r.branches:
                return self._error(409, "Reference already exists")
            start = r.resolve(req.get("startingPoint") or "main")
            r.branches[unquote(branch)] = start
        self._send(200, {})

    def do_preupload(self, repo: str, kind: str, rev: str, body: bytes, **_) -> None:
        r = self._repo(repo, kind, write=True)
        if r is None:
            return
        snap = self._snapshot(r, rev)
        files = snap[1] if snap else {}
        patterns = self.state.lfs_patterns(files)
        out = []
        for f in json.loads(body)["files"]:
            name = f["path"].rsplit("/", 1)[-1]
            lfs = any(fnmatch.fnmatch(name, pat) for pat in patterns) or f["size"] > 10_000_000
            remote = files.get(f["path"])
            oid = None if remote is None else (remote.blob if remote.lfs else remote.git_oid)
            out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                        "oid": oid})
        self._send(200, {"files": out, "commitOid": snap[0] if snap else None})

    def do_lfs_batch(self, repo: str, kind: str, body: bytes, **_) -> None:
        r = self._repo(repo, kind, write=True)
        if r is None:
            return
        req = json.loads(body)
        objects = []
        for o in req["objects"]:
            obj = {"oid": o["oid"], "size": o["size"], "authenticated": True}
            if o["oid"] not in self.state.blobs:
                obj["actions"] = {
                    "upload": {"href": f"{self.endpoint}/lfs/upload/{o['oid']}", "header": {}},
                    "verify": {"href": f"{self.endpoint}/lfs/verify", "header": {}},
                }
            objects.append(obj)
        self._send(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                   {"Content-Type": "application/vnd.git-lfs+json"})

    def do_lfs_upload(self, oid: str, body: bytes, **_) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            return self._error(400, "content does not match oid")
        with self.state.lock:
            self.state.blobs[oid] = body
        self._send(200, b"")

    def do_lfs_verify(self, body: bytes, **_) -> None:
        req = json.loads(body)
        ok = req["oid"] in self.state.blobs and len(self.state.blobs[req["oid"]]) == req["size"]
        self._send(200 if ok else 404, {"message": "ok" if ok else "object not found"})

    def do_commit(self, repo: str, kind: str, rev: str, body: bytes, **_) -> None:
        r = self._repo(repo, kind, write=True)
        if r is None:
            return
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        with self.state.lock:
            branch = unquote(rev)
            if branch not in r.branches:
                return self._error(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            parent = r.branches[branch]
            files = dict(r.commits[parent])
            summary = "commit"
            for item in lines:
                key, value = item["key"], item["value"]
                if key == "header":
                    summary = value.get("summary", summary)
                    want = value.get("parentCommit")
                    if want and want != parent:
                        return self._error(412, "A commit has happened since. Please refresh and try again.")
                elif key == "file":
                    data = base64.b64decode(value["content"]) if value.get("encoding") == "base64" else \
                        value["content"].encode()
                    files[value["path"]] = self.state.store(data, value["path"], lfs=False)
                elif key == "lfsFile":
                    blob = self.state.blobs.get(value["oid"])
                    if blob is None:
                        return self._error(422, f"LFS object {value['oid']} was never uploaded")
                    files[value["path"]] = FileEntry(value["path"], len(blob), value["oid"], True, git_blob_sha1(blob))
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: e for p, e in files.items() if not p.startswith(prefix)}
                else:
                    return self._error(400, f"unknown commit operation {key}")
            sha = self.state.new_commit(r, parent, files, summary, self._user() or "tester")
            r.branches[branch] = sha
        url = f"{self.endpoint}/{URL_PREFIX[kind]}{r.repo_id}/commit/{sha}"
        self._send(200, {"success": True, "commitOid": sha, "commitUrl": url, "commitMessage": summary,
                         "pullRequestUrl": None})

    def do_commits(self, repo: str, kind: str, rev: str, **_) -> None:
        """The history of ``rev``, newest first, with each commit's author as the Hub recorded it."""
        r = self._repo(repo, kind)
        if r is None:
            return
        sha = r.resolve(rev)
        if sha is None:
            return self._error(404, f"Invalid rev id: {unquote(rev)}", "RevisionNotFound")
        out = []
        while sha is not None:
            out.append({"id": sha, "title": r.messages[sha], "message": "", "date": r.dates[sha],
                        "authors": [{"user": r.authors[sha]}]})
            sha = r.parents[sha]
        self._send(200, out)

    def _entries(self, files: dict[str, FileEntry], prefix: str, recursive: bool) -> list[dict]:
        prefix = prefix.strip("/")
        base = prefix + "/" if prefix else ""
        out, dirs = [], set()
        for p in sorted(files):
            if not p.startswith(base):
                continue
            rest = p[len(base):]
            if "/" in rest:
                parts = rest.split("/")
                for k in range(1, len(parts) if recursive else 2):
                    dirs.add(base + "/".join(parts[:k]))
                if not recursive:
                    continue
            out.append(files[p].as_tree())
        out += [{"type": "directory", "path": d, "size": 0, "oid": git_blob_sha1(d.encode())} for d in sorted(dirs)]
        return out

    def do_tree(self, repo: str, kind: str, rev: str, path: str | None = None, query: dict | None = None,
                **_) -> None:
        r = self._repo(repo, kind)
        if r is None:
            return
        snap = self._snapshot(r, rev)
        if snap is None:
            return
        recursive = (query or {}).get("recursive", ["false"])[0].lower() in ("true", "1")
        entries = self._entries(snap[1], unquote(path or ""), recursive)
        if path and not entries:
            return self._error(404, f"path {path} not found", "EntryNotFound")
        self._send(200, entries)

    def do_paths_info(self, repo: str, kind: str, rev: str, body: bytes, **_) -> None:
        r = self._repo(repo, kind)
        if r is None:
            return
        snap = self._snapshot(r, rev)
        if snap is None:
            return
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            paths = json.loads(body).get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        files = snap[1]
        out = []
        for p in paths:
            p = p.strip("/")
            if p in files:
                out.append(files[p].as_tree())
            elif any(f.startswith(p + "/") for f in files):
                out.append({"type": "directory", "path": p, "size": 0, "oid": git_blob_sha1(p.encode())})
        self._send(200, out)

    def do_resolve(self, repo: str, kind: str, rev: str, path: str, head: bool = False, **_) -> None:
        r = self._repo(repo, kind)
        if r is None:
            return
        snap = self._snapshot(r, rev)
        if snap is None:
            return
        sha, files = snap
        entry = files.get(unquote(path))
        if entry is None:
            return self._error(404, f"Entry not found: {path}", "EntryNotFound")
        data = self.state.blobs[entry.blob]
        etag = entry.blob if entry.lfs else entry.git_oid
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = str(entry.size)
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and not head:
            start, _, end = rng[6:].partition("-")
            s, e = int(start or 0), int(end) if end else len(data) - 1
            headers["Content-Range"] = f"bytes {s}-{e}/{len(data)}"
            return self._send(206, data[s : e + 1], headers)
        if head:
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return
        self._send(200, data, headers)


class HubServer:
    """Run the fake Hub in a thread: ``with HubServer() as hub: hub.endpoint``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tokens: set[str] | dict[str, str] | None = None):
        self.state = HubState(tokens)
        handler = type("Handler", (HubHandler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.endpoint = f"http://{host}:{self.httpd.server_address[1]}"
        handler.endpoint = self.endpoint
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":  # run standalone: python tests/hubserver.py [port]
    import sys

    srv = HubServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8765)
    print(srv.endpoint, flush=True)
    srv.thread.start()
    srv.thread.join()
