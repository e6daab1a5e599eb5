"""``onnx:PATH``: an ONNX face parser run with onnxruntime, behind the Parser protocol.

facebench's own exports (``facebench export-onnx``) carry their label order and input size in the model's
metadata and normalise inside the graph. Any other ONNX model must be given its label order (``--labels``);
it is fed ImageNet-normalised RGB at the graph's input size, and that assumption is printed, because a
wrong guess would otherwise only show as bad scores.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines.transforms import IMAGENET_MEAN, IMAGENET_STD, image_to_tensor, logits_to_mask, normalise
from facebench.errors import CheckpointError, InvalidConfig
from facebench.labels import FACEBENCH, LabelSet, label_order

DEFAULT_SIZE = 512


class OnnxParser:
    """Letterboxed, resized images through an onnxruntime session; logits resized back before the argmax."""

    def __init__(self, path: Path, session, labels: LabelSet, size: int, normalised_in_graph: bool,
                 batch_size: int = 8, fixed_batch: int | None = None):
        self.path = path
        self.session = session
        self.labels = labels
        self.name = path.stem
        self.size = size
        self.normalised_in_graph = normalised_in_graph
        self.batch_size = fixed_batch or batch_size
        self.fixed_batch = fixed_batch
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.config: dict[str, Any] = {
            "architecture": "onnx",
            "input_size": size,
            "labels": {"name": labels.name, "names": list(labels.names)},
            "weights": {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
            "source": f"onnx:{path}",
        }

    def logits(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        x = torch.stack([image_to_tensor(im, self.size) for im in images])
        if not self.normalised_in_graph:
            x = normalise(x, IMAGENET_MEAN, IMAGENET_STD)
        out = self.session.run([self.output_name], {self.input_name: x.numpy()})[0]
        if out.ndim != 4 or out.shape[1] != self.labels.num_classes:
            raise CheckpointError(
                f"model outputs shape {tuple(out.shape)}, expected N×{self.labels.num_classes}×H×W logits for the "
                f"declared {self.labels.num_classes}-class order", self.path)
        return torch.from_numpy(out)

    def predict(self, images: Sequence[np.ndarray], ids: Sequence[str] | None = None) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for i in range(0, len(images), self.batch_size):
            chunk = list(images[i : i + self.batch_size])
            for im, lg in zip(chunk, self.logits(chunk), strict=True):
                out.append(logits_to_mask(lg, im.shape[0], im.shape[1]))
        return out


def _metadata(session) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map or {})


def load_onnx_parser(path: str | Path, labels: str | None = None, batch_size: int = 8, threads: int = 0,
                     echo=lambda s: print(s, file=sys.stderr)) -> OnnxParser:
    """Open ``path`` with onnxruntime and decide, once and loudly, how it is fed and what its classes mean."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise InvalidConfig("onnx: models need onnxruntime", hint="pip install 'facebench[onnx]'") from None
    path = Path(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/… types
        raise CheckpointError(f"onnxruntime cannot open it ({str(e).splitlines()[0][:160]})", path) from None
    meta = _metadata(session)
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise CheckpointError("expected one N×3×H×W image input", path)
    shape = inputs[0].shape
    if "facebench_labels" in meta:
        own = LabelSet(tuple(json.loads(meta["facebench_labels"])), name="onnx")
        if own.names == FACEBENCH.names:
            own = FACEBENCH
        if labels is not None and label_order(labels).names != own.names:
            raise InvalidConfig("--labels disagrees with the label order stored in the model", path)
        size = int(meta.get("facebench_input_size", shape[2]))
        return OnnxParser(path, session, own, size, normalised_in_graph=True, batch_size=batch_size,
                          fixed_batch=shape[0] if isinstance(shape[0], int) else None)
    if labels is None:
        raise InvalidConfig("an ONNX model without facebench metadata needs its label order declared", path,
                            hint="pass --labels bisenet|celebamask-hq|lapa|helen|PATH/id2label.json")
    order = label_order(labels)
    static = [d for d in shape[2:] if isinstance(d, int)]
    if len(static) == 2 and static[0] != static[1]:
        raise CheckpointError(f"input is {static[1]}×{static[0]}; facebench feeds square letterboxed images", path)
    size = static[0] if static else DEFAULT_SIZE
    echo(f"onnx: {path.name}: feeding ImageNet-normalised RGB at {size}×{size}, classes in the {order.name} order "
         "(no facebench metadata in the model)")
    return OnnxParser(path, session, order, size, normalised_in_graph=False, batch_size=batch_size,
                      fixed_batch=shape[0] if isinstance(shape[0], int) else None)
