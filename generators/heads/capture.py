"""Write rendered subjects to disk: nerfstudio captures, and the benchmark's held-out test split.

A capture is one subject's folder::

    images/{id}.png   RGB
    masks/{id}.png    ground-truth FACEBENCH label ids (lossless, single channel)
    depth/{id}.png    optional: uint16 millimetres (0 = background)
    transforms.json   intrinsics, OpenGL camera-to-world, per-frame pose and label_path, and under
                      "facebench" the subject id, seed, identity, appearance and rig

Subject seeds come from ``subject_seed(seed, split, i)``: independent streams per split, so the test
split's subjects are never the ones ``facebench heads`` renders for training with the same seed.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from facebench.captures import Camera, Capture, View, write_transforms
from facebench.errors import InvalidConfig
from facebench.files import atomic_write, ensure_writable_folder
from facebench.imageio import write_png
from facebench.pose import Pose, view_pose
from generators.heads.head import Head, HeadConfig, sample_head
from generators.heads.render import Render, render_views
from generators.heads.rig import RigConfig, camera_for_pose, rig_poses

SPLIT_CODES = {"train": 1, "validation": 2, "test": 3}
# Worker processes are spawned, not forked: a fork after torch/OpenMP has run in the parent can hang.
_SPAWN = multiprocessing.get_context("spawn")
GENERATOR = "facebench.heads"


def subject_seed(seed: int, split: str, index: int) -> int:
    """A 32-bit seed for subject ``index`` of ``split``; disjoint streams per split."""
    if split not in SPLIT_CODES:
        raise InvalidConfig(f"unknown split {split!r}", hint="use " + ", ".join(SPLIT_CODES))
    return int(np.random.SeedSequence([int(seed), SPLIT_CODES[split], int(index)]).generate_state(1)[0])


def subject_name(split: str, index: int) -> str:
    return f"synth-{split}-{index:05d}"


def check_render_args(size: int, supersample: int) -> None:
    """Fail fast, before any subject is sampled."""
    if not 16 <= size <= 4096:
        raise InvalidConfig(f"size must be in [16, 4096] pixels, got {size}")
    if not 1 <= supersample <= 4:
        raise InvalidConfig(f"supersample must be 1..4, got {supersample}")


def _depth_png(depth: np.ndarray) -> bytes:
    import io

    from PIL import Image

    mm = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(mm).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def write_capture(
    head: Head,
    out_dir: str | Path,
    views: Sequence[Pose] | Sequence[Camera],
    size: int = 256,
    seed: int | None = None,
    subject: str | None = None,
    supersample: int = 2,
    depth: bool = False,
    rig: RigConfig | None = None,
) -> Capture:
    """Render ``views`` (poses, framed by ``rig``'s distance/fov, or ready cameras) of ``head`` into a
    nerfstudio capture folder; returns the Capture as ``facebench.captures.read_transforms`` reads it."""
    check_render_args(size, supersample)
    out = ensure_writable_folder(out_dir)
    rig = rig or RigConfig()
    cams = [v if isinstance(v, Camera) else camera_for_pose(v, size, rig.distance, rig.fov) for v in views]
    renders = render_views(head, cams, size=size, supersample=supersample)
    subject = subject or f"synth-{head.seed}"
    vlist = []
    for i, (cam, r) in enumerate(zip(cams, renders, strict=True)):
        if cam.width != size or cam.height != size:
            cam = cam.scaled(size, size)
        vid = f"{i:05d}"
        img_p = write_png(out / "images" / f"{vid}.png", r.rgb)
        mask_p = write_png(out / "masks" / f"{vid}.png", r.labels)
        if depth:
            atomic_write(out / "depth" / f"{vid}.png", _depth_png(r.depth))
        vlist.append(View(id=f"{subject}-{vid}", camera=cam, image_path=img_p, label_path=mask_p,
                          pose=view_pose(cam.world_to_camera)))
    meta = {
        "generator": GENERATOR,
        "label_set": "facebench",
        "license": "cc0-1.0",  # MakeHuman's CC0 assets, rendered by us
        "seed": head.seed if seed is None else int(seed),
        "size": size,
        "rig": asdict(rig),
        "head": head.to_json(),
        "depth": "depth/{id}.png uint16 millimetres" if depth else None,
    }
    cap = Capture(views=vlist, subject=subject, head_to_world=np.eye(4), root=out, meta=meta)
    write_transforms(cap, out / "transforms.json")
    return cap


def _one_subject(args: tuple) -> str:
    index, seed, split, out, size, rig, head_cfg, supersample, depth = args
    s = subject_seed(seed, split, index)
    head = sample_head(s, head_cfg)
    poses = rig_poses(rig, s)
    name = subject_name(split, index)
    write_capture(head, Path(out) / name, poses, size, s, name, supersample, depth, rig)
    return name


def write_captures(
    out: str | Path,
    subjects: int = 4,
    rig: RigConfig | None = None,
    size: int = 256,
    seed: int = 0,
    head_config: HeadConfig | None = None,
    supersample: int = 2,
    depth: bool = False,
    workers: int = 1,
    split: str = "train",
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """One capture folder per subject under ``out`` (``synth-{split}-NNNNN``), rendered in parallel."""
    if subjects < 1:
        raise InvalidConfig(f"subjects must be >= 1, got {subjects}")
    if workers < 1:
        raise InvalidConfig(f"workers must be >= 1, got {workers}")
    check_render_args(size, supersample)
    root = ensure_writable_folder(out)
    rig = rig or RigConfig()
    jobs = [(i, seed, split, str(root), size, rig, head_config, supersample, depth) for i in range(subjects)]
    names = []
    if workers == 1:
        for j in jobs:
            names.append(_one_subject(j))
            if progress:
                progress(1)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_SPAWN) as ex:
            for name in ex.map(_one_subject, jobs):
                names.append(name)
                if progress:
                    progress(1)
    return [root / n for n in names]


def _test_samples(args: tuple) -> list:
    from facebench.dataset import Sample

    index, seed, size, rig, head_cfg, supersample = args
    s = subject_seed(seed, "test", index)
    head = sample_head(s, head_cfg)
    poses = rig_poses(rig, s)
    cams = [camera_for_pose(p, size, rig.distance, rig.fov) for p in poses]
    renders: list[Render] = render_views(head, cams, size=size, supersample=supersample)
    name = subject_name("test", index)
    out = []
    for k, (p, r) in enumerate(zip(poses, renders, strict=True)):
        out.append(Sample(
            id=f"{name}-{k:03d}", image=r.rgb, mask=r.labels, subject=name, yaw=p.yaw, pitch=p.pitch,
            roll=p.roll, label_source="gt",
            provenance={"generator": GENERATOR, "subject_seed": s, "seed": seed, "view": k,
                        "hair": head.hair.kind, "expression": head.identity.expression_name,
                        "skin_tone": round(head.appearance.skin_tone, 4)},
        ))  # fmt: skip
    return out


def render_test_split(
    out: str | Path,
    subjects: int = 50,
    views: int = 20,
    size: int = 256,
    seed: int = 0,
    rig: RigConfig | None = None,
    head_config: HeadConfig | None = None,
    supersample: int = 2,
    workers: int = 1,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Render held-out subjects straight into the facebench dataset layout (split "test",
    ``label_source="gt"``). Views are drawn at random on the rig's sphere band, per subject seed."""
    from facebench.dataset import DatasetInfo, build_dataset

    if subjects < 1 or views < 1:
        raise InvalidConfig(f"need at least one subject and one view, got {subjects} × {views}")
    if workers < 1:
        raise InvalidConfig(f"workers must be >= 1, got {workers}")
    check_render_args(size, supersample)
    out = Path(out)
    ensure_writable_folder(out.parent if out.parent != Path("") else Path("."))
    base = rig or RigConfig(mode="random")
    rig = RigConfig(views=views, yaw_range=base.yaw_range, pitch_range=base.pitch_range,
                    distance=base.distance, fov=base.fov, mode=base.mode)
    jobs = [(i, seed, size, rig, head_config, supersample) for i in range(subjects)]
    samples = []
    if workers == 1:
        for j in jobs:
            samples += _test_samples(j)
            if progress:
                progress(1)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_SPAWN) as ex:
            for part in ex.map(_test_samples, jobs):
                samples += part
                if progress:
                    progress(1)
    info = DatasetInfo(
        pretty_name="facebench synthetic heads (held-out test split)",
        description=("Synthetic MakeHuman heads rendered by facebench.heads with exact per-pixel labels, "
                     "covering the full yaw circle and pitch from below to above."),
        generation={"generator": GENERATOR, "seed": seed, "subjects": subjects, "views": views, "size": size,
                    "rig": asdict(rig), "label_source": "gt"},
    )  # fmt: skip
    return build_dataset({"test": samples}, out, info, overwrite=overwrite)
