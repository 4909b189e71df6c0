"""SAM on this CPU: image-encoder time and per-click latency with a cached embedding.

Random weights of the official vit_b size (no checkpoint is downloaded); timings do not depend
on the weight values. Usage: ``python bench/sam.py [--model vit_b] [--size 512] [--clicks 20]``.
Prints a Markdown table. Target: <= 100 ms per click once the embedding is cached.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segment_anything import sam_model_registry  # noqa: E402

from model.sam import SAM_MODEL_TYPES, SamEmbedding, SamModel  # noqa: E402


def _ms(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=SAM_MODEL_TYPES, default="vit_b")
    ap.add_argument("--size", type=int, default=512, help="square test image side, pixels")
    ap.add_argument("--clicks", type=int, default=20, help="timed clicks per prompt kind")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    sam = SamModel(sam_model_registry[args.model](checkpoint=None), args.model, f"{args.model}:random")
    build_s = time.perf_counter() - t0
    params = sum(p.numel() for p in sam.sam.parameters()) / 1e6
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)

    t0 = time.perf_counter()
    emb = sam.compute_embedding(image)
    enc_ms = (time.perf_counter() - t0) * 1000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "emb.npz"
        emb.save(path)
        size_mb = path.stat().st_size / 2**20
        load_ms = statistics.median(_ms(lambda: SamEmbedding.load(path), 5))
        emb = SamEmbedding.load(path)

    s = args.size
    prompts = {
        "1 click": ([(s // 2, s // 2, 1)], None),
        "3 clicks (+/-)": ([(s // 2, s // 2, 1), (s // 4, s // 4, 0), (s // 3, s // 2, 1)], None),
        "box": ([], (s // 4, s // 4, 3 * s // 4, 3 * s // 4)),
        "box + click": ([(s // 2, s // 2, 1)], (s // 4, s // 4, 3 * s // 4, 3 * s // 4)),
    }
    print(f"SAM {args.model} random weights, {params:.1f} M params, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, image {s}x{s}, build {build_s:.1f} s\n")
    print("| step | median ms | p90 ms |")
    print("|---|---:|---:|")
    print(f"| image encoder (once per image) | {enc_ms:.0f} | - |")
    print(f"| load cached embedding ({size_mb:.1f} MB float16) | {load_ms:.1f} | - |")
    for name, (pts, box) in prompts.items():
        sam.predict(emb, pts, box)  # warm-up
        times = sorted(_ms(lambda: sam.predict(emb, pts, box), args.clicks))
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        print(f"| click: {name} | {statistics.median(times):.0f} | {p90:.0f} |")


if __name__ == "__main__":
    main()
