"""Face-parsing metrics, by the field's convention.

Convention (printed in every report): one confusion matrix is accumulated over the whole split
(and one per pose bin), never averaged per image. Per class, IoU = TP/(TP+FP+FN) and
F1 = 2TP/(2TP+FP+FN); a class absent from both truth and prediction is NaN, not 0, and is
skipped by the means. Pixels labelled 255 in the truth are ignored; a *prediction* of 255 (abstain,
as refined labels do where unsure) is scored as background, so it costs the true class a miss.
The headline is mean F1 over foreground classes (FaRL's scorer); mIoU is given with and without
background, and every mean is also given with left/right pairs merged. 95% intervals: percentile bootstrap over images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebench.errors import InvalidMask
from facebench.labels import FACEBENCH, IGNORE, LabelSet

CONVENTION = (
    "Dataset-level confusion matrix (summed over all images of the split or pose bin, not averaged per "
    "image); per-class IoU = TP/(TP+FP+FN), F1 = 2TP/(2TP+FP+FN); a class absent from both truth and "
    "prediction is NaN (written as null in JSON files) and skipped by means; truth pixels labelled 255 are "
    "ignored; predicted 255 (abstain) counts as background, i.e. a miss; headline = mean F1 over "
    "foreground classes; mIoU with and without background; 'merged' merges left/right pairs; 95% intervals "
    "from a percentile bootstrap over images."
)


def confusion_matrix(pred: np.ndarray, true: np.ndarray, num_classes: int) -> np.ndarray:
    """C×C int64 counts, rows = truth, columns = prediction; truth 255 is ignored.

    One bincount over (true << 8 | pred) as uint16: no per-pixel Python, no int64 temporaries
    beyond the one bincount needs.
    """
    if pred.shape != true.shape:
        raise InvalidMask(f"prediction {pred.shape} and truth {true.shape} differ in size")
    if pred.dtype != np.uint8 or true.dtype != np.uint8:
        raise InvalidMask("masks must be uint8 class ids")
    code = (true.astype(np.uint16) << 8) | pred
    full = np.bincount(code.ravel(), minlength=65536).reshape(256, 256)
    full[:, 0] += full[:, IGNORE]  # a prediction of 255 abstains: scored as background, i.e. a miss
    full[:, IGNORE] = 0
    bad = full[:num_classes, num_classes:].sum()
    if bad:
        cols = np.flatnonzero(full[:num_classes, num_classes:].sum(0)) + num_classes
        raise InvalidMask(f"prediction has illegal class ids {cols[:5].tolist()} (0..{num_classes - 1} allowed)")
    return full[:num_classes, :num_classes].astype(np.int64)


def iou_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class IoU and F1 from a (…, C, C) confusion matrix; NaN where the class is absent."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    fn = cm.sum(-1) - tp
    fp = cm.sum(-2) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (tp + fp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
    return iou, f1


def merge_lut(labels: LabelSet) -> tuple[LabelSet, np.ndarray]:
    merged, lut = labels.merged
    return merged, lut[: labels.num_classes].astype(np.int64)


def merge_confusion(cm: np.ndarray, lut: np.ndarray, k: int) -> np.ndarray:
    """Sum rows and columns of (…, C, C) by a class map C -> k."""
    onehot = np.zeros((len(lut), k))
    onehot[np.arange(len(lut)), lut] = 1
    return np.einsum("ic,...cd,dj->...ij", onehot.T, cm, onehot)


def _nanmean(a: np.ndarray, axis: int = -1) -> np.ndarray:
    valid = ~np.isnan(a)
    n = valid.sum(axis)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, np.where(valid, a, 0).sum(axis) / np.maximum(n, 1), np.nan)


def summary(cm: np.ndarray, labels: LabelSet = FACEBENCH) -> dict[str, np.ndarray]:
    """Headline numbers from (…, C, C) confusion matrices (works batched, for the bootstrap)."""
    iou, f1 = iou_f1(cm)
    merged, lut = merge_lut(labels)
    miou_m, mf1_m = iou_f1(merge_confusion(cm, lut, merged.num_classes))
    return {
        "mean_f1_fg": _nanmean(f1[..., 1:]),
        "miou": _nanmean(iou),
        "miou_fg": _nanmean(iou[..., 1:]),
        "mean_f1_fg_merged": _nanmean(mf1_m[..., 1:]),
        "miou_merged": _nanmean(miou_m),
        "pixel_acc": np.diagonal(cm, axis1=-2, axis2=-1).sum(-1) / np.maximum(cm.sum((-2, -1)), 1),
    }


def bootstrap_ci(
    per_image: np.ndarray, labels: LabelSet = FACEBENCH, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile intervals for the summary numbers and per-class IoU/F1, resampling images.

    ``per_image``: N×C×C confusion matrices. Each replicate's matrix is a weighted sum of them,
    computed as one matrix product (replicate weights B×N times N×C²).
    """
    n, c, _ = per_image.shape
    if n == 0:
        return {}
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    boot = (weights @ per_image.reshape(n, c * c).astype(np.float64)).reshape(n_boot, c, c)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    out: dict[str, tuple[float, float]] = {}

    def pct(x: np.ndarray) -> tuple[float, float]:
        x = x[~np.isnan(x)]
        return (float(np.percentile(x, lo_q)), float(np.percentile(x, hi_q))) if x.size else (np.nan, np.nan)

    for key, vals in summary(boot, labels).items():
        out[key] = pct(vals)
    iou, f1 = iou_f1(boot)
    for k, name in enumerate(labels.names):
        out[f"iou/{name}"] = pct(iou[:, k])
        out[f"f1/{name}"] = pct(f1[:, k])
    return out


@dataclass
class Evaluation:
    """Streaming accumulator: one confusion matrix per image, grouped by pose bin."""

    labels: LabelSet = FACEBENCH
    ids: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    yaws: list[float] = field(default_factory=list)
    matrices: list[np.ndarray] = field(default_factory=list)

    def add(self, pred: np.ndarray, true: np.ndarray, image_id: str = "", group: str = "all", yaw: float = 0.0):
        self.ids.append(image_id)
        self.groups.append(group)
        self.yaws.append(float(yaw))
        self.matrices.append(confusion_matrix(pred, true, self.labels.num_classes))

    @property
    def per_image(self) -> np.ndarray:
        c = self.labels.num_classes
        return np.stack(self.matrices) if self.matrices else np.zeros((0, c, c), np.int64)

    def total(self, group: str | None = None) -> np.ndarray:
        pi = self.per_image
        if group is not None:
            pi = pi[np.asarray(self.groups) == group]
        return pi.sum(0)

    def group_names(self) -> list[str]:
        """Groups in pose-bin order (frontal first), then any others as first seen."""
        from facebench.pose import POSE_BIN_NAMES

        seen = list(dict.fromkeys(self.groups))
        return [b for b in POSE_BIN_NAMES if b in seen] + [g for g in seen if g not in POSE_BIN_NAMES]

    def scores(self, group: str | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
        """Per-class and summary scores with bootstrap intervals, for all images or one group."""
        pi = self.per_image
        if group is not None:
            pi = pi[np.asarray(self.groups) == group]
        cm = pi.sum(0)
        iou, f1 = iou_f1(cm)
        res = {k: float(v) for k, v in summary(cm, self.labels).items()}
        res["n_images"] = int(len(pi))
        res["per_class"] = {
            name: {"iou": float(iou[k]), "f1": float(f1[k]), "support": int(cm[k].sum())}
            for k, name in enumerate(self.labels.names)
        }
        res["ci95"] = {k: list(v) for k, v in bootstrap_ci(pi, self.labels, n_boot, seed).items()} if n_boot else {}
        return res

    def per_image_mean_f1(self) -> np.ndarray:
        """Mean foreground F1 of each image on its own (for picking best and worst examples)."""
        _, f1 = iou_f1(self.per_image)
        return _nanmean(f1[:, 1:])

    def extend(self, other: Evaluation) -> None:
        """Append another accumulator's images (same label set)."""
        self.ids.extend(other.ids)
        self.groups.extend(other.groups)
        self.yaws.extend(other.yaws)
        self.matrices.extend(other.matrices)

    def sorted_by_id(self) -> Evaluation:
        """The same images ordered by id, so two models' evaluations pair image by image."""
        order = np.argsort(np.array(self.ids, dtype=str), kind="stable")
        return Evaluation(labels=self.labels, ids=[self.ids[i] for i in order],
                          groups=[self.groups[i] for i in order], yaws=[self.yaws[i] for i in order],
                          matrices=[self.matrices[i] for i in order])

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Per-image confusion matrices with ids, groups and yaws, as named arrays (``prefix`` + cm/ids/...)."""
        return {f"{prefix}cm": self.per_image, f"{prefix}ids": np.array(self.ids, dtype=str),
                f"{prefix}groups": np.array(self.groups, dtype=str),
                f"{prefix}yaws": np.array(self.yaws, dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "", labels: LabelSet = FACEBENCH) -> Evaluation:
        return cls(labels=labels, ids=arrays[f"{prefix}ids"].tolist(), groups=arrays[f"{prefix}groups"].tolist(),
                   yaws=arrays[f"{prefix}yaws"].tolist(), matrices=list(arrays[f"{prefix}cm"]))

    def save(self, path: str | Path) -> Path:
        """An ``.npz`` of ``to_arrays()``, written atomically."""
        return save_evaluations(path, {"": self})

    @classmethod
    def load(cls, path: str | Path, labels: LabelSet = FACEBENCH) -> Evaluation:
        with np.load(path) as z:
            return cls.from_arrays(z, labels=labels)


def save_evaluations(path: str | Path, evaluations: dict[str, Evaluation]) -> Path:
    """Several named accumulators in one atomic ``.npz`` (names may contain '/'); read by ``load_evaluations``."""
    import io

    from facebench.files import atomic_write

    arrays: dict[str, np.ndarray] = {}
    for key, ev in evaluations.items():
        arrays.update(ev.to_arrays(f"{key.replace('/', '__')}__" if key else ""))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write(path, buf.getvalue())


def load_evaluations(paths: list[Path], labels: LabelSet = FACEBENCH) -> dict[str, Evaluation]:
    """Named accumulators from files written by ``save_evaluations``, merged name by name in file order."""
    out: dict[str, Evaluation] = {}
    for p in paths:
        with np.load(p) as z:
            for k in sorted({k.rsplit("__", 1)[0] for k in z.files}):
                ev = Evaluation.from_arrays(z, f"{k}__", labels)
                out.setdefault(k.replace("__", "/"), Evaluation(labels=labels)).extend(ev)
    return out


__all__ = [
    "CONVENTION", "IGNORE", "Evaluation", "bootstrap_ci", "confusion_matrix", "iou_f1", "load_evaluations",
    "merge_confusion", "save_evaluations", "summary",
]  # fmt: skip
