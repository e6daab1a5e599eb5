"""Inference time per 512² image for each model route, against onnxruntime running the same network.

Routes (issue 19): a facebench BiSeNet checkpoint, ``zll:`` (the reference BiSeNet's .pth), ``hf:`` (a
transformers SegFormer in the B0 shape) and ``onnx:``. Weights are random: the time does not depend on them.
Each route is timed through ``open_parser(spec).predict`` (letterbox, resize, forward, resize back, argmax) on
the same images; its peer is onnxruntime running the same network exported to ONNX, in the same run.

    .venv/bin/python benchmarks/bench_parser_routes.py [--images 4] [--repeats 5] [--threads 2]

The last line is one JSON object: ms per image per route and the ratio to its onnxruntime peer.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

SIZE = 512


def timed(parsers: list, images: list[np.ndarray], repeats: int) -> list[float]:
    """Median ms per image of each parser over ``repeats`` passes, after a warm-up pass. The parsers take turns
    within each repeat, so a route and its peer see the same machine load."""
    for p in parsers:
        p.predict(images[:1])
    runs: list[list[float]] = [[] for _ in parsers]
    for _ in range(repeats):
        for k, p in enumerate(parsers):
            t = time.perf_counter()
            p.predict(images)
            runs[k].append((time.perf_counter() - t) * 1000 / len(images))
    return [float(np.median(r)) for r in runs]


def facebench_bisenet(tmp: Path) -> Path:
    from baselines.checkpoint import save_checkpoint
    from baselines.models import build_model
    from baselines.transforms import IMAGENET_MEAN, IMAGENET_STD
    from facebench.labels import FACEBENCH

    torch.manual_seed(0)
    config = {"architecture": "bisenet", "width": 1.0, "input_size": SIZE,
              "labels": {"name": "facebench", "names": list(FACEBENCH.names)},
              "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}}
    return save_checkpoint(tmp / "bisenet", build_model("bisenet").eval(), config)


def zll_pth(tmp: Path) -> Path:
    from baselines.models import build_model

    torch.manual_seed(0)
    path = tmp / "79999_iter.pth"
    torch.save(build_model("bisenet-zll").eval().state_dict(), path)
    return path


def segformer_b0(tmp: Path) -> Path:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    from facebench.labels import FACEBENCH

    torch.manual_seed(0)
    config = SegformerConfig(num_labels=19, id2label=dict(enumerate(FACEBENCH.names)),
                             label2id={n: i for i, n in enumerate(FACEBENCH.names)})  # the defaults are MiT-B0
    SegformerForSemanticSegmentation(config).eval().save_pretrained(tmp / "segformer-b0")
    SegformerImageProcessor(size={"height": SIZE, "width": SIZE}).save_pretrained(tmp / "segformer-b0")
    return tmp / "segformer-b0"


def export(model: torch.nn.Module, path: Path) -> Path:
    """The network as other projects export it: normalised N×3×512×512 in, logits out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, 3, SIZE, SIZE),), str(path), input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17,
                          dynamo=False)
    return path


class _Logits(torch.nn.Module):
    """A transformers model's logits alone, upsampled to the input (what an ONNX export of it returns)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(pixel_values=x).logits
        return torch.nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from baselines.onnx_parser import load_onnx_parser
    from baselines.parser_spec import open_parser
    from baselines.predict import load_model

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(args.images)]
    result: dict = {"size": SIZE, "images": args.images, "threads": args.threads, "ms_per_image": {}, "ratio": {}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ckpt = facebench_bisenet(tmp)
        pth = zll_pth(tmp)
        routes = {
            "facebench": (str(ckpt), export(load_model(ckpt)[0], tmp / "bisenet.onnx")),
            "zll": (f"zll:{pth}", export(open_parser(f"zll:{pth}").model, tmp / "zll.onnx")),
        }
        try:
            hf = segformer_b0(tmp)
            from transformers import SegformerForSemanticSegmentation

            routes["hf"] = (f"hf:{hf}", export(_Logits(SegformerForSemanticSegmentation.from_pretrained(hf)),
                                               tmp / "segformer.onnx"))
        except ImportError:
            print("hf: skipped (pip install 'facebench[hf]')")
        routes["onnx"] = (f"onnx:{export_facebench_onnx(ckpt, tmp)}", None)
        for name, (spec, peer) in routes.items():
            parsers = [open_parser(spec)]
            if peer is not None:
                parsers.append(load_onnx_parser(peer, labels="bisenet", echo=lambda s: None))
            ms, *rest = timed(parsers, images, args.repeats)
            result["ms_per_image"][name] = round(ms, 1)
            line = f"{name:10s} {ms:8.1f} ms/image"
            if peer is not None:
                ort_ms = rest[0]
                result["ms_per_image"][f"{name}_onnxruntime"] = round(ort_ms, 1)
                result["ratio"][f"{name}_vs_onnxruntime"] = round(ms / ort_ms, 2)
                line += f"   onnxruntime on the same network {ort_ms:8.1f} ms/image   ratio {ms / ort_ms:5.2f}"
            print(line, flush=True)
    print(json.dumps(result))


def export_facebench_onnx(ckpt: Path, tmp: Path) -> Path:
    """``facebench export-onnx``'s own export: normalisation in the graph, labels in the metadata."""
    from baselines.predict import export_onnx

    export_onnx(str(ckpt), tmp / "facebench.onnx", check=False)
    return tmp / "facebench.onnx"


if __name__ == "__main__":
    main()
