"""The facebench command line. Thin: parse arguments, call the library, print where results went.

Heavy modules are imported inside commands so that ``facebench --help`` stays instant.
User mistakes (FacebenchError) print one line and exit 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

# Before any command loads torch (and OpenMP): spinning OpenMP threads starve when other processes hold the
# cores. On the shared 2-core machine, generate used ~460 CPU-s per subject at load 4 against ~40 s wall
# idle, and 2-thread BiSeNet steps ran 10-100× slower than with passive waiting. Set it yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = typer.Typer(
    name="facebench",
    help="Benchmark and dataset toolkit for face parsing under extreme head poses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="A model: a facebench checkpoint folder, zll:PATH.pth, "
                                              "hf:ORG/NAME[@REV], onnx:PATH; or a folder of predicted {id}.png "
                                              "label maps.")],
    data: Annotated[str, typer.Option(help="Dataset folder, or a Hub dataset ns/name[@revision].")],
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "test",
    out: Annotated[Path | None, typer.Option(help="Report folder (default: reports/<model>-<split>).")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap replicates for 95% intervals (0 = none).")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    labels: Annotated[str | None, typer.Option(help="Label order of a prediction folder or an onnx: model: bisenet | "
                                                     "celebamask-hq | farl | lapa | helen | PATH/id2label.json "
                                                     "(default: the dataset's).")] = None,
) -> None:
    """Score a face parser per region and per pose bin, and write a report folder.

    A checkpoint is run once over the split; its predictions are cached in <report>/predictions/ and reused
    while the weights and the dataset revision stay the same. A folder of {id}.png predictions is scored as is.
    """
    from rich.progress import Progress

    from facebench.app.evaluate import CACHE
    from facebench.dataset import load
    from facebench.errors import InvalidConfig
    from facebench.evaluate import evaluate_parser
    from facebench.hub import resolve_data
    from facebench.outputs import check_output_folder, check_report_folder
    from facebench.parsing import MaskFolderParser

    if n_boot < 0:
        raise InvalidConfig(f"--n-boot must be ≥ 0 (0 = no intervals), got {n_boot}")
    if out is not None:
        check_output_folder(out)
    ds = load(resolve_data(data))
    n = len(ds.metadata(split))  # the split exists and its ids, poses and provenance are sound

    def report_folder(name: str) -> Path:  # the report replaces it whole: refuse a folder of other files first
        return check_report_folder(check_output_folder(out or Path("reports") / f"{name}-{split}"), keep=(CACHE,))

    if _is_model(model):
        from baselines.parser_spec import open_parser
        from facebench.app.evaluate import cached_parser

        model_parser = open_parser(model, labels=labels)
        out = report_folder(model_parser.name)
        parser = cached_parser(model_parser, ds, split, out, echo=typer.echo)
    else:
        from facebench.labels import label_order

        parser = MaskFolderParser(model, labels=label_order(labels) if labels else ds.labels)
        out = report_folder(parser.name)
    with Progress(transient=True) as bar:
        task = bar.add_task(f"evaluating {parser.name}", total=n)
        run = evaluate_parser(parser, ds, split, progress=lambda k: bar.advance(task, k))
    from facebench.report import write_report  # matplotlib/seaborn: only once there is something to draw

    write_report(run, out, model_name=parser.name, n_boot=n_boot, seed=seed, keep=(CACHE,))
    for w in run.warnings:
        typer.echo(f"warning: {w}", err=True)
    s = run.evaluation.scores(n_boot=0)
    typer.echo(f"mean F1 (fg) {s['mean_f1_fg']:.4f}  mIoU {s['miou']:.4f}  over {s['n_images']} images")
    for b in run.evaluation.group_names():
        sb = run.evaluation.scores(b, n_boot=0)
        typer.echo(f"  {b:>13}: mean F1 (fg) {sb['mean_f1_fg']:.4f}  (n={sb['n_images']})")
    typer.echo(f"report: {out / 'report.html'}")


def _is_model(spec: str) -> bool:
    """A model to run (any route of ``baselines.parser_spec``) rather than a folder of {id}.png predictions."""
    from baselines.parser_spec import parse_spec

    if parse_spec(spec).route != "facebench":
        return True
    p = Path(spec.split(":", 1)[1] if ":" in spec and not Path(spec).exists() else spec)
    return p.suffix == ".safetensors" or (p.is_dir() and (p / "model.safetensors").exists()) or ":" in spec


@app.command("validate")
def validate_cmd(data: Annotated[Path, typer.Argument(help="Dataset folder to check.")]) -> None:
    """Check a dataset folder: columns, lossless PNG masks with legal ids, sizes, unique ids."""
    from facebench.dataset import validate

    counts = validate(data)
    typer.echo(f"{data}: valid ({', '.join(f'{k}: {v}' for k, v in counts.items())})")


@app.command()
def publish(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder to publish.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Hub dataset id, namespace/name.")],
    private: Annotated[bool, typer.Option(help="Create the repo private.")] = False,
    revision: Annotated[str | None, typer.Option(help="Branch to commit to (default main).")] = None,
    message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
) -> None:
    """Push a dataset to the Hugging Face Hub in one commit and print the commit sha."""
    from facebench.hub import publish as do_publish

    sha = do_publish(dataset, repo_id, private=private, revision=revision, message=message)
    typer.echo(sha)


@app.command()
def download(
    repo: Annotated[str, typer.Argument(help="Hub dataset ns/name[@revision].")],
    out: Annotated[Path | None, typer.Option(help="Destination folder (default: the facebench cache).")] = None,
    revision: Annotated[str | None, typer.Option(help="Branch, tag or commit (overrides @revision).")] = None,
    split: Annotated[str | None, typer.Option(help="Only this split.")] = None,
    pose_bin: Annotated[str | None, typer.Option(help="Only this pose bin.")] = None,
) -> None:
    """Fetch a published dataset (or one split / pose bin of it) into the local layout."""
    from facebench.hub import download as do_download

    spec = f"{repo.partition('@')[0]}@{revision}" if revision else repo
    path = do_download(spec, out, split=split, pose_bin=pose_bin)
    typer.echo(str(path))


@app.command()
def reproduce(
    scale: Annotated[str, typer.Option(help="small (CI smoke test, minutes) | default (≤ 90 min on 2 cores) | large.")
    ] = "default",
    out: Annotated[Path, typer.Option(help="Run folder: every stage writes here; rerun to resume.")] = Path(
        "reproduce-out"),
    parser: Annotated[str | None, typer.Option(help="Baseline to fine-tune instead of the shipped BiSeNet: a "
                                                    "checkpoint folder or zll:PATH.pth.")] = None,
) -> None:
    """The paper's whole loop: baseline, refined data, four fine-tunes, evaluation, and a comparison report.

    Fine-tunes the frontal baseline on (a) its own masks of the rendered views, (b) the refined labels,
    (c) ground truth of the same views, each mixed with the baseline's frontal training data, and (b′) the
    refined labels alone (ablation); scores every model on the held-out
    test split and judges the claims in <out>/report/comparison.md. docs/reproduce.md explains it.
    """
    from facebench.app.reproduce.run import run_reproduce

    run_reproduce(scale, out, echo=typer.echo, parser=parser)


@app.command()
def convert(
    model: Annotated[str, typer.Argument(help="zll:PATH.pth (zllrunning/face-parsing.PyTorch's BiSeNet).")],
    out: Annotated[Path, typer.Option(help="Checkpoint folder to write (model.safetensors + config.json).")],
) -> None:
    """Convert a published parser into a facebench checkpoint once, so later runs never read a pickle."""
    from baselines.parser_spec import convert_to_checkpoint

    path = convert_to_checkpoint(model, out)
    typer.echo(f"checkpoint: {path}")


def _mount() -> None:
    """Attach the other floors' commands. Their modules import only typer at the top, so --help stays instant."""
    from baselines.cli import export_onnx_command, predict_command, train_command
    from facebench.app.generate import generate_command
    from facebench.importers.cli import import_command
    from facebench.study.cli import study_app
    from generators.heads.cli import heads_command
    from leaderboard.cli import MODELS, leaderboard_app, submit_command

    app.command("generate")(generate_command)
    app.command("heads")(heads_command)
    app.command("train")(train_command)
    app.command("predict")(predict_command)
    app.command("export-onnx")(export_onnx_command)
    app.command("submit")(submit_command)
    app.command("import")(import_command)
    app.add_typer(study_app, name="study")
    app.add_typer(leaderboard_app, name="leaderboard")
    MODELS.architectures, MODELS.load_parser = _architectures, _load_parser


def _architectures() -> list[str]:
    """The baselines' registered architectures (imports torch: only when a checkpoint is submitted)."""
    from baselines.models import MODELS as registry

    return sorted(registry)


def _load_parser(spec: str):
    from baselines.parser_spec import open_parser

    return open_parser(spec)


_mount()


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); user mistakes become one line and exit 2."""
    from facebench.errors import run_with_one_line_errors

    run_with_one_line_errors(app)
