"""SAM architectures Facet loads and the checkpoint digest, torch-free (argument parsing and
the worker's sweep for lost work must stay light)."""
import hashlib
from pathlib import Path

SAM1_MODEL_TYPES: tuple[str, ...] = ("vit_b", "vit_l", "vit_h")
"""Segment Anything (``segment_anything``'s registry names)."""

SAM2_CONFIGS: dict[str, str] = {
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
"""SAM 2.1 model types and the ``sam2`` package's config of each (checkpoints
``sam2.1_hiera_tiny.pt`` … by path)."""

SAM_MODEL_TYPES: tuple[str, ...] = SAM1_MODEL_TYPES + tuple(SAM2_CONFIGS)
"""Every model type ``--sam-model`` accepts."""


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    """sha256 hex digest of a file, read in ``chunk``-byte pieces (a checkpoint's identity in
    the cache key ``"<type>:<sha256[:12]>"``)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
