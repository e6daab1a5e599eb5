"""``facebench import``: a plain Typer function; the lead mounts it. Heavy imports happen inside."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def import_command(
    name: Annotated[str, typer.Argument(help="Dataset: celebamask-hq, lapa, helen or ibugmask.")],
    path: Annotated[Path, typer.Argument(help="Your copy of the dataset, in its released layout.")],
    out: Annotated[Path, typer.Option(help="Where to write the facebench dataset folder.")],
    split: Annotated[list[str] | None, typer.Option(help="Import only this split (repeatable): train, "
                                                         "validation, test. Default: all.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many images per split (first by id).")] = None,
    merge: Annotated[list[str] | None, typer.Option(help="Score a predicted class the dataset lacks as another, "
                                                         "e.g. l_ear=background (repeatable).")] = None,
    sides: Annotated[str, typer.Option(help="Dataset's l_/r_ meaning: auto (vote on the masks), subject, image.")]
    = "auto",
    celeba_partition: Annotated[Path | None, typer.Option(help="CelebA's list_eval_partition.txt "
                                                               "(CelebAMask-HQ's official split).")] = None,
    landmarks: Annotated[Path | None, typer.Option(help="Helen: folder of 300-W 68-point .pts files.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Import a released face-parsing dataset (labels remapped by name to facebench's 19 classes, head pose
    from its annotation or its landmarks), so that `facebench evaluate` reports on it by pose bin."""
    from rich.progress import Progress

    from facebench.errors import InvalidConfig
    from facebench.importers import reader_class
    from facebench.importers.common import ImportOptions, run_import
    from facebench.importers.policy import parse_merges
    from facebench.outputs import check_output_folder

    if sides not in ("auto", "subject", "image"):
        raise InvalidConfig(f"--sides must be auto, subject or image, got {sides!r}")
    if limit is not None and limit < 1:
        raise InvalidConfig(f"--limit must be ≥ 1, got {limit}")
    if out.exists() and not overwrite:  # found before the import reads anything, not after
        raise InvalidConfig("--out already exists", out, hint="pass --overwrite, or choose another --out")
    check_output_folder(out)
    opts = ImportOptions(splits=tuple(split) if split else None, limit=limit, merge=parse_merges(merge), sides=sides,
                         extra={"partition": celeba_partition, "landmarks": landmarks})
    reader = reader_class(name)(path, opts)
    with Progress(transient=True) as bar:
        task = bar.add_task(f"importing {reader.pretty_name}", total=None)
        summary = run_import(reader, out, overwrite=overwrite, progress=lambda k: bar.advance(task, k),
                             on_total=lambda n: bar.update(task, total=n))
    counts = ", ".join(f"{s} {n}" for s, n in summary["counts"].items())
    sv = summary["sides"]
    typer.echo(f"{reader.pretty_name}: {counts} images -> {out}")
    typer.echo(f"  left/right: {sv['convention']}'s sides ({sv['subject_votes']} vs {sv['image_votes']} votes)")
    typer.echo("  pose: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["pose_sources"].items())))
    if "pose_file_signs" in summary:
        signs = ", ".join(f"{k} {'as written' if v > 0 else 'negated'}" for k, v in summary["pose_file_signs"].items())
        typer.echo(f"  pose file: {signs} (checked against the masks: {summary['pose_file_sign_check']})")
    if summary.get("landmark_layout_check", {}).get("dropped"):
        typer.echo("  landmark groups left out (do not fit the mean face): "
                   + ", ".join(summary["landmark_layout_check"]["dropped"]))
    if summary["pose_fit_median_rel"] is not None:
        rel = summary["pose_fit_median_rel"]
        warn = "  (high: is this the documented landmark layout?)" if rel > 0.15 else ""
        typer.echo(f"  landmark fit: median reprojection error {100 * rel:.1f}% of the face size{warn}")
    if summary["label_policy"]["absent"]:
        typer.echo("  not labelled by this dataset: " + ", ".join(summary["label_policy"]["absent"]))
