"""Face-parsing metrics from one confusion matrix accumulated over a whole evaluation set."""
from __future__ import annotations

import numpy as np

from core.labels import CELEBAMASK, LabelSet


class ConfusionMatrix:
    """``matrix[gt, pred]`` pixel counts over every image added with :meth:`update`.

    Per-class F1 = ``2 TP / (|GT| + |Pred|)`` with the counts summed over the whole set (not
    averaged per image). A class absent from both the ground truth and the predictions of
    the whole set has no F1: it is reported as ``None`` and left out of the mean. The mean F1
    is over the non-background classes (the 18 CelebAMask-HQ classes; background is id 0).
    """

    def __init__(self, labels: LabelSet = CELEBAMASK) -> None:
        self.labels = labels
        n = labels.num_classes
        self.matrix = np.zeros((n, n), dtype=np.int64)
        self.n_images = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one ``H x W`` prediction and its ``H x W`` ground truth (same shape, uint8 ids)."""
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
        n = self.labels.num_classes
        idx = gt.astype(np.int64).ravel() * n + pred.astype(np.int64).ravel()
        self.matrix += np.bincount(idx, minlength=n * n).reshape(n, n)
        self.n_images += 1

    def per_class_f1(self) -> dict[str, float | None]:
        """``{class name: F1 in [0, 1] or None}`` for every class, background included."""
        tp = np.diag(self.matrix).astype(np.float64)
        denom = self.matrix.sum(axis=1) + self.matrix.sum(axis=0)
        return {name: (float(2 * tp[i] / denom[i]) if denom[i] > 0 else None)
                for i, name in enumerate(self.labels.names)}

    def mean_f1(self) -> float:
        """Mean F1 over the non-background classes that occur (``nan`` when none does)."""
        values = [v for name, v in self.per_class_f1().items() if name != "background" and v is not None]
        return float(np.mean(values)) if values else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")
