"""Worker and disk faults: a worker SIGKILLed while it scores or embeds (real ``app.py worker``
processes), and a full disk while a run writes its checkpoint.

Huey removes a message before running it, so the killed worker's task is gone from the queue;
the restarted light consumer finds the lost work from the database (:mod:`worker.recovery`)
and enqueues exactly that, leaving what is still queued alone. The worker processes get
``tests/worker/fault_hooks`` (tiny SAM as ``vit_b``; a slow pre-annotation or embedding to
kill it in) through ``PYTHONPATH``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from db.cache import get_prediction
from db.engine import session_scope
from db.jobs import create_job, get_job
from db.models import Image, JobState, SamEmbedding
from db.versions import active_version, list_versions
from model.checkpoint import load_checkpoint
from tests.disk_full import SmallDisk
from tests.model.tiny_sam import TINY_BUILDERS, write_tiny_checkpoint
from tests.worker.conftest import (add_faces, consumer_env, immediate_tasks,
                                   publish_untrained, wait_for)
from worker.child_process import start_worker_process
from worker.client import HueyTaskQueue
from worker.context import WorkerContext
from worker.options import WorkerOptions
from worker.queue import LIGHT, bind_tasks, declare_tasks, make_hueys
from worker.recovery import redo_lost_work
from worker.tasks import TASKS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
HOOKS = Path(__file__).resolve().parent / "fault_hooks"


def hooked_env(marks: Path | None = None, slow: str | None = None, **more: str) -> dict[str, str]:
    """A test consumer's environment (one worker process unless ``more`` says otherwise) with
    the fault hooks; ``slow``: ``predict``, ``embed`` or both, comma-separated."""
    path = os.pathsep.join(p for p in (str(HOOKS), str(REPO), os.environ.get("PYTHONPATH"))
                           if p)
    env = consumer_env(**{"FACET_WORKERS": "1", "FACET_TEST_HOOKS": "1", "PYTHONPATH": path,
                          **more})
    if slow is not None:
        env.update(FACET_TEST_SLOW=slow, FACET_TEST_MARKS=str(marks), FACET_TEST_SLOW_S="120")
    return env


def _scored(sessions, version_id: int) -> set[int]:
    """Images with a pre-annotation by ``version_id`` that also carry its score."""
    with session_scope(sessions) as s:
        return {i for i in s.scalars(select(Image.id).where(Image.scored_by_id == version_id))
                if get_prediction(s, i, version_id) is not None}


def _embedded(sessions, settings) -> set[int]:
    with session_scope(sessions) as s:
        return {row.image_id for row in s.scalars(select(SamEmbedding))
                if (settings.data_dir / row.path).is_file()}


def _queued_ids(settings, name: str) -> set[int]:
    """Image ids in the light queue's ``name`` messages (score_batch: its list; else arg 0)."""
    ids: set[int] = set()
    light = declare_tasks(make_hueys(settings), TASKS, WorkerOptions()).huey_for(LIGHT)
    for task in light.pending():
        if task.name == name:
            ids.update(task.args[1] if name == "facet.score_batch" else [task.args[0]])
    return ids


def _redone(log_path: Path) -> list[tuple[int, int]]:
    """``(pre-annotations, embeddings)`` of each "re-enqueued lost work" line in the log."""
    return [(int(a), int(b)) for a, b in re.findall(
        r"re-enqueued lost work: (\d+) pre-annotation\(s\) .*?, (\d+) embedding\(s\)",
        log_path.read_text())]


def _kill_when(worker, mark: Path, what: str) -> None:
    """SIGKILL ``worker`` (and its worker processes) once ``mark`` exists: the slowed task runs."""
    try:
        wait_for(mark.exists, 120, what, worker.log_path)
    finally:
        worker.kill_group()


def test_a_worker_killed_while_embedding_then_while_scoring_redoes_the_lost_work(
        settings, sessions, tmp_path):
    """20 images, a new active model, 20 facet.embed messages and its facet.score_all queued;
    one worker process at a time. Killed during the first embedding, then (restarted) during
    the first batch of the fan-out (score_batch of 16 + 4): each restart redoes exactly what
    the kill lost, and what was still queued runs once."""
    ckpt = write_tiny_checkpoint(tmp_path / "sam_vit_b.pth")
    ids = set(add_faces(sessions, settings, {}, list(range(1, 21))).values())
    version = publish_untrained(sessions, settings, seed=1)
    sam = dict(FACET_SAM_CHECKPOINT=str(ckpt), FACET_SAM_MODEL="vit_b")
    client = HueyTaskQueue(settings, WorkerOptions.from_env(env=consumer_env(**sam)))
    for image_id in sorted(ids):  # queued before any worker: its start-up sweep sees them
        client.enqueue_embedding(image_id)
    client.enqueue_scoring(version)

    marks = tmp_path / "marks"
    worker = start_worker_process(settings, env=hooked_env(marks / "1", "embed", **sam),
                                  queues=LIGHT)
    _kill_when(worker, marks / "1" / "embed", "an embedding under way")
    unembedded = ids - _queued_ids(settings, "facet.embed") - _embedded(sessions, settings)
    assert len(unembedded) == 1  # its message went with the worker

    worker = start_worker_process(settings, env=hooked_env(marks / "2", "predict", **sam),
                                  queues=LIGHT)
    _kill_when(worker, marks / "2" / "predict", "a pre-annotation under way")
    assert _embedded(sessions, settings) == ids  # the lost one too
    queued = _queued_ids(settings, "facet.score_batch")
    unscored = ids - queued - _scored(sessions, version)
    assert (len(queued), len(unscored)) == (4, 16)  # the running batch went with the worker

    with start_worker_process(settings, env=hooked_env(**sam), queues=LIGHT) as worker:
        wait_for(lambda: _scored(sessions, version) == ids, 120,
                 "every image pre-annotated and scored by the active model", worker.log_path)
        # each restart sent what the kill before it lost, once; nothing that was still queued
        assert _redone(worker.log_path) == [(0, 1), (16, 0)]
    assert worker.popen.returncode == 0


def test_the_sweep_enqueues_only_what_is_missing_and_not_queued(settings, sessions, tmp_path,
                                                                monkeypatch):
    """:func:`worker.recovery.redo_lost_work` on a real queue without a consumer."""
    import worker.recovery as recovery

    ckpt = write_tiny_checkpoint(tmp_path / "sam.pth")
    ids = add_faces(sessions, settings, {1: "train"}, [2, 3, 4, 5, 6])  # 1 is labelled
    version = publish_untrained(sessions, settings)
    opts = WorkerOptions.from_env(env={}, sam_checkpoint=str(ckpt), sam_model="tiny",
                                  predict_chunk=2, torch_threads=1)
    ctx = WorkerContext(settings, opts, sessions=sessions, sam_builders=TINY_BUILDERS)
    light = bind_tasks(make_hueys(settings), TASKS, ctx).huey_for(LIGHT)  # enqueue only writes
    done_now = immediate_tasks(settings, sessions, opts, sam_builders=TINY_BUILDERS)
    done_now.enqueue("facet.predict", ids[2])  # 2: pre-annotated, scored and embedded
    done_now.enqueue("facet.embed", ids[2])
    ctx.enqueue("facet.predict", ids[3])  # 3: both still queued
    ctx.enqueue("facet.embed", ids[3], str(ckpt), "tiny")

    sent = redo_lost_work(ctx)
    assert (sent.predictions, sent.embeddings, sent.messages) == (3, 3, 5)
    new = sorted((t.name, tuple(t.args)) for t in light.pending())
    assert new == sorted([
        ("facet.predict", (ids[3],)), ("facet.embed", (ids[3], str(ckpt), "tiny")),
        ("facet.score_batch", (version, [ids[4], ids[5]])),
        ("facet.score_batch", (version, [ids[6]])),
        *[("facet.embed", (ids[k], str(ckpt), "tiny")) for k in (4, 5, 6)]])
    assert redo_lost_work(ctx).messages == 0  # a second sweep finds it all queued

    light.flush()
    ctx.enqueue("facet.score_all", version)  # covers every pre-annotation of that version
    assert (redo_lost_work(ctx).predictions, light.pending_count()) == (0, 1 + 4)
    monkeypatch.setattr(recovery, "SCAN_LIMIT", 4)  # a busy queue is left alone
    assert redo_lost_work(ctx).skipped == "5 messages queued"


LABELLED = {1: "train", 2: "val", 3: "train", 4: "val"}


def test_a_full_disk_while_writing_a_checkpoint_fails_the_run_and_the_model_keeps_serving(
        settings, sessions, options, monkeypatch):
    """ENOSPC part-way through the new checkpoint: no file left, the job failed with the
    reason, the active model untouched and serving; with room again, the next run publishes."""
    with SmallDisk(settings.models_dir, monkeypatch) as disk:
        ids = add_faces(sessions, settings, LABELLED, [5, 6])
        v0 = publish_untrained(sessions, settings, seed=3)
        v0_file = settings.models_dir / "v0.pt"
        v0_bytes = v0_file.read_bytes()
        tasks = immediate_tasks(settings, sessions, options)
        with session_scope(sessions) as s:
            job = create_job(s, "train", {"steps": 2}).id
        disk.fill_up(len(v0_bytes) // 2)
        tasks.enqueue("facet.train", job)
        with session_scope(sessions) as s:
            failed = get_job(s, job)
            assert failed.state == JobState.failed, disk.mode
            assert "no space left on device" in failed.error, failed.error
            assert [v.id for v in list_versions(s)] == [v0] and active_version(s).id == v0
        assert sorted(p.name for p in settings.models_dir.iterdir()) == ["v0.pt"]
        assert v0_file.read_bytes() == v0_bytes
        tasks.enqueue("facet.predict", ids[5])
        with session_scope(sessions) as s:
            assert get_prediction(s, ids[5], v0) is not None  # the active model serves

        disk.free_up()
        with session_scope(sessions) as s:
            retry = create_job(s, "train", {"steps": 2}).id
        tasks.enqueue("facet.train", retry)
        with session_scope(sessions) as s:
            assert (get_job(s, retry).state, get_job(s, retry).error) == (JobState.succeeded, None)
            published = [v for v in list_versions(s) if v.job_id == retry]
            assert len(published) == 1
            load_checkpoint(settings.data_dir / published[0].checkpoint_path)


def test_serve_tells_its_worker_the_sam_checkpoint(tmp_path, monkeypatch):
    """So that worker's sweep knows which embeddings are missing."""
    import app as facet_app
    import worker.child_process
    from db.settings import Settings
    from webapp.options import ServeOptions

    settings = Settings.resolve(data_dir=tmp_path / "data", env={})

    started = []

    class Proc:  # a child that stays up and stops when asked (the supervisor polls it)
        pid, log_path = 1, tmp_path / "worker.log"

        def alive(self) -> bool:
            return True

        def stop(self, timeout_s: float = 15.0) -> int:
            return 0

    monkeypatch.setattr(worker.child_process, "start_worker_process",
                        lambda settings, env=None, stop_at_exit=True: started.append(env) or Proc())
    ckpt = tmp_path / "sam_vit_b.pth"
    facet_app.worker_task_queue(settings, ServeOptions(sam_checkpoint=ckpt))
    facet_app.worker_task_queue(settings, ServeOptions())
    assert started == [{"FACET_SAM_CHECKPOINT": str(ckpt), "FACET_SAM_MODEL": "vit_b"}, {}]
