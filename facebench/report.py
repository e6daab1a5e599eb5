"""A report folder: metrics.json, CSVs, figures, report.md and a self-contained report.html."""

from __future__ import annotations

import base64
import html
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from facebench import figures
from facebench.evaluate import EvalRun, predictions_for
from facebench.files import atomic_write, json_dumps_strict, recover_dir, replace_dir, temp_dir
from facebench.metrics import CONVENTION, iou_f1
from facebench.outputs import check_report_folder
from facebench.pose import POSE_BIN_NAMES

YAW_STEP = 15.0


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("facebench", "numpy", "torch", "datasets", "scikit-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def per_region_table(scores: dict) -> pd.DataFrame:
    rows = []
    for name, v in scores["per_class"].items():
        ci_f1 = scores["ci95"].get(f"f1/{name}", [np.nan, np.nan])
        ci_iou = scores["ci95"].get(f"iou/{name}", [np.nan, np.nan])
        rows.append({"region": name, "iou": v["iou"], "iou_lo": ci_iou[0], "iou_hi": ci_iou[1],
                     "f1": v["f1"], "f1_lo": ci_f1[0], "f1_hi": ci_f1[1], "support_px": v["support"]})
    return pd.DataFrame(rows)


def per_bin_table(by_bin: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for b, s in by_bin.items():
        lo, hi = s["ci95"].get("mean_f1_fg", [np.nan, np.nan])
        row = {"pose_bin": b, "n_images": s["n_images"], "mean_f1_fg": s["mean_f1_fg"], "lo": lo, "hi": hi,
               "miou": s["miou"], "miou_fg": s["miou_fg"], "mean_f1_fg_merged": s["mean_f1_fg_merged"]}
        row.update({f"f1/{k}": v["f1"] for k, v in s["per_class"].items() if k != "background"})
        rows.append(row)
    return pd.DataFrame(rows)


def yaw_curve(run: EvalRun) -> pd.DataFrame:
    """Per-region F1 from dataset-level confusion within each 15° |yaw| bin."""
    ev = run.evaluation
    pi = ev.per_image
    bins = np.minimum(np.abs(np.asarray(ev.yaws)) // YAW_STEP, 180 // YAW_STEP - 1).astype(int)
    rows = []
    for b in np.unique(bins):
        _, f1 = iou_f1(pi[bins == b].sum(0))
        for k, name in enumerate(ev.labels.names[1:], start=1):
            if not np.isnan(f1[k]):
                rows.append({"class_id": k, "region": name, "abs_yaw": (b + 0.5) * YAW_STEP, "f1": f1[k]})
    return pd.DataFrame(rows)


def _fmt(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"


def write_report(run: EvalRun, out: str | Path, model_name: str, n_boot: int = 1000, seed: int = 0,
                 n_examples: int = 4, keep: tuple[str, ...] = ()) -> Path:
    """Write the full report folder; returns its path.

    The folder appears whole or not at all: it is written into a hidden sibling and swapped into place, so a
    kill while figures are drawn leaves the previous report, never a mix of two runs. The subfolders named in
    ``keep`` (evaluate's prediction cache) are carried over from the previous report by rename."""
    out = check_report_folder(Path(out).resolve(), keep)  # resolved: "--out ." has a parent and a name
    recover_dir(out)
    tmp = temp_dir(out.parent, prefix=f".{out.name}.tmp-")
    try:
        _write_report_files(run, tmp, model_name, n_boot, seed, n_examples)
        for name in keep:
            if (out / name).is_dir() and not (tmp / name).exists():
                (out / name).rename(tmp / name)
        replace_dir(tmp, out)
    except BaseException:
        for name in keep:  # a carried-over cache goes back where it was
            if (tmp / name).is_dir() and not (out / name).exists() and out.is_dir():
                (tmp / name).rename(out / name)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_report_files(run: EvalRun, out: Path, model_name: str, n_boot: int, seed: int, n_examples: int) -> None:
    """Every file of the report into ``out`` (a fresh folder)."""
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    ev = run.evaluation
    overall = ev.scores(n_boot=n_boot, seed=seed)
    by_bin = {b: ev.scores(b, n_boot=n_boot, seed=seed) for b in POSE_BIN_NAMES if b in ev.group_names()}
    region = per_region_table(overall)
    bins = per_bin_table(by_bin)
    metrics = {
        "model": model_name,
        "dataset": str(run.dataset.root),
        "dataset_revision": run.dataset.revision,
        "split": run.split,
        "convention": CONVENTION,
        "n_bootstrap": n_boot,
        "seed": seed,
        "versions": _versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "overall": overall,
        "by_pose_bin": by_bin,
    }
    if run.label_policy is not None:
        metrics["label_policy"] = run.label_policy.to_dict()
    if run.warnings:
        metrics["warnings"] = run.warnings
    atomic_write(out / "metrics.json", json_dumps_strict(metrics, indent=1))  # NaN -> null
    atomic_write(out / "per_region.csv", region.to_csv(index=False).encode())
    atomic_write(out / "per_pose_bin.csv", bins.to_csv(index=False).encode())
    ev.save(out / "evaluation.npz")  # per-image confusion matrices: paired comparisons, F1 by part size

    figs = {
        "F1 per region": figures.region_bars(region[region.region != "background"], fig_dir / "per_region_f1.png"),
        "Mean F1 by pose bin": figures.bin_bars(bins, fig_dir / "per_pose_bin.png"),
        "F1 against |yaw|": figures.f1_vs_yaw(yaw_curve(run), fig_dir / "f1_vs_yaw.png"),
        "Confusion matrix": figures.confusion_heatmap(ev.total(), ev.labels, fig_dir / "confusion.png"),
    }
    per_img = ev.per_image_mean_f1()
    order = [i for i in np.argsort(per_img, kind="stable") if not np.isnan(per_img[i])]
    k = min(n_examples, len(order) // 2 or len(order))
    for title, idx in (("Worst images", order[:k]), ("Best images", order[::-1][:k])):
        ex = predictions_for(run, [ev.ids[i] for i in idx])
        score = dict(zip(ev.ids, per_img, strict=True))
        rows = [(f"{i}\nyaw {y:+.0f}°, F1 {score[i]:.2f}", img, t, p) for i, y, img, t, p in ex]
        if rows:
            figs[title] = figures.overlay_grid(rows, ev.labels, fig_dir / f"{title.split()[0].lower()}.png", title)

    md = _markdown(metrics, region, bins, figs, out)
    atomic_write(out / "report.md", md.encode())
    atomic_write(out / "report.html", _html(metrics, region, bins, figs).encode())


def _headline(m: dict) -> list[str]:
    o = m["overall"]
    ci = o["ci95"].get("mean_f1_fg", [np.nan, np.nan])
    return [
        f"- **mean F1 (foreground)**: {_fmt(o['mean_f1_fg'])} [{_fmt(ci[0])}, {_fmt(ci[1])}]",
        f"- mIoU (with background): {_fmt(o['miou'])}; mIoU (foreground): {_fmt(o['miou_fg'])}",
        f"- left/right merged: mean F1 {_fmt(o['mean_f1_fg_merged'])}, mIoU {_fmt(o['miou_merged'])}",
        f"- images: {o['n_images']}; pixel accuracy {_fmt(o['pixel_acc'])}",
    ]


def _markdown(m: dict, region: pd.DataFrame, bins: pd.DataFrame, figs: dict[str, Path], out: Path) -> str:
    lines = [f"# facebench report: {m['model']}", "",
             f"Dataset `{m['dataset']}` (revision `{m['dataset_revision']}`), split `{m['split']}`.", "",
             *[f"**Warning:** {w}" for w in m.get("warnings", [])], "",
             *_headline(m), "", "## By pose bin", "",
             "| pose bin | n | mean F1 fg | 95% CI | mIoU | mIoU fg | mean F1 fg (merged) |",
             "|---|---|---|---|---|---|---|"]
    for _, r in bins.iterrows():
        lines.append(f"| {r.pose_bin} | {r.n_images} | {_fmt(r.mean_f1_fg)} | [{_fmt(r.lo)}, {_fmt(r.hi)}] | "
                     f"{_fmt(r.miou)} | {_fmt(r.miou_fg)} | {_fmt(r.mean_f1_fg_merged)} |")
    lines += ["", "## Per region", "", "| region | IoU | F1 | F1 95% CI | support (px) |", "|---|---|---|---|---|"]
    for _, r in region.iterrows():
        lines.append(f"| {r.region} | {_fmt(r.iou)} | {_fmt(r.f1)} | [{_fmt(r.f1_lo)}, {_fmt(r.f1_hi)}] | "
                     f"{r.support_px} |")
    if "label_policy" in m:
        from facebench.importers.policy import LabelPolicy

        lines += ["", "## Dataset labels", "", *LabelPolicy.from_dict(m["label_policy"]).describe()]
    lines += ["", "## Figures", ""]
    lines += [f"![{t}]({p.relative_to(out).as_posix()})" for t, p in figs.items()]
    lines += ["", "## Convention", "", m["convention"], "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()), ""]
    return "\n".join(lines)


def _img_tag(p: Path, alt: str) -> str:
    data = base64.b64encode(p.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>' \
           f"{html.escape(alt)}</figcaption></figure>"


def _html(m: dict, region: pd.DataFrame, bins: pd.DataFrame, figs: dict[str, Path]) -> str:
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}th{background:#f3f3f3}img{max-width:100%}figure{margin:1em 0}"
             ".conv{background:#f8f8f8;padding:.8em;border-left:4px solid #888}")
    head = "".join(f"<li>{html.escape(x[2:]).replace('**', '')}</li>" for x in _headline(m))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>facebench report: "
            f"{html.escape(m['model'])}</title><style>{style}</style></head><body>"
            f"<h1>facebench report: {html.escape(m['model'])}</h1>"
            f"<p>Dataset <code>{html.escape(m['dataset'])}</code> (revision <code>{m['dataset_revision']}</code>),"
            f" split <code>{m['split']}</code>.</p>"
            + "".join(f"<p class='conv'><b>Warning:</b> {html.escape(w)}</p>" for w in m.get("warnings", []))
            + f"<ul>{head}</ul>"
            f"<h2>By pose bin</h2>{bins.to_html(index=False, float_format=_fmt, na_rep='—')}"
            f"<h2>Per region</h2>{region.to_html(index=False, float_format=_fmt, na_rep='—')}"
            "<h2>Figures</h2>" + "".join(_img_tag(p, t) for t, p in figs.items()) +
            f"<h2>Convention</h2><p class='conv'>{html.escape(m['convention'])}</p></body></html>")
