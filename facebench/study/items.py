"""``build_study``: pick images, render one blinded overlay per model, add attention checks.

Every overlay gets an opaque random code (from the study seed), so neither the page nor the media
file names say which model made it. Attention checks are overlays that are wrong on purpose (the
ground-truth mask shifted, or another image's mask upside down): an attentive rater gives them a low
score, or prefers the real overlay, and raters who do not are excluded at aggregation.
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from facebench.dataset import Sample, load
from facebench.files import replace_dir, temp_dir
from facebench.imageio import write_png
from facebench.labels import LabelSet
from facebench.outputs import check_output_folder
from facebench.parsing import MaskFolderParser, Parser
from facebench.pose import POSE_BIN_NAMES
from facebench.study.errors import StudyError
from facebench.study.layout import ATTENTION, DB, MEDIA, KeyEntry, Manifest, Task, write_key, write_manifest

MODES = ("rating", "pairwise", "both")
CHECK_KINDS = ("shifted", "other_image")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")


@dataclass(frozen=True)
class StudySummary:
    """What ``build_study`` made, for the CLI to print."""

    folder: Path
    n_samples: int
    n_rating: int
    n_pairwise: int
    n_checks: int


def parse_models(spec: str) -> dict[str, Path]:
    """``"A=preds/a,B=preds/b"`` -> {"A": Path("preds/a"), ...}; names must be unique and plain."""
    models: dict[str, Path] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, path = part.partition("=")
        name = name.strip()
        if not sep or not path.strip():
            raise StudyError(f"model {part!r} is not NAME=FOLDER", hint="e.g. --models A=preds/a,B=preds/b")
        if not _NAME.match(name) or name == ATTENTION:
            raise StudyError(f"model name {name!r} must be letters, digits, _.+- and not {ATTENTION!r}")
        if name in models:
            raise StudyError(f"model {name!r} given twice")
        models[name] = Path(path.strip())
    if not models:
        raise StudyError("no models given", hint="e.g. --models A=preds/a,B=preds/b")
    return models


def stratified_pick(ids: list[str], bins: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """``n`` ids spread evenly over pose bins (round robin over bins, random within each)."""
    pools = {b: [ids[i] for i in rng.permutation(len(ids)) if bins[i] == b] for b in POSE_BIN_NAMES}
    picked: list[str] = []
    while len(picked) < n and any(pools.values()):
        for b in POSE_BIN_NAMES:
            if pools[b] and len(picked) < n:
                picked.append(pools[b].pop())
    return picked


def corrupt(mask: np.ndarray, kind: str, other: np.ndarray | None) -> np.ndarray:
    """A known-bad mask: ``shifted`` by a third of the image, or ``other_image``'s mask upside down."""
    h, w = mask.shape
    if kind == "other_image" and other is not None:
        ys = (np.arange(h) * other.shape[0] // h)[:, None]
        xs = (np.arange(w) * other.shape[1] // w)[None, :]
        return np.ascontiguousarray(other[ys, xs][::-1])
    return np.roll(mask, (h // 3, w // 3), axis=(0, 1))


class _Codes:
    """Unique opaque codes from the study's generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.used = rng, set()

    def __call__(self, prefix: str) -> str:
        while True:
            code = prefix + self.rng.bytes(5).hex()
            if code not in self.used:
                self.used.add(code)
                return code


def _load_samples(data: Path, split: str, models: Mapping[str, Path | Parser], n_items: int,
                  rng: np.random.Generator) -> tuple[list[Sample], dict[str, dict[str, np.ndarray]], LabelSet, str]:
    ds = load(data)
    meta = ds.metadata(split)
    parsers = {m: p if isinstance(p, Parser) else MaskFolderParser(p, labels=ds.labels) for m, p in models.items()}
    ids, bins = list(meta["id"]), list(meta["pose_bin"])
    # A folder may cover only part of the split; a live parser can label anything.
    ok = [i for i, sid in enumerate(ids) if all(sid in getattr(p, "available", {sid}) for p in parsers.values())]
    if len(ok) < n_items:
        raise StudyError(f"only {len(ok)} of {len(ids)} {split} images have predictions from every model, "
                         f"{n_items} asked", hint="lower --n-items or complete the prediction folders")
    chosen = set(stratified_pick([ids[i] for i in ok], [bins[i] for i in ok], n_items, rng))
    samples = [s for s in ds.iter_samples(split) if s.id in chosen]
    samples.sort(key=lambda s: s.id)
    preds = {m: dict(zip([s.id for s in samples], p.predict([s.image for s in samples], [s.id for s in samples]),
                         strict=True)) for m, p in parsers.items()}
    return samples, preds, ds.labels, ds.revision


def build_study(models: Mapping[str, str | Path | Parser], data: str | Path, out: str | Path, n_items: int, seed: int,
                split: str = "test", mode: str = "rating", n_checks: int | None = None,
                overwrite: bool = False) -> StudySummary:
    """Write a study folder (see ``layout``) atomically; returns counts.

    ``models`` maps a name to a folder of ``{id}.png`` predictions or to any ``Parser``.
    ``n_items`` images are drawn evenly over pose bins. ``rating`` makes one item per (image, model);
    ``pairwise`` one per (image, model pair); ``both`` does both. ``n_checks`` attention checks
    (default: about one task in ten, at least 2) are added to each kind of task.
    """
    out, data = Path(out), Path(data)
    models = {m: p if isinstance(p, Parser) else Path(p) for m, p in models.items()}
    if mode not in MODES:
        raise StudyError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if mode != "rating" and len(models) < 2:
        raise StudyError("pairwise studies need at least two models")
    bad = [m for m in models if not _NAME.match(m) or m == ATTENTION]
    if bad:
        raise StudyError(f"model name {bad[0]!r} must be letters, digits, _.+- and not {ATTENTION!r}")
    if n_items < 1:
        raise StudyError("--n-items must be at least 1")
    if out.exists() and not overwrite:
        raise StudyError("already exists", out, hint="pass --overwrite or choose another --out")
    check_output_folder(out)
    if (out / DB).exists():
        raise StudyError("holds collected ratings; refusing to overwrite it", out, hint="choose another --out")
    rng = np.random.default_rng(seed)
    samples, preds, labels, revision = _load_samples(data, split, models, n_items, rng)
    code = _Codes(rng)
    names = list(models)

    tmp = temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        media = tmp / MEDIA
        media.mkdir()

        def save(array: np.ndarray, prefix: str) -> str:
            name = f"{code(prefix)}.png"
            write_png(media / name, array)
            return f"{MEDIA}/{name}"

        image_of = {s.id: save(s.image, "i") for s in samples}
        overlay_of = {(s.id, m): save(labels.overlay(s.image, preds[m][s.id]), "o") for s in samples for m in names}
        tasks: list[Task] = []
        key: list[KeyEntry] = []

        def add(kind: str, s: Sample, overlays: tuple[str, ...], models_: tuple[str, ...], check: str = "") -> None:
            item = code("r" if kind == "rating" else "p")
            tasks.append(Task(item, kind, image_of[s.id], overlays))
            key.append(KeyEntry(item, kind, s.id, s.pose_bin, models_, check))

        kinds = ["rating", "pairwise"] if mode == "both" else [mode]
        n_checks_done = 0
        for kind in kinds:
            n_real = 0
            for s in samples:
                if kind == "rating":
                    for m in names:
                        add(kind, s, (overlay_of[s.id, m],), (m,))
                        n_real += 1
                else:
                    for a, b in itertools.combinations(names, 2):
                        add(kind, s, (overlay_of[s.id, a], overlay_of[s.id, b]), (a, b))
                        n_real += 1
            k = max(2, round(n_real / 10)) if n_checks is None else n_checks
            for j in range(k):
                s = samples[j % len(samples)]
                other = samples[(j + 1) % len(samples)].mask if len(samples) > 1 else None
                check = CHECK_KINDS[j % len(CHECK_KINDS)] if other is not None else "shifted"
                bad = save(labels.overlay(s.image, corrupt(s.mask, check, other)), "o")
                if kind == "rating":
                    add(kind, s, (bad,), (ATTENTION,), check)
                else:
                    good = names[j % len(names)]
                    add(kind, s, (overlay_of[s.id, good], bad), (good, ATTENTION), check)
            n_checks_done += k

        write_manifest(tmp, Manifest(tasks=tasks, mode=mode, seed=seed))
        info = {"models": {m: str(p.resolve()) if isinstance(p, Path) else f"parser:{p.name}"
                           for m, p in models.items()}, "data": str(data.resolve()),
                "dataset_revision": revision, "split": split, "n_items": n_items, "seed": seed, "mode": mode,
                "created": datetime.now(UTC).isoformat(timespec="seconds")}
        write_key(tmp, key, info)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    n_rating = sum(t.kind == "rating" for t in tasks)
    return StudySummary(out, len(samples), n_rating, len(tasks) - n_rating, n_checks_done)
