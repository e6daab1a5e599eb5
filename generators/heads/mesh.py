"""The head-and-shoulders template: MakeHuman's base mesh cropped, triangulated, in the head frame.

Frames. MakeHuman stores decimetres, y up, the face looking toward +z, and the subject's LEFT at
+x (its ``l-ear``/``helper-l-eye`` vertices have x > 0, and ``hm08.mirror`` tags them ``l``).
facebench's head frame (``facebench.pose``) is the OpenCV frame of a frontal camera: x toward the
subject's left, y down, z from the face into the head. So ``head = 0.1 * diag(1, -1, -1) · (mh - o)``,
a proper rotation (det +1, windings kept) plus a scale to metres, with the origin ``o`` at the
midpoint of the two ears' centroids (the natural pivot of a head turn).

Parts kept: the body surface above the upper chest (arms cut at the deltoids; head.py flattens
the cut by clamping vertices to the planes ``CUT_Y`` / ``CUT_X``), the two eyeball
helpers, both teeth rows and the tongue. The eyelash, hair-proxy, tights, skirt and genital helpers
are dropped. Quads are split into two triangles whose (v1-v0)×(v2-v0) points outward.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from generators.heads.assets import load_base_obj, load_target

# Part codes carried per triangle; regions.py turns them (plus per-pixel rules) into classes.
(PART_SKIN, PART_EYE_L, PART_EYE_R, PART_TEETH, PART_TONGUE, PART_HAIR, PART_GLASSES, PART_EARRING, PART_LENS,
 PART_NECKLACE, PART_HAT) = range(11)

MH_TO_HEAD = np.diag([0.1, -0.1, -0.1])
CHEST_CUT_DM = 3.9  # keep body quads with a vertex above this MakeHuman height (decimetres)
ARM_CUT_DM = 2.3  # and with a vertex within this |x|
CUT_Y = 0.25  # per head, body vertices are clamped to y <= CUT_Y and |x| <= CUT_X (head frame, m):
CUT_X = 0.185  # a clean bust cut at the upper chest and the shoulders, whatever the crop left jagged

_HELPERS = {
    "helper-l-eye": PART_EYE_L,
    "helper-r-eye": PART_EYE_R,
    "helper-upper-teeth": PART_TEETH,
    "helper-lower-teeth": PART_TEETH,
    "helper-tongue": PART_TONGUE,
}


@lru_cache(maxsize=1)
def head_origin_mh() -> np.ndarray:
    """Midpoint of the two ears' vertex centroids, in MakeHuman coordinates."""
    v = load_base_obj().vertices
    li, _ = load_target("ears/l-ear-scale-incr.target.gz")
    ri, _ = load_target("ears/r-ear-scale-incr.target.gz")
    return 0.5 * (v[li].mean(0) + v[ri].mean(0))


def mh_to_head(points_mh: np.ndarray) -> np.ndarray:
    """MakeHuman coordinates (decimetres) -> head frame (metres)."""
    return (np.asarray(points_mh) - head_origin_mh()) @ MH_TO_HEAD.T


def mh_offsets_to_head(offsets_mh: np.ndarray) -> np.ndarray:
    """Displacements (targets) -> head frame metres (no translation)."""
    return np.asarray(offsets_mh) @ MH_TO_HEAD.T


@dataclass(frozen=True)
class Template:
    """The cropped template. ``base_ids[i]`` is the base-mesh vertex of template vertex ``i``."""

    base_ids: np.ndarray  # (n,) int64
    rest: np.ndarray  # (n, 3) float64 head-frame metres of the neutral base mesh
    faces: np.ndarray  # (m, 3) int64 template vertex ids, outward winding
    part: np.ndarray  # (m,) uint8 part code
    face_uv: np.ndarray  # (m, 2) float64 MakeHuman UV of each triangle's centroid

    @property
    def num_vertices(self) -> int:
        return len(self.base_ids)


@lru_cache(maxsize=1)
def template() -> Template:
    obj = load_base_obj()
    v = obj.vertices
    quads, groups = obj.quads, obj.groups
    body = groups == "body"
    qv = v[quads]
    in_crop = (qv[..., 1] > CHEST_CUT_DM).any(1) & (np.abs(qv[..., 0]) < ARM_CUT_DM).any(1)
    in_crop &= (qv[..., 1] > 2.0).all(1)
    part = np.full(len(quads), 255, dtype=np.uint8)
    part[body & in_crop] = PART_SKIN
    for g, code in _HELPERS.items():
        part[groups == g] = code
    sel = np.flatnonzero(part != 255)
    q = quads[sel]
    quv = obj.quad_uvs[sel]
    tris = np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]], 0)
    tuv = np.concatenate([quv[:, [0, 1, 2]], quv[:, [0, 2, 3]]], 0)
    tpart = np.concatenate([part[sel], part[sel]])
    order = np.argsort(np.concatenate([np.arange(len(sel)) * 2, np.arange(len(sel)) * 2 + 1]), kind="stable")
    tris, tuv, tpart = tris[order], tuv[order], tpart[order]
    # Drop triangles that collapse (MakeHuman has a few quads with repeated corners).
    ok = (tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])
    tris, tuv, tpart = tris[ok], tuv[ok], tpart[ok]
    base_ids = np.unique(tris)
    remap = np.full(len(v), -1, dtype=np.int64)
    remap[base_ids] = np.arange(len(base_ids))
    return Template(
        base_ids=base_ids,
        rest=mh_to_head(v[base_ids]),
        faces=remap[tris],
        part=tpart,
        face_uv=obj.uvs[tuv].mean(1),
    )


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (outward for outward-wound faces)."""
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    n = np.zeros_like(verts)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
