"""The studio in a real headless Chromium: annotate with the brush, submit, review, models."""
from __future__ import annotations

import time

import numpy as np
import pytest

from core.imageio import decode_label_png
from db.models import Revision
from tests.e2e.conftest import login, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _revisions(studio, image_id):
    with studio.session() as session:
        return [(r.revision, r.state.value, r.author.name if r.author else None, r.comment,
                 decode_label_png(r.label_png, 19))
                for r in session.query(Revision).filter_by(image_id=image_id).order_by(Revision.id)]


def _stroke(page, selector: str, dx: int = 70) -> None:
    """Drag the mouse across the centre of the editor canvas, slowly enough to register."""
    box = page.locator(f"{selector} canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - dx, cy)
    page.mouse.down()
    for i in range(2 * dx // 4 + 1):
        page.mouse.move(cx - dx + 4 * i, cy)
        time.sleep(0.015)
    page.mouse.up()


def test_annotate_submit_and_approve(studio_url, browser):
    studio, url = studio_url
    nose = studio.labels.id("nose")

    page = login(browser, url, "ann")
    assert page.get_by_role("tab", name="Review").count() == 0 or \
        not page.get_by_role("tab", name="Review").is_visible()
    page.click("#facet-next")
    page.wait_for_selector("#facet-header :text('Image #3')")
    assert "revision 1 (draft) by ann" in page.inner_text("#facet-header")
    page.wait_for_selector("#facet-editor canvas")
    time.sleep(1.5)                                   # the background image loads into the canvas
    page.keyboard.press("2")                          # the palette shortcut for "nose"
    assert page.locator("#facet-palette input:checked").get_attribute("value") == str(nose)
    time.sleep(0.5)
    _stroke(page, "#facet-editor")
    time.sleep(0.5)
    screenshot(page, "annotate")
    page.click("#facet-submit")
    page.wait_for_selector("#facet-status :text('Submitted image #3 as revision 2')")

    revs = _revisions(studio, 3)
    (n1, s1, _, _, before), (n2, s2, who, _, after) = revs[-2], revs[-1]
    assert (n1, s1, n2, s2, who) == (1, "draft", 2, "submitted", "ann")
    changed = before != after
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 100 and (after[changed] == nose).all() and not (before[changed] == nose).any()
    h, w = after.shape
    assert abs(xs.mean() - w / 2) < w * 0.1 and abs(ys.mean() - h / 2) < h * 0.1   # where the stroke went
    assert xs.max() - xs.min() > 2 * (ys.max() - ys.min())                          # a horizontal stroke
    page.close()

    page = login(browser, url, "rev")
    page.get_by_role("tab", name="Review").click()
    page.wait_for_selector("#facet-review-summary :text('Image #3')")
    page.locator("#facet-review-comment textarea").fill("Nose added, looks right.")
    time.sleep(1.0)
    screenshot(page, "review")
    page.click("#facet-approve")
    page.wait_for_selector("#facet-review-status :text('Approved: image #3')")
    last = _revisions(studio, 3)[-1]
    assert last[:4] == (3, "approved", "rev", "Nose added, looks right.")
    assert np.array_equal(last[4], after)
    page.close()


def test_models_and_dataset_views(studio_url, browser):
    studio, url = studio_url
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
