"""``generate``: captures and a parser in, a refined pose-diverse dataset and its quality report out.

One library call with one config (``GenerateConfig``); ``facebench generate`` only maps its options onto
the config and hands over a parser factory (parsers live in another wing, so the app floor builds them).
Work goes to ``<out>/../.<out name>.work/``: rerunning with the same config resumes subject by subject; a
changed config starts over there.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from facebench.captures import Capture, find_captures, read_capture
from facebench.card import OPEN_LICENSES
from facebench.dataset import DatasetInfo
from facebench.errors import FacebenchError, InvalidConfig
from facebench.files import atomic_write
from facebench.metrics import load_evaluations
from generators.refine.config import SyntheticInput
from generators.refine.generate_config import GenerateConfig
from generators.refine.parts import (
    ParserFactory,
    SubjectJob,
    TruthFactory,
    finished_parts,
    load_examples,
    part_record,
)
from generators.refine.run import assemble, config_record, run_subjects


def synthetic_truth(capture: Capture):
    """Ground truth at any camera for captures rendered by generators.heads (None for any other capture)."""
    from generators.heads import render_view, sample_head
    from generators.heads.capture import GENERATOR

    if capture.meta.get("generator") != GENERATOR:
        return None
    head = sample_head(int(capture.meta["seed"]))

    def truth(cam):
        r = render_view(head, cam)
        return r.rgb, r.labels

    return truth


def synthetic_captures(work: Path, synthetic: SyntheticInput, seed: int, workers: int = 1,
                       split: str = "train") -> list[Path]:
    """The built-in input: seeded synthetic subjects seen by a ring of cameras."""
    from generators.heads import RigConfig, write_captures

    rig = RigConfig(views=synthetic.views, pitch_range=(-30.0, 30.0))
    return write_captures(work / "captures", subjects=synthetic.subjects, rig=rig, size=synthetic.size, seed=seed,
                          workers=workers, split=split)


def generate(captures: Sequence[Path], out: Path, cfg: GenerateConfig, parser: ParserFactory,
             truth: TruthFactory | None = synthetic_truth, provenance: dict | None = None,
             head_to_world: np.ndarray | None = None, capture_format: str | None = None,
             license: str | None = None, echo: Callable[[str], None] = print,
             before_work: Callable[[], object] | None = None) -> dict:
    """Refine ``parser``'s labels of ``captures`` (none: ``cfg.synthetic``) into the dataset ``out``.

    ``parser`` is a picklable factory of the initial-mask Parser (built once in each worker); ``truth``
    rebuilds ground truth for captures that have it, only ever to measure; ``provenance`` (e.g. the parser's
    spec) is recorded beside the config; ``head_to_world`` (with ``cfg.refine.head_frame == "capture"``)
    overrides every capture's declared head frame; ``capture_format`` names the captures' format (default:
    detected per folder, ``facebench.captures.READERS``); ``license`` is the dataset's (default: the one every
    capture declares, else "unknown", which ``publish`` refuses); ``before_work`` runs once the captures are read
    and checked, before anything is written (the app opens the parser there, so damaged captures are reported
    without loading a model). Writes ``out`` and ``<out>-quality/``; returns the quality headline.
    """
    out = Path(out)
    work = out.parent / f".{out.name}.work"
    paths = find_captures(list(captures), capture_format) if captures else []
    jobs = _jobs(paths, capture_format, head_to_world, cfg) if paths else []  # damaged input fails before work
    if jobs:
        dataset_license([j.capture for j in jobs], license, paths)
    if before_work is not None:
        before_work()
    provenance = {"captures": [str(p) for p in paths], **(provenance or {})}  # the card gets the config too
    fresh = not work.exists()
    try:
        return _generate(paths, jobs, out, work, cfg, parser, truth, provenance, head_to_world, capture_format,
                         license, echo)
    except FacebenchError:
        if fresh:  # a first run that failed on its input leaves nothing behind (a resumed one keeps its work)
            shutil.rmtree(work, ignore_errors=True)
        raise


def _generate(paths: list[Path], jobs: list[SubjectJob], out: Path, work: Path, cfg: GenerateConfig,
              parser: ParserFactory, truth: TruthFactory | None, provenance: dict, head_to_world: np.ndarray | None,
              capture_format: str | None, license: str | None, echo: Callable[[str], None]) -> dict:
    from rich.progress import Progress

    from generators.refine.quality import write_quality_report

    _start_or_resume(work, {"config": config_record(cfg), **provenance}, echo)
    if not paths:
        s = cfg.synthetic
        echo(f"built-in input: {s.subjects} synthetic subjects × {s.views} views at {s.size}²")
        paths = synthetic_captures(work, s, cfg.seed, cfg.workers)
        jobs = _jobs(paths, capture_format, head_to_world, cfg)
    license = dataset_license([j.capture for j in jobs], license, paths)
    with Progress() as bar:
        task = bar.add_task(f"refining {len(jobs)} subjects ({cfg.refine.variant.name})", total=len(jobs))

        def tick(subject: str, status: str) -> None:
            bar.advance(task)
            line = f"  {subject}: {status}"
            if status in ("done", "skipped"):
                rec = part_record(work / "subjects", subject)
                line += f"; {frame_line(rec)}; {coverage_line(rec)}"
            bar.console.print(line, soft_wrap=True)

        summary = run_subjects(jobs, work / "subjects", cfg, parser, truth, tick)
    for subject, err in summary.failed.items():
        echo(f"  {subject} FAILED: {err.strip().splitlines()[-1]}")
    if not summary.done and not summary.skipped:
        subject, err = next(iter(summary.failed.items()))
        raise FacebenchError(f"every subject failed; nothing written (first, {subject}: "
                             f"{err.strip().splitlines()[-1]})")
    parts = finished_parts(work / "subjects")
    records = {d.name: part_record(work / "subjects", d.name) for d in parts}
    frames = {k: r["head_frame"] for k, r in records.items()}
    crops = {k: r["input_crops"] for k, r in records.items() if r["input_crops"]}
    info = DatasetInfo(pretty_name="facebench refined extreme-pose faces", license=license,
                       description="Face-parsing labels refined through dual 3D Gaussian splatting "
                                   "(Gahlawat et al., VCIP 2025), rendered from new head poses.",
                       generation={**provenance, "head_frames": frames, "input_crops": crops})
    ds = assemble(work / "subjects", out, cfg, info)
    report = out.parent / f"{out.name}-quality"
    head = write_quality_report(
        load_evaluations([d / "quality.npz" for d in parts]), load_examples(parts), report,
        f"Refinement quality ({cfg.refine.variant.name})",
        notes=[f"{k}: {frame_line(r)}; {coverage_line(r)}" for k, r in records.items()],
        inputs=load_examples(parts, "inputs", 3), new_views=load_examples(parts, "newviews", 8),
        rgb=[row for r in records.values() for row in r.get("rgb_fidelity", [])])
    echo(f"dataset: {ds}")
    echo(f"quality report: {report / 'report.md'}")
    if not head:
        echo("no ground truth for these captures: the report shows overlays and agreement with the parser")
    if "f1_gain_yaw60" in head:
        echo(f"new views |yaw| ≥ 60°: mean F1 {head['initial_f1_yaw60']:.3f} → {head['refined_f1_yaw60']:.3f}; "
             f"frontal change {head['f1_delta_frontal']:+.3f}")
    if "rgb_psnr_new_views" in head:
        echo(f"new views' RGB against the true renders: PSNR {head['rgb_psnr_new_views']:.2f} dB, "
             f"SSIM {head['rgb_ssim_new_views']:.3f} (over the head)")
    return head


def _jobs(paths: list[Path], capture_format: str | None, head_to_world: np.ndarray | None,
          cfg: GenerateConfig) -> list[SubjectJob]:
    """Every capture read and checked before any subject is fitted; named by the capture itself (FaceScape
    folders are only the expression), by folder when those names collide."""
    loaded = [read_capture(p, capture_format).check_files() for p in paths]
    if head_to_world is not None:
        if cfg.refine.head_frame != "capture":
            raise InvalidConfig("a given head_to_world needs head_frame 'capture'")
        loaded = [c.with_frame(head_to_world).check() for c in loaded]
    names = [c.subject for c in loaded]
    if len(set(names)) < len(names):
        names = [p.name for p in paths]
    return [SubjectJob(subject=n, capture=c) for n, c in zip(names, loaded, strict=True)]


def dataset_license(captures: list[Capture], requested: str | None, paths: list[Path]) -> str:
    """The refined dataset's licence: the requested one unless a capture's own terms forbid it (data derived
    from FaceScape or NeRSemble must not go out as CC0), else the one every capture declares, else unknown."""
    declared = {c.meta.get("license") for c in captures}
    restricted = sorted(str(d) for d in declared if d and d not in OPEN_LICENSES)
    if requested is not None:
        if restricted and requested in OPEN_LICENSES:
            where = next(p for p, c in zip(paths, captures, strict=True) if c.meta.get("license") == restricted[0])
            raise InvalidConfig(f"the capture's terms ({restricted[0]}) do not allow publishing derived data as "
                                f"{requested}", where, hint=f"use --license {restricted[0]}, or leave it unset")
        return requested
    return declared.pop() if len(declared) == 1 and None not in declared else "unknown"


def frame_line(record: dict) -> str:
    """One line about a subject's head frame: where it came from, its scale, each input view's yaw."""
    hf = record["head_frame"]
    how = (f"head frame estimated from {len(hf['used'])} parts (rms {1000 * hf['rms_m']:.1f} mm)"
           if hf["mode"] == "auto" else "head frame declared")
    if "angle_to_declared_deg" in hf:
        how += f", {hf['angle_to_declared_deg']:.1f}° from the declared one"
    yaws = " ".join(f"{y:+.0f}" for y in record["input_yaws"])
    return f"{how}, scale {hf['scale']:.3g} world units/m, input yaws [{yaws}]"


def coverage_line(record: dict) -> str:
    """What coverage did to a subject's new views: written, dropped as mostly unseen, unseen pixels ignored."""
    written = record["new_views"] - record["views_dropped_unseen"]
    return (f"{written} of {record['new_views']} new views written ({record['views_dropped_unseen']} mostly unseen "
            f"by any input camera), {100 * record['unseen_head_pixels_frac']:.1f}% of their head pixels unseen → 255")


def _start_or_resume(work: Path, recipe: dict, echo: Callable[[str], None]) -> None:
    """Resume ``work`` when it was made by the same recipe; otherwise start over there."""
    stamp = work / "config.json"
    if stamp.exists() and json.loads(stamp.read_text()) != json.loads(json.dumps(recipe)):
        echo(f"config changed since the last run: starting over in {work}")
        shutil.rmtree(work)
    atomic_write(stamp, json.dumps(recipe, indent=1))
