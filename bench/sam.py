"""SAM on this CPU: image-encoder time and per-click latency with a cached embedding,
PyTorch click path against the ONNX Runtime one, on a quiet CPU and with one core kept busy.

Random weights of an official size built with segment_anything's registry (no checkpoint is
downloaded); timings do not depend on the weight values. Usage:
``python bench/sam.py [--model vit_b] [--size 512] [--clicks 30] [--threads 2] [--skip-encoder]
[--profile]`` (``--profile``: also where the ONNX decoder spends a click, by operator).
Prints Markdown tables. Targets with a cached embedding: click median <= 25 ms and p90 <= 50 ms
on a quiet CPU, p90 <= 150 ms while another process keeps one core busy.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segment_anything import sam_model_registry  # noqa: E402

from model.sam import SamEmbedding, SamModel  # noqa: E402
from model.sam_types import SAM1_MODEL_TYPES  # noqa: E402
from model.sam_onnx import decoder_path  # noqa: E402


def _ms(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _pct(times: list[float], q: float) -> float:
    """Nearest-rank percentile (with 30 samples p99 is the slowest one)."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, max(0, int(np.ceil(q * len(ordered))) - 1))]


def _spin(stop) -> None:  # pragma: no cover - runs in the competing process
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    while not stop.is_set():
        for _ in range(100_000):
            pass


class BusyCore:
    """A second process spinning on one core (the last one) while the block runs."""

    def __enter__(self) -> "BusyCore":
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.proc = ctx.Process(target=_spin, args=(self.stop,), daemon=True)
        self.proc.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()


def _interleaved(sam: SamModel, emb: SamEmbedding, pts, box, clicks: int) -> dict[str, list[float]]:
    """Click latencies per path, alternating the paths click by click (same load for both)."""
    out: dict[str, list[float]] = {"torch": [], "onnx": []}
    for backend in out:                       # warm-up
        sam.predict(emb, pts, box, backend=backend)  # type: ignore[arg-type]
    for _ in range(clicks):
        for backend, times in out.items():
            t0 = time.perf_counter()
            sam.predict(emb, pts, box, backend=backend)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=SAM1_MODEL_TYPES, default="vit_b")
    ap.add_argument("--size", type=int, default=512, help="square test image side, pixels")
    ap.add_argument("--clicks", type=int, default=30, help="timed clicks per row and path")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads and ONNX Runtime intra-op threads")
    ap.add_argument("--profile", action="store_true",
                    help="also print the ONNX decoder's time per operator type for 1 click")
    ap.add_argument("--skip-encoder", action="store_true",
                    help="use a random cached embedding instead of running the encoder (~40 s "
                         "for vit_b); click latency does not depend on the embedding's values")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()

    t0 = time.perf_counter()
    sam = SamModel(sam_model_registry[args.model](checkpoint=None), args.model,
                   f"{args.model}:random")
    build_s = time.perf_counter() - t0
    params = sum(p.numel() for p in sam.sam.parameters()) / 1e6
    rng = np.random.default_rng(0)
    s = args.size
    image = rng.integers(0, 256, (s, s, 3), dtype=np.uint8)

    with tempfile.TemporaryDirectory() as tmp:
        enc_ms = None
        if args.skip_encoder:
            c = sam.sam.prompt_encoder.embed_dim
            e = sam.sam.prompt_encoder.image_embedding_size
            emb = SamEmbedding(rng.standard_normal((1, c, *e)).astype(np.float16), (s, s),
                               (sam.encoder_size, sam.encoder_size), sam.key)
        else:
            t0 = time.perf_counter()
            emb = sam.compute_embedding(image)
            enc_ms = (time.perf_counter() - t0) * 1000
        path = Path(tmp) / "emb.npz"
        emb.save(path)
        size_mb = path.stat().st_size / 2**20
        load_ms = statistics.median(_ms(lambda: SamEmbedding.load(path), 5))
        emb = SamEmbedding.load(path)

        onnx_file = decoder_path(tmp, sam.key)
        t0 = time.perf_counter()
        if not sam.enable_onnx(onnx_file, threads=args.threads):
            sys.exit("the ONNX click path could not be prepared (see the log above)")
        export_s = time.perf_counter() - t0
        onnx_mb = onnx_file.stat().st_size / 2**20
        t0 = time.perf_counter()
        SamModel(sam.sam, sam.model_type, sam.key).enable_onnx(onnx_file, threads=args.threads)
        reopen_s = time.perf_counter() - t0

    prompts = {
        "1 click": ([(s // 2, s // 2, 1)], None),
        "3 clicks (+/-)": ([(s // 2, s // 2, 1), (s // 4, s // 4, 0), (s // 3, s // 2, 1)], None),
        "box": ([], (s // 4, s // 4, 3 * s // 4, 3 * s // 4)),
        "box + click": ([(s // 2, s // 2, 1)], (s // 4, s // 4, 3 * s // 4, 3 * s // 4)),
    }
    import onnxruntime

    print(f"SAM {args.model} random weights, {params:.1f} M params, torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}, {args.threads} threads, image {s}x{s}, "
          f"{os.cpu_count()} CPUs, build {build_s:.1f} s, load average at start "
          f"{' '.join(f'{v:.2f}' for v in load_start)}\n")
    print("| step | ms |")
    print("|---|---:|")
    print(f"| image encoder (once per image) | {'-' if enc_ms is None else f'{enc_ms:.0f}'} |")
    print(f"| load cached embedding ({size_mb:.1f} MB float16) | {load_ms:.1f} |")
    print(f"| export ONNX decoder ({onnx_mb:.1f} MB, once per checkpoint) + open "
          f"| {export_s * 1000:.0f} |")
    print(f"| open the cached ONNX decoder (later starts) | {reopen_s * 1000:.0f} |")

    print(f"\nClick latency, {args.clicks} clicks per row and path (paths alternate click by "
          "click); ms median / p90 / p99:\n")
    print("| prompt | CPU | PyTorch | ONNX Runtime | ONNX/PyTorch median | ONNX/PyTorch p90 |")
    print("|---|---|---:|---:|---:|---:|")
    for load in ("no added load", "+1 busy core"):
        for name, (pts, box) in prompts.items():
            if load == "no added load":
                res = _interleaved(sam, emb, pts, box, args.clicks)
            else:
                with BusyCore():
                    res = _interleaved(sam, emb, pts, box, args.clicks)
            cols = {k: (statistics.median(v), _pct(v, 0.9), _pct(v, 0.99)) for k, v in res.items()}
            t, o = cols["torch"], cols["onnx"]
            print(f"| {name} | {load} | {t[0]:.0f} / {t[1]:.0f} / {t[2]:.0f} "
                  f"| {o[0]:.0f} / {o[1]:.0f} / {o[2]:.0f} "
                  f"| {o[0] / t[0]:.2f} | {o[1] / t[1]:.2f} |")
    if args.profile:
        _print_profile(sam, emb, prompts["1 click"], args.threads, args.clicks)
    print(f"\nload average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def _print_profile(sam: SamModel, emb: SamEmbedding, prompt, threads: int, runs: int) -> None:
    """ONNX Runtime's own profile of ``runs`` one-click answers: share and ms per run of each
    operator type (a session of its own, with profiling on)."""
    import collections
    import json

    import onnxruntime as ort

    from model.sam_onnx import OnnxClickDecoder

    with tempfile.TemporaryDirectory() as tmp:
        path = decoder_path(tmp, sam.key)
        OnnxClickDecoder.load_or_export(sam.sam, sam.key, path, threads)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "profile")
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
        low = session.get_inputs()[3].shape
        model = SamModel(sam.sam, sam.model_type, sam.key)
        model._onnx = OnnxClickDecoder(session, sam.encoder_size, (int(low[2]), int(low[3])))
        for _ in range(runs):
            model.predict(emb, *prompt, backend="onnx")
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node":
            per_op[event["args"].get("op_name", "?")] += event["dur"]
    total = sum(per_op.values())
    print(f"\nONNX decoder profile, 1 click, {runs} runs, {threads} threads:\n")
    print("| operator | share | ms per click |")
    print("|---|---:|---:|")
    for op, micros in per_op.most_common(8):
        print(f"| {op} | {100 * micros / total:.0f} % | {micros / runs / 1000:.2f} |")


if __name__ == "__main__":
    main()
