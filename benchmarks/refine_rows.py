"""What the generate ablation and tuning scripts share: score one configuration, print the rows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

FIGURES = ("initial_f1_yaw60", "refined_f1_yaw60", "f1_gain_yaw60", "f1_delta_frontal")


def score(jobs: list, work: Path, cfg: Any, per: int = 1) -> dict[str, float]:
    """Refine ``jobs`` with ``cfg`` in ``work``; the pooled headline figures plus seconds (per ``per`` subjects).

    A failed subject stops the script: a row scored on fewer subjects than the others would mislead."""
    from facebench.cli_generate import ParserSpec, synthetic_truth
    from generators.refine.quality import headline
    from generators.refine.run import load_evaluations, run_subjects

    t0 = time.perf_counter()
    summary = run_subjects(jobs, work, cfg, ParserSpec(), synthetic_truth)
    if summary.failed:
        raise SystemExit(f"{work.name}: {summary.failed}")
    q = load_evaluations([d / "quality.npz" for d in sorted(work.iterdir()) if (d / "done.json").exists()])
    return {"s": round((time.perf_counter() - t0) / per, 1), **{k: round(v, 4) for k, v in headline(None, q).items()}}


def print_table(rows: list[dict], labels: dict[str, str]) -> None:
    """A markdown table: the ``labels`` columns (key → header), then the four figures and seconds."""
    figures = "initial F1 |yaw|≥60 | refined F1 |yaw|≥60 | gain | frontal change | s"
    print("| " + " | ".join(labels.values()) + f" | {figures} |")
    print("|---" * (len(labels) + 5) + "|")
    for r in rows:
        fig = [r.get(k, float("nan")) for k in FIGURES]
        print("| " + " | ".join(str(r[k]) for k in labels) + f" | {fig[0]:.3f} | {fig[1]:.3f} | {fig[2]:+.3f} | "
              f"{fig[3]:+.3f} | {r['s']} |")


def best(rows: list[dict]) -> dict:
    """The row with the largest gain at |yaw| ≥ 60° plus frontal change."""
    return max(rows, key=lambda r: r.get("f1_gain_yaw60", -1) + r.get("f1_delta_frontal", -1))
