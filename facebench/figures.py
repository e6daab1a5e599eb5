"""Figures for reports: each function takes tidy data and writes one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from facebench.labels import LabelSet  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def region_bars(per_region: pd.DataFrame, path: Path, title: str = "F1 per region") -> Path:
    """Horizontal F1 bars with 95% bootstrap intervals; columns: region, f1, f1_lo, f1_hi."""
    df = per_region.dropna(subset=["f1"])
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(df) + 1.2))
    y = np.arange(len(df))
    err = np.vstack([df["f1"] - df["f1_lo"], df["f1_hi"] - df["f1"]]).clip(0)
    ax.barh(y, df["f1"], xerr=err, color=sns.color_palette("crest", len(df)), capsize=2)
    ax.set_yticks(y, df["region"])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (95% bootstrap interval)")
    ax.set_title(title)
    return _save(fig, path)


def f1_vs_yaw(tidy: pd.DataFrame, path: Path) -> Path:
    """One small panel per region: F1 against |yaw|; columns: region, abs_yaw, f1."""
    order = list(dict.fromkeys(tidy.sort_values("class_id")["region"]))
    g = sns.relplot(data=tidy, x="abs_yaw", y="f1", col="region", col_order=order, col_wrap=6, kind="line",
                    marker="o",
                    height=1.7, aspect=1.25, facet_kws={"ylim": (0, 1.02), "xlim": (0, 180)})
    g.set_titles("{col_name}")
    g.set_axis_labels("|yaw| (deg)", "F1")
    for ax in g.axes.flat:
        for x in (30, 60, 100):
            ax.axvline(x, color="0.8", lw=0.8, zorder=0)
    g.figure.suptitle("F1 against |yaw| (dataset-level per 15° bin; grey lines = pose-bin edges)", y=1.01)
    g.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(g.figure)
    return path


def confusion_heatmap(cm: np.ndarray, labels: LabelSet, path: Path) -> Path:
    """Row-normalised confusion matrix (rows: truth)."""
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(8.5, 7))
    sns.heatmap(norm, ax=ax, cmap="mako_r", vmin=0, vmax=1, xticklabels=labels.names, yticklabels=labels.names,
                cbar_kws={"label": "fraction of truth row"}, square=True, linewidths=0.2)
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth")
    ax.set_title("Confusion (row-normalised)")
    return _save(fig, path)


def overlay_grid(rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], labels: LabelSet, path: Path,
                 title: str) -> Path:
    """Each row: (caption, image, truth, prediction) shown as image | truth overlay | prediction overlay."""
    n = len(rows)
    fig, axes = plt.subplots(n, 3, figsize=(6.6, 2.25 * n + 0.4), squeeze=False)
    for r, (caption, img, true, pred) in enumerate(rows):
        for c, (pic, name) in enumerate(((img, "image"), (labels.overlay(img, true), "truth"),
                                         (labels.overlay(img, pred), "prediction"))):
            ax = axes[r, c]
            ax.imshow(pic)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
        axes[r, 0].set_ylabel(caption, fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def overlay_with_legend(image: np.ndarray, mask: np.ndarray, labels: LabelSet, path: Path, title: str = "") -> Path:
    """The photo beside its label map over it, with a legend of the classes present (their palette colours)."""
    from matplotlib.patches import Patch

    h, w = mask.shape
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6 * h / max(w, 1) + 0.6))
    for ax, pic in zip(axes, (image, labels.overlay(image, mask)), strict=True):
        ax.imshow(pic)
        ax.set_xticks([])
        ax.set_yticks([])
    present = [int(c) for c in np.unique(mask) if c < labels.num_classes and c != 0]
    handles = [Patch(color=np.array(labels.palette_array[c]) / 255, label=labels.names[c]) for c in present]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.12 if handles else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bin_bars(per_bin: pd.DataFrame, path: Path) -> Path:
    """Mean foreground F1 per pose bin with intervals; columns: pose_bin, mean_f1_fg, lo, hi, n_images."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    x = np.arange(len(per_bin))
    err = np.vstack([per_bin["mean_f1_fg"] - per_bin["lo"], per_bin["hi"] - per_bin["mean_f1_fg"]]).clip(0)
    ax.bar(x, per_bin["mean_f1_fg"], yerr=err, capsize=3, color=sns.color_palette("flare", len(per_bin)))
    ax.set_xticks(x, [f"{b}\n(n={n})" for b, n in zip(per_bin["pose_bin"], per_bin["n_images"], strict=True)])
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean F1 (foreground)")
    ax.set_title("By pose bin")
    return _save(fig, path)
