"""Reading a ratings CSV, with one-line errors for the mistakes people make with spreadsheets.

Rating rows need ``rater, sample, model, rating``; pairwise rows (``kind == pairwise``) need
``rater, sample, model_a, model_b, winner``. Optional: ``item`` (default: sample/model), ``pose_bin``
(default ``all``), ``presented_at``/``answered_at`` (ISO times: answer durations are reported),
``attention`` (non-empty marks an attention check), ``kind`` (default: ``pairwise``
if the row has a ``winner``, else ``rating``).
``facebench study export`` writes all of these.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from facebench.errors import require_exists
from facebench.study.errors import InvalidRatings
from facebench.study.layout import ATTENTION
from facebench.study.order import RATER_ID, RATER_RULE, show_rater

RATING_COLUMNS = ("rater", "sample", "model", "rating")
PAIR_COLUMNS = ("rater", "sample", "model_a", "model_b", "winner")


@dataclass
class Ratings:
    """Validated ratings. ``ratings``: one row per rating; ``pairs``: one row per pairwise choice."""

    ratings: pd.DataFrame  # rater, item, sample, model, rating (int), pose_bin, attention
    pairs: pd.DataFrame  # rater, item, sample, model_a, model_b, winner, pose_bin, attention
    source: Path | None = None
    sha256: str = ""
    scale: tuple[int, int] = (1, 5)

    @property
    def models(self) -> list[str]:
        names = set(self.ratings["model"]) | set(self.pairs["model_a"]) | set(self.pairs["model_b"])
        return sorted(names - {ATTENTION})


def _line(df: pd.DataFrame, mask: pd.Series) -> str:
    """CSV line number(s) of the first offending rows (header is line 1)."""
    idx = list(df.index[mask][:3])
    more = " …" if int(mask.sum()) > 3 else ""
    return ", ".join(str(i + 2) for i in idx) + more


def _need(df: pd.DataFrame, cols: tuple[str, ...], what: str, path: Path | None) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InvalidRatings(f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)} for {what} rows", path,
                             hint=f"expected {', '.join(cols)}")


def validate_ratings(df: pd.DataFrame, scale: tuple[int, int] = (1, 5), models: Collection[str] | None = None,
                     path: Path | None = None) -> Ratings:
    """Check a raw table of strings and split it into ratings and pairs; raise InvalidRatings otherwise."""
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    for col in ("kind", "attention", "pose_bin", "item"):
        if col not in df.columns:
            df[col] = ""
    df = df.fillna("").astype(str)
    if "rater" in df.columns:  # checked before stripping: "bob\n" is not "bob" (older servers stored both)
        raw = df["rater"]
        bad = (raw.str.strip() != "") & ~raw.str.fullmatch(RATER_ID.pattern)
        if bad.any():
            first, n = df.index[bad][0], int(bad.sum())
            rows = f"line {first + 2}, {n} row{'s' * (n > 1)}"
            raise InvalidRatings(f"rater id {show_rater(raw[first])} ({rows}) must be {RATER_RULE}", path,
                                 hint="rename or drop that rater's rows: ids are compared exactly")
    df = df.apply(lambda c: c.str.strip())
    if "winner" in df.columns:  # without a kind column, a row with a winner is a pairwise choice
        df.loc[(df["kind"] == "") & (df["winner"] != ""), "kind"] = "pairwise"
    df.loc[df["kind"] == "", "kind"] = "rating"
    df.loc[df["pose_bin"] == "", "pose_bin"] = "all"
    bad_kind = ~df["kind"].isin(["rating", "pairwise"])
    if bad_kind.any():
        raise InvalidRatings(f"kind must be rating or pairwise (line {_line(df, bad_kind)})", path)
    if df.empty:
        raise InvalidRatings("no rows", path)
    is_pair = df["kind"] == "pairwise"
    rat, pairs = df[~is_pair].copy(), df[is_pair].copy()
    known = None if models is None else set(models) | {ATTENTION}

    if len(rat):
        _need(df, RATING_COLUMNS, "rating", path)
        for col in ("rater", "sample", "model"):
            empty = rat[col] == ""
            if empty.any():
                raise InvalidRatings(f"empty {col} (line {_line(rat, empty)})", path)
        values = pd.to_numeric(rat["rating"], errors="coerce")
        lo, hi = scale
        bad = values.isna() | (values != values.round()) | (values < lo) | (values > hi)
        if bad.any():
            first = rat.loc[bad, "rating"].iloc[0]
            raise InvalidRatings(f"rating {first!r} is not an integer in {lo}..{hi} (line {_line(rat, bad)})", path,
                                 hint="ratings use the study's Likert scale")
        rat["rating"] = values.astype(int)
        rat.loc[rat["model"] == ATTENTION, "attention"] = rat.loc[rat["model"] == ATTENTION, "attention"].replace(
            "", "check")
        if known is not None:
            unknown = ~rat["model"].isin(known)
            if unknown.any():
                names = ", ".join(sorted(set(rat.loc[unknown, "model"]))[:5])
                raise InvalidRatings(f"unknown model(s) {names} (line {_line(rat, unknown)})", path,
                                     hint=f"expected one of {', '.join(sorted(models))}")
        rat.loc[rat["item"] == "", "item"] = rat["sample"] + "/" + rat["model"]

    if len(pairs):
        _need(df, PAIR_COLUMNS, "pairwise", path)
        for col in PAIR_COLUMNS:
            empty = pairs[col] == ""
            if empty.any():
                raise InvalidRatings(f"empty {col} (line {_line(pairs, empty)})", path)
        same = pairs["model_a"] == pairs["model_b"]
        if same.any():
            raise InvalidRatings(f"model_a equals model_b (line {_line(pairs, same)})", path)
        if known is not None:
            unknown = ~(pairs["model_a"].isin(known) & pairs["model_b"].isin(known))
            if unknown.any():
                raise InvalidRatings(f"unknown model in pair (line {_line(pairs, unknown)})", path,
                                     hint=f"expected one of {', '.join(sorted(models))}")
        loose = ~((pairs["winner"] == pairs["model_a"]) | (pairs["winner"] == pairs["model_b"]))
        if loose.any():
            raise InvalidRatings(f"winner is neither model_a nor model_b (line {_line(pairs, loose)})", path)
        is_check = (pairs["model_a"] == ATTENTION) | (pairs["model_b"] == ATTENTION)
        pairs.loc[is_check & (pairs["attention"] == ""), "attention"] = "check"
        ordered = pairs[["model_a", "model_b"]].apply(sorted, axis=1, result_type="expand")
        pairs.loc[pairs["item"] == "", "item"] = (pairs["sample"] + "/" + ordered[0] + "|" + ordered[1])

    both = pd.concat([rat[["rater", "item"]], pairs[["rater", "item"]]])
    dup = both.duplicated(keep="first")
    if dup.any():
        r, i = both[dup].iloc[0]
        raise InvalidRatings(f"rater {r} answered item {i} twice (line {_line(both, dup)})", path,
                             hint="keep one answer per (rater, item)")

    timed = ["seconds"] if {"presented_at", "answered_at"} <= set(df.columns) else []
    for part in (rat, pairs):
        if timed and len(part):
            shown = pd.to_datetime(part["presented_at"], errors="coerce", utc=True, format="ISO8601")
            done = pd.to_datetime(part["answered_at"], errors="coerce", utc=True, format="ISO8601")
            part["seconds"] = (done - shown).dt.total_seconds()
    rcols = ["rater", "item", "sample", "model", "rating", "pose_bin", "attention", *timed]
    pcols = ["rater", "item", "sample", "model_a", "model_b", "winner", "pose_bin", "attention", *timed]
    rat = rat[rcols].reset_index(drop=True) if len(rat) else pd.DataFrame(columns=rcols)
    pairs = pairs[pcols].reset_index(drop=True) if len(pairs) else pd.DataFrame(columns=pcols)
    rat["rating"] = rat["rating"].astype(int)
    return Ratings(rat, pairs, path, scale=scale)


def read_ratings(path: str | Path, scale: tuple[int, int] = (1, 5),
                 models: Collection[str] | None = None) -> Ratings:
    """Read and validate a CSV; the result remembers the file's sha256 for the report."""
    path = require_exists(path, "ratings CSV")
    raw = path.read_bytes()
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InvalidRatings(f"not a readable CSV ({str(e).splitlines()[0]})", path) from None
    out = validate_ratings(df, scale, models, path.resolve())
    out.sha256 = hashlib.sha256(raw).hexdigest()
    return out
