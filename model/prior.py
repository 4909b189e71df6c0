"""The synthetic face prior: a parser trained only on an endless stream of freshly rendered
synthetic faces (both styles, every augmentation, never the same face twice), so that a fresh
studio pre-annotates faces before anyone has labelled one.

:func:`pretrain` trains it (the ``pretrain`` command); :func:`score_prior` measures it per
class on held-out synthetic faces of both styles, drawn from seeds the stream never uses.
"""
from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from core.errors import FacetError
from core.labels import CELEBAMASK, THIN_CLASSES, LabelSet
from model.augment import AugmentConfig, augment_pair
from model.calibration import best_strength
from model.evaluate import evaluate
from model.inference import Predictor
from model.net import ParserConfig
from model.recipe import TrainRecipe
from model.synth import STYLES, face_seed, render_face
from model.train import OnStep, Source, TrainResult, prepare, run_metadata, run_steps

HELD_OUT_SEED = 900_001
"""Base seed of the held-out faces (:func:`model.synth.face_seed`); the stream draws from
``[STREAM_SEED_BASE, 2**62)``, so it never renders one of them."""
STREAM_SEED_BASE = 1 << 40
TUNING_FIRST = 300
"""First held-out face used to tune a prior's logit adjustment; the scores reported
(:func:`score_prior` from face 0, ``bench/thin_parts.py`` from face 100, 24 faces each by
default) stay below it as long as they score fewer than 200 faces per style."""
TUNING_FACES = 60
"""Held-out faces per style :func:`tune_logit_adjustment` chooses on by default. Few faces
show an earring, so with 24 the choice followed the sample: for three models trained 1,500
steps from random weights the earring F1 peaked at strength 0.5 on 24 tuning faces per style
and at 0.75–1 on 24 scored ones, while on 60 tuning and 100 scored faces per style both
peaked at 0.75 (docs/BENCHMARKS.md)."""
MAX_REDRAWS = 4
"""Most redraws of one face under :attr:`SynthFaceStream.rare_boost`."""
STREAM_AUGMENT = AugmentConfig(scale=(1.0, 1.0), rotation_deg=0.0, shift=0.0, blur_prob=0.0)
"""How ``pretrain`` augments the stream's faces: mirror and colour only. The generator already
varies pose, size, position and (``wild``) blur, and draws each label with its image; a random
warp resamples a 1-px earring or chain to the nearest pixel beside a bilinear image, and extra
blur hides parts the label still shows. Without both, models trained 1,500 steps from random
weights find earrings at F1 0.37 instead of 0.30 and necklaces at 0.76 instead of 0.68, mean F1
+0.032 (3 seeds; docs/BENCHMARKS.md "Faces as the generator drew them")."""


class SynthFaceStream(IterableDataset):
    """Endless batches of new synthetic faces, each augmented as ``augment`` says
    (:data:`STREAM_AUGMENT` for ``pretrain``).

    Each item: ``"images"``: ``B x 3 x S x S`` uint8, ``"targets"``: ``B x S x S`` uint8. Each
    face is rendered at ``S`` (the network input) from a fresh random seed in a random style.

    ``rare_boost`` in [0, 1]: a face that shows none of the thin classes
    (:data:`core.labels.THIN_CLASSES`: earrings, necklaces) is redrawn with this probability
    (at most :data:`MAX_REDRAWS` times), so the rare parts are seen more often; 0 keeps the
    generator's own frequencies.
    """

    def __init__(self, size: int, batch_size: int, labels: LabelSet, augment: AugmentConfig,
                 seed: int, styles: tuple[str, ...] = STYLES, rare_boost: float = 0.0) -> None:
        if not 0.0 <= rare_boost <= 1.0:
            raise FacetError(f"rare_boost must be in [0, 1], got {rare_boost}")
        self.size, self.batch_size, self.labels = size, batch_size, labels
        self.augment, self.seed, self.styles = augment, seed, styles
        self.rare_boost = rare_boost
        self.rare_ids = np.array([labels.id(n) for n in THIN_CLASSES if n in labels.names],
                                 dtype=np.uint8)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, 0 if info is None else info.id + 1, 77])
        while True:
            yield self.draw(rng)

    def draw(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        pairs = []
        for _ in range(self.batch_size):
            image, label = self.render(rng)
            pairs.append(augment_pair(image, label, self.size, self.labels, rng, self.augment))
        return {"images": torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2),
                "targets": torch.from_numpy(np.stack([p[1] for p in pairs]))}

    def render(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One new face ``(image S x S x 3, label S x S)``, redrawn as ``rare_boost`` says."""
        for _ in range(MAX_REDRAWS):
            image, label = self._new_face(rng)
            if (self.rare_boost == 0.0 or np.isin(label, self.rare_ids).any()
                    or rng.random() >= self.rare_boost):
                return image, label
        return self._new_face(rng)

    def _new_face(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        seed = int(rng.integers(STREAM_SEED_BASE, 1 << 62))
        style = self.styles[int(rng.integers(len(self.styles)))]
        return render_face(seed, self.size, style, self.labels)


def pretrain(config: ParserConfig | None, recipe: TrainRecipe, *,
             device: str | torch.device = "cpu", on_step: OnStep | None = None,
             labels: LabelSet = CELEBAMASK, init: Source | None = None,
             rare_boost: float = 0.0) -> TrainResult:
    """Train a fresh ``config`` model (or go on training ``init``, a checkpoint, whose config
    is then used) on :class:`SynthFaceStream` as ``recipe`` says, the input size being the
    config's. The metadata is :func:`model.train.run_metadata`'s plus ``"prior"``: the faces
    seen, the styles, ``rare_boost`` and what it started from."""
    setup = prepare((), config, recipe, init=init, teacher=None, unlabeled=False,
                    device=device, labels=labels)
    r = setup.recipe
    stream = SynthFaceStream(setup.config.input_size, r.batch_size, setup.labels, r.augment,
                             r.seed, rare_boost=rare_boost)
    progress = run_steps(setup, stream, on_step)
    model = setup.model.to("cpu").to(memory_format=torch.contiguous_format).eval()
    meta = run_metadata(setup, progress, n_labelled=0, n_unlabeled=0)
    meta["prior"] = {"source": "synthetic faces, fresh every step", "styles": list(STYLES),
                     "faces_seen": progress.images, "rare_boost": rare_boost,
                     "continued_from": str(init) if isinstance(init, (str, PathLike)) else None}
    return TrainResult(model, setup.config, meta, setup.labels)


def held_out_faces(count: int, size: int, style: str, labels: LabelSet = CELEBAMASK,
                   first: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic faces ``first .. first + count - 1`` of ``style`` that no training stream
    renders: ``(image size x size x 3, label size x size)`` uint8 pairs."""
    return [render_face(face_seed(HELD_OUT_SEED + STYLES.index(style), k), size, style, labels)
            for k in range(first, first + count)]


def score_prior(predictor: Predictor, count: int = 24, size: int = 256,
                first: int = 0) -> dict[str, Any]:
    """Validation metrics of a prior on ``count`` held-out faces per style (from face
    ``first`` on), at ``size`` px:
    ``{"mean_f1", "per_class_f1", "by_style": {style: {"mean_f1", "per_class_f1"}}}`` (F1 in
    [0, 1]; the overall numbers pool every face of every style)."""
    faces = {style: held_out_faces(count, size, style, predictor.labels, first)
             for style in STYLES}
    by_style = {style: evaluate(predictor, faces[style]) for style in STYLES}
    pooled = evaluate(predictor, [face for style in STYLES for face in faces[style]])
    return {"mean_f1": pooled["mean_f1"], "per_class_f1": pooled["per_class_f1"],
            "n_images": pooled["n_images"],
            "by_style": {s: {"mean_f1": m["mean_f1"], "per_class_f1": m["per_class_f1"]}
                         for s, m in by_style.items()}}


def tune_logit_adjustment(model: torch.nn.Module, config: ParserConfig, labels: LabelSet,
                          meta: dict[str, Any], count: int = TUNING_FACES,
                          device: str | torch.device | None = None,
                          flip_average: bool = True) -> float:
    """The logit-adjustment strength (:mod:`model.calibration`) under which ``model`` finds
    earrings and necklaces best (mean F1 of :data:`core.labels.THIN_CLASSES`) on ``count``
    held-out faces per style from :data:`TUNING_FIRST` on — faces :func:`score_prior`'s
    reported scores do not use. ``flip_average``: predict as :class:`Predictor` does by default
    (the mean over the image and its mirror image) or from the image alone."""
    faces = [face for style in STYLES
             for face in held_out_faces(count, config.input_size, style, labels, TUNING_FIRST)]
    thin = [n for n in THIN_CLASSES if n in labels.names]

    def thin_f1(strength: float) -> float:
        predictor = Predictor(model, config, labels, meta, device=device,
                              logit_adjustment=strength, flip_average=flip_average)
        f1 = evaluate(predictor, faces)["per_class_f1"]
        return float(np.mean([f1[n] or 0.0 for n in thin])) if thin else 0.0

    return best_strength(thin_f1)


__all__ = ["HELD_OUT_SEED", "STREAM_AUGMENT", "TUNING_FACES", "TUNING_FIRST", "SynthFaceStream",
           "held_out_faces", "pretrain", "score_prior", "tune_logit_adjustment"]
