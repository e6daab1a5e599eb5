"""`facebench generate`: wires captures, a parser and the refinement together (the CLI sees every floor).

Kept apart from cli.py only for size; like cli.py it parses arguments and hands them to the library.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.errors import InputNotFound, InvalidConfig

DEFAULT_PARSER = Path(__file__).resolve().parent.parent / "baselines" / "weights" / "bisenet-frontal"
# Label lifting chosen by benchmarks/ablate_generate.py on a tuning subject (BENCHMARKS.md).
DEFAULT_VARIANT = "logits"


@dataclass(frozen=True)
class ParserSpec:
    """Picklable recipe for the initial-mask parser, rebuilt inside each worker."""

    checkpoint: str | None = None
    masks: str | None = None

    def __call__(self):
        if self.masks is not None:
            from facebench.parsing import MaskFolderParser

            return MaskFolderParser(self.masks)
        from baselines.predict import load_parser

        return load_parser(self.checkpoint or str(DEFAULT_PARSER))


def synthetic_truth(capture):
    """Ground truth at any camera for captures rendered by generators.heads (None for real captures)."""
    from generators.heads import render_view, sample_head
    from generators.heads.capture import GENERATOR

    if capture.meta.get("generator") != GENERATOR:
        return None
    head = sample_head(int(capture.meta["seed"]))

    def truth(cam):
        r = render_view(head, cam)
        return r.rgb, r.labels

    return truth


def synthetic_captures(work: Path, subjects: int, views: int, size: int, seed: int, workers: int,
                       split: str = "train") -> list[Path]:
    """The embedded default input: seeded synthetic subjects seen by a ring of cameras."""
    from generators.heads import RigConfig, write_captures

    if subjects < 1 or views < 4:
        raise InvalidConfig("--subjects must be ≥ 1 and --views ≥ 4")
    rig = RigConfig(views=views, pitch_range=(-30.0, 30.0))
    return write_captures(work / "captures", subjects=subjects, rig=rig, size=size, seed=seed, workers=workers,
                          split=split)


def resolve_captures(paths: list[Path]) -> list[Path]:
    """Each path is a capture folder (transforms.json) or a folder of such folders."""
    out: list[Path] = []
    for p in paths:
        if not p.exists():
            raise InputNotFound("capture does not exist", p)
        if (p / "transforms.json").exists():
            out.append(p)
            continue
        subs = sorted(d for d in p.iterdir() if (d / "transforms.json").exists())
        if not subs:
            raise InvalidConfig("no transforms.json here or in its subfolders", p)
        out.extend(subs)
    return out


def seeds_for(n: int, seed: int) -> list[int]:
    return [int(s) for s in np.random.default_rng(seed).integers(0, 2**31 - 1, n)]


def refine_config(*, variant: str, rgb_steps: int, label_steps: int, new_views: int, size: int, seed: int,
                  cleanup: bool, renderer: str = "auto"):
    """The RefineConfig that ``generate`` builds from its options (one place, so library callers match it)."""
    from generators.refine.lift import LiftConfig
    from generators.refine.postprocess import CleanupConfig
    from generators.refine.subject import RefineConfig
    from generators.refine.views import ViewSampling

    return RefineConfig(
        lift=LiftConfig(variant=variant, rgb_steps=rgb_steps, label_steps=label_steps, seed=seed, backend=renderer),
        views=ViewSampling(n_views=new_views), out_size=size, seed=seed,
        cleanup=CleanupConfig() if cleanup else CleanupConfig(False, fill_holes=False, smooth=False,
                                                               sides_from_3d=False, confidence=False),
    )


def run_generate(*, captures: list[Path], out: Path, parser: str | None, masks: Path | None, subjects: int,
                 views: int, input_size: int, new_views: int, size: int, variant: str, rgb_steps: int,
                 label_steps: int, cleanup: bool, seed: int, workers: int, echo, backend: str = "local",
                 address: str | None = None, cpus_per_subject: int = 1, max_retries: int = 2,
                 renderer: str = "auto") -> dict:
    """The body of ``facebench generate``; returns the quality headline."""
    import json
    import shutil
    from dataclasses import asdict

    from rich.progress import Progress

    from facebench.dataset import DatasetInfo
    from generators.refine.quality import write_quality_report
    from generators.refine.run import SubjectJob, assemble, finished_parts, load_evaluations, run_subjects

    ray_options = _ray_options(backend, address, cpus_per_subject, max_retries)
    _check_renderer(renderer)
    if variant not in ("logits", "palette", "joint"):
        raise InvalidConfig(f"unknown --variant {variant!r}", hint="use logits, palette or joint")
    if workers < 1 or size < 16 or new_views < 1 or rgb_steps < 1 or label_steps < 0:
        raise InvalidConfig("--workers, --new-views, --rgb-steps must be ≥ 1 and --size ≥ 16")
    if masks is not None and not masks.is_dir():
        raise InputNotFound("mask folder does not exist", masks)
    if parser is not None and masks is None and not Path(parser.split(":")[-1]).exists():
        raise InputNotFound("parser checkpoint does not exist", parser)
    if parser is None and masks is None and not DEFAULT_PARSER.exists():
        raise InputNotFound("the shipped frontal parser is missing", DEFAULT_PARSER, hint="pass --parser")
    out = Path(out)
    work = out.parent / f".{out.name}.work"
    cfg = refine_config(variant=variant, rgb_steps=rgb_steps, label_steps=label_steps, new_views=new_views,
                        size=size, seed=seed, cleanup=cleanup, renderer=renderer)
    recipe = {"refine": asdict(cfg), "parser": parser, "masks": str(masks) if masks else None,
              "captures": [str(c) for c in captures], "subjects": subjects, "views": views, "input_size": input_size}
    stamp = work / "config.json"
    if stamp.exists() and json.loads(stamp.read_text()) != json.loads(json.dumps(recipe)):
        echo(f"config changed since the last run: starting over in {work}")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(recipe, indent=1))
    if captures:
        from facebench.captures import read_transforms
        from generators.refine.run import check_capture

        paths = resolve_captures(captures)
        for p in paths:  # every capture is checked before any subject is fitted
            check_capture(read_transforms(p))
    else:
        echo(f"built-in input: {subjects} synthetic subjects × {views} views at {input_size}²")
        paths = synthetic_captures(work, subjects, views, input_size, seed, workers)
    jobs = [SubjectJob(subject=p.name, capture=p) for p in paths]
    parser_spec = ParserSpec(checkpoint=parser, masks=str(masks) if masks else None)
    with Progress() as bar:
        task = bar.add_task(f"refining {len(jobs)} subjects ({variant})", total=len(jobs))

        def tick(subject: str, status: str) -> None:
            bar.advance(task)
            bar.console.print(f"  {subject}: {status}")

        summary = run_subjects(jobs, work / "subjects", cfg, parser_spec, synthetic_truth, workers, tick,
                               ray=ray_options)
    for subject, err in summary.failed.items():
        echo(f"  {subject} FAILED: {err.strip().splitlines()[-1]}")
    if not summary.done and not summary.skipped:
        from facebench.errors import FacebenchError

        subject, err = next(iter(summary.failed.items()))
        raise FacebenchError(f"every subject failed; nothing written (first, {subject}: "
                             f"{err.strip().splitlines()[-1]})")
    info = DatasetInfo(pretty_name="facebench refined extreme-pose faces",
                       description="Face-parsing labels refined through dual 3D Gaussian splatting "
                                   "(Gahlawat et al., VCIP 2025), rendered from new head poses.",
                       generation=recipe)
    ds = assemble(work / "subjects", out, cfg, info)
    done_dirs = finished_parts(work / "subjects")
    q = load_evaluations([d / "quality.npz" for d in done_dirs])
    examples = _load_examples(done_dirs)
    report = out.parent / f"{out.name}-quality"
    head = write_quality_report(q, examples, report, f"Refinement quality ({variant})")
    echo(f"dataset: {ds}")
    echo(f"quality report: {report / 'report.md'}")
    if head:
        echo(f"new views |yaw| ≥ 60°: mean F1 {head['initial_f1_yaw60']:.3f} → {head['refined_f1_yaw60']:.3f}; "
             f"frontal change {head['f1_delta_frontal']:+.3f}")
    return head


def _check_renderer(renderer: str) -> None:
    """Fail before any work if a forced rasterizer cannot run here (gsplat needs CUDA; cpp a compiler)."""
    import torch

    from generators.gaussians import choose_backend

    if renderer not in ("auto", "cpp", "torch", "gsplat"):
        raise InvalidConfig(f"unknown --renderer {renderer!r}", hint="use auto, cpp, torch or gsplat")
    choose_backend(torch.device("cuda" if renderer == "gsplat" else "cpu"), renderer)  # raises with the reason


def _ray_options(backend: str, address: str | None, cpus_per_subject: int, max_retries: int):
    """None for the local backend; Ray's absence is reported before any work starts."""
    if backend not in ("local", "ray"):
        raise InvalidConfig(f"unknown --backend {backend!r}", hint="use local or ray")
    if backend == "local":
        if address is not None:
            raise InvalidConfig("--address needs --backend ray")
        return None
    if cpus_per_subject < 1 or max_retries < 0:
        raise InvalidConfig("--cpus-per-subject must be ≥ 1 and --max-retries ≥ 0")
    from generators.refine.ray_backend import RayOptions, require_ray

    require_ray()
    return RayOptions(address=address, cpus_per_subject=cpus_per_subject, max_retries=max_retries)


def _load_examples(dirs: list[Path], per_subject: int = 2) -> list[dict]:
    out = []
    for d in dirs:
        p = d / "examples.npz"
        if not p.exists():
            continue
        with np.load(p) as z:
            idx = sorted({int(k.split("__")[0]) for k in z.files})[:per_subject]
            for i in idx:
                e = {k.split("__", 1)[1]: z[k] for k in z.files if k.startswith(f"{i}__")}
                e["id"], e["yaw"] = str(e["id"]), float(e["yaw"])
                if e["initial"].size == 0:
                    e["initial"] = None
                out.append(e)
    return out
