"""``facebench study ...``: thin typer commands over the study library (mounted by ``facebench/app/cli.py``).

Heavy imports happen inside the commands so that ``facebench --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

study_app = typer.Typer(name="study", help="User studies: build a blinded rating kit, serve it, aggregate ratings.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@study_app.command()
def build(
    models: Annotated[str, typer.Option(help="NAME=FOLDER,... : prediction folders of {id}.png label maps.")],
    data: Annotated[Path, typer.Option(help="Dataset folder in the facebench layout.")],
    out: Annotated[Path, typer.Option(help="Study folder to create.")],
    n_items: Annotated[int, typer.Option(help="Images to draw (evenly over pose bins).")] = 30,
    split: Annotated[str, typer.Option(help="Dataset split to draw from.")] = "test",
    mode: Annotated[str, typer.Option(help="rating (1-5 per overlay), pairwise (A vs B), or both.")] = "rating",
    n_checks: Annotated[int | None, typer.Option(help="Attention checks per task kind (default: ~10%, >= 2).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for image choice, blinding codes and rater orders.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing study folder without ratings.")] = False,
) -> None:
    """Build a blinded study: one overlay per model and image, hidden behind opaque codes, plus attention checks."""
    from facebench.study.items import build_study, parse_models

    s = build_study(parse_models(models), data, out, n_items, seed, split=split, mode=mode, n_checks=n_checks,
                    overwrite=overwrite)
    typer.echo(f"{s.folder}: {s.n_samples} images, {s.n_rating} rating and {s.n_pairwise} pairwise tasks "
               f"(incl. {s.n_checks} attention checks); key in {s.folder / 'key.json'} (never served)")


@study_app.command()
def serve(
    study: Annotated[Path, typer.Argument(help="Study folder made by `facebench study build`.")],
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1 = this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8765,
    timeout: Annotated[float, typer.Option(help="Seconds a client has to send one request (slower ones are cut).")
                       ] = 10.0,
) -> None:
    """Serve the rating page; raters open it, enter their id, and can reload or come back to resume."""
    import signal

    from facebench.study.server import make_server

    def stop(*_: object) -> None:
        raise KeyboardInterrupt  # SIGTERM ends the server like Ctrl-C: sockets and SQLite closed cleanly

    server = make_server(study, host, port, timeout)
    signal.signal(signal.SIGTERM, stop)
    h, p = server.server_address[:2]
    typer.echo(f"serving {study} at http://{h}:{p}/  (ratings -> {study / 'ratings.sqlite'}; Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.server_close()


@study_app.command()
def export(
    study: Annotated[Path, typer.Argument(help="Study folder with collected ratings.")],
    out: Annotated[Path | None, typer.Option(help="CSV to write (default: <study>/ratings.csv).")] = None,
) -> None:
    """Write every response as one CSV row, with model names un-blinded from the key."""
    from facebench.study.export import export_csv

    path, n = export_csv(study, out)
    typer.echo(f"{path}: {n} responses")


@study_app.command()
def aggregate(
    ratings: Annotated[Path, typer.Argument(help="Ratings CSV (from `facebench study export`, or your own).")],
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("study-report"),
    models: Annotated[str | None, typer.Option(help="Expected model names, comma-separated (others = error).")] = None,
    study: Annotated[Path | None, typer.Option(help="Study folder: expect the model names in its key.")] = None,
    scale_min: Annotated[int, typer.Option(help="Lowest rating on the scale.")] = 1,
    scale_max: Annotated[int, typer.Option(help="Highest rating on the scale.")] = 5,
    fail_at_least: Annotated[int, typer.Option(help="A bad-overlay check rated this or higher is failed.")] = 3,
    max_failures: Annotated[int, typer.Option(help="Raters failing more checks than this are excluded.")] = 0,
    n_boot: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """MOS with two-way bootstrap intervals, agreement, Friedman/Wilcoxon-Holm, Bradley–Terry; report.md/html."""
    from facebench.outputs import check_output_folder
    from facebench.study.errors import StudyError
    from facebench.study.ratings import read_ratings

    if n_boot < 0:
        raise StudyError(f"--n-boot must be ≥ 0, got {n_boot}")
    if scale_min >= scale_max:
        raise StudyError(f"--scale-min ({scale_min}) must be below --scale-max ({scale_max})")
    check_output_folder(out)
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if study is not None:
        from facebench.study.layout import read_key

        names = list(read_key(study)[1].get("models", {}))
    r = read_ratings(ratings, (scale_min, scale_max), names)  # fail fast, before the heavy imports
    from facebench.study.aggregate import Settings
    from facebench.study.aggregate import aggregate as run
    from facebench.study.report import write_report

    res = run(r, Settings(n_boot=n_boot, seed=seed, fail_at_least=fail_at_least, max_failures=max_failures))
    write_report(res, out)
    for row in res.mos.itertuples():
        typer.echo(f"{row.model:>16}: MOS {row.mos:.2f} [{row.lo:.2f}, {row.hi:.2f}]  n={row.n}")
    if res.friedman and res.friedman.get("k", 0) >= 2:
        typer.echo(f"Friedman p={res.friedman['p']:.3g} over {res.friedman['n_blocks']} images; "
                   f"alpha={res.agreement.get('krippendorff_alpha', float('nan')):.3f}")
    typer.echo(f"excluded raters: {len(res.excluded)} of {res.n_raters_total}; report: {out / 'report.html'}")


def main() -> None:
    """Run the sub-app alone (``python -m facebench.study.cli``), with facebench's one-line errors."""
    from facebench.errors import run_with_one_line_errors

    run_with_one_line_errors(study_app)


if __name__ == "__main__":
    main()
