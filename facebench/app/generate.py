"""`facebench generate`: options mapped once onto ``GenerateConfig``, a parser handed to ``generators.refine``.

The app floor is the only room that sees both wings: the refinement (generators) and the parsers
(baselines). Every option's default is read off the config dataclasses, so the help shows the library's
defaults and nothing here can disagree with them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from facebench.errors import InputNotFound
from generators.refine.config import RayOptions
from generators.refine.generate_config import HEAD_FRAMES, GenerateConfig
from generators.refine.variants import VARIANTS, make_variant

DEFAULT_PARSER = Path(__file__).resolve().parents[2] / "baselines" / "weights" / "bisenet-frontal"
DEFAULTS = GenerateConfig()


@dataclass(frozen=True)
class ParserSpec:
    """Picklable recipe for the initial-mask parser, rebuilt inside each worker (a checkpoint or a mask folder)."""

    checkpoint: str | None = None
    masks: str | None = None
    labels: str | None = None  # the label order of ``masks`` (default facebench's)

    def __call__(self):
        if self.masks is not None:
            from facebench.labels import FACEBENCH, label_order
            from facebench.parsing import MaskFolderParser

            return MaskFolderParser(self.masks, labels=label_order(self.labels) if self.labels else FACEBENCH)
        from baselines.parser_spec import open_parser

        return open_parser(self.checkpoint or str(DEFAULT_PARSER), labels=self.labels)

    def check(self, open_model: bool = True) -> ParserSpec:
        """Fail in one line before any work when the parser cannot exist (``open_model``: load it once, so that
        an unusable model fails too)."""
        if self.labels is not None:
            from facebench.labels import label_order

            label_order(self.labels)
        if self.masks is not None and not Path(self.masks).is_dir():
            raise InputNotFound("mask folder does not exist", self.masks)
        if self.masks is None and self.checkpoint is None and not DEFAULT_PARSER.exists():
            raise InputNotFound("the shipped frontal parser is missing", DEFAULT_PARSER, hint="pass --parser")
        if self.masks is None and open_model:
            self()  # open it once here: an unusable model fails in one line before anything is rendered
        return self

    def provenance(self) -> dict:
        return {"parser": self.checkpoint, "masks": self.masks, **({"labels": self.labels} if self.labels else {})}


def check_can_run(cfg: GenerateConfig) -> None:
    """Fail before any work if a forced renderer cannot run here (gsplat needs CUDA; cpp a compiler), or Ray is
    chosen but missing."""
    import torch

    from generators.gaussians.rasterize import choose_renderer

    renderer = cfg.refine.lift.renderer
    choose_renderer(torch.device("cuda" if renderer == "gsplat" else "cpu"), renderer)  # raises with the reason
    if cfg.backend == "ray":
        from generators.refine.ray_backend import require_ray

        require_ray()


def run(captures: list[Path], out: Path, cfg: GenerateConfig, parser: ParserSpec, echo=typer.echo,
        head_frame_file: Path | None = None, capture_format: str | None = None, license: str | None = None) -> dict:
    """Check what can be checked cheaply, then run ``generators.refine.generate``; returns the quality headline."""
    from facebench.headframe import read_frame_file
    from facebench.outputs import check_output_folder
    from generators.refine import generate

    check_output_folder(out)  # the dataset, <out>-quality and the work folder go beside it
    check_output_folder(out.parent)
    parser.check(open_model=False)  # the model itself is opened once the captures have passed their checks
    check_can_run(cfg)
    h2w = None if head_frame_file is None else read_frame_file(head_frame_file)
    provenance = {**parser.provenance(), **({"head_frame_file": str(head_frame_file)} if head_frame_file else {})}
    return generate(captures, out, cfg, parser, provenance=provenance, head_to_world=h2w, before_work=parser.check,
                    capture_format=capture_format, license=license, echo=echo)


def _opt(help: str, **kw):
    return typer.Option(help=help, **kw)


_S, _R, _L = DEFAULTS.synthetic, DEFAULTS.refine, DEFAULTS.refine.lift


def generate_command(
    captures: Annotated[list[Path] | None, typer.Argument(
        help="Capture folders (nerfstudio transforms.json) or folders of them; none: built-in synthetic subjects.",
        show_default=False)] = None,
    out: Annotated[Path, _opt("Dataset folder to write.")] = Path("facebench-data"),
    license: Annotated[str | None, _opt("The dataset's licence (a Hub licence id, or other:NAME); default: the "
                                        "one the captures declare, else unknown (publish refuses it).")] = None,
    format: Annotated[str | None, _opt("Capture format: nerfstudio | colmap | facescape | nersemble | multiface "
                                       "(default: detected from each folder's files).")] = None,
    parser: Annotated[str | None, _opt("Initial-mask parser: a checkpoint folder, zll:PATH.pth, "
                                       "hf:ORG/NAME[@REV] or onnx:PATH (default: the shipped BiSeNet).")] = None,
    masks: Annotated[Path | None, _opt("Or a folder of initial masks {view_id}.png.")] = None,
    labels: Annotated[str | None, _opt("Label order of --masks or an onnx: parser: bisenet | celebamask-hq | farl | "
                                       "lapa | helen | PATH/id2label.json.")] = None,
    subjects: Annotated[int, _opt("Synthetic subjects (built-in input only).")] = _S.subjects,
    views: Annotated[int, _opt("Input views per synthetic subject.")] = _S.views,
    input_size: Annotated[int, _opt("Input image size of synthetic captures.")] = _S.size,
    new_views: Annotated[int, _opt("New viewpoints rendered per subject.")] = _R.views.n_views,
    size: Annotated[int, _opt("Output image size.")] = _R.out_size,
    variant: Annotated[str, _opt(f"Label lifting: {' | '.join(sorted(VARIANTS))} (registry: "
                                 "generators/refine/variants.py; default by measurement, BENCHMARKS.md).")
                       ] = _R.variant.name,
    rgb_steps: Annotated[int, _opt("Stage-1 (RGB) optimisation steps.")] = _L.rgb_steps,
    label_steps: Annotated[int, _opt("Stage-2 (labels) optimisation steps.")] = _L.label_steps,
    cleanup: Annotated[bool, _opt("Automatic post-processing (components, holes, smoothing, 3D sides, "
                                  "confidence); it cost F1 when measured.")] = _R.cleanup.enabled,
    seed: Annotated[int, _opt("Seed for subjects, fits and view sampling.")] = DEFAULTS.seed,
    workers: Annotated[int, _opt("Subjects processed in parallel (processes, local backend).")] = DEFAULTS.workers,
    backend: Annotated[str, _opt("local (processes on this machine) | ray (one task per subject; "
                                 "pip install 'facebench\\[distributed]').")] = DEFAULTS.backend,
    address: Annotated[str | None, _opt("Ray cluster: auto | host:port | ray://host:10001 "
                                        "(default: start a local one).")] = DEFAULTS.ray.address,
    cpus_per_subject: Annotated[int, _opt("CPUs reserved by each Ray task.")] = DEFAULTS.ray.cpus_per_subject,
    max_retries: Annotated[int, _opt("Ray retries of a subject whose worker died or raised.")
                           ] = DEFAULTS.ray.max_retries,
    head_frame: Annotated[str, _opt("Where the head is in the captures' world: auto (estimate it from the "
                                    "parser's face parts) | capture (the one the capture declares) | FILE (a "
                                    "4×4 head→world matrix).")] = _R.head_frame,
    renderer: Annotated[str, _opt("Gaussian rasterizer: auto (gsplat on a CUDA machine, else C++ kernels where "
                                  "a compiler exists, else torch) | gsplat | cpp | torch.")] = _L.renderer,
) -> None:
    """Refine a parser's labels through dual 3D Gaussian splatting into a pose-diverse dataset.

    With no arguments: a few seeded synthetic subjects, initial masks from the shipped frontal BiSeNet,
    the dataset in ./facebench-data and a quality report (initial vs refined against exact ground truth)
    beside it. Interrupted runs resume without redoing finished subjects.
    """
    replace = dataclasses.replace
    frame_file = None if head_frame in HEAD_FRAMES else Path(head_frame)
    ray = RayOptions(address=address, cpus_per_subject=cpus_per_subject, max_retries=max_retries)
    cfg = replace(
        DEFAULTS,
        synthetic=replace(_S, subjects=subjects, views=views, size=input_size),
        refine=replace(_R, variant=make_variant(variant), out_size=size, views=replace(_R.views, n_views=new_views),
                       lift=replace(_L, rgb_steps=rgb_steps, label_steps=label_steps, renderer=renderer),
                       cleanup=replace(_R.cleanup, enabled=cleanup),
                       head_frame="capture" if frame_file else head_frame),
        seed=seed, workers=workers, backend=backend, ray=ray)
    run(captures or [], out, cfg, ParserSpec(checkpoint=parser, masks=str(masks) if masks else None, labels=labels),
        head_frame_file=frame_file, capture_format=format, license=license)
