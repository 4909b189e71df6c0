"""Stats over a small known dataset: counts follow each image's newest main-line revision."""
from __future__ import annotations

import numpy as np
import pytest

from core.imageio import encode_label_png
from core.labels import CELEBAMASK
from db.engine import session_scope
from db.models import RevisionState
from db.revisions import save_revision
from db.stats import compute_stats, format_stats
from db.versions import activate, add_version
from tests.db.conftest import insert_image, label_png


def known_dataset(sessions) -> None:
    """5 images of 8x8 label pixels:
    0: skin top half, hair bottom half, approved     (32 skin, 32 hair)
    1: background, submitted                        (64 background)
    2: no revision
    3: skin (draft), then a conflicting save of hat  (64 skin; the hat is off the main line)
    4: nose, then skin as revision 2 (draft)       (64 skin; the nose is history)
    Two model versions, the second active with mean F1 0.7.
    """
    half = np.full((8, 8), CELEBAMASK.id("skin"), np.uint8)
    half[4:] = CELEBAMASK.id("hair")
    with session_scope(sessions) as s:
        ids = [insert_image(s, k).id for k in range(5)]
        save_revision(s, ids[0], encode_label_png(half), None, None, state=RevisionState.approved)
        save_revision(s, ids[1], label_png(0), None, None, state=RevisionState.submitted)
        save_revision(s, ids[3], label_png(CELEBAMASK.id("skin")), None, None)
        assert save_revision(s, ids[3], label_png(CELEBAMASK.id("hat")), None, None).conflict
        save_revision(s, ids[4], label_png(CELEBAMASK.id("nose")), None, None)
        save_revision(s, ids[4], label_png(CELEBAMASK.id("skin")), None, 1)
        add_version(s, "models/v1.pt", {}, {"mean_f1": 0.5})
        activate(s, add_version(s, "models/v2.pt", {}, {"mean_f1": 0.7}).id)


def test_stats_numbers_on_a_known_dataset(sessions):
    known_dataset(sessions)
    with session_scope(sessions) as s:
        stats = compute_stats(s)
    assert (stats.images, stats.annotated, stats.submitted, stats.approved, stats.rejected) == (
        5, 4, 2, 1, 0)
    assert stats.labelled_pixels == 256
    assert stats.class_share["skin"] == pytest.approx(160 / 256)
    assert stats.class_share["hair"] == pytest.approx(32 / 256)
    assert stats.class_share["background"] == pytest.approx(64 / 256)
    assert stats.class_share["nose"] == 0.0 and stats.class_share["hat"] == 0.0
    assert list(stats.class_share) == list(CELEBAMASK.names)
    assert (stats.model_versions, stats.active_version_id, stats.active_mean_f1) == (2, 2, 0.7)


def test_human_table_is_aligned_and_names_every_number(sessions):
    known_dataset(sessions)
    with session_scope(sessions) as s:
        lines = format_stats(compute_stats(s)).splitlines()
    assert len({len(line) for line in lines}) == 1            # one column width
    table = {line[:16].strip(): line[16:].strip() for line in lines}
    assert table["images"] == "5" and table["approved"] == "1"
    assert table["active mean F1"] == "0.7000" and table["skin"] == "62.50 %"


def test_empty_database_has_zero_shares_and_no_active_version(sessions):
    with session_scope(sessions) as s:
        stats = compute_stats(s)
    assert stats.images == 0 and stats.labelled_pixels == 0
    assert set(stats.class_share.values()) == {0.0}
    assert stats.active_version_id is None and stats.active_mean_f1 is None
