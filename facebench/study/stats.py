"""The statistics of a rating study, as plain functions of tidy tables.

- MOS with a 95% interval from a two-way bootstrap: raters *and* images are resampled, since a
  study should generalise over both (a one-way bootstrap over ratings is far too narrow).
- Agreement: Krippendorff's alpha (ordinal, ``krippendorff``) and ICC (``pingouin``).
- Comparisons: Friedman over images (blocks; each cell the mean over raters), then pairwise
  Wilcoxon signed-rank tests with Holm's correction, with rank-biserial effect sizes.
- Pairwise preferences: Bradley–Terry log-strengths (``choix``), intervals by resampling raters.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd

from facebench.study.layout import ATTENTION


def _codes(values: pd.Series) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(values, sort=True)
    return codes, len(uniques)


def two_way_bootstrap(raters: pd.Series, samples: pd.Series, y: np.ndarray, n_boot: int = 2000,
                      seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean when raters and samples are resampled independently.

    Each replicate draws raters and samples with replacement; an observation counts as often as
    its rater times its sample was drawn. Vectorised with per-(rater, sample) sums.
    """
    if len(y) == 0 or n_boot <= 0:
        return float("nan"), float("nan")
    r, n_r = _codes(raters)
    s, n_s = _codes(samples)
    sums = np.zeros((n_r, n_s))
    counts = np.zeros((n_r, n_s))
    np.add.at(sums, (r, s), y)
    np.add.at(counts, (r, s), 1.0)
    rng = np.random.default_rng(seed)
    wr = rng.multinomial(n_r, np.full(n_r, 1 / n_r), size=n_boot).astype(float)
    ws = rng.multinomial(n_s, np.full(n_s, 1 / n_s), size=n_boot).astype(float)
    num = ((wr @ sums) * ws).sum(1)
    den = ((wr @ counts) * ws).sum(1)
    means = num[den > 0] / den[den > 0]
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return float(lo), float(hi)


def mos_table(ratings: pd.DataFrame, by: list[str], scale: tuple[int, int] = (1, 5), n_boot: int = 2000,
              seed: int = 0) -> pd.DataFrame:
    """Per group: n, raters, images, MOS with 95% two-way bootstrap interval, median, SD, rating counts."""
    rows = []
    levels = range(scale[0], scale[1] + 1)
    for key, g in ratings.groupby(by, sort=True) if by else [((), ratings)]:
        key = key if isinstance(key, tuple) else (key,)
        y = g["rating"].to_numpy(float)
        lo, hi = two_way_bootstrap(g["rater"], g["sample"], y, n_boot, seed)
        row = dict(zip(by, key, strict=True))
        row.update(n=len(y), n_raters=g["rater"].nunique(), n_images=g["sample"].nunique(), mos=y.mean(),
                   lo=lo, hi=hi, median=float(np.median(y)), sd=float(y.std(ddof=1)) if len(y) > 1 else np.nan)
        counts = np.bincount(g["rating"].to_numpy(int) - scale[0], minlength=len(levels))
        row.update({f"n_{v}": int(c) for v, c in zip(levels, counts, strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def attention_failures(ratings: pd.DataFrame, pairs: pd.DataFrame, fail_at_least: int = 3) -> pd.DataFrame:
    """Per rater: attention checks seen and failed (a bad overlay rated ``>= fail_at_least``, or preferred)."""
    rc = ratings[ratings["attention"] != ""]
    pc = pairs[pairs["attention"] != ""]
    failed = pd.concat([
        pd.DataFrame({"rater": rc["rater"], "failed": rc["rating"] >= fail_at_least}),
        pd.DataFrame({"rater": pc["rater"], "failed": pc["winner"] == ATTENTION}),
    ])
    everyone = pd.DataFrame({"rater": sorted(set(ratings["rater"]) | set(pairs["rater"]))})
    agg = failed.groupby("rater")["failed"].agg(n_checks="count", n_failed="sum").reset_index()
    out = everyone.merge(agg, on="rater", how="left").fillna({"n_checks": 0, "n_failed": 0})
    return out.astype({"n_checks": int, "n_failed": int})


def krippendorff_alpha(ratings: pd.DataFrame, scale: tuple[int, int] = (1, 5), level: str = "ordinal") -> float:
    """Krippendorff's alpha over items (rows: raters, columns: items, NaN where not rated)."""
    import krippendorff

    table = ratings.pivot_table(index="rater", columns="item", values="rating", aggfunc="first")
    if table.shape[0] < 2 or (table.notna().sum(axis=0) >= 2).sum() < 1:
        return float("nan")
    data = table.to_numpy(float)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level,
                                    value_domain=list(range(scale[0], scale[1] + 1))))


def icc(ratings: pd.DataFrame) -> dict:
    """Two-way random, absolute agreement ICC for one rater (A,1) and the rater mean (A,k), with 95% CI.

    pingouin needs a complete items × raters table, so items not rated by every rater are dropped
    (``icc_n_items`` says how many remained).
    """
    import pingouin as pg

    raters = ratings["rater"].nunique()
    per_item = ratings.groupby("item")["rater"].nunique()
    full = ratings[ratings["item"].isin(per_item[per_item == raters].index)]
    out = {"icc_a1": np.nan, "icc_a1_lo": np.nan, "icc_a1_hi": np.nan, "icc_ak": np.nan, "icc_ak_lo": np.nan,
           "icc_ak_hi": np.nan, "icc_n_items": int(full["item"].nunique()), "n_raters": int(raters)}
    if out["icc_n_items"] < 3 or raters < 2:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = pg.intraclass_corr(data=full, targets="item", raters="rater", ratings="rating")
    # pingouin 0.7 names the rows ICC(A,1)/ICC(A,k); older versions ICC2/ICC2k. Both are positions 1 and 4.
    for name, row in (("icc_a1", res.iloc[1]), ("icc_ak", res.iloc[4])):
        out[name] = float(row["ICC"])
        out[f"{name}_lo"], out[f"{name}_hi"] = (float(v) for v in row["CI95"])
    return out


def block_means(ratings: pd.DataFrame, block: str = "sample") -> pd.DataFrame:
    """blocks × models table of mean ratings, keeping only blocks where every model was rated."""
    table = ratings.pivot_table(index=block, columns="model", values="rating", aggfunc="mean")
    return table.dropna()


def compare_models(ratings: pd.DataFrame, block: str = "sample") -> tuple[dict, pd.DataFrame]:
    """Friedman's test across models, then Holm-corrected Wilcoxon signed-rank tests for every pair.

    Returns (friedman dict, post-hoc table). The blocks are images by default: each model's cell is
    the mean over the raters who saw that image, so the test generalises over images.
    """
    import pingouin as pg

    table = block_means(ratings, block)
    models = list(table.columns)
    empty = pd.DataFrame(columns=["a", "b", "n", "mean_diff", "W", "p_unc", "p_holm", "rbc", "cles"])
    fr = {"n_blocks": len(table), "k": len(models), "Q": np.nan, "dof": np.nan, "p": np.nan, "kendall_w": np.nan,
          "block": block}
    if len(models) < 2 or len(table) < 2:
        return fr, empty
    long = table.reset_index().melt(id_vars=block, var_name="model", value_name="rating")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = pg.friedman(data=long, dv="rating", within="model", subject=block).iloc[0]
    fr.update(Q=float(res["Q"]), dof=int(res["ddof1"]), p=float(res["p_unc"]), kendall_w=float(res["W"]))
    rows = []
    for a, b in itertools.combinations(models, 2):
        x, y = table[a].to_numpy(), table[b].to_numpy()
        if np.allclose(x, y):
            rows.append({"a": a, "b": b, "n": len(x), "mean_diff": 0.0, "W": np.nan, "p_unc": 1.0, "rbc": 0.0,
                         "cles": 0.5})
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = pg.wilcoxon(x, y).iloc[0]
        rows.append({"a": a, "b": b, "n": len(x), "mean_diff": float(np.mean(x - y)), "W": float(w["W_val"]),
                     "p_unc": float(w["p_val"]), "rbc": float(w["RBC"]), "cles": float(w["CLES"])})
    post = pd.DataFrame(rows)
    post["p_holm"] = pg.multicomp(post["p_unc"].to_numpy(), method="holm")[1]
    return fr, post[empty.columns]


def _bt_params(pairs: pd.DataFrame, models: list[str]) -> np.ndarray:
    import choix

    index = {m: i for i, m in enumerate(models)}
    loser = np.where(pairs["winner"] == pairs["model_a"], pairs["model_b"], pairs["model_a"])
    data = [(index[w], index[lo]) for w, lo in zip(pairs["winner"], loser, strict=True)]
    params = choix.ilsr_pairwise(len(models), data, alpha=0.01)
    return params - params.mean()


def bradley_terry(pairs: pd.DataFrame, n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """Per model: Bradley–Terry log-strength (mean 0), 95% interval over resampled raters, wins, comparisons.

    A small ridge (``alpha=0.01``) keeps the estimate finite when a model wins every comparison.
    """
    pairs = pairs[pairs["attention"] == ""]
    models = sorted(set(pairs["model_a"]) | set(pairs["model_b"]))
    if len(models) < 2 or pairs.empty:
        return pd.DataFrame(columns=["model", "bt", "lo", "hi", "p_win_vs_rest", "wins", "comparisons"])
    params = _bt_params(pairs, models)
    rng = np.random.default_rng(seed)
    raters = pairs["rater"].unique()
    groups = {r: g for r, g in pairs.groupby("rater")}
    boots = []
    for _ in range(n_boot):
        sample = pd.concat([groups[r] for r in rng.choice(raters, size=len(raters), replace=True)])
        if set(sample["model_a"]) | set(sample["model_b"]) == set(models):
            boots.append(_bt_params(sample, models))
    boots = np.array(boots) if boots else np.full((1, len(models)), np.nan)
    lo, hi = np.nanquantile(boots, [0.025, 0.975], axis=0)
    rows = []
    for i, m in enumerate(models):
        others = [j for j in range(len(models)) if j != i]
        p_win = float(np.mean([1 / (1 + np.exp(params[j] - params[i])) for j in others]))
        involved = (pairs["model_a"] == m) | (pairs["model_b"] == m)
        rows.append({"model": m, "bt": float(params[i]), "lo": float(lo[i]), "hi": float(hi[i]),
                     "p_win_vs_rest": p_win, "wins": int((pairs["winner"] == m).sum()),
                     "comparisons": int(involved.sum())})
    return pd.DataFrame(rows).sort_values("bt", ascending=False).reset_index(drop=True)


def preference_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per model pair: how often each side won, and the share won by ``a`` with a Wilson 95% interval."""
    from scipy.stats import binomtest

    pairs = pairs[pairs["attention"] == ""]
    rows = []
    ab = pairs[["model_a", "model_b"]]
    for (a, b), g in pairs.groupby([ab.min(axis=1), ab.max(axis=1)]):
        wins_a = int((g["winner"] == a).sum())
        test = binomtest(wins_a, len(g))
        ci = test.proportion_ci(method="wilson")
        rows.append({"a": a, "b": b, "n": len(g), "wins_a": wins_a, "share_a": wins_a / len(g), "lo": ci.low,
                     "hi": ci.high, "p_binom": test.pvalue})
    return pd.DataFrame(rows)
