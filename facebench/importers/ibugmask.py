"""iBugMask (Lin et al., "RoI Tanh-polar transformer network for face parsing in the wild", 2021).

1,000 in-the-wild test faces with large poses, plus a training set; 11 classes and iBUG-68 landmarks.
Released layout (both variants are accepted)::

    ibugmask_release/{train,test}/{name}.jpg  {name}.png  {name}.pts        flat
    ibugmask_release/{train,test}/images/{name}.jpg  labels/{name}.png  landmarks/{name}.pts

Labels are uint8 ids 0..10 in elevenclass.ELEVEN order; ``.pts`` are 300-W style 68-point files.
Pose: PnP of the 68 landmarks against the mean face. Its skin covers face and scalp; ears are taken
to be skin as well (override with ``--merge``).
"""

from __future__ import annotations

from pathlib import Path

from facebench.errors import InvalidDataset, InvalidMask
from facebench.importers.common import Item, Reader, read_gray, subject_of
from facebench.importers.elevenclass import MERGE_ELEVEN, eleven
from facebench.importers.landmarks import InvalidLandmarks, read_pts
from facebench.importers.lapa import _inside
from facebench.importers.pnp import pose_from_68

SPLITS = {"train": "train", "test": "test"}


class IbugMaskReader(Reader):
    name = "ibugmask"
    pretty_name = "iBugMask"
    source = eleven("ibugmask")
    merge = {**MERGE_ELEVEN, "l_ear": "skin", "r_ear": "skin"}
    license = "other"
    citation = ("@article{lin2021roi,\n  title={RoI Tanh-polar transformer network for face parsing in the wild},\n"
                "  author={Lin, Yiming and Shen, Jie and Wang, Yujiang and Pantic, Maja},\n"
                "  journal={Image and Vision Computing},\n  volume={112},\n  year={2021}\n}")
    notes = ("Pose: PnP of the 68 landmarks against facebench's mean 3D face (assumed focal length).",
             "Assumed: ears are part of iBugMask's skin; "
             "override with --merge l_ear=background --merge r_ear=background.")

    def _folders(self) -> list[tuple[Path, str]]:
        found = [(self.root / d, s) for d, s in SPLITS.items() if (self.root / d).is_dir()]
        if not found and any(self.root.glob("*.pts")):
            found = [(self.root, "test")]  # only the test folder, unpacked as is
        if not found:
            raise InvalidDataset("no train/ or test/ folder with .jpg/.png/.pts files: not the iBugMask layout",
                                 self.root, hint="point at the unpacked ibugmask_release folder")
        return found

    def scan(self) -> list[Item]:
        items = []
        for base, split in self._folders():
            nested = (base / "images").is_dir()
            img_dir = base / "images" if nested else base
            for img in sorted(img_dir.glob("*.jpg")):
                n = img.stem
                label = base / "labels" / f"{n}.png" if nested else base / f"{n}.png"
                pts = base / "landmarks" / f"{n}.pts" if nested else base / f"{n}.pts"
                items.append(Item(n, split, subject_of(n), img, {"label": label, "landmarks": pts}))
        return items

    def load_mask(self, item: Item):
        m = read_gray(item.files["label"])
        bad = m[(m >= len(self.source)) & (m != 255)]
        if bad.size:
            raise InvalidMask(f"label value {int(bad[0])} outside iBugMask's 0..10", item.files["label"])
        return m

    def pose(self, item: Item, mask):
        xy = read_pts(item.files["landmarks"], 68)
        h, w = mask.shape
        if not _inside(xy, w, h):
            raise InvalidLandmarks(f"landmarks fall outside the {w}×{h} image", item.files["landmarks"])
        r = pose_from_68(xy, w, h)
        return r.pose, {"pose_source": "pnp-landmarks-68", "pose_rms_px": round(r.rms_px, 3),
                        "pose_rms_rel": round(r.rms_rel, 4)}
