"""Tables and claims from the models' per-image confusion matrices (facebench.metrics does the arithmetic).

Groups are the four pose bins, the whole split (``all``) and ``|yaw|>=60`` (profile and rear together,
where the claims are made). Intervals are percentile bootstraps over images; differences between two
models use *paired* replicates (the same resampled images for both), since both models saw the same images.
"""

from __future__ import annotations

import math

import numpy as np

from facebench.metrics import Evaluation, bootstrap_ci, iou_f1, summary
from facebench.pose import POSE_BIN_NAMES

YAW60 = "|yaw|>=60"
GROUPS: tuple[str, ...] = ("all", *POSE_BIN_NAMES, YAW60)
GAIN_MIN = 0.10  # claim 1: (b) − baseline at |yaw| ≥ 60°, in mean F1 (fg)
FRONTAL_TOL = 0.01  # claim 2: (b) may lose at most this much mean F1 on frontal views
CLOSURE_MIN = 0.5  # claim 3: (b − a) / (c − a)


def group_mask(ev: Evaluation, group: str) -> np.ndarray:
    """Which images of ``ev`` belong to ``group``."""
    if group == "all":
        return np.ones(len(ev.ids), bool)
    if group == YAW60:
        return np.abs(np.asarray(ev.yaws)) >= 60
    return np.asarray(ev.groups) == group


def _num(x: float) -> float | None:
    """JSON-safe: NaN becomes null."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


def group_scores(ev: Evaluation, group: str, n_boot: int, seed: int) -> dict:
    """Mean F1 (fg) and mIoU with 95% intervals, and per-region F1 with intervals, for one group."""
    pi = ev.per_image[group_mask(ev, group)]
    if len(pi) == 0:
        return {"n_images": 0}
    cm = pi.sum(0)
    head = summary(cm, ev.labels)
    ci = bootstrap_ci(pi, ev.labels, n_boot, seed)
    _, f1 = iou_f1(cm)
    regions = {name: {"f1": _num(f1[k]), "lo": _num(ci[f"f1/{name}"][0]), "hi": _num(ci[f"f1/{name}"][1]),
                      "support_px": int(cm[k].sum())}
               for k, name in enumerate(ev.labels.names) if k > 0}
    return {"n_images": int(len(pi)),
            "mean_f1_fg": _num(head["mean_f1_fg"]), "mean_f1_fg_ci": [_num(v) for v in ci["mean_f1_fg"]],
            "miou": _num(head["miou"]), "miou_ci": [_num(v) for v in ci["miou"]],
            "mean_f1_fg_merged": _num(head["mean_f1_fg_merged"]), "regions": regions}


def paired_delta(a: Evaluation, b: Evaluation, group: str, n_boot: int, seed: int) -> dict:
    """Mean F1 (fg) of b minus a on the same images, with a paired 95% bootstrap interval."""
    if a.ids != b.ids:
        raise ValueError("models were scored on different images")
    m = group_mask(a, group)
    pa, pb = a.per_image[m].astype(np.float64), b.per_image[m].astype(np.float64)
    n, c = len(pa), a.labels.num_classes
    if n == 0:
        return {"delta": None, "ci": [None, None], "n_images": 0}
    w = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    fa = summary((w @ pa.reshape(n, c * c)).reshape(n_boot, c, c), a.labels)["mean_f1_fg"]
    fb = summary((w @ pb.reshape(n, c * c)).reshape(n_boot, c, c), b.labels)["mean_f1_fg"]
    d = fb - fa
    d = d[~np.isnan(d)]
    point = summary(pb.sum(0), b.labels)["mean_f1_fg"] - summary(pa.sum(0), a.labels)["mean_f1_fg"]
    lo, hi = (np.percentile(d, 2.5), np.percentile(d, 97.5)) if d.size else (np.nan, np.nan)
    return {"delta": _num(point), "ci": [_num(lo), _num(hi)], "n_images": int(n)}


def compare(evals: dict[str, Evaluation], n_boot: int, seed: int) -> dict:
    """Every model × group table, plus the three claims judged from them."""
    scores = {m: {g: group_scores(ev, g, n_boot, seed) for g in GROUPS} for m, ev in evals.items()}
    return {"groups": list(GROUPS), "scores": scores, "claims": claims(evals, scores, n_boot, seed)}


def claims(evals: dict[str, Evaluation], scores: dict, n_boot: int, seed: int) -> list[dict]:
    """The issue's three claims, each with its numbers and PASS/FAIL (None where it cannot be computed)."""
    base, raw, ref, orc = (evals[k] for k in ("baseline", "a_raw", "b_refined", "c_oracle"))
    f = {m: {g: scores[m][g].get("mean_f1_fg") for g in GROUPS} for m in scores}
    ci = {m: {g: scores[m][g].get("mean_f1_fg_ci", [None, None]) for g in GROUPS} for m in scores}
    out = []

    gain = paired_delta(base, ref, YAW60, n_boot, seed)
    b_lo, base_hi = ci["b_refined"][YAW60][0], ci["baseline"][YAW60][1]
    ok = None if gain["delta"] is None or b_lo is None or base_hi is None else bool(
        gain["delta"] >= GAIN_MIN and b_lo > base_hi)
    out.append({"id": "gain_yaw60", "statement": f"(b) beats the baseline at |yaw| ≥ 60° by ≥ {GAIN_MIN:.2f} mean F1 "
                "(fg), with non-overlapping 95% intervals",
                "baseline": f["baseline"][YAW60], "baseline_ci": ci["baseline"][YAW60],
                "refined": f["b_refined"][YAW60], "refined_ci": ci["b_refined"][YAW60],
                "delta": gain["delta"], "delta_ci_paired": gain["ci"], "n_images": gain["n_images"], "pass": ok})

    front = paired_delta(base, ref, "frontal", n_boot, seed)
    ok = None if front["delta"] is None else bool(front["delta"] >= -FRONTAL_TOL)
    out.append({"id": "frontal_within_1pt", "statement": f"(b) stays within {FRONTAL_TOL:.2f} mean F1 (fg) of the "
                "baseline on frontal views (a loss of more than that fails; a gain passes)",
                "baseline": f["baseline"]["frontal"], "refined": f["b_refined"]["frontal"],
                "delta": front["delta"], "delta_ci_paired": front["ci"], "n_images": front["n_images"], "pass": ok})

    closure = {}
    for g in ("all", YAW60):
        a, b, c = f["a_raw"][g], f["b_refined"][g], f["c_oracle"][g]
        closure[g] = None if None in (a, b, c) or c - a <= 0 else _num((b - a) / (c - a))
    ok = None if closure["all"] is None else bool(closure["all"] >= CLOSURE_MIN)
    out.append({"id": "gap_closure", "statement": f"(b) closes ≥ {CLOSURE_MIN:.0%} of the gap between (a) and (c): "
                "(b − a) / (c − a) in mean F1 (fg) on the whole test split (also shown at |yaw| ≥ 60°)",
                "raw": f["a_raw"]["all"], "refined": f["b_refined"]["all"], "oracle": f["c_oracle"]["all"],
                "closure": closure["all"], "closure_yaw60": closure[YAW60],
                "raw_yaw60": f["a_raw"][YAW60], "refined_yaw60": f["b_refined"][YAW60],
                "oracle_yaw60": f["c_oracle"][YAW60],
                "b_minus_a_ci_paired": paired_delta(raw, ref, "all", n_boot, seed)["ci"],
                "c_minus_a_ci_paired": paired_delta(raw, orc, "all", n_boot, seed)["ci"], "pass": ok})
    return out
