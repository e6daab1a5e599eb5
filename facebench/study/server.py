"""A small stdlib HTTP server for raters: ``page.html``, a JSON API, and the study's media.

It reads ``study.json`` and ``media/`` only (never ``key.json``), so nothing it sends can unblind
a model. State lives in SQLite, keyed by rater id: the page can be reloaded, or reopened on
another day, and continues at the rater's first unanswered task.

Routes::

    GET  /                               the page
    GET  /api/study                      scale, questions, number of tasks
    GET  /api/next?rater=R               first unanswered position (== total when done)
    GET  /api/task?rater=R&position=K    one task of R's plan, with R's current answer
    POST /api/answer {rater, position, item, value}
    GET  /media/NAME.png
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from facebench.study.errors import StudyError
from facebench.study.layout import DB, MEDIA, Manifest, read_manifest
from facebench.study.order import Planned, check_rater, plan_for
from facebench.study.store import Store

PAGE = Path(__file__).with_name("page.html")
_MEDIA_NAME = re.compile(r"^/media/([A-Za-z0-9_-]{1,64}\.png)$")
MAX_BODY = 4096


class StudyApp:
    """The study's logic behind the HTTP layer: plans, validation, the store."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.manifest: Manifest = read_manifest(self.folder)
        self.store = Store(self.folder / DB)
        self.plan = lru_cache(maxsize=1024)(self._plan)

    def _plan(self, rater: str) -> tuple[Planned, ...]:
        return tuple(plan_for(self.manifest, rater))

    def info(self) -> dict:
        m = self.manifest
        return {"title": m.title, "question": m.question, "pair_question": m.pair_question, "mode": m.mode,
                "scale_min": m.scale_min, "scale_max": m.scale_max, "scale_labels": list(m.scale_labels),
                "total": len(m.tasks)}

    def progress(self, rater: str) -> dict:
        plan = self.plan(check_rater(rater))
        done = self.store.answers(rater)
        first = next((p.position for p in plan if p.task.item not in done), len(plan))
        return {"next": first, "answered": len(done), "total": len(plan)}

    def task(self, rater: str, position: int) -> dict:
        plan = self.plan(check_rater(rater))
        if not 0 <= position < len(plan):
            raise StudyError(f"position {position} outside 0..{len(plan) - 1}")
        p = plan[position]
        self.store.presented(rater, p.task.item)
        done = self.store.answers(rater)
        return {"position": position, "total": len(plan), "answered": len(done), "item": p.task.item,
                "kind": p.task.kind, "image": p.task.image, "overlays": list(p.overlays),
                "value": done.get(p.task.item)}

    def answer(self, rater: str, position: int, item: str, value: int, user_agent: str = "") -> dict:
        plan = self.plan(check_rater(rater))
        if not 0 <= position < len(plan) or plan[position].task.item != item:
            raise StudyError("item does not match this rater's plan (stale page?)", hint="reload the page")
        p = plan[position]
        lo, hi = (self.manifest.scale_min, self.manifest.scale_max) if p.task.kind == "rating" else (1, 2)
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise StudyError(f"value must be an integer in {lo}..{hi}")
        self.store.answer(rater, item, p.task.kind, position, value, p.swapped, user_agent)
        return self.progress(rater)


class _Handler(BaseHTTPRequestHandler):
    app: StudyApp
    server_version = "facebench-study"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet by default
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store" if not ctype.startswith("image/") else "max-age=3600")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: dict, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _guard(self, fn) -> None:
        try:
            self._json(fn())
        except StudyError as e:
            self._json({"error": str(e)}, HTTPStatus.BAD_REQUEST)
        except (ValueError, KeyError, TypeError) as e:
            self._json({"error": f"bad request: {e}"}, HTTPStatus.BAD_REQUEST)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path in ("/", "/index.html"):
            self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
        elif url.path == "/api/study":
            self._json(self.app.info())
        elif url.path == "/api/next":
            self._guard(lambda: self.app.progress(q.get("rater", "")))
        elif url.path == "/api/task":
            self._guard(lambda: self.app.task(q.get("rater", ""), int(q.get("position", "-1"))))
        elif m := _MEDIA_NAME.match(url.path):
            path = self.app.folder / MEDIA / m.group(1)
            if path.is_file():
                self._send(200, path.read_bytes(), "image/png")
            else:
                self._json({"error": "no such image"}, HTTPStatus.NOT_FOUND)
        else:
            self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:  # noqa: N802
        if urlparse(self.path).path != "/api/answer":
            self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
            return
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self._json({"error": "request too large"}, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return

        def go() -> dict:
            body = json.loads(self.rfile.read(n) or b"{}")
            return self.app.answer(str(body["rater"]), int(body["position"]), str(body["item"]), body["value"],
                                   self.headers.get("User-Agent", ""))

        self._guard(go)


class StudyServer(ThreadingHTTPServer):
    """A threaded HTTP server that owns its StudyApp and closes the ratings store with the socket."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: StudyApp):
        self.app = app
        super().__init__(address, type("StudyHandler", (_Handler,), {"app": app}))

    def server_close(self) -> None:
        super().server_close()
        self.app.store.close()


def make_server(folder: str | Path, host: str = "127.0.0.1", port: int = 0) -> StudyServer:
    """A ready (not yet serving) server; ``port=0`` picks a free port (see ``server.server_address``)."""
    app = StudyApp(folder)
    try:
        return StudyServer((host, port), app)
    except OSError as e:
        app.store.close()
        raise StudyError(f"cannot listen on {host}:{port} ({e.strerror})", hint="try another --port") from None


def serve_in_thread(folder: str | Path, host: str = "127.0.0.1", port: int = 0) -> tuple[StudyServer, str]:
    """Start serving in a daemon thread; returns the server (call ``shutdown()``) and its base URL."""
    server = make_server(folder, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    h, p = server.server_address[:2]
    return server, f"http://{h}:{p}"
