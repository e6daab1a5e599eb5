"""Helen, face-parsing version (Smith, Zhang, Brandt, Lin, Yang: "Exemplar-Based Face Parsing", CVPR 2013).

2,330 images with 11 per-class label maps each. Released layout (``SmithCVPR2013_dataset_resized``
or ``..._original``)::

    images/{name}.jpg
    labels/{name}/{name}_lbl00.png .. {name}_lbl10.png   one grey map per class, 0..255 (soft edges)
    exemplars.txt  tuning.txt  testing.txt                 "  1 , 100032540_1" per line

Classes of lbl00..lbl10: background, face skin, left brow, right brow, left eye, right eye, nose,
upper lip, inner mouth, lower lip, hair. A pixel takes the class whose map is largest (ties and
all-zero pixels: the lowest id, i.e. background). Split: exemplars = train (2,000), tuning =
validation (230), testing = test (100), as in the paper.

Pose: this release has no landmarks. By default the pose comes from the label map itself (PnP of
region centroids, see maskpose.py), which is coarse. For better poses pass ``--landmarks DIR`` with
300-W's 68-point ``.pts`` files for Helen (``{name}.pts``, searched recursively); those are drawn on
the *original* Helen images, so use them with ``SmithCVPR2013_dataset_original``: a landmark set
that does not sit on the face in the label map is refused.
Ears: Helen's face skin follows the jaw contour and excludes the ears, so a predicted ear is scored
as background.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facebench.errors import InvalidDataset, InvalidMask
from facebench.importers.common import Item, Reader, read_gray, read_lines, subject_of
from facebench.importers.elevenclass import MERGE_ELEVEN, eleven
from facebench.importers.landmarks import InvalidLandmarks, read_pts
from facebench.importers.maskpose import pose_from_mask
from facebench.importers.pnp import pose_from_68
from facebench.labels import FACEBENCH

LISTS = {"exemplars.txt": "train", "tuning.txt": "validation", "testing.txt": "test"}
N_MAPS = 11


def read_list(path: Path) -> list[str]:
    """Names from a Helen list file: ``index , name`` per line (a bare name is accepted too)."""
    names = []
    for ln in read_lines(path):
        if ln.strip():
            names.append(ln.split(",")[-1].strip().removesuffix(".jpg"))
    return names


class HelenReader(Reader):
    name = "helen"
    pretty_name = "Helen (face parsing)"
    source = eleven("helen")
    merge = {**MERGE_ELEVEN, "l_ear": "background", "r_ear": "background"}
    license = "other"
    citation = ("@inproceedings{smith2013exemplar,\n  title={Exemplar-Based Face Parsing},\n"
                "  author={Smith, Brandon M. and Zhang, Li and Brandt, Jonathan and Lin, Zhe and Yang, Jianchao},\n"
                "  booktitle={CVPR},\n"
                "  year={2013}\n}")
    notes = ("Assumed: Helen's face skin excludes the ears; override with --merge l_ear=skin --merge r_ear=skin.",)

    def __init__(self, root, options):
        super().__init__(root, options)
        lm = options.extra.get("landmarks")
        self.landmarks: dict[str, Path] = {}
        if lm is not None:
            if not Path(lm).is_dir():
                raise InvalidDataset("--landmarks must be a folder of 300-W .pts files", lm)
            self.landmarks = {p.stem: p for p in sorted(Path(lm).rglob("*.pts"))}

    def scan(self) -> list[Item]:
        if not (self.root / "images").is_dir() or not (self.root / "labels").is_dir():
            raise InvalidDataset("missing images/ or labels/: not the Helen (SmithCVPR2013) layout", self.root,
                                 hint="point at SmithCVPR2013_dataset_resized (or _original)")
        lists = [f for f in LISTS if (self.root / f).exists()]
        if not lists:
            raise InvalidDataset("none of exemplars.txt, tuning.txt, testing.txt found", self.root)
        items = []
        for f in lists:
            for n in read_list(self.root / f):
                maps = [self.root / "labels" / n / f"{n}_lbl{k:02d}.png" for k in range(N_MAPS)]
                items.append(Item(n, LISTS[f], subject_of(n), self.root / "images" / f"{n}.jpg",
                                  {"labels": maps, "landmarks": self.landmarks.get(n)}))
        return items

    def load_mask(self, item: Item) -> np.ndarray:
        maps = []
        for p in item.files["labels"]:
            if not p.exists():
                raise InvalidMask(f"missing part mask {p.name} (Helen has 11 per image: _lbl00.._lbl10)", p)
            maps.append(read_gray(p, "part mask"))
        shapes = {m.shape for m in maps}
        if len(shapes) != 1:
            raise InvalidMask(f"part masks differ in size: {sorted(shapes)}", item.files["labels"][0].parent)
        return np.argmax(np.stack(maps), axis=0).astype(np.uint8)

    def pose(self, item: Item, mask: np.ndarray):
        h, w = mask.shape
        pts = item.files.get("landmarks")
        if pts is None:
            pose, src, rms = pose_from_mask(mask)
            return pose, {"pose_source": src, "pose_rms_px": None if np.isnan(rms) else round(rms, 3)}
        xy = read_pts(pts, 68)
        _check_on_face(xy, mask, pts)
        r = pose_from_68(xy, w, h)
        return r.pose, {"pose_source": "pnp-landmarks-68", "pose_rms_px": round(r.rms_px, 3),
                        "pose_rms_rel": round(r.rms_rel, 4)}


def _check_on_face(xy: np.ndarray, mask: np.ndarray, path: Path) -> None:
    """The eye landmarks must sit near the labelled eyes (else: landmarks for a differently sized copy)."""
    for cls, idx in (("r_eye", slice(36, 42)), ("l_eye", slice(42, 48))):
        ys, xs = np.nonzero(mask == FACEBENCH.index(cls))
        if xs.size < 12:
            continue
        d = np.hypot(*(xy[idx].mean(0) - [xs.mean(), ys.mean()]))
        if d > 0.1 * max(mask.shape):
            raise InvalidLandmarks(f"{cls} landmarks are {d:.0f} px from the labelled {cls}",
                                   path, hint="300-W landmarks match SmithCVPR2013_dataset_original, not _resized")
