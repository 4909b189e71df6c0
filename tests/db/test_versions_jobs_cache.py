"""Model versions (exactly one active), job bookkeeping, prediction/embedding caches."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from core.errors import FacetError
from core.imageio import BadImageError, encode_label_png
from db.cache import get_embedding_row, get_prediction, put_embedding_row, put_prediction
from db.engine import session_scope
from db.jobs import (add_point, create_job, fail, finish, job_points, latest_job, mark_running,
                     pending_job, running_job, set_progress)
from db.models import JobState, ModelVersion, Prediction
from db.versions import activate, active_version, add_version, list_versions
from tests.db.conftest import insert_image, label_png


def _active_ids(session) -> list[int]:
    return list(session.scalars(select(ModelVersion.id).where(ModelVersion.is_active.is_(True))))


def test_activate_leaves_exactly_one_active_version_and_allows_rollback(sessions):
    with session_scope(sessions) as s:
        v1 = add_version(s, "models/v1.pt", {"backbone": "resnet18"}, {"mean_f1": 0.61})
        v2 = add_version(s, "models/v2.pt", {"backbone": "resnet18"}, {"mean_f1": 0.64},
                         parent_id=v1.id, num_labels=12, note="after 12 labels")
        assert active_version(s) is None and not v2.is_active
        activate(s, v1.id)
    with session_scope(sessions) as s:
        activate(s, v2.id)
        assert _active_ids(s) == [v2.id] and active_version(s).metrics["mean_f1"] == 0.64
    with session_scope(sessions) as s:
        activate(s, v1.id)                          # rollback
        assert _active_ids(s) == [v1.id]
        assert [v.id for v in list_versions(s)] == [v2.id, v1.id]
        with pytest.raises(FacetError, match="no model version with id 99"):
            activate(s, 99)
        assert _active_ids(s) == [v1.id]


def test_a_job_reports_progress_points_and_its_end(sessions):
    with session_scope(sessions) as s:
        job = create_job(s, "train", {"steps": 3})
        assert pending_job(s, "train").id == job.id and running_job(s, "train") is None
        mark_running(s, job.id)
        for step in range(3):
            add_point(s, job.id, step, {"loss": 1.0 / (step + 1)})
        set_progress(s, job.id, 1.7, "step 3/3")
        assert running_job(s, "train").progress == 1.0
    with session_scope(sessions) as s:
        finish(s, job.id, "mean F1 0.64")
        done = latest_job(s, "train")
        assert (done.state, done.message, done.finished_at is not None) == (
            JobState.succeeded, "mean F1 0.64", True)
        assert [(p.step, p.values["loss"]) for p in job_points(s, job.id)] == [
            (0, 1.0), (1, 0.5), (2, 1.0 / 3)]
        assert pending_job(s, "train") is None
        with pytest.raises(FacetError, match="already succeeded"):
            fail(s, job.id, "late")


def test_a_failed_job_keeps_its_error_and_can_be_retried(sessions):
    with session_scope(sessions) as s:
        job = create_job(s, "embed")
        mark_running(s, job.id)
        fail(s, job.id, "SAM checkpoint missing")
        assert (latest_job(s, "embed").state, latest_job(s, "embed").error) == (
            JobState.failed, "SAM checkpoint missing")
        mark_running(s, job.id)
        assert running_job(s, "embed").error is None


def test_prediction_cache_upserts_and_validates(sessions):
    with session_scope(sessions) as s:
        image = insert_image(s, 0)
        v = add_version(s, "models/v1.pt", {}, {})
        assert get_prediction(s, image.id, v.id) is None
        put_prediction(s, image.id, v.id, label_png(1), 0.3)
        put_prediction(s, image.id, v.id, label_png(2), 0.1)
        with pytest.raises(BadImageError, match="expected 8x8"):
            put_prediction(s, image.id, v.id, encode_label_png(np.zeros((2, 2), np.uint8)))
    with session_scope(sessions) as s:
        row = get_prediction(s, image.id, v.id)
        assert (row.label_png, row.uncertainty) == (label_png(2), 0.1)
        assert len(s.scalars(select(Prediction)).all()) == 1


def test_embedding_rows_upsert_per_image_and_sam_model(sessions):
    with session_scope(sessions) as s:
        image = insert_image(s, 0)
        put_embedding_row(s, image.id, "vit_b:aaa", "cache/sam/0-a.npy")
        put_embedding_row(s, image.id, "vit_b:aaa", "cache/sam/0-a2.npy")
        put_embedding_row(s, image.id, "vit_l:bbb", "cache/sam/0-b.npy")
    with session_scope(sessions) as s:
        assert get_embedding_row(s, image.id, "vit_b:aaa").path == "cache/sam/0-a2.npy"
        assert get_embedding_row(s, image.id, "vit_l:bbb").path == "cache/sam/0-b.npy"
        assert get_embedding_row(s, image.id, "vit_h:ccc") is None
        with pytest.raises(FacetError, match="no image with id 42"):
            put_embedding_row(s, 42, "vit_b:aaa", "x.npy")
