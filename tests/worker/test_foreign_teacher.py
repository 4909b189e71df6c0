"""A brought parser (model/foreign.py) as the active model of a retraining run: the student starts
fresh (its trunk from FACET_BACKBONE_WEIGHTS when set), the brought parser teaches when the
FACET_DISTILL_MIN_F1 gate lets it, and the run publishes a version."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torchvision

from core.errors import FacetError
from db.engine import session_scope
from db.jobs import create_job, get_job
from db.models import JobState
from db.versions import activate, add_version, get_version
from model.checkpoint import load_checkpoint
from model.foreign import read_foreign, save_foreign
from tests.model.foreign_models import torchscript_file
from tests.worker.conftest import SIZE, add_faces, immediate_tasks
from worker.options import WorkerOptions

LABELLED = {1: "train", 2: "val", 3: "train", 4: "val"}
UNLABELLED = [5, 6]


def _publish_foreign(settings, sessions, tmp_path) -> int:
    """The colour-coded parser (BiSeNet order) added and activated as add-parser would."""
    parser = read_foreign(torchscript_file(tmp_path / "bisenet.pt"), "bisenet", SIZE)
    path = settings.models_dir / "parser-bisenet.pt"
    save_foreign(path, parser)
    with session_scope(sessions) as s:
        version = add_version(s, path.relative_to(settings.data_dir).as_posix(),
                              parser.config.to_dict(), {},
                              note="your parser: bisenet.pt (bisenet labels)")
        activate(s, version.id)
        return version.id


def _train(tasks, sessions, **params) -> tuple[int, int]:
    with session_scope(sessions) as s:
        job_id = create_job(s, "train", params).id
    return job_id, tasks.enqueue("facet.train", job_id).get()


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory):
    """A local torchvision-format resnet18 state dict (random weights, as a download would be)."""
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def test_a_brought_parser_teaches_a_fresh_student(settings, sessions, options, tmp_path,
                                                  resnet18_weights):
    add_faces(sessions, settings, LABELLED, UNLABELLED)
    foreign_id = _publish_foreign(settings, sessions, tmp_path)
    tasks = immediate_tasks(settings, sessions, replace(
        options, distill_min_f1=0.0, backbone_weights=str(resnet18_weights)))  # any model teaches
    job_id, version_id = _train(tasks, sessions, steps=2)
    with session_scope(sessions) as s:
        assert get_job(s, job_id).state == JobState.succeeded
        version = get_version(s, version_id)
        m = version.metrics
        assert m["teacher_version_id"] == foreign_id and m["distilled"]
        assert m["init_version_id"] is None and m["num_unlabeled"] == 2
        assert m["baseline_version_id"] == foreign_id and m["baseline_mean_f1"] is not None
        assert version.parent_id == foreign_id
        assert version.config["backbone_weights"] == str(resnet18_weights)
        assert version.config["input_size"] == SIZE
        ckpt = settings.data_dir / version.checkpoint_path
    new = load_checkpoint(ckpt)  # a Facet parser: the student, not a copy of the foreign one
    assert "foreign" not in new.meta and new.meta["init"] is None
    assert new.meta["distill"]["teacher"] == "checkpoint" and new.meta["n_unlabeled"] == 2


def test_a_weak_brought_parser_does_not_teach_and_is_not_copied(settings, sessions, options,
                                                                tmp_path):
    add_faces(sessions, settings, LABELLED, UNLABELLED)
    foreign_id = _publish_foreign(settings, sessions, tmp_path)
    tasks = immediate_tasks(settings, sessions, replace(options, distill_min_f1=1.0))
    _, version_id = _train(tasks, sessions, steps=2)
    with session_scope(sessions) as s:
        m = get_version(s, version_id).metrics
        assert (m["init_version_id"], m["teacher_version_id"]) == (None, None)
        assert not m["distilled"] and m["baseline_version_id"] == foreign_id
        assert get_version(s, version_id).config["backbone_weights"] is None


def test_backbone_weights_come_from_the_environment(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    opts = WorkerOptions.from_env(env={"FACET_BACKBONE_WEIGHTS": str(weights)})
    assert opts.backbone_weights == str(weights.resolve())
    assert WorkerOptions.from_env(env=opts.to_env()).backbone_weights == opts.backbone_weights
    assert WorkerOptions.from_env(env={}).backbone_weights is None
    with pytest.raises(FacetError, match="FACET_BACKBONE_WEIGHTS=.* is not a file"):
        WorkerOptions.from_env(env={"FACET_BACKBONE_WEIGHTS": str(tmp_path / "missing.pth")})
