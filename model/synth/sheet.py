"""A contact sheet of synthetic faces and their label maps, for looking at them.

``python -m model.synth.sheet OUT.png [--count 8] [--cell 112] [--seed 0]`` writes, per style,
a row of photos and below it the same faces' label maps (extras colours for hands/masks).
``docs/images/synth_faces.png`` is made with the defaults.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from core.labels import LabelSet
from model.synth import STYLES, render_face


def contact_sheet(count: int = 8, cell: int = 112, seed: int = 0) -> np.ndarray:
    """``(2 * len(STYLES) * cell) x (count * cell) x 3`` uint8: photo and label rows per style."""
    labels = LabelSet.celebamask(extras=True)
    rows = []
    for style in STYLES:
        photos, maps = [], []
        for s in range(seed, seed + count):
            image, label_map = render_face(s, 512, style, labels)
            photos.append(np.asarray(Image.fromarray(image).resize((cell, cell), Image.LANCZOS)))
            coloured = Image.fromarray(labels.colorize(label_map))
            maps.append(np.asarray(coloured.resize((cell, cell), Image.NEAREST)))
        rows += [np.concatenate(photos, axis=1), np.concatenate(maps, axis=1)]
    return np.concatenate(rows, axis=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--cell", type=int, default=112)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sheet = contact_sheet(args.count, args.cell, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
