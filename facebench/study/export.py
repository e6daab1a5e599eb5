"""SQLite + key -> one tidy CSV, with the blinding undone: one row per (rater, item).

Columns: ``rater, item, kind, sample, pose_bin, model, rating, model_a, model_b, winner, attention,
position, swapped, presented_at, answered_at, updated_at, revisions``. Rating rows fill ``model`` and
``rating``; pairwise rows fill ``model_a``, ``model_b`` and ``winner``. Attention checks carry their
corruption in ``attention`` and the pseudo-model ``attention`` for the bad overlay.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from facebench.files import atomic_write
from facebench.study.errors import StudyError
from facebench.study.layout import DB, read_key
from facebench.study.store import Store

COLUMNS = ("rater", "item", "kind", "sample", "pose_bin", "model", "rating", "model_a", "model_b", "winner",
           "attention", "position", "swapped", "presented_at", "answered_at", "updated_at", "revisions")


def export_rows(folder: str | Path) -> list[dict]:
    """Every stored response joined with the key."""
    folder = Path(folder)
    if not (folder / DB).exists():
        raise StudyError(f"no {DB} yet: nobody has rated", folder, hint="run `facebench study serve` first")
    key, _ = read_key(folder)
    rows = []
    store = Store(folder / DB)
    try:
        responses = store.all_responses()
    finally:
        store.close()
    for r in responses:
        k = key.get(r.item)
        if k is None:
            raise StudyError(f"response for unknown item {r.item} (ratings from another study?)", folder / DB)
        row = dict.fromkeys(COLUMNS, "")
        row.update(rater=r.rater, item=r.item, kind=r.kind, sample=k.sample, pose_bin=k.pose_bin,
                   attention=k.attention, position=r.position, swapped=int(r.swapped),
                   presented_at=r.presented_at or "",
                   answered_at=r.answered_at, updated_at=r.updated_at, revisions=r.revisions)
        if k.kind == "rating":
            row.update(model=k.models[0], rating=r.value)
        else:
            shown = k.models[::-1] if r.swapped else k.models
            row.update(model_a=k.models[0], model_b=k.models[1], winner=shown[r.value - 1])
        rows.append(row)
    return rows


def export_csv(folder: str | Path, out: str | Path | None = None) -> tuple[Path, int]:
    """Write the CSV (default ``<study>/ratings.csv``) atomically; returns its path and row count."""
    rows = export_rows(folder)
    out = Path(out) if out else Path(folder) / "ratings.csv"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out, buf.getvalue().encode())
    return out, len(rows)
