"""Shared fixtures: small real datasets built through the library itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny torch problems: a second OpenMP thread only adds synchronisation (and, on a shared CI box, waiting)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def blob_sample_arrays(rng: np.random.Generator, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """An image and a mask with a few rectangles of random classes (cheap, deterministic)."""
    mask = np.zeros((size, size), np.uint8)
    for _ in range(6):
        c = int(rng.integers(1, 19))
        y, x = rng.integers(0, size - 8, 2)
        h, w = rng.integers(4, 20, 2)
        mask[y : y + h, x : x + w] = c
    from facebench.labels import FACEBENCH

    image = (FACEBENCH.colorize(mask).astype(np.int16) + rng.integers(-20, 20, (size, size, 3))).clip(0, 255)
    return image.astype(np.uint8), mask


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    """A 24-image test split spread over every pose bin."""
    from facebench.dataset import Sample, build_dataset

    rng = np.random.default_rng(7)
    samples = []
    for i in range(24):
        img, mask = blob_sample_arrays(rng)
        yaw = float([-10, 45, -75, 150][i % 4] + rng.uniform(-5, 5))
        samples.append(Sample(id=f"img{i:03d}", image=img, mask=mask, subject=f"s{i % 3}", yaw=yaw, pitch=0.0))
    return build_dataset({"test": samples}, tmp_path / "ds")


def load_script(relpath: str):
    """Import a script that lives outside the package (benchmarks/, scripts/) by its path from the repo root."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess."""
    return subprocess.run([sys.executable, "-m", "facebench", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def noisy_synthetic_captures(root: Path) -> tuple[Path, Path]:
    """Two synthetic subjects, 8 views at 48², and noisy initial masks (ears become skin beyond 45°):
    the tiny real input of the generate tests. Returns (captures folder, masks folder)."""
    from facebench.imageio import write_png
    from facebench.pose import Pose
    from generators.heads import sample_head, write_capture

    masks = root / "masks"
    poses = [Pose(y, p) for y, p in zip(np.linspace(-180, 135, 8), [15, -15] * 4, strict=True)]
    for k, seed in enumerate((5, 9)):
        cap = write_capture(sample_head(seed), root / "caps" / f"subj{k}", poses, size=48, subject=f"subj{k}")
        for v in cap.views:
            m = v.load_labels()
            if abs(cap.pose_of(v).yaw) > 45:
                m[np.isin(m, [7, 8])] = 1
            write_png(masks / f"{v.id}.png", m)
    return root / "caps", masks
