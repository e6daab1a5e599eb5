"""The refinement's own report: initial parser vs refined labels against ground truth, by pose bin and region.

The report folder appears whole or not at all: it is written into a hidden sibling (``.<name>.tmp-*``) and
swapped into place (``replace_dir``), so a kill while its figures are drawn leaves the previous report (or
none) and a temporary folder that the next write removes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.files import atomic_write, json_dumps_strict, recover_dir, replace_dir, temp_dir
from facebench.labels import FACEBENCH
from facebench.metrics import CONVENTION, Evaluation, iou_f1, summary
from facebench.pose import POSE_BIN_NAMES

EXTREME = ("profile", "rear")


def _mean_f1(ev: Evaluation, groups: tuple[str, ...] | None = None) -> float:
    pi = ev.per_image
    if groups is not None:
        pi = pi[np.isin(np.asarray(ev.groups), groups)]
    return float(summary(pi.sum(0))["mean_f1_fg"]) if len(pi) else float("nan")


def before_after_tables(q: dict[str, Evaluation]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(by pose bin, by region at |yaw| ≥ 60°) for input and novel views, initial vs refined."""
    rows = []
    for where in ("input", "novel"):
        ini, ref = q.get(f"{where}/initial"), q.get(f"{where}/refined")
        if ini is None or ref is None or not ref.matrices:
            continue
        for b in (*POSE_BIN_NAMES, "all"):
            groups = None if b == "all" else (b,)
            n = len(ref.matrices) if groups is None else int(np.isin(ref.groups, groups).sum())
            if n == 0:
                continue
            i, r = _mean_f1(ini, groups) if ini.matrices else float("nan"), _mean_f1(ref, groups)
            rows.append({"views": where, "pose_bin": b, "n": n, "initial_f1": i, "refined_f1": r, "gain": r - i})
    by_bin = pd.DataFrame(rows)
    reg = []
    for where in ("input", "novel"):
        ini, ref = q.get(f"{where}/initial"), q.get(f"{where}/refined")
        if ref is None or not ref.matrices:
            continue
        pick = lambda ev: ev.per_image[np.isin(np.asarray(ev.groups), EXTREME)].sum(0)  # noqa: E731
        _, fr = iou_f1(pick(ref))
        # A mask folder can't label new views: the refined column stands alone, the initial one is NaN.
        fi = iou_f1(pick(ini))[1] if ini is not None and ini.matrices else np.full_like(fr, np.nan)
        for k, name in enumerate(FACEBENCH.names[1:], start=1):
            reg.append({"views": where, "region": name, "initial_f1": fi[k], "refined_f1": fr[k],
                        "gain": fr[k] - fi[k]})
    return by_bin, pd.DataFrame(reg)


def headline(by_bin: pd.DataFrame, q: dict[str, Evaluation]) -> dict[str, float]:
    """The numbers the issue asks for: gain at |yaw| ≥ 60° on new views, and the frontal change."""
    out = {}
    ini, ref = q.get("novel/initial"), q.get("novel/refined")
    if ini is not None and ref is not None and ini.matrices and ref.matrices:
        out["f1_gain_yaw60"] = _mean_f1(ref, EXTREME) - _mean_f1(ini, EXTREME)
        out["f1_delta_frontal"] = _mean_f1(ref, ("frontal",)) - _mean_f1(ini, ("frontal",))
        out["refined_f1_yaw60"] = _mean_f1(ref, EXTREME)
        out["initial_f1_yaw60"] = _mean_f1(ini, EXTREME)
    return out


def agreement_table(q: dict[str, Evaluation]) -> pd.DataFrame:
    """Refined labels re-rendered at the input cameras against the initial parser's masks there, by pose bin:
    the one thing measurable without ground truth (agreement, not accuracy)."""
    ev = q.get("input/agreement")
    rows = []
    if ev is not None and ev.matrices:
        for b in (*POSE_BIN_NAMES, "all"):
            groups = None if b == "all" else (b,)
            n = len(ev.matrices) if groups is None else int(np.isin(ev.groups, groups).sum())
            if n:
                rows.append({"pose_bin": b, "n": n, "agreement_f1": _mean_f1(ev, groups)})
    return pd.DataFrame(rows)


def rgb_table(rgb: list[dict]) -> pd.DataFrame:
    """New views' RGB against the true renders of the same cameras, by pose bin (mean PSNR dB and SSIM over
    the true head; see ``fidelity``)."""
    if not rgb:
        return pd.DataFrame(columns=["pose_bin", "n", "psnr_db", "ssim"])
    df = pd.DataFrame(rgb).dropna(subset=["psnr"])
    rows = []
    for b in (*POSE_BIN_NAMES, "all"):
        sel = df if b == "all" else df[df["bin"] == b]
        if len(sel):
            rows.append({"pose_bin": b, "n": len(sel), "psnr_db": float(sel["psnr"].mean()),
                         "ssim": float(sel["ssim"].mean())})
    return pd.DataFrame(rows)


def write_quality_report(q: dict[str, Evaluation], examples: list[dict], out: Path, title: str,
                         notes: list[str] = (), inputs: list[dict] = (), new_views: list[dict] = (),
                         rgb: list[dict] = ()) -> dict:
    """quality.json, CSVs, figures and report.md; returns the headline numbers (empty without ground truth).

    With ground truth (synthetic captures): initial vs refined scored against it. Without: it says so, and
    shows what can be seen and measured anyway (overlays, agreement with the parser on the input views).
    ``out`` is replaced whole (see the module docstring)."""
    out = Path(out)
    recover_dir(out)  # a killed earlier write's temporary folder
    tmp = temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        head = _write_report(q, examples, tmp, title, notes, inputs, new_views, rgb_table(list(rgb)))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return head


def _write_report(q: dict[str, Evaluation], examples: list[dict], out: Path, title: str, notes, inputs,
                  new_views, rgb: pd.DataFrame) -> dict:
    """Every file of the report into ``out`` (a fresh folder); returns the headline numbers."""
    by_bin, by_region = before_after_tables(q)
    agree = agreement_table(q)
    head = headline(by_bin, q)
    if len(rgb):
        every = rgb[rgb["pose_bin"] == "all"].iloc[0]
        head["rgb_psnr_new_views"], head["rgb_ssim_new_views"] = float(every["psnr_db"]), float(every["ssim"])
        atomic_write(out / "rgb_by_pose_bin.csv", rgb.to_csv(index=False))
    has_truth = len(by_bin) > 0
    atomic_write(out / "by_pose_bin.csv", by_bin.to_csv(index=False))
    atomic_write(out / "by_region_yaw60.csv", by_region.to_csv(index=False))
    atomic_write(out / "agreement_by_pose_bin.csv", agree.to_csv(index=False))
    atomic_write(out / "quality.json", json_dumps_strict({
        "ground_truth": has_truth, "headline": head, "convention": CONVENTION,
        "by_pose_bin": by_bin.to_dict("records"), "agreement_by_pose_bin": agree.to_dict("records"),
        "rgb_by_pose_bin": rgb.to_dict("records")}, indent=1))
    figs = []
    if has_truth:
        figs.append(_bin_figure(by_bin, out / "before_after_by_bin.png"))
    if examples:
        rows = [(f"{e['id']}\nyaw {e['yaw']:+.0f}°", e["image"], e["truth"], e["initial"], e["refined"])
                for e in examples if e.get("initial") is not None]
        if rows:
            figs.append(_overlay_figure(rows, ("image", "truth", "initial parser", "refined"), out /
                                        "before_after_overlays.png"))
    if inputs:
        rows = [(f"{e['id']}\nyaw {e['yaw']:+.0f}°", e["image"], e["initial"], e["refined"]) for e in inputs]
        figs.append(_overlay_figure(rows, ("input image", "initial parser", "refined, re-rendered here"),
                                    out / "input_views.png"))
    if new_views:
        order = {b: i for i, b in enumerate(POSE_BIN_NAMES)}
        picked = sorted(new_views, key=lambda e: (order.get(str(e["bin"]), 9), abs(e["yaw"])))
        rows = [(f"{e['id']}\n{e['bin']} yaw {e['yaw']:+.0f}°", e["image"], e["refined"]) for e in picked]
        figs.append(_overlay_figure(rows, ("new view", "refined labels"), out / "new_views_by_pose_bin.png"))
    if has_truth:
        md = [f"# {title}", "", "Initial parser masks vs refined labels, scored against exact ground truth.", ""]
    else:
        md = [f"# {title}", "", "**No ground truth for these captures**, so nothing here is an accuracy. Shown: the "
              "refined labels re-rendered at the input cameras against the initial parser's masks there "
              "(agreement by pose bin), overlays of input and new views, and coverage. Ground truth, where a capture "
              "has it, comes from each frame's `label_path` in transforms.json (facebench's own captures).", ""]
    if "f1_gain_yaw60" in head:
        md += [f"- new views at |yaw| ≥ 60°: mean F1 (fg) {head['initial_f1_yaw60']:.3f} → "
               f"{head['refined_f1_yaw60']:.3f} (gain {head['f1_gain_yaw60']:+.3f})",
               f"- new frontal views: change {head['f1_delta_frontal']:+.3f}", ""]
    if notes:
        md += ["## Head frames and coverage", "", *[f"- {n}" for n in notes], ""]
    if has_truth:
        md += ["## By pose bin (mean F1, foreground)", "", markdown_table(by_bin), "",
               "## By region, |yaw| ≥ 60°", "", markdown_table(by_region), ""]
    if len(rgb):
        md += ["## New views' RGB against the true renders (over the true head)", "", markdown_table(rgb), ""]
    if len(agree):
        md += ["## Agreement with the initial parser on the input views (mean F1 between them, foreground)", "",
               markdown_table(agree), ""]
    md += [f"![{p.stem}]({p.name})" for p in figs] + ["", "Convention: " + CONVENTION, ""]
    atomic_write(out / "report.md", "\n".join(md))
    return head


def markdown_table(df: pd.DataFrame) -> str:
    """A pipe table with floats to 3 decimals (no extra dependency)."""
    def cell(v) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _bin_figure(by_bin: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    tidy = by_bin[by_bin.pose_bin != "all"].melt(id_vars=["views", "pose_bin"], value_vars=["initial_f1", "refined_f1"],
                                                var_name="labels", value_name="mean F1 (fg)")
    tidy["labels"] = tidy["labels"].str.replace("_f1", "")
    g = sns.catplot(data=tidy, x="pose_bin", y="mean F1 (fg)", hue="labels", col="views", kind="bar", height=3.2,
                    aspect=1.3, order=[b for b in POSE_BIN_NAMES if b in set(tidy.pose_bin)])
    g.set(ylim=(0, 1))
    g.savefig(path, dpi=100)
    plt.close(g.figure)
    return path


def _overlay_figure(rows: list, titles: tuple[str, ...], path: Path) -> Path:
    """A grid: one row per example, the image then each label map over it (FACEBENCH palette)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(titles)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.1 * cols, 2.2 * len(rows) + 0.4), squeeze=False)
    for r, (cap, img, *maps) in enumerate(rows):
        pics = [img] + [FACEBENCH.overlay(img, m) if m is not None else np.zeros_like(img) for m in maps]
        for c, (pic, name) in enumerate(zip(pics, titles, strict=True)):
            axes[r, c].imshow(pic)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(name, fontsize=9)
        axes[r, 0].set_ylabel(cap, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
