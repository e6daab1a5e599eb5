"""Readers for released face-parsing datasets (CelebAMask-HQ, LaPa, Helen, iBugMask) into the facebench
layout, with head poses for real photos (the dataset's own, or PnP of its landmarks against a mean 3D
face). ``facebench import <name> <path> --out <dir>``; see docs/datasets.md.

Modules, one idea each: ``common`` (the shared pipeline), one reader per dataset, ``policy`` (what the
dataset labels and how predictions are scored against it), ``sides`` (left/right convention vote),
``landmarks`` (landmark files, mean 3D face), ``pnp`` (pose from landmarks), ``maskpose`` (pose from a
mask), ``make_mean_face`` (offline: derives mean_face_68.json from the synthetic-head template).
"""

from __future__ import annotations

from importlib import import_module

READERS: dict[str, str] = {
    "celebamask-hq": "facebench.importers.celebamask_hq:CelebAMaskHQReader",
    "lapa": "facebench.importers.lapa:LapaReader",
    "helen": "facebench.importers.helen:HelenReader",
    "ibugmask": "facebench.importers.ibugmask:IbugMaskReader",
}


def reader_class(name: str):
    """The reader class for a dataset name (lazy import)."""
    from facebench.errors import InvalidConfig

    key = name.strip().lower()
    if key not in READERS:
        raise InvalidConfig(f"unknown dataset {name!r}", hint="choose one of " + ", ".join(READERS))
    mod, cls = READERS[key].split(":")
    return getattr(import_module(mod), cls)


def import_dataset(name: str, path, out, overwrite: bool = False, **options) -> dict:
    """Library entry point: convert a released dataset at ``path`` into a facebench dataset at ``out``."""
    from pathlib import Path

    from facebench.importers.common import ImportOptions, run_import

    reader = reader_class(name)(Path(path), ImportOptions(**options))
    return run_import(reader, Path(out), overwrite=overwrite)
