"""Reading one untrusted HTTP request: a deadline, a strict ``Content-Length``, a bounded JSON body.

The study server faces raters' browsers, but anything that can reach its port can send it anything.
Why each guard exists:

- a per-connection *deadline* (not only a per-``recv`` timeout): a client that trickles one byte
  every few seconds would otherwise hold its thread forever, one timeout at a time;
- ``Content-Length`` as plain ASCII digits within a cap: ``int()`` alone accepts ``-1`` (read to EOF,
  i.e. forever), ``" 12"``, ``"1_0"`` and non-ASCII digits;
- a nesting-depth scan *before* ``json.loads``: the C parser recurses once per level, and a
  4 KiB body of ``[`` raises ``RecursionError``, which is not a ``ValueError``.

Every failure is a ``BadRequest`` carrying its HTTP status and one line for the JSON error body.
"""

from __future__ import annotations

import io
import json
import re
import socket
import time
from email.message import Message
from http import HTTPStatus

_DIGITS = re.compile(r"[0-9]+")


class BadRequest(Exception):
    """A malformed request: answered with ``status`` and ``{"error": message}``, then the connection closes."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = int(status)
        self.message = message


class DeadlineReader(io.RawIOBase):
    """A socket's read side that raises ``TimeoutError`` once ``seconds`` have passed since it was made.

    Each ``recv`` waits at most the time left, so the whole request (line, headers, body) must
    arrive within the deadline, however slowly the bytes trickle in.
    """

    def __init__(self, sock: socket.socket, seconds: float):
        super().__init__()
        self._sock = sock
        self._deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - any writable buffer, as io.RawIOBase
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request not received in time")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


def content_length(headers: Message, cap: int) -> int:
    """The declared body length: one header of ASCII digits, at most ``cap``; 411 when absent."""
    if headers.get("Transfer-Encoding") is not None:
        raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "send the body with Content-Length, not Transfer-Encoding")
    values = headers.get_all("Content-Length") or []
    if not values:
        raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
    if len(set(values)) > 1:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
    if not _DIGITS.fullmatch(values[0]):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"Content-Length {values[0][:20]!r} is not a non-negative integer")
    n = int(values[0]) if len(values[0]) <= 18 else cap + 1  # int() refuses over 4300 digits
    if n > cap:
        raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over the {cap}-byte limit")
    return n


def check_depth(data: bytes, limit: int) -> None:
    """Refuse JSON nested deeper than ``limit`` arrays/objects, by one flat scan (no recursion)."""
    depth, in_string, escaped = 0, False, False
    for c in data:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                raise BadRequest(HTTPStatus.BAD_REQUEST, f"JSON nested deeper than {limit} levels")
        elif c in (0x5D, 0x7D):  # ] }
            depth -= 1


def read_json(rfile: io.BufferedIOBase, headers: Message, cap: int, max_depth: int) -> object:
    """Read and parse a JSON body under all of the guards above."""
    n = content_length(headers, cap)
    try:
        data = rfile.read(n)
    except TimeoutError:
        raise BadRequest(HTTPStatus.REQUEST_TIMEOUT, "request body not received in time") from None
    if len(data) < n:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"body ended after {len(data)} of {n} bytes")
    if not data:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "empty body: expected a JSON object")
    check_depth(data, max_depth)
    try:
        return json.loads(data)
    except RecursionError:  # unreachable after check_depth, kept as a backstop
        raise BadRequest(HTTPStatus.BAD_REQUEST, "JSON nested too deeply") from None
    except ValueError as e:  # includes UnicodeDecodeError
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"body is not JSON ({str(e).splitlines()[0][:80]})") from None
