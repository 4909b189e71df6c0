"""SAM's click path (prompt encoder + mask decoder) in ONNX Runtime.

The decoder is exported once per checkpoint with segment_anything's own export wrapper
(:class:`segment_anything.utils.onnx.SamOnnxModel`) to ``<cache dir>/sam/<type>-<sha12>/
decoder.onnx``, beside that model's embeddings (written atomically: a concurrent exporter never
leaves a half file), and every later process loads the file instead of exporting again.

One ONNX call answers one click: the graph picks the single mask the answer needs before
upscaling (for a lone click one of SAM's three candidates — the ``candidate`` input, or the
best-scored when it is -1 — the single-mask output otherwise, as :meth:`model.sam.SamModel.predict`
does), resizes only that one to the original image size (``orig_im_size``) and thresholds it, so
the caller gets an ``H x W`` bool mask and the index of the candidate it got (-1: none).

Prompts follow segment_anything's ONNX example: coordinates in the encoder's input frame
(``ResizeLongestSide.apply_coords``), a box as two corner points labelled 2 and 3, a padding
point ``(0, 0)`` labelled -1 when there is no box, ``mask_input`` zeros with
``has_mask_input`` 0 unless the previous answer's low-res logits are passed back.
"""
from __future__ import annotations

import copy
import io
import logging
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from segment_anything.modeling import MaskDecoder, Sam
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.utils.onnx import SamOnnxModel
from torch.nn import functional as F

from core.imageio import write_atomic

log = logging.getLogger("facet.sam")

DECODER_FILE = "decoder.onnx"
FORMAT = "facet-sam-click-decoder/2"
"""Stored in the file's metadata; a file of another format is exported again."""
INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input",
          "orig_im_size", "candidate")
OUTPUTS = ("mask", "score", "low_res_logits", "chosen")
OPSET = 17

_export_lock = threading.RLock()
exports = 0
"""Decoder exports done by this process (tests check that a cached file is reused)."""


def decoder_path(cache_dir: str | Path, model_key: str) -> Path:
    """Where the ONNX decoder of the SAM ``model_key`` (``"<type>:<sha12>"``) is cached:
    ``<cache dir>/sam/<type>-<sha12>/decoder.onnx``, the folder of that model's embeddings."""
    return Path(cache_dir) / "sam" / model_key.replace(":", "-") / DECODER_FILE


class ClickDecoderModule(SamOnnxModel):
    """:class:`SamOnnxModel` answering one click with one thresholded mask.

    The choice between SAM's single-mask token and its three multimask candidates is made from
    the labels (one click without a box: candidate ``candidate`` of the three, or the best-scored
    one when ``candidate`` is -1; anything else: the single mask), without control flow, and only
    the chosen low-res mask is upscaled. The last output is the chosen candidate (-1: the single
    mask).
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__(sam, return_single_mask=True)
        self.mask_decoder = _export_friendly(sam.mask_decoder)

    @torch.no_grad()
    def forward(self, image_embeddings: torch.Tensor,  # type: ignore[override]
                point_coords: torch.Tensor, point_labels: torch.Tensor, mask_input: torch.Tensor,
                has_mask_input: torch.Tensor, orig_im_size: torch.Tensor,
                candidate: torch.Tensor):
        sparse = self._embed_points(point_coords, point_labels)
        dense = self._embed_masks(mask_input, has_mask_input)
        masks, scores = self.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense)
        clicks = ((point_labels == 0) | (point_labels == 1)).sum(dim=1)
        corners = (point_labels >= 2).sum(dim=1)
        lone_click = ((clicks == 1) & (corners == 0)).to(scores.dtype)        # B
        first = torch.tensor([[1000.0] + [0.0] * (scores.shape[1] - 1)])      # 1 x tokens
        # Lone click: token 0 (single mask) is pushed out; otherwise it always wins.
        auto = torch.argmax(scores + (1.0 - 2.0 * lone_click)[:, None] * first, dim=1)
        # A lone click may ask for candidate k (token k + 1) instead of the best-scored one.
        wanted = (candidate.to(torch.int64) + 1).clamp(1, scores.shape[1] - 1).expand_as(auto)
        best = torch.where((lone_click > 0.5) & (candidate >= 0), wanted, auto)
        rows = torch.arange(masks.shape[0])
        low = masks[rows, best].unsqueeze(1)
        score = scores[rows, best].unsqueeze(1)
        upscaled = self.mask_postprocessing(low, orig_im_size)
        chosen = torch.where(lone_click > 0.5, best - 1, torch.full_like(best, -1))
        return upscaled > self.model.mask_threshold, score, low, chosen

    def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """SamOnnxModel's, with the crop to the resized image traced as data, not constants
        (``int(tensor)`` freezes the export's dummy size into the graph under torch >= 2)."""
        masks = F.interpolate(masks, size=(self.img_size, self.img_size), mode="bilinear",
                              align_corners=False)
        prepadded = self.resize_longest_image_size(orig_im_size, self.img_size)
        masks = masks[..., : prepadded[0], : prepadded[1]]
        size = orig_im_size.to(torch.int64)
        return F.interpolate(masks, size=(size[0], size[1]), mode="bilinear", align_corners=False)


class _ChannelLayerNorm(torch.nn.Module):
    """segment_anything's ``LayerNorm2d`` (over channels of NCHW) as one ``LayerNormalization``
    on NHWC: the same values, ~15 % less decoder time in ONNX Runtime than its unfused
    mean/sub/pow/mean/sqrt/div graph."""

    def __init__(self, norm: LayerNorm2d) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), (self.weight.numel(),), self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)


def _export_friendly(decoder: MaskDecoder) -> MaskDecoder:
    """A copy of ``decoder`` (the live model is left alone) with export-friendly layer norms."""
    decoder = copy.deepcopy(decoder)
    for name, module in list(decoder.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LayerNorm2d):
                setattr(module, child_name, _ChannelLayerNorm(child))
    return decoder


def export_decoder(sam: Sam, model_key: str, path: str | Path) -> Path:
    """Export ``sam``'s click path to ``path`` (atomically), tagged with :data:`FORMAT` and
    ``model_key``. Takes seconds (vit_b); the caller caches the file."""
    import onnx

    global exports
    module = ClickDecoderModule(sam).eval()
    emb = sam.prompt_encoder.image_embedding_size
    dim = sam.prompt_encoder.embed_dim
    low = sam.prompt_encoder.mask_input_size
    dummy = (torch.zeros(1, dim, *emb), torch.full((1, 3, 2), 10.0),
             torch.tensor([[1.0, 2.0, 3.0]]), torch.zeros(1, 1, *low), torch.tensor([0.0]),
             torch.tensor([480.0, 640.0]), torch.tensor([-1.0]))
    buf = io.BytesIO()
    with _export_lock:   # the TorchScript exporter keeps global state
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the tracer's notes on int()/advanced indexing
            torch.onnx.export(module, dummy, buf, input_names=list(INPUTS),
                              output_names=list(OUTPUTS), opset_version=OPSET,
                              do_constant_folding=True, dynamo=False,
                              dynamic_axes={"point_coords": {1: "points"},
                                            "point_labels": {1: "points"},
                                            "mask": {2: "height", 3: "width"}})
        exports += 1
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in (("facet_format", FORMAT), ("sam_model", model_key)):
        proto.metadata_props.add(key=key, value=value)
    write_atomic(path, proto.SerializeToString())
    return Path(path)


class OnnxClickDecoder:
    """An ONNX Runtime session on an exported decoder (thread-safe: one session, many runs)."""

    def __init__(self, session, encoder_size: int, low_res_size: tuple[int, int]) -> None:
        self.session = session
        self.encoder_size = encoder_size
        self.low_res_size = low_res_size
        self._no_mask = np.zeros((1, 1, *low_res_size), dtype=np.float32)

    @classmethod
    def open(cls, path: str | Path, model_key: str, encoder_size: int,
             threads: int = 2) -> "OnnxClickDecoder":
        """A session on the file at ``path``; ``ValueError`` when it is not this model's decoder
        of the current :data:`FORMAT` (other errors: the file is unreadable)."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads do not spin: the studio shares its cores with training.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
        if meta.get("facet_format") != FORMAT or meta.get("sam_model") != model_key:
            raise ValueError(f"{path} is {meta.get('facet_format')} for {meta.get('sam_model')}, "
                             f"not {FORMAT} for {model_key}")
        names = tuple(i.name for i in session.get_inputs())
        if names != INPUTS:
            raise ValueError(f"{path}: inputs {names}, expected {INPUTS}")
        low = session.get_inputs()[3].shape
        return cls(session, encoder_size, (int(low[2]), int(low[3])))

    @classmethod
    def load_or_export(cls, sam: Sam, model_key: str, path: str | Path,
                       threads: int = 2) -> "OnnxClickDecoder":
        """The cached decoder at ``path``, exported first when missing, stale or unreadable."""
        import onnxruntime  # noqa: F401 - without it there is nothing to export for

        path = Path(path)
        size = int(sam.image_encoder.img_size)
        decoder, _ = cls._try_open(path, model_key, size, threads)
        if decoder is not None:
            return decoder
        with _export_lock:    # another thread may have exported it meanwhile: look again
            decoder, problem = cls._try_open(path, model_key, size, threads)
            if decoder is not None:
                return decoder
            if problem is not None:
                log.warning("SAM: cached ONNX decoder %s unusable (%s); exporting it again",
                            path, problem)
            export_decoder(sam, model_key, path)
        return cls.open(path, model_key, size, threads)

    @classmethod
    def _try_open(cls, path: Path, model_key: str, size: int,
                  threads: int) -> tuple["OnnxClickDecoder | None", str | None]:
        """``(decoder, None)``, ``(None, None)`` without a file, ``(None, why)`` for a bad one."""
        if not path.is_file():
            return None, None
        try:
            return cls.open(path, model_key, size, threads), None
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types
            return None, str(err).splitlines()[0] if str(err) else type(err).__name__

    def run(self, features: np.ndarray, coords: np.ndarray, labels: np.ndarray,
            original_size: tuple[int, int], mask_input: np.ndarray | None = None,
            candidate: int | None = None) -> tuple[np.ndarray, float, np.ndarray, int | None]:
        """One click. ``features``: ``1 x C x E x E`` float32; ``coords``: ``N x 2`` in the
        encoder's input frame; ``labels``: ``N`` (1/0 clicks, 2/3 box corners, -1 padding);
        ``candidate``: which of a lone click's three masks (``None``: the best-scored).
        Returns the ``H x W`` bool mask, its score, its ``1 x 1 x 256 x 256`` low-res logits
        (what ``mask_input`` takes on the next click) and the candidate it is (``None``: the
        single-mask answer to several prompts)."""
        if mask_input is not None:
            mask_input = np.asarray(mask_input, dtype=np.float32).reshape(self._no_mask.shape)
        feed = {
            "image_embeddings": features,
            "point_coords": coords[None].astype(np.float32),
            "point_labels": labels[None].astype(np.float32),
            "mask_input": self._no_mask if mask_input is None else mask_input,
            "has_mask_input": np.array([0.0 if mask_input is None else 1.0], dtype=np.float32),
            "orig_im_size": np.array(original_size, dtype=np.float32),
            "candidate": np.array([-1.0 if candidate is None else float(candidate)],
                                  dtype=np.float32),
        }
        mask, score, low, chosen = self.session.run(None, feed)
        return mask[0, 0], float(score[0, 0]), low, (int(chosen[0]) if chosen[0] >= 0 else None)


def onnx_prompts(points: np.ndarray, labels: np.ndarray, box: np.ndarray | None,
                 apply_coords) -> tuple[np.ndarray, np.ndarray]:
    """segment_anything's ONNX prompt layout from original-image prompts: clicks, then the
    box's two corners (labels 2, 3), or a ``(0, 0)`` padding point (label -1) without a box;
    ``apply_coords(coords N x 2) -> coords`` maps pixels to the encoder's input frame
    (``ResizeLongestSide.apply_coords`` with the original size; it keeps ``(0, 0)``)."""
    if box is not None:
        extra, extra_labels = np.asarray(box, dtype=np.float64).reshape(2, 2), [2.0, 3.0]
    else:
        extra, extra_labels = np.zeros((1, 2)), [-1.0]
    coords = np.concatenate([np.asarray(points, dtype=np.float64).reshape(-1, 2), extra])
    labs = np.concatenate([np.asarray(labels, dtype=np.float32).reshape(-1),
                           np.array(extra_labels, dtype=np.float32)])
    return apply_coords(coords).astype(np.float32), labs
