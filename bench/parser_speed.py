"""Parser speed: ms per 512 x 512 image through ``Predictor.predict`` (resize in, forward,
softmax, resize back, argmax), from the image alone and, as the app predicts by default, as
the mean over the image and its mirror image (two forward passes); peak memory, and training
step time.

Variants are timed in interleaved rounds in one process (the host is shared, so a slow
moment hits every variant alike); ratios are against the first variant (``fp32``, contiguous
memory), measured in the same run. CPU peak memory is measured per variant in a fresh
subprocess (peak RSS); CUDA peak memory in-process (``max_memory_allocated``).

    .venv/bin/python bench/parser_speed.py --quick                  # small, 2 CPU threads
    .venv/bin/python bench/parser_speed.py --config paper --device cuda --batch-size 8
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import base_args, describe_host, emit, setup, table  # noqa: E402

from core.labels import CELEBAMASK  # noqa: E402
from model.devices import autocast  # noqa: E402
from model.inference import Predictor  # noqa: E402
from model.losses import LossConfig, ParsingLoss  # noqa: E402
from model.net import ParserConfig, build_face_parser  # noqa: E402

VARIANTS = {  # name: (amp, channels_last, flip_average)
    "fp32": (False, False, False),
    "fp32 channels_last": (False, True, False),
    "bf16 channels_last": (True, True, False),
    "fp32 channels_last, mirror average (the app's default)": (False, True, True),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_predictor(config: ParserConfig, device: torch.device, variant: str) -> Predictor:
    torch.manual_seed(0)
    model = build_face_parser(config).to(device)
    with torch.no_grad():  # realistic BN statistics instead of the identity at init
        model.train()(torch.rand(2, 3, config.input_size, config.input_size, device=device))
    amp, cl, flip = VARIANTS[variant]
    return Predictor(model.eval(), config, CELEBAMASK, {}, device=device, amp=amp,
                     channels_last=cl, flip_average=flip)


def time_predict(pred: Predictor, images: list[np.ndarray], reps: int) -> list[float]:
    """Seconds per image over ``reps`` single-image calls."""
    out = []
    for i in range(reps):
        t = time.perf_counter()
        pred.predict(images[i % len(images)])
        sync(pred.device)
        out.append(time.perf_counter() - t)
    return out


def _status_mb(field: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process in MB (Linux), else ``None``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def memory_child(config: ParserConfig, device: torch.device, variant: str, size: int) -> dict:
    """In a fresh process: resident memory after the imports, then the peak of loading the
    model and predicting 3 images (the peak counter is reset after the imports through
    ``/proc/self/clear_refs`` so that import-time transients do not count)."""
    start = _status_mb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    pred = make_predictor(config, device, variant)
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    for _ in range(3):
        pred.predict(image)
    peak = (_status_mb("VmHWM") if reset
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"rss_after_imports_mb": start, "peak_rss_mb": peak, "peak_reset": reset}


def cpu_memory(args: argparse.Namespace, config: ParserConfig, variant: str) -> str:
    cmd = [sys.executable, __file__, "--config", args.config, "--device", "cpu",
           "--threads", str(args.threads), "--image-size", str(args.image_size),
           "--input-size", str(config.input_size), "--memory-child", variant]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    if m["rss_after_imports_mb"] is None:
        return f"{m['peak_rss_mb']:.0f} peak RSS"
    return (f"{m['peak_rss_mb']:.0f} peak RSS (+{m['peak_rss_mb'] - m['rss_after_imports_mb']:.0f} "
            "over the imports)")


def train_step_times(config: ParserConfig, device: torch.device, batch: int, steps: int,
                     amp: bool, cl: bool) -> tuple[list[float], float | None]:
    """Seconds per optimiser step (random data, no augmentation) and the CUDA peak in MB."""
    torch.manual_seed(0)
    model = build_face_parser(config).to(device).train()
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    crit = ParsingLoss(LossConfig(), CELEBAMASK)
    s = config.input_size
    x = torch.rand(batch, 3, s, s, device=device)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CELEBAMASK.num_classes, (batch, s, s), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(steps + 2):  # two warm-up steps
        sync(device)
        t = time.perf_counter()
        with autocast(device, amp):
            loss, _ = crit(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return times, peak


def measure_inference(args: argparse.Namespace, config: ParserConfig, device: torch.device,
                      host: str, images: list[np.ndarray], reps: int, rounds: int) -> None:
    """Latency per image of each :data:`VARIANTS` predictor, interleaved; prints a table."""
    cuda = device.type == "cuda"
    variants = list(VARIANTS)
    preds, mem = {}, {}
    for v in variants:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        preds[v] = make_predictor(config, device, v)
        time_predict(preds[v], images, 2)  # warm-up (oneDNN primitives / cuDNN plans)
        if cuda:
            mem[v] = f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} CUDA"
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for v in variants:
            times[v] += time_predict(preds[v], images, reps)
    med = {v: 1000 * statistics.median(t) for v, t in times.items()}
    if not cuda:
        for v in variants:
            mem[v] = cpu_memory(args, config, v)
    best = {v: 1000 * min(t) for v, t in times.items()}
    rows = [[v, f"{med[v]:.1f}", f"{best[v]:.1f}", f"{1000 * max(times[v]):.1f}",
             f"{med[variants[0]] / med[v]:.2f}x", f"{best[variants[0]] / best[v]:.2f}x", mem[v]]
            for v in variants]
    emit(f"speed_infer_{args.config}",
         f"Inference, `{args.config}` ({config.backbone}, {config.input_size}² network input), "
         f"one {args.image_size}×{args.image_size} image per call, {host}",
         table(["variant", "median ms / image", "best ms", "worst ms", "speed vs fp32 (median)",
                "(best)", "peak memory MB"], rows),
         args.out, {"ms": {v: t for v, t in times.items()}, "memory": mem})
    del preds


def _train_rows(batch: int, tdata: dict[str, dict]) -> list[list]:
    fp32 = tdata.get("fp32")
    tbase = statistics.median(fp32["seconds"]) if fp32 else None
    rows = []
    for name, data in tdata.items():
        m = statistics.median(data["seconds"])
        peak = data["cuda_peak_mb"]
        rows.append([name, batch, f"{1000 * m:.0f}", f"{1 / m:.2f}", f"{batch / m:.1f}",
                     f"{tbase / m:.2f}x" if tbase else "-", "-" if peak is None else f"{peak:.0f}"])
    return rows


def measure_training(args: argparse.Namespace, config: ParserConfig, device: torch.device,
                     host: str, images: list[np.ndarray], train_steps: int) -> None:
    """Training step time per variant (the table is printed again after each variant, so a
    run stopped by its time limit still shows what it measured), then on CUDA the batched
    inference throughput."""
    cuda = device.type == "cuda"
    title = (f"Training step, `{args.config}` at {config.input_size}² (random data, loss + "
             f"backward + AdamW), {host}")
    headers = ["variant", "batch", "ms / step", "steps / s", "images / s", "speed vs fp32",
               "CUDA peak MB"]
    tvars = [("fp32", False, False), ("bf16 channels_last", True, True)]
    if cuda:  # the number asked for first, in case the fp32 baseline does not fit
        tvars.reverse()
    trows, tdata = [], {}
    for name, amp, cl in tvars:
        try:
            t, peak = train_step_times(config, device, args.batch_size, train_steps, amp, cl)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            trows.append([name, args.batch_size, "out of memory", "", "", "", ""])
            continue
        tdata[name] = {"seconds": t, "cuda_peak_mb": peak}
        trows = [r for r in trows if r[2] == "out of memory"] + _train_rows(args.batch_size, tdata)
        emit(f"speed_train_{args.config}", title, table(headers, trows), args.out, tdata)
    if cuda:
        pred = make_predictor(config, device, "bf16 channels_last")
        batch = [images[i % 4] for i in range(args.infer_batch)]
        pred.predict_batch(batch)
        sync(device)
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < (1 if args.tiny else 5):
            pred.predict_batch(batch)
            n += len(batch)
        sync(device)
        ips = n / (time.perf_counter() - t0)
        tdata["inference_images_per_s"] = ips
        trows.append([f"inference, bf16, batches of {args.infer_batch} (incl. resize in/out)",
                      "", "", "", f"{ips:.1f}", "", ""])
        emit(f"speed_train_{args.config}", title, table(headers, trows), args.out, tdata)


def main() -> int:
    p = base_args(__doc__.split("\n\n")[0])
    p.add_argument("--config", default="small", choices=("small", "paper"))
    p.add_argument("--image-size", type=int, default=512, help="side of the test images")
    p.add_argument("--input-size", type=int, help="override the preset's network input size")
    p.add_argument("--batch-size", type=int, default=8, help="training batch")
    p.add_argument("--infer-batch", type=int, default=16, help="batch for images/s (CUDA)")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.tiny:
        args.input_size, args.image_size, args.batch_size, args.infer_batch = 64, 64, 1, 2
    device, _ = setup(args)
    config = ParserConfig.preset(args.config, **({"input_size": args.input_size}
                                                  if args.input_size else {}))
    if args.memory_child:
        print(json.dumps(memory_child(config, device, args.memory_child, args.image_size)))
        return 0
    cuda = device.type == "cuda"
    host = describe_host(device)
    reps, rounds, train_steps = ((1, 1, 1) if args.tiny else (5, 4, 3) if args.quick
                                 else (5, 4, 6) if cuda else (10, 6, 10))

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (args.image_size,) * 2 + (3,), dtype=np.uint8) for _ in range(4)]
    if cuda:  # on a GPU the training number is the one asked for: measure it first
        measure_training(args, config, device, host, images, train_steps)
        measure_inference(args, config, device, host, images, reps, rounds)
    else:
        measure_inference(args, config, device, host, images, reps, rounds)
        measure_training(args, config, device, host, images, train_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
