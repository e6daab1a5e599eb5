"""Resumable stages: each writes ``<out>/<name>`` and is skipped once its done-marker exists.

Two kinds. An *atomic* stage builds its folder in a hidden temporary sibling that is renamed into place,
so a stage folder is either complete or absent. A *resumable* stage (training, subject refinement) writes
into its folder itself, because the work underneath already resumes from its own checkpoints; either way
the marker ``.done.json`` is written last, and only it decides that a stage is finished.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from facebench.files import atomic_write, replace_dir, temp_dir

MARKER = ".done.json"


@dataclass
class Stages:
    """Runs named stages under ``root``, printing what ran and what was skipped, and timing each."""

    root: Path
    echo: Callable[[str], None] = print
    timings: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def done(self, name: str) -> bool:
        return (self.root / name / MARKER).exists()

    def run(self, name: str, fn: Callable[[Path], object], atomic: bool = True) -> Path:
        """Run ``fn(folder)`` unless ``name`` is done; returns the stage folder."""
        final = self.root / name
        self.order.append(name)
        if self.done(name):
            self.skipped.append(name)
            self.echo(f"[skip] {name}: done")
            return final
        self.echo(f"[run]  {name}")
        t0 = time.perf_counter()
        if atomic:
            tmp = temp_dir(final.parent, f".{final.name}.tmp-")
            try:
                fn(tmp)
                atomic_write(tmp / MARKER, b"{}")  # provisional; rewritten with the time below
                replace_dir(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        else:
            final.mkdir(parents=True, exist_ok=True)
            fn(final)
        seconds = time.perf_counter() - t0
        atomic_write(final / MARKER, json.dumps({"stage": name, "seconds": round(seconds, 1)}).encode())
        self.timings[name] = seconds
        self.echo(f"[done] {name}: {seconds:.0f} s")
        return final

    def recorded_seconds(self) -> dict[str, float | None]:
        """Seconds of every stage this run passed through, read back from the markers (so resumed runs count)."""
        return {name: json.loads((self.root / name / MARKER).read_text()).get("seconds") for name in self.order}


def clear_temporaries(root: Path) -> None:
    """Temporary stage folders left by a killed run are never read; drop them when a run starts."""
    if root.is_dir():
        for p in root.rglob(".*.tmp-*"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
