"""The loop, stage by stage, under one output folder; every stage resumes (see ``stages``).

    <out>/config.json          the scale (a rerun with another scale is refused, not mixed in)
    <out>/baseline/            the frontal baseline checkpoint (a copy of the shipped weights)
    <out>/test/data/           the held-out benchmark test split
    <out>/generate/data/       (b) the refined dataset (+ data-quality/, and .data.work/ with the captures)
    <out>/frontal/             the frontal baseline's own training data (recipe subjects, re-rendered)
    <out>/variants/{a_raw,b_refined,c_oracle}/   the training sets, each + the frontal data
    <out>/finetune/<model>/    four fine-tunes of the baseline, identical budgets
    <out>/evaluate/<model>/    `facebench evaluate` report folders (+ evaluation.npz)
    <out>/report/              comparison.md / .json, CSVs, figures
    <out>/timings.json         seconds per stage, as each stage's done-marker recorded it
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from facebench.app.reproduce.models import FINETUNES, MODELS
from facebench.app.reproduce.scales import Scale, get_scale
from facebench.app.reproduce.stages import Stages, clear_temporaries
from facebench.errors import InputNotFound, InvalidConfig
from facebench.files import atomic_write, ensure_writable_folder


def _check_config(out: Path, scale: Scale, parser: str | None = None) -> None:
    """The same folder resumes only the same scale and parser; anything else would mix results."""
    stamp = out / "config.json"
    want = {"scale": scale.as_dict(), **({"parser": parser} if parser else {})}
    if stamp.exists():
        have = json.loads(stamp.read_text())
        if have != json.loads(json.dumps(want)):
            raise InvalidConfig(f"holds a run at scale {have.get('scale', {}).get('name')!r} with other settings",
                                out, hint="use the same --scale to resume, or a new --out")
    else:
        atomic_write(stamp, (json.dumps(want, indent=1) + "\n").encode())


def check_baseline(spec: str | None) -> None:
    """The baseline is fine-tuned, so it must be a trainable checkpoint (zll: is converted to one); checked first."""
    from facebench.app.generate import DEFAULT_PARSER

    if spec is None:
        if not DEFAULT_PARSER.exists():
            raise InputNotFound("the shipped frontal parser is missing", DEFAULT_PARSER)
        return
    from baselines.parser_spec import open_parser, parse_spec

    route = parse_spec(spec).route
    if route not in ("facebench", "zll"):
        raise InvalidConfig(f"reproduce fine-tunes its baseline; a {route}: model cannot be fine-tuned here", spec,
                            hint="use a facebench checkpoint or zll:PATH.pth")
    open_parser(spec)


def copy_baseline(spec: str | None, d: Path) -> None:
    """The run's baseline checkpoint, in the run folder so the run is self-contained."""
    from facebench.app.generate import DEFAULT_PARSER

    if spec is None:
        shutil.copytree(DEFAULT_PARSER, d, dirs_exist_ok=True)
        return
    from baselines.parser_spec import convert_to_checkpoint, parse_spec

    ref = parse_spec(spec)
    if ref.route == "zll":
        convert_to_checkpoint(spec, d)
    elif Path(ref.target).is_dir():
        shutil.copytree(ref.target, d, dirs_exist_ok=True)
    else:  # NAME.safetensors + NAME.json (or a name:path spec)
        import torch

        from baselines.checkpoint import convert

        convert(ref.target.split(":")[-1], d, dtype=torch.float32)


def run_reproduce(scale_name: str, out: Path, echo: Callable[[str], None] = print, parser: str | None = None) -> dict:
    """Run (or resume) the whole comparison at ``scale_name`` into ``out``; returns comparison.json's content.

    ``parser`` (a model spec: a checkpoint or zll:PATH.pth) replaces the shipped frontal BiSeNet as the baseline.
    """
    scale = get_scale(scale_name)
    check_baseline(parser)
    out = ensure_writable_folder(out)
    _check_config(out, scale, parser)
    clear_temporaries(out)
    echo(f"facebench reproduce: scale {scale.name}, output {out}")
    st = Stages(out, echo)

    # 1. The frontal baseline: the shipped checkpoint (or --parser), copied so the run folder is self-contained.
    baseline = st.run("baseline", lambda d: copy_baseline(parser, d))

    # 2. The held-out benchmark test split: unseen subjects (test stream), every pose.
    def test_split(d: Path) -> None:
        from rich.progress import Progress

        from generators.heads import render_test_split

        with Progress(transient=True) as bar:
            task = bar.add_task("rendering test subjects", total=scale.test_subjects)
            render_test_split(d / "data", subjects=scale.test_subjects, views=scale.test_views, size=scale.test_size,
                              seed=scale.test_seed, workers=scale.workers, progress=lambda k: bar.advance(task, k))

    test = st.run("test", test_split) / "data"

    # 3. Refined data from K training subjects (resumes per subject inside generate), generate's defaults
    #    but for the scale's sizes.
    def generate(d: Path) -> None:
        from facebench.app.generate import ParserSpec, run

        run([], d / "data", scale.generate_config(), ParserSpec(checkpoint=str(baseline)), echo=echo)

    gen = st.run("generate", generate, atomic=False)
    refined = gen / "data"

    # 4. The baseline's own frontal training data (the mix every fine-tune but the ablation keeps).
    def frontal(d: Path) -> None:
        from facebench.app.reproduce.variants import render_recipe_frontal

        echo(f"  the frontal recipe's first {scale.frontal_subjects} training subjects, re-rendered")
        render_recipe_frontal(d, scale.frontal_subjects, scale.size, scale.workers)

    front = st.run("frontal", frontal) / "data"

    # 5. The training sets, on the same rendered views, each with the frontal data mixed in.
    def variants(d: Path) -> None:
        from baselines.predict import load_parser
        from facebench.app.reproduce import variants as v
        from facebench.dataset import load

        ds, fr = load(refined), load(front)
        truths = v.subject_truths(gen / ".data.work" / "captures")
        n_ref, n_front = len(ds.metadata("train")), len(fr.metadata("train"))
        echo(f"  each set: {n_ref} rendered views + {n_front} frontal recipe views")
        echo("  (a) frontal parser masks on the rendered views")
        v.write_variant(v.with_frontal(v.raw_samples(ds, load_parser(str(baseline))), fr), d / "a_raw",
                        "(a) raw parser masks + frontal",
                        "The refined dataset's rendered views labelled by the frontal parser (no 3D refinement), "
                        "plus the baseline's frontal training data.")
        echo("  (b) refined labels")
        v.write_variant(v.with_frontal(ds.iter_samples("train"), fr), d / "b_refined", "(b) refined + frontal",
                        "The refined dataset plus the baseline's frontal training data.")
        echo("  (c) ground truth at each view's camera")
        v.write_variant(v.with_frontal(v.oracle_samples(ds, truths), fr), d / "c_oracle", "(c) oracle + frontal",
                        "The refined dataset's rendered views labelled with ground truth at the same cameras, plus "
                        "the baseline's frontal training data.")

    var = st.run("variants", variants)
    train_sets = {"a_raw": var / "a_raw", "b_refined": var / "b_refined", "c_oracle": var / "c_oracle",
                  "b_pure": refined}

    # 6. Four fine-tunes from the baseline, identical budgets (each resumes from its own checkpoints).
    from facebench.app.reproduce.models import evaluate_checkpoint, finetune
    from facebench.metrics import Evaluation

    checkpoints = {"baseline": baseline}
    for m in FINETUNES:
        checkpoints[m] = st.run(f"finetune/{m}", lambda d, m=m: finetune(train_sets[m], d, baseline, scale),
                                atomic=False)

    # 7. Every model scored on the test split by facebench evaluate's own path.
    reports = {m: st.run(f"evaluate/{m}", lambda d, m=m: evaluate_checkpoint(checkpoints[m], test, d, m, scale))
               for m in MODELS}

    # 8. The comparison report.
    from facebench.dataset import load

    n_test = len(load(test).metadata("test"))
    test_info = {"subjects": scale.test_subjects, "views": scale.test_views, "size": scale.test_size,
                 "seed": scale.test_seed, "n_images": n_test}

    def report(d: Path) -> None:
        from facebench.app.reproduce.report import write_comparison

        evals = {m: Evaluation.load(reports[m] / "evaluation.npz").sorted_by_id() for m in MODELS}
        write_comparison(d, evals, dict(MODELS), checkpoints, test, scale.as_dict(), test_info)

    rep = st.run("report", report)
    if st.timings:  # every stage's own time, as its marker recorded it (runs that resumed included)
        atomic_write(out / "timings.json", (json.dumps(st.recorded_seconds(), indent=1) + "\n").encode())
    doc = json.loads((rep / "comparison.json").read_text())
    for c in doc["claims"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[c["pass"]]
        echo(f"{verdict}: {c['statement']}")
    echo(f"report: {rep / 'comparison.md'}")
    return doc
