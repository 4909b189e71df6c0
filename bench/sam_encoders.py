"""SAM and SAM 2.1 models on this CPU, in one run: encoder time per image, click latency.

    python bench/sam_encoders.py [--models vit_b sam2.1_hiera_tiny] [--size 512] [--reps 3]
                                 [--threads 2] [--clicks 20]

Random weights of the official architectures (segment_anything's registry, the ``sam2``
package's configs; nothing downloaded): the time does not depend on the weight values. The
models take turns image by image (model A, model B, A, B, …) so a change in the box's load
hits all of them alike; the ratio column is against the first model. Then each model's click
latency on the path the studio uses (ONNX Runtime for SAM, exported here once; PyTorch for
SAM 2.1), for 1 click, 3 clicks, a box and box + click, on the quiet CPU and with a second
process keeping one core busy. Prints Markdown tables; docs/BENCHMARKS.md quotes them.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segment_anything.modeling import Sam  # noqa: E402

from model.sam import SamModel, default_builders  # noqa: E402
from model.sam2_model import Sam2Model  # noqa: E402
from model.sam_onnx import decoder_path  # noqa: E402
from model.sam_types import SAM_MODEL_TYPES  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sam import BusyCore, _pct  # noqa: E402  (bench/sam.py)


def _load(model_type: str):
    net = default_builders()[model_type](checkpoint=None)
    wrap = SamModel if isinstance(net, Sam) else Sam2Model
    return wrap(net, model_type, f"{model_type}:random")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", choices=SAM_MODEL_TYPES,
                    default=["vit_b", "sam2.1_hiera_tiny"])
    ap.add_argument("--size", type=int, default=512, help="square test image side, pixels")
    ap.add_argument("--reps", type=int, default=3, help="timed images per model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clicks", type=int, default=20, help="timed clicks per model")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    models = {t: _load(t) for t in args.models}
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    for model in models.values():          # warm-up: first-call allocations, lazy init
        model.compute_embedding(image)
    times: dict[str, list[float]] = {t: [] for t in models}
    embeddings = {}
    for _ in range(args.reps):
        for name, model in models.items():
            t0 = time.perf_counter()
            embeddings[name] = model.compute_embedding(image)
            times[name].append(time.perf_counter() - t0)

    s = args.size
    prompts = {
        "1 click": ([(s // 2, s // 2, 1)], None),
        "3 clicks (+/-)": ([(s // 2, s // 2, 1), (s // 4, s // 4, 0), (s // 3, s // 2, 1)], None),
        "box": ([], (s // 4, s // 4, 3 * s // 4, 3 * s // 4)),
        "box + click": ([(s // 2, s // 2, 1)], (s // 4, s // 4, 3 * s // 4, 3 * s // 4)),
    }
    c = args.size // 2
    print(f"random weights, torch {torch.__version__}, {args.threads} threads, image "
          f"{args.size}x{args.size}, {os.cpu_count()} CPUs, {args.reps} images per model "
          f"(models alternate), load average at start {' '.join(f'{v:.2f}' for v in load_start)}\n")
    print("| model | params (M) | encoder s/image (median) | x faster than "
          f"{args.models[0]} | embedding on disk (MB) | click median / p90 ms (PyTorch) |")
    print("|---|---:|---:|---:|---:|---:|")
    base = statistics.median(times[args.models[0]])
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            path = Path(tmp) / f"{name}.npz"
            embeddings[name].save(path)
            clicks = []
            model.predict(embeddings[name], [(c, c, 1)], backend="torch")
            for _ in range(args.clicks):
                t0 = time.perf_counter()
                model.predict(embeddings[name], [(c, c, 1)], backend="torch")
                clicks.append((time.perf_counter() - t0) * 1000)
            clicks.sort()
            enc = statistics.median(times[name])
            params = sum(p.numel() for p in model.sam.parameters()) / 1e6
            print(f"| {name} | {params:.1f} | {enc:.1f} | {base / enc:.1f} "
                  f"| {path.stat().st_size / 2**20:.1f} | {statistics.median(clicks):.0f} / "
                  f"{clicks[int(0.9 * (len(clicks) - 1))]:.0f} |")
        latencies = {}
        for name, model in models.items():
            model.enable_onnx(decoder_path(tmp, model.key), threads=args.threads)
            for load in ("no added load", "+1 busy core"):
                for kind, (pts, box) in prompts.items():
                    if load == "no added load":
                        latencies[name, kind, load] = _clicks(model, embeddings[name], pts, box,
                                                              args.clicks)
                    else:
                        with BusyCore():
                            latencies[name, kind, load] = _clicks(model, embeddings[name], pts,
                                                                  box, args.clicks)
    print(f"\nClick latency on the studio's path, {args.clicks} clicks per row, ms "
          "median / p90 / p99:\n")
    print("| model (path) | prompt | " + " | ".join(("no added load", "+1 busy core")) + " |")
    print("|---|---|---:|---:|")
    for name, model in models.items():
        for kind in prompts:
            cells = []
            for load in ("no added load", "+1 busy core"):
                t = latencies[name, kind, load]
                cells.append(f"{statistics.median(t):.0f} / {_pct(t, 0.9):.0f} / {_pct(t, 0.99):.0f}")
            print(f"| {name} ({model.backend}) | {kind} | " + " | ".join(cells) + " |")
    print(f"\nload average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def _clicks(model, emb, pts, box, count: int) -> list[float]:
    model.predict(emb, pts, box)   # warm-up
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        model.predict(emb, pts, box)
        out.append((time.perf_counter() - t0) * 1000)
    return out


if __name__ == "__main__":
    main()
