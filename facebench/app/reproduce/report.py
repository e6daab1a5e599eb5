"""The comparison report folder: comparison.json / .md, CSVs and the three figures.

comparison.json holds only results and the scale (no clock times, no paths), so a rerun that
recomputes it writes the same bytes; timings go to ``timings.json`` beside the stages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facebench.app.reproduce import figures
from facebench.app.reproduce.compare import GROUPS, YAW60, compare
from facebench.files import atomic_write, json_dumps_strict
from facebench.metrics import CONVENTION, Evaluation, iou_f1

# Extreme-pose targets for the qualitative grid (yaw in degrees): both profiles, both rear quarters, the back.
GRID_YAWS = (75.0, -75.0, 130.0, -130.0, 180.0)


def _f(x) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"


def _ci(c) -> str:
    return f"[{_f(c[0])}, {_f(c[1])}]" if c else "—"


def tables(result: dict, names: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(model × group headline table, model × group × region table) as tidy frames."""
    head, region = [], []
    for m, by_group in result["scores"].items():
        for g, s in by_group.items():
            if not s.get("n_images"):
                continue
            head.append({"model": m, "label": names[m], "group": g, "n_images": s["n_images"],
                         "mean_f1_fg": s["mean_f1_fg"], "lo": s["mean_f1_fg_ci"][0], "hi": s["mean_f1_fg_ci"][1],
                         "miou": s["miou"], "miou_lo": s["miou_ci"][0], "miou_hi": s["miou_ci"][1],
                         "mean_f1_fg_merged": s["mean_f1_fg_merged"]})
            for r, v in s["regions"].items():
                region.append({"model": m, "group": g, "region": r, **v})
    return pd.DataFrame(head), pd.DataFrame(region)


def _claims_md(claims: list[dict]) -> list[str]:
    out = []
    for c in claims:
        verdict = {True: "**PASS**", False: "**FAIL**", None: "**n/a**"}[c["pass"]]
        out.append(f"- {verdict} — {c['statement']}.")
        if c["id"] == "gain_yaw60":
            out.append(f"  baseline {_f(c['baseline'])} {_ci(c['baseline_ci'])}, (b) {_f(c['refined'])} "
                       f"{_ci(c['refined_ci'])}; gain {_f(c['delta'])} (paired 95% CI {_ci(c['delta_ci_paired'])}); "
                       f"n = {c['n_images']} images.")
        elif c["id"] == "frontal_within_1pt":
            out.append(f"  baseline {_f(c['baseline'])}, (b) {_f(c['refined'])}; change {_f(c['delta'])} "
                       f"(paired 95% CI {_ci(c['delta_ci_paired'])}); n = {c['n_images']} images.")
        else:
            out.append(f"  whole split: (a) {_f(c['raw'])}, (b) {_f(c['refined'])}, (c) {_f(c['oracle'])} → "
                       f"closure {_f(c['closure'])} (b − a paired CI {_ci(c['b_minus_a_ci_paired'])}, c − a paired "
                       f"CI {_ci(c['c_minus_a_ci_paired'])}); at |yaw| ≥ 60°: (a) {_f(c['raw_yaw60'])}, "
                       f"(b) {_f(c['refined_yaw60'])}, (c) {_f(c['oracle_yaw60'])} → closure "
                       f"{_f(c['closure_yaw60'])}.")
            lo = c["c_minus_a_ci_paired"][0]
            if lo is not None and lo <= 0:
                out.append("  The gap c − a itself is within noise (its paired interval reaches 0), so the ratio is "
                           "unstable.")
    return out


def markdown(result: dict, names: dict[str, str], scale: dict, test_info: dict) -> str:
    lines = [f"# facebench reproduce: comparison ({scale['name']} scale)", "",
             f"Test split: {test_info['subjects']} held-out synthetic subjects × {test_info['views']} views at "
             f"{test_info['size']}² over every pose (test-subject stream, seed {test_info['seed']}); "
             f"{test_info['n_images']} images. Training: {scale['train_subjects']} synthetic subjects (seed "
             f"{scale['data_seed']}), {scale['new_views']} refined views each at {scale['size']}²; (a)–(c) also train "
             f"on the baseline's own frontal data ({scale['frontal_subjects']} recipe subjects × 12 views), (b′) "
             "does not. Every fine-tune "
             f"starts from the frontal baseline with {scale['steps']} steps × batch {scale['batch_size']}, seed "
             f"{scale['seed']}, SGD lr {scale['lr']:g} (10× outside the backbone), warm-up and poly decay.", "",
             "## Claims", "", *_claims_md(result["claims"]), "",
             "## Mean F1 (foreground) and mIoU by pose bin, 95% bootstrap intervals", "",
             "| model | pose bin | n | mean F1 fg | 95% CI | mIoU | 95% CI |", "|---|---|---|---|---|---|---|"]
    for m, by_group in result["scores"].items():
        for g in GROUPS:
            s = by_group[g]
            if s.get("n_images"):
                lines.append(f"| {names[m]} | {g} | {s['n_images']} | {_f(s['mean_f1_fg'])} | "
                             f"{_ci(s['mean_f1_fg_ci'])} | {_f(s['miou'])} | {_ci(s['miou_ci'])} |")
    for g in ("profile", YAW60):
        regions = list(next(iter(result["scores"].values()))[g].get("regions", {}))
        if not regions:
            continue
        lines += ["", f"## F1 per region at {g} (95% intervals in per_region.csv)", "",
                  "| region | " + " | ".join(names[m] for m in result["scores"]) + " |",
                  "|---|" + "---|" * len(result["scores"])]
        for r in regions:
            lines.append(f"| {r} | " + " | ".join(_f(result["scores"][m][g]["regions"][r]["f1"])
                                                 for m in result["scores"]) + " |")
    lines += ["", "## Figures", "", "![F1 against |yaw|](f1_vs_yaw.png)", "",
              "![F1 per region at profile](profile_regions.png)", "", "![extreme poses](extreme_grid.png)", "",
              "## Convention", "", CONVENTION, "",
              "Pose groups: frontal [0, 30), three_quarter [30, 60), profile [60, 100), rear [100, 180] by |yaw|; "
              "`|yaw|>=60` is profile and rear together. Model differences use paired bootstrap replicates "
              "(the same resampled images for both models).", ""]
    return "\n".join(lines)


def grid_rows(test: Path, checkpoints: dict[str, Path], evals: dict[str, Evaluation], per_yaw: int = 1) -> list[dict]:
    """Pick one test image nearest each GRID_YAWS target (distinct subjects where possible) and predict it."""
    from baselines.predict import load_parser
    from facebench.dataset import load

    ds = load(test)
    meta = ds.metadata("test")
    chosen, subjects = [], set()
    for target in GRID_YAWS:
        dist = np.abs(((meta.yaw - target + 180) % 360) - 180) + 1000 * meta.subject.isin(subjects)
        dist[np.abs(meta.yaw) < 60] = np.inf
        dist[meta.id.isin(chosen)] = np.inf
        if np.isfinite(dist).any():
            i = int(np.argmin(dist.to_numpy()))
            chosen.append(meta.id[i])
            subjects.add(meta.subject[i])
    samples = {s.id: s for s in ds.iter_samples("test") if s.id in set(chosen)}
    rows = [{"id": i, "image": samples[i].image, "truth": samples[i].mask, "yaw": samples[i].yaw,
             "pitch": samples[i].pitch, "pred": {}, "f1": {}} for i in chosen]
    for key, ckpt in checkpoints.items():
        preds = load_parser(str(ckpt)).predict([r["image"] for r in rows])
        for r, p in zip(rows, preds, strict=True):
            r["pred"][key] = p
            k = evals[key].ids.index(r["id"])
            _, f1 = iou_f1(evals[key].matrices[k])
            r["f1"][key] = float(np.nanmean(f1[1:]))
    return rows


def write_comparison(out: Path, evals: dict[str, Evaluation], names: dict[str, str], checkpoints: dict[str, Path],
                     test: Path, scale: dict, test_info: dict) -> dict:
    """Write the whole report folder into ``out``; returns the comparison dict (as in comparison.json)."""
    out.mkdir(parents=True, exist_ok=True)
    result = compare(evals, scale["n_boot"], scale["seed"])
    doc = {"scale": scale, "test": test_info, "models": names, **result}
    atomic_write(out / "comparison.json", json_dumps_strict(doc, indent=1, sort_keys=False) + "\n")
    head, region = tables(result, names)
    atomic_write(out / "by_pose_bin.csv", head.to_csv(index=False).encode())
    atomic_write(out / "per_region.csv", region.to_csv(index=False).encode())
    figures.f1_vs_yaw(evals, names, out / "f1_vs_yaw.png", min(scale["n_boot"], 300), scale["seed"])
    figures.region_bars(result["scores"], names, "profile", out / "profile_regions.png")
    figures.extreme_grid(grid_rows(test, checkpoints, evals), names, out / "extreme_grid.png")
    atomic_write(out / "comparison.md", markdown(doc, names, scale, test_info).encode())
    return doc
