"""Dual-3DGS label refinement: lift noisy 2D masks into Gaussians that share the RGB model's geometry,
render new viewpoints, turn rendered labels back into classes, and clean them automatically.

    generate(captures, out, GenerateConfig(), parser)   the whole job (pipeline.py)
    config.py      every option and its default, once        variants.py   label-lifting registry
    inputs.py      the one view type (SubjectView)           lift.py       the Gaussian fits
    subject.py     one subject: lift, new views, quality     views.py      where new views look from
    parts.py       a subject's resumable part                run.py        many subjects (local), assembly
    ray_backend.py many subjects on Ray                      quality.py    initial-vs-refined report

``generate`` loads lazily, so reading configs (``--help``) does not import torch.
"""


def generate(*args, **kwargs):
    """See ``generators.refine.pipeline.generate``."""
    from generators.refine.pipeline import generate as run

    return run(*args, **kwargs)
