"""LaPa (Liu et al., AAAI 2020): 22,168 images, 11 classes, 106 landmarks per face.

Released layout::

    LaPa/{train,val,test}/images/{name}.jpg
                         /labels/{name}.png       uint8 ids 0..10 (elevenclass.ELEVEN order)
                         /landmarks/{name}.txt    "106" then 106 lines "x y" (pixels)

Pose: PnP of the 60 landmarks with an iBUG-68 counterpart (landmarks.LAPA106_TO_68) against the mean
face. The mapping is checked on the sampled images first (layoutcheck.py): a group of points that does
not fit the mean face (a mis-indexed eye, say) is left out, and the card says so.
Ears: LaPa's skin is taken to include the ears, so a predicted ear is scored as skin.
"""

from __future__ import annotations

from facebench.errors import InvalidDataset, InvalidMask
from facebench.importers.common import Item, Reader, read_gray, subject_of
from facebench.importers.elevenclass import MERGE_ELEVEN, eleven
from facebench.importers.landmarks import LAPA106_TO_68, InvalidLandmarks, read_lapa_txt
from facebench.importers.layoutcheck import check_layout
from facebench.importers.pnp import pose_from_68

SPLITS = {"train": "train", "val": "validation", "test": "test"}


class LapaReader(Reader):
    name = "lapa"
    pretty_name = "LaPa"
    source = eleven("lapa")
    merge = {**MERGE_ELEVEN, "l_ear": "skin", "r_ear": "skin"}
    license = "other"
    citation = ("@inproceedings{liu2020new,\n  title={A New Dataset and Boundary-Attention Semantic Segmentation for "
                "Face Parsing},\n  author={Liu, Yinglu and Shi, Hailin and Shen, Hao and Si, Yue and Wang, Xiaobo "
                "and Mei, Tao},\n  booktitle={AAAI},\n  year={2020}\n}")
    notes = ("Pose: PnP of 60 of LaPa's 106 landmarks against facebench's mean 3D face (assumed focal length).",
             "Assumed: ears are part of LaPa's skin; override with --merge l_ear=background --merge r_ear=background.")

    def scan(self) -> list[Item]:
        items = []
        found = [d for d in SPLITS if (self.root / d).is_dir()]
        if not found:
            raise InvalidDataset("no train/, val/ or test/ folder: not the LaPa layout", self.root,
                                 hint="point at the folder that holds LaPa's train, val and test folders")
        for d in found:
            base = self.root / d
            for sub in ("images", "labels", "landmarks"):
                if not (base / sub).is_dir():
                    raise InvalidDataset(f"missing {sub}/ folder", base)
            for img in sorted((base / "images").glob("*.jpg")):
                n = img.stem
                files = {"label": base / "labels" / f"{n}.png", "landmarks": base / "landmarks" / f"{n}.txt"}
                items.append(Item(n, SPLITS[d], subject_of(n), img, files))
        return items

    def load_mask(self, item: Item):
        m = read_gray(item.files["label"])
        bad = m[(m >= len(self.source)) & (m != 255)]
        if bad.size:
            raise InvalidMask(f"label value {int(bad[0])} outside LaPa's 0..10", item.files["label"])
        return m

    def __init__(self, root, options):
        super().__init__(root, options)
        self.pairs = LAPA106_TO_68

    def prepare(self, checked, lut) -> dict:
        """Fit the sampled images and drop any landmark group whose mapping to iBUG-68 does not fit."""
        samples = []
        for it, mask in checked:
            xy = read_lapa_txt(it.files["landmarks"], 106)
            samples.append((xy[LAPA106_TO_68[:, 1]], mask.shape[1], mask.shape[0]))
        check = check_layout(samples, LAPA106_TO_68[:, 0])
        self.pairs = LAPA106_TO_68[check.keep]
        return {"landmark_layout_check": check.to_dict()}

    def pose(self, item: Item, mask):
        xy = read_lapa_txt(item.files["landmarks"], 106)
        h, w = mask.shape
        if not _inside(xy, w, h):
            raise InvalidLandmarks(f"landmarks fall outside the {w}×{h} image", item.files["landmarks"])
        r = pose_from_68(xy[self.pairs[:, 1]], w, h, self.pairs[:, 0])
        return r.pose, {"pose_source": "pnp-landmarks-lapa106", "pose_rms_px": round(r.rms_px, 3),
                        "pose_rms_rel": round(r.rms_rel, 4)}


def _inside(xy, w: int, h: int, margin: float = 0.5) -> bool:
    """Landmarks may leave the frame a little (occluded jaw), not by half an image."""
    return bool((xy[:, 0] > -margin * w).all() and (xy[:, 0] < (1 + margin) * w).all()
                and (xy[:, 1] > -margin * h).all() and (xy[:, 1] < (1 + margin) * h).all())
