"""The browser editor's pure modules (webapp/static/png.js, labelmap.js, autosave.js) run in
Node: the label-map PNG codec is exact both ways against Pillow, and brush, fill, polygon,
protect modes and undo/redo change exactly the pixels they should."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess

import numpy as np
import pytest

from core.imageio import decode_label_png, encode_label_png
from webapp.ui.annotate import STATIC_DIR

NODE = shutil.which("node")
W, H = 40, 30
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def _run(tmp_path, job: dict) -> dict:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    script = STATIC_DIR.parents[1] / "tests" / "webapp" / "js" / "editor_core.mjs"
    done = subprocess.run([NODE, str(script), str(path), str(STATIC_DIR)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _start() -> np.ndarray:
    """Background with a skin block (ids 1) and a hair block (ids 13)."""
    start = np.zeros((H, W), np.uint8)
    start[5:15, 5:20] = 1
    start[5:15, 22:35] = 13
    return start


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    rng = np.random.default_rng(3)
    noisy = rng.integers(0, 19, (H, W), dtype=np.uint8)
    noisy[:, :10] = 7                                       # runs and noise: every PNG filter
    ops = [
        {"name": "stroke", "kind": "line", "from": [2, 20], "to": [37, 20], "size": 3, "value": 2},
        {"name": "fill", "kind": "fill", "at": [10, 10], "value": 4},
        {"name": "poly_protected", "kind": "polygon", "value": 6, "protect": "background",
         "points": [[0, 0], [40, 0], [40, 12], [0, 12]]},
        {"name": "over_hair_only", "kind": "line", "from": [0, 10.5], "to": [39.5, 10.5], "size": 1,
         "value": 9, "protect": "classes", "over": [13]},
    ]
    job = {"png": base64.b64encode(encode_label_png(noisy)).decode(), "width": W, "height": H,
           "start": _start().ravel().tolist(), "ops": ops}
    return noisy, _run(tmp_path_factory.mktemp("js"), job)


def _map(values) -> np.ndarray:
    return np.asarray(values, np.uint8).reshape(H, W)


def test_the_png_codec_and_the_kept_edits_are_exact_both_ways(result):
    noisy, out = result
    assert np.array_equal(_map(out["decoded"]), noisy)
    assert np.array_equal(decode_label_png(base64.b64decode(out["reencoded"]), 19, (W, H)), noisy)
    assert np.array_equal(_map(out["runs"]), noisy)


def test_each_tool_changes_exactly_its_pixels(result):
    _, out = result
    start = _start()
    stroke = _map(out["steps"]["stroke"])
    changed = stroke != start
    assert set(np.unique(stroke[changed])) == {2}
    assert changed[19:21, 3:36].all() and not changed[:18].any() and not changed[22:].any()
    filled = _map(out["steps"]["fill"])
    expect = stroke.copy()
    expect[5:15, 5:20] = 4                                  # the skin block, nothing beyond it
    assert np.array_equal(filled, expect)
    poly = _map(out["steps"]["poly_protected"])
    expect[:12][expect[:12] == 0] = 6                       # background only: the blocks survive
    assert np.array_equal(poly, expect)
    hair_only = _map(out["steps"]["over_hair_only"])
    expect[10, 22:35] = 9                                   # only hair pixels on row 10 changed
    assert np.array_equal(hair_only, expect)


def test_undo_and_redo_walk_the_edits_back_and_forth(result):
    _, out = result
    steps = out["steps"]
    assert out["undone"] == steps["poly_protected"] and out["undone2"] == steps["fill"]
    assert out["redone"] == steps["poly_protected"]
