"""Tiny synthetic copies of each released layout, for tests and for trying ``facebench import`` without data.

A face is the mean 3D face projected through a pinhole camera at a known pose, its regions drawn as
polygons through the projected landmarks. Nothing here is derived from the real datasets; only the
file formats are theirs. Every writer returns the ground truth it encoded: per image the facebench
mask, the pose, and the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.spatial import ConvexHull

from facebench.importers.celebamask_hq import PARTS
from facebench.importers.elevenclass import ELEVEN
from facebench.importers.landmarks import LAPA106_TO_68, mean_face, write_lapa_txt, write_pts
from facebench.importers.pnp import intrinsics, project
from facebench.labels import CELEBAMASK_HQ, FACEBENCH, LabelSet
from facebench.pose import Pose, pose_to_rotation

C = {n: i for i, n in enumerate(FACEBENCH.names)}
SWAP = {"l_brow": "r_brow", "r_brow": "l_brow", "l_eye": "r_eye", "r_eye": "l_eye", "l_ear": "r_ear", "r_ear": "l_ear"}


@dataclass
class FixtureFace:
    name: str
    split: str
    pose: Pose
    mask: np.ndarray  # facebench ids
    image: np.ndarray
    lm68: np.ndarray  # (68, 2) pixels


def synthetic_face(pose: Pose, size: int = 128, seed: int = 0, name: str = "face", split: str = "test") -> FixtureFace:
    """Project the mean face at ``pose`` and paint its regions (facebench classes) and an RGB image."""
    rng = np.random.default_rng(seed)
    k = intrinsics(size, size)
    p3 = mean_face().points
    r = pose_to_rotation(pose)
    t = np.array([0.0, 0.0, 0.42])
    uv = project(p3, r, t, k)
    img = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(img)

    def poly(idx, cls: str) -> None:
        d.polygon([tuple(uv[i]) for i in idx], fill=C[cls])

    chin = uv[8]
    top = uv[list(range(17, 27))]
    up = (uv[27] - chin) * 0.6
    d.ellipse([*(uv[0] + up * 1.2 - 4), *(uv[16] + 4)], fill=C["hair"])
    x0, x1 = sorted((uv[5, 0], uv[11, 0]))
    d.rectangle([x0, min(chin[1] - 6, size - 8), x1, size], fill=C["neck"])
    d.rectangle([0, min(chin[1] + 0.25 * size, size - 4), size, size], fill=C["cloth"])
    # Ears: behind the jaw ends, only on the side turned to the camera.
    for j, cls in ((0, "r_ear"), (16, "l_ear")):
        depth = (p3[j] @ r.T + t)[2] - (p3[27] @ r.T + t)[2]
        if depth < 0.06:
            c = uv[j] + (uv[j] - uv[27]) * 0.08
            d.ellipse([c[0] - 4, c[1] - 6, c[0] + 4, c[1] + 6], fill=C[cls])
    outline = np.concatenate([uv[:17], top + up])
    hull = ConvexHull(outline)
    d.polygon([tuple(p) for p in outline[hull.vertices]], fill=C["skin"])
    poly([27, 31, 32, 33, 34, 35], "nose")
    for idx, cls in ((range(17, 22), "r_brow"), (range(22, 27), "l_brow")):
        d.line([tuple(uv[i]) for i in idx], fill=C[cls], width=3)
    poly(range(36, 42), "r_eye")
    poly(range(42, 48), "l_eye")
    poly([48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60], "u_lip")
    poly([54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64], "l_lip")
    poly(range(60, 68), "mouth")
    mask = np.asarray(img, dtype=np.uint8).copy()
    colours = rng.integers(30, 226, size=(256, 3))
    image = (colours[mask] + rng.normal(0, 6, (size, size, 3))).clip(0, 255).astype(np.uint8)
    return FixtureFace(name, split, pose, mask, image, uv)


def to_source(mask: np.ndarray, source: LabelSet, sides: str = "subject") -> np.ndarray:
    """A facebench mask in a dataset's ids (classes it lacks: background, except hair/skin kept by name)."""
    lut = np.zeros(256, dtype=np.uint8)
    names = list(source.names)
    for i, n in enumerate(FACEBENCH.names):
        n = SWAP.get(n, n) if sides == "image" else n
        lut[i] = names.index(n) if n in names else 0
    return lut[mask]


def expected_mask(mask: np.ndarray, source: LabelSet) -> np.ndarray:
    """What an import should produce from ``to_source(mask, source)``: lacking classes end as background."""
    back = to_source(mask, source)
    return FACEBENCH.lut_from(source)[back]


DEFAULT_POSES = (Pose(-10, 5, 3), Pose(40, -5, -4), Pose(-70, 0, 0))


def _faces(splits: dict[str, int], size: int, poses=DEFAULT_POSES, prefix: str = "") -> list[FixtureFace]:
    out = []
    n = 0
    for split, count in splits.items():
        for j in range(count):
            pose = poses[n % len(poses)]
            out.append(synthetic_face(pose, size, seed=n, name=f"{prefix}{1000 + n}_{j}", split=split))
            n += 1
    return out


def _lm106(lm68: np.ndarray) -> np.ndarray:
    out = np.tile(lm68.mean(0), (106, 1))
    out[LAPA106_TO_68[:, 1]] = lm68[LAPA106_TO_68[:, 0]]
    out[1:32:2] = 0.5 * (out[0:31:2] + out[2:33:2])
    return out


def write_lapa(root: Path, size: int = 128, sides: str = "subject", per_split: int = 3) -> list[FixtureFace]:
    faces = _faces({"train": per_split, "val": per_split, "test": per_split}, size)
    src = LabelSet(ELEVEN, name="lapa")
    for f in faces:
        base = Path(root) / f.split
        for sub in ("images", "labels", "landmarks"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(f.image).save(base / "images" / f"{f.name}.jpg", quality=95)
        Image.fromarray(to_source(f.mask, src, sides)).save(base / "labels" / f"{f.name}.png")
        write_lapa_txt(base / "landmarks" / f"{f.name}.txt", _lm106(f.lm68))
        f.split = {"val": "validation"}.get(f.split, f.split)
    return faces


def write_ibugmask(root: Path, size: int = 128, sides: str = "subject", per_split: int = 3,
                   splits: tuple[str, ...] = ("train", "test"), poses: tuple[Pose, ...] = DEFAULT_POSES,
                   ) -> list[FixtureFace]:
    faces = _faces(dict.fromkeys(splits, per_split), size, poses)
    src = LabelSet(ELEVEN, name="ibugmask")
    for f in faces:
        base = Path(root) / f.split
        base.mkdir(parents=True, exist_ok=True)
        Image.fromarray(f.image).save(base / f"{f.name}.jpg", quality=95)
        Image.fromarray(to_source(f.mask, src, sides)).save(base / f"{f.name}.png")
        write_pts(base / f"{f.name}.pts", f.lm68)
    return faces


def write_helen(root: Path, size: int = 128, sides: str = "subject", per_split: int = 3) -> list[FixtureFace]:
    faces = _faces({"exemplars": per_split, "tuning": per_split, "testing": per_split}, size)
    src = LabelSet(ELEVEN, name="helen")
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {}
    for f in faces:
        lists.setdefault(f.split, []).append(f.name)
        Image.fromarray(f.image).save(root / "images" / f"{f.name}.jpg", quality=95)
        m = to_source(f.mask, src, sides)
        (root / "labels" / f.name).mkdir(parents=True, exist_ok=True)
        for c in range(len(ELEVEN)):
            soft = np.where(m == c, 255, 0).astype(np.uint8)
            Image.fromarray(soft).save(root / "labels" / f.name / f"{f.name}_lbl{c:02d}.png")
        f.split = {"exemplars": "train", "tuning": "validation", "testing": "test"}[f.split]
    for split, names in lists.items():
        (root / f"{split}.txt").write_text("".join(f"{i + 1:4d} , {n}\n" for i, n in enumerate(names)))
    return faces


def write_celebamask_hq(root: Path, size: int = 128, sides: str = "subject", n: int = 9,
                        pose_signs: tuple[int, int, int] = (1, 1, 1)) -> list[FixtureFace]:
    """Images at twice the mask size (like the real 1024 vs 512); poses written times ``pose_signs``."""
    root = Path(root)
    poses = [Pose(y, p, r) for y, p, r in ((-25, 12, 8), (35, -15, -10), (60, 10, 12), (-50, -12, -9),
                                           (15, 15, 10), (-70, -10, 6))]
    faces = [synthetic_face(poses[k % len(poses)], size, seed=k, name=f"{k:05d}") for k in range(n)]
    (root / "CelebA-HQ-img").mkdir(parents=True, exist_ok=True)
    mapping, partition, pose_lines = ["idx orig_idx orig_file"], [], []
    for k, f in enumerate(faces):
        big = Image.fromarray(f.image).resize((2 * size, 2 * size), Image.Resampling.NEAREST)
        big.save(root / "CelebA-HQ-img" / f"{k}.jpg", quality=95)
        m = to_source(f.mask, CELEBAMASK_HQ, sides)
        folder = root / "CelebAMask-HQ-mask-anno" / str(k // 2000)
        folder.mkdir(parents=True, exist_ok=True)
        for cid, part in enumerate(PARTS, start=1):
            if (m == cid).any():
                Image.fromarray(np.where(m == cid, 255, 0).astype(np.uint8)).save(folder / f"{k:05d}_{part}.png")
        orig = f"{100001 + 7 * k:06d}.jpg"
        mapping.append(f"{k} {100000 + 7 * k} {orig}")
        f.split = ("train", "validation", "test")[k % 3]
        partition.append(f"{orig} {k % 3}")
        s = np.asarray(pose_signs, dtype=float)
        pose_lines.append(f"{k}.jpg {s[0] * f.pose.yaw:.3f} {s[1] * f.pose.pitch:.3f} {s[2] * f.pose.roll:.3f}")
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(mapping) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    (root / "CelebAMask-HQ-pose-anno.txt").write_text(f"{n}\nYaw Pitch Raw\n" + "\n".join(pose_lines) + "\n")
    return faces
