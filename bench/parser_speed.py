"""Parser speed: ms per 512 x 512 image through ``Predictor.predict`` (resize in, forward,
softmax, resize back, argmax), peak memory, and training step time.

Variants are timed in interleaved rounds in one process (the host is shared, so a slow
moment hits every variant alike); ratios are against ``fp32`` (contiguous), measured in the
same run. Peak memory is measured per variant in a fresh subprocess.

    .venv/bin/python bench/parser_speed.py --quick                  # small, 2 CPU threads
    .venv/bin/python bench/parser_speed.py --config paper --device cuda --batch-size 8
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import base_args, describe_host, emit, setup, table  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model.config import ParserConfig  # noqa: E402
from model.devices import autocast  # noqa: E402
from model.inference import Predictor  # noqa: E402
from model.labels import CELEBAMASK  # noqa: E402
from model.losses import LossConfig, ParsingLoss  # noqa: E402
from model.network import build_parser  # noqa: E402

VARIANTS = {  # name: (amp, channels_last)
    "fp32": (False, False),
    "fp32 channels_last": (False, True),
    "bf16 channels_last": (True, True),
}


def make_predictor(config: ParserConfig, device: torch.device, variant: str) -> Predictor:
    torch.manual_seed(0)
    model = build_parser(config)
    with torch.no_grad():  # realistic BN statistics instead of the identity at init
        model.train()(torch.rand(2, 3, config.input_size, config.input_size))
    amp, cl = VARIANTS[variant]
    return Predictor(model.eval(), config, CELEBAMASK, {}, device=device,
                     threads=torch.get_num_threads() if device.type == "cpu" else None,
                     amp=amp, channels_last=cl)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_predict(pred: Predictor, images: list[np.ndarray], reps: int) -> list[float]:
    """Seconds per image, ``reps`` single-image calls."""
    out = []
    for i in range(reps):
        t = time.perf_counter()
        pred.predict(images[i % len(images)])
        sync(pred.device)
        out.append(time.perf_counter() - t)
    return out


def memory_child(config: ParserConfig, device: torch.device, variant: str, size: int) -> dict:
    """Run in a fresh process: RSS (or CUDA) peak of loading + predicting."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pred = make_predictor(config, device, variant)
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(3):
        pred.predict(image)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cuda = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"rss_start_mb": before, "rss_loaded_mb": loaded, "rss_peak_mb": peak, "cuda_peak_mb": cuda}


def train_step_times(config: ParserConfig, device: torch.device, batch: int, steps: int,
                     amp: bool, cl: bool) -> list[float]:
    torch.manual_seed(0)
    model = build_parser(config).to(device).train()
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    crit = ParsingLoss(LossConfig(), CELEBAMASK)
    s = config.input_size
    x = torch.rand(batch, 3, s, s, device=device)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CELEBAMASK.num_classes, (batch, s, s), device=device)
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
    return times


def main() -> int:
    p = base_args(__doc__.split("\n\n")[0])
    p.add_argument("--config", default="small", choices=("small", "paper"))
    p.add_argument("--image-size", type=int, default=512, help="side of the test images")
    p.add_argument("--batch-size", type=int, default=8, help="training batch")
    p.add_argument("--infer-batch", type=int, default=16, help="batch for images/s (GPU)")
    p.add_argument("--input-size", type=int, help="override the preset's network input size")
    p.add_argument("--memory-child", help=argparse_hidden())
    args = p.parse_args()
    if args.tiny:
        args.input_size, args.image_size, args.batch_size, args.infer_batch = 64, 64, 1, 2
    device = setup(args)
    config = ParserConfig.preset(args.config, **({"input_size": args.input_size}
                                                  if args.input_size else {}))
    if args.memory_child:
        print(json.dumps(memory_child(config, device, args.memory_child, args.image_size)))
        return 0

    reps, rounds, train_steps = (1, 1, 1) if args.tiny else (5, 4, 3) if args.quick else (10, 6, 10)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (args.image_size,) * 2 + (3,), dtype=np.uint8) for _ in range(4)]
    variants = list(VARIANTS) if device.type == "cpu" else ["fp32 channels_last", "bf16 channels_last"]
    preds = {v: make_predictor(config, device, v) for v in variants}
    for v in variants:
        time_predict(preds[v], images, 2)  # warm-up (oneDNN / cuDNN plans)
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for v in variants:
            times[v] += time_predict(preds[v], images, reps)
    med = {v: 1000 * statistics.median(t) for v, t in times.items()}
    base = med[variants[0]]

    mem = {}
    for v in variants:
        cmd = [sys.executable, __file__, "--config", args.config, "--device", str(device),
               "--threads", str(args.threads), "--image-size", str(args.image_size),
               "--input-size", str(config.input_size), "--memory-child", v]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        mem[v] = json.loads(out.stdout.strip().splitlines()[-1])

    rows = []
    for v in variants:
        m = mem[v]
        peak = f"{m['cuda_peak_mb']:.0f} (CUDA)" if m["cuda_peak_mb"] is not None else \
            f"{m['rss_peak_mb']:.0f} (+{m['rss_peak_mb'] - m['rss_start_mb']:.0f})"
        rows.append([v, f"{med[v]:.1f}", f"{statistics.quantiles(times[v], n=10)[-1] * 1000:.1f}",
                     f"{base / med[v]:.2f}x", peak])
    host = describe_host(device)
    emit(f"speed_infer_{args.config}",
         f"Inference, `{args.config}` ({config.backbone}, {config.input_size}² input), "
         f"{args.image_size}×{args.image_size} image, {host}",
         table(["variant", "ms / image (median)", "p90 ms", "speed vs fp32", "peak RSS MB (+ over start)"],
               rows), args.out, {"median_ms": med, "memory": mem})

    # Training steps (random data: compute only, no augmentation).
    tvars = [("fp32", False, False), ("bf16 channels_last", True, True)] if device.type == "cpu" \
        else [("bf16 channels_last", True, True)]
    trows, tdata = [], {}
    for name, amp, cl in tvars:
        t = train_step_times(config, device, args.batch_size, train_steps, amp, cl)
        tdata[name] = t
    tbase = statistics.median(tdata[tvars[0][0]])
    for name, _, _ in tvars:
        m = statistics.median(tdata[name])
        trows.append([name, args.batch_size, f"{1000 * m:.0f}", f"{1 / m:.2f}",
                      f"{args.batch_size / m:.1f}", f"{tbase / m:.2f}x"])
    if device.type == "cuda":
        # Inference throughput with batches (what a GPU is for).
        pred = preds["bf16 channels_last"]
        batch = [images[i % 4] for i in range(args.infer_batch)]
        pred.predict_batch(batch)
        sync(device)
        t = time.perf_counter()
        n = 0
        while time.perf_counter() - t < (1 if args.tiny else 10):
            pred.predict_batch(batch)
            n += len(batch)
        sync(device)
        ips = n / (time.perf_counter() - t)
        trows.append([f"inference bf16, batch {args.infer_batch}", "", "", "", f"{ips:.1f} img/s", ""])
    emit(f"speed_train_{args.config}",
         f"Training step, `{args.config}` at {config.input_size}², {host}",
         table(["variant", "batch", "ms / step", "steps / s", "images / s", "vs first row"], trows),
         args.out, {k: v for k, v in tdata.items()})
    return 0


def argparse_hidden() -> str:
    import argparse
    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
