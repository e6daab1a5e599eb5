"""The dataset card (README.md with YAML metadata), as the Hub and ``load_dataset`` read it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from facebench.labels import LabelSet
from facebench.pose import POSE_BINS


@dataclass
class DatasetInfo:
    """What goes into the card besides the data."""

    pretty_name: str = "facebench"
    description: str = "Face parsing under extreme head poses."
    license: str = "cc0-1.0"
    annotations_creators: str = "machine-generated"
    generation: dict[str, Any] = field(default_factory=dict)
    citation: str = (
        "@inproceedings{gahlawat2025efficient,\n"
        "  title={Efficient Label Refinement for Face Parsing Under Extreme Poses Using 3D Gaussian Splatting},\n"
        "  author={Gahlawat, Ankit and Mukherjee, Anirban and Jayagopi, Dinesh Babu},\n"
        "  booktitle={VCIP},\n  year={2025},\n  note={arXiv:2510.08096}\n}"
    )


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def _configs_yaml(counts: dict[str, dict[str, int]]) -> list[str]:
    lines = ["configs:", "- config_name: default", "  default: true", "  data_files:"]
    for split in sorted(counts):
        lines += [f"  - split: {split}", f"    path: data/{split}-*"]
    for b, _, _ in POSE_BINS:
        present = [s for s in sorted(counts) if counts[s].get(b, 0) > 0]
        if not present:
            continue
        lines += [f"- config_name: {b}", "  data_files:"]
        for split in present:
            lines += [f"  - split: {split}", f"    path: data/{split}-{b}-*"]
    return lines


# Licences a dataset may carry when it is redistributed freely; anything else derived from a capture
# with its own terms (FaceScape, NeRSemble, Multiface: "other:<name>") must keep those terms.
OPEN_LICENSES = ("cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "mit", "apache-2.0", "odc-by")


def license_yaml(license: str) -> list[str]:
    """Card metadata for a licence id; ``other:NAME`` becomes ``license: other`` + ``license_name: NAME``."""
    if license.startswith("other:"):
        return ["license: other", f"license_name: {license.split(':', 1)[1]}"]
    return [f"license: {license}"]


def render_card(info: DatasetInfo, labels: LabelSet, counts: dict[str, dict[str, int]]) -> str:
    """Card text. Deterministic: the same inputs give the same bytes."""
    total = sum(sum(c.values()) for c in counts.values())
    yaml = [
        "---",
        *license_yaml(info.license),
        f"pretty_name: {json.dumps(info.pretty_name)}",
        "task_categories:",
        "- image-segmentation",
        "task_ids:",
        "- semantic-segmentation",
        "annotations_creators:",
        f"- {info.annotations_creators}",
        "size_categories:",
        f"- {size_category(total)}",
        "tags:",
        "- face-parsing",
        "- head-pose",
        "- gaussian-splatting",
        *_configs_yaml(counts),
        "---",
    ]
    bins = [b for b, _, _ in POSE_BINS]
    body = [
        f"# {info.pretty_name}",
        "",
        info.description,
        "",
        "## Samples per split and pose bin",
        "",
        "| split | " + " | ".join(bins) + " | total |",
        "|---|" + "---|" * (len(bins) + 1),
    ]
    for split in sorted(counts):
        c = counts[split]
        body.append(f"| {split} | " + " | ".join(str(c.get(b, 0)) for b in bins) + f" | {sum(c.values())} |")
    body += [
        "",
        "Pose bins by |yaw| (degrees): " + ", ".join(f"{b} [{lo:g}, {min(hi, 180):g})" for b, lo, hi in POSE_BINS)
        + ". Each bin is also a config: `load_dataset(repo, 'profile')`.",
        "",
        "## Classes",
        "",
        "`l_`/`r_` are the subject's own left and right. 255 means ignore.",
        "",
        "| id | name | colour |",
        "|---|---|---|",
    ]
    for i, (name, rgb) in enumerate(zip(labels.names, labels.palette, strict=True)):
        body.append(f"| {i} | {name} | `#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}` |")
    body += [
        "",
        "## Columns",
        "",
        "`image` (PNG), `mask` (PNG, uint8 class ids), `id`, `subject`, `yaw`, `pitch`, `roll` (degrees),",
        "`pose_bin`, `label_source` (gt | initial | refined), `provenance` (JSON).",
        "",
        "## How it was made",
        "",
        "```json",
        json.dumps(info.generation, indent=1, sort_keys=True) if info.generation else "{}",
        "```",
        "",
        "## Usage",
        "",
        "```python",
        "from datasets import load_dataset",
        "ds = load_dataset('path/or/repo-id')",
        "```",
        "",
        "## Citation",
        "",
        "```bibtex",
        info.citation,
        "```",
        "",
    ]
    return "\n".join(yaml + [""] + body)
