"""SAM for the studio: embeddings cached on disk per image and SAM model, masks per click.

The worker computes embeddings in the background when images arrive. With a worker, a click on
an image it has not embedded yet is answered "pending" (:class:`EmbeddingPending`; the API puts
the embedding first in the worker's queue) instead of running the encoder in a request; without
one, the first click computes the embedding here (seconds) and caches it the same way. No later
click runs the image encoder. Coordinates are ``(x, y)`` pixels of the original image.

Each answer's low-res logits are kept under a token for a while (:data:`KEEP_LOGITS` answers):
the next click on the same part passes the token back (``refine``) and SAM starts from the
previous mask instead of from nothing, as in SAM's own interactive loop. A lone click can also
ask for another of SAM's three candidate masks (``candidate``).

Clicks run in ONNX Runtime (2 intra-op threads): the model's prompt encoder + mask decoder is
exported once per checkpoint to ``<cache dir>/sam/<type>-<sha12>/decoder.onnx`` when the
service starts (seconds, first start only) and loaded from there afterwards. When onnxruntime or
the export fails, or with ``FACET_SAM_ONNX=0``, clicks run in PyTorch (same masks, slower).
"""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from core.errors import FacetError
from db.cache import get_embedding_row, has_embedding, store_embedding
from db.engine import session_scope
from db.revisions import require_image
from db.settings import Settings
from model.sam import SamAnswer, SamEmbedding, SamError, SamModel
from model.sam_onnx import decoder_path
from webapp.options import ServeOptions

KEEP_IN_MEMORY = 4
"""Embeddings of this many recently clicked images stay loaded (4 MB each at most)."""
KEEP_LOGITS = 64
"""Low-res logits of this many recent answers are kept for refinement (256 KB each)."""

NOT_CONFIGURED = ("SAM is off: start the studio with --sam-checkpoint PATH/TO/sam_vit_b_01ec64.pth "
                  "(and --sam-model vit_b|vit_l|vit_h to match the file, or sam2.1_hiera_tiny|small|"
                  "base_plus|large for a SAM 2.1 checkpoint) to enable click-to-segment.")


@dataclass(frozen=True)
class SamClick:
    """An answer plus ``token`` (pass it back as ``refine`` with the next click on the same
    part) and whether the previous answer's logits were used (``refined``)."""

    answer: SamAnswer
    token: str
    refined: bool


class SamService:
    """A loaded :class:`SamModel` plus the embedding cache. One per server, thread-safe."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], model: SamModel,
                 onnx: bool = True, onnx_threads: int = 2) -> None:
        """``onnx``: answer clicks with ONNX Runtime (``ServeOptions.sam_onnx``, from
        ``FACET_SAM_ONNX``); the decoder is loaded from the cache, or exported there first,
        before this returns."""
        self.settings = settings
        self.sessions = sessions
        self.model = model
        self._encode_lock = threading.Lock()
        self._memory: dict[int, SamEmbedding] = {}   # image id → embedding, oldest first
        self._memory_lock = threading.Lock()
        self._logits: OrderedDict[str, tuple[int, np.ndarray]] = OrderedDict()  # token → answer
        self._logits_lock = threading.Lock()
        if onnx:
            model.enable_onnx(decoder_path(settings.cache_dir, model.key), threads=onnx_threads)

    @classmethod
    def from_options(cls, settings: Settings, sessions: sessionmaker[Session],
                     options: ServeOptions) -> "SamService | None":
        """``None`` without ``--sam-checkpoint``; :class:`SamError` for a bad checkpoint."""
        if options.sam_checkpoint is None:
            return None
        model = SamModel.from_checkpoint(options.sam_checkpoint, options.sam_model,
                                         builders=options.sam_builders)
        return cls(settings, sessions, model, onnx=options.sam_onnx)

    def ready_in(self, session: Session, image_id: int) -> bool:
        """Whether the embedding of an image is cached (row and file), in the caller's session."""
        return has_embedding(session, self.settings, image_id, self.model.key)

    def ready(self, image_id: int) -> bool:
        """Whether the embedding of an image is cached (row and file)."""
        with session_scope(self.sessions) as session:
            return self.ready_in(session, image_id)

    def cached(self, image_id: int) -> SamEmbedding | None:
        """The stored embedding of an image, or ``None`` when it has not been computed. The
        last :data:`KEEP_IN_MEMORY` images' embeddings stay loaded: an annotator clicks the same
        image many times, and a click should not read 2 MB from disk each time."""
        with self._memory_lock:
            if image_id in self._memory:
                self._memory[image_id] = self._memory.pop(image_id)   # most recent last
                return self._memory[image_id]
        emb = self._load(image_id)
        if emb is not None:
            with self._memory_lock:
                self._memory[image_id] = emb
                while len(self._memory) > KEEP_IN_MEMORY:
                    self._memory.pop(next(iter(self._memory)))
        return emb

    def forget(self, image_id: int) -> None:
        """Drop a deleted image's embedding from memory."""
        with self._memory_lock:
            self._memory.pop(image_id, None)

    def _load(self, image_id: int) -> SamEmbedding | None:
        with session_scope(self.sessions) as session:
            row = get_embedding_row(session, image_id, self.model.key)
            path = self.settings.data_dir / row.path if row is not None else None
        if path is None or not path.is_file():
            return None
        return SamEmbedding.load(path)

    def embedding(self, image_id: int) -> tuple[SamEmbedding, bool]:
        """``(embedding, computed_now)``: from the cache, else computed once and cached."""
        emb = self.cached(image_id)
        if emb is not None:
            return emb, False
        with self._encode_lock:
            emb = self.cached(image_id)   # another request may have computed it meanwhile
            if emb is not None:
                return emb, False
            with session_scope(self.sessions) as session:
                path = store_embedding(session, self.settings, self.model,
                                       require_image(session, image_id))
            return SamEmbedding.load(path), True

    def click(self, image_id: int, points: Sequence[Sequence[float]],
              box: Sequence[float] | None, compute: bool = True, refine: str | None = None,
              candidate: int | None = None) -> SamClick:
        """SAM's mask for the prompts (``H x W`` bool at the original image size, its score).

        ``refine``: the token of the previous answer on the same image; its logits seed this
        one (an unknown or expired token is ignored: the answer is then SAM's from scratch).
        ``candidate``: which of a lone click's three masks (``None``: the best-scored).
        ``compute`` False: :class:`EmbeddingPending` instead of running the image encoder here
        when the embedding is not cached yet (a worker is computing it)."""
        if not compute:
            emb = self.cached(image_id)
            if emb is None:
                raise EmbeddingPending(f"SAM is still embedding image {image_id}; it was put "
                                       "first in the worker's queue: try again in a moment")
        else:
            emb, _ = self.embedding(image_id)
        previous = self._previous_logits(refine, image_id)
        found = self.model.answer(emb, points, box, previous, candidate)
        return SamClick(found, self._keep_logits(image_id, found.low_res), previous is not None)

    def _previous_logits(self, token: str | None, image_id: int) -> np.ndarray | None:
        with self._logits_lock:
            kept = self._logits.get(token) if token else None
        return kept[1] if kept is not None and kept[0] == image_id else None

    def _keep_logits(self, image_id: int, low_res: np.ndarray) -> str:
        token = uuid.uuid4().hex
        with self._logits_lock:
            self._logits[token] = (image_id, low_res)
            while len(self._logits) > KEEP_LOGITS:
                self._logits.popitem(last=False)
        return token


class EmbeddingPending(FacetError):
    """The image's SAM embedding is not cached yet and is left to the worker."""


__all__ = ["EmbeddingPending", "NOT_CONFIGURED", "SamClick", "SamError", "SamService"]
