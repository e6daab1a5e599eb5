"""Leaderboard commands as plain Typer functions, mounted by ``facebench/app/cli.py``.

``submit_command`` becomes ``facebench submit``; ``leaderboard_app`` becomes ``facebench leaderboard``
(``init``, ``process``, ``build``, ``status``). Checkpoints need the baselines wing, which the leaderboard
never imports: the app floor fills ``MODELS`` (architecture names, a Parser loader) when it mounts these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

leaderboard_app = typer.Typer(help="Host a leaderboard: init stores, process submissions, build the page.",
                              no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

HostOpt = Annotated[Path, typer.Option("--host", envvar="FACEBENCH_LEADERBOARD_HOST",
                                       help="Host folder (made by `leaderboard init`).")]


@dataclass
class ModelHooks:
    """What the leaderboard needs from the parsers' wing, handed in by the app floor (``facebench.app.cli``):
    the registered architecture names and a checkpoint → Parser loader. Unset, checkpoints can't be scored."""

    architectures: Callable[[], list[str]] | None = None
    load_parser: Callable[[str], Any] | None = None


MODELS = ModelHooks()


def _architectures() -> list[str] | None:
    return MODELS.architectures() if MODELS.architectures is not None else None


def _parser_factory():
    return MODELS.load_parser


def submit_command(
    path: Annotated[Path, typer.Argument(help="Predictions (a folder or .zip of {id}.png, or a .parquet with id, "
                                              "mask), or a checkpoint folder (model.safetensors + config.json).")],
    name: Annotated[str, typer.Option(help="Name shown on the leaderboard.")],
    contact: Annotated[str, typer.Option(help="E-mail or handle; used for rate limits, not published.")],
    training_data: Annotated[str, typer.Option(help="What the model was trained on (published).")],
    requests: Annotated[str, typer.Option(envvar="FACEBENCH_LEADERBOARD_REQUESTS",
                                          help="The request store: a folder or hf://datasets/ORG/NAME.")],
    manifest: Annotated[Path | None, typer.Option(envvar="FACEBENCH_LEADERBOARD_MANIFEST",
                                                  help="The leaderboard's manifest.json (default: the one "
                                                       "published in the request store).")] = None,
    labels: Annotated[str | None, typer.Option(help="Label order of the predictions: bisenet | celebamask-hq | farl | "
                                                     "lapa | helen | PATH/id2label.json (default: the benchmark's).")]
    = None,
) -> None:
    """Validate a submission locally with the host's own validator, then upload it as a PENDING request."""
    from leaderboard.manifest import Manifest
    from leaderboard.store import open_store
    from leaderboard.submit import classify, manifest_from, submit

    route = str(path).partition(":")[0]
    if route in ("zll", "hf", "onnx") and not path.exists():
        from leaderboard.checkpoint import CONVERT_HINT
        from leaderboard.errors import InvalidSubmission

        raise InvalidSubmission(f"the host runs facebench checkpoints only, not {route}: models", path,
                                hint=CONVERT_HINT if route == "zll" else "submit the model's predictions instead")
    from leaderboard.archive import looks_pickled

    if path.is_file() and looks_pickled(path.name, path.read_bytes()[:2]):  # before anything else: say what to do
        from leaderboard.checkpoint import CONVERT_HINT
        from leaderboard.errors import PickleRefused

        raise PickleRefused("is a pickle; the host never opens one", path, hint=CONVERT_HINT)
    archs = _architectures() if path.exists() and classify(path) == "checkpoint" else None
    from facebench.labels import label_order

    order = label_order(labels) if labels else None
    store = open_store(requests)
    req = submit(path, Manifest.load(manifest) if manifest else manifest_from(store), store, name, contact,
                 training_data, archs, labels=order)
    typer.echo(f"request {req.id}: {req.status} ({req.kind}, sha256 {req.sha256[:12]}…)")
    typer.echo(f"follow it with: facebench leaderboard status {req.id} --requests {requests}")


@leaderboard_app.command("init")
def init_command(
    hidden: Annotated[Path, typer.Argument(help="Hidden dataset folder (labels stay on the host).")],
    host: HostOpt,
    public: Annotated[Path, typer.Option(help="Folder to publish: manifest.json + hidden-images.parquet.")],
    requests: Annotated[str, typer.Option(help="Request store: a folder (relative to the host) or "
                                               "hf://datasets/ORG/NAME; a Hub store also gets the manifest and "
                                               "hidden images, so submitters need only its id.")] = "requests",
    results: Annotated[str, typer.Option(help="Results store: a folder or hf://datasets/ORG/NAME.")] = "results",
    split: Annotated[str, typer.Option(help="Split of the hidden dataset to score on.")] = "test",
    public_dataset: Annotated[str, typer.Option(help="Where the public test split (with labels) lives.")] = "",
    rate_limit: Annotated[int, typer.Option(help="Submissions per submitter per window.")] = 5,
    rate_window_h: Annotated[float, typer.Option(help="Rate-limit window, hours.")] = 24.0,
    n_boot: Annotated[int, typer.Option(help="Bootstrap replicates (as in `facebench evaluate`).")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Create the host folder (stores, config) and the public manifest with the hidden labels' sha256."""
    from facebench.errors import InvalidConfig
    from facebench.outputs import check_output_folder
    from leaderboard.host import init_host
    from leaderboard.limits import Limits
    from leaderboard.scoring import MetricSettings

    for option, value, low in (("--n-boot", n_boot, 0), ("--rate-limit", rate_limit, 1), ("--seed", seed, 0)):
        if value < low:
            raise InvalidConfig(f"{option} must be ≥ {low}, got {value}")
    if not 0 < rate_window_h < 1e6:  # NaN and inf fail too
        raise InvalidConfig(f"--rate-window-h must be a positive number of hours, got {rate_window_h}")
    check_output_folder(host, "--host")
    check_output_folder(public, "--public")
    limits = Limits(rate_limit=rate_limit, rate_window_s=int(rate_window_h * 3600))
    cfg, m = init_host(hidden, host, public, split, limits, public_dataset, MetricSettings(n_boot, seed),
                       requests=requests, results=results)
    typer.echo(f"host: {cfg.root}  requests: {cfg.request_store().location}")
    typer.echo(f"publish: {public}/manifest.json ({len(m.ids)} images), {public}/hidden-images.parquet")
    typer.echo(f"hidden labels sha256: {m.labels_sha256}")


@leaderboard_app.command("process")
def process_command(
    host: HostOpt,
    max_requests: Annotated[int | None, typer.Option(help="Stop after this many requests.")] = None,
) -> None:
    """Score pending requests against the hidden labels: PENDING → RUNNING → FINISHED | FAILED."""
    from leaderboard.host import HostConfig, process

    done = process(HostConfig.load(host), _parser_factory(), _architectures_if_needed(host), max_requests)
    for r in done:
        typer.echo(f"{r.id}: {r.status}" + (f" — {r.error}" if r.error else ""))
    typer.echo(f"processed {len(done)} request(s)")


def _architectures_if_needed(host: Path) -> list[str] | None:
    """Only import the baselines (torch) when a checkpoint is actually waiting."""
    from leaderboard.host import HostConfig
    from leaderboard.submissions import Status, all_requests

    reqs = all_requests(HostConfig.load(host).request_store())
    if any(r.status == Status.PENDING and r.kind == "checkpoint" for r in reqs):
        return _architectures()
    return None


@leaderboard_app.command("build")
def build_command(
    host: HostOpt,
    out: Annotated[Path, typer.Option(help="Site folder: index.html, leaderboard.md, results.json.")] = Path("site"),
    title: Annotated[str, typer.Option(help="Page title.")] = "facebench leaderboard",
) -> None:
    """Render the static leaderboard page and a Markdown table from the results store."""
    from facebench.outputs import check_output_folder
    from leaderboard.host import HostConfig
    from leaderboard.page import build_site

    check_output_folder(out)
    page = build_site(HostConfig.load(host).result_store(), out, title)
    typer.echo(f"page: {page}  table: {out / 'leaderboard.md'}")


@leaderboard_app.command("status")
def status_command(
    request_id: Annotated[str | None, typer.Argument(help="Request id (default: all).")] = None,
    requests: Annotated[str, typer.Option(envvar="FACEBENCH_LEADERBOARD_REQUESTS",
                                          help="The request store.")] = "requests",
) -> None:
    """Show the status of requests, with the error message of failed ones."""
    from leaderboard.store import open_store
    from leaderboard.submissions import all_requests, get

    store = open_store(requests)
    for r in [get(store, request_id)] if request_id else all_requests(store):
        typer.echo(f"{r.id}  {r.status:<8}  {r.name}" + (f"  — {r.error}" if r.error else ""))
