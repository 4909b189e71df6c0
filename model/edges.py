"""Edge ground truth derived from a label map: a pixel is an edge when one of its four
neighbours (up, down, left, right) has a different label. Image borders are not edges."""
from __future__ import annotations

import numpy as np
import torch


def label_edges(labels: torch.Tensor) -> torch.Tensor:
    """``B x H x W`` (or ``H x W``) integer label maps → bool edge maps of the same shape."""
    edges = torch.zeros_like(labels, dtype=torch.bool)
    vertical = labels[..., 1:, :] != labels[..., :-1, :]
    horizontal = labels[..., :, 1:] != labels[..., :, :-1]
    edges[..., 1:, :] |= vertical
    edges[..., :-1, :] |= vertical
    edges[..., :, 1:] |= horizontal
    edges[..., :, :-1] |= horizontal
    return edges


def label_edges_np(label_map: np.ndarray) -> np.ndarray:
    """``H x W`` uint8 label map → ``H x W`` bool edge map (same rule as :func:`label_edges`)."""
    return label_edges(torch.from_numpy(np.array(label_map, copy=True))).numpy()
