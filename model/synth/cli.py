"""``python app.py synth OUT --count N [--seed S] [--style studio|wild] [--size 512]``:
synthetic faces written as a CelebAMask-HQ tree (:func:`model.synth.write_synth_tree`)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.labels import LabelSet


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``synth`` sub-command to ``sub``."""
    p = sub.add_parser("synth", help="write synthetic faces as a CelebAMask-HQ tree",
                       description="Write procedurally drawn faces with exact label maps as a "
                                   "CelebAMask-HQ tree (images, per-class masks, merged label maps).")
    p.add_argument("out", type=Path, metavar="OUT", help="folder to write (created if missing)")
    p.add_argument("--count", type=int, required=True, help="number of faces")
    p.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    p.add_argument("--style", default="studio",
                   help="studio (default) or wild: the shifted domain with hands, face masks, "
                        "harsh coloured light, more pose, blur and noise")
    p.add_argument("--size", type=int, default=512,
                   help="image size in pixels (label maps are always 512 x 512)")
    p.add_argument("--start-k", type=int, default=0, help="id k of the first face (default 0)")
    p.add_argument("--extras", action="store_true",
                   help="label hands and face masks as the extra classes hand/mask "
                        "(default: background, as in CelebAMask-HQ)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the tree and print one summary line; bad arguments raise FacetError."""
    from model.synth import write_synth_tree

    labels = LabelSet.celebamask(extras=args.extras)
    start = time.perf_counter()
    ks = write_synth_tree(args.out, args.count, seed=args.seed, style=args.style, size=args.size,
                          start_k=args.start_k, progress=True, labels=labels)
    took = time.perf_counter() - start
    print(f"wrote {len(ks)} {args.style} faces (k {ks[0]}..{ks[-1]}, seed {args.seed}, "
          f"{args.size}x{args.size}) to {args.out} in {took:.1f} s")
    return 0
