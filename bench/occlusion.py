"""Occlusion: does a parser paint face parts behind hands and face masks?

Held-out synthetic faces of the ``wild`` style (where most faces have a hand or a face mask
in front of them) are rendered with the opt-in ``hand`` / ``mask`` classes, so the occluder's
pixels are known. CelebAMask-HQ labels what is behind an occluder as background (id 0), so a
19-class parser is right there when it predicts background (or anything that is not a face
part), and a parser trained with the extra classes when it predicts ``hand`` / ``mask``.

For each checkpoint, faces are grouped into those with a hand, those with a face mask (a
face may have both) and the clear ones; per group: F1 of skin, nose, mouth and lips (the
parts occluders cover), how much of the occluder the parser labels as a face part
("hallucinated", the number to keep low), and, for a model with the extra classes, their F1.

    .venv/bin/python bench/occlusion.py                      # the shipped prior
    .venv/bin/python bench/occlusion.py --models a.pt,b.pt --faces 96 --out docs/bench
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, table  # noqa: E402

from core.labels import CELEBAMASK, EXTRA_NAMES, LabelSet  # noqa: E402
from model.devices import set_torch_threads  # noqa: E402
from model.inference import Predictor  # noqa: E402
from model.metrics import ConfusionMatrix  # noqa: E402
from model.prior import held_out_faces  # noqa: E402

WITH_EXTRAS = LabelSet.celebamask(extras=True)
FACE_PARTS = ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "u_lip", "l_lip", "mouth")
"""Classes that must not appear on an occluder: what a parser would invent behind it."""
REPORTED = ("skin", "nose", "mouth", "u_lip", "l_lip")
GROUPS = ("hand", "mask", "clear")
FIRST_FACE = 200
"""Held-out faces from here on (the prior's own validation uses faces 0-23, thin_parts 100+)."""


@dataclass
class GroupScore:
    """What one group of faces adds up to: a confusion matrix over the model's classes and
    the occluder pixels, split into those labelled as a face part and the rest."""

    cm: ConfusionMatrix
    faces: int = 0
    occluder_px: int = 0
    hallucinated_px: int = 0

    def row(self) -> dict:
        f1 = self.cm.per_class_f1()
        return {"faces": self.faces, **{n: f1.get(n) for n in REPORTED},
                **{n: f1.get(n) for n in EXTRA_NAMES},
                "hallucinated": (self.hallucinated_px / self.occluder_px
                                 if self.occluder_px else None)}


def groups_of(label: np.ndarray) -> list[str]:
    """The groups a face with the ``WITH_EXTRAS`` label map ``label`` (H x W) belongs to."""
    found = [g for g in ("hand", "mask") if (label == WITH_EXTRAS.id(g)).any()]
    return found or ["clear"]


def truth_for(label: np.ndarray, labels: LabelSet) -> np.ndarray:
    """``label`` (``WITH_EXTRAS`` ids) as the ground truth of a model with ``labels``: the
    extra classes kept when it has them, background otherwise (as CelebAMask-HQ)."""
    if all(n in labels.names for n in EXTRA_NAMES):
        return label
    return np.where(label >= CELEBAMASK.num_classes, 0, label).astype(np.uint8)


def score_occlusion(predictor: Predictor, faces: list[tuple[np.ndarray, np.ndarray]]
                    ) -> dict[str, dict]:
    """``faces``: ``(image, WITH_EXTRAS label)`` pairs → ``{group: GroupScore.row()}``."""
    labels = predictor.labels
    part_ids = np.array([labels.id(n) for n in FACE_PARTS])
    scores = {g: GroupScore(ConfusionMatrix(labels)) for g in GROUPS}
    for image, label in faces:
        pred, _ = predictor.predict(image, size=label.shape)
        occluder = label >= CELEBAMASK.num_classes
        invented = int((occluder & np.isin(pred, part_ids)).sum())
        for g in groups_of(label):
            s = scores[g]
            s.cm.update(pred, truth_for(label, labels))
            s.faces += 1
            s.occluder_px += int(occluder.sum())
            s.hallucinated_px += invented
    return {g: s.row() for g, s in scores.items()}


def cell(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.2f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="assets/face-prior.pt",
                   help="comma-separated checkpoints (default: the shipped prior)")
    p.add_argument("--faces", type=int, default=96, help="held-out wild faces")
    p.add_argument("--size", type=int, help="render size (default: each model's input size)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    set_torch_threads(args.threads)
    rows, data = [], {}
    for path in args.models.split(","):
        predictor = Predictor.load(path)
        size = args.size or predictor.config.input_size
        faces = held_out_faces(args.faces, size, "wild", WITH_EXTRAS, first=FIRST_FACE)
        result = score_occlusion(predictor, faces)
        data[path] = result
        for g, r in result.items():
            rows.append([path, g, r["faces"], *(cell(r[n]) for n in REPORTED),
                         cell(r["hallucinated"], percent=True),
                         " / ".join(cell(r[n]) for n in EXTRA_NAMES)])
            print(" | ".join(str(c) for c in rows[-1]), flush=True)
    headers = ["model", "faces with", "faces", *(f"{n} F1" for n in REPORTED),
               "occluder px labelled a face part", "hand / mask F1"]
    emit("occlusion", f"Occlusion: {args.faces} held-out wild faces (from face {FIRST_FACE})",
         table(headers, rows), args.out, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
