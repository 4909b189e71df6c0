"""The studio in a real headless Chromium: annotate with the editor's brush, submit, review, models."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests.e2e.conftest import Editor, brush_footprint, login, revisions, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

BRUSH = 12   # the editor's default brush size (label pixels)


def _above_the_fold(page) -> dict[str, dict]:
    """Canvas, palette, Save and Submit: each one's box must lie inside the viewport, unscrolled."""
    boxes = page.evaluate("""() => Object.fromEntries(
        ['.fe-canvas', '.fe-palette', '[data-act="save"]', '[data-act="submit"]'].map((sel) => {
            const r = document.querySelector('#facet-editor ' + sel).getBoundingClientRect();
            return [sel, {left: r.left, top: r.top, right: r.right, bottom: r.bottom}]; }))""")
    view = page.viewport_size
    assert page.evaluate("() => window.scrollY") == 0
    for sel, b in boxes.items():
        assert 0 <= b["left"] < b["right"] <= view["width"] and 0 <= b["top"] < b["bottom"] <= view["height"], \
            (sel, b, view)
    return boxes


def test_annotate_submit_and_approve(studio_url, browser):
    studio, url = studio_url
    nose = studio.labels.id("nose")

    page = login(browser, url, "ann", viewport=(1366, 768))
    assert page.get_by_role("tab", name="Review").count() == 0 or \
        not page.get_by_role("tab", name="Review").is_visible()
    editor = Editor(page)
    editor.wait_mounted()
    editor.act("next")
    assert editor.wait_open() == 3
    title = page.inner_text(".fe-title")
    assert "Image #3" in title and "revision 1 (draft) by ann" in title, title
    start = editor.start()
    assert np.array_equal(start, revisions(studio, 3)[-1][4])     # the draft is where it starts
    editor.press("2")                                             # the palette key of "nose"
    assert editor.data["cls"] == str(nose)
    h, w = start.shape
    editor.record()
    editor.stroke([(w / 2 - 40, h / 2), (w / 2 + 40, h / 2)])    # across the middle of the face
    expected = start.copy()
    expected[brush_footprint(editor.events(), BRUSH, start.shape)] = nose
    assert editor.data["dirty"] == "true"
    editor.settle()
    _above_the_fold(page)
    screenshot(page, "annotate", width=None)                     # 1366 x 768
    page.set_viewport_size({"width": 1920, "height": 1080})
    editor.settle()
    editor.press("Home")                                          # fit the view to the larger stage
    editor.settle()
    _above_the_fold(page)
    screenshot(page, "annotate_1920", width=None)
    page.wait_for_function("() => performance.now() - facetEditor.shownAt > 800")
    editor.act("submit")
    page.wait_for_selector(".fe-status:text('Submitted image #3 as revision 2')")
    editor.check_clean()

    revs = revisions(studio, 3)
    (n1, s1, _, _, before), (n2, s2, who, _, after) = revs[-2], revs[-1]
    assert (n1, s1, n2, s2, who) == (1, "draft", 2, "submitted", "ann")
    changed = before != after
    assert np.array_equal(after, expected), f"{(after != expected).sum()} pixels differ from the stroke"
    assert changed.sum() > 100 and (after[changed] == nose).all() and not (before[changed] == nose).any()
    page.close()

    page = login(browser, url, "rev")
    page.get_by_role("tab", name="Review").click()
    page.wait_for_selector("#facet-review-summary :text('Image #3')")
    page.locator("#facet-review-comment textarea").fill("Nose added, looks right.")
    time.sleep(1.0)
    screenshot(page, "review")
    page.click("#facet-approve")
    page.wait_for_selector("#facet-review-status :text('Approved: image #3')")
    last = revisions(studio, 3)[-1]
    assert last[:4] == (3, "approved", "rev", "Nose added, looks right.")
    assert np.array_equal(last[4], after)
    page.close()


def test_models_and_dataset_views(studio_url, browser):
    _, url = studio_url
    page = login(browser, url, "adm")
    page.get_by_role("tab", name="Models").click()
    page.wait_for_selector("#facet-models-active :text('Active: model v1')")
    page.wait_for_selector("#facet-job :text('succeeded')")
    page.wait_for_selector("#facet-loss canvas, #facet-loss svg")
    page.wait_for_selector("#facet-f1 canvas, #facet-f1 svg")
    assert page.locator("#facet-train").is_enabled() and page.locator("#facet-activate").is_enabled()
    time.sleep(1.5)
    screenshot(page, "models")
    page.get_by_role("tab", name="Dataset").click()
    page.wait_for_selector("#facet-dataset-counts :text('4 images')")
    page.wait_for_selector("#facet-class-shares canvas, #facet-class-shares svg")
    assert "demo_0003.jpg" in page.inner_text("#facet-images")
    page.close()
