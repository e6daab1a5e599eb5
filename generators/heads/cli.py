"""``facebench heads``: the command function, to be registered in ``facebench/app/cli.py``.

Thin by design: parse, build configs (which validate ranges and raise InvalidConfig), call the
library, print where things went.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from generators.heads.rig import DISTANCE, FOV


def heads_command(
    out: Annotated[Path, typer.Option(help="Output folder: one capture per subject, or the dataset folder.")],
    subjects: Annotated[int, typer.Option(help="Number of subjects.")] = 4,
    views: Annotated[int, typer.Option(help="Views per subject.")] = 24,
    size: Annotated[int, typer.Option(help="Image size in pixels (square).")] = 256,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same bytes.")] = 0,
    yaw_min: Annotated[float, typer.Option(help="Lowest yaw, degrees (-180..180).")] = -180.0,
    yaw_max: Annotated[float, typer.Option(help="Highest yaw, degrees (-180..180).")] = 180.0,
    pitch_min: Annotated[float, typer.Option(help="Lowest pitch, degrees (camera below the eyes).")] = -60.0,
    pitch_max: Annotated[float, typer.Option(help="Highest pitch, degrees (camera above the eyes).")] = 60.0,
    rig: Annotated[str | None, typer.Option(
        help="Camera layout: spiral (even), grid (yaw × pitch rings) or random "
             "[default: spiral for captures, random for --test-split].")] = None,
    distance: Annotated[float, typer.Option(help="Camera distance from the head centre, metres.")] = DISTANCE,
    fov: Annotated[float, typer.Option(
        help="Vertical field of view, degrees (22: the head fills the frame, as in face-parsing datasets).")] = FOV,
    expression: Annotated[str, typer.Option(help="random, neutral, smile, grin, jaw_open, surprise, ...")] = "random",
    background: Annotated[str, typer.Option(help="random, solid, gradient or noise.")] = "random",
    hair: Annotated[str, typer.Option(help="random, bald, buzz, short, medium or long.")] = "random",
    supersample: Annotated[int, typer.Option(help="RGB anti-aliasing samples per pixel side (1-4).")] = 2,
    depth: Annotated[bool, typer.Option(help="Also write depth/ as uint16 millimetres.")] = False,
    test_split: Annotated[bool, typer.Option(
        "--test-split", help="Render held-out subjects into the facebench dataset layout (label_source=gt).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset folder (with --test-split).")] = False,
    sheet: Annotated[bool, typer.Option(help="Also write contact_sheet.png (first 4 subjects × 12 poses).")] = True,
    workers: Annotated[int, typer.Option(help="Processes to render with.")] = 2,
) -> None:
    """Render synthetic MakeHuman heads with exact per-pixel labels (captures or a test split)."""
    from rich.progress import Progress

    from generators.heads.appearance import AppearanceConfig
    from generators.heads.capture import render_test_split, subject_name, subject_seed, write_captures
    from generators.heads.contact_sheet import write_contact_sheet
    from generators.heads.head import HeadConfig, sample_head
    from generators.heads.identity import IdentityConfig
    from generators.heads.rig import RigConfig

    rig_cfg = RigConfig(views=views, yaw_range=(yaw_min, yaw_max), pitch_range=(pitch_min, pitch_max),
                        distance=distance, fov=fov, mode=rig or ("random" if test_split else "spiral"))
    head_cfg = HeadConfig(identity=IdentityConfig(expression=expression),
                          appearance=AppearanceConfig(background=background), hair=hair)
    with Progress(transient=True) as bar:
        task = bar.add_task("rendering subjects", total=subjects)
        advance = lambda k: bar.advance(task, k)  # noqa: E731
        if test_split:
            path = render_test_split(out, subjects, views, size, seed, rig_cfg, head_cfg, supersample, workers,
                                     overwrite, advance)
            split = "test"
        else:
            write_captures(out, subjects, rig_cfg, size, seed, head_cfg, supersample, depth, workers,
                           progress=advance)
            path = out
            split = "train"
    typer.echo(f"{'dataset' if test_split else 'captures'}: {path}  ({subjects} subjects × {views} views, {size}px)")
    if sheet:
        n = min(subjects, 4)
        heads = [sample_head(subject_seed(seed, split, i), head_cfg) for i in range(n)]
        sheet_path = Path(out) / "contact_sheet.png" if not test_split else Path(f"{out}_contact_sheet.png")
        write_contact_sheet(sheet_path, heads, distance=distance, fov=fov,
                            names=[subject_name(split, i) for i in range(n)])
        typer.echo(f"contact sheet: {sheet_path}")
