"""Fine-tune the frontal baseline on one training set, and score a checkpoint on the test split.

Every fine-tune gets the same TrainConfig except its data, so differences between models come from the
labels alone. Scoring is ``facebench evaluate``'s own path (load_parser → evaluate_parser → write_report);
the per-image confusion matrices are kept beside the report so the comparison can bootstrap them again.
"""

from __future__ import annotations

from pathlib import Path

from facebench.app.reproduce.scales import Scale

# The comparison's models: key → label in tables and figures. (a)–(c) train on their set plus the baseline's
# frontal training data (``variants``); b_pure is the ablation without that mix.
MODELS: dict[str, str] = {
    "baseline": "baseline (frontal)",
    "a_raw": "(a) raw parser masks + frontal",
    "b_refined": "(b) refined labels + frontal",
    "c_oracle": "(c) ground truth (oracle) + frontal",
    "b_pure": "(b′) refined labels only (ablation)",
}
FINETUNES = ("a_raw", "b_refined", "c_oracle", "b_pure")


def finetune(data: Path, out: Path, init: Path, scale: Scale, quiet: bool = False) -> Path:
    """Fine-tune ``init`` on ``data``'s train split with the scale's shared budget (resumes in ``out``)."""
    from baselines.train import TrainConfig, train

    cfg = TrainConfig(model="bisenet", data=str(data), out=str(out), steps=scale.steps, init=str(init),
                      batch_size=scale.batch_size, lr=scale.lr, seed=scale.seed, val_split=None,
                      save_every=max(10, scale.steps // 10), threads=scale.threads, quiet=quiet,
                      command=f"facebench reproduce --scale {scale.name} (fine-tune on {data.name})")
    return train(cfg).out


def evaluate_checkpoint(checkpoint: Path, test: Path, out: Path, name: str, scale: Scale) -> dict:
    """Score ``checkpoint`` on the test split: the standard report folder plus ``evaluation.npz``."""
    import torch
    from rich.progress import Progress

    from baselines.predict import load_parser
    from facebench.dataset import load
    from facebench.evaluate import evaluate_parser
    from facebench.report import write_report

    torch.set_num_threads(scale.threads)
    ds = load(test)
    parser = load_parser(str(checkpoint))
    parser.name = name
    with Progress(transient=True) as bar:
        task = bar.add_task(f"evaluating {name}", total=len(ds.metadata("test")))
        run = evaluate_parser(parser, ds, "test", progress=lambda k: bar.advance(task, k))
    write_report(run, out, model_name=name, n_boot=scale.n_boot, seed=scale.seed)  # with evaluation.npz
    return run.evaluation.scores(n_boot=0)
