"""From validated ratings to every number of the report: exclusions first, then the statistics.

Exclusion rule (stated in the report): an attention check is failed when its known-bad overlay is
rated ``>= fail_at_least`` or preferred over a real one; raters with more than ``max_failures``
failed checks are dropped entirely, before anything else is computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from facebench.pose import POSE_BIN_NAMES
from facebench.study import stats
from facebench.study.ratings import Ratings


@dataclass
class Settings:
    """How the numbers were made; printed in the report."""

    n_boot: int = 2000
    seed: int = 0
    fail_at_least: int = 3
    max_failures: int = 0
    block: str = "sample"
    alpha_level: str = "ordinal"


@dataclass
class StudyResult:
    """Everything ``report`` writes. Tables are tidy DataFrames; scalars live in dicts."""

    settings: Settings
    scale: tuple[int, int]
    sha256: str
    attention: pd.DataFrame
    excluded: list[str]
    n_raters_total: int
    kept: Ratings
    mos: pd.DataFrame
    mos_by_pose: pd.DataFrame
    agreement: dict
    friedman: dict
    posthoc: pd.DataFrame
    bradley_terry: pd.DataFrame
    preferences: pd.DataFrame
    friedman_by_pose: pd.DataFrame = field(default_factory=pd.DataFrame)


def by_pose_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in the canonical pose-bin order (frontal → rear), other bin names after, alphabetically."""
    if df.empty:
        return df
    rank = {b: i for i, b in enumerate(POSE_BIN_NAMES)}
    key = df["pose_bin"].map(lambda b: (rank.get(b, len(rank)), b))
    return df.iloc[sorted(range(len(df)), key=lambda i: key.iloc[i])].reset_index(drop=True)


def exclude(r: Ratings, settings: Settings) -> tuple[pd.DataFrame, list[str]]:
    """Attention table per rater, and the raters to drop."""
    att = stats.attention_failures(r.ratings, r.pairs, settings.fail_at_least)
    att["excluded"] = att["n_failed"] > settings.max_failures
    timed = [t[["rater", "seconds"]] for t in (r.ratings, r.pairs) if "seconds" in t.columns and len(t)]
    if timed:  # answer durations are reported (to spot speeders), not used as a rule
        med = pd.concat(timed).groupby("rater")["seconds"].median().rename("median_seconds")
        att = att.merge(med, left_on="rater", right_index=True, how="left")
    return att, sorted(att.loc[att["excluded"], "rater"])


def aggregate(r: Ratings, settings: Settings | None = None) -> StudyResult:
    """Apply the exclusion rule, then compute MOS, agreement, tests and Bradley–Terry scores."""
    s = settings or Settings()
    att, excluded = exclude(r, s)
    keep_r = r.ratings[~r.ratings["rater"].isin(excluded) & (r.ratings["attention"] == "")].reset_index(drop=True)
    keep_p = r.pairs[~r.pairs["rater"].isin(excluded) & (r.pairs["attention"] == "")].reset_index(drop=True)
    kept = Ratings(keep_r, keep_p, r.source, r.sha256, r.scale)

    mos = stats.mos_table(keep_r, ["model"], r.scale, s.n_boot, s.seed)
    by_pose = by_pose_order(stats.mos_table(keep_r, ["pose_bin", "model"], r.scale, s.n_boot, s.seed))
    agreement = {"krippendorff_alpha": np.nan, "n_items": 0}
    if len(keep_r):
        agreement = {"krippendorff_alpha": stats.krippendorff_alpha(keep_r, r.scale, s.alpha_level),
                     "n_items": int(keep_r["item"].nunique()), **stats.icc(keep_r)}
    friedman, post = stats.compare_models(keep_r, s.block) if len(keep_r) else ({}, pd.DataFrame())
    rows = []
    for b, g in keep_r.groupby("pose_bin") if len(keep_r) else []:
        fr, _ = stats.compare_models(g, s.block)
        rows.append({"pose_bin": b, **fr})
    return StudyResult(
        settings=s, scale=r.scale, sha256=r.sha256, attention=att, excluded=excluded,
        n_raters_total=len(att), kept=kept, mos=mos, mos_by_pose=by_pose, agreement=agreement,
        friedman=friedman, posthoc=post, bradley_terry=stats.bradley_terry(keep_p, min(s.n_boot, 500), s.seed),
        preferences=stats.preference_table(keep_p), friedman_by_pose=by_pose_order(pd.DataFrame(rows)),
    )
