"""Seaborn figures of a study: MOS with intervals, MOS by pose bin, rating distributions, Bradley–Terry."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from facebench.pose import POSE_BIN_NAMES  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def mos_bars(mos: pd.DataFrame, scale: tuple[int, int], path: Path) -> Path:
    """One point per model with its 95% two-way bootstrap interval, on the full scale."""
    sns.set_theme(style="whitegrid")
    mos = mos.sort_values("mos", ascending=False).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.55 * len(mos)))
    y = np.arange(len(mos))
    ax.errorbar(mos["mos"], y, xerr=[mos["mos"] - mos["lo"], mos["hi"] - mos["mos"]], fmt="o", color="#2458d6",
                capsize=4, lw=1.6)
    for yi, (m, n) in enumerate(zip(mos["mos"], mos["n"], strict=True)):
        ax.annotate(f"{m:.2f}  (n={n})", (m, yi), xytext=(0, 8), textcoords="offset points", ha="center", fontsize=8)
    ax.set_yticks(y, mos["model"])
    ax.set_xlim(scale[0] - 0.1, scale[1] + 0.1)
    ax.set_ylim(len(mos) - 0.3, -0.6)  # best model on top
    ax.set_xlabel(f"mean opinion score ({scale[0]}–{scale[1]}), 95% CI over raters and images")
    ax.set_title("MOS per model")
    return _save(fig, path)


def mos_by_pose(table: pd.DataFrame, scale: tuple[int, int], path: Path) -> Path:
    """MOS per pose bin, one line per model, with interval bars."""
    sns.set_theme(style="whitegrid")
    bins = [b for b in POSE_BIN_NAMES if b in set(table["pose_bin"])] + sorted(
        set(table["pose_bin"]) - set(POSE_BIN_NAMES))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    models = sorted(table["model"].unique())
    palette = sns.color_palette("colorblind", len(models))
    width = 0.6 / max(1, len(models))
    for k, (m, colour) in enumerate(zip(models, palette, strict=True)):
        t = table[table["model"] == m].set_index("pose_bin").reindex(bins)
        x = np.arange(len(bins)) + (k - (len(models) - 1) / 2) * width
        ax.errorbar(x, t["mos"], yerr=[t["mos"] - t["lo"], t["hi"] - t["mos"]], fmt="o-", capsize=3, color=colour,
                    label=m)
    ax.set_xticks(np.arange(len(bins)), bins)
    ax.set_ylim(scale[0] - 0.1, scale[1] + 0.1)
    ax.set_ylabel("MOS (95% CI)")
    ax.set_title("MOS by pose bin")
    ax.legend(title="model", fontsize=8)
    return _save(fig, path)


def distribution(mos: pd.DataFrame, scale: tuple[int, int], path: Path) -> Path:
    """Share of each rating per model, as stacked horizontal bars (red = low, green = high)."""
    sns.set_theme(style="white")
    levels = list(range(scale[0], scale[1] + 1))
    counts = mos[[f"n_{v}" for v in levels]].to_numpy(float)
    share = counts / counts.sum(1, keepdims=True)
    colours = sns.color_palette("RdYlGn", len(levels))
    fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.5 * len(mos)))
    left = np.zeros(len(mos))
    for j, v in enumerate(levels):
        ax.barh(mos["model"], share[:, j], left=left, color=colours[j], label=str(v), edgecolor="white")
        for i, s in enumerate(share[:, j]):
            if s >= 0.07:
                ax.text(left[i] + s / 2, i, f"{s:.0%}", ha="center", va="center", fontsize=8)
        left += share[:, j]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of ratings")
    ax.invert_yaxis()
    ax.legend(title="rating", ncols=len(levels), loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8,
              frameon=False)
    return _save(fig, path)


def bradley_terry(bt: pd.DataFrame, path: Path) -> Path:
    """Bradley–Terry log-strengths with 95% intervals over resampled raters."""
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.5 * len(bt)))
    y = np.arange(len(bt))
    ax.errorbar(bt["bt"], y, xerr=[bt["bt"] - bt["lo"], bt["hi"] - bt["bt"]], fmt="s", color="#8a3ffc", capsize=4)
    ax.axvline(0, color="#888", lw=1, ls="--")
    ax.set_yticks(y, bt["model"])
    ax.invert_yaxis()
    ax.set_xlabel("Bradley–Terry log-strength (mean 0), 95% CI over raters")
    ax.set_title("Pairwise preference")
    return _save(fig, path)
