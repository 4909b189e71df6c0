"""Inference for the app: load a checkpoint once, then predict label maps from numpy images.

``Predictor.predict(image H x W x 3 uint8) → (label H x W uint8, confidence H x W float32)``
at any input size: the image is resized to the network input, the softmax probabilities are
resized back bilinearly, and each pixel takes the most probable class. The logits of classes
the training run weighted (earrings, necklaces) are first moved back by
:func:`model.calibration.class_logit_bias`, read from the checkpoint metadata. By default the
probabilities are the mean of the image's and of its mirror image's (the l_/r_ classes
swapped back), which places thin parts and outlines better at twice the compute.
"""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import FacetError
from core.labels import THIN_CLASSES, LabelSet
from model.augment import resize_pair
from model.calibration import class_logit_bias, recorded_strength
from model.checkpoint import load_checkpoint
from model.devices import autocast, resolve_device
from model.net import FaceParser, ParserConfig

LARGE_OUTPUT_PIXELS = 1 << 23
"""Upsampled probability values held at once (32 MB of float32): all 19 classes up to
~660 x 660, fewer classes at a time beyond."""

def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
            or image.dtype != np.uint8:
        desc = (f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray)
                else type(image).__name__)
        raise FacetError(f"expected an H x W x 3 uint8 RGB image, got {desc}")


class Predictor:
    """A loaded parser ready for inference (eval mode, ``torch.inference_mode``).

    ``amp`` runs under bfloat16 autocast; by default on CUDA only (CPU results then match
    float32 training evaluation exactly and do not depend on the CPU's bfloat16 support).
    Torch's thread count is the process's (:func:`model.devices.set_torch_threads`, called at
    its edge); building a predictor changes nothing outside it.

    ``meta`` is the checkpoint metadata; the class weights its run recorded are undone by
    ``logit_adjustment`` (:mod:`model.calibration`; ``None``: the strength the checkpoint
    recorded, else the default; 0 predicts from the raw logits).

    ``flip_average`` (default on) averages the probabilities of each image and of its mirror
    image, mapped back (left and right classes swapped): +0.01 mean F1 and up to +0.04 on
    earrings for models trained 1,500 steps (docs/BENCHMARKS.md), for two forward passes.
    """

    def __init__(self, model: FaceParser, config: ParserConfig, labels: LabelSet,
                 meta: dict[str, Any] | None = None, device: str | torch.device | None = None,
                 amp: bool | None = None, channels_last: bool = True,
                 thin_weight: float = 4.0, logit_adjustment: float | None = None,
                 flip_average: bool = True) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.config = config
        self.labels = labels
        self.meta = dict(meta or {})
        self.amp = (self.device.type == "cuda") if amp is None else amp
        self.thin_ids = [labels.id(n) for n in THIN_CLASSES if n in labels.names]
        self.thin_weight = thin_weight
        strength = recorded_strength(meta) if logit_adjustment is None else logit_adjustment
        bias = class_logit_bias(self.meta, labels, strength)
        self.logit_bias = None if bias is None else bias.view(1, -1, 1, 1).to(self.device)
        self.flip_average = flip_average
        self._mirror_ids = torch.from_numpy(labels.flip_table.astype(np.int64)).to(self.device)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None,
             **kwargs: Any) -> "Predictor":
        """Load a checkpoint file (a :class:`FacetError` if missing or damaged)."""
        ckpt = load_checkpoint(path, device="cpu")
        return cls(ckpt.model, ckpt.config, ckpt.labels, ckpt.meta, device, **kwargs)

    def _input(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        size = self.config.input_size
        batch = np.stack([resize_pair(im, None, size)[0] for im in images])
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @torch.inference_mode()
    def probabilities_small(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """``N`` images → ``N x C x S x S`` float32 softmax at the network input size ``S``."""
        for im in images:
            _check_image(im)
        x = self._input(images)
        if not self.flip_average:
            return self._softmax(x)
        both = self._softmax(torch.cat([x, x.flip(-1)]))
        mirrored = both[len(images):].flip(-1)[:, self._mirror_ids]
        return (both[:len(images)] + mirrored) / 2

    def _softmax(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 3 x S x S`` input → ``N x C x S x S`` softmax of the adjusted logits."""
        with autocast(self.device, self.amp):
            logits = self.model(x)["logits"].float()
        if self.logit_bias is not None:
            logits = logits + self.logit_bias
        return torch.softmax(logits, dim=1)

    @torch.inference_mode()
    def _finish(self, probs: torch.Tensor, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """``C x S x S`` probabilities → label and confidence at ``size = (H, W)``.

        Large outputs are upsampled a few classes at a time, keeping a running maximum, so
        that memory stays at a few ``H x W`` maps instead of ``C`` of them.
        """
        if tuple(probs.shape[-2:]) == tuple(size):
            conf, label = probs.max(dim=0)
        else:
            group = max(1, LARGE_OUTPUT_PIXELS // (size[0] * size[1]))
            conf = label = None
            for start in range(0, probs.shape[0], group):
                up = F.interpolate(probs[None, start:start + group], size=size, mode="bilinear",
                                   align_corners=False)[0]
                c, i = up.max(dim=0)
                if conf is None:
                    conf, label = c, i
                else:
                    better = c > conf
                    conf = torch.where(better, c, conf)
                    label = torch.where(better, i + start, label)
        return label.to(torch.uint8).cpu().numpy(), conf.cpu().numpy().astype(np.float32)

    def predict(self, image: np.ndarray,
                size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``H x W x 3`` uint8 RGB → ``(label H x W uint8, confidence H x W float32)``.

        ``size = (H', W')`` returns the maps at that size instead (e.g. a label-map size).
        """
        return self.predict_batch([image], size)[0]

    def predict_batch(self, images: Sequence[np.ndarray],
                      size: tuple[int, int] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`predict` for several images of any sizes, one forward pass."""
        if not images:
            return []
        probs = self.probabilities_small(images)
        return [self._finish(p, size or im.shape[:2]) for p, im in zip(probs, images)]

    def uncertainty_of(self, probs: torch.Tensor) -> float:
        """``C x S x S`` probabilities (:meth:`probabilities_small`) → :meth:`uncertainty`."""
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(dim=0) / math.log(probs.shape[0])
        weight = 1.0 + self.thin_weight * probs[self.thin_ids].sum(dim=0) if self.thin_ids \
            else torch.ones_like(entropy)
        return float((weight * entropy).sum() / weight.sum())

    def predict_with_uncertainty(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """``(label, confidence, uncertainty)`` from one forward pass; see :meth:`uncertainty`."""
        probs = self.probabilities_small([image])[0]
        label, conf = self._finish(probs, image.shape[:2])
        return label, conf, self.uncertainty_of(probs)

    def uncertainty(self, image: np.ndarray) -> float:
        """How unsure the model is about ``image``, in [0, 1] (higher = annotate sooner).

        The mean per-pixel entropy of the softmax (normalised by ``log C``), each pixel
        weighted by ``1 + thin_weight * P(thin class)`` so that likely earrings and necklaces
        (:data:`core.labels.THIN_CLASSES`: rare, thin, often wrong) count more.
        """
        return self.uncertainty_of(self.probabilities_small([image])[0])
