"""The loop on synthetic faces: a simulated annotator, retraining in a real worker process.

For each queue order (``uncertainty``: the studio's annotation queue, most uncertain first;
``random``), starting from an empty model — or, with ``--prior CKPT``, from that checkpoint
as the active model (the shipped face prior: then a K=0 row scores it with no labels at all):

1. the annotator takes the next images until K are labelled, and "corrects" each one by
   submitting its ground truth (what a perfect annotator would save); before that, the
   pre-annotation the worker cached for it is compared with the truth;
2. a ``train`` job is enqueued (as ``POST /api/train`` does) and the clock runs until the new
   version is published (active or kept inactive), then until the queue is re-scored;
3. the active model is evaluated on held-out faces that never enter the database.

Reported per K: the pre-annotation mean F1 on the *next* images the annotator gets (and the
share of their pixels still to fix, ``1 - pixel accuracy``), the held-out mean F1 and pixels
to fix, the worker's own validation F1, whether the version was activated, whether it was
trained with self-distillation (the worker distils only from a good enough active model), the
optimiser steps it made, and the time from enqueueing the job to the published version and to
the re-scored queue. The worker is ``python app.py worker`` with the
given FACET_* settings; this script only writes labels and jobs to the database, like the
studio does.

Usage::

    python bench/loop.py [--size 256] [--train-size N] [--seconds S] [--steps N]
                         [--ks 4,8,16,32] [--orders uncertainty,random] [--pool 48]
                         [--heldout 16] [--next 8] [--wild 0.25] [--device cpu] [--threads 2]
                         [--batch N] [--config small|paper] [--prior CKPT]

``--train-size``, ``--seconds``, ``--steps`` and ``--batch`` default to the worker's own
defaults (:meth:`model.recipe.TrainRecipe.for_device`: on a CPU a 160-px model, batch 8, 150 s
of training per run).

Prints a Markdown table (and the machine's load average before and after).
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.imageio import decode_label_png, encode_label_png  # noqa: E402
from core.labels import CELEBAMASK  # noqa: E402
from db.annotation_queue import next_image  # noqa: E402
from db.cache import get_prediction  # noqa: E402
from db.database import open_database  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.images import add_image  # noqa: E402
from db.jobs import create_job, get_job  # noqa: E402
from db.models import Image, JobState, ModelVersion, RevisionState  # noqa: E402
from db.revisions import save_revision  # noqa: E402
from db.settings import Settings  # noqa: E402
from db.users import create_user  # noqa: E402
from db.versions import active_version  # noqa: E402
from model.metrics import ConfusionMatrix  # noqa: E402
from model.synth import render_face  # noqa: E402
from worker.child_process import start_worker_process  # noqa: E402
from worker.client import HueyTaskQueue  # noqa: E402
from worker.options import WorkerOptions  # noqa: E402
from worker.snapshot import needs_work_ids  # noqa: E402

HELDOUT_SEED = 1_000_000
"""Held-out faces use seeds from here on; the pool uses 0.. (never the same face)."""


@dataclass
class Row:
    order: str
    k: int
    next_f1: float | None = None
    next_fix: float | None = None
    heldout_f1: float | None = None
    heldout_fix: float | None = None
    val_f1: float | None = None
    activated: bool | None = None
    to_publish_s: float | None = None
    to_scored_s: float | None = None
    steps: int | None = None
    distilled: bool | None = None


def style_of(i: int, wild: float) -> str:
    """Every ``1/wild``-th face is ``wild`` (hands, masks, harsh light), the rest ``studio``."""
    if wild <= 0:
        return "studio"
    return "wild" if (i % max(1, round(1 / wild))) == 0 else "studio"


def pool_seed(seed: int, i: int) -> int:
    """Face seed of pool image ``i`` in run ``seed`` (seed 0: faces 0, 1, 2, …)."""
    return seed * 10_000_000 + i


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def scores(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """``(mean F1, share of pixels to fix)`` of ``(prediction, truth)`` label maps, one matrix."""
    cm = ConfusionMatrix(CELEBAMASK)
    for pred, gt in pairs:
        cm.update(pred, gt)
    return cm.mean_f1(), 1.0 - cm.pixel_accuracy()


def wait(predicate, timeout_s: float, what: str, log: Path | None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log and log.is_file() else ""
    raise SystemExit(f"timed out waiting for {what}\n{tail}")


def run_order(order: str, args: argparse.Namespace, heldout: list[tuple[np.ndarray, np.ndarray]],
              root: Path) -> list[Row]:
    settings = Settings.resolve(data_dir=root / order, env={})
    sessions = open_database(settings)
    truth: dict[int, np.ndarray] = {}
    with session_scope(sessions) as s:
        user = create_user(s, "annotator", "not-used-here", "annotator").id
        for i in range(args.pool):
            image, label = render_face(pool_seed(args.seed, i), size=args.size,
                                       style=style_of(i, args.wild))
            truth[add_image(s, settings, png(image), f"face{i}.png").image.id] = label
    env = {"FACET_TRAIN_CONFIG": args.config, "FACET_TORCH_THREADS": str(args.threads),
           "FACET_DEVICE": args.device, "FACET_RETRAIN_EVERY": "0", "FACET_WORKERS": "1",
           "FACET_DISTILL_MAX_UNLABELED": str(args.pool), "OMP_NUM_THREADS": str(args.threads)}
    for name, value in (("FACET_TRAIN_STEPS", args.steps), ("FACET_TRAIN_SECONDS", args.seconds),
                        ("FACET_TRAIN_SIZE", args.train_size), ("FACET_TRAIN_BATCH", args.batch),
                        ("FACET_DISTILL_WEIGHT", args.distill_weight)):
        if value is not None:
            env[name] = str(value)
    queue = HueyTaskQueue(settings, WorkerOptions.from_env(env=env))
    rng = np.random.default_rng(args.seed)
    rows: list[Row] = []
    done = 0

    def take(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Annotate ``n`` more images in ``order``; (pre-annotation, truth) of those that had one."""
        seen = []
        for _ in range(n):
            with session_scope(sessions) as s:
                if order == "uncertainty":
                    image = next_image(s, user)
                    image_id = image.id
                else:
                    image_id = int(rng.choice(needs_work_ids(s)))
                version = active_version(s)
                pred = None if version is None else get_prediction(s, image_id, version.id)
                if pred is not None:
                    seen.append((decode_label_png(pred.label_png, 19), truth[image_id]))
                save_revision(s, image_id, encode_label_png(truth[image_id]), user, None,
                              state=RevisionState.submitted)
        return seen

    def scored(version_id: int) -> bool:
        with session_scope(sessions) as s:
            return all(s.get(Image, i).scored_by_id == version_id for i in needs_work_ids(s))

    with start_worker_process(settings, env=env) as worker:
        if args.prior is not None:
            rows.append(prior_row(order, args, sessions, settings, queue, heldout, scored, worker))
        for k in args.ks:
            if rows:  # the pre-annotations the annotator now starts from were made after K_prev
                rows[-1].next_f1, rows[-1].next_fix = scores(take(k - done)) if k > done else (None, None)
            else:
                take(k - done)
            done = k
            row = Row(order, k)
            with session_scope(sessions) as s:
                job_id = create_job(s, "train", {"source": "bench"}).id
            start = time.monotonic()
            queue.enqueue_training(job_id)

            def finished():
                with session_scope(sessions) as s:
                    job = get_job(s, job_id)
                    return job if job.state in (JobState.succeeded, JobState.failed) else None

            job = wait(finished, args.timeout, f"training job {job_id} (K={k})", worker.log_path)
            row.to_publish_s = time.monotonic() - start
            if job.state == JobState.failed:
                raise SystemExit(f"training job {job_id} failed: {job.error}")
            with session_scope(sessions) as s:
                published = s.scalars(select(ModelVersion).where(ModelVersion.job_id == job_id)).one()
                row.val_f1 = float(published.metrics["mean_f1"])
                row.steps = published.metrics.get("steps")
                row.distilled = published.metrics.get("distilled")
                row.activated = bool(published.is_active)
                active_id = active_version(s).id
                ckpt = settings.data_dir / active_version(s).checkpoint_path
            if row.activated:
                wait(lambda: scored(active_id), args.timeout, "re-scoring of the queue",
                     worker.log_path)
            row.to_scored_s = time.monotonic() - start
            from model.evaluate import evaluate
            from model.inference import Predictor

            result = evaluate(Predictor.load(ckpt, device="cpu"), heldout)
            row.heldout_f1, row.heldout_fix = result["mean_f1"], 1.0 - result["pixel_accuracy"]
            rows.append(row)
            print(f"  {order:11s} K={k:3d}: val F1 {row.val_f1:.3f}, held-out F1 "
                  f"{row.heldout_f1:.3f}, publish {row.to_publish_s:.0f} s", file=sys.stderr)
        rows[-1].next_f1, rows[-1].next_fix = scores(take(args.next))
    sessions.kw["bind"].dispose()
    return rows


def prior_row(order: str, args: argparse.Namespace, sessions, settings: Settings,
              queue: HueyTaskQueue, heldout: list[tuple[np.ndarray, np.ndarray]], scored,
              worker) -> Row:
    """Make ``args.prior`` the active version (as ``serve`` does with the shipped prior), wait
    until the worker pre-annotated the pool with it, and score it on the held-out faces."""
    import shutil

    from db.versions import activate, add_version
    from model.checkpoint import load_checkpoint
    from model.evaluate import evaluate
    from model.inference import Predictor

    ckpt = load_checkpoint(args.prior)
    target = settings.models_dir / "prior.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.prior, target)
    with session_scope(sessions) as s:
        version = add_version(s, "models/prior.pt", ckpt.config.to_dict(),
                              dict(ckpt.meta.get("metrics") or {}), note="prior")
        activate(s, version.id)
        version_id = version.id
    start = time.monotonic()
    queue.enqueue_scoring(version_id)
    wait(lambda: scored(version_id), args.timeout, "pre-annotation with the prior", worker.log_path)
    result = evaluate(Predictor(ckpt.model, ckpt.config, ckpt.labels, ckpt.meta, device="cpu"),
                      heldout)
    return Row(order, 0, heldout_f1=result["mean_f1"], heldout_fix=1.0 - result["pixel_accuracy"],
               to_scored_s=time.monotonic() - start)


def secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} s"


def fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if pct else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256, help="side of the faces (images, labels), px")
    p.add_argument("--train-size", type=int, default=None,
                   help="network input side of a fresh model (default: the worker's)")
    p.add_argument("--seconds", type=float, default=None,
                   help="training time per run (default: the worker's; 0: no limit)")
    p.add_argument("--steps", type=int, default=None,
                   help="most optimiser steps per run (default: the worker's)")
    p.add_argument("--batch", type=int, default=None, help="default: the worker's")
    p.add_argument("--config", default="small")
    p.add_argument("--ks", default="4,8,16,32", help="label counts after which to retrain")
    p.add_argument("--orders", default="uncertainty,random")
    p.add_argument("--pool", type=int, default=48, help="images in the database")
    p.add_argument("--heldout", type=int, default=16, help="unseen faces for the held-out F1")
    p.add_argument("--next", type=int, default=8, help="next images scored after the last K")
    p.add_argument("--wild", type=float, default=0.25, help="share of 'wild' style faces")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0,
                   help="draws the pool's faces and the random order (the held-out faces stay)")
    p.add_argument("--distill-weight", type=float, default=None,
                   help="FACET_DISTILL_WEIGHT of the worker (0: no self-distillation)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per wait")
    p.add_argument("--keep", type=Path, default=None, help="keep the data dirs here")
    p.add_argument("--prior", type=Path, default=None,
                   help="checkpoint that is the active model before any label (e.g. "
                        "assets/face-prior.pt)")
    args = p.parse_args(argv)
    args.ks = sorted(int(k) for k in args.ks.split(","))
    if args.pool < args.ks[-1] + args.next:
        p.error(f"--pool must hold K={args.ks[-1]} labels plus --next {args.next}")

    from model.devices import set_torch_threads

    set_torch_threads(args.threads)  # this process scores the held-out faces
    load0 = os.getloadavg()
    began = time.monotonic()
    heldout = [render_face(HELDOUT_SEED + i, size=args.size, style=style_of(i, args.wild))
               for i in range(args.heldout)]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="facet-bench-loop-") as tmp:
        root = args.keep or Path(tmp)
        for order in args.orders.split(","):
            rows += run_order(order, args, heldout, root)
    total = time.monotonic() - began
    load1 = os.getloadavg()

    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    recipe = WorkerOptions.from_env(
        env={}, train_steps=args.steps, train_seconds=args.seconds, train_size=args.train_size,
        batch_size=args.batch).recipe_for(device)
    train_size = recipe.input_size or "preset"
    seconds, steps, batch = recipe.time_budget_s, recipe.steps, recipe.batch_size
    print(f"Synthetic faces {args.size} px ({int(100 * args.wild)} % wild), pool {args.pool}, "
          f"held-out {args.heldout}; config {args.config} at {train_size} px, "
          f"{'no time limit' if seconds is None else f'{seconds:.0f} s'} and at most {steps} "
          f"steps x batch {batch} per run, device {args.device}, "
          f"{args.threads} threads, seed {args.seed}, distillation weight "
          f"{'default' if args.distill_weight is None else args.distill_weight}; "
          f"wall time {total / 60:.1f} min; load average "
          f"{load0[0]:.1f} before, {load1[0]:.1f} after ({os.cpu_count()} CPUs).\n")
    print("| order | K labels | pre-annotation F1 on the next images | pixels to fix (next) "
          "| held-out mean F1 | pixels to fix (held-out) | validation F1 (worker) | activated "
          "| distilled | steps | train → published | train → queue re-scored |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r.order} | {r.k} | {fmt(r.next_f1)} | {fmt(r.next_fix, True)} "
              f"| {fmt(r.heldout_f1)} | {fmt(r.heldout_fix, True)} | {fmt(r.val_f1)} "
              f"| {'yes' if r.activated else 'no'} | {'yes' if r.distilled else 'no'} "
              f"| {r.steps if r.steps is not None else '–'} | {secs(r.to_publish_s)} "
              f"| {secs(r.to_scored_s)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
