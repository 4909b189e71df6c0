"""Segment Anything for click-and-box correction: load a checkpoint, cache embeddings, predict masks.

The expensive part of SAM is the image encoder (seconds per image on a CPU); the prompt encoder
and mask decoder take tens of milliseconds. So the encoder runs once per image
(:meth:`SamModel.compute_embedding`), its output is stored as float16 (2 MB for the official
``1 x 256 x 64 x 64``), and every click restores that embedding into a ``SamPredictor``
(:meth:`SamModel.predict`) without touching the encoder again.

Clicks run in ONNX Runtime once :meth:`SamModel.enable_onnx` has a decoder (exported once per
checkpoint and cached, :mod:`model.sam_onnx`), in PyTorch otherwise or when ONNX fails (logged
once). Both paths give the same masks up to floating-point rounding.

Checkpoints are the official files (``sam_vit_b_01ec64.pth`` …) given by path; nothing is
downloaded. Coordinates are ``(x, y)`` pixels of the original image throughout.
"""
from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from core.errors import FacetError
from core.imageio import write_atomic
from model.sam_types import SAM1_MODEL_TYPES, file_digest

if TYPE_CHECKING:
    from model.sam_onnx import OnnxClickDecoder

log = logging.getLogger("facet.sam")
Backend = Literal["onnx", "torch"]

SamBuilder = Callable[..., Sam]
"""``builder(checkpoint=None) -> Sam`` with random weights (segment_anything's registry shape)."""


class SamError(FacetError):
    """A SAM checkpoint, embedding file or prompt is unusable; the message says why."""


CANDIDATES = 3
"""Masks SAM offers for a lone click (its multimask output); :meth:`SamModel.answer` picks one."""


@dataclass(frozen=True)
class SamAnswer:
    """One mask for a set of prompts.

    ``mask``: ``H x W`` bool (the image's original size). ``score``: SAM's predicted IoU.
    ``low_res``: ``1 x 1 x L x L`` float32 logits of that mask (L = 256 for the official
    models), what the next click on the same part passes back as ``mask_input``.
    ``candidate``: which of a lone click's :data:`CANDIDATES` masks this is (``None`` for the
    single-mask answer to several clicks or a box).
    """

    mask: np.ndarray
    score: float
    low_res: np.ndarray
    candidate: int | None


@dataclass(frozen=True)
class SamEmbedding:
    """One image's encoder output plus the sizes needed to restore it into a predictor.

    ``features``: ``1 x 256 x E x E`` float16 (E = 64 for the official models).
    ``original_size``: ``(H, W)`` of the image the user sees, in pixels.
    ``input_size``: ``(h, w)`` of the resized image fed to the encoder (long side = encoder size).
    ``model_key``: :attr:`SamModel.key` of the model that computed it.
    ``high_res``: SAM 2's finer feature maps (``1 x C_i x 4E x 4E`` and ``1 x C_j x 2E x 2E``
    float16), which its mask decoder also reads; empty for SAM.
    """

    features: np.ndarray
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    model_key: str
    high_res: tuple[np.ndarray, ...] = ()

    def save(self, path: str | Path) -> None:
        """Write an uncompressed ``.npz`` (float16 features), atomically."""
        buf = io.BytesIO()
        finer = {f"high_res_{i}": h.astype(np.float16) for i, h in enumerate(self.high_res)}
        np.savez(buf, features=self.features.astype(np.float16),
                 original_size=np.array(self.original_size, dtype=np.int64),
                 input_size=np.array(self.input_size, dtype=np.int64),
                 model_key=np.array(self.model_key), **finer)
        write_atomic(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "SamEmbedding":
        """Read a file written by :meth:`save`; :class:`SamError` if it is not one."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                features = data["features"]
                original = tuple(int(v) for v in data["original_size"])
                inp = tuple(int(v) for v in data["input_size"])
                key = str(data["model_key"])
                finer = tuple(data[f"high_res_{i}"] for i in range(len(data.files))
                              if f"high_res_{i}" in data.files)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError) as err:
            raise SamError(f"{path}: not a SAM embedding file ({err})") from err
        if features.dtype != np.float16 or features.ndim != 4 or features.shape[0] != 1:
            raise SamError(f"{path}: embedding must be 1 x C x E x E float16, got "
                           f"{features.shape} {features.dtype}")
        if any(h.dtype != np.float16 or h.ndim != 4 for h in finer):
            raise SamError(f"{path}: SAM 2 feature maps must be 1 x C x S x S float16")
        return cls(features, original, inp, key, finer)  # type: ignore[arg-type]


def default_builders() -> dict[str, SamBuilder]:
    """Architecture builders of every model type ``--sam-model`` accepts: segment_anything's
    registry for SAM, the ``sam2`` package's configs for SAM 2.1 (when it is installed)."""
    builders: dict[str, SamBuilder] = {t: sam_model_registry[t] for t in SAM1_MODEL_TYPES}
    from model.sam2_model import sam2_builders
    builders.update(sam2_builders())
    return builders


def check_candidate(candidate: int | None) -> None:
    """:class:`SamError` unless ``candidate`` is ``None`` or ``0 … CANDIDATES - 1``."""
    if candidate is not None and not 0 <= candidate < CANDIDATES:
        raise SamError(f"candidate must be 0 to {CANDIDATES - 1}, got {candidate}")


def check_mask_input(mask_input: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """The previous answer's logits as a float32 array of ``shape``; :class:`SamError` when
    they have another number of values."""
    if mask_input is None:
        return None
    mask_input = np.asarray(mask_input, dtype=np.float32)
    if mask_input.size != int(np.prod(shape)):
        raise SamError(f"mask_input must be {' x '.join(map(str, shape))} low-res logits, got "
                       f"{mask_input.shape}")
    return mask_input.reshape(shape)


def pick_answer(masks: np.ndarray, scores: np.ndarray, low: np.ndarray, multimask: bool,
                candidate: int | None) -> SamAnswer:
    """One of a PyTorch predictor's outputs (``K x H x W`` masks, ``K`` scores, ``K x L x L``
    logits): candidate ``candidate`` of a multimask answer, else the best-scored."""
    best = candidate if multimask and candidate is not None else int(np.argmax(scores))
    return SamAnswer(masks[best].astype(bool), float(scores[best]),
                     low[best][None, None].astype(np.float32), best if multimask else None)


class PromptModel:
    """What SAM and SAM 2 models share: :meth:`predict` and :meth:`predict_logits` are views of
    the subclass's :meth:`answer`."""

    def answer(self, emb: SamEmbedding, points: Sequence[Sequence[float]] = (),
               box: Sequence[float] | None = None, mask_input: np.ndarray | None = None,
               candidate: int | None = None, backend: Backend | None = None) -> SamAnswer:
        raise NotImplementedError

    def predict(self, emb: SamEmbedding, points: Sequence[Sequence[float]] = (),
                box: Sequence[float] | None = None, mask_input: np.ndarray | None = None,
                backend: Backend | None = None) -> tuple[np.ndarray, float]:
        """Mask for clicks and/or a box on the image behind ``emb``.

        ``points``: ``[(x, y, 1 | 0), …]`` in original-image pixels; 1 = on the object,
        0 = not on it. ``box``: ``(x0, y0, x1, y1)`` pixels or ``None``.
        Returns an ``H x W`` bool mask (H, W = ``emb.original_size``) and SAM's predicted IoU.
        A single click asks SAM for three candidates and keeps the best-scored one.
        ``mask_input``: the previous answer's low-res logits (:meth:`predict_logits`), or
        ``None``. ``backend``: force a path (tests, benchmarks); ``None`` uses ONNX Runtime
        when enabled and PyTorch otherwise or when ONNX fails.
        """
        found = self.answer(emb, points, box, mask_input, backend=backend)
        return found.mask, found.score

    def predict_logits(self, emb: SamEmbedding, points: Sequence[Sequence[float]] = (),
                       box: Sequence[float] | None = None, mask_input: np.ndarray | None = None,
                       backend: Backend | None = None) -> tuple[np.ndarray, float, np.ndarray]:
        """:meth:`predict` plus the chosen mask's ``1 x 1 x L x L`` float32 low-res logits."""
        found = self.answer(emb, points, box, mask_input, backend=backend)
        return found.mask, found.score, found.low_res


class SamModel(PromptModel):
    """A loaded SAM network. Thread-safe for :meth:`predict` (each PyTorch call has its own
    predictor; the ONNX Runtime session is shared, and its runs are thread-safe)."""

    def __init__(self, sam: Sam, model_type: str, key: str) -> None:
        self.sam = sam.eval()
        self.model_type = model_type
        self.key = key
        """Identifies model + weights in caches: ``"<type>:<sha256[:12]>"``."""
        self._transform = ResizeLongestSide(sam.image_encoder.img_size)
        self._onnx: OnnxClickDecoder | None = None
        self._onnx_lock = threading.Lock()
        self._onnx_warned = False

    @classmethod
    def from_checkpoint(cls, path: str | Path, model_type: str,
                        builders: Mapping[str, SamBuilder] | None = None) -> "SamModel":
        """Build ``model_type`` and load the state dict at ``path`` (CPU; no download).

        ``builders`` maps model types to architecture builders; the default is
        segment_anything's ``sam_model_registry`` for SAM's types and the ``sam2`` package's
        configs for SAM 2.1's (:data:`model.sam_types.SAM2_CONFIGS`); tests pass tiny
        architectures here. A SAM 2 architecture gives a :class:`model.sam2_model.Sam2Model`
        (same methods; clicks in PyTorch). Raises :class:`SamError` for an unknown type, a
        missing file, or weights that do not fit the architecture.
        """
        registry = dict(builders) if builders is not None else default_builders()
        if model_type not in registry:
            raise SamError(f"unknown SAM model {model_type!r}; choose one of {', '.join(registry)}")
        path = Path(path)
        if not path.is_file():
            raise SamError(f"SAM checkpoint not found: {path}")
        net = registry[model_type](checkpoint=None)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
            raise SamError(f"{path}: cannot read SAM checkpoint ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''})") from err
        if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
            state = state["model"]   # SAM 2's official files wrap the state dict
        if not isinstance(state, Mapping):
            raise SamError(f"{path}: expected a state dict, got {type(state).__name__}")
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise SamError(f"{path}: weights do not fit SAM {model_type} "
                           f"({str(err).splitlines()[0]})") from err
        key = f"{model_type}:{file_digest(path)[:12]}"
        if not isinstance(net, Sam):
            from model.sam2_model import Sam2Model
            return Sam2Model(net, model_type, key)  # type: ignore[return-value]
        return cls(net, model_type, key)

    @property
    def backend(self) -> Backend:
        """Which path answers clicks now: ``"onnx"`` or ``"torch"``."""
        return "onnx" if self._onnx is not None else "torch"

    def enable_onnx(self, path: str | Path, threads: int = 2) -> bool:
        """Answer clicks with ONNX Runtime (``threads`` intra-op threads, CPU), using the
        decoder cached at ``path`` (see :func:`model.sam_onnx.decoder_path`) or exporting it
        there first (seconds, once per checkpoint). ``False`` when onnxruntime or the export
        fails: that is logged once and clicks stay on PyTorch."""
        with self._onnx_lock:
            if self._onnx is not None:
                return True
            try:
                from model.sam_onnx import OnnxClickDecoder
                self._onnx = OnnxClickDecoder.load_or_export(self.sam, self.key, path, threads)
            except Exception as err:  # noqa: BLE001 - any failure means "use PyTorch"
                self._onnx_failed("cannot prepare the ONNX decoder", err)
                return False
        return True

    def disable_onnx(self) -> None:
        """Answer clicks with PyTorch from now on."""
        with self._onnx_lock:
            self._onnx = None

    def _onnx_failed(self, what: str, err: BaseException) -> None:
        if not self._onnx_warned:
            self._onnx_warned = True
            first = str(err).splitlines()[0] if str(err) else ""
            log.warning("SAM %s: %s (%s: %s); clicks use PyTorch", self.key, what,
                        type(err).__name__, first)

    @property
    def encoder_size(self) -> int:
        """Long side, in pixels, of the image the encoder sees (1024 for official models)."""
        return int(self.sam.image_encoder.img_size)

    @torch.no_grad()
    def compute_embedding(self, image: np.ndarray) -> SamEmbedding:
        """Run the image encoder on an ``H x W x 3`` uint8 RGB image (the slow step)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise SamError(f"SAM needs an H x W x 3 uint8 RGB image, got {image.shape} {image.dtype}")
        predictor = SamPredictor(self.sam)
        predictor.set_image(image, image_format="RGB")
        features = predictor.features.detach().cpu().numpy().astype(np.float16)
        return SamEmbedding(features, tuple(image.shape[:2]),  # type: ignore[arg-type]
                            tuple(predictor.input_size), self.key)  # type: ignore[arg-type]

    def _check_embedding(self, emb: SamEmbedding) -> None:
        if emb.model_key != self.key:
            raise SamError(f"embedding was computed by {emb.model_key}, this model is {self.key}")
        h, w = emb.original_size
        expected = ResizeLongestSide.get_preprocess_shape(h, w, self.encoder_size)
        if tuple(emb.input_size) != tuple(expected):
            raise SamError(f"embedding input size {emb.input_size} does not match {expected}")

    def _restored_predictor(self, emb: SamEmbedding) -> SamPredictor:
        """A predictor primed with ``emb``: the encoder is never called."""
        self._check_embedding(emb)
        predictor = SamPredictor(self.sam)
        predictor.features = torch.from_numpy(emb.features.astype(np.float32))
        predictor.original_size = tuple(emb.original_size)
        predictor.input_size = tuple(emb.input_size)
        predictor.is_image_set = True
        return predictor

    def answer(self, emb: SamEmbedding, points: Sequence[Sequence[float]] = (),
               box: Sequence[float] | None = None, mask_input: np.ndarray | None = None,
               candidate: int | None = None, backend: Backend | None = None) -> SamAnswer:
        """The mask for the prompts (see :meth:`predict`) with its logits and candidate index.

        ``candidate``: for a lone click, which of SAM's :data:`CANDIDATES` masks to return
        (``None``: the best-scored; ignored for other prompts). :class:`SamError` when it is not
        ``0 … CANDIDATES - 1``.
        """
        check_candidate(candidate)
        pts, labels = check_prompts(points, box, emb.original_size)
        self._check_embedding(emb)
        mask_input = check_mask_input(mask_input, (1, 1, *self.sam.prompt_encoder.mask_input_size))
        decoder = self._onnx
        if backend == "onnx" and decoder is None:
            raise SamError("the ONNX click path is not enabled")
        if decoder is not None and backend != "torch":
            try:
                return self._predict_onnx(decoder, emb, pts, labels, box, mask_input, candidate)
            except Exception as err:  # noqa: BLE001 - a broken session: PyTorch answers
                if backend == "onnx":
                    raise
                with self._onnx_lock:
                    if self._onnx is decoder:
                        self._onnx = None
                self._onnx_failed("ONNX decoder failed", err)
        return self._predict_torch(emb, pts, labels, box, mask_input, candidate)

    def _predict_onnx(self, decoder: OnnxClickDecoder, emb: SamEmbedding, pts: np.ndarray,
                      labels: np.ndarray, box: Sequence[float] | None,
                      mask_input: np.ndarray | None, candidate: int | None) -> SamAnswer:
        from model.sam_onnx import onnx_prompts

        coords, labs = onnx_prompts(
            pts, labels, None if box is None else np.asarray(box, dtype=np.float64),
            lambda c: self._transform.apply_coords(c, emb.original_size))
        return SamAnswer(*decoder.run(emb.features.astype(np.float32), coords, labs,
                                      emb.original_size, mask_input, candidate))

    @torch.no_grad()
    def _predict_torch(self, emb: SamEmbedding, pts: np.ndarray, labels: np.ndarray,
                       box: Sequence[float] | None, mask_input: np.ndarray | None,
                       candidate: int | None) -> SamAnswer:
        predictor = self._restored_predictor(emb)
        multimask = box is None and len(pts) == 1
        masks, scores, low = predictor.predict(
            point_coords=pts if len(pts) else None,
            point_labels=labels if len(pts) else None,
            box=np.asarray(box, dtype=np.float64) if box is not None else None,
            mask_input=mask_input[0] if mask_input is not None else None,
            multimask_output=multimask)
        return pick_answer(masks, scores, low, multimask, candidate)


def check_prompts(points: Sequence[Sequence[float]], box: Sequence[float] | None,
                   size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Validate prompts against an ``(H, W)`` image; ``N x 2`` float coords and ``N`` int labels."""
    h, w = size
    if not len(points) and box is None:
        raise SamError("give at least one click or a box")
    pts = np.zeros((len(points), 2), dtype=np.float64)
    labels = np.zeros(len(points), dtype=np.int64)
    for i, p in enumerate(points):
        if len(p) != 3 or p[2] not in (0, 1):
            raise SamError(f"point {i} must be [x, y, 1|0], got {list(p)}")
        x, y = float(p[0]), float(p[1])
        if not (0 <= x < w and 0 <= y < h):
            raise SamError(f"point {i} ({x:g}, {y:g}) is outside the {w}x{h} image")
        pts[i], labels[i] = (x, y), int(p[2])
    if box is not None:
        if len(box) != 4:
            raise SamError(f"box must be [x0, y0, x1, y1], got {list(box)}")
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise SamError(f"box {list(box)} must satisfy 0 <= x0 < x1 <= {w}, 0 <= y0 < y1 <= {h}")
    return pts, labels
