"""The web process's side of the queue: enqueue worker tasks by name (the studio's ``TaskQueue``).

:class:`HueyTaskQueue` matches the ``TaskQueue`` protocol of ``webapp/ports.py`` structurally
(this package never imports ``webapp``). It declares the task table on its own Huey instances,
one per route (:func:`worker.queue.declare_tasks`): a training run goes to the train queue,
which only ``worker --queues train`` (or a default worker) takes, everything else to the light
queue: no worker context, no database, no models. A call here only writes a message (task name,
ids) to the queue storage (SQLite file or Redis) and returns at once; a consumer process does
the work.
"""
from __future__ import annotations

from db.settings import Settings
from worker.options import WorkerOptions
from worker.queue import Tasks, declare_tasks, make_hueys
from worker.tasks import TASKS


URGENT_PRIORITY = 100
"""An embedding an annotator waits for: above every task's own priority (worker/tasks.py)."""
AHEAD_PRIORITY = 60
"""Embeddings of the images an annotator gets next: after a waiting click's, before the rest."""


class HueyTaskQueue:
    """Enqueue Facet's background tasks. All methods return immediately.

    ``options``: the web process's worker options (built once at its entry); the train timeout
    travels with each training task. ``sam_checkpoint`` / ``sam_model``: what
    ``serve --sam-checkpoint/--sam-model`` was given; they travel with each embedding task (the
    worker may have no such flag). Without a checkpoint here or in ``options``
    (``FACET_SAM_CHECKPOINT``), no embedding task is sent. ``tasks``: handles to enqueue
    through instead of an instance built from ``settings`` (tests pass immediate-mode ones).
    """

    def __init__(self, settings: Settings, options: WorkerOptions, *,
                 sam_checkpoint: str | None = None, sam_model: str | None = None,
                 tasks: Tasks | None = None) -> None:
        self.sam_checkpoint = sam_checkpoint or options.sam_checkpoint
        self.sam_model = sam_model or options.sam_model
        self.tasks = tasks if tasks is not None else declare_tasks(make_hueys(settings), TASKS,
                                                                   options)

    def enqueue_prediction(self, image_id: int) -> None:
        """Pre-annotate an image with the active model (and score it for the queue)."""
        self.tasks.enqueue("facet.predict", int(image_id))

    def enqueue_embedding(self, image_id: int, urgent: bool = False, ahead: bool = False) -> None:
        """Compute the image's SAM embedding in the background (no-op without a checkpoint);
        ``urgent``: at :data:`URGENT_PRIORITY`, before every other queued task; ``ahead``
        (one of the next images of the queue): at :data:`AHEAD_PRIORITY`."""
        if self.sam_checkpoint:
            priority = URGENT_PRIORITY if urgent else AHEAD_PRIORITY if ahead else None
            self.tasks.enqueue("facet.embed", int(image_id), str(self.sam_checkpoint),
                               self.sam_model, priority=priority)

    def enqueue_training(self, job_id: int) -> None:
        """Run the ``train`` job row ``job_id`` (created by the caller, state queued)."""
        self.tasks.enqueue("facet.train", int(job_id))

    def enqueue_scoring(self, version_id: int) -> None:
        """Refresh pre-annotations and queue priorities with ``version_id`` (e.g. after a
        reactivation); does nothing unless that version is still active when it runs."""
        self.tasks.enqueue("facet.score_all", int(version_id))

    def label_saved(self, image_id: int) -> None:
        """A label was submitted or approved: check whether to retrain by itself."""
        del image_id  # the check counts all new labels; the id is part of the protocol only
        self.tasks.enqueue("facet.check_retrain")
