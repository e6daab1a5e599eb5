"""The comparison's figures: F1 against |yaw| per model, per-region bars at profile, a qualitative grid."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from facebench.labels import FACEBENCH  # noqa: E402
from facebench.metrics import Evaluation, bootstrap_ci, summary  # noqa: E402

YAW_STEP = 15.0


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _colours(keys: list[str]) -> dict[str, tuple]:
    pal = sns.color_palette("colorblind", len(keys))
    return dict(zip(keys, pal, strict=True))


def yaw_curve(ev: Evaluation, n_boot: int, seed: int) -> list[tuple[float, float, float, float, int]]:
    """(|yaw| bin centre, mean F1 fg, lo, hi, n) per 15° bin, from the dataset-level matrix within each bin."""
    yaws = np.abs(np.asarray(ev.yaws))
    bins = np.minimum(yaws // YAW_STEP, 180 // YAW_STEP - 1).astype(int)
    pi = ev.per_image
    rows = []
    for b in np.unique(bins):
        sub = pi[bins == b]
        f = float(summary(sub.sum(0), ev.labels)["mean_f1_fg"])
        lo, hi = bootstrap_ci(sub, ev.labels, n_boot, seed)["mean_f1_fg"] if len(sub) > 1 else (np.nan, np.nan)
        rows.append(((b + 0.5) * YAW_STEP, f, lo, hi, int(len(sub))))
    return rows


def f1_vs_yaw(evals: dict[str, Evaluation], names: dict[str, str], path: Path, n_boot: int, seed: int) -> Path:
    """One curve per model (mean F1 fg per 15° |yaw| bin) with its 95% bootstrap band."""
    col = _colours(list(evals))
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for key, ev in evals.items():
        rows = yaw_curve(ev, n_boot, seed)
        x, y, lo, hi = (np.array([r[i] for r in rows], float) for i in range(4))
        ax.plot(x, y, marker="o", ms=3.5, lw=1.6, color=col[key], label=names[key])
        ax.fill_between(x, lo, hi, color=col[key], alpha=0.15, lw=0)
    for edge in (30, 60, 100):
        ax.axvline(edge, color="0.75", lw=0.8, zorder=0)
    ax.set_xlim(0, 180)
    ax.set_ylim(0, 1)
    ax.set_xlabel("|yaw| (degrees; grey lines: pose-bin edges 30 / 60 / 100)")
    ax.set_ylabel("mean F1 (foreground)")
    ax.set_title("Mean F1 against |yaw| (15° bins, 95% bootstrap bands)")
    ax.legend(fontsize=8, loc="upper right")
    return _save(fig, path)


def region_bars(scores: dict[str, dict], names: dict[str, str], group: str, path: Path) -> Path:
    """Grouped horizontal bars: F1 per region (rows) for every model, with 95% intervals, in one pose group."""
    keys = list(scores)
    regions = [r for r in FACEBENCH.names[1:] if any(
        scores[k][group].get("regions", {}).get(r, {}).get("support_px", 0) > 0 for k in keys)]
    col = _colours(keys)
    h = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(7.5, 0.12 * len(regions) * len(keys) + 1.4))
    y = np.arange(len(regions))
    for i, k in enumerate(keys):
        reg = scores[k][group].get("regions", {})
        f = np.array([np.nan if reg[r]["f1"] is None else reg[r]["f1"] for r in regions], float)
        lo = np.array([np.nan if reg[r]["lo"] is None else reg[r]["lo"] for r in regions], float)
        hi = np.array([np.nan if reg[r]["hi"] is None else reg[r]["hi"] for r in regions], float)
        err = np.vstack([np.nan_to_num(f - lo), np.nan_to_num(hi - f)]).clip(0)
        ax.barh(y + (i - (len(keys) - 1) / 2) * h, np.nan_to_num(f), height=h, xerr=err, color=col[k],
                label=names[k], capsize=1.5, error_kw={"lw": 0.7})
    ax.set_yticks(y, regions)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (95% bootstrap interval)")
    n = scores[keys[0]][group].get("n_images", 0)
    ax.set_title(f"F1 per region at {group} (n={n} test images)")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def extreme_grid(rows: list[dict], names: dict[str, str], path: Path) -> Path:
    """Rows: extreme-pose test images; columns: image, truth, then each model's prediction as an overlay."""
    keys = list(names)
    cols = ["image", "truth", *keys]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.55 * len(cols), 1.65 * len(rows) + 0.5), squeeze=False)
    for r, row in enumerate(rows):
        img = row["image"]
        pics = [img, FACEBENCH.overlay(img, row["truth"], 0.6)] + [FACEBENCH.overlay(img, row["pred"][k], 0.6)
                                                                    for k in keys]
        for c, pic in enumerate(pics):
            ax = axes[r, c]
            ax.imshow(pic)
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= 2:
                ax.set_xlabel(f"F1 {row['f1'][keys[c - 2]]:.2f}", fontsize=7, labelpad=1)
            if r == 0:
                title = names[cols[c]] if c >= 2 else cols[c]
                ax.set_title(textwrap.fill(title, 22), fontsize=7)  # long model names must not run together
        axes[r, 0].set_ylabel(f"yaw {row['yaw']:+.0f}°\npitch {row['pitch']:+.0f}°", fontsize=7)
    fig.suptitle("Extreme poses (|yaw| ≥ 60°): predictions over the test image; F1 = mean F1 fg of that image",
                 fontsize=8)
    return _save(fig, path)
