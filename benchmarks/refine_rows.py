"""What the generate ablation and tuning scripts share: score one configuration, print the rows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

FIGURES = ("initial_f1_yaw60", "refined_f1_yaw60", "f1_gain_yaw60", "f1_delta_frontal")
EYES_BROWS = ("l_eye", "r_eye", "l_brow", "r_brow")
SMALL_PARTS = (*EYES_BROWS, "mouth", "u_lip", "l_lip", "nose")


def base_config(seed: int, subjects: int, views: int, new_views: int, rgb_steps: int | None, label_steps: int | None,
                variant: str | None = None, input_size: int | None = None) -> Any:
    """generate's own GenerateConfig with the script's sizes (every other knob, and steps left None, stay the
    library's default) and the heads' declared frame, as bench_generate: these scripts measure labels, not
    frames."""
    from dataclasses import replace

    from generators.refine.generate_config import GenerateConfig
    from generators.refine.variants import make_variant

    d = GenerateConfig()
    refine = replace(d.refine, views=replace(d.refine.views, n_views=new_views),
                     lift=replace(d.refine.lift, rgb_steps=d.refine.lift.rgb_steps if rgb_steps is None else rgb_steps,
                                  label_steps=d.refine.lift.label_steps if label_steps is None else label_steps),
                     head_frame="capture")
    if variant is not None:
        refine = replace(refine, variant=make_variant(variant))
    synthetic = replace(d.synthetic, subjects=subjects, views=views, size=input_size or d.synthetic.size)
    return replace(d, refine=refine, seed=seed, synthetic=synthetic)


def synthetic_jobs(root: Path, cfg: Any) -> list:
    """The built-in synthetic subjects of ``cfg``, written once under ``root`` and read as jobs."""
    from facebench.captures import read_capture
    from generators.refine.parts import SubjectJob
    from generators.refine.pipeline import synthetic_captures

    return [SubjectJob(p.name, read_capture(p)) for p in synthetic_captures(root, cfg.synthetic, cfg.seed)]


def truth_mask_folder(jobs: list, folder: Path) -> Path:
    """The captures' exact label maps as one ``{view id}.png`` folder: a "parser" that is never wrong, whose
    refined labels measure what the lifting itself loses (the representation's ceiling)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        for v in job.capture.views:
            shutil.copyfile(v.label_path, folder / f"{v.id}.png")
    return folder


def score(jobs: list, work: Path, cfg: Any, per: int = 1, parser: str | None = None,
          truth_masks: bool = False) -> dict[str, float]:
    """Refine ``jobs`` with ``cfg`` (a GenerateConfig) in ``work``; the pooled headline figures plus seconds
    (per ``per`` subjects). ``truth_masks``: lift the exact labels instead of a parser's (the ceiling).

    A failed subject stops the script: a row scored on fewer subjects than the others would mislead."""
    from facebench.app.generate import ParserSpec
    from facebench.metrics import load_evaluations
    from generators.refine.parts import finished_parts, part_record
    from generators.refine.pipeline import synthetic_truth
    from generators.refine.quality import before_after_tables, headline
    from generators.refine.run import run_subjects

    t0 = time.perf_counter()
    spec = ParserSpec(masks=str(truth_mask_folder(jobs, work.parent / ".truth-masks"))) if truth_masks \
        else ParserSpec(checkpoint=parser)
    summary = run_subjects(jobs, work, cfg, spec, synthetic_truth)
    if summary.failed:
        raise SystemExit(f"{work.name}: {summary.failed}")
    parts = finished_parts(work)
    q = load_evaluations([d / "quality.npz" for d in parts])
    figures = novel_figures(*before_after_tables(q))
    psnr = [r["psnr"] for d in parts for r in part_record(work, d.name).get("rgb_fidelity", [])]
    extra = {f"refined_{b}": figures["refined_f1_by_bin"].get(b, float("nan"))
             for b in ("frontal", "three_quarter", "profile")}
    extra["eyes_brows_yaw60_min"] = min(figures["refined_f1_yaw60_small_parts"][r] for r in EYES_BROWS)
    extra["rgb_psnr"] = float(sum(psnr) / len(psnr)) if psnr else float("nan")
    return {"s": round((time.perf_counter() - t0) / per, 1),
            **{k: round(v, 4) for k, v in {**headline(None, q), **extra}.items()}}


def novel_figures(by_bin: Any, by_region: Any) -> dict[str, dict[str, float]]:
    """Issue 22's targets from the quality report's tables (``quality.before_after_tables``, or its
    by_pose_bin.csv / by_region_yaw60.csv read back): refined and initial F1 of the new views per pose bin,
    and the small parts' refined F1 on new views at |yaw| ≥ 60°."""
    novel = by_bin[by_bin["views"] == "novel"].set_index("pose_bin")
    region = by_region[by_region["views"] == "novel"].set_index("region")
    return {"refined_f1_by_bin": {b: round(float(novel.loc[b, "refined_f1"]), 4) for b in novel.index},
            "initial_f1_by_bin": {b: round(float(novel.loc[b, "initial_f1"]), 4) for b in novel.index},
            "refined_f1_yaw60_small_parts": {r: round(float(region.loc[r, "refined_f1"]), 4) for r in SMALL_PARTS}}


def print_table(rows: list[dict], labels: dict[str, str]) -> None:
    """A markdown table: the ``labels`` columns (key → header), then the four figures and seconds."""
    figures = ("initial F1 |yaw|≥60 | refined F1 |yaw|≥60 | gain | frontal change | refined frontal / 3-4 / "
               "profile | weakest eye/brow |yaw|≥60 | RGB PSNR | s")
    print("| " + " | ".join(labels.values()) + f" | {figures} |")
    print("|---" * (len(labels) + 8) + "|")
    nan = float("nan")
    for r in rows:
        fig = [r.get(k, nan) for k in FIGURES]
        bins = " / ".join(f"{r.get(f'refined_{b}', nan):.3f}" for b in ("frontal", "three_quarter", "profile"))
        print("| " + " | ".join(str(r[k]) for k in labels) + f" | {fig[0]:.3f} | {fig[1]:.3f} | {fig[2]:+.3f} | "
              f"{fig[3]:+.3f} | {bins} | {r.get('eyes_brows_yaw60_min', nan):.3f} | {r.get('rgb_psnr', nan):.2f} | "
              f"{r['s']} |")


def best(rows: list[dict]) -> dict:
    """The row with the largest gain at |yaw| ≥ 60° plus frontal change."""
    return max(rows, key=lambda r: r.get("f1_gain_yaw60", -1) + r.get("f1_delta_frontal", -1))
