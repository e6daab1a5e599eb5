"""CelebAMask-HQ (Lee, Liu, Wu, Luo: MaskGAN, CVPR 2020): 30,000 faces, 19 classes, per-part masks.

Released layout::

    CelebA-HQ-img/{k}.jpg                               1024×1024
    CelebAMask-HQ-mask-anno/{k // 2000}/{k:05d}_{part}.png   512×512, one binary mask per part present
    CelebA-HQ-to-CelebA-mapping.txt                     "idx orig_idx orig_file"
    CelebAMask-HQ-pose-anno.txt                         count, "Yaw Pitch Raw", then "{k}.jpg yaw pitch roll"

Labels: part masks are painted in the official order of the dataset's ``g_mask.py`` (skin, nose,
eye_g, l_eye, r_eye, l_brow, r_brow, l_ear, r_ear, mouth, u_lip, l_lip, hair, hat, ear_r, neck_l,
neck, cloth), a later part overwriting an earlier one. A missing part file means that part is not
in the picture; an image with no part file at all is an error. Images are resized to the masks'
512×512 (Lanczos); any other size than an integer multiple of the mask size is an error.

Split: the official one is CelebA's ``list_eval_partition.txt`` (0 train, 1 val, 2 test; from CelebA's
``Eval/`` folder, not shipped with CelebAMask-HQ) read through the mapping file. Pass it with
``--celeba-partition`` or put it in the dataset folder. CelebA's ``identity_CelebA.txt`` in the folder
gives subjects; otherwise each image is its own subject.

Pose: the dataset's own file. Its sign convention is undocumented, so each angle's sign is checked
against a pose estimated from the masks of a sample of images (maskpose.py) and flipped where they
disagree clearly; the decision and its evidence go into the card.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from facebench.errors import InvalidDataset, InvalidMask, require_exists
from facebench.importers.common import Item, Reader, read_gray, read_lines, read_rgb
from facebench.importers.maskpose import pose_from_mask
from facebench.labels import CELEBAMASK_HQ
from facebench.pose import Pose

PARTS = CELEBAMASK_HQ.names[1:]  # painting order = official ids 1..18
PARTITION = {"0": "train", "1": "validation", "2": "test"}
POSE_FILE = "CelebAMask-HQ-pose-anno.txt"
MIN_CORR = 0.3  # flip an angle's sign only on clear evidence


class CelebAMaskHQReader(Reader):
    name = "celebamask-hq"
    pretty_name = "CelebAMask-HQ"
    source = CELEBAMASK_HQ
    merge = {}
    license = "other"
    citation = ("@inproceedings{CelebAMask-HQ,\n  title={MaskGAN: Towards Diverse and Interactive Facial Image "
                "Manipulation},\n  author={Lee, Cheng-Han and Liu, Ziwei and Wu, Lingyun and Luo, Ping},\n"
                "  booktitle={CVPR},\n  year={2020}\n}")
    notes = ("Non-commercial research and educational use only (CelebA terms).",)

    def __init__(self, root, options):
        super().__init__(root, options)
        self.signs = np.ones(3)
        self.poses: dict[int, tuple[float, float, float]] = {}

    def _partition(self) -> dict[str, str]:
        given = self.options.extra.get("partition")
        path = Path(given) if given else self.root / "list_eval_partition.txt"
        if not path.exists():
            raise InvalidDataset("no list_eval_partition.txt for the official split", self.root,
                                 hint="get it from CelebA's Eval/ folder and pass --celeba-partition FILE")
        out = {}
        for ln in read_lines(path, "partition file"):
            parts = ln.split()
            if len(parts) == 2 and parts[1] in PARTITION:
                out[parts[0]] = PARTITION[parts[1]]
        return out

    def scan(self) -> list[Item]:
        img_dir = self.root / "CelebA-HQ-img"
        anno = self.root / "CelebAMask-HQ-mask-anno"
        for p in (img_dir, anno):
            if not p.is_dir():
                raise InvalidDataset(f"missing {p.name}/: not the CelebAMask-HQ layout", self.root)
        mapping = require_exists(self.root / "CelebA-HQ-to-CelebA-mapping.txt", "CelebA-HQ-to-CelebA mapping")
        orig = {}
        for ln in read_lines(mapping, "mapping file")[1:]:
            parts = ln.split()
            if len(parts) == 3 and parts[0].isdigit():
                orig[int(parts[0])] = parts[2]
        split_of = self._partition()
        identity = {}
        if (self.root / "identity_CelebA.txt").exists():
            identity = dict(ln.split()[:2] for ln in read_lines(self.root / "identity_CelebA.txt", "identity file")
                            if len(ln.split()) >= 2)
        self.poses = self._read_poses()
        parts: dict[int, list[Path]] = {}
        for p in anno.glob("*/*.png"):
            k, _, _ = p.stem.partition("_")
            if k.isdigit():
                parts.setdefault(int(k), []).append(p)
        items = []
        for img in sorted(img_dir.glob("*.jpg"), key=lambda p: (len(p.stem), p.stem)):
            if not img.stem.isdigit():
                continue
            k = int(img.stem)
            if k not in orig:
                raise InvalidDataset(f"image {k} is not in the mapping file", mapping)
            if orig[k] not in split_of:
                raise InvalidDataset(f"CelebA file {orig[k]} (image {k}) is not in the partition file", self.root)
            by_part = {p.stem.partition("_")[2]: p for p in parts.get(k, [])}
            items.append(Item(f"{k:05d}", split_of[orig[k]], identity.get(orig[k], f"{k:05d}"), img,
                              {"parts": by_part, "celeba_file": orig[k]}))
        return items

    def _read_poses(self) -> dict[int, tuple[float, float, float]]:
        path = self.root / POSE_FILE
        if not path.exists():
            return {}
        out = {}
        for n, ln in enumerate(read_lines(path, "pose file")):
            parts = ln.split()
            if n < 2 or not parts:
                continue
            try:
                angles = (float(parts[1]), float(parts[2]), float(parts[3]))
                if not all(math.isfinite(a) for a in angles):
                    raise ValueError
                out[int(Path(parts[0]).stem)] = angles
            except (ValueError, IndexError):
                raise InvalidDataset(f"line {n + 1}: expected '<k>.jpg yaw pitch roll' (finite degrees)",
                                     path) from None
        return out

    def load_mask(self, item: Item) -> np.ndarray:
        by_part = item.files["parts"]
        if not by_part:
            raise InvalidMask(f"no part masks for image {item.id}", self.root / "CelebAMask-HQ-mask-anno",
                              hint=f"expected files like {int(item.id) // 2000}/{item.id}_skin.png")
        unknown = sorted(set(by_part) - set(PARTS))
        if unknown:
            raise InvalidMask(f"unknown part '{unknown[0]}'", by_part[unknown[0]])
        out = None
        for cid, part in enumerate(PARTS, start=1):
            if part in by_part:
                m = read_gray(by_part[part], "part mask")
                if out is None:
                    out = np.zeros(m.shape, np.uint8)
                elif m.shape != out.shape:
                    raise InvalidMask(f"part mask is {m.shape[1]}×{m.shape[0]}, others {out.shape[1]}×{out.shape[0]}",
                                      by_part[part])
                out[m != 0] = cid
        return out

    def load_image(self, item: Item, mask_shape: tuple[int, int]) -> np.ndarray:
        img = read_rgb(item.image)
        h, w = img.shape[:2]
        mh, mw = mask_shape
        if (h, w) == (mh, mw):
            return img
        if h % mh or w % mw or h // mh != w // mw:
            raise InvalidMask(f"image is {w}×{h}; expected {mw}×{mh} or an integer multiple (1024×1024)", item.image)
        return np.asarray(Image.fromarray(img).resize((mw, mh), Image.Resampling.LANCZOS))

    def prepare(self, checked, lut) -> dict:
        """Check the pose file's signs against mask-based poses of the sampled images."""
        if not self.poses:
            return {"pose_file": "missing: poses estimated from the masks"}
        ann, est = [], []
        for it, mask in checked:
            k = int(it.id)
            p, src, _ = pose_from_mask(mask)
            if k in self.poses and src == "pnp-mask-centroids":
                ann.append(self.poses[k])
                est.append((p.yaw, p.pitch, p.roll))
        ann_a, est_a = np.asarray(ann).reshape(-1, 3), np.asarray(est).reshape(-1, 3)
        corr = []
        for j in range(3):
            ok = len(ann_a) >= 8 and ann_a[:, j].std() > 1e-6 and est_a[:, j].std() > 1e-6
            c = float(np.corrcoef(ann_a[:, j], est_a[:, j])[0, 1]) if ok else float("nan")
            corr.append(c)
            self.signs[j] = -1.0 if c < -MIN_CORR else 1.0
        names = ("yaw", "pitch", "roll")
        return {"pose_file_signs": {n: int(s) for n, s in zip(names, self.signs, strict=True)},
                "pose_file_sign_check": {"n": len(ann_a), **{f"corr_{n}": None if np.isnan(c) else round(c, 3)
                                                             for n, c in zip(names, corr, strict=True)}}}

    def pose(self, item: Item, mask: np.ndarray):
        k = int(item.id)
        if k in self.poses:
            y, p, r = np.asarray(self.poses[k]) * self.signs
            return Pose(float(y), float(p), float(r)), {"pose_source": "annotation",
                                                        "pose_file_values": list(self.poses[k])}
        pose, src, _ = pose_from_mask(mask)
        return pose, {"pose_source": src}
