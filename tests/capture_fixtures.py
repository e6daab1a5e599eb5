"""Writers of every capture layout facebench reads, from one synthetic head (``generators.heads``).

A ``Rig`` is a head rendered from a few cameras in the head frame, plus the similarity ``head_to_world`` that
places the head in the capture's world (rotated, moved, and in another unit: a real capture's world frame is
arbitrary). Each ``write_*`` puts the renders and the cameras *in the world frame* on disk exactly as that
format documents them (no dataset file is copied) and returns the world cameras it wrote, for the tests to
compare what the readers give back. With a ``Distortion``, images are written as that lens would have
recorded them (``distort``), so that a reader's ``View.load_image`` must undistort them to match the render.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from facebench.captures import Camera, Distortion
from facebench.pose import Pose, look_at_head

GL = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class Rig:
    """Renders (head frame) and the similarity that puts the head in the capture's world."""

    cameras: list[Camera]  # head frame = render frame
    rgb: list[np.ndarray]  # H×W×3 uint8
    labels: list[np.ndarray]  # H×W uint8
    head_to_world: np.ndarray  # 4×4: scale·rotation, translation

    @property
    def scale(self) -> float:
        return float(np.cbrt(np.linalg.det(self.head_to_world[:3, :3])))

    def world_cameras(self) -> list[Camera]:
        """The same cameras in the world frame: x_cam·s = diag(s,s,s,1) · w2c · head_to_world⁻¹ · x_world
        (a camera's axes stay a rotation; distances come out in the world's unit)."""
        s = np.diag([self.scale] * 3 + [1.0])
        inv = np.linalg.inv(self.head_to_world)
        return [Camera(c.K, s @ c.world_to_camera @ inv, c.width, c.height) for c in self.cameras]


def similarity(seed: int, scale: float = 1.0) -> np.ndarray:
    """A random head→world similarity (any rotation, a translation of a few units, uniform ``scale``)."""
    rng = np.random.default_rng(seed)
    m = np.eye(4)
    m[:3, :3] = scale * Rotation.random(random_state=seed).as_matrix()
    m[:3, 3] = rng.uniform(-2, 2, 3) * scale
    return m


def make_rig(head, yaws: list[float], width: int, height: int, head_to_world: np.ndarray, fov: float = 30.0,
             distance: float = 0.85, labels: bool = True) -> Rig:
    """Render ``head`` from cameras at ``yaws`` (pitch alternating ±10°), non-square allowed (vertical ``fov``)."""
    from generators.heads import render_view

    f = 0.5 * height / np.tan(np.radians(fov) / 2)
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    cams = [Camera(K, look_at_head(Pose(y, 10.0 * (-1) ** i), distance), width, height) for i, y in enumerate(yaws)]
    renders = [render_view(head, c, supersample=1, bg_seed=i) for i, c in enumerate(cams)]
    return Rig(cams, [r.rgb for r in renders], [r.labels for r in renders] if labels else [], head_to_world)


# ---------------------------------------------------------------------------------------------------------------
# lenses


def distort(image: np.ndarray, K: np.ndarray, d: Distortion, nearest: bool = False) -> np.ndarray:
    """What a lens with distortion ``d`` records of the pinhole ``image`` (camera K, same size): for every pixel
    of the distorted image, its ideal position from OpenCV's iterative ``undistortPoints`` (checked against
    ``projectPoints`` to 1e-3 px), sampled with ``cv2.remap`` — another OpenCV path than the library's maps.
    Large images solve on a grid of every ``step``-th pixel and interpolate the (smooth) map between."""
    import cv2

    h, w = image.shape[:2]
    step = max(1, min(w, h) // 96)
    gx, gy = np.arange(0, w + step, step, dtype=np.float64), np.arange(0, h + step, step, dtype=np.float64)
    uv = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
    D = np.array(d.params)
    if d.model == "OPENCV_FISHEYE":
        ideal = cv2.fisheye.undistortPoints(uv, K, D, R=np.eye(3), P=K, criteria=crit)
    elif hasattr(cv2, "undistortPointsIter"):  # OpenCV 4.x
        ideal = cv2.undistortPointsIter(uv, K, D, np.eye(3), K, crit)
    else:
        ideal = cv2.undistortPoints(uv, K, D, R=np.eye(3), P=K, criteria=crit)
    # round trip: the ideal points, as rays, must project back onto the distorted pixels
    rays = cv2.convertPointsToHomogeneous(cv2.undistortPoints(ideal, K, None)).reshape(-1, 3)
    if d.model == "OPENCV_FISHEYE":
        back = cv2.fisheye.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, D)[0]
    else:
        back = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), K, D)[0]
    err = np.abs(back - uv).max()
    assert err < 1e-3, f"undistortPoints did not converge ({err:.2g} px)"
    grid = ideal.reshape(len(gy), len(gx), 2)
    v, u = np.mgrid[0:h, 0:w] / step  # the map at pixel (u, v) = the grid's, bilinearly, at (u / step, v / step)
    mx, my = (map_coordinates(grid[..., k], [v, u], order=1).astype(np.float32) for k in (0, 1))
    return cv2.remap(image, mx, my, cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def _num(x: float) -> str:
    return repr(float(x))


def _save(path: Path, array: np.ndarray, quality: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **({"quality": quality} if quality else {"compress_level": 1}))
    return path


def _pixels(rig: Rig, i: int, d: Distortion | None) -> np.ndarray:
    return rig.rgb[i] if d is None else distort(rig.rgb[i], rig.cameras[i].K, d)


# ---------------------------------------------------------------------------------------------------------------
# formats


def write_nerfstudio(root: Path, rig: Rig, model: str = "OPENCV", coeffs: dict[str, float] | None = None,
                     masks: bool = False, shared_intrinsics: bool = True, labels: bool = False) -> list[Camera]:
    """transforms.json with OpenGL camera→world, intrinsics (and the k/p coefficients) shared at the top or per
    frame, ``camera_model``, optional ``mask_path`` masks (0 = ignore: a band down the left edge) and facebench's
    ``label_path`` label maps (distorted like the images, nearest)."""
    coeffs = coeffs or {}
    d = _ns_distortion(model, coeffs)
    cams = rig.world_cameras()
    frames = []
    for i, c in enumerate(cams):
        _save(root / "images" / f"frame_{i:05d}.png", _pixels(rig, i, d))
        fr = {"file_path": f"images/frame_{i:05d}.png", "transform_matrix": (c.camera_to_world @ GL).tolist()}
        intr = {"fl_x": c.K[0, 0], "fl_y": c.K[1, 1], "cx": c.K[0, 2], "cy": c.K[1, 2], "w": c.width, "h": c.height,
                **coeffs}
        if not shared_intrinsics:
            fr.update(intr)
        if masks:
            m = np.full((c.height, c.width), 255, np.uint8)
            m[:, : c.width // 4] = 0
            _save(root / "masks" / f"frame_{i:05d}.png", m if d is None else distort(m, c.K, d, nearest=True))
            fr["mask_path"] = f"masks/frame_{i:05d}.png"
        if labels:
            lab = rig.labels[i] if d is None else distort(rig.labels[i], c.K, d, nearest=True)
            _save(root / "labels" / f"frame_{i:05d}.png", lab)
            fr["label_path"] = f"labels/frame_{i:05d}.png"
        frames.append(fr)
    doc = {"camera_model": model, **(intr if shared_intrinsics else {}), "frames": frames}
    (root / "transforms.json").write_text(json.dumps(doc, indent=1))
    return cams


def _ns_distortion(model: str, c: dict[str, float]) -> Distortion | None:
    g = {k: c.get(k, 0.0) for k in ("k1", "k2", "k3", "k4", "p1", "p2")}
    if model != "OPENCV_FISHEYE" and not any(g.values()):
        return None
    if model == "OPENCV_FISHEYE":
        return Distortion(model, (g["k1"], g["k2"], g["k3"], g["k4"]))
    return Distortion("OPENCV", (g["k1"], g["k2"], g["p1"], g["p2"], g["k3"]))


def colmap_params(model: str, c: Camera, coeffs: tuple[float, ...] = ()) -> list[float]:
    fx, fy, cx, cy = c.K[0, 0], c.K[1, 1], c.K[0, 2], c.K[1, 2]
    return ([fx, cx, cy] if model.startswith("SIMPLE") or model in ("RADIAL", "RADIAL_FISHEYE")
            else [fx, fy, cx, cy]) + list(coeffs)


COLMAP_IDS = {"SIMPLE_PINHOLE": 0, "PINHOLE": 1, "SIMPLE_RADIAL": 2, "RADIAL": 3, "OPENCV": 4, "OPENCV_FISHEYE": 5,
              "FULL_OPENCV": 6, "FOV": 7, "SIMPLE_RADIAL_FISHEYE": 8, "RADIAL_FISHEYE": 9, "THIN_PRISM_FISHEYE": 10}


def write_colmap(root: Path, rig: Rig, model: str = "PINHOLE", coeffs: tuple[float, ...] = (),
                 distortion: Distortion | None = None, binary: bool = True, sub: str = "sparse/0",
                 points: bool = True) -> list[Camera]:
    """A COLMAP project: ``images/`` and a model in ``sub`` (text or binary, one camera per image, its 2D points
    and an optional points3D file). ``distortion`` is the same lens in OpenCV's terms, for the pixels."""
    cams = rig.world_cameras()
    model_dir = root / sub
    model_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for i, c in enumerate(cams):
        name = f"cam{i:02d}.png"
        _save(root / "images" / name, _pixels(rig, i, distortion))
        x, y, z, w = Rotation.from_matrix(c.world_to_camera[:3, :3]).as_quat()
        records.append((i + 1, [w, x, y, z], c.world_to_camera[:3, 3].tolist(), i + 1, name,
                        colmap_params(model, c, coeffs), c))
    if binary:
        cb = struct.pack("<Q", len(records))
        ib = struct.pack("<Q", len(records))
        for iid, q, t, cid, name, params, c in records:
            cb += struct.pack("<iiQQ", cid, COLMAP_IDS[model], c.width, c.height) + struct.pack(f"<{len(params)}d",
                                                                                              *params)
            pts = [(1.5, 2.5, -1), (10.0, 11.0, 7)]
            ib += (struct.pack("<idddddddi", iid, *q, *t, cid) + name.encode() + b"\0" + struct.pack("<Q", len(pts))
                   + b"".join(struct.pack("<ddq", *p) for p in pts))
        (model_dir / "cameras.bin").write_bytes(cb)
        (model_dir / "images.bin").write_bytes(ib)
        if points:
            (model_dir / "points3D.bin").write_bytes(struct.pack("<Q", 1) + struct.pack("<QdddBBBd", 7, 0, 0, 0, 1,
                                                                                      2, 3, 0.5)
                                                      + struct.pack("<Q", 1) + struct.pack("<ii", 1, 1))
    else:
        (model_dir / "cameras.txt").write_text(
            "# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
            + "".join(f"{cid} {model} {c.width} {c.height} {' '.join(_num(p) for p in params)}\n"
                      for _, _, _, cid, _, params, c in records))
        (model_dir / "images.txt").write_text(
            "# Image list with two lines of data per image:\n"
            + "".join(f"{iid} {' '.join(map(_num, q))} {' '.join(map(_num, t))} {cid} {name}\n"
                      + ("1.5 2.5 -1 10.0 11.0 7\n" if iid % 2 else "\n")
                      for iid, q, t, cid, name, _, _ in records))
        if points:
            (model_dir / "points3D.txt").write_text("# 3D point list\n7 0 0 0 1 2 3 0.5 1 1\n")
    return cams


def write_facescape(root: Path, rig: Rig, dist: tuple[float, ...] = (0.0,) * 5, invalid: tuple[int, ...] = (),
                    padded_k: bool = False) -> list[Camera]:
    """``{i}.jpg`` + params.json (``{i}_K``, ``{i}_Rt`` 3×4, ``{i}_distortion`` k1 k2 p1 p2 k3, width, height,
    valid, matches, sn, ori); returns the cameras of the valid views."""
    cams = rig.world_cameras()
    d = Distortion("OPENCV", dist) if any(dist) else None
    params: dict = {}
    for i, c in enumerate(cams):
        _save(root / f"{i}.jpg", _pixels(rig, i, d), quality=95)
        K = c.K.tolist()
        if padded_k:
            K = [[*row, 0.0] for row in K] + [[0.0, 0.0, 0.0, 1.0]]
        params.update({f"{i}_K": K, f"{i}_Rt": c.world_to_camera[:3].tolist(), f"{i}_distortion": list(dist),
                       f"{i}_width": c.width, f"{i}_height": c.height, f"{i}_matches": 1000,
                       f"{i}_valid": i not in invalid, f"{i}_sn": f"SN{i:04d}", f"{i}_ori": f"IMG_{i:04d}.JPG"})
    (root / "params.json").write_text(json.dumps(params))
    return [c for i, c in enumerate(cams) if i not in invalid]


SERIALS = ["222200042", "222200044", "222200046", "222200040", "222200036", "222200048", "220700191", "222200041"]
FULL_SIZE = (2200, 3208)


def write_nersemble(root: Path, rig: Rig, layout: str = "v1", sequence: str = "EXP-1-head",
                    frames: tuple[int, ...] = (0, 3)) -> list[Camera]:
    """A participant folder. ``v1``: camera_params.json with one shared K for the full 2200×3208 frames and
    downscaled images in ``sequences/{seq}/frame_{t:05d}/images-2x/cam_{serial}.png``; ``benchmark``: per-serial
    intrinsics at the images' size, ``calibration/camera_params.json`` and ``images/cam_{serial}.png``."""
    cams = rig.world_cameras()
    serials = SERIALS[: len(cams)]
    w2c = {s: c.world_to_camera.tolist() for s, c in zip(serials, cams, strict=True)}
    if layout == "v1":
        full = Camera(cams[0].K, np.eye(4), cams[0].width, cams[0].height).scaled(*FULL_SIZE)
        doc = {"world_2_cam": w2c, "intrinsics": full.K.tolist()}
        (root / "camera_params.json").parent.mkdir(parents=True, exist_ok=True)
        (root / "camera_params.json").write_text(json.dumps(doc))
        for t in frames:
            for i, s in enumerate(serials):
                _save(root / "sequences" / sequence / f"frame_{t:05d}" / "images-2x" / f"cam_{s}.png", rig.rgb[i])
        return [Camera(full.scaled(c.width, c.height).K, c.world_to_camera, c.width, c.height) for c in cams]
    doc = {"world_2_cam": w2c, "intrinsics": {s: c.K.tolist() for s, c in zip(serials, cams, strict=True)}}
    (root / "calibration").mkdir(parents=True, exist_ok=True)
    (root / "calibration" / "camera_params.json").write_text(json.dumps(doc))
    for i, s in enumerate(serials):
        _save(root / "images" / f"cam_{s}.png", rig.rgb[i])
    return cams


def write_multiface(root: Path, rig: Rig, dist: tuple[float, ...] = (0.0,) * 5,
                    expression: str = "E001_Neutral_Eyes_Open", frames: tuple[str, ...] = ("000102", "000105"),
                    sizes_in_krt: bool = False) -> list[Camera]:
    """An entity folder: KRT blocks (name [w h], K, k1 k2 p1 p2 k3, [R | t], blank) and
    ``images/{expression}/{camera}/{frame}.png``, plus a second expression with fewer cameras."""
    cams = rig.world_cameras()
    d = Distortion("OPENCV", dist) if any(dist) else None
    blocks = []
    for i, c in enumerate(cams):
        name = f"4000{i + 2:02d}"
        head = f"{name} {c.width} {c.height}" if sizes_in_krt else name
        rt = c.world_to_camera[:3]
        blocks.append("\n".join([head, *(" ".join(_num(x) for x in row) for row in c.K),
                                 " ".join(_num(x) for x in dist), *(" ".join(_num(x) for x in row) for row in rt)]))
        for f in frames:
            _save(root / "images" / expression / name / f"{f}.png", _pixels(rig, i, d))
        _save(root / "images" / "E002_Swallow" / name / "000200.png", _pixels(rig, i, d)) if i < 2 else None
    (root / "KRT").write_text("\n\n".join(blocks) + "\n\n")
    (root / "tracked_mesh" / expression).mkdir(parents=True, exist_ok=True)
    (root / "tracked_mesh" / expression / f"{frames[0]}_transform.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n")
    return cams
