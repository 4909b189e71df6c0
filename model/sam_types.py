"""SAM architectures Facet loads, as a torch-free constant (argument parsing must stay light)."""

SAM_MODEL_TYPES: tuple[str, ...] = ("vit_b", "vit_l", "vit_h")
