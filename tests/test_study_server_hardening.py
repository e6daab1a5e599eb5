"""The rating server against hostile clients, through a real server on 127.0.0.1 and raw sockets.

Every malformed request gets a one-line JSON error with a 4xx status; a stalled request is cut at the
server's deadline (short here, 10 s by default); a rater id is a strict name everywhere; and a normal
rater is served promptly while twenty hostile connections are open.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from facebench.study.errors import InvalidRatings, StudyError
from facebench.study.export import export_csv
from facebench.study.order import check_rater
from facebench.study.ratings import read_ratings
from facebench.study.server import make_server
from facebench.study.store import Store

TIMEOUT = 1.0  # the server's per-request deadline in these tests
WAIT = 6.0  # no client in this file waits longer than this for anything


def build(dataset_root: Path, tmp: Path) -> Path:
    from test_study_kit import make_study

    return make_study(dataset_root, tmp, mode="rating", n_items=4)


@pytest.fixture
def study(small_dataset: Path, tmp_path: Path) -> Path:
    return build(small_dataset, tmp_path)


@contextmanager
def serve(study: Path, timeout: float = TIMEOUT) -> Iterator[tuple[str, int]]:
    """A real server on a free port; it polls for shutdown every 20 ms so that tests end promptly."""
    server = make_server(study, timeout=timeout)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """One study and server for the stateless refusals below (they store nothing but rater bob's first view)."""
    from conftest import blob_sample_arrays

    from facebench.dataset import Sample, build_dataset

    tmp = tmp_path_factory.mktemp("hardening")
    rng = np.random.default_rng(7)
    samples = []
    for i in range(24):
        image, mask = blob_sample_arrays(rng)
        samples.append(Sample(id=f"img{i:03d}", image=image, mask=mask, subject=f"s{i % 3}", yaw=i * 15.0 - 170,
                              pitch=0.0))
    study = build(build_dataset({"test": samples}, tmp / "ds"), tmp)
    with serve(study) as (url, port):
        yield study, url, port


def exchange(port: int, data: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes and half-close, then read the whole answer: (status, JSON body, raw head)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return parse(read_all(s))


def read_all(s: socket.socket) -> bytes:
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def parse(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), raw[:200]
    assert b"\n" not in body, body  # one line
    return int(head.split()[1]), json.loads(body), head


def post_raw(body: bytes, headers: str = "") -> bytes:
    return (f"POST /api/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}\r\n").encode() + body


def post_sized(body: bytes) -> bytes:
    """A POST whose Content-Length is right: what is malformed is the body itself."""
    return post_raw(body, f"Content-Length: {len(body)}\r\n")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=WAIT) as r:
        return json.load(r)


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(f"{url}/api/answer", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=WAIT) as r:
        return json.load(r)


def raters_in(study: Path) -> set[str]:
    with sqlite3.connect(study / "ratings.sqlite") as db:
        return {r for (r,) in db.execute("SELECT rater FROM responses UNION SELECT rater FROM presentations")}


DEEP = b"[" * 2040 + b"]" * 2040
MALFORMED = {
    "length not a number": (post_raw(b"{}", "Content-Length: abc\r\n"), 400, "Content-Length 'abc'"),
    "negative length": (post_raw(b"{}", "Content-Length: -1\r\n"), 400, "Content-Length '-1'"),
    "signed length": (post_raw(b"{}", "Content-Length: +2\r\n"), 400, "Content-Length '+2'"),
    "two lengths": (post_raw(b"{}", "Content-Length: 2\r\nContent-Length: 3\r\n"), 400, "conflicting"),
    "length over the cap": (post_raw(b"{}", "Content-Length: 99999999999999999999\r\n"), 413, "limit"),
    "no length": (post_raw(b"{}"), 411, "Content-Length required"),
    "chunked": (post_raw(b"2\r\n{}\r\n0\r\n\r\n", "Transfer-Encoding: chunked\r\n"), 411, "Transfer-Encoding"),
    "body shorter than declared": (post_raw(b"{}", "Content-Length: 100\r\n"), 400, "body ended after 2 of 100"),
    "2040-deep array": (post_sized(DEEP), 400, "nested deeper than 32"),
    "33-deep object": (post_sized(b'{"a":' * 33 + b"1" + b"}" * 33), 400, "nested deeper than 32"),
    "deep inside a string is fine": (post_sized(b'{"rater": "' + b"[" * 100 + b'"}'), 400, "missing field position"),
    "not JSON": (post_sized(b"rater=ann"), 400, "not JSON"),
    "not UTF-8": (post_sized(b'{"\xff"}'), 400, "not JSON"),
    "empty body": (post_sized(b""), 400, "empty body"),
    "JSON list": (post_sized(b"[1]"), 400, "JSON object"),
    "missing field": (post_sized(b'{"rater": "ann"}'), 400, "missing field position"),
    "numeric rater": (post_sized(b'{"rater": 7, "position": 0, "item": "x", "value": 3}'), 400,
                      "rater must be a JSON string"),
    "boolean position": (post_sized(b'{"rater": "a", "position": true, "item": "x", "value": 3}'), 400,
                         "position must be a JSON integer"),
    "garbage request line": (b"HELLO\r\n\r\n", 400, "Bad request syntax"),
    "bad HTTP version": (b"GET / HTTP/7\r\n\r\n", 400, "Bad request version"),
    "too many headers": (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431, "Too many headers"),
    "position not a number": (b"GET /api/task?rater=ann&position=1e3 HTTP/1.1\r\n\r\n", 400, "position"),
    "position in other digits": (b"GET /api/task?rater=ann&position=%D9%A3 HTTP/1.1\r\n\r\n", 400, "position"),
    "query flood": (b"GET /api/next?" + b"&".join(b"a%d=1" % i for i in range(40)) + b" HTTP/1.1\r\n\r\n", 400,
                    "too many query parameters"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_requests_get_one_line_4xx(served, name: str):
    study, url, port = served
    data, status, why = MALFORMED[name]
    got, body, head = exchange(port, data)
    assert (got, why in body["error"]) == (status, True), body
    assert b"Content-Type: application/json" in head and b"Connection: close" in head
    assert get_json(f"{url}/api/next?rater=ann")["next"] == 0  # and the server is still fine


def test_a_body_over_the_cap_is_refused_unread(served):
    """The 413 comes from the declared length alone, while the 60 kB body is still unread."""
    _, _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(post_raw(b"x" * 60_000, "Content-Length: 60000\r\n"))
        status, body, _ = parse(read_all(s))
    assert status == 413 and "4096-byte limit" in body["error"]


def test_stalled_body_is_answered_408_at_the_deadline(served):
    _, _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        t0 = time.monotonic()
        s.sendall(post_raw(b'{"rater": "ann"', "Content-Length: 100\r\n"))  # then nothing, connection kept open
        status, body, _ = parse(read_all(s))
        took = time.monotonic() - t0
    assert status == 408 and "not received in time" in body["error"]
    assert TIMEOUT * 0.8 < took < TIMEOUT + 2


def test_stalled_headers_are_cut_at_the_deadline(served):
    _, _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /api/answer HTTP/1.1\r\nContent-Le")
        assert read_all(s) == b""  # closed, not held
        assert time.monotonic() - t0 < TIMEOUT + 2


def test_a_trickling_client_is_cut_at_the_deadline_not_per_byte(served):
    """One byte every 0.2 s never trips a per-recv timeout of 1 s; the deadline covers the whole request."""
    _, _, port = served
    body = b'{"rater": "ann", "position": 0, "item": "x", "value": 3}' + b" " * 40
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(post_raw(b"", f"Content-Length: {len(body)}\r\n"))
        t0 = time.monotonic()

        def trickle() -> None:
            try:
                for b in body:
                    s.send(bytes([b]))
                    time.sleep(0.2)
            except OSError:
                pass  # the server hung up on us: expected

        th = threading.Thread(target=trickle, daemon=True)
        th.start()
        status, answer, _ = parse(read_all(s))
        took = time.monotonic() - t0
    assert status == 408 and took < TIMEOUT + 2  # trickling all 96 bytes would take ~19 s


BAD_RATERS = ["bob\n", "bob\r\n", " bob", "bob ", "bo b", "bob\t", "bob\x00", "bob\x1b[2J", "", "-bob", ".bob", "bøb",
              "b" * 65, "bob/..", "bob,eve"]


@pytest.mark.parametrize("rater", BAD_RATERS, ids=repr)
def test_rater_ids_are_strict_names_at_the_server(served, rater: str):
    study, url, port = served
    item = get_json(f"{url}/api/task?rater=bob&position=0")["item"]
    with pytest.raises(urllib.error.HTTPError) as e:
        post_json(url, {"rater": rater, "position": 0, "item": item, "value": 3})
    assert e.value.code == 400
    error = json.load(e.value)["error"]
    assert error.startswith("rater id ") and "\n" not in error
    with pytest.raises(urllib.error.HTTPError) as e:
        get_json(f"{url}/api/next?rater={urllib.parse.quote(rater)}")
    assert e.value.code == 400
    with pytest.raises(StudyError):
        check_rater(rater)
    assert raters_in(study) == {"bob"}


@pytest.mark.parametrize("rater", ["bob", "B0b", "7", "ann.lee", "ann_lee-2", "ann@lab", "a" * 64])
def test_good_rater_ids_pass_unchanged(rater: str):
    assert check_rater(rater) == rater


def test_aggregate_names_a_bad_rater_id_from_an_older_store(study: Path, tmp_path: Path):
    """An older server stored "bob\\n" beside "bob"; aggregate used to refuse with "answered item ... twice"."""
    from facebench.study.layout import read_key

    items = [i for i, k in read_key(study)[0].items() if k.kind == "rating"][:2]
    store = Store(study / "ratings.sqlite")
    for rater in ("bob", "bob\n"):
        for pos, item in enumerate(items):
            store.answer(rater, item, "rating", pos, 3, False)
    store.close()
    csv, n = export_csv(study, tmp_path / "ratings.csv")
    assert n == 4
    with pytest.raises(InvalidRatings) as e:
        read_ratings(csv)
    assert str(e.value).startswith(f"{csv.resolve()}: rater id 'bob\\n' (line 4, 2 rows) must be")
    run = subprocess.run([sys.executable, "-m", "facebench.study.cli", "aggregate", str(csv), "--study", str(study),
                          "--out", str(tmp_path / "report")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert str(csv) in run.stderr and "rater id 'bob\\n'" in run.stderr and "twice" not in run.stderr


def test_a_rater_is_served_while_20_hostile_clients_stall(study: Path):
    """Ten clients stalled mid-body and ten that sent garbage hold connections open; a rater rates promptly."""
    with serve(study, timeout=5.0) as (url, port):  # long enough that no hostile client is cut during the flow
        task = rate_among_hostile_clients(url, port)
    with sqlite3.connect(study / "ratings.sqlite") as db:
        assert db.execute("SELECT rater, item, value FROM responses").fetchall() == [("alice", task["item"], 4)]


def rate_among_hostile_clients(url: str, port: int) -> dict:
    hostile = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(20)]
    try:
        for i, s in enumerate(hostile):
            if i % 2:
                s.sendall(post_raw(b'{"rater": "mallory", "pos', "Content-Length: 3000\r\n"))
            else:
                s.sendall(post_raw(b"[" * 500, "Content-Length: abc\r\n") if i % 4 else b"GET /api/next?rater=x%0A HT")
        t0 = time.monotonic()
        info = get_json(f"{url}/api/study")
        nxt = get_json(f"{url}/api/next?rater=alice")
        task = get_json(f"{url}/api/task?rater=alice&position={nxt['next']}")
        with urllib.request.urlopen(f"{url}/{task['image']}", timeout=WAIT) as r:
            assert r.read(4) == b"\x89PNG"
        done = post_json(url, {"rater": "alice", "position": task["position"], "item": task["item"], "value": 4})
        took = time.monotonic() - t0
        assert took < 2.0, f"a normal rater took {took:.1f} s"
        assert done == {"next": 1, "answered": 1, "total": info["total"]}
        for s in hostile[1::2]:  # the stalled ones are still waiting: the rater was not served by their timeouts
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
    finally:
        for s in hostile:
            s.close()
    return task
