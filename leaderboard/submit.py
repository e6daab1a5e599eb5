"""``facebench submit``: validate locally with the host's own validator, then upload a request.

Validation here is a courtesy (fast feedback); the host runs the same functions again and trusts
nothing it is sent.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from facebench.labels import LabelSet
from leaderboard.checkpoint import check_checkpoint
from leaderboard.errors import InvalidSubmission
from leaderboard.manifest import Manifest
from leaderboard.predictions import FORMATS, load_predictions, pack_folder, refuse_pickles
from leaderboard.store import Store
from leaderboard.submissions import Request, check_metadata, enqueue, iso, make_id, now_utc


def classify(path: Path) -> str:
    """'checkpoint', 'folder' (of {id}.png) or 'predictions' (a file), from the path's shape."""
    if path.suffix in (".safetensors", ".json"):
        return "checkpoint"
    if path.is_dir():
        marks = ("model.safetensors", "config.json")
        if any((path / m).exists() for m in marks) or any(path.glob("*.safetensors")):
            return "checkpoint"
        return "folder"
    return "predictions"


def build_request(path: str | Path, manifest: Manifest, name: str, contact: str, training_data: str,
                  architectures: Collection[str] | None = None, at: datetime | None = None,
                  labels: LabelSet | None = None) -> tuple[Request, dict[str, bytes]]:
    """Validate a submission and return its request record and payload files (nothing uploaded yet).

    ``labels`` declares the order predictions are written in; the host maps it onto the benchmark's by name.
    """
    path = Path(path)
    if labels is not None and classify(path) == "checkpoint":
        raise InvalidSubmission("--labels declares the order of predictions; a checkpoint declares its own", path)
    check_metadata(name, contact, training_data)
    if path.is_file():
        refuse_pickles(path)
    at = at or now_utc()
    if classify(path) == "checkpoint":
        ck = check_checkpoint(path, manifest.limits, architectures, manifest.labels)
        payload = {"model.safetensors": ck.weights, "config.json": ck.config}
        kind, fmt, sha = "checkpoint", "safetensors", ck.sha256
    elif classify(path) == "folder":
        data = pack_folder(path, manifest)
        with tempfile.TemporaryDirectory(prefix="facebench-submit-") as tmp:
            packed = Path(tmp) / "predictions.zip"
            packed.write_bytes(data)
            preds = load_predictions(packed, manifest)
        payload = {"predictions.zip": data}
        kind, fmt, sha = "predictions", "zip", preds.sha256
    else:
        preds = load_predictions(path, manifest)
        suffix = path.suffix.lower()
        assert suffix in FORMATS
        payload = {f"predictions{suffix}": path.read_bytes()}
        kind, fmt, sha = "predictions", preds.format, preds.sha256
    req = Request(id=make_id(sha, at), name=name.strip(), contact=contact.strip(),
                  training_data=training_data.strip(), kind=kind, format=fmt, sha256=sha, submitted_at=iso(at),
                  labels=json.dumps(list(labels.names)) if labels is not None else "")
    return req, payload


def submit(path: str | Path, manifest: Manifest, requests: Store, name: str, contact: str, training_data: str,
           architectures: Collection[str] | None = None, at: datetime | None = None,
           labels: LabelSet | None = None) -> Request:
    """Validate, then enqueue as PENDING (dedupe and rate limit are checked under the store lock)."""
    req, payload = build_request(path, manifest, name, contact, training_data, architectures, at, labels)
    identity = getattr(requests, "identity", None)
    if identity is not None:  # a Hub store: the token's identity, which the host checks against the commit author
        req.identity = identity()
    return enqueue(requests, req, payload, manifest.limits)


MANIFEST_KEY = "manifest.json"


def manifest_from(requests: Store) -> Manifest:
    """The manifest ``leaderboard init`` published beside the requests, so a submitter needs only the repo id."""
    import json

    from facebench.errors import InvalidConfig

    if not requests.exists(MANIFEST_KEY):
        raise InvalidConfig("the request store holds no manifest.json", requests.location,
                            hint="pass --manifest, or ask the host to publish it with `leaderboard init --requests`")
    try:
        return Manifest.from_json(json.loads(requests.read(MANIFEST_KEY)))
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidConfig(f"malformed leaderboard manifest ({e})", requests.location) from None
