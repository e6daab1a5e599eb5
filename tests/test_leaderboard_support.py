"""Helpers shared by the leaderboard tests: a host on a small hidden split, and prediction files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facebench.dataset import load
from facebench.imageio import encode_png, write_png
from leaderboard.host import HostConfig, init_host
from leaderboard.limits import Limits
from leaderboard.manifest import Manifest
from leaderboard.scoring import MetricSettings


def make_host(root: Path, hidden: Path, limits: Limits | None = None, n_boot: int = 1000
              ) -> tuple[HostConfig, Manifest]:
    return init_host(hidden, root / "host", root / "public", "test", limits or Limits(),
                     public_dataset="(tests)", settings=MetricSettings(n_boot=n_boot, seed=0))


def truth(hidden: Path) -> dict[str, np.ndarray]:
    return {s.id: s.mask for s in load(hidden).iter_samples("test", columns=("mask",))}


def noisy(hidden: Path, seed: int, frac: float = 0.2) -> dict[str, np.ndarray]:
    """Truth with a seeded fraction of pixels set to random classes: an imperfect parser."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, m in truth(hidden).items():
        m = m.copy()
        hit = rng.random(m.shape) < frac
        m[hit] = rng.integers(0, 19, int(hit.sum()))
        out[i] = m
    return out


def write_zip(masks: dict[str, np.ndarray], path: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, m in masks.items():
            zf.writestr(f"{i}.png", encode_png(m))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def write_parquet(masks: dict[str, np.ndarray], path: Path) -> Path:
    rows = [{"id": i, "mask": {"bytes": encode_png(m), "path": None}} for i, m in masks.items()]
    schema = pa.schema([("id", pa.string()), ("mask", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def write_folder(masks: dict[str, np.ndarray], folder: Path) -> Path:
    for i, m in masks.items():
        write_png(folder / f"{i}.png", m)
    return folder


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, v in entries.items():
            zf.writestr(k, v)
    return buf.getvalue()


def upload_raw(store, req, payload: dict[str, bytes]) -> None:
    """Write a request straight into the store, skipping submit's checks: what a hostile client can do."""
    from leaderboard.store import write_json
    from leaderboard.submissions import request_key

    req.payload = []
    for name, data in payload.items():
        store.write(f"payloads/{req.id}/{name}", data)
        req.payload.append(f"payloads/{req.id}/{name}")
    write_json(store, request_key(req.id), req.to_json())
