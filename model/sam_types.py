"""SAM architectures Facet loads, as torch-free constants (argument parsing must stay light)."""

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
