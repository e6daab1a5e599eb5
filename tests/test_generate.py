"""`facebench generate` end to end at a tiny size: real heads, real Gaussian fits, real renders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import noisy_synthetic_captures, run_cli

from facebench.dataset import load, validate
from facebench.imageio import read_mask, write_png

# The tiny captures (8 views at 48²) are too coarse to estimate a head frame from: they use the declared one.
SMALL = ["--variant", "logits", "--cleanup", "--new-views", "6", "--size", "48", "--rgb-steps", "40",
         "--label-steps", "15", "--seed", "3", "--head-frame", "capture"]


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> tuple[Path, Path]:
    """Two synthetic subjects, 8 views at 48², and noisy initial masks (ears become skin beyond 45°)."""
    return noisy_synthetic_captures(tmp_path_factory.mktemp("gen"))


def _gen(caps, masks, out, *extra):
    return run_cli("generate", str(caps), "--masks", str(masks), "--out", str(out), *SMALL, *extra)


def test_generate_writes_refined_dataset_resumes_and_is_deterministic(captures, tmp_path):
    caps, masks = captures
    out = tmp_path / "data"
    r = _gen(caps, masks, out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert validate(out) == {"train": 12}
    meta = load(out).metadata("train")
    assert set(meta.label_source) == {"refined"} and set(meta.subject) == {"subj0", "subj1"}
    assert meta.yaw.between(-180, 180).all() and meta.pitch.abs().max() <= 61
    card = (out / "README.md").read_text()
    assert '"rgb_steps": 40' in card and "dual 3D Gaussian splatting" in card
    quality = json.loads((tmp_path / "data-quality" / "quality.json").read_text())
    rows = {(r["views"], r["pose_bin"]) for r in quality["by_pose_bin"]}
    assert ("input", "all") in rows and ("novel", "all") in rows
    rgb = {r["pose_bin"]: r for r in quality["rgb_by_pose_bin"]}  # new views' RGB against the true renders
    assert rgb["all"]["n"] == 12 and 8 < rgb["all"]["psnr_db"] < 60 and 0 < rgb["all"]["ssim"] < 1
    assert quality["headline"]["rgb_psnr_new_views"] == pytest.approx(rgb["all"]["psnr_db"])
    assert "dataset:" in r.stdout and "quality report:" in r.stdout and "PSNR" in r.stdout
    # the new views frame the head: 0.33 m at the head origin spans the 48 px (ViewSampling.frame_height)
    cams = [json.loads(p)["camera"] for p in load(out).metadata("train").provenance]
    focal = np.array([c["K"][1][1] for c in cams])
    assert np.all(np.abs(focal / (24 * 0.85 / 0.165) - 1) < 0.09)  # ± the 8% focal jitter (and distance's)
    assert '"frame_height": 0.33' in card
    first = {p.name: p.read_bytes() for p in (out / "data").glob("*.parquet")}

    again = _gen(caps, masks, out)  # resume: nothing is refitted, the same bytes come out
    assert again.returncode == 0 and again.stdout.count("skipped") == 2, again.stdout
    assert {p.name: p.read_bytes() for p in (out / "data").glob("*.parquet")} == first

    other = tmp_path / "other"  # a fresh run with the same seed gives the same dataset bytes
    assert _gen(caps, masks, other).returncode == 0
    assert {p.name: p.read_bytes() for p in (other / "data").glob("*.parquet")} == first
    rows = pq.read_table(next(iter((out / "data").glob("*.parquet")))).to_pylist()
    assert json.loads(rows[0]["provenance"])["method"] == "dual-3dgs/logits"


def test_a_failed_subject_does_not_corrupt_the_dataset(captures, tmp_path):
    caps, masks = captures
    bad = tmp_path / "masks"
    shutil.copytree(masks, bad)
    victim = sorted(bad.glob("subj1-*.png"))[0]
    m = read_mask(victim)
    m[0, 0] = 77
    write_png(victim, m)
    out = tmp_path / "data"
    r = _gen(caps, bad, out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "subj1 FAILED" in r.stdout and "illegal label values 77" in r.stdout
    assert set(load(out).metadata("train").subject) == {"subj0"}


@pytest.mark.parametrize("breakage,match", [
    ("missing_image", "image missing"),
    ("mixed_sizes", "inconsistent image sizes"),
    ("blind_camera", "does not see the head"),
])
def test_bad_captures_fail_fast_with_one_line(captures, tmp_path, breakage, match):
    caps, masks = captures
    cap = tmp_path / "subj0"
    shutil.copytree(caps / "subj0", cap)
    doc = json.loads((cap / "transforms.json").read_text())
    if breakage == "missing_image":
        (cap / doc["frames"][2]["file_path"]).unlink()
    elif breakage == "mixed_sizes":
        doc["frames"][1]["w"] = 64
    else:
        doc["frames"][3]["transform_matrix"][0][3] += 50.0  # the camera now looks past the head
    (cap / "transforms.json").write_text(json.dumps(doc))
    r = _gen(cap, masks, tmp_path / "out")
    assert r.returncode == 2, (r.stdout[-500:], r.stderr[-2000:])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and match in lines[0] and "subj0" in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_bad_options(tmp_path):
    r = run_cli("generate", "--variant", "magic", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "unknown variant 'magic'" in r.stderr and "joint, logits, palette" in r.stderr
    r = run_cli("generate", str(tmp_path / "nope"), "--masks", str(tmp_path))
    assert r.returncode == 2 and "capture does not exist" in r.stderr
    r = run_cli("generate", "--renderer", "vulkan", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "unknown renderer 'vulkan'" in r.stderr
    r = run_cli("generate", "--rgb-steps", "0", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "rgb_steps must be ≥ 1" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    if not torch.cuda.is_available():
        r = run_cli("generate", "--renderer", "gsplat", "--out", str(tmp_path / "o"))
        assert r.returncode == 2 and "CUDA" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_forced_renderer_that_cannot_run_is_one_line_before_any_work(tmp_path):
    env = {**os.environ, "FACEBENCH_NATIVE": "0"}
    r = subprocess.run([sys.executable, "-m", "facebench", "generate", "--renderer", "cpp", "--out",
                        str(tmp_path / "o")], capture_output=True, text=True, timeout=300, env=env)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "FACEBENCH_NATIVE=0" in lines[0], r.stderr
    assert not list(tmp_path.iterdir()), "nothing may be written before the check"


def test_a_variant_added_through_the_registry_alone_runs_through_generate(captures, tmp_path):
    """One class plus one line (``@register``): generate takes it by name, records it, renders with it."""
    from dataclasses import dataclass, field, replace
    from functools import partial

    from facebench.parsing import MaskFolderParser
    from generators.refine import generate
    from generators.refine.generate_config import GenerateConfig
    from generators.refine.lift import fit_rgb
    from generators.refine.variants import VARIANTS, LabelLifting, Lifted, make_variant, register

    @register
    @dataclass(frozen=True)
    class EverythingIsSkin(LabelLifting):
        """Toy: the RGB fit's coverage, every covered pixel labelled ``cls``."""

        name: str = field(default="toy-skin", init=False)
        cls: int = 1

        def lift(self, views, labels, lift, cleanup, seed, head_to_world, checkpoint_dir=None):
            rgb = fit_rgb(views, lift, seed, checkpoint_dir)
            return Lifted(rgb, rgb)

        def render(self, lifted, camera, labels):
            vm, K = (torch.from_numpy(a).float() for a in (camera.world_to_camera, camera.K))
            with torch.no_grad():
                r = lifted.rgb.render(vm, K, camera.width, camera.height, what="rgb")
            covered = (r.alpha >= self.alpha_min).numpy()
            image = (r.rgb.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            return image, np.where(covered, self.cls, 0).astype(np.uint8), covered.astype(np.float32)

    caps, masks = captures
    umask = os.umask(0o022)  # and what generate writes is readable by others under the usual umask
    try:
        d = GenerateConfig()
        cfg = replace(d, seed=3, refine=replace(d.refine, variant=make_variant("toy-skin"), out_size=32,
                                                head_frame="capture", views=replace(d.refine.views, n_views=4),
                                                lift=replace(d.refine.lift, rgb_steps=20)))
        out = tmp_path / "data"
        generate([caps], out, cfg, partial(MaskFolderParser, str(masks)), echo=lambda s: None)
    finally:
        VARIANTS.pop("toy-skin")
        os.umask(umask)
    written = [p for root in (out, tmp_path / "data-quality") for p in (root, *root.rglob("*"))]
    assert len(written) > 8 and all(p.stat().st_mode & 0o044 == 0o044 for p in written)
    assert all(p.stat().st_mode & 0o011 == 0o011 for p in written if p.is_dir())
    ds = load(out)
    rows = pq.read_table(next(iter((out / "data").glob("*.parquet")))).to_pylist()
    assert {json.loads(r["provenance"])["method"] for r in rows} == {"dual-3dgs/toy-skin"}
    masks_out = [s.mask for s in ds.iter_samples("train")]
    assert len(masks_out) == 8 and set(np.unique(np.stack(masks_out))) == {0, 1}
    assert '"name": "toy-skin"' in (out / "README.md").read_text()


def test_generate_help_shows_each_library_default_once(tmp_path):
    """Every option default in `generate --help` is the config dataclass's, shown once."""
    import re

    from generators.refine.generate_config import GenerateConfig

    r = run_cli("generate", "--help")
    assert r.returncode == 0
    text = re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", r.stdout))
    shown = dict(re.findall(r"--([a-z-]+) (?:--no-[a-z-]+ )?<\w+> (?:(?! --[a-z]).)*?\[default: ([^\]]+)\]", text))
    d = GenerateConfig()
    library = {"subjects": d.synthetic.subjects, "views": d.synthetic.views, "input-size": d.synthetic.size,
               "new-views": d.refine.views.n_views, "size": d.refine.out_size, "variant": d.refine.variant.name,
               "rgb-steps": d.refine.lift.rgb_steps, "label-steps": d.refine.lift.label_steps,
               "cleanup": "cleanup" if d.refine.cleanup.enabled else "no-cleanup", "seed": d.seed,
               "workers": d.workers, "backend": d.backend, "cpus-per-subject": d.ray.cpus_per_subject,
               "max-retries": d.ray.max_retries, "renderer": d.refine.lift.renderer, "out": "facebench-data",
               "head-frame": d.refine.head_frame}
    assert shown == {k: str(v) for k, v in library.items()}
    assert text.count("[default:") == len(library)


def test_an_unusable_parser_stops_before_any_work(tmp_path):
    """A pickled .pth (or any checkpoint that does not load) is one line and exit 2 before the first render."""
    (tmp_path / "x.pth").write_bytes(b"\x80\x04K\x01.")
    bad = tmp_path / "ckpt"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(b"not safetensors")
    (bad / "config.json").write_text("{}")
    for spec in (str(tmp_path / "x.pth"), str(bad)):
        r = run_cli("generate", "--parser", spec, "--out", str(tmp_path / "o"))
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1, (spec, r.stderr[-1500:])
        assert not (tmp_path / "o").exists() and not (tmp_path / ".o.work").exists()


def _report_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _kill_in_report_stage(caps, masks, out: Path, kills: int, seed: int) -> dict[str, int]:
    """Rerun generate (subjects are skipped, so it goes straight to assembly and the report) and SIGKILL it
    a random 0-2 s after the report's temporary folder appears (the report stage takes ~2 s here). Every
    other time the previous report is deleted first, so both "old report stays whole" and "no report, never
    part of one" are checked. Returns counts for the report."""
    import random
    import signal
    import time

    report = out.parent / f"{out.name}-quality"
    reference = _report_files(report)
    assert "report.md" in reference and len(reference) >= 6, sorted(reference)
    rng = random.Random(seed)
    cmd = [sys.executable, "-m", "facebench", "generate", str(caps), "--masks", str(masks), "--out", str(out),
           *SMALL]
    stats = {"kills": 0, "mid_report": 0, "absent": 0}
    while stats["kills"] < kills:
        fresh = stats["kills"] % 2 == 0
        if fresh:
            shutil.rmtree(report, ignore_errors=True)
        elif not report.exists():  # the previous kill prevented the first write: put the old report back
            report.mkdir()
            for name, data in reference.items():
                (report / name).write_bytes(data)
        before = {p.name for p in out.parent.iterdir()}
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while proc.poll() is None and not any(p.name.startswith(".data-quality.tmp-") and p.name not in before
                                                  for p in out.parent.iterdir()):
                time.sleep(0.001)
            deadline = time.monotonic() + rng.uniform(0.0, 2.0)
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.002)
            assert proc.poll() is None, "generate finished before it could be killed"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        stats["kills"] += 1
        stats["mid_report"] += any(p.name.startswith(".data-quality.tmp-") and p.name not in before
                                   for p in out.parent.iterdir())
        if report.exists():
            assert not fresh, "a killed first write left a report folder"
            assert _report_files(report) == reference  # the old report, whole
        else:
            assert fresh, "the old report disappeared"
            stats["absent"] += 1
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _report_files(report) == reference  # the rerun writes the same report, whole
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".data-quality.")]
    return stats


def _report_kill_test(captures, tmp_path, kills: int, seed: int) -> None:
    caps, masks = captures
    out = tmp_path / "data"
    assert _gen(caps, masks, out).returncode == 0
    stats = _kill_in_report_stage(caps, masks, out, kills, seed)
    assert stats["mid_report"] == kills, stats  # every kill landed while the report was being written
    print(f"\n{stats}")


def test_a_kill_while_the_quality_report_is_written_leaves_it_whole_or_absent(captures, tmp_path):
    _report_kill_test(captures, tmp_path, kills=4, seed=0)


@pytest.mark.slow
def test_twelve_kills_while_the_quality_report_is_written(captures, tmp_path):
    _report_kill_test(captures, tmp_path, kills=12, seed=1)
