"""The host: its configuration, ``init`` (stores, manifest, public images) and ``process``.

``process`` claims PENDING requests one at a time (PENDING → RUNNING under the store lock),
re-validates the uploaded files with the same validator ``submit`` ran, applies dedupe and rate
limits, scores, writes the result, then marks the request FINISHED; any rejection marks it FAILED
with the validator's one-line message. A request is only ever changed through ``transition``,
and results are written whole before the request says FINISHED, so a crash or hostile file can
leave a request RUNNING (requeued after ``stale_after_s``) but never a half-written store.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from facebench.dataset import FacebenchDataset, load, validate
from facebench.errors import FacebenchError, InvalidConfig, require_exists
from facebench.files import atomic_write
from facebench.labels import LabelSet
from facebench.parsing import Parser
from leaderboard.checkpoint import check_checkpoint
from leaderboard.limits import Limits
from leaderboard.manifest import Manifest, build_manifest, labels_sha256, write_hidden_images
from leaderboard.predictions import PredictionsParser, load_predictions
from leaderboard.scoring import DigestingParser, MetricSettings, score
from leaderboard.store import Store, open_store, write_json
from leaderboard.submissions import (
    Request,
    Status,
    all_requests,
    check_admissible,
    fail_malformed,
    iso,
    now_utc,
    submit_message,
    transition,
)

log = logging.getLogger("facebench.leaderboard")
ParserFactory = Callable[[str], Parser]
HOST_FILE = "host.json"


class HiddenSplitMismatch(FacebenchError):
    """The host's hidden labels no longer match the sha256 it published."""


@dataclass
class HostConfig:
    """Where the host's pieces live (paths relative to the host folder are resolved against it)."""

    root: Path
    hidden: str
    split: str = "test"
    requests: str = "requests"
    results: str = "results"
    manifest: str = "manifest.json"
    settings: MetricSettings = field(default_factory=MetricSettings)
    stale_after_s: int = 6 * 3600

    def _path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else self.root / q

    def request_store(self, create: bool = False) -> Store:
        return open_store(self._path(self.requests) if "://" not in self.requests else self.requests, create)

    def result_store(self, create: bool = False) -> Store:
        return open_store(self._path(self.results) if "://" not in self.results else self.results, create)

    def load_manifest(self) -> Manifest:
        return Manifest.load(self._path(self.manifest))

    def hidden_dataset(self) -> FacebenchDataset:
        return load(self._path(self.hidden))

    def save(self) -> Path:
        data = {k: v for k, v in asdict(self).items() if k != "root"}
        return atomic_write(self.root / HOST_FILE, (json.dumps(data, indent=1) + "\n").encode())

    @classmethod
    def load(cls, root: str | Path) -> HostConfig:
        root = require_exists(root, "leaderboard host folder")
        path = root / HOST_FILE
        if not path.is_file():
            raise InvalidConfig(f"no {HOST_FILE}: not a leaderboard host folder", root,
                                hint="create one with `facebench leaderboard init`")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # unreadable, not UTF-8, not JSON, nested too deep
            raise InvalidConfig(f"{HOST_FILE} is not readable JSON", path,
                                hint="recreate it with `facebench leaderboard init`") from None
        return cls(root=root, **_checked_host(data, path))


def _checked_host(data: Any, path: Path) -> dict[str, Any]:
    """host.json's fields, each of the type ``HostConfig`` declares; anything else is one line naming the file."""
    types = {"hidden": str, "split": str, "requests": str, "results": str, "manifest": str, "settings": dict,
             "stale_after_s": int}
    if not isinstance(data, dict) or "hidden" not in data:
        raise InvalidConfig(f"{HOST_FILE} must be a JSON object with at least 'hidden'", path)
    unknown = sorted(set(data) - set(types))
    wrong = [k for k, t in types.items() if k in data and (not isinstance(data[k], t) or isinstance(data[k], bool))]
    if unknown or wrong:
        raise InvalidConfig(f"{HOST_FILE}: {'unknown' if unknown else 'mistyped'} field {(unknown or wrong)[0]!r}",
                            path)
    settings = data.get("settings", {})
    if set(settings) - {"n_boot", "seed"} or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                      for v in settings.values()):
        raise InvalidConfig(f"{HOST_FILE}: 'settings' must be {{n_boot, seed}}, whole numbers ≥ 0", path)
    return {**data, "settings": MetricSettings(**settings)}


def init_host(hidden: str | Path, host_dir: str | Path, public_dir: str | Path, split: str = "test",
              limits: Limits | None = None, public_dataset: str = "",
              settings: MetricSettings | None = None, requests: str = "requests",
              results: str = "results") -> tuple[HostConfig, Manifest]:
    """Create the host folder (config, stores) and the public folder (manifest, unlabelled images).

    A Hub request store also receives the manifest and the unlabelled images, in one commit."""
    hidden = Path(hidden).resolve()
    validate(hidden)
    ds = load(hidden)
    ds.metadata(split)  # the split exists: checked before anything is created
    host_dir, public_dir = Path(host_dir).resolve(), Path(public_dir).resolve()
    host_dir.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(ds, split, limits, public_dataset)
    manifest_path = manifest.save(public_dir / "manifest.json")
    write_hidden_images(ds, split, public_dir / "hidden-images.parquet")
    cfg = HostConfig(root=host_dir, hidden=str(hidden), split=split, manifest=str(manifest_path),
                     settings=settings or MetricSettings(), requests=requests, results=results)
    store = cfg.request_store(create=True)
    cfg.result_store(create=True)
    if str(requests).startswith("hf://"):
        from leaderboard.store import locked
        from leaderboard.submit import MANIFEST_KEY

        def publish() -> None:
            store.write(MANIFEST_KEY, manifest_path.read_bytes())
            store.write("hidden-images.parquet", (public_dir / "hidden-images.parquet").read_bytes())

        locked(store, publish, message="publish the manifest and the hidden images")
    cfg.save()
    return cfg, manifest


def _payload_file(store: Store, req: Request, name: str, tmp: Path) -> Path:
    """Copy one payload file (by a name *we* chose) out of the store into the host's temp folder."""
    key = f"payloads/{req.id}/{name}"
    if key not in req.payload or not store.exists(key):
        raise FacebenchError(f"request {req.id} has no payload {name}", hint="submit again with `facebench submit`")
    out = tmp / name
    out.write_bytes(store.read(key))
    return out


class IdentityMismatch(FacebenchError):
    """A request names a submitter other than the one the Hub recorded as the author of its commit."""


def check_identity(req: Request, store: Store) -> None:
    """On a Hub store, who submitted is who the Hub says committed ``submit <id>``, whatever the record claims."""
    author_of = getattr(store, "author_of", None)
    if author_of is None:
        return
    author = author_of(submit_message(req.id))
    if not req.identity or author is None or author.lower() != req.identity.strip().lower():
        raise IdentityMismatch(f"the request names {req.identity or 'nobody'!r}, but the Hub recorded "
                               f"{author or 'no'} commit 'submit {req.id}' by them",
                               hint="submit with `facebench submit` and your own token")


def declared_labels(req: Request, benchmark: LabelSet) -> LabelSet:
    """The order a request says its predictions are in; the record is untrusted, so every field is checked."""
    if not req.labels:
        return benchmark
    try:
        names = json.loads(req.labels)
    except ValueError:
        raise FacebenchError("request's declared labels are not JSON") from None
    if (not isinstance(names, list) or not 1 <= len(names) <= 255
            or not all(isinstance(n, str) and 0 < len(n) <= 64 for n in names)):
        raise FacebenchError("request's declared labels must be a list of 1–255 class names")
    return LabelSet(tuple(names), name="declared")


def _run(req: Request, cfg: HostConfig, manifest: Manifest, ds: FacebenchDataset, store: Store,
         others: list[Request], parser_factory: ParserFactory | None, architectures: Collection[str] | None
         ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="facebench-lb-") as t:
        tmp = Path(t)
        check_identity(req, store)
        check_admissible(req, others, manifest.limits)  # rate limit first: cheapest
        if req.kind == "predictions" and req.format in ("zip", "parquet"):
            preds = load_predictions(_payload_file(store, req, f"predictions.{req.format}", tmp), manifest)
            order = declared_labels(req, ds.labels)
            sha, parser, verified = preds.sha256, PredictionsParser(preds, order, req.name), False
        elif req.kind == "checkpoint":
            folder = tmp / "checkpoint"
            folder.mkdir()
            for name in ("model.safetensors", "config.json"):
                _payload_file(store, req, name, tmp).replace(folder / name)
            ck = check_checkpoint(folder, manifest.limits, architectures, manifest.labels)
            if parser_factory is None:
                raise FacebenchError("this host cannot run checkpoints (no parser factory configured)")
            sha, verified = ck.sha256, True
            parser = DigestingParser(parser_factory(str(folder)))
            if tuple(parser.labels.names) != tuple(ds.labels.names):
                raise FacebenchError("checkpoint's label set differs from the benchmark's 19 classes")
        else:
            raise FacebenchError(f"unknown submission kind/format {req.kind}/{req.format}")
        if sha != req.sha256:
            raise FacebenchError("uploaded files do not match the request's sha256 (modified after submit?)",
                                 hint="submit again with `facebench submit`")
        check_admissible(req, others, manifest.limits)
        scores = score(parser, ds, cfg.split, cfg.settings)
    pred_sha = parser.sha256 if isinstance(parser, DigestingParser) else sha
    return {
        "request_id": req.id, "name": req.name, "training_data": req.training_data, "kind": req.kind,
        "verified": verified, "submitted_at": req.submitted_at, "predictions_sha256": pred_sha,
        "submission_sha256": sha,
        "dataset": {"revision": manifest.dataset_revision, "split": cfg.split, "labels_sha256": manifest.labels_sha256,
                    "n_images": len(manifest.ids)},
        **scores,
    }


def check_hidden(cfg: HostConfig, manifest: Manifest) -> FacebenchDataset:
    """The hidden dataset, after checking it still matches the published labels sha256."""
    ds = cfg.hidden_dataset()
    got = labels_sha256(ds, cfg.split)
    if got != manifest.labels_sha256:
        raise HiddenSplitMismatch(f"hidden labels sha256 {got[:12]}… differ from the published "
                                  f"{manifest.labels_sha256[:12]}…", cfg.hidden,
                                  hint="restore the hidden split, or re-run `leaderboard init` and republish")
    return ds


def requeue_stale(store: Store, cfg: HostConfig, now: datetime) -> list[str]:
    """RUNNING requests whose host died long ago go back to PENDING."""
    moved = []
    for r in all_requests(store):
        if r.status == Status.RUNNING and r.started_at:
            if now - datetime.fromisoformat(r.started_at) > timedelta(seconds=cfg.stale_after_s):
                if transition(store, r.id, Status.RUNNING, Status.PENDING, started_at=""):
                    moved.append(r.id)
    return moved


def process(cfg: HostConfig, parser_factory: ParserFactory | None = None,
            architectures: Collection[str] | None = None, max_requests: int | None = None,
            clock: Callable[[], datetime] = now_utc) -> list[Request]:
    """Process pending requests, oldest first; returns them in their final state."""
    manifest = cfg.load_manifest()
    requests, results = cfg.request_store(), cfg.result_store()
    ds = check_hidden(cfg, manifest)
    fail_malformed(requests, clock())  # a bad record fails alone, with its reason
    requeue_stale(requests, cfg, clock())
    done: list[Request] = []
    for pending in [r for r in all_requests(requests) if r.status == Status.PENDING]:
        if max_requests is not None and len(done) >= max_requests:
            break
        req = transition(requests, pending.id, Status.PENDING, Status.RUNNING, started_at=iso(clock()))
        if req is None:
            continue  # another host worker took it
        try:
            others = all_requests(requests)
            result = _run(req, cfg, manifest, ds, requests, others, parser_factory, architectures)
            key = f"results/{req.id}.json"
            result["finished_at"] = iso(clock())
            write_json(results, key, result)
            final = transition(requests, req.id, Status.RUNNING, Status.FINISHED, finished_at=result["finished_at"],
                               result=key)
        except FacebenchError as e:
            final = transition(requests, req.id, Status.RUNNING, Status.FAILED, finished_at=iso(clock()),
                               error=str(e), error_kind=type(e).__name__)
        except Exception as e:  # a bug of ours, or input that slipped past validation: never crash the loop
            log.exception("request %s crashed the scorer", req.id)
            final = transition(requests, req.id, Status.RUNNING, Status.FAILED, finished_at=iso(clock()),
                               error=f"internal error while scoring ({type(e).__name__}); the maintainers have "
                                     "the details, please report the request id", error_kind="InternalError")
        if final is not None:
            done.append(final)
    return done
