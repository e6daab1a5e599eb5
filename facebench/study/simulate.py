"""Simulated raters with a known truth: for testing the statistics and for planning a study's size.

Rating model: ``latent = base + effect[model] + image + rater + noise`` (Gaussian parts), rounded
and clipped to the scale. Inattentive raters answer uniformly at random, attention checks included,
which is exactly what the exclusion rule must catch. Pairwise choices follow Bradley–Terry.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from facebench.pose import POSE_BIN_NAMES
from facebench.study.layout import ATTENTION


def simulate_ratings(effects: Mapping[str, float], n_raters: int = 20, n_items: int = 30, seed: int = 0,
                     base: float = 3.0, image_sd: float = 0.6, rater_sd: float = 0.4, noise_sd: float = 0.7,
                     scale: tuple[int, int] = (1, 5), n_checks: int = 0, inattentive: int = 0) -> pd.DataFrame:
    """Tidy rating rows (the columns ``study export`` writes) for every rater × image × model.

    The last ``inattentive`` raters answer at random. ``n_checks`` attention checks per rater show a
    bad overlay that attentive raters rate 1 or 2.
    """
    rng = np.random.default_rng(seed)
    lo, hi = scale
    names = list(effects)
    images = rng.normal(0, image_sd, n_items)
    raters = rng.normal(0, rater_sd, n_raters)
    bins = np.array([POSE_BIN_NAMES[i % len(POSE_BIN_NAMES)] for i in range(n_items)])
    r, i, m = (a.ravel() for a in np.meshgrid(np.arange(n_raters), np.arange(n_items), np.arange(len(names)),
                                               indexing="ij"))
    eff = np.array([effects[k] for k in names])
    latent = base + eff[m] + images[i] + raters[r] + rng.normal(0, noise_sd, r.size)
    y = np.clip(np.rint(latent), lo, hi).astype(int)
    careless = r >= n_raters - inattentive
    y[careless] = rng.integers(lo, hi + 1, int(careless.sum()))
    sample = np.char.add("img", np.char.zfill(i.astype(str), 3))
    model = np.array(names)[m]
    df = pd.DataFrame({"rater": np.char.add("r", np.char.zfill(r.astype(str), 2)), "item": np.char.add(
        np.char.add(sample, "/"), model), "sample": sample, "model": model, "rating": y, "pose_bin": bins[i],
        "attention": ""})
    if n_checks:
        rc, c = (a.ravel() for a in np.meshgrid(np.arange(n_raters), np.arange(n_checks), indexing="ij"))
        yc = rng.integers(lo, lo + 2, rc.size)
        bad = rc >= n_raters - inattentive
        yc[bad] = rng.integers(lo, hi + 1, int(bad.sum()))
        ci = c % n_items
        checks = pd.DataFrame({"rater": np.char.add("r", np.char.zfill(rc.astype(str), 2)),
                               "item": np.char.add("check", c.astype(str)),
                               "sample": np.char.add("img", np.char.zfill(ci.astype(str), 3)), "model": ATTENTION,
                               "rating": yc, "pose_bin": bins[ci], "attention": "shifted"})
        df = pd.concat([df, checks], ignore_index=True)
    return df


def simulate_pairs(strengths: Mapping[str, float], n_raters: int = 20, n_items: int = 30,
                   seed: int = 0) -> pd.DataFrame:
    """Pairwise rows: every rater compares every model pair on every image; P(a wins) = σ(s_a − s_b)."""
    rng = np.random.default_rng(seed)
    names = list(strengths)
    rows = []
    for r in range(n_raters):
        for i in range(n_items):
            for j, a in enumerate(names):
                for b in names[j + 1:]:
                    p = 1 / (1 + np.exp(strengths[b] - strengths[a]))
                    winner = a if rng.random() < p else b
                    rows.append((f"r{r:02d}", f"img{i:03d}/{a}|{b}", f"img{i:03d}", a, b, winner, "all", "",
                                 "pairwise"))
    return pd.DataFrame(rows, columns=["rater", "item", "sample", "model_a", "model_b", "winner", "pose_bin",
                                       "attention", "kind"])


def detection_rate(effect: float, n_raters: int = 20, n_items: int = 30, n_sims: int = 200, seed: int = 0,
                   alpha: float = 0.05, **kwargs) -> float:
    """Share of simulated two-model studies in which Friedman's test finds the difference (p < ``alpha``).

    With ``effect=0`` this is the false-positive rate; otherwise the power. Useful to size a study
    before recruiting raters. ``kwargs`` go to ``simulate_ratings``.
    """
    from facebench.study.stats import compare_models

    rng = np.random.default_rng(seed)
    hits = 0
    for s in rng.integers(0, 2**63 - 1, n_sims):
        df = simulate_ratings({"A": effect, "B": 0.0}, n_raters, n_items, seed=int(s), **kwargs)
        hits += compare_models(df)[0]["p"] < alpha
    return hits / n_sims
