"""A corpus of broken inputs, made by code (no binary blobs), for every command that reads user data.

Why a corpus: facebench promises that bad input gets exactly one line on stderr naming the file (or the
option) at fault, exit code 2, no traceback, and nothing half-written. A promise made command by command
breaks where nobody looked, so the damages are listed once here and run against every command that reads
the damaged thing (``tests/test_broken_inputs.py``).

``Good`` builds the undamaged inputs once (a three-split dataset, predictions, the shipped checkpoint, a
nerfstudio capture, a LaPa-layout folder, a study, a ratings CSV and a leaderboard host). A ``Case`` is one
(command, damage) pair: its ``make`` copies what it needs into the case's own folder, damages it, and returns
the ``Call`` to run and what its error line must name. The test then checks the case folder is unchanged.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facebench.imageio import encode_png, write_png

SHIPPED = Path(__file__).resolve().parents[1] / "baselines" / "weights" / "bisenet-frontal"
SIZE = 32  # image side of the good dataset: small enough that a whole corpus run stays in seconds


# --------------------------------------------------------------------------------------------------------------
# Bytes: damaged files of each format


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first ``keep`` of ``data``: what an interrupted copy or download leaves."""
    return data[: max(1, int(len(data) * keep))]


def garbage(n: int = 64, seed: int = 0) -> bytes:
    """Random bytes that are no known format."""
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_declaring(width: int, height: int, colour_type: int = 0) -> bytes:
    """A PNG whose header declares ``width``×``height`` but whose data is one tiny compressed row: a
    decompression bomb by declaration, a few dozen bytes on disk."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(b"\0" * 16)) + png_chunk(b"IEND", b"")


def png_bad_crc(data: bytes) -> bytes:
    """A PNG with one flipped byte inside its pixel data (its CRC no longer matches)."""
    i = data.index(b"IDAT") + 6
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


def jpeg_of(array: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG")
    return buf.getvalue()


def png16_of(array: np.ndarray) -> bytes:
    """A 16-bit greyscale PNG (a label map saved with the wrong depth)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def mask_png(value: int = 1, shape: tuple[int, int] = (SIZE, SIZE)) -> bytes:
    return encode_png(np.full(shape, value, np.uint8))


def rgb_png(shape: tuple[int, int] = (SIZE, SIZE)) -> bytes:
    return encode_png(np.zeros((*shape, 3), np.uint8))


# --------------------------------------------------------------------------------------------------------------
# The good inputs


def _samples(n: int, seed: int, prefix: str):
    from facebench.dataset import Sample

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mask = rng.integers(0, 19, (SIZE, SIZE), dtype=np.uint8)
        image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        yaw = float([0, 40, -75, 150][i % 4])
        out.append(Sample(id=f"{prefix}{i:02d}", image=image, mask=mask, subject=f"s{i % 2}", yaw=yaw, pitch=0.0,
                          label_source="refined", provenance={"seed": seed}))
    return out


@dataclass
class Good:
    """The undamaged inputs, built once; cases copy what they damage."""

    root: Path
    dataset: Path = field(init=False)
    preds: Path = field(init=False)
    photos: Path = field(init=False)
    capture: Path = field(init=False)
    lapa: Path = field(init=False)
    study: Path = field(init=False)
    ratings: Path = field(init=False)
    host: Path = field(init=False)
    manifest: Path = field(init=False)
    checkpoint: Path = SHIPPED

    def __post_init__(self) -> None:
        from facebench.card import DatasetInfo
        from facebench.dataset import build_dataset, load

        r = self.root
        self.dataset = build_dataset({"train": _samples(8, 1, "tr"), "validation": _samples(4, 2, "va"),
                                      "test": _samples(8, 3, "te")}, r / "dataset",
                                     info=DatasetInfo(license="cc0-1.0"))
        self.preds = r / "preds"
        for s in load(self.dataset).iter_samples("test", columns=("mask",)):
            write_png(self.preds / f"{s.id}.png", s.mask)
        self.photos = r / "photos"
        for i in range(2):
            write_png(self.photos / f"p{i}.png", np.full((SIZE, SIZE, 3), 60 * i, np.uint8))
        self.capture = _capture(r / "capture")
        self.lapa = r / "lapa"
        from facebench.importers.fixtures import write_lapa

        write_lapa(self.lapa, size=48, per_split=1)
        self.study, self.ratings = _study(r, self.dataset, self.preds)
        self.host, self.manifest = _host(r, self.dataset)

    def copy_dataset(self, dst: Path) -> Path:
        return copy(self.dataset, dst)


def _capture(folder: Path) -> Path:
    """A three-view nerfstudio capture at 32² rendered from a synthetic head."""
    from facebench.pose import Pose
    from generators.heads import sample_head, write_capture

    write_capture(sample_head(3), folder, [Pose(-40, 0), Pose(0, 10), Pose(40, 0)], size=SIZE, subject="subj")
    return folder


def _study(root: Path, dataset: Path, preds: Path) -> tuple[Path, Path]:
    from facebench.study.items import build_study

    study = root / "study"
    build_study({"A": preds, "B": preds}, dataset, study, 4, 0, split="test", mode="rating", n_checks=2)
    ratings = root / "ratings.csv"
    rows = ["rater,kind,sample,model,rating"]
    for r, rater in enumerate(("r1", "r2", "r3")):
        for k, img in enumerate(("te00", "te01", "te02")):
            for m, model in enumerate(("A", "B")):
                rows.append(f"{rater},rating,{img},{model},{(k + m + r) % 5 + 1}")
    ratings.write_text("\n".join(rows) + "\n")
    return study, ratings


def _host(root: Path, dataset: Path) -> tuple[Path, Path]:
    from leaderboard.host import init_host
    from leaderboard.scoring import MetricSettings

    cfg, _ = init_host(dataset, root / "host", root / "public", "test", public_dataset="(tests)",
                       settings=MetricSettings(n_boot=0, seed=0))
    return cfg.root, root / "public" / "manifest.json"


# --------------------------------------------------------------------------------------------------------------
# Damaging copies


def copy(src: Path, dst: Path) -> Path:
    """A writable copy of a good input (file or folder)."""
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return dst


def first_shard(ds: Path, split: str = "test") -> Path:
    return sorted((ds / "data").glob(f"{split}-*.parquet"))[0]


def edit_row(ds: Path, split: str = "test", **changes: Any) -> Path:
    """Rewrite row 0 of the split's first shard with ``changes`` (raw column values); returns that shard."""
    shard = first_shard(ds, split)
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[0].update(changes)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    return shard


def retype_column(ds: Path, column: str, values: list[Any], split: str = "test") -> Path:
    """Replace a whole column of the split's first shard with ``values`` of another Arrow type."""
    shard = first_shard(ds, split)
    table = pq.read_table(shard)
    i = table.schema.get_field_index(column)
    pq.write_table(table.set_column(i, column, pa.array(values)), shard)
    return shard


def drop_column(ds: Path, column: str, split: str = "test") -> Path:
    shard = first_shard(ds, split)
    pq.write_table(pq.read_table(shard).drop_columns([column]), shard)
    return shard


def rewrite(path: Path, fn: Callable[[bytes], bytes]) -> Path:
    path.write_bytes(fn(path.read_bytes()))
    return path


def unwritable_folder(tmp: Path) -> Path:
    """An existing folder nobody may write in: chmod 0o555 for a normal user; for root (which ignores modes)
    a folder of sysfs, where even root cannot create files."""
    d = tmp / "readonly"
    d.mkdir()
    d.chmod(0o555)
    probe = d / ".probe"
    try:
        probe.touch()
    except OSError:
        return d
    probe.unlink()
    d.chmod(0o755)
    d.rmdir()
    return Path("/sys/kernel")


# --------------------------------------------------------------------------------------------------------------
# Cases


@dataclass
class Call:
    """One command line and what its single error line must name (a file, a folder, an option)."""

    argv: list[str]
    names: str
    hub: bool = False  # talk to the loopback Hub (HF_ENDPOINT, HF_TOKEN set)
    hub_fail: dict[str, int] = field(default_factory=dict)  # route kind -> injected HTTP 500s
    hub_down: bool = False  # HF_ENDPOINT points at a port nothing listens on


@dataclass(frozen=True)
class Case:
    command: str
    damage: str
    make: Callable[[Good, Path], Call]

    @property
    def id(self) -> str:
        return f"{self.command}: {self.damage}"


CASES: list[Case] = []


def case(command: str, damage: str):
    def register(fn: Callable[[Good, Path], Call]) -> Callable[[Good, Path], Call]:
        CASES.append(Case(command, damage, fn))
        return fn

    return register


# ---- dataset damages: each returns (damaged dataset folder, what the line must name)

DatasetDamage = Callable[[Good, Path], tuple[Path, str]]
DATASET_DAMAGES: dict[str, DatasetDamage] = {}


def dataset_damage(name: str):
    def register(fn: Callable[[Path], str]) -> Callable[[Path], str]:
        def make(good: Good, tmp: Path) -> tuple[Path, str]:
            ds = copy(good.dataset, tmp / "data set ø")  # spaces and non-ASCII in every dataset path
            return ds, fn(ds)

        DATASET_DAMAGES[name] = make
        return fn

    return register


def _shard_bytes(fn: Callable[[bytes], bytes]) -> Callable[[Path], str]:
    def damage(ds: Path) -> str:
        return rewrite(first_shard(ds), fn).name

    return damage


dataset_damage("shard truncated")(_shard_bytes(truncated))
dataset_damage("shard zero bytes")(_shard_bytes(lambda b: b""))
dataset_damage("shard garbage")(_shard_bytes(lambda b: garbage(len(b))))
dataset_damage("shard tail cut off")(_shard_bytes(lambda b: b[:-8]))


@dataset_damage("shard missing the mask column")
def _(ds: Path) -> str:
    return drop_column(ds, "mask").name


@dataset_damage("yaw column of strings")
def _(ds: Path) -> str:
    n = pq.read_metadata(first_shard(ds)).num_rows
    return retype_column(ds, "yaw", ["left"] * n).name


@dataset_damage("id column of integers")
def _(ds: Path) -> str:
    n = pq.read_metadata(first_shard(ds)).num_rows
    return retype_column(ds, "id", list(range(n))).name


def _row(**changes: Any) -> Callable[[Path], str]:
    def damage(ds: Path) -> str:
        return edit_row(ds, **changes).name

    return damage


dataset_damage("image PNG truncated")(_row(image={"bytes": truncated(rgb_png(), 0.6), "path": None}))
dataset_damage("image garbage")(_row(image={"bytes": garbage(200), "path": None}))
dataset_damage("image zero bytes")(_row(image={"bytes": b"", "path": None}))
dataset_damage("image null")(_row(image=None))
dataset_damage("image declares 60000×60000")(_row(image={"bytes": png_declaring(60000, 60000, 2), "path": None}))
dataset_damage("image CRC broken")(_row(image={"bytes": png_bad_crc(rgb_png()), "path": None}))
dataset_damage("mask null")(_row(mask=None))
dataset_damage("mask bytes null")(_row(mask={"bytes": None, "path": None}))
dataset_damage("mask PNG truncated")(_row(mask={"bytes": truncated(mask_png(), 0.6), "path": None}))
dataset_damage("mask garbage")(_row(mask={"bytes": garbage(100), "path": None}))
dataset_damage("mask JPEG")(_row(mask={"bytes": jpeg_of(np.ones((SIZE, SIZE), np.uint8)), "path": None}))
dataset_damage("mask RGB")(_row(mask={"bytes": rgb_png(), "path": None}))
dataset_damage("mask 16-bit")(_row(mask={"bytes": png16_of(np.ones((SIZE, SIZE))), "path": None}))
dataset_damage("mask other size")(_row(mask={"bytes": mask_png(1, (SIZE, SIZE + 3)), "path": None}))
dataset_damage("mask holds class 200")(_row(mask={"bytes": mask_png(200), "path": None}))
dataset_damage("mask holds class 19")(_row(mask={"bytes": mask_png(19), "path": None}))
dataset_damage("mask declares 60000×60000")(_row(mask={"bytes": png_declaring(60000, 60000), "path": None}))
dataset_damage("id escapes the folder")(_row(id="../../PWNED"))
dataset_damage("id with a slash")(_row(id="sub/te00"))
dataset_damage("id with a backslash")(_row(id="..\\te00"))
dataset_damage("id with a newline")(_row(id="te00\nfake"))
dataset_damage("id with NUL")(_row(id="te\x0000"))
dataset_damage("id empty")(_row(id=""))
dataset_damage("id null")(_row(id=None))
dataset_damage("id '..'")(_row(id=".."))
dataset_damage("id absolute path")(_row(id="/tmp/PWNED"))
dataset_damage("id duplicated")(_row(id="te01"))
dataset_damage("yaw NaN")(_row(yaw=float("nan")))
dataset_damage("yaw infinite")(_row(yaw=float("inf")))
dataset_damage("yaw null")(_row(yaw=None))
dataset_damage("pitch NaN")(_row(pitch=float("nan")))
dataset_damage("roll infinite")(_row(roll=float("-inf")))
dataset_damage("pose_bin unknown")(_row(pose_bin="sideways"))
dataset_damage("label_source unknown")(_row(label_source="guessed"))
dataset_damage("provenance not JSON")(_row(provenance="{seed: 1"))
dataset_damage("provenance a list")(_row(provenance="[1, 2]"))
dataset_damage("provenance NaN")(_row(provenance='{"x": NaN}'))
dataset_damage("subject null")(_row(subject=None))


def _id2label(text: str | bytes) -> Callable[[Path], str]:
    def damage(ds: Path) -> str:
        p = ds / "id2label.json"
        p.write_bytes(text.encode() if isinstance(text, str) else text)
        return "id2label.json"

    return damage


dataset_damage("id2label.json a list")(_id2label(json.dumps(["background", "skin"])))
dataset_damage("id2label.json not JSON")(_id2label("{'0': 'background'"))
dataset_damage("id2label.json zero bytes")(_id2label(b""))
dataset_damage("id2label.json not UTF-8")(_id2label(b"\xff\xfe{\x00"))
dataset_damage("id2label.json with a gap")(_id2label(json.dumps({"0": "background", "2": "skin"})))
dataset_damage("id2label.json names not strings")(_id2label(json.dumps({"0": "background", "1": 7})))
dataset_damage("id2label.json empty object")(_id2label("{}"))
dataset_damage("id2label.json 300 classes")(_id2label(json.dumps({str(i): f"c{i}" for i in range(300)})))
dataset_damage("id2label.json a folder")(lambda ds: ((ds / "id2label.json").unlink(),
                                                     (ds / "id2label.json").mkdir(), "id2label.json")[2])


@dataset_damage("no shards")
def _(ds: Path) -> str:
    shutil.rmtree(ds / "data")
    return ds.name


@dataset_damage("a shard is a folder")
def _(ds: Path) -> str:
    shard = first_shard(ds)
    shard.unlink()
    shard.mkdir()
    return shard.name


# Which commands read every damage. validate sees them all; the others a representative share each, so that the
# corpus stays fast. (A damage that validate catches is caught by the same reader in every command.)
EVALUATE_DAMAGES = [
    "shard truncated", "shard zero bytes", "shard garbage", "shard missing the mask column", "yaw column of strings",
    "image PNG truncated", "image garbage", "image null", "image declares 60000×60000", "mask null",
    "mask PNG truncated", "mask RGB", "mask other size", "mask holds class 200", "id escapes the folder",
    "id with a newline", "id null", "id duplicated", "yaw NaN", "yaw null", "provenance not JSON",
    "provenance a list", "id2label.json a list", "id2label.json not JSON", "id2label.json with a gap",
    "id2label.json names not strings", "no shards",
]  # fmt: skip
TRAIN_DAMAGES = [
    "shard truncated", "shard garbage", "image PNG truncated", "mask null", "mask PNG truncated",
    "mask holds class 200", "mask other size", "id escapes the folder", "yaw NaN", "pitch NaN",
    "provenance not JSON", "id2label.json a list", "id2label.json zero bytes", "id column of integers",
]  # fmt: skip
PREDICT_DAMAGES = [
    "shard truncated", "shard tail cut off", "image PNG truncated", "image zero bytes", "image CRC broken",
    "id escapes the folder", "id with a slash", "id absolute path", "id with NUL", "id '..'", "yaw infinite",
    "id2label.json a list",
]  # fmt: skip
PUBLISH_DAMAGES = [
    "mask holds class 200", "shard truncated", "mask PNG truncated", "id escapes the folder", "yaw NaN",
    "provenance not JSON", "id2label.json a list", "image null",
]  # fmt: skip
LEADERBOARD_DAMAGES = [
    "shard truncated", "shard garbage", "image PNG truncated", "mask null", "mask holds class 200",
    "id escapes the folder", "yaw NaN", "id2label.json a list", "id duplicated",
]  # fmt: skip
STUDY_DAMAGES = ["shard truncated", "image PNG truncated", "id escapes the folder", "mask null", "yaw NaN"]


def _dataset_case(command: str, damage: str, argv: Callable[[Good, Path, Path], list[str]]) -> None:
    def make(good: Good, tmp: Path) -> Call:
        ds, names = DATASET_DAMAGES[damage](good, tmp)
        return Call(argv(good, tmp, ds), names)

    CASES.append(Case(command, f"dataset: {damage}", make))


for _d in DATASET_DAMAGES:
    _dataset_case("validate", _d, lambda g, t, ds: ["validate", str(ds)])
for _d in EVALUATE_DAMAGES:
    _dataset_case("evaluate", _d, lambda g, t, ds: ["evaluate", str(g.preds), "--data", str(ds),
                                                    "--out", str(t / "report"), "--n-boot", "0"])
for _d in TRAIN_DAMAGES:
    _dataset_case("train", _d, lambda g, t, ds: ["train", "bisenet", "--data", str(ds), "--out", str(t / "run"),
                                                 "--steps", "1", "--size", "32", "--width", "0.25",
                                                 "--split", "test"])
for _d in PREDICT_DAMAGES:
    _dataset_case("predict", _d, lambda g, t, ds: ["predict", str(g.checkpoint), "--data", str(ds),
                                                   "--out", str(t / "masks")])
for _d in LEADERBOARD_DAMAGES:
    _dataset_case("leaderboard init", _d, lambda g, t, ds: ["leaderboard", "init", str(ds), "--host",
                                                            str(t / "host"), "--public", str(t / "public")])
for _d in STUDY_DAMAGES:
    _dataset_case("study build", _d, lambda g, t, ds: ["study", "build", "--models", f"A={g.preds},B={g.preds}",
                                                       "--data", str(ds), "--out", str(t / "study"),
                                                       "--n-items", "4"])
for _d in PUBLISH_DAMAGES:
    def _make(good: Good, tmp: Path, _d: str = _d) -> Call:
        ds, names = DATASET_DAMAGES[_d](good, tmp)
        return Call(["publish", str(ds), "--repo-id", "tester/faces"], names, hub=True)

    CASES.append(Case("publish", f"dataset: {_d}", _make))


# ---- evaluate: a folder of predictions, a checkpoint, options


def _preds(fn: Callable[[Path], str]) -> Callable[[Good, Path], Call]:
    """A copy of the predictions with one damaged by ``fn`` (given the file of the first id)."""

    def make(good: Good, tmp: Path) -> Call:
        preds = copy(good.preds, tmp / "prédictions 1")
        names = fn(sorted(preds.glob("*.png"))[0])
        return Call(["evaluate", str(preds), "--data", str(good.dataset), "--out", str(tmp / "report"),
                     "--n-boot", "0"], names)

    return make


def _damage_file(fn: Callable[[bytes], bytes]) -> Callable[[Path], str]:
    def damage(path: Path) -> str:
        rewrite(path, fn)
        return path.name

    return damage


for _name, _fn in {
    "PNG truncated": truncated, "garbage": lambda b: garbage(80), "zero bytes": lambda b: b"",
    "JPEG named .png": lambda b: jpeg_of(np.ones((SIZE, SIZE), np.uint8)), "RGB": lambda b: rgb_png(),
    "16-bit": lambda b: png16_of(np.ones((SIZE, SIZE))), "other size": lambda b: mask_png(1, (SIZE + 1, SIZE)),
    "class 200": lambda b: mask_png(200), "declares 60000×60000": lambda b: png_declaring(60000, 60000),
    "CRC broken": png_bad_crc,
}.items():
    CASES.append(Case("evaluate", f"prediction {_name}", _preds(_damage_file(_fn))))


@case("evaluate", "prediction is a folder")
def _(good: Good, tmp: Path) -> Call:
    def damage(path: Path) -> str:
        path.unlink()
        path.mkdir()
        return path.name

    return _preds(damage)(good, tmp)


@case("evaluate", "prediction missing")
def _(good: Good, tmp: Path) -> Call:
    return _preds(lambda p: (p.unlink(), p.parent.name)[1])(good, tmp)


def _evaluate(good: Good, tmp: Path, *extra: str, out: str | None = None) -> list[str]:
    return ["evaluate", str(good.preds), "--data", str(good.dataset), "--out", out or str(tmp / "report"), *extra]


def a_file(tmp: Path, name: str = "a file") -> Path:
    p = tmp / name
    p.write_text("not a folder\n")
    return p


case("evaluate", "--n-boot -5")(lambda g, t: Call(_evaluate(g, t, "--n-boot", "-5"), "--n-boot"))
case("evaluate", "--out is a file")(lambda g, t: Call(_evaluate(g, t, out=str(a_file(t))), "--out"))
@case("evaluate", "--out holds someone else's files")
def _(good: Good, tmp: Path) -> Call:
    mine = tmp / "my results"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    return Call(_evaluate(good, tmp, out=str(mine)), "notes.txt")


case("evaluate", "--out under a file")(lambda g, t: Call(_evaluate(g, t, out=str(a_file(t) / "r")), "--out"))
case("evaluate", "--out not writable")(
    lambda g, t: Call(_evaluate(g, t, out=str(unwritable_folder(t) / "r")), "--out"))
case("evaluate", "--split missing")(lambda g, t: Call(_evaluate(g, t, "--split", "holdout"), "holdout"))
case("evaluate", "--labels unknown")(lambda g, t: Call(_evaluate(g, t, "--labels", "klingon"), "--labels"))


@case("evaluate", "--labels id2label.json a list")
def _(good: Good, tmp: Path) -> Call:
    p = tmp / "order.json"
    p.write_text('["background", "skin"]')
    return Call(_evaluate(good, tmp, "--labels", str(p)), "order.json")


@case("evaluate", "--data a file")
def _(good: Good, tmp: Path) -> Call:
    return Call(["evaluate", str(good.preds), "--data", str(a_file(tmp, "data.txt"))], "data.txt")


# ---- checkpoints (evaluate, predict, train --init): the config is not covered by the weights' sha256


def checkpoint_copy(good: Good, tmp: Path, **config: Any) -> Path:
    """A copy of the shipped checkpoint with ``config`` fields replaced (``None`` removes one)."""
    ck = copy(good.checkpoint, tmp / "model ck")
    doc = json.loads((ck / "config.json").read_text())
    for k, v in config.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    (ck / "config.json").write_text(json.dumps(doc))
    return ck


CHECKPOINT_DAMAGES: dict[str, Callable[[Good, Path], tuple[Path, str]]] = {
    "input_size 100000": lambda g, t: (checkpoint_copy(g, t, input_size=100000), "config.json"),
    "input_size a string": lambda g, t: (checkpoint_copy(g, t, input_size="192"), "config.json"),
    "width 0": lambda g, t: (checkpoint_copy(g, t, width=0), "config.json"),
    "labels a list": lambda g, t: (checkpoint_copy(g, t, labels=["a", "b"]), "config.json"),
    "normalisation std 0": lambda g, t: (checkpoint_copy(g, t, normalisation={"mean": [0, 0, 0],
                                                                               "std": [0, 1, 1]}), "config.json"),
    "config not JSON": lambda g, t: (rewrite(checkpoint_copy(g, t) / "config.json", lambda b: b[:40]).parent,
                                     "config.json"),
    "config a list": lambda g, t: (rewrite(checkpoint_copy(g, t) / "config.json", lambda b: b"[1]").parent,
                                   "config.json"),
    "weights truncated": lambda g, t: (rewrite(checkpoint_copy(g, t) / "model.safetensors", truncated).parent,
                                       "model.safetensors"),
    "weights zero bytes": lambda g, t: (rewrite(checkpoint_copy(g, t) / "model.safetensors", lambda b: b"").parent,
                                        "model.safetensors"),
}

for _name in ("input_size 100000", "config not JSON", "weights truncated", "labels a list"):
    def _make(good: Good, tmp: Path, _name: str = _name) -> Call:
        ck, names = CHECKPOINT_DAMAGES[_name](good, tmp)
        return Call(["evaluate", str(ck), "--data", str(good.dataset), "--out", str(tmp / "report")], names)

    CASES.append(Case("evaluate", f"checkpoint: {_name}", _make))
for _name in CHECKPOINT_DAMAGES:
    def _make(good: Good, tmp: Path, _name: str = _name) -> Call:
        ck, names = CHECKPOINT_DAMAGES[_name](good, tmp)
        return Call(["predict", str(ck), str(good.photos), "--out", str(tmp / "masks")], names)

    CASES.append(Case("predict", f"checkpoint: {_name}", _make))
for _name in ("input_size 100000", "config a list", "weights truncated", "width 0"):
    def _make(good: Good, tmp: Path, _name: str = _name) -> Call:
        ck, names = CHECKPOINT_DAMAGES[_name](good, tmp)
        return Call(["train", "bisenet", "--data", str(good.dataset), "--out", str(tmp / "run"), "--steps", "1",
                     "--init", str(ck)], names)

    CASES.append(Case("train", f"--init checkpoint: {_name}", _make))


# ---- predict: photos and options


def _photos(fn: Callable[[Path], str]) -> Callable[[Good, Path], Call]:
    def make(good: Good, tmp: Path) -> Call:
        photos = copy(good.photos, tmp / "my photos")
        names = fn(photos)
        return Call(["predict", str(good.checkpoint), str(photos), "--out", str(tmp / "masks")], names)

    return make


def _photo(name: str, data: bytes) -> Callable[[Path], str]:
    def damage(photos: Path) -> str:
        (photos / name).write_bytes(data)
        return name

    return damage


case("predict", "photo PNG truncated")(_photos(_photo("p1.png", truncated(rgb_png(), 0.5))))
case("predict", "photo zero bytes")(_photos(_photo("zero.jpg", b"")))
case("predict", "photo garbage")(_photos(_photo("noise.jpeg", garbage(300))))
case("predict", "photo declares 60000×60000")(_photos(_photo("huge.png", png_declaring(60000, 60000, 2))))
case("predict", "photo JPEG truncated")(_photos(_photo("cut.jpg", truncated(jpeg_of(np.zeros((64, 64, 3),
                                                                                         np.uint8)), 0.4))))
case("predict", "photo named ü with spaces, broken")(_photos(_photo("fötö 1 .png", garbage(50))))
case("predict", "photo folder is a file")(
    lambda g, t: Call(["predict", str(g.checkpoint), str(a_file(t, "pics.png")), "--out", str(t / "m")], "pics.png"))
case("predict", "photo folder empty")(
    lambda g, t: Call(["predict", str(g.checkpoint), str((t / "empty").mkdir() or t / "empty"), "--out",
                       str(t / "m")], "empty"))


def _predict(good: Good, tmp: Path, *extra: str, out: str | None = None) -> list[str]:
    return ["predict", str(good.checkpoint), str(good.photos), "--out", out or str(tmp / "masks"), *extra]


case("predict", "--out is a file")(lambda g, t: Call(_predict(g, t, out=str(a_file(t))), "--out"))
case("predict", "--out under a file")(lambda g, t: Call(_predict(g, t, out=str(a_file(t) / "m")), "--out"))
case("predict", "--out not writable")(lambda g, t: Call(_predict(g, t, out=str(unwritable_folder(t))), "--out"))
case("predict", "--batch-size 0")(lambda g, t: Call(_predict(g, t, "--batch-size", "0"), "--batch-size"))
case("predict", "--threads -1")(lambda g, t: Call(_predict(g, t, "--threads", "-1"), "--threads"))
case("predict", "--precision fp8")(lambda g, t: Call(_predict(g, t, "--precision", "fp8"), "fp8"))
case("predict", "model missing")(
    lambda g, t: Call(["predict", str(t / "no model"), str(g.photos), "--out", str(t / "m")], "no model"))
case("predict", "a pickle as model")(
    lambda g, t: Call(["predict", str(rewrite(t / "w.pth", lambda b: b"\x80\x04K.")) if (t / "w.pth").touch() is None
                       else "", str(g.photos), "--out", str(t / "m")], "w.pth"))


# ---- train: options and run folders


def _train(good: Good, tmp: Path, *extra: str, out: str | None = None, data: Path | None = None) -> list[str]:
    return ["train", "bisenet", "--data", str(data or good.dataset), "--out", out or str(tmp / "run"), "--steps", "1",
            "--size", "32", "--width", "0.25", *extra]


for _opt, _val in (("--size", "0"), ("--size", "-1"), ("--size", "100000"), ("--steps", "0"),
                   ("--batch-size", "0"), ("--epochs", "-1"), ("--lr", "nan"), ("--lr", "-0.1"), ("--width", "0"),
                   ("--save-every", "0"), ("--val-every", "0"), ("--threads", "0"), ("--max-yaw", "inf"),
                   ("--amp", "fp8")):
    def _make(good: Good, tmp: Path, _opt: str = _opt, _val: str = _val) -> Call:
        args = _train(good, tmp, _opt, _val)
        if _opt in ("--size", "--width", "--steps"):  # the later value wins in typer: drop the default one
            i = args.index(_opt)
            del args[i : i + 2]
        return Call(args, _opt)

    CASES.append(Case("train", f"{_opt} {_val}", _make))
case("train", "--val-split missing")(lambda g, t: Call(_train(g, t, "--val-split", "holdout"), "--val-split"))


@case("train", "default validation split missing")
def _(good: Good, tmp: Path) -> Call:
    ds = copy(good.dataset, tmp / "ds")
    for p in (ds / "data").glob("validation-*.parquet"):
        p.unlink()
    return Call(_train(good, tmp, data=ds), "--val-split")


case("train", "--split missing")(lambda g, t: Call(_train(g, t, "--split", "holdout"), "holdout"))
case("train", "unknown architecture")(lambda g, t: Call(["train", "resnet9000", "--data", str(g.dataset), "--out",
                                                         str(t / "run"), "--steps", "1"], "resnet9000"))
case("train", "--out is a file")(lambda g, t: Call(_train(g, t, out=str(a_file(t))), "--out"))
case("train", "--out not writable")(lambda g, t: Call(_train(g, t, out=str(unwritable_folder(t) / "r")), "--out"))
case("train", "--out holds other files")(
    lambda g, t: Call(_train(g, t, out=str(a_file(t / "busy", "notes.txt").parent)), "busy") if (t / "busy").mkdir()
    is None else None)
case("train", "--data missing")(lambda g, t: Call(_train(g, t, data=t / "nowhere"), "nowhere"))


# ---- generate: captures (nerfstudio transforms.json and its files) and options


def _generate(capture: Path, tmp: Path, *extra: str, out: str | None = None) -> list[str]:
    """A run that would be quick if it started: every damage must stop it before any fit."""
    return ["generate", str(capture), "--out", out or str(tmp / "generated"), "--head-frame", "capture",
            "--new-views", "2", "--rgb-steps", "2", "--label-steps", "0", "--size", "32", *extra]


def capture_copy(good: Good, tmp: Path, edit: Callable[[dict[str, Any], Path], None] | None = None) -> Path:
    """A copy of the good capture (under a path with spaces and non-ASCII), its transforms.json edited."""
    cap = copy(good.capture, tmp / "captures ü" / "subject 1")
    if edit is not None:
        doc = json.loads((cap / "transforms.json").read_text())
        edit(doc, cap)
        (cap / "transforms.json").write_text(json.dumps(doc))
    return cap


def _frame(**changes: Any) -> Callable[[dict[str, Any], Path], None]:
    def edit(doc: dict[str, Any], cap: Path) -> None:
        doc["frames"][0].update(changes)

    return edit


CAPTURE_DAMAGES: dict[str, tuple[Callable[[dict[str, Any], Path], None], str]] = {
    "singular camera matrix": (_frame(transform_matrix=[[0.0] * 4] * 3 + [[0, 0, 0, 1]]), "transforms.json"),
    "camera matrix with NaN": (_frame(transform_matrix=[[float("nan")] * 4] * 4), "transforms.json"),
    "camera matrix 2×2": (_frame(transform_matrix=[[1, 0], [0, 1]]), "transforms.json"),
    "mirrored camera": (_frame(transform_matrix=[[-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]),
                        "transforms.json"),
    "fl_x 'abc'": (_frame(fl_x="abc"), "transforms.json"),
    "fl_x 0": (_frame(fl_x=0), "transforms.json"),
    "fl_x true": (_frame(fl_x=True), "transforms.json"),
    "w 100000": (lambda d, c: [f.update(w=100000) for f in d["frames"]] and None, "00000.png"),
    "h -32": (_frame(h=-32), "transforms.json"),
    "unknown pose key": (_frame(pose={"yaw": 0, "pitch": 0, "tilt": 3}), "transforms.json"),
    "pose NaN": (_frame(pose={"yaw": float("nan"), "pitch": 0, "roll": 0}), "transforms.json"),
    "pose a list": (_frame(pose=[0, 0, 0]), "transforms.json"),
    "one frame": (lambda d, c: d.update(frames=d["frames"][:1]), "transforms.json"),
    "no frames": (lambda d, c: d.update(frames=[]), "transforms.json"),
    "frames an object": (lambda d, c: d.update(frames={"0": 1}), "transforms.json"),
    "frame a string": (lambda d, c: d["frames"].__setitem__(0, "frame"), "transforms.json"),
    "file_path missing": (lambda d, c: d["frames"][0].pop("file_path"), "transforms.json"),
    "label_path a number": (_frame(label_path=5), "transforms.json"),
    "view id escapes": (_frame(facebench_id="../../PWNED"), "transforms.json"),
    "view id duplicated": (lambda d, c: d["frames"][1].update(facebench_id=d["frames"][0]["facebench_id"]),
                           "transforms.json"),
    "subject escapes": (lambda d, c: d["facebench"].update(subject="../../evil"), "transforms.json"),
    "subject with a newline": (lambda d, c: d["facebench"].update(subject="sub\nject"), "transforms.json"),
    "head_to_world singular": (lambda d, c: d["facebench"].update(head_to_world=[[0.0] * 4] * 3 + [[0, 0, 0, 1]]),
                               "transforms.json"),
    "head_to_world a string": (lambda d, c: d["facebench"].update(head_to_world="eye"), "transforms.json"),
    "camera_model unknown": (lambda d, c: d.update(camera_model="FISHEYE624"), "transforms.json"),
    "k4 with OPENCV": (_frame(k4=0.1), "transforms.json"),
    "image truncated": (lambda d, c: rewrite(c / "images" / "00000.png", truncated) and None, "00000.png"),
    "image zero bytes": (lambda d, c: rewrite(c / "images" / "00001.png", lambda b: b"") and None, "00001.png"),
    "image garbage": (lambda d, c: rewrite(c / "images" / "00002.png", lambda b: garbage(90)) and None,
                      "00002.png"),
    "image missing": (lambda d, c: (c / "images" / "00000.png").unlink(), "00000.png"),
    "image is a folder": (lambda d, c: ((c / "images" / "00000.png").unlink(), (c / "images" / "00000.png").mkdir())
                          and None, "00000.png"),
    "image declares 60000×60000": (lambda d, c: (c / "images" / "00000.png").write_bytes(
        png_declaring(60000, 60000, 2)) and None, "00000.png"),
    "label map truncated": (lambda d, c: rewrite(c / "masks" / "00000.png", truncated) and None, "00000.png"),
    "label map holds class 200": (lambda d, c: (c / "masks" / "00001.png").write_bytes(mask_png(200)) and None,
                                  "00001.png"),
    "label map RGB": (lambda d, c: (c / "masks" / "00001.png").write_bytes(rgb_png()) and None, "00001.png"),
}


for _name, (_edit, _names) in CAPTURE_DAMAGES.items():
    def _make(good: Good, tmp: Path, _edit=_edit, _names: str = _names) -> Call:
        return Call(_generate(capture_copy(good, tmp, _edit), tmp), _names)

    CASES.append(Case("generate", f"capture: {_name}", _make))


@case("generate", "capture: transforms.json not JSON")
def _(good: Good, tmp: Path) -> Call:
    cap = capture_copy(good, tmp)
    rewrite(cap / "transforms.json", lambda b: b[: len(b) // 3])
    return Call(_generate(cap, tmp), "transforms.json")


@case("generate", "capture: transforms.json zero bytes")
def _(good: Good, tmp: Path) -> Call:
    cap = capture_copy(good, tmp)
    rewrite(cap / "transforms.json", lambda b: b"")
    return Call(_generate(cap, tmp), "transforms.json")


@case("generate", "capture: transforms.json binary")
def _(good: Good, tmp: Path) -> Call:
    cap = capture_copy(good, tmp)
    rewrite(cap / "transforms.json", lambda b: garbage(400))
    return Call(_generate(cap, tmp), "transforms.json")


@case("generate", "capture: transforms.json a list")
def _(good: Good, tmp: Path) -> Call:
    cap = capture_copy(good, tmp)
    (cap / "transforms.json").write_text("[]")
    return Call(_generate(cap, tmp), "transforms.json")


@case("generate", "capture folder missing")
def _(good: Good, tmp: Path) -> Call:
    return Call(_generate(tmp / "no capture", tmp), "no capture")


@case("generate", "--masks: a mask truncated")
def _(good: Good, tmp: Path) -> Call:
    cap = capture_copy(good, tmp)
    masks = copy(cap / "masks", tmp / "initial masks")
    for p in sorted(masks.glob("*.png")):
        p.rename(masks / f"subj-{p.name}")
    rewrite(masks / "subj-00001.png", truncated)
    return Call(_generate(cap, tmp, "--masks", str(masks)), "subj-00001.png")


@case("generate", "--head-frame file not JSON")
def _(good: Good, tmp: Path) -> Call:
    f = tmp / "frame.json"
    f.write_text("{[")
    args = _generate(capture_copy(good, tmp), tmp)
    args[args.index("--head-frame") + 1] = str(f)
    return Call(args, "frame.json")


@case("generate", "--head-frame singular")
def _(good: Good, tmp: Path) -> Call:
    f = tmp / "frame.json"
    f.write_text(json.dumps([[0] * 4] * 4))
    args = _generate(capture_copy(good, tmp), tmp)
    args[args.index("--head-frame") + 1] = str(f)
    return Call(args, "frame.json")


case("generate", "--out is a file")(lambda g, t: Call(_generate(g.capture, t, out=str(a_file(t))), "--out"))
case("generate", "--out under a file")(lambda g, t: Call(_generate(g.capture, t, out=str(a_file(t) / "d")), "--out"))
case("generate", "--out not writable")(
    lambda g, t: Call(_generate(g.capture, t, out=str(unwritable_folder(t) / "d")), "--out"))
for _opt, _val, _names in (("--size", "0", "out_size"), ("--new-views", "-1", "n_views"),
                           ("--rgb-steps", "0", "rgb_steps"), ("--workers", "0", "workers"), ("--seed", "-1", "seed"),
                           ("--variant", "magic", "magic"), ("--renderer", "opengl", "opengl"),
                           ("--format", "blender", "blender"), ("--labels", "klingon", "--labels")):
    def _make(good: Good, tmp: Path, _opt: str = _opt, _val: str = _val, _names: str = _names) -> Call:
        args = _generate(good.capture, tmp)
        if _opt in args:
            args[args.index(_opt) + 1] = _val
        else:
            args += [_opt, _val]
        return Call(args, _names)

    CASES.append(Case("generate", f"{_opt} {_val}", _make))
case("generate", "--parser missing")(lambda g, t: Call(_generate(g.capture, t, "--parser", str(t / "no ck")), "no ck"))
case("generate", "--parser config not JSON")(lambda g, t: Call(_generate(
    g.capture, t, "--parser", str(CHECKPOINT_DAMAGES["config not JSON"](g, t)[0])), "config.json"))


# ---- import: a LaPa-layout folder


def _lapa(fn: Callable[[Path], str], *extra: str) -> Callable[[Good, Path], Call]:
    def make(good: Good, tmp: Path) -> Call:
        lapa = copy(good.lapa, tmp / "LaPa copy")
        names = fn(lapa)
        return Call(["import", "lapa", str(lapa), "--out", str(tmp / "imported"), *extra], names)

    return make


def _lapa_file(sub: str, fn: Callable[[bytes], bytes], stem: bool = False) -> Callable[[Path], str]:
    """Damage the first file of test/``sub``; the line must name it (or, with ``stem``, its image or label)."""
    def damage(lapa: Path) -> str:
        path = sorted((lapa / "test" / sub).iterdir())[0]
        rewrite(path, fn)
        return path.stem if stem else path.name

    return damage


def _landmarks(text: str) -> Callable[[bytes], bytes]:
    return lambda b: text.encode()


_NAN_LANDMARKS = "106\n" + "nan nan\n" * 106
for _name, _damage in {
    "landmarks NaN": ("landmarks", _landmarks(_NAN_LANDMARKS)),
    "landmarks one NaN": ("landmarks", lambda b: b.replace(b"\n", b"\nnan ", 1)),
    "landmarks infinite": ("landmarks", lambda b: re.sub(rb"\n[^\n]*", b"\ninf 3", b, count=1)),
    "landmarks garbage": ("landmarks", lambda b: garbage(300)),
    "landmarks zero bytes": ("landmarks", lambda b: b""),
    "landmarks count wrong": ("landmarks", lambda b: b"105" + b[3:]),
    "label map truncated": ("labels", truncated),
    "label map garbage": ("labels", lambda b: garbage(120)),
    "label map class 50": ("labels", lambda b: mask_png(50, (48, 48))),
    "label map other size": ("labels", lambda b: mask_png(1, (40, 48)), True),
    "image truncated": ("images", lambda b: truncated(b, 0.3)),
    "image zero bytes": ("images", lambda b: b""),
    "image declares 60000×60000": ("images", lambda b: png_declaring(60000, 60000, 2)),
}.items():
    CASES.append(Case("import", f"lapa: {_name}", _lapa(_lapa_file(*_damage))))


@case("import", "lapa: labels folder missing")
def _(good: Good, tmp: Path) -> Call:
    return _lapa(lambda lapa: (shutil.rmtree(lapa / "test" / "labels"), "test")[1])(good, tmp)


case("import", "--limit -1")(lambda g, t: _lapa(lambda lapa: "--limit", "--limit", "-1")(g, t))
case("import", "--merge bogus")(lambda g, t: _lapa(lambda lapa: "--merge", "--merge", "eyes")(g, t))
case("import", "--sides left")(lambda g, t: _lapa(lambda lapa: "--sides", "--sides", "left")(g, t))
case("import", "--split holdout")(lambda g, t: _lapa(lambda lapa: "holdout", "--split", "holdout")(g, t))
case("import", "unknown dataset")(lambda g, t: Call(["import", "ffhq", str(g.lapa), "--out", str(t / "o")], "ffhq"))
case("import", "folder missing")(lambda g, t: Call(["import", "lapa", str(t / "no lapa"), "--out", str(t / "o")],
                                                   "no lapa"))
case("import", "--out is a file")(lambda g, t: Call(["import", "lapa", str(g.lapa), "--out", str(a_file(t))], "--out"))
case("import", "--out not writable")(lambda g, t: Call(["import", "lapa", str(g.lapa), "--out",
                                                        str(unwritable_folder(t) / "o")], "--out"))
case("import", "--out exists")(lambda g, t: Call(["import", "lapa", str(g.lapa), "--out",
                                                  str((t / "there").mkdir() or t / "there")], "--out"))


@case("import", "celebamask-hq: partition file binary")
def _(good: Good, tmp: Path) -> Call:
    from facebench.importers.fixtures import write_celebamask_hq

    root = tmp / "CelebAMask-HQ"
    write_celebamask_hq(root, size=32, n=3)
    (root / "list_eval_partition.txt").write_bytes(b"\xff\xfe" + garbage(100))
    return Call(["import", "celebamask-hq", str(root), "--out", str(tmp / "o")], "list_eval_partition.txt")


# ---- publish: the Hub side


def _publish(good: Good, tmp: Path, **kw: Any) -> Call:
    ds = copy(good.dataset, tmp / "dataset")
    return Call(["publish", str(ds), "--repo-id", "tester/faces"], "tester/faces", hub=True, **kw)


case("publish", "Hub answers HTTP 500 to every commit")(lambda g, t: _publish(g, t, hub_fail={"commit": 10**6}))
case("publish", "Hub answers HTTP 500 to every preupload")(lambda g, t: _publish(g, t, hub_fail={"preupload": 10**6}))
case("publish", "Hub answers HTTP 500 to every LFS upload")(lambda g, t: _publish(g, t, hub_fail={"lfs_upload": 10**6}))
case("publish", "Hub unreachable")(lambda g, t: _publish(g, t, hub_down=True))
case("publish", "repo id not ns/name")(lambda g, t: Call(["publish", str(g.dataset), "--repo-id", "faces"], "faces",
                                                         hub=True))


@case("publish", "licence unknown")
def _(good: Good, tmp: Path) -> Call:
    ds = copy(good.dataset, tmp / "dataset")
    rewrite(ds / "README.md", lambda b: b.replace(b"license: cc0-1.0", b"license: unknown"))
    return Call(["publish", str(ds), "--repo-id", "tester/faces"], "README.md", hub=True)


# ---- study: build, export, aggregate, serve


def _study_build(good: Good, tmp: Path, *extra: str, preds: Path | None = None, out: str | None = None) -> list[str]:
    p = preds or good.preds
    return ["study", "build", "--models", f"A={p},B={good.preds}", "--data", str(good.dataset), "--out",
            out or str(tmp / "study"), "--n-items", "4", *extra]


@case("study build", "a prediction truncated")
def _(good: Good, tmp: Path) -> Call:
    preds = copy(good.preds, tmp / "preds A")
    target = sorted(preds.glob("*.png"))[0]
    rewrite(target, truncated)
    return Call(_study_build(good, tmp, "--n-items", "8", preds=preds), target.name)


case("study build", "--n-items 0")(lambda g, t: Call(_study_build(g, t, "--n-items", "0"), "--n-items"))
case("study build", "--mode vote")(lambda g, t: Call(_study_build(g, t, "--mode", "vote"), "vote"))
case("study build", "--models without =")(
    lambda g, t: Call(["study", "build", "--models", "A", "--data", str(g.dataset), "--out", str(t / "s")], "'A'"))
case("study build", "--out is a file")(lambda g, t: Call(_study_build(g, t, out=str(a_file(t))), "--out"))
case("study build", "--out not writable")(
    lambda g, t: Call(_study_build(g, t, out=str(unwritable_folder(t) / "s")), "--out"))


def study_copy(good: Good, tmp: Path) -> Path:
    return copy(good.study, tmp / "my study")


@case("study export", "key.json not JSON")
def _(good: Good, tmp: Path) -> Call:
    from facebench.study.store import Store

    s = study_copy(good, tmp)
    Store(s / "ratings.sqlite").close()  # someone rated: export gets as far as the key
    rewrite(s / "key.json", truncated)
    return Call(["study", "export", str(s), "--out", str(tmp / "r.csv")], "key.json")


@case("study export", "ratings.sqlite garbage")
def _(good: Good, tmp: Path) -> Call:
    s = study_copy(good, tmp)
    (s / "ratings.sqlite").write_bytes(garbage(4096))
    return Call(["study", "export", str(s), "--out", str(tmp / "r.csv")], "ratings.sqlite")


case("study export", "not a study folder")(
    lambda g, t: Call(["study", "export", str(g.dataset), "--out", str(t / "r.csv")], g.dataset.name))


def _aggregate(ratings: Path, tmp: Path, *extra: str) -> list[str]:
    return ["study", "aggregate", str(ratings), "--out", str(tmp / "report"), "--n-boot", "10", *extra]


def ratings_copy(good: Good, tmp: Path, fn: Callable[[bytes], bytes] | None = None) -> Path:
    r = copy(good.ratings, tmp / "ratings ü.csv")
    if fn is not None:
        rewrite(r, fn)
    return r


for _name, _fn in {
    "zero bytes": lambda b: b"", "binary": lambda b: garbage(500), "not UTF-8": lambda b: b.replace(b"r1", b"\xff\xfe"),
    "a rating of 9": lambda b: re.sub(rb"(,rating,te00,A,)\d", rb"\g<1>9", b, count=1),
    "no header": lambda b: b.split(b"\n", 1)[1], "truncated mid-row": lambda b: truncated(b, 0.55),
}.items():
    CASES.append(Case("study aggregate", f"ratings CSV {_name}",
                      lambda g, t, _fn=_fn: Call(_aggregate(ratings_copy(g, t, _fn), t), "ratings ü.csv")))
case("study aggregate", "--n-boot -5")(lambda g, t: Call(_aggregate(ratings_copy(g, t), t, "--n-boot", "-5"),
                                                         "--n-boot"))
case("study aggregate", "--scale-min above --scale-max")(
    lambda g, t: Call(_aggregate(ratings_copy(g, t), t, "--scale-min", "5", "--scale-max", "1"), "--scale"))
case("study aggregate", "--out is a file")(
    lambda g, t: Call(["study", "aggregate", str(ratings_copy(g, t)), "--out", str(a_file(t))], "--out"))


@case("study serve", "study.json not JSON")
def _(good: Good, tmp: Path) -> Call:
    s = study_copy(good, tmp)
    rewrite(s / "study.json", truncated)
    return Call(["study", "serve", str(s), "--port", "0"], "study.json")


case("study serve", "not a study folder")(lambda g, t: Call(["study", "serve", str(g.dataset), "--port", "0"],
                                                            g.dataset.name))
case("study serve", "--timeout 0")(lambda g, t: Call(["study", "serve", str(study_copy(g, t)), "--port", "0",
                                                      "--timeout", "0"], "--timeout"))
case("study serve", "--port 70000")(lambda g, t: Call(["study", "serve", str(study_copy(g, t)), "--port", "70000"],
                                                      "--port"))


# ---- submit and leaderboard


def host_copy(good: Good, tmp: Path) -> tuple[Path, Path]:
    """A copy of the leaderboard host (its request store is where a submission would land) and the manifest."""
    host = copy(good.host, tmp / "host")
    manifest = copy(good.manifest, tmp / "public" / "manifest.json")
    return host, manifest


def _submit(good: Good, tmp: Path, path: Path, *extra: str) -> list[str]:
    host, manifest = host_copy(good, tmp)
    return ["submit", str(path), "--name", "team", "--contact", "a@b.org", "--training-data", "synthetic",
            "--requests", str(host / "requests"), "--manifest", str(manifest), *extra]


def _submission(fn: Callable[[Path], str]) -> Callable[[Good, Path], Call]:
    def make(good: Good, tmp: Path) -> Call:
        preds = copy(good.preds, tmp / "submission 1")
        names = fn(preds)
        return Call(_submit(good, tmp, preds), names)

    return make


def _first(fn: Callable[[bytes], bytes]) -> Callable[[Path], str]:
    def damage(preds: Path) -> str:
        target = sorted(preds.glob("*.png"))[0]
        rewrite(target, fn)
        return target.name

    return damage


case("submit", "a prediction truncated")(_submission(_first(truncated)))
case("submit", "a prediction garbage")(_submission(_first(lambda b: garbage(64))))
case("submit", "a prediction class 200")(_submission(_first(lambda b: mask_png(200))))
case("submit", "a prediction declares 60000×60000")(_submission(_first(lambda b: png_declaring(60000, 60000))))


@case("submit", "zip truncated")
def _(good: Good, tmp: Path) -> Call:
    import zipfile

    z = tmp / "preds.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(good.preds.glob("*.png")):
            zf.write(p, p.name)
    rewrite(z, truncated)
    return Call(_submit(good, tmp, z), "preds.zip")


@case("submit", "parquet truncated")
def _(good: Good, tmp: Path) -> Call:
    rows = [{"id": p.stem, "mask": {"bytes": p.read_bytes(), "path": None}} for p in sorted(good.preds.glob("*.png"))]
    path = tmp / "preds.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    rewrite(path, truncated)
    return Call(_submit(good, tmp, path), "preds.parquet")


@case("submit", "a pickle")
def _(good: Good, tmp: Path) -> Call:
    path = tmp / "model.pt"
    path.write_bytes(b"\x80\x04\x95" + garbage(40))
    return Call(_submit(good, tmp, path), "model.pt")


@case("submit", "--manifest not JSON")
def _(good: Good, tmp: Path) -> Call:
    args = _submit(good, tmp, good.preds)
    rewrite(Path(args[args.index("--manifest") + 1]), truncated)
    return Call(args, "manifest.json")


@case("submit", "--manifest a list")
def _(good: Good, tmp: Path) -> Call:
    args = _submit(good, tmp, good.preds)
    Path(args[args.index("--manifest") + 1]).write_text("[]")
    return Call(args, "manifest.json")


@case("submit", "--labels id2label.json with a gap")
def _(good: Good, tmp: Path) -> Call:
    order = tmp / "order.json"
    order.write_text(json.dumps({"0": "background", "5": "skin"}))
    return Call(_submit(good, tmp, good.preds, "--labels", str(order)), "order.json")


case("submit", "path missing")(lambda g, t: Call(_submit(g, t, t / "nothing here"), "nothing here"))


def _init(good: Good, tmp: Path, *extra: str, host: str | None = None, public: str | None = None) -> list[str]:
    return ["leaderboard", "init", str(good.dataset), "--host", host or str(tmp / "host"), "--public",
            public or str(tmp / "public"), *extra]


case("leaderboard init", "--n-boot -5")(lambda g, t: Call(_init(g, t, "--n-boot", "-5"), "--n-boot"))
case("leaderboard init", "--rate-limit 0")(lambda g, t: Call(_init(g, t, "--rate-limit", "0"), "--rate-limit"))
case("leaderboard init", "--rate-window-h -1")(lambda g, t: Call(_init(g, t, "--rate-window-h", "-1"),
                                                                  "--rate-window-h"))
case("leaderboard init", "--split holdout")(lambda g, t: Call(_init(g, t, "--split", "holdout"), "holdout"))
case("leaderboard init", "--host is a file")(lambda g, t: Call(_init(g, t, host=str(a_file(t))), "--host"))
case("leaderboard init", "--public is a file")(lambda g, t: Call(_init(g, t, public=str(a_file(t))), "--public"))
case("leaderboard init", "--public not writable")(
    lambda g, t: Call(_init(g, t, public=str(unwritable_folder(t) / "p")), "--public"))


@case("leaderboard process", "host.json not JSON")
def _(good: Good, tmp: Path) -> Call:
    host, _ = host_copy(good, tmp)
    rewrite(host / "host.json", truncated)
    return Call(["leaderboard", "process", "--host", str(host)], "host.json")


@case("leaderboard process", "host.json a list")
def _(good: Good, tmp: Path) -> Call:
    host, _ = host_copy(good, tmp)
    (host / "host.json").write_text("[]")
    return Call(["leaderboard", "process", "--host", str(host)], "host.json")


case("leaderboard process", "not a host folder")(
    lambda g, t: Call(["leaderboard", "process", "--host", str(g.dataset)], g.dataset.name))


@case("leaderboard build", "--out is a file")
def _(good: Good, tmp: Path) -> Call:
    host, _ = host_copy(good, tmp)
    return Call(["leaderboard", "build", "--host", str(host), "--out", str(a_file(tmp))], "--out")


@case("leaderboard build", "host.json binary")
def _(good: Good, tmp: Path) -> Call:
    host, _ = host_copy(good, tmp)
    (host / "host.json").write_bytes(garbage(200))
    return Call(["leaderboard", "build", "--host", str(host), "--out", str(tmp / "site")], "host.json")


case("leaderboard status", "request id escapes")(
    lambda g, t: Call(["leaderboard", "status", "../../x", "--requests", str(host_copy(g, t)[0] / "requests")],
                      "../../x"))
case("leaderboard status", "--requests is a file")(
    lambda g, t: Call(["leaderboard", "status", "--requests", str(a_file(t))], "a file"))


@case("train", "--out holds a damaged train_state.json")
def _(good: Good, tmp: Path) -> Call:
    run = copy(good.checkpoint, tmp / "run")
    (run / "train_state.json").write_bytes(truncated(json.dumps({"step": 3, "config": {}}).encode()))
    (run / "train_state.safetensors").write_bytes(b"")
    return Call(_train(good, tmp, out=str(run)), "train_state.json")


@case("generate", "capture: every camera in one place (no head frame can be estimated)")
def _(good: Good, tmp: Path) -> Call:
    def edit(doc: dict[str, Any], cap: Path) -> None:
        for frame in doc["frames"]:
            frame["transform_matrix"] = doc["frames"][1]["transform_matrix"]
        doc["facebench"].pop("head_to_world", None)

    args = _generate(capture_copy(good, tmp, edit), tmp)
    args[args.index("--head-frame") + 1] = "auto"  # the default: estimated from the parser's face parts
    return Call(args, "transforms.json")


# ---- export-onnx, convert, heads, reproduce, download: a model, options, or the Hub

for _name in ("config not JSON", "weights truncated", "input_size 100000", "labels a list"):
    def _make(good: Good, tmp: Path, _name: str = _name) -> Call:
        ck, names = CHECKPOINT_DAMAGES[_name](good, tmp)
        return Call(["export-onnx", str(ck), "--out", str(tmp / "model.onnx"), "--no-check"], names)

    CASES.append(Case("export-onnx", f"checkpoint: {_name}", _make))


def _export(good: Good, out: Path) -> Call:
    return Call(["export-onnx", str(good.checkpoint), "--out", str(out), "--no-check"], "--out")


case("export-onnx", "--out under a file")(lambda g, t: _export(g, a_file(t) / "m.onnx"))
case("export-onnx", "--out is a folder")(lambda g, t: _export(g, (t / "models").mkdir() or t / "models"))
case("export-onnx", "--out not writable")(lambda g, t: _export(g, unwritable_folder(t) / "m.onnx"))
case("export-onnx", "a pickle as model")(
    lambda g, t: Call(["export-onnx", str(rewrite(a_file(t, "w.pth"), lambda b: b"\x80\x04K.")), "--out",
                       str(t / "m.onnx")], "w.pth"))


def _zll(tmp: Path, payload: bytes) -> Call:
    pth = rewrite(a_file(tmp, "79999_iter.pth"), lambda b: payload)
    return Call(["convert", f"zll:{pth}", "--out", str(tmp / "converted")], "79999_iter.pth")


case("convert", "pth truncated pickle")(lambda g, t: _zll(t, b"\x80\x04K."))
case("convert", "pth garbage")(lambda g, t: _zll(t, garbage(300)))
case("convert", "pth zero bytes")(lambda g, t: _zll(t, b""))
case("convert", "pth missing")(
    lambda g, t: Call(["convert", f"zll:{t / 'none.pth'}", "--out", str(t / "c")], "none.pth"))
case("heads", "--subjects 0")(lambda g, t: Call(["heads", "--subjects", "0", "--out", str(t / "h")], "subjects"))
case("heads", "--size 0")(lambda g, t: Call(["heads", "--size", "0", "--out", str(t / "h")], "size"))
case("heads", "--out is a file")(lambda g, t: Call(["heads", "--out", str(a_file(t))], "a file"))
case("reproduce", "--scale bogus")(lambda g, t: Call(["reproduce", "--scale", "bogus", "--out", str(t / "r")], "bogus"))
case("reproduce", "--out is a file")(lambda g, t: Call(["reproduce", "--out", str(a_file(t))], "a file"))
case("download", "repo not on the Hub")(
    lambda g, t: Call(["download", "tester/nothing-here", "--out", str(t / "d")], "tester/nothing-here", hub=True))
case("download", "Hub unreachable")(
    lambda g, t: Call(["download", "tester/faces", "--out", str(t / "d")], "tester/faces", hub_down=True))
case("download", "repo id not ns/name")(
    lambda g, t: Call(["download", "faces", "--out", str(t / "d")], "faces", hub=True))
case("download", "--pose-bin sideways")(
    lambda g, t: Call(["download", "tester/faces", "--pose-bin", "sideways", "--out", str(t / "d")], "sideways",
                      hub=True))
case("download", "--out is a file")(
    lambda g, t: Call(["download", "tester/faces", "--out", str(a_file(t))], "a file", hub=True))
case("download", "--split a glob")(
    lambda g, t: Call(["download", "tester/faces", "--split", "*", "--out", str(t / "d")], "--split", hub=True))
