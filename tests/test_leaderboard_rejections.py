"""Every way a submission is refused, each with a hostile file made here; nothing reaches the store."""

from __future__ import annotations

import hashlib
import json
import pickle
import stat
import struct
import zipfile
import zlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from test_leaderboard_support import make_host, noisy, truth, write_parquet, write_zip

from facebench.imageio import encode_png
from leaderboard.errors import (
    DuplicateSubmission,
    InvalidPredictions,
    InvalidSubmission,
    MissingIds,
    PickleRefused,
    RateLimited,
    UnsafeArchive,
)
from leaderboard.limits import Limits
from leaderboard.store import LocalStore
from leaderboard.submissions import now_utc
from leaderboard.submit import submit


@pytest.fixture(params=["local", "hub"])
def env(request, tmp_path, small_dataset, monkeypatch):
    """Every rejection is tried against a local folder and against a Hub repo on the loopback Hub server."""
    # the ratio floor is lowered so that bombs small enough for a 48×48 test split still trip the ratio check
    cfg, manifest = make_host(tmp_path, small_dataset, Limits(rate_limit=2, ratio_floor_bytes=1024), n_boot=0)
    if request.param == "local":
        yield tmp_path, small_dataset, manifest, cfg.request_store()
        return
    from hubserver import HubServer

    from leaderboard.hub_store import HubStore

    with HubServer(tokens={"hf_host_token"}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_TOKEN", "hf_host_token")
        import huggingface_hub.constants  # read at import: the loopback Hub speaks LFS, not Xet

        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        yield tmp_path, small_dataset, manifest, HubStore("hf://datasets/host/requests", create=True)


def _submit(env, path, contact="a@x.org", **kw):
    _, _, manifest, store = env
    return submit(path, manifest, store, "team", contact, "synthetic heads", **kw)


def _rejected(env, path, exc, match):
    """Submitting ``path`` raises ``exc`` mentioning ``match``, and the request store stays empty."""
    store: LocalStore = env[3]
    with pytest.raises(exc, match=match) as e:
        _submit(env, path)
    assert "\n" not in str(e.value)
    assert store.list() == []
    return e.value


def _good(env) -> dict[str, np.ndarray]:
    return truth(env[1])


def test_path_traversal_entry(env):
    tmp = env[0]
    masks = _good(env)
    first = next(iter(masks))
    for bad in (f"../{first}.png", f"/tmp/{first}.png", f"..\\{first}.png"):
        z = tmp / "trav.zip"
        with zipfile.ZipFile(z, "w") as zf:
            zf.writestr(zipfile.ZipInfo(bad), encode_png(masks[first]))
        _rejected(env, z, UnsafeArchive, "path traversal")
    assert not (tmp.parent / f"{first}.png").exists()


def test_symlink_entry(env):
    z = env[0] / "link.zip"
    masks = _good(env)
    with zipfile.ZipFile(z, "w") as zf:
        for i, m in list(masks.items())[1:]:
            zf.writestr(f"{i}.png", encode_png(m))
        info = zipfile.ZipInfo(f"{next(iter(masks))}.png")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    _rejected(env, z, UnsafeArchive, "symbolic link")


def test_folder_entries_refused(env):
    z = env[0] / "nested.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i, m in _good(env).items():
            zf.writestr(f"preds/{i}.png", encode_png(m))
    _rejected(env, z, UnsafeArchive, "at the archive root")


def test_zip_bomb_by_ratio_and_by_size(env):
    masks = _good(env)
    first = next(iter(masks))
    z = env[0] / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:  # 60 kB of zeros: under the size cap, ~600× ratio
        zf.writestr(f"{first}.png", b"\0" * 60_000)
    _rejected(env, z, UnsafeArchive, "zip bomb")
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:  # 64 MB declared: over the per-mask cap
        zf.writestr(f"{first}.png", b"\0" * (64 << 20))
    assert z.stat().st_size < 200_000
    _rejected(env, z, UnsafeArchive, "over the")


def test_too_many_entries(env):
    extra = {f"zz{k}.png": b"x" for k in range(3)}
    z = write_zip(_good(env), env[0] / "many.zip", extra)
    _rejected(env, z, UnsafeArchive, "entries, at most 24")


def test_unknown_and_missing_ids(env):
    masks = _good(env)
    drop = dict(list(masks.items())[3:])
    _rejected(env, write_zip(drop, env[0] / "missing.zip"), MissingIds, "3 of 24 hidden ids have no mask")
    first = next(iter(masks))
    swapped = {("nope" if i == first else i): m for i, m in masks.items()}
    _rejected(env, write_zip(swapped, env[0] / "unknown.zip"), InvalidSubmission, "not in the hidden split")
    _rejected(env, write_parquet(drop, env[0] / "missing.parquet"), MissingIds, "have no mask")


def _png_with_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` (a decompression bomb if ever decoded)."""
    data = bytearray(encode_png(np.zeros((1, 1), np.uint8)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_oversize_and_wrong_size_masks(env):
    masks = _good(env)
    first = next(iter(masks))
    z = write_zip({i: m for i, m in masks.items() if i != first}, env[0] / "huge.zip",
                  {f"{first}.png": _png_with_size(100_000, 100_000)})
    _rejected(env, z, InvalidPredictions, "mask is 100000×100000, the hidden image is 48×48")
    masks[first] = np.zeros((40, 48), np.uint8)
    _rejected(env, write_zip(masks, env[0] / "wrong.zip"), InvalidPredictions, "mask is 48×40")
    masks[first] = np.zeros((48, 48, 3), np.uint8)
    _rejected(env, write_zip(masks, env[0] / "rgb.zip"), InvalidPredictions, "single-channel 8-bit")
    masks[first] = np.zeros((4000, 4000), np.uint8)  # real pixels, same verdict
    _rejected(env, write_parquet(masks, env[0] / "big.parquet"), InvalidPredictions, "4000×4000")


def test_illegal_values(env):
    masks = _good(env)
    first = next(iter(masks))
    masks[first] = masks[first].copy()
    masks[first][0, :2] = (19, 255)
    _rejected(env, write_zip(masks, env[0] / "ids.zip"), InvalidPredictions, r"illegal class ids \[19, 255\]")


def test_not_a_png_and_corrupt_files(env):
    masks = _good(env)
    first = next(iter(masks))
    z = write_zip({i: m for i, m in masks.items() if i != first}, env[0] / "jpg.zip", {f"{first}.png": b"\xff\xd8"})
    _rejected(env, z, InvalidPredictions, "not a PNG")
    junk = env[0] / "junk.zip"
    junk.write_bytes(b"this is not a zip")
    _rejected(env, junk, InvalidSubmission, "not a readable zip")
    junk = env[0] / "junk.parquet"
    junk.write_bytes(b"PAR1garbagePAR1")
    _rejected(env, junk, InvalidSubmission, "not a readable parquet")
    txt = env[0] / "preds.txt"
    txt.write_text("hello")
    _rejected(env, txt, InvalidSubmission, "unknown predictions format")


class _Evil:
    """Unpickling this would create a file: proof that nothing is unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickles_refused_unopened(env):
    tmp = env[0]
    marker = tmp / "pwned"
    blob = pickle.dumps(_Evil(marker), protocol=4)
    (tmp / "preds.pkl").write_bytes(blob)
    _rejected(env, tmp / "preds.pkl", PickleRefused, "never opened")
    (tmp / "preds.zip").write_bytes(blob)  # a pickle wearing a zip's name
    _rejected(env, tmp / "preds.zip", PickleRefused, "pickle")
    masks = _good(env)
    first = next(iter(masks))
    z = write_zip({i: m for i, m in masks.items() if i != first}, tmp / "inner.zip", {f"{first}.png": blob})
    _rejected(env, z, PickleRefused, "pickle")
    z = write_zip(masks, tmp / "inner2.zip", {"weights.pkl": blob})
    _rejected(env, z, UnsafeArchive, "entries")  # one too many; with slack it would be refused as a pickle
    ck = tmp / "ckpt"
    ck.mkdir()
    (ck / "model.pt").write_bytes(blob)
    (ck / "config.json").write_text('{"architecture": "bisenet"}')
    _rejected(env, ck, PickleRefused, "model.pt: is a pickle")
    assert not marker.exists()


def test_checkpoint_structure_checks(env):
    tmp = env[0]
    ck = tmp / "ck"
    ck.mkdir()
    header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
    weights = struct.pack("<Q", len(header)) + header + b"\0" * 8
    (ck / "model.safetensors").write_bytes(weights)
    labels = {"names": env[2].labels}

    def config(arch="bisenet", sha="0", size=64, names=labels):
        (ck / "config.json").write_text(json.dumps({"architecture": arch, "input_size": size, "labels": names,
                                                    "weights": {"sha256": sha}}))

    config()
    _rejected(env, ck, InvalidSubmission, "does not match the weights")
    sha = hashlib.sha256(weights).hexdigest()
    config("gpt", sha)
    with pytest.raises(InvalidSubmission, match="'gpt' is not registered"):
        _submit(env, ck, architectures=["bisenet", "unet"])
    config(sha=sha, size=100_000)
    _rejected(env, ck, InvalidSubmission, "input_size must be an integer in 16..1024")
    config(sha=sha, names={"names": ["background", "face"]})
    _rejected(env, ck, InvalidSubmission, "labels.names differ")
    bad = struct.pack("<Q", len(header)) + header + b"\0" * 4  # offsets run past the end
    (ck / "model.safetensors").write_bytes(bad)
    config(sha=hashlib.sha256(bad).hexdigest())
    _rejected(env, ck, InvalidSubmission, "inconsistent")


def test_parquet_schema_and_bomb(env):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = env[0]
    ids = list(_good(env))
    pq.write_table(pa.table({"name": ids, "png": [b"x"] * len(ids)}), tmp / "cols.parquet")
    _rejected(env, tmp / "cols.parquet", InvalidSubmission, "needs columns 'id' and 'mask'")
    pq.write_table(pa.table({"id": ids, "mask": [b"\0" * 60_000] * len(ids)}), tmp / "bomb.parquet",
                   compression="zstd")
    _rejected(env, tmp / "bomb.parquet", UnsafeArchive, "decompression bomb")
    pq.write_table(pa.table({"id": ids + ids[:1], "mask": [b"x"] * (len(ids) + 1)}), tmp / "rows.parquet")
    _rejected(env, tmp / "rows.parquet", UnsafeArchive, "rows, at most 24")


def test_metadata_checked(env):
    z = write_zip(_good(env), env[0] / "ok.zip")
    _, _, manifest, store = env
    with pytest.raises(InvalidSubmission, match="--name must be at most"):
        submit(z, manifest, store, "x" * 81, "a@x.org", "data")
    with pytest.raises(InvalidSubmission, match="--training-data is required"):
        submit(z, manifest, store, "team", "a@x.org", "  ")
    with pytest.raises(InvalidSubmission, match="printable"):
        submit(z, manifest, store, "team\nforged row", "a@x.org", "data")
    assert store.list() == []


def test_duplicate_submission_by_content(env):
    tmp, hidden, _, store = env
    masks = noisy(hidden, seed=1)
    first = _submit(env, write_zip(masks, tmp / "a.zip"))
    with pytest.raises(DuplicateSubmission, match=f"already submitted as request {first.id}"):
        _submit(env, write_parquet(masks, tmp / "a.parquet"), contact="other@x.org")  # same masks, other format
    assert len(store.list("requests")) == 1


def test_rate_limit_per_submitter(env):
    tmp, hidden, manifest, store = env
    if not isinstance(store, LocalStore):
        pytest.skip("on the Hub the limit keys on the token's identity: tests/test_leaderboard_hub.py")
    t0 = now_utc()
    for k in range(2):
        _submit(env, write_zip(noisy(hidden, seed=10 + k), tmp / f"r{k}.zip"), contact="A@x.org", at=t0)
    late = write_zip(noisy(hidden, seed=12), tmp / "r2.zip")
    with pytest.raises(RateLimited, match="already has 2 submissions in the last 24 h"):
        _submit(env, late, contact=" a@X.org ", at=t0 + timedelta(hours=1))
    _submit(env, write_zip(noisy(hidden, seed=13), tmp / "b.zip"), contact="b@x.org", at=t0)  # others unaffected
    _submit(env, late, contact="a@x.org", at=t0 + timedelta(hours=25))  # the window has passed
    assert len(store.list("requests")) == 4


def test_prediction_folders_are_checked_like_archives(env):
    tmp, hidden, _, store = env
    masks = _good(env)
    folder = tmp / "preds"
    folder.mkdir()
    for i, m in masks.items():
        (folder / f"{i}.png").write_bytes(encode_png(m))
    first = next(iter(masks))
    (folder / f"{first}.png").unlink()
    (folder / f"{first}.png").symlink_to("/etc/hostname")
    _rejected(env, folder, UnsafeArchive, "symbolic link")
    (folder / f"{first}.png").unlink()
    (folder / "x.pkl").write_bytes(pickle.dumps(1, protocol=4))
    _rejected(env, folder, PickleRefused, "x.pkl: is a pickle")
    (folder / "x.pkl").unlink()
    _rejected(env, folder, MissingIds, "1 of 24")
    (folder / f"{first}.png").write_bytes(encode_png(masks[first]))
    req = _submit(env, folder)  # the folder `facebench evaluate` reads is accepted, packed as a zip
    assert req.format == "zip" and store.list(f"payloads/{req.id}") == [f"payloads/{req.id}/predictions.zip"]
    with pytest.raises(DuplicateSubmission):
        _submit(env, write_zip(masks, tmp / "same.zip"), contact="b@x.org")


def _manifest(n: int, size: int):
    from leaderboard.manifest import Manifest

    ids = [f"i{k:04d}" for k in range(n)]
    return Manifest(split="test", ids=ids, sizes={i: (size, size) for i in ids}, labels=[str(k) for k in range(19)],
                    labels_sha256="-", dataset_revision="-")


def test_identical_tiny_masks_in_parquet_are_not_a_bomb(tmp_path):
    """Regression: zstd squeezes identical PNG rows, so a bare ratio check would flag an all-background answer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leaderboard.predictions import load_predictions

    manifest = _manifest(3000, 8)
    png = encode_png(np.zeros((8, 8), np.uint8))
    path = tmp_path / "bg.parquet"
    pq.write_table(pa.table({"id": manifest.ids, "mask": [png] * 3000}), path, use_dictionary=False,
                   compression="zstd")
    meta = pq.ParquetFile(path).metadata
    declared = sum(meta.row_group(g).column(1).total_uncompressed_size for g in range(meta.num_row_groups))
    assert declared / path.stat().st_size > Limits().max_total_ratio  # would trip a bare ratio check
    assert len(load_predictions(path, manifest).masks) == 3000


def test_parquet_dictionary_bomb_is_stopped_row_by_row(tmp_path):
    """One 1.5 MB dictionary value referenced by every row: declared small, decoded 24× larger."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leaderboard.predictions import load_predictions

    manifest = _manifest(24, 48)
    path = tmp_path / "dict.parquet"
    pq.write_table(pa.table({"id": manifest.ids, "mask": [b"\0" * 1_500_000] * 24}), path, use_dictionary=True)
    with pytest.raises(InvalidPredictions, match="id=i0000: mask is 1500000 bytes, over the limit"):
        load_predictions(path, manifest)
