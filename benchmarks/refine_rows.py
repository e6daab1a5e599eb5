"""What the generate ablation and tuning scripts share: score one configuration, print the rows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

FIGURES = ("initial_f1_yaw60", "refined_f1_yaw60", "f1_gain_yaw60", "f1_delta_frontal")


def base_config(seed: int, subjects: int, views: int, new_views: int, rgb_steps: int, label_steps: int,
                variant: str | None = None) -> Any:
    """generate's own GenerateConfig with the script's sizes (every other knob stays the library's default)."""
    from dataclasses import replace

    from generators.refine.generate_config import GenerateConfig
    from generators.refine.variants import make_variant

    d = GenerateConfig()
    refine = replace(d.refine, views=replace(d.refine.views, n_views=new_views),
                     lift=replace(d.refine.lift, rgb_steps=rgb_steps, label_steps=label_steps))
    if variant is not None:
        refine = replace(refine, variant=make_variant(variant))
    return replace(d, refine=refine, seed=seed, synthetic=replace(d.synthetic, subjects=subjects, views=views))


def synthetic_jobs(root: Path, cfg: Any) -> list:
    """The built-in synthetic subjects of ``cfg``, written once under ``root`` and read as jobs."""
    from facebench.captures import read_capture
    from generators.refine.parts import SubjectJob
    from generators.refine.pipeline import synthetic_captures

    return [SubjectJob(p.name, read_capture(p)) for p in synthetic_captures(root, cfg.synthetic, cfg.seed)]


def score(jobs: list, work: Path, cfg: Any, per: int = 1, parser: str | None = None) -> dict[str, float]:
    """Refine ``jobs`` with ``cfg`` (a GenerateConfig) in ``work``; the pooled headline figures plus seconds
    (per ``per`` subjects).

    A failed subject stops the script: a row scored on fewer subjects than the others would mislead."""
    from facebench.app.generate import ParserSpec
    from facebench.metrics import load_evaluations
    from generators.refine.parts import finished_parts
    from generators.refine.pipeline import synthetic_truth
    from generators.refine.quality import headline
    from generators.refine.run import run_subjects

    t0 = time.perf_counter()
    summary = run_subjects(jobs, work, cfg, ParserSpec(checkpoint=parser), synthetic_truth)
    if summary.failed:
        raise SystemExit(f"{work.name}: {summary.failed}")
    q = load_evaluations([d / "quality.npz" for d in finished_parts(work)])
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
