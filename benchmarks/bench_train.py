"""Training images/s and inference ms/image of the baseline parsers at 256² on 2 CPU threads.

    python benchmarks/bench_train.py [--size 256] [--batch 8] [--width 1.0] [--reps 5]

For every model: parameter count; inference (eager fp32, batch 8) and its peer, bf16 autocast with
channels_last (oneDNN's bf16 kernels on AVX512-BF16/AMX CPUs); a full training step (vectorised
augmentation, forward, OHEM loss on every head, backward, optimiser step) in fp32 and with bf16
autocast. For BiSeNet also onnxruntime on the exported graph, if installed, and 1 thread instead of
2 (on a shared machine the second OpenMP thread can cost more than it gives).

Timing: best of ``--reps`` repetitions after one warm-up (as timeit advises: other processes only
ever add time, and the machine is shared), with the median printed alongside. Targets at full
width: BiSeNet inference ≤ 30 ms/image, training ≥ 10 images/s. The headline figures are the fast path
this CPU supports (bf16 autocast + channels_last where oneDNN has bf16 kernels: what `facebench train`
runs by default), with the fp32 figures beside them. The last stdout line is one JSON object:
{"bisenet_infer_ms", "bisenet_train_img_per_s", ...other figures}.
"""

from __future__ import annotations

import os

# Before torch loads OpenMP: threads that spin at barriers starve when other processes hold the
# cores; on this shared 2-core machine that made 2-thread runs 10-100× slower (see BENCHMARKS.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from baselines.augment import AugmentConfig
from baselines.models import MODELS, build_model, count_parameters, model_memory_format, model_spec
from baselines.precision import resolve_precision
from baselines.schedule import make_optimizer
from baselines.train import TrainConfig, train_step


def timed(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    """(best, median) seconds of ``fn`` over ``reps`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def inference(
    model: torch.nn.Module, x: torch.Tensor, reps: int, bf16: bool, layout: torch.memory_format
) -> tuple[float, float]:
    """ms/image (best, median) for one batch ``x``, in the model's layout (as predict runs it)."""
    model = model.eval().to(memory_format=layout)
    x = x.contiguous(memory_format=layout)

    def run() -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)

    best, med = timed(run, reps)
    model.to(memory_format=torch.contiguous_format)
    return 1000 * best / len(x), 1000 * med / len(x)


def training(name: str, width: float, size: int, batch: int, reps: int, amp: bool) -> tuple[float, float]:
    """images/s (best, median) of full training steps from uint8 batches at ``size``²."""
    torch.manual_seed(0)
    model = build_model(name, width=width).train().to(memory_format=model_memory_format(name))
    spec = model_spec(name)
    opt = make_optimizer(model, spec.optimizer, spec.lr, spec.weight_decay)
    cfg = TrainConfig(
        model=name, size=size, batch_size=batch, amp="bf16" if amp else "fp32", augment=AugmentConfig()
    )
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
    masks = torch.randint(0, 19, (batch, size, size), dtype=torch.uint8, generator=gen)
    best, med = timed(lambda: train_step(model, opt, images, masks, cfg, gen), reps)
    return batch / best, batch / med


def onnxruntime_ms(
    model: torch.nn.Module, x: torch.Tensor, reps: int, threads: int
) -> tuple[float, float] | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "m.onnx"
        torch.onnx.export(model.eval(), (x,), str(path), input_names=["x"], opset_version=17, dynamo=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        xn = x.numpy()
        best, med = timed(lambda: sess.run(None, {"x": xn}), reps)
    return 1000 * best / len(x), 1000 * med / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--train-reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cap = torch.backends.cpu.get_cpu_capability()
    load = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cap}, load {load:.2f} (start), "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    print(
        f"size {args.size}², batch {args.batch}, width {args.width}; best of {args.reps} (median in brackets)"
    )
    x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    result: dict[str, float | int | str] = {}
    precision = resolve_precision("auto")
    rows = []
    for name in args.models.split(","):
        model = build_model(name, width=args.width)
        params = count_parameters(model)
        layout = model_memory_format(name)
        fp32 = inference(model, x, args.reps, bf16=False, layout=layout)
        bf16 = inference(model, x, args.reps, bf16=True, layout=layout)
        tr32 = training(name, args.width, args.size, args.batch, args.train_reps, amp=False)
        tr16 = training(name, args.width, args.size, args.batch, args.train_reps, amp=True)
        ort = onnxruntime_ms(model, x, args.reps, args.threads) if name == "bisenet" else None
        if name == "bisenet" and args.threads > 1:  # scaling peer: is the second core paying off here?
            torch.set_num_threads(1)
            one = (
                inference(model, x, args.reps, bf16=False, layout=layout),
                training(name, args.width, args.size, args.batch, args.train_reps, amp=False),
            )
            torch.set_num_threads(args.threads)
            extra = {"bisenet_infer_ms_1thread": round(one[0][0], 2),
                     "bisenet_train_img_per_s_1thread": round(one[1][0], 2)}  # fmt: skip
            scaling = (one[0][0] / fp32[0], tr32[0] / one[1][0])
        # Headline: the fast path this CPU supports (bf16 autocast + channels_last where oneDNN has bf16
        # kernels; `facebench train` uses it by default, `predict/evaluate --precision bf16|auto`).
        fast = precision == "bf16"
        result[f"{name}_infer_ms"] = round((bf16 if fast else fp32)[0], 2)
        result[f"{name}_train_img_per_s"] = round((tr16 if fast else tr32)[0], 2)
        result[f"{name}_params"] = params
        result[f"{name}_infer_ms_fp32"] = round(fp32[0], 2)
        result[f"{name}_train_img_per_s_fp32"] = round(tr32[0], 2)
        if ort is not None:
            result[f"{name}_infer_ms_onnxruntime"] = round(ort[0], 2)
        if name == "bisenet" and args.threads > 1:
            result.update(extra)
        rows.append((name, params, fp32, bf16, ort, tr32, tr16))
    for name, params, fp32, bf16, ort, tr32, tr16 in rows:
        print(f"\n{name}: {params / 1e6:.2f} M parameters")
        print(f"  inference fp32 eager      {fp32[0]:7.1f} ms/image  ({fp32[1]:.1f})")
        print(f"  inference bf16 + CL       {bf16[0]:7.1f} ms/image  ({bf16[1]:.1f})  "
              f"speed-up ×{fp32[0] / bf16[0]:.2f}")  # fmt: skip
        if ort is not None:
            gain = fp32[0] / ort[0]
            print(f"  inference onnxruntime     {ort[0]:7.1f} ms/image  ({ort[1]:.1f})  speed-up ×{gain:.2f}")
        print(f"  training fp32             {tr32[0]:7.2f} images/s  ({tr32[1]:.2f})")
        if name == "bisenet" and args.threads > 1:
            print(f"  1 thread: inference {result['bisenet_infer_ms_1thread']} ms/image, training "
                  f"{result['bisenet_train_img_per_s_1thread']} images/s; {args.threads} threads are "
                  f"×{scaling[0]:.2f} / ×{scaling[1]:.2f} as fast")  # fmt: skip
        gain = tr16[0] / tr32[0]
        print(f"  training bf16 autocast    {tr16[0]:7.2f} images/s  ({tr16[1]:.2f})  speed-up ×{gain:.2f}")
    if "bisenet_infer_ms" in result:
        r = result
        print(f"\ntargets (BiSeNet, width {args.width}):")
        print(
            f"  inference ≤ 30 ms/image: {precision} {r['bisenet_infer_ms']}, fp32 {r['bisenet_infer_ms_fp32']}"
        )
        print(
            f"  training ≥ 10 images/s: {precision} {r['bisenet_train_img_per_s']}, "
            f"fp32 {r['bisenet_train_img_per_s_fp32']}"
        )
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    result["precision"] = precision
    print(json.dumps(result))


if __name__ == "__main__":
    main()
