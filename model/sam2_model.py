"""SAM 2.1 (the ``sam2`` package) behind the same contract as :class:`model.sam.SamModel`.

The image encoder (Hiera) runs once per image (:meth:`Sam2Model.compute_embedding`, in the
worker); its outputs — the ``1 x 256 x 64 x 64`` embedding and the two finer maps SAM 2's mask
decoder also reads (``1 x 32 x 256 x 256``, ``1 x 64 x 128 x 128`` for the official models) —
are stored as float16 in the same :class:`~model.sam.SamEmbedding` file (8 MB), and a click
restores them into a ``SAM2ImagePredictor`` without touching the encoder. Clicks run in
PyTorch (there is no ONNX export of SAM 2's decoder here). SAM 2 resizes every image to a
square of ``image_size`` (1024) pixels, so ``input_size`` is that square.

Checkpoints are the official files (``sam2.1_hiera_tiny.pt`` …) given by path; the
architecture comes from the package's own configs (:data:`model.sam_types.SAM2_CONFIGS`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch

from model.sam import (Backend, PromptModel, SamAnswer, SamEmbedding, SamError, check_candidate,
                       check_mask_input, check_prompts, pick_answer)
from model.sam_types import SAM2_CONFIGS

log = logging.getLogger("facet.sam")


def build_sam2_architecture(config: str, checkpoint: str | None = None,
                            overrides: Sequence[str] = ()) -> torch.nn.Module:
    """A random-weight SAM 2 network from one of the ``sam2`` package's configs (CPU, eval).
    ``checkpoint`` is accepted for registry compatibility and ignored (weights are loaded by
    :meth:`model.sam.SamModel.from_checkpoint`); ``overrides``: Hydra overrides (tests)."""
    from sam2.build_sam import build_sam2

    return build_sam2(config, ckpt_path=None, device="cpu", mode="eval",
                      hydra_overrides_extra=list(overrides))


def sam2_builders() -> dict[str, Callable[..., torch.nn.Module]]:
    """Builders of the official SAM 2.1 architectures; empty when ``sam2`` is not installed."""
    try:
        import sam2  # noqa: F401
    except ImportError:
        return {}
    return {name: partial(build_sam2_architecture, config) for name, config in SAM2_CONFIGS.items()}


class Sam2Model(PromptModel):
    """A loaded SAM 2 network with :class:`model.sam.SamModel`'s methods (thread-safe: each
    call has its own predictor)."""

    def __init__(self, net: torch.nn.Module, model_type: str, key: str) -> None:
        self.sam = net.eval()
        self.model_type = model_type
        self.key = key
        """Identifies model + weights in caches: ``"<type>:<sha256[:12]>"``."""
        side = int(net.image_size) // 16
        self._feature_sizes = [(4 * side, 4 * side), (2 * side, 2 * side), (side, side)]

    @property
    def backend(self) -> Backend:
        return "torch"

    def enable_onnx(self, path: str | Path, threads: int = 2) -> bool:
        """SAM 2 clicks always run in PyTorch: ``False`` (logged once at INFO)."""
        log.info("SAM %s: clicks run in PyTorch (no ONNX decoder for SAM 2)", self.key)
        return False

    def disable_onnx(self) -> None:
        """Nothing to do: SAM 2 clicks run in PyTorch."""

    @property
    def encoder_size(self) -> int:
        """Side, in pixels, of the square the encoder sees (1024 for official models)."""
        return int(self.sam.image_size)

    def _predictor(self):
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        predictor = SAM2ImagePredictor(self.sam)
        predictor._bb_feat_sizes = list(self._feature_sizes)   # the package assumes 1024 px
        return predictor

    @torch.no_grad()
    def compute_embedding(self, image: np.ndarray) -> SamEmbedding:
        """Run the image encoder on an ``H x W x 3`` uint8 RGB image (the slow step)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise SamError(f"SAM needs an H x W x 3 uint8 RGB image, got {image.shape} {image.dtype}")
        predictor = self._predictor()
        predictor.set_image(image)
        feats = predictor._features
        as16 = lambda t: t.detach().cpu().numpy().astype(np.float16)  # noqa: E731
        return SamEmbedding(as16(feats["image_embed"]), tuple(image.shape[:2]),  # type: ignore[arg-type]
                            (self.encoder_size, self.encoder_size), self.key,
                            tuple(as16(h) for h in feats["high_res_feats"]))

    def _restored_predictor(self, emb: SamEmbedding):
        if emb.model_key != self.key:
            raise SamError(f"embedding was computed by {emb.model_key}, this model is {self.key}")
        if len(emb.high_res) != 2:
            raise SamError("not a SAM 2 embedding: the two finer feature maps are missing")
        predictor = self._predictor()
        predictor._features = {
            "image_embed": torch.from_numpy(emb.features.astype(np.float32)),
            "high_res_feats": [torch.from_numpy(h.astype(np.float32)) for h in emb.high_res]}
        predictor._orig_hw = [tuple(emb.original_size)]
        predictor._is_image_set = True
        predictor._is_batch = False
        return predictor

    @torch.no_grad()
    def answer(self, emb: SamEmbedding, points: Sequence[Sequence[float]] = (),
               box: Sequence[float] | None = None, mask_input: np.ndarray | None = None,
               candidate: int | None = None, backend: Backend | None = None) -> SamAnswer:
        """See :meth:`model.sam.SamModel.answer`; ``backend="onnx"`` is refused."""
        if backend == "onnx":
            raise SamError("SAM 2 has no ONNX click path")
        check_candidate(candidate)
        pts, labels = check_prompts(points, box, emb.original_size)
        predictor = self._restored_predictor(emb)
        low_side = 4 * self._feature_sizes[2][0]
        mask_input = check_mask_input(mask_input, (1, low_side, low_side))
        multimask = box is None and len(pts) == 1
        masks, scores, low = predictor.predict(
            point_coords=pts if len(pts) else None, point_labels=labels if len(pts) else None,
            box=np.asarray(box, dtype=np.float64) if box is not None else None,
            mask_input=mask_input, multimask_output=multimask)
        return pick_answer(masks, scores, low, multimask, candidate)
