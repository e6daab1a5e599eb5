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

Whatever reaches the port is untrusted: each connection has a deadline (``timeout``) for its whole
request, bodies are capped and strictly framed, JSON depth is bounded (see ``wire``), and every
refusal is a one-line JSON ``{"error": ...}`` with a 4xx status. Each connection has its own thread
and carries one request (HTTP/1.0), so a client that stalls holds only that thread, and only until its
deadline.
"""

from __future__ import annotations

import io
import json
import re
import sys
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
from facebench.study.wire import BadRequest, DeadlineReader, read_json

PAGE = Path(__file__).with_name("page.html")
_MEDIA_NAME = re.compile(r"^/media/([A-Za-z0-9_-]{1,64}\.png)$")
MAX_BODY = 4096  # an answer is ~100 bytes
MAX_DEPTH = 32
TIMEOUT = 10.0  # seconds for a whole request to arrive (and, separately, for the response to be taken)
_POSITION = re.compile(r"[0-9]{1,9}")
_FIELDS = {"rater": "string", "position": "integer", "item": "string", "value": ""}  # the app checks value


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
    timeout: float = TIMEOUT
    max_body: int = MAX_BODY
    server_version = "facebench-study"

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # replaced by a reader with a deadline for the whole request
        self.rfile = io.BufferedReader(DeadlineReader(self.connection, self.timeout))

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet by default
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.connection.settimeout(self.timeout)  # the reader may have left only a sliver of its deadline
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store" if not ctype.startswith("image/") else "max-age=3600")
        self.send_header("X-Content-Type-Options", "nosniff")
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: dict, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, too many headers, unknown method) as one-line JSON."""
        if self.request_version == "HTTP/0.9":  # an unparsable request line: answer with a status line anyway
            self.request_version = "HTTP/1.0"
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._json({"error": (message or phrase)[:200]}, code)

    def _guard(self, fn) -> None:
        """Answer ``fn()`` as JSON, or its failure as a one-line ``{"error"}`` with the matching status."""
        try:
            status, obj = HTTPStatus.OK, fn()
        except BadRequest as e:
            status, obj = e.status, {"error": e.message}
        except StudyError as e:
            status, obj = HTTPStatus.BAD_REQUEST, {"error": str(e)}
        except (ValueError, KeyError, TypeError) as e:
            status, obj = HTTPStatus.BAD_REQUEST, {"error": f"bad request: {e}"}
        except Exception as e:  # noqa: BLE001 - our bug, but the client still gets one line
            print(f"facebench-study: {type(e).__name__}: {e}", file=sys.stderr)
            status, obj = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}
        self._json(obj, status)

    def _query(self) -> dict[str, str]:
        try:
            q = parse_qs(urlparse(self.path).query, max_num_fields=16)
        except ValueError:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "too many query parameters") from None
        return {k: v[0] for k, v in q.items()}

    def _position(self, text: str | None) -> int:
        if text is None or not _POSITION.fullmatch(text):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "position must be a non-negative integer")
        return int(text)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urlparse(self.path).path
        if path in ("/", "/index.html"):
            self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
        elif path == "/api/study":
            self._guard(self.app.info)
        elif path == "/api/next":
            self._guard(lambda: self.app.progress(self._query().get("rater", "")))
        elif path == "/api/task":
            self._guard(lambda: self.app.task((q := self._query()).get("rater", ""), self._position(q.get("position"))))
        elif m := _MEDIA_NAME.match(path):
            file = self.app.folder / MEDIA / m.group(1)
            if file.is_file():
                self._send(200, file.read_bytes(), "image/png")
            else:
                self._json({"error": "no such image"}, HTTPStatus.NOT_FOUND)
        else:
            self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:  # noqa: N802
        if urlparse(self.path).path != "/api/answer":
            self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
            return
        self._guard(self._answer)

    def _answer(self) -> dict:
        body = read_json(self.rfile, self.headers, self.max_body, MAX_DEPTH)
        if not isinstance(body, dict):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        for name, kind in _FIELDS.items():
            if name not in body:
                raise BadRequest(HTTPStatus.BAD_REQUEST, f"missing field {name}")
            v = body[name]
            if kind and not (isinstance(v, str) if kind == "string" else type(v) is int):
                raise BadRequest(HTTPStatus.BAD_REQUEST, f"{name} must be a JSON {kind}")
        return self.app.answer(body["rater"], body["position"], body["item"], body["value"],
                               self.headers.get("User-Agent", ""))


class StudyServer(ThreadingHTTPServer):
    """A threaded HTTP server that owns its StudyApp and closes the ratings store with the socket.

    ``timeout`` bounds how long one connection may take to send its request; ``max_body`` caps a body.
    """

    daemon_threads = True
    request_queue_size = 64  # a burst of connections waits in the backlog instead of being refused

    def __init__(self, address: tuple[str, int], app: StudyApp, timeout: float = TIMEOUT, max_body: int = MAX_BODY):
        self.app = app
        attrs = {"app": app, "timeout": float(timeout), "max_body": int(max_body)}
        super().__init__(address, type("StudyHandler", (_Handler,), attrs))

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        """A client that hung up mid-answer is not our error; anything else keeps its traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self.app.store.close()


def make_server(folder: str | Path, host: str = "127.0.0.1", port: int = 0, timeout: float = TIMEOUT,
                max_body: int = MAX_BODY) -> StudyServer:
    """A ready (not yet serving) server; ``port=0`` picks a free port (see ``server.server_address``)."""
    if not timeout > 0:
        raise StudyError(f"--timeout must be positive seconds, not {timeout}")
    if not 0 <= port <= 65535:
        raise StudyError(f"--port must be 0..65535, got {port}")
    app = StudyApp(folder)
    try:
        return StudyServer((host, port), app, timeout, max_body)
    except (OSError, OverflowError) as e:  # in use, no such address
        app.store.close()
        raise StudyError(f"cannot listen on {host}:{port} ({getattr(e, 'strerror', None) or e})",
                         hint="try another --port or --host") from None


def serve_in_thread(folder: str | Path, host: str = "127.0.0.1", port: int = 0,
                    timeout: float = TIMEOUT) -> tuple[StudyServer, str]:
    """Start serving in a daemon thread; returns the server (call ``shutdown()``) and its base URL."""
    server = make_server(folder, host, port, timeout)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    h, p = server.server_address[:2]
    return server, f"http://{h}:{p}"
