"""The facebench command line. Thin: parse arguments, call the library, print where results went.

Heavy modules are imported inside commands so that ``facebench --help`` stays instant.
User mistakes (FacebenchError) print one line and exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="facebench",
    help="Benchmark and dataset toolkit for face parsing under extreme head poses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="Predictions: a folder of {id}.png label maps.")],
    data: Annotated[Path, typer.Option(help="Dataset folder in the facebench layout.")],
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "test",
    out: Annotated[Path | None, typer.Option(help="Report folder (default: reports/<model>-<split>).")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap replicates for 95% intervals (0 = none).")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Score a face parser's predictions per region and per pose bin, and write a report folder."""
    from rich.progress import Progress

    from facebench.dataset import load
    from facebench.evaluate import evaluate_parser
    from facebench.parsing import MaskFolderParser

    ds = load(data)
    parser = MaskFolderParser(model, labels=ds.labels)
    n = len(ds.metadata(split))
    with Progress(transient=True) as bar:
        task = bar.add_task(f"evaluating {parser.name}", total=n)
        run = evaluate_parser(parser, ds, split, progress=lambda k: bar.advance(task, k))
    from facebench.report import write_report  # matplotlib/seaborn: only once there is something to draw

    out = out or Path("reports") / f"{parser.name}-{split}"
    write_report(run, out, model_name=parser.name, n_boot=n_boot, seed=seed)
    s = run.evaluation.scores(n_boot=0)
    typer.echo(f"mean F1 (fg) {s['mean_f1_fg']:.4f}  mIoU {s['miou']:.4f}  over {s['n_images']} images")
    for b in run.evaluation.group_names():
        sb = run.evaluation.scores(b, n_boot=0)
        typer.echo(f"  {b:>13}: mean F1 (fg) {sb['mean_f1_fg']:.4f}  (n={sb['n_images']})")
    typer.echo(f"report: {out / 'report.html'}")


@app.command("validate")
def validate_cmd(data: Annotated[Path, typer.Argument(help="Dataset folder to check.")]) -> None:
    """Check a dataset folder: columns, lossless PNG masks with legal ids, sizes, unique ids."""
    from facebench.dataset import validate

    counts = validate(data)
    typer.echo(f"{data}: valid ({', '.join(f'{k}: {v}' for k, v in counts.items())})")


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); user mistakes become one line and exit 2."""
    from facebench.errors import FacebenchError

    try:
        app()
    except FacebenchError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
