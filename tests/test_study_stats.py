"""Study statistics against known truths: simulated raters, and published reference values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from facebench.study import stats
from facebench.study.aggregate import Settings, aggregate
from facebench.study.ratings import validate_ratings
from facebench.study.simulate import detection_rate, simulate_pairs, simulate_ratings

NOISY = {"noise_sd": 1.0, "rater_sd": 0.5, "image_sd": 0.6}  # harder than the defaults

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", example C: 4 observers, 12 units, gaps.
KRIPP_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def _tidy(matrix: list[list[int | None]]) -> pd.DataFrame:
    """raters × units -> rater, item, rating rows (gaps skipped)."""
    return pd.DataFrame([(f"c{r}", f"u{u:02d}", v) for r, row in enumerate(matrix) for u, v in enumerate(row)
                         if v is not None], columns=["rater", "item", "rating"])


def _alpha_by_hand(matrix: list[list[int | None]], values: list[int]) -> float:
    """Ordinal alpha from the coincidence matrix, following Krippendorff's own recipe step by step."""
    idx = {v: k for k, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for unit in zip(*matrix, strict=True):
        vals = [v for v in unit if v is not None]
        m = len(vals)
        if m < 2:
            continue  # a lone value is not pairable
        for a in range(m):
            for b in range(m):
                if a != b:
                    o[idx[vals[a]], idx[vals[b]]] += 1 / (m - 1)
    n_c = o.sum(1)
    n = n_c.sum()
    d2 = np.zeros_like(o)
    for c in range(len(values)):
        for k in range(len(values)):
            lo, hi = min(c, k), max(c, k)
            d2[c, k] = (n_c[lo : hi + 1].sum() - (n_c[c] + n_c[k]) / 2) ** 2
    observed = (o * d2).sum()
    expected = (np.outer(n_c, n_c) * d2).sum() / (n - 1)
    return 1 - observed / expected


def test_krippendorff_alpha_matches_published_example_and_hand_computation():
    df = _tidy(KRIPP_2011)
    assert stats.krippendorff_alpha(df, (1, 5), "nominal") == pytest.approx(0.743, abs=5e-4)
    assert stats.krippendorff_alpha(df, (1, 5), "interval") == pytest.approx(0.849, abs=5e-4)
    ordinal = stats.krippendorff_alpha(df, (1, 5), "ordinal")
    assert ordinal == pytest.approx(0.815, abs=5e-4)
    assert ordinal == pytest.approx(_alpha_by_hand(KRIPP_2011, [1, 2, 3, 4, 5]), abs=1e-9)


def test_icc_matches_shrout_fleiss():
    df = pd.DataFrame([(f"t{t}", f"j{j}", v) for t, row in enumerate(SHROUT_FLEISS) for j, v in enumerate(row)],
                      columns=["item", "rater", "rating"])
    out = stats.icc(df)
    assert round(out["icc_a1"], 2) == 0.29  # ICC(2,1) in Shrout & Fleiss' Table 4
    assert round(out["icc_ak"], 2) == 0.62  # ICC(2,4)
    assert out["icc_a1_lo"] < out["icc_a1"] < out["icc_a1_hi"]


def test_half_point_better_model_is_detected():
    df = simulate_ratings({"A": 0.5, "B": 0.0}, n_raters=20, n_items=30, seed=11, **NOISY)
    fr, post = stats.compare_models(df)
    assert fr["n_blocks"] == 30 and fr["p"] < 0.05
    row = post.iloc[0]
    assert row["p_holm"] < 0.05 and row["mean_diff"] == pytest.approx(0.5, abs=0.2) and row["rbc"] > 0.5
    mos = stats.mos_table(df, ["model"], n_boot=1000, seed=0).set_index("model")
    assert mos.loc["A", "mos"] - mos.loc["B", "mos"] == pytest.approx(0.5, abs=0.2)


def test_identical_models_false_positive_rate_near_nominal():
    n_sims = 200
    hits = round(detection_rate(0.0, n_raters=20, n_items=30, n_sims=n_sims, seed=1000, **NOISY) * n_sims)
    lo, hi = binom.ppf(0.0005, n_sims, 0.05), binom.isf(0.0005, n_sims, 0.05)  # 99.9% band around 5%
    assert lo <= hits <= hi, f"{hits}/{n_sims} false positives, expected {lo:.0f}..{hi:.0f}"


def test_two_way_bootstrap_is_wider_than_resampling_ratings_alone():
    df = simulate_ratings({"A": 0.0}, n_raters=20, n_items=30, seed=3, **NOISY)
    y = df["rating"].to_numpy(float)
    lo, hi = stats.two_way_bootstrap(df["rater"], df["sample"], y, n_boot=2000, seed=0)
    rng = np.random.default_rng(0)
    naive = np.quantile([rng.choice(y, y.size).mean() for _ in range(2000)], [0.025, 0.975])
    assert lo < y.mean() < hi
    assert (hi - lo) > 1.5 * (naive[1] - naive[0])  # raters and images add variance a per-rating bootstrap misses
    assert stats.two_way_bootstrap(df["rater"], df["sample"], y, 500, seed=5) == \
        stats.two_way_bootstrap(df["rater"], df["sample"], y, 500, seed=5)


def test_bradley_terry_recovers_known_strengths():
    pairs = simulate_pairs({"A": 1.0, "B": 0.0, "C": -1.0}, n_raters=20, n_items=10, seed=4)
    bt = stats.bradley_terry(pairs, n_boot=100, seed=0).set_index("model")
    assert list(bt.index) == ["A", "B", "C"]
    for m, truth in {"A": 1.0, "B": 0.0, "C": -1.0}.items():  # 400 comparisons per model: SE about 0.1
        assert bt.loc[m, "bt"] == pytest.approx(truth, abs=0.3)
        assert bt.loc[m, "lo"] < bt.loc[m, "bt"] < bt.loc[m, "hi"]
    assert bt["wins"].sum() == len(pairs)


def test_inattentive_raters_are_excluded_and_change_nothing_else():
    df = simulate_ratings({"A": 0.5, "B": 0.0}, n_raters=20, n_items=30, seed=8, n_checks=4, inattentive=3)
    r = validate_ratings(df.astype(str))
    res = aggregate(r, Settings(n_boot=200))
    assert res.excluded == ["r17", "r18", "r19"]
    assert res.kept.ratings["rater"].nunique() == 17
    assert (res.kept.ratings["attention"] == "").all()
    assert res.friedman["p"] < 0.05
