"""Which unlabelled faces to label next when several are chosen at once: the most uncertain,
kept apart from each other and from the faces already labelled (ten near-identical hard faces
teach a model little more than one of them).

A face is described by its *layout*: the model's softmax averaged over a coarse grid, i.e.
which parts the model sees where. Two faces with the same lighting, pose and occluders have
close layouts.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def layout_features(probs: torch.Tensor, grid: int = 4) -> np.ndarray:
    """``N x C x S x S`` softmax probabilities → ``N x (C * grid * grid)`` float32: each class's
    mean probability in each cell of a ``grid x grid`` partition of the image."""
    if probs.ndim != 4:
        raise ValueError(f"expected N x C x S x S probabilities, got shape {tuple(probs.shape)}")
    pooled = F.adaptive_avg_pool2d(probs.float(), grid)
    return pooled.flatten(1).cpu().numpy().astype(np.float32)


def uncertain_and_diverse(scores: np.ndarray, features: np.ndarray, known: np.ndarray, n: int,
                          candidates: float = 3.0) -> list[int]:
    """Indices of ``n`` faces to label next, in the order to label them.

    ``scores``: ``N`` uncertainties (higher = less sure); ``features``: ``N x D`` layouts of
    the same faces; ``known``: ``M x D`` layouts of the faces already labelled (``M`` may be 0).
    Only the ``ceil(candidates * n)`` most uncertain faces are considered. Each pick then
    maximises the score times the distance to the nearest face picked or known (the score
    alone while there is none), so the first pick is the most uncertain face unlike any
    labelled one and later picks avoid near-duplicates of earlier ones.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or len(features) != scores.size:
        raise ValueError(f"{scores.size} scores for {len(features)} feature rows")
    n = min(n, len(scores))
    if n <= 0:
        return []
    pool = np.argsort(-scores, kind="stable")[:max(n, int(np.ceil(candidates * n)))]
    feats = features[pool].astype(np.float64)
    nearest = np.full(len(pool), np.inf)  # distance to the nearest face picked or known
    for row in np.asarray(known, dtype=np.float64).reshape(-1, feats.shape[1]):
        nearest = np.minimum(nearest, np.linalg.norm(feats - row, axis=1))
    picked: list[int] = []
    for _ in range(n):
        gain = scores[pool] * np.where(np.isfinite(nearest), nearest, 1.0)
        gain[picked] = -np.inf
        best = int(np.argmax(gain))
        picked.append(best)
        nearest = np.minimum(nearest, np.linalg.norm(feats - feats[best], axis=1))
    return [int(pool[i]) for i in picked]
