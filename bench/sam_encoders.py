"""Image-encoder time per image of SAM and SAM 2.1 models on this CPU, in one run.

    python bench/sam_encoders.py [--models vit_b sam2.1_hiera_tiny] [--size 512] [--reps 3]
                                 [--threads 2] [--clicks 20]

Random weights of the official architectures (segment_anything's registry, the ``sam2``
package's configs; nothing downloaded): the time does not depend on the weight values. The
models take turns image by image (model A, model B, A, B, …) so a change in the box's load
hits all of them alike; the ratio column is against the first model. Also the PyTorch click
latency (one click, cached embedding) and the float16 embedding's size on disk. Prints a
Markdown table; docs/BENCHMARKS.md quotes it.
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
from model.sam_types import SAM_MODEL_TYPES  # noqa: E402


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
    print(f"\nload average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
