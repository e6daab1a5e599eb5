"""Per-region F1 against the size of the part in pixels (issue #22: is framing what limits small parts?).

Reads the per-image confusion matrices an evaluation keeps (``evaluation.npz`` from ``facebench
reproduce``'s evaluate stage, or ``Evaluation.save``) and, for every image of one pose bin and every region
present in its ground truth, pairs the part's true pixel count with the image's F1 for that region.

    .venv/bin/python benchmarks/f1_by_part_size.py NAME=PATH/evaluation.npz [NAME=...] [--bin frontal]
        [--out f1_by_part_size.png]

Prints a table (region × model: median part size in pixels, mean F1) and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

SMALL_PARTS = ("l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth", "u_lip", "l_lip", "l_ear", "r_ear")
SIZE_BINS = (0, 25, 50, 100, 200, 400, 800, 1600, 10**9)


def part_rows(name: str, path: Path, pose_bin: str) -> pd.DataFrame:
    """(model, region, true pixels, F1) for every region present in an image's ground truth."""
    from facebench.metrics import Evaluation, iou_f1

    ev = Evaluation.load(path)
    keep = np.asarray(ev.groups) == pose_bin
    cm = ev.per_image[keep].astype(np.float64)
    size = cm.sum(-1)  # rows are the truth
    _, f1 = iou_f1(cm)
    rows = []
    for k, region in enumerate(ev.labels.names):
        if region not in SMALL_PARTS:
            continue
        present = size[:, k] > 0
        rows += [{"model": name, "region": region, "pixels": int(s), "f1": float(f)}
                 for s, f in zip(size[present, k], np.nan_to_num(f1[present, k]), strict=True)]
    return pd.DataFrame(rows)


def figure(df: pd.DataFrame, out: Path, pose_bin: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = [f"{lo}–{hi}" if hi < 10**9 else f"≥{lo}" for lo, hi in zip(SIZE_BINS[:-1], SIZE_BINS[1:], strict=True)]
    df = df.assign(size_bin=pd.cut(df["pixels"], SIZE_BINS, right=False, labels=names).astype(str))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.pointplot(df, x="size_bin", y="f1", hue="model", order=names, errorbar=("ci", 95),
                  dodge=0.2 if df["model"].nunique() > 1 else False, ax=ax)
    ax.set_xlabel("true part size in the image (pixels)")
    ax.set_ylabel("per-image F1")
    ax.set_title(f"F1 of small parts (brows, eyes, nose, mouth, lips, ears) by size, {pose_bin} views")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("evaluations", nargs="+", help="NAME=PATH/evaluation.npz")
    ap.add_argument("--bin", default="frontal", help="pose bin to read (frontal, three_quarter, profile, rear)")
    ap.add_argument("--out", type=Path, default=Path("f1_by_part_size.png"))
    args = ap.parse_args()
    df = pd.concat([part_rows(*spec.split("=", 1), args.bin) if "=" in spec else
                    part_rows(Path(spec).parent.name, Path(spec), args.bin) for spec in args.evaluations])
    table = df.groupby(["region", "model"]).agg(median_px=("pixels", "median"), f1=("f1", "mean")).unstack("model")
    print(table.round(3).to_string())
    print(f"figure: {figure(df, args.out, args.bin)}")
    summary = {}
    for m, g in df.groupby("model", sort=False):
        eyes_brows = g[g["region"].isin(["l_eye", "r_eye", "l_brow", "r_brow"])]
        summary[m] = {"eye_brow_median_px": float(eyes_brows["pixels"].median()),
                      "eye_brow_f1": round(float(eyes_brows["f1"].mean()), 4),
                      "f1_parts_under_50px": round(float(g[g["pixels"] < 50]["f1"].mean()), 4),
                      "f1_parts_200px_up": round(float(g[g["pixels"] >= 200]["f1"].mean()), 4)}
    print(json.dumps({"pose_bin": args.bin, "models": summary}))


if __name__ == "__main__":
    main()
