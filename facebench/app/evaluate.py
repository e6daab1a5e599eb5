"""`facebench evaluate <model>`: run a checkpoint over a split once, cache its predictions beside the report,
and score them; a rerun with the same weights and the same dataset revision scores the cache.

The cache is ``<report>/predictions/`` ({id}.png in the model's label order) with ``cache.json`` naming what
made it: the weights' sha256, the model config's sha256 (preprocessing, label names), the dataset's revision
and the split. Anything else there is not trusted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from facebench.dataset import FacebenchDataset
from facebench.files import atomic_write, replace_dir, temp_dir
from facebench.parsing import MaskFolderParser

CACHE = "predictions"


def cached_parser(parser, dataset: FacebenchDataset, split: str, report: Path, echo=print) -> MaskFolderParser:
    """A mask-folder parser over ``parser``'s predictions of ``split``: from the cache when it matches,
    else made now (once, atomically)."""
    from baselines.predict import predict_dataset

    weights_sha = (parser.config.get("weights") or {}).get("sha256")
    config = json.dumps(parser.config, sort_keys=True, default=str).encode()  # preprocessing, id2label, source
    key = {"model_sha256": weights_sha, "config_sha256": hashlib.sha256(config).hexdigest(),
           "dataset_revision": dataset.revision, "split": split, "labels": list(parser.labels.names)}
    cache = report / CACHE
    marker = cache / "cache.json"
    if key["model_sha256"] and _read_marker(marker) == key:
        echo(f"predictions: cached in {cache} (same weights, same dataset revision)")
    else:
        made = [d for d in (report, *report.parents) if not d.exists()]  # innermost first
        tmp = temp_dir(report, prefix=f".{CACHE}.tmp-")
        try:
            predict_dataset(parser, dataset.root, split, tmp)
            atomic_write(tmp / "cache.json", json.dumps(key, indent=1))
            replace_dir(tmp, cache)
        except BaseException:  # a damaged sample met halfway: no half cache, and no report folder we made
            shutil.rmtree(tmp, ignore_errors=True)
            if made:
                shutil.rmtree(made[-1], ignore_errors=True)
            raise
    masks = MaskFolderParser(cache, labels=parser.labels)
    masks.name = parser.name
    return masks


def _read_marker(marker: Path) -> dict | None:
    """What made the cache, or None (no cache, or a damaged cache.json: predicted again, not trusted)."""
    try:
        key = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return key if isinstance(key, dict) else None
