"""Requests in the request store: the record, its status transitions, dedupe and rate limits.

Layout in the store: ``requests/{id}.json`` (the record) and ``payloads/{id}/...`` (the files).
Every read-modify-write happens under ``store.lock()``; payload files are written before the
record, so a PENDING request always has its files. Status moves PENDING → RUNNING →
FINISHED | FAILED, and only through ``transition``, which refuses any other move.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from leaderboard.errors import DuplicateSubmission, InvalidSubmission, RateLimited, StoreError
from leaderboard.limits import Limits
from leaderboard.store import Store, locked, read_json, write_json


class Status(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"


ALLOWED = {Status.PENDING: {Status.RUNNING, Status.FAILED}, Status.RUNNING: {Status.FINISHED, Status.FAILED,
                                                                             Status.PENDING}}
# rejections that do not use up a submission (a forged record must not eat its victim's slots)
NOT_COUNTED = ("RateLimited", "DuplicateSubmission", "IdentityMismatch", "MalformedRecord")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,79}")  # a safe file name; submit makes {time}-{sha256[:12]}
SHA256 = re.compile(r"[0-9a-f]{64}")
KINDS = {"predictions": ("zip", "parquet"), "checkpoint": ("safetensors",)}
FIELD_LIMITS = {"name": 80, "contact": 120, "training_data": 500}


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass
class Request:
    """One submission as the host tracks it. ``kind``: 'predictions' (a) or 'checkpoint' (b)."""

    id: str
    name: str
    contact: str
    training_data: str
    kind: str
    format: str
    sha256: str
    submitted_at: str
    payload: list[str] = field(default_factory=list)
    status: Status = Status.PENDING
    error: str = ""
    error_kind: str = ""
    started_at: str = ""
    finished_at: str = ""
    result: str = ""
    labels: str = ""  # the predictions' declared label order: a JSON list of class names ("" = the benchmark's)
    identity: str = ""  # the Hub's name for the submitter's token (a Hub store checks it against the commit author)

    @property
    def submitter(self) -> str:
        """Whom rate limits count: the Hub identity where there is one, else the contact."""
        return (self.identity or self.contact).strip().lower()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}

    @classmethod
    def from_json(cls, data: Any) -> Request:
        """Parse and check every field: a record is written where submitters can write, so it is untrusted."""
        if not isinstance(data, dict):
            raise StoreError("request record is not a JSON object")
        known = set(cls.__dataclass_fields__)
        try:
            req = cls(**{k: v for k, v in data.items() if k in known})
            req.status = Status(req.status)
            texts = [getattr(req, k) for k in known if k not in ("payload", "status")]
            if not all(isinstance(v, str) for v in texts) or not isinstance(req.payload, list) \
                    or not all(isinstance(p, str) for p in req.payload):
                raise TypeError("fields must be strings")
            req.check()
        except (TypeError, ValueError) as e:
            raise StoreError(f"malformed request record ({e})") from None
        return req

    def check(self) -> None:
        """ValueError naming the first field that is not what the host itself would have written."""
        if not ID.fullmatch(self.id):
            raise ValueError("id")
        if self.kind not in KINDS or self.format not in KINDS[self.kind]:
            raise ValueError("kind/format")
        if not SHA256.fullmatch(self.sha256):
            raise ValueError("sha256")
        for key in ("submitted_at", "started_at", "finished_at"):
            value = getattr(self, key)
            if value or key == "submitted_at":
                try:
                    t = datetime.fromisoformat(value)
                except ValueError:
                    raise ValueError(f"{key} is not an ISO time") from None
                if t.tzinfo is None:
                    raise ValueError(f"{key} needs a time zone")
        if self.status == Status.RUNNING and not self.started_at:
            raise ValueError("RUNNING without started_at")
        if len(self.identity) > 96 or _CONTROL.search(self.identity):
            raise ValueError("identity")
        if any(len(getattr(self, k)) > n for k, n in FIELD_LIMITS.items()):
            raise ValueError("a text field is too long")


def check_metadata(name: str, contact: str, training_data: str) -> None:
    """Short, printable, non-empty fields: they end up on a public page."""
    for key, value in (("name", name), ("contact", contact), ("training_data", training_data)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidSubmission(f"--{key.replace('_', '-')} is required")
        if len(value) > FIELD_LIMITS[key] or _CONTROL.search(value):
            raise InvalidSubmission(f"--{key.replace('_', '-')} must be at most {FIELD_LIMITS[key]} printable "
                                    "characters")


def request_key(request_id: str) -> str:
    return f"requests/{request_id}.json"


def make_id(sha256: str, at: datetime) -> str:
    """Sortable by time and unique per content: no randomness needed."""
    return f"{at.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-{sha256[:12]}"


def all_requests(store: Store) -> list[Request]:
    """Every readable request, oldest first.

    Unreadable records, and records whose ``id`` is not their file name (one record must not be able
    to act on another), are skipped, never rewritten here (``fail_malformed`` does that, on the host).
    """
    return sorted((r for r in _scan(store) if isinstance(r, Request)), key=lambda r: (r.submitted_at, r.id))


def _scan(store: Store) -> list[Request | tuple[str, str]]:
    """Each record under requests/: a Request, or (id, why it cannot be read) for a record under a valid id."""
    out: list[Request | tuple[str, str]] = []
    for key in store.list("requests"):
        if not key.endswith(".json"):
            continue
        rid = key.removeprefix("requests/").removesuffix(".json")
        try:
            req = Request.from_json(read_json(store, key))
        except StoreError as e:
            if ID.fullmatch(rid):
                out.append((rid, e.args[0] if e.args else str(e)))
            continue
        if key == request_key(req.id):
            out.append(req)
        elif ID.fullmatch(rid):
            out.append((rid, "the record's id is not its file name"))
    return out


def fail_malformed(store: Store, at: datetime) -> list[str]:
    """Mark every unreadable record FAILED with its reason (a record the host can read), so one bad record
    stops only itself and its submitter sees why. Returns their ids."""
    failed = []
    for item in _scan(store):
        if isinstance(item, Request):
            continue
        rid, why = item

        def mark(rid: str = rid, why: str = why) -> bool:
            key = request_key(rid)
            try:
                Request.from_json(read_json(store, key))
                return False  # fixed or replaced meanwhile
            except StoreError:
                pass
            rec = Request(id=rid, name="(unreadable record)", contact="", training_data="", kind="predictions",
                          format="zip", sha256="0" * 64, submitted_at=iso(at), status=Status.FAILED, error=why,
                          error_kind="MalformedRecord", finished_at=iso(at))
            write_json(store, key, rec.to_json())
            return True

        if locked(store, mark, message=f"{rid}: FAILED (malformed record)"):
            failed.append(rid)
    return failed


def get(store: Store, request_id: str) -> Request:
    key = request_key(request_id)
    if not store.exists(key):
        raise StoreError(f"no request {request_id!r}", store.location)
    return Request.from_json(read_json(store, key))


def duplicate_of(req: Request, others: list[Request]) -> Request | None:
    """An earlier live (not failed) request with the same content sha256."""
    for o in others:
        if o.id != req.id and o.sha256 == req.sha256 and o.status != Status.FAILED:
            if (o.submitted_at, o.id) < (req.submitted_at, req.id):
                return o
    return None


def used_slots(req: Request, others: list[Request], limits: Limits) -> list[Request]:
    """The submitter's earlier requests inside the rate window that count against the limit."""
    t = datetime.fromisoformat(req.submitted_at)
    start = t - timedelta(seconds=limits.rate_window_s)

    def counts(o: Request) -> bool:
        earlier = (o.submitted_at, o.id) < (req.submitted_at, req.id)
        in_window = start < datetime.fromisoformat(o.submitted_at) <= t
        refused_free = o.status == Status.FAILED and o.error_kind in NOT_COUNTED
        return o.submitter == req.submitter and earlier and in_window and not refused_free

    return [o for o in others if o.id != req.id and counts(o)]


def check_admissible(req: Request, others: list[Request], limits: Limits) -> None:
    """Raise DuplicateSubmission or RateLimited; the same rule at submit time and on the host."""
    dup = duplicate_of(req, others)
    if dup is not None:
        raise DuplicateSubmission(f"the same predictions (sha256 {req.sha256[:12]}…) were already submitted as "
                                  f"request {dup.id} ({dup.status})", hint="change your predictions to resubmit")
    used = used_slots(req, others, limits)
    if len(used) >= limits.rate_limit:
        oldest = min(datetime.fromisoformat(o.submitted_at) for o in used)
        nxt = oldest + timedelta(seconds=limits.rate_window_s)
        raise RateLimited(f"{req.submitter} already has {len(used)} submissions in the last "
                          f"{limits.rate_window_s / 3600:g} h (limit {limits.rate_limit})",
                          hint=f"try again after {iso(nxt)}")


def enqueue(store: Store, req: Request, payload: dict[str, bytes], limits: Limits) -> Request:
    """Admit a request atomically: dedupe and rate-limit under the lock, then write files, then the record."""
    def admit() -> Request:
        if store.exists(request_key(req.id)):
            raise DuplicateSubmission(f"request {req.id} already exists")
        check_admissible(req, all_requests(store), limits)
        req.payload = []
        for name, data in payload.items():
            key = f"payloads/{req.id}/{name}"
            store.write(key, data)
            req.payload.append(key)
        req.status = Status.PENDING
        write_json(store, request_key(req.id), req.to_json())
        return req

    return locked(store, admit, message=submit_message(req.id))  # payload and record: one commit on the Hub


def transition(store: Store, request_id: str, frm: Status, to: Status, **fields: Any) -> Request | None:
    """Move a request from ``frm`` to ``to`` under the lock; None if it is no longer in ``frm``."""
    if to not in ALLOWED.get(frm, set()):
        raise ValueError(f"illegal transition {frm} -> {to}")
    def move() -> Request | None:
        req = get(store, request_id)
        if req.status != frm:
            return None
        req.status = to
        for k, v in fields.items():
            setattr(req, k, v)
        write_json(store, request_key(req.id), req.to_json())
        return req

    return locked(store, move, message=f"{request_id}: {frm} -> {to}")


def submit_message(request_id: str) -> str:
    """The commit title of a submission: on the Hub its author is the identity rate limits key on."""
    return f"submit {request_id}"


def dumps(req: Request) -> str:
    return json.dumps(req.to_json(), indent=1)
