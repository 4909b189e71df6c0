"""How many earring and necklace pixels the generator leaves unlabelled because the photo does
not show them (:mod:`model.synth.visibility`), per style and size, and the time that takes per
face; with ``--model CKPT``, also how many of the labelled earring pixels of held-out faces
that model finds (predicting as the app does).

    .venv/bin/python bench/thin_visibility.py --seeds 100-159 --sizes 160,512
    .venv/bin/python bench/thin_visibility.py --model fine1-s0.pt --heldout 60 --first 100 \
        --adjust 0.75
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table  # noqa: E402

from core.labels import CELEBAMASK  # noqa: E402
from model.synth.face import render_materials  # noqa: E402
from model.synth.materials import label_lut  # noqa: E402
from model.synth.spec import STYLES  # noqa: E402
from model.synth.visibility import unseen_thin_pixels  # noqa: E402

THIN = ("ear_r", "neck_l")


def hidden_share(style: str, size: int, seeds: range) -> list:
    """One row: per thin class ``hidden/labelled before`` pixels, and ms per face of the test."""
    lut = label_lut(CELEBAMASK)
    total, hidden, seconds = dict.fromkeys(THIN, 0), dict.fromkeys(THIN, 0), 0.0
    for seed in seeds:
        materials, image = render_materials(seed, size, style)
        t0 = time.perf_counter()
        unseen = unseen_thin_pixels(materials, image)
        seconds += time.perf_counter() - t0
        labels = lut[materials]
        for name in THIN:
            is_class = labels == CELEBAMASK.id(name)
            total[name] += int(is_class.sum())
            hidden[name] += int((is_class & unseen).sum())
    return [style, size, len(seeds),
            *(f"{hidden[n]}/{total[n]} = {hidden[n] / max(total[n], 1):.0%}" for n in THIN),
            f"{1000 * seconds / len(seeds):.1f}"]


def found_earrings(checkpoint: Path, count: int, first: int,
                   strength: float | None) -> list[list]:
    """Per style: faces with a labelled earring, earring pixels labelled / predicted / both, at
    logit-adjustment ``strength`` (``None``: the one the app uses for that checkpoint)."""
    from model.checkpoint import load_checkpoint
    from model.inference import Predictor
    from model.prior import held_out_faces

    ckpt = load_checkpoint(checkpoint)
    predictor = Predictor(ckpt.model, ckpt.config, ckpt.labels, ckpt.meta,
                          logit_adjustment=strength)
    ear = ckpt.labels.id("ear_r")
    rows = []
    for style in STYLES:
        faces = held_out_faces(count, ckpt.config.input_size, style, ckpt.labels, first)
        truth = pred = both = with_earring = 0
        for image, label in faces:
            t, p = label == ear, predictor.predict(image)[0] == ear
            truth, pred, both = truth + int(t.sum()), pred + int(p.sum()), both + int((t & p).sum())
            with_earring += int(t.any())
        rows.append([checkpoint.name, "recorded" if strength is None else strength, style,
                     count, with_earring, truth, pred, both])
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="100-159", help="render_face seeds FIRST-LAST")
    p.add_argument("--sizes", default="160,512")
    p.add_argument("--model", type=Path, help="also count the earrings this checkpoint finds")
    p.add_argument("--heldout", type=int, default=60, help="held-out faces per style (--model)")
    p.add_argument("--first", type=int, default=100, help="first held-out face (--model)")
    p.add_argument("--adjust", type=float, help="logit-adjustment strength (--model; default: "
                                                 "the checkpoint's recorded one)")
    args = p.parse_args()
    lo, hi = (int(v) for v in args.seeds.split("-"))
    rows = [hidden_share(style, int(size), range(lo, hi + 1))
            for size in args.sizes.split(",") for style in STYLES]
    print(table(["style", "px", "faces", "ear_r hidden", "neck_l hidden", "ms per face"], rows))
    if args.model is not None:
        found = found_earrings(args.model, args.heldout, args.first, args.adjust)
        print(table(["model", "strength", "style", "faces", "with an earring",
                     "earring px labelled", "predicted", "both"], found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
