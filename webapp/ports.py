"""What the studio needs from the background worker, as a Protocol (webapp never imports worker/).

The integrator passes an implementation to :func:`webapp.server.serve` (the Huey-backed one in
``worker/client.py`` matches structurally); ``None`` means no queue: the studio then computes
pre-annotations and SAM embeddings on first need and refuses "train now" with a message.
Every method enqueues by id and returns at once.
"""
from __future__ import annotations

from typing import Protocol


class TaskQueue(Protocol):
    def enqueue_prediction(self, image_id: int) -> None:
        """Pre-annotate an image with the active model (and score it for the queue)."""

    def enqueue_embedding(self, image_id: int, urgent: bool = False, ahead: bool = False) -> None:
        """Compute and cache the image's SAM embedding; ``urgent``: ahead of all other
        background work (an annotator is waiting to click); ``ahead``: before the other
        embeddings (one of the next images an annotator gets)."""

    def enqueue_training(self, job_id: int) -> None:
        """Run the queued ``train`` job row ``job_id`` (created by the caller)."""

    def enqueue_scoring(self, version_id: int) -> None:
        """Refresh pre-annotations and queue priorities with a (re)activated version."""

    def label_saved(self, image_id: int) -> None:
        """A label was submitted or approved (the worker may decide to retrain)."""
