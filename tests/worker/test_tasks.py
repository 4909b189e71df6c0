"""worker/tasks.py in Huey's immediate mode: pre-annotation, scoring, SAM embeddings, the lock."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from core.imageio import decode_label_png
from db.cache import embedding_path, get_embedding_row, get_prediction
from db.engine import session_scope
from db.jobs import create_job, get_job
from db.models import Image, JobState, Prediction, RevisionState
from tests.worker.conftest import SIZE, add_face, add_faces, immediate_tasks, publish_untrained
from worker.client import HueyTaskQueue
from worker.queue import TRAIN
from worker.tasks import TRAIN_LOCK


def test_predict_without_a_model_does_nothing(tasks, settings, sessions):
    ids = add_faces(sessions, settings, {}, [1])
    assert tasks.enqueue("facet.predict", ids[1]).get() is None
    with session_scope(sessions) as s:
        assert s.scalar(select(Prediction)) is None


def test_predict_caches_a_label_map_and_sets_queue_priority(tasks, settings, sessions):
    ids = add_faces(sessions, settings, {}, [1, 2])
    version = publish_untrained(sessions, settings)
    assert tasks.enqueue("facet.predict", ids[1]).get() == version
    with session_scope(sessions) as s:
        row = get_prediction(s, ids[1], version)
        label = decode_label_png(row.label_png, 19, (SIZE, SIZE))
        assert label.shape == (SIZE, SIZE)
        assert 0.0 <= row.uncertainty <= 1.0
        image = s.get(Image, ids[1])
        assert image.priority == pytest.approx(row.uncertainty) and image.scored_by_id == version
        assert s.get(Image, ids[2]).priority is None
        first = row.created_at
    tasks.enqueue("facet.predict", ids[1])  # cached: not recomputed
    with session_scope(sessions) as s:
        assert get_prediction(s, ids[1], version).created_at == first


def test_score_all_covers_images_needing_work_only_for_the_active_version(tasks, settings,
                                                                         sessions, options):
    ids = add_faces(sessions, settings, {1: "train", 2: "val"}, [3, 4, 5])
    with session_scope(sessions) as s:
        draft = add_face(s, settings, 6, state=RevisionState.draft)
    old = publish_untrained(sessions, settings, "old.pt", seed=1)
    new = publish_untrained(sessions, settings, "new.pt", seed=2)
    assert tasks.enqueue("facet.score_all", old).get() == 0  # no longer active: nothing done
    assert tasks.enqueue("facet.score_all", new).get() == 4
    with session_scope(sessions) as s:
        scored = {p.image_id for p in s.scalars(select(Prediction))}
        assert scored == {ids[3], ids[4], ids[5], draft}
        assert all(s.get(Image, i).scored_by_id == new for i in scored)
        assert s.get(Image, ids[1]).priority is None  # labelled: not queued


def test_embedding_is_cached_as_float16_file_and_row(tasks, settings, sessions, tmp_path):
    from model.sam import SamEmbedding
    from tests.model.tiny_sam import TINY_BUILDERS, write_tiny_checkpoint
    from worker.options import WorkerOptions

    ckpt = write_tiny_checkpoint(tmp_path / "tiny.pth")
    sam_tasks = immediate_tasks(settings, sessions, WorkerOptions.from_env(env={}),
                                sam_builders=TINY_BUILDERS)
    ids = add_faces(sessions, settings, {}, [1])
    assert sam_tasks.enqueue("facet.embed", ids[1]).get() is None  # no checkpoint anywhere: skipped
    rel = sam_tasks.enqueue("facet.embed", ids[1], str(ckpt), "tiny").get()
    emb = SamEmbedding.load(settings.data_dir / rel)
    assert emb.features.dtype == np.float16 and emb.original_size == (SIZE, SIZE)
    with session_scope(sessions) as s:
        row = get_embedding_row(s, ids[1], emb.model_key)
        assert row.path == rel
        assert settings.data_dir / rel == embedding_path(settings, emb.model_key, ids[1])


def test_client_sends_ids_and_the_sam_checkpoint(settings, sessions, tasks, options, tmp_path):
    ids = add_faces(sessions, settings, {}, [1])
    version = publish_untrained(sessions, settings)
    client = HueyTaskQueue(settings, options, tasks=tasks)
    client.enqueue_prediction(ids[1])
    client.enqueue_embedding(ids[1])  # no SAM checkpoint: only the pre-annotation
    with session_scope(sessions) as s:
        assert get_prediction(s, ids[1], version) is not None
        assert s.scalar(select(Prediction.id).where(Prediction.image_id != ids[1])) is None


def test_a_second_training_run_waits_for_the_lock(tasks, sessions):
    with session_scope(sessions) as s:
        job_id = create_job(s, "train").id
    lock = tasks.huey_for(TRAIN).lock_task(TRAIN_LOCK)
    lock.acquire()
    try:
        tasks.enqueue("facet.train", job_id)  # immediate mode: runs now, is rescheduled, does not run again
    finally:
        lock.release()
    with session_scope(sessions) as s:
        job = get_job(s, job_id)
        assert job.state == JobState.queued and "waiting" in job.message
    assert len(tasks.huey_for(TRAIN).scheduled()) == 1


def test_a_finished_job_is_not_run_again(tasks, sessions):
    from db.jobs import fail, mark_running
    with session_scope(sessions) as s:
        job_id = create_job(s, "train").id
        mark_running(s, job_id)
        fail(s, job_id, "earlier failure")
    assert tasks.enqueue("facet.train", job_id).get() is None
    with session_scope(sessions) as s:
        assert get_job(s, job_id).error == "earlier failure"
