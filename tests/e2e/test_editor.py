"""The browser-side label-map editor in a real headless Chromium, checked in the database.

Every test opens an image, edits it with the editor's tools through real mouse and keyboard
input, saves, and compares the stored label map pixel by pixel with the map it started from:
exactly the pixels the tool must touch changed, to exactly the expected class. What a tool must
touch is computed here in numpy (brush discs, polygon scan lines, 4-connected flood fills, SAM's
mask resized by nearest) from the label points the canvas received.

Images of the ``editor_studio`` fixture: 1-3 approved with their exact maps, 4-12 unlabelled
(all background without a model); each test uses its own.
"""
from __future__ import annotations

import httpx
import numpy as np
import pytest

from core.imageio import decode_label_png
from tests.e2e.conftest import (
    EDITOR_FACES,
    Editor,
    brush_footprint,
    flood_region,
    login,
    nearest_resize,
    polygon_mask,
    revisions,
    stored_map,
)
from tests.webapp.helpers import auth

pytestmark = [pytest.mark.e2e]

BRUSH = 12   # the editor's default brush size (label pixels)


@pytest.fixture(scope="module")
def ann_context(editor_studio, browser):
    """One browser context logged in as the annotator ``ann`` (pages share its cookie)."""
    _, url = editor_studio
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    login(browser, url, "ann", context=context).close()
    yield context
    context.close()


@pytest.fixture()
def editor(editor_studio, ann_context):
    """A fresh studio page with the editor mounted; fails the test on any page/console error."""
    _, url = editor_studio
    page = ann_context.new_page()
    page.set_default_timeout(30_000)
    ed = Editor(page)
    page.goto(url + "/")
    ed.wait_mounted()
    yield ed
    try:
        ed.check_clean()
    finally:
        page.close()


def class_id(studio, name: str) -> int:
    return studio.labels.id(name)


def assert_map(actual: np.ndarray, expected: np.ndarray, start: np.ndarray, what: str) -> None:
    """``actual == expected`` pixel by pixel, with a readable account of any difference."""
    if np.array_equal(actual, expected):
        return
    wrong = actual != expected
    ys, xs = np.nonzero(wrong)
    sample = [(int(x), int(y), int(start[y, x]), int(expected[y, x]), int(actual[y, x]))
              for y, x in list(zip(ys, xs))[:8]]
    raise AssertionError(f"{what}: {int(wrong.sum())} pixels differ from the expected map "
                         f"(changed {int((actual != start).sum())}, expected "
                         f"{int((expected != start).sum())}); (x, y, start, expected, got): {sample}")


def test_class_key_then_immediate_stroke_paints_only_the_new_class(editor_studio, editor):
    studio, _ = editor_studio
    start = editor.open(4)
    assert_map(start, stored_map(studio, 4, start.shape), start, "start map")
    assert editor.data["cls"] == "1" and editor.data["tool"] == "brush"
    expected = start.copy()
    for key, name, points in (("h", "hair", [(40.3, 60.7), (210.2, 75.4)]),
                              ("u", "u_lip", [(120.6, 30.2), (135.1, 215.8)])):
        editor.record()
        on_screen = [editor.point(*p) for p in points]
        editor.press(key)                 # and the stroke at once: no wait for any redraw
        editor.drag(on_screen)
        expected[brush_footprint(editor.events(), BRUSH, start.shape)] = class_id(studio, name)
    assert editor.data["cls"] == str(class_id(studio, "u_lip")) and editor.data["dirty"] == "true"
    assert_map(editor.pixels(), expected, start, "page map")
    editor.save()
    saved = stored_map(studio, 4, start.shape)
    assert_map(saved, expected, start, "saved map")
    changed = saved != start
    assert set(np.unique(saved[changed])) == {class_id(studio, "hair"), class_id(studio, "u_lip")}
    assert (saved == 1).sum() == (start == 1).sum() == 0          # nothing in the old class (skin)


def test_undo_redo_also_across_saves(editor_studio, editor):
    studio, _ = editor_studio
    start = editor.open(5)
    hair, nose = class_id(studio, "hair"), class_id(studio, "nose")
    editor.press("h")
    editor.record()
    editor.stroke([(30.5, 40.5), (220.5, 50.5), (200.5, 120.5)])
    one = start.copy()
    one[brush_footprint(editor.events(), BRUSH, start.shape)] = hair
    assert_map(editor.pixels(), one, start, "after the stroke")

    editor.act("undo")
    assert editor.data["dirty"] == "false"
    editor.save()
    assert_map(stored_map(studio, 5, start.shape), start, start, "stroke undone and saved")

    editor.act("redo")
    editor.save("keys")
    assert_map(stored_map(studio, 5, start.shape), one, start, "stroke redone and saved")

    editor.press("2")
    editor.record()
    editor.stroke([(60.5, 200.5), (180.5, 30.5)])
    two = one.copy()
    two[brush_footprint(editor.events(), BRUSH, start.shape)] = nose
    first = editor.save()
    assert_map(stored_map(studio, 5, start.shape), two, start, "second stroke saved")

    editor.press("Control+z")            # undo twice, across the saves
    editor.press("Control+z")
    assert_map(editor.pixels(), start, start, "both strokes undone")
    assert editor.data["dirty"] == "true"
    assert editor.save() == first + 1
    assert_map(stored_map(studio, 5, start.shape), start, start, "undone across saves, saved")

    editor.press("Control+y")
    editor.act("redo")
    editor.save()
    assert_map(stored_map(studio, 5, start.shape), two, start, "both redone, saved")
    assert [r[1] for r in revisions(studio, 5)] == ["draft"] * 5


def test_fill_a_region_and_the_inside_of_a_ring(editor_studio, editor):
    studio, _ = editor_studio
    # A known map (approved ground truth): fill the background around the face, then the nose.
    start = editor.open(1)
    assert_map(start, stored_map(studio, 1, start.shape), start, "start map")
    cloth, hat, nose = class_id(studio, "cloth"), class_id(studio, "hat"), class_id(studio, "nose")
    assert start[2, 2] == 0 and (start == nose).any()
    ys, xs = np.nonzero(start == nose)
    k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))   # a nose pixel near its middle
    nx, ny = int(xs[k]), int(ys[k])
    editor.press("g")
    expected = start.copy()
    for key, cls, (x, y) in (("c", cloth, (2, 2)), ("t", hat, (nx, ny))):
        editor.press(key)
        region = flood_region(expected, x, y)
        assert 50 < region.sum() < start.size * 0.9
        expected[region] = cls
        editor.click_at(x + 0.5, y + 0.5)
    editor.save()
    assert_map(stored_map(studio, 1, start.shape), expected, start, "filled map")
    assert (expected == 0).any() and (expected == nose).sum() < (start == nose).sum()  # not all of it

    # A ring drawn with Poly+ then Poly- on an empty map, 4 pixels thick on the left, where a
    # diagonal chain of single erased pixels crosses it: a fill inside must not leak through
    # the chain's corners (4-connected), and must fill the whole hole.
    start = editor.open(6)
    neck, hair = class_id(studio, "neck"), class_id(studio, "hair")
    outer, inner = [(40, 40), (210, 40), (210, 200), (40, 200)], [(44, 70), (180, 75), (175, 170), (44, 165)]
    expected = start.copy()
    for tool, cls, corners in (("p", neck, outer), ("o", 0, inner)):
        editor.press(tool)
        editor.press("n")
        editor.record()
        for x, y in corners:
            editor.click_at(x, y)
        editor.press("Enter")
        points = [(x, y) for kind, x, y in editor.events() if kind == "pointerdown"]
        assert len(points) == 4
        expected[polygon_mask(points, start.shape)] = cls
    editor.press("e")
    editor.set_range(".fe-size", 1)
    assert editor.page.evaluate("() => facetEditor.size") == 1
    editor.record()
    for k in range(5):
        editor.click_at(39.5 + k, 110.5 + k)
    expected[brush_footprint(editor.events(), 1, start.shape)] = 0
    assert_map(editor.pixels(), expected, start, "the ring and its diagonal chain")
    editor.press("g")
    editor.press("h")
    editor.click_at(120.5, 120.5)
    region = flood_region(expected, 120, 120)
    assert not region[2, 2] and flood_region(expected, 120, 120, diagonal=True)[2, 2]
    assert (region & polygon_mask(points, start.shape)).sum() == polygon_mask(points, start.shape).sum()
    expected[region] = hair
    editor.save()
    saved = stored_map(studio, 6, start.shape)
    assert_map(saved, expected, start, "ring filled inside")
    assert set(np.unique(saved)) == {0, neck, hair}


def test_polygon_add_then_remove_inside(editor_studio, editor):
    studio, _ = editor_studio
    start = editor.open(7)
    hair = class_id(studio, "hair")
    editor.press("p")
    editor.press("h")
    assert editor.data["tool"] == "poly"
    editor.record()
    for x, y in [(50.2, 50.7), (200.6, 60.1), (190.3, 190.9), (60.8, 180.4)]:
        editor.click_at(x, y)
    editor.press("Enter")
    add = [(x, y) for kind, x, y in editor.events() if kind == "pointerdown"]
    expected = start.copy()
    expected[polygon_mask(add, start.shape)] = hair
    assert_map(editor.pixels(), expected, start, "polygon added")

    editor.press("o")                    # Poly-: erase to background; closed by a double click
    editor.record()
    editor.click_at(90.4, 90.6)
    editor.click_at(150.2, 95.3)
    editor.page.mouse.dblclick(*editor.point(140.7, 150.1))
    cut = [(x, y) for kind, x, y in editor.events() if kind == "pointerdown"]
    assert len(cut) >= 3
    expected[polygon_mask(cut, start.shape)] = 0
    editor.save()
    saved = stored_map(studio, 7, start.shape)
    assert_map(saved, expected, start, "polygon added, then a hole cut")
    assert (saved == hair).sum() > 10_000 and (polygon_mask(cut, start.shape) & (saved == 0)).sum() > 1_000


def test_protect_background_only_and_ticked_classes_only(editor_studio, editor):
    studio, _ = editor_studio
    start = editor.open(2)
    assert_map(start, stored_map(studio, 2, start.shape), start, "start map")
    hat, neck, skin, hair = (class_id(studio, n) for n in ("hat", "neck", "skin", "hair"))
    expected = start.copy()

    editor.page.select_option(".fe-protect", "background")
    assert editor.data["protect"] == "background"
    editor.press("t")
    editor.record()
    editor.stroke([(4.5, 128.5), (251.5, 120.5)])
    fp = brush_footprint(editor.events(), BRUSH, start.shape)
    assert (fp & (start == 0)).sum() > 200 and (fp & (start != 0)).sum() > 1000   # both kinds crossed
    expected[fp & (expected == 0)] = hat
    editor.save()
    assert_map(stored_map(studio, 2, start.shape), expected, start, "background only")

    editor.page.select_option(".fe-protect", "classes")
    editor.page.check(f'.fe-class[data-id="{skin}"] .fe-over')
    editor.page.check(f'.fe-class[data-id="{hair}"] .fe-over')
    assert editor.data["protect"] == "classes" and editor.data["cls"] == str(hat)   # ticking selects nothing
    editor.press("n")
    editor.record()
    editor.stroke([(128.5, 4.5), (120.5, 251.5)])
    fp = brush_footprint(editor.events(), BRUSH, start.shape)
    allowed = np.isin(expected, [skin, hair])
    assert (fp & allowed).sum() > 500 and (fp & ~allowed).sum() > 300
    expected[fp & allowed] = neck
    editor.save()
    saved = stored_map(studio, 2, start.shape)
    assert_map(saved, expected, start, "ticked classes only")
    other = ~np.isin(start, [0, skin, hair])
    assert np.array_equal(saved[other], start[other])   # every other class untouched throughout


def test_double_click_on_submit_submits_one_image(editor_studio, editor):
    studio, _ = editor_studio
    requests: list[str] = []
    editor.page.on("request", lambda r: requests.append(f"{r.method} {r.url.split('?')[0].split('/api/')[-1]}")
                   if "/api/" in r.url and r.method != "GET" else None)
    start = editor.open(8)
    editor.press("h")
    editor.record()
    editor.stroke([(60.5, 100.5), (190.5, 110.5)])
    expected = start.copy()
    expected[brush_footprint(editor.events(), BRUSH, start.shape)] = class_id(studio, "hair")
    before = {i: len(revisions(studio, i)) for i in range(1, EDITOR_FACES + 1)}
    editor.page.wait_for_function("() => performance.now() - facetEditor.shownAt > 800")
    requests.clear()

    editor.page.dblclick('[data-act="submit"]')
    editor.page.wait_for_function("() => { const d = document.getElementById('facet-editor').dataset;"
                                  " return d.busy === 'false' && d.image !== '8'; }")
    following = int(editor.data["image"])
    # A third click just after the next image appeared counts as the tail of a double click too
    # (clicked in the page, so that its time since the image appeared is known exactly).
    since, busy = editor.page.evaluate("""() => {
        const since = performance.now() - facetEditor.shownAt;
        if (since < 600) document.querySelector('#facet-editor [data-act="submit"]').click();
        return [since, document.getElementById('facet-editor').dataset.busy]; }""")
    assert busy == "false", f"a Submit {since:.0f} ms after the next image appeared started a save"

    kind, text = editor.status()
    assert kind == "info" and text.startswith("Submitted image #8 as revision 1. Opened image"), text
    assert requests == ["PUT images/8/annotation", "POST queue/next"], requests
    after = {i: len(revisions(studio, i)) for i in range(1, EDITOR_FACES + 1)}
    assert {i for i in after if after[i] != before[i]} == {8} and after[8] == before[8] + 1
    last = revisions(studio, 8)[-1]
    assert last[:3] == (1, "submitted", "ann")
    assert_map(last[4], expected, start, "submitted map")
    assert following != 8 and not any(r[1] == "submitted" for r in revisions(studio, following))


def test_reload_offers_unsaved_edits_back_and_saves_them(editor_studio, editor):
    studio, _ = editor_studio
    page = editor.page
    start = editor.open(9)
    editor.press("l")
    editor.record()
    editor.stroke([(40.5, 200.5), (128.5, 60.5), (215.5, 200.5)])
    expected = start.copy()
    expected[brush_footprint(editor.events(), BRUSH, start.shape)] = class_id(studio, "l_lip")
    assert editor.data["dirty"] == "true"

    page.reload()                         # its "leave the page?" prompt is accepted (Editor)
    editor.wait_mounted()
    restore = page.locator('.fe-banner [data-kept="restore"][data-id="9"]')
    restore.wait_for(state="visible")
    assert "Unsaved edits of image #9" in page.inner_text(".fe-banner")
    restore.click()
    editor.wait_open(9)
    page.wait_for_function("() => document.getElementById('facet-editor').dataset.dirty === 'true'")
    assert page.locator(".fe-banner").is_hidden()
    assert_map(editor.pixels(), expected, start, "restored in the page")
    assert revisions(studio, 9) == []     # nothing reached the server before the save
    editor.save()
    assert_map(stored_map(studio, 9, start.shape), expected, start, "restored and saved")
    assert page.evaluate("() => Object.keys(localStorage).filter((k) => k.startsWith('facet-unsaved:'))") == []


def test_sam_click_previews_and_enter_paints_exactly_the_preview(editor_studio, editor):
    studio, url = editor_studio
    start = editor.open(10)
    hair = class_id(studio, "hair")
    editor.press("s")
    editor.press("h")
    assert editor.data["tool"] == "sam"
    editor.record()
    editor.click_at(100.3, 120.6)
    editor.page.wait_for_function("() => document.getElementById('facet-editor').dataset.samPreview === '1'")
    (x, y), = [(x, y) for kind, x, y in editor.events() if kind == "pointerup"]
    image = editor.page.evaluate("() => ({w: facetEditor.image.width, h: facetEditor.image.height,"
                                 " scale: facetEditor.image.scale})")
    sx, sy = image["scale"]
    prompt = [[min(x * sx, image["w"] - 0.01), min(y * sy, image["h"] - 0.01), 1]]
    with httpx.Client(base_url=url, auth=auth("ann"), timeout=60) as client:
        answer = client.post("/api/images/10/sam", json={"points": prompt, "box": None})
    assert answer.status_code == 200, answer.text
    mask = nearest_resize(decode_label_png(answer.content, 256, (image["w"], image["h"])), start.shape)
    assert 1000 < mask.sum() < mask.size - 1000          # a real mask, neither empty nor everything
    preview = np.array(editor.page.evaluate("() => Array.from(facetEditor.sam.mask)"), bool).reshape(start.shape)
    assert np.array_equal(preview, mask), f"the preview differs from the API's mask in {(preview != mask).sum()} pixels"
    assert_map(editor.pixels(), start, start, "a preview paints nothing")
    assert studio.sam.model.backend == "onnx"             # clicks go through ONNX Runtime

    # Tab shows the next of the click's three candidate masks; Enter then paints that one.
    first = int(answer.headers["X-Sam-Candidate"])
    assert editor.page.evaluate("() => document.getElementById('facet-editor').dataset.samCandidate") == str(first)
    editor.press("Tab")
    nxt = (first + 1) % 3
    editor.page.wait_for_function(
        f"() => document.getElementById('facet-editor').dataset.samCandidate === '{nxt}'")
    with httpx.Client(base_url=url, auth=auth("ann"), timeout=60) as client:
        cycled = client.post("/api/images/10/sam", json={"points": prompt, "box": None, "candidate": nxt})
    assert cycled.status_code == 200 and cycled.headers["X-Sam-Candidate"] == str(nxt)
    mask = nearest_resize(decode_label_png(cycled.content, 256, (image["w"], image["h"])), start.shape)
    preview = np.array(editor.page.evaluate("() => Array.from(facetEditor.sam.mask)"), bool).reshape(start.shape)
    assert np.array_equal(preview, mask), "the cycled preview is not the API's candidate mask"

    editor.press("Enter")
    editor.page.wait_for_function("() => !('samPreview' in document.getElementById('facet-editor').dataset)")
    expected = start.copy()
    expected[mask] = hair
    editor.save()
    assert_map(stored_map(studio, 10, start.shape), expected, start, "SAM mask accepted and saved")


def test_undo_pressed_during_a_stroke_keeps_the_history_consistent(editor_studio, editor):
    studio, _ = editor_studio
    start = editor.open(11)
    mouse = editor.page.mouse
    editor.press("h")
    editor.stroke([(30.5, 100.5), (220.5, 100.5)])
    editor.press("u")
    mouse.move(*editor.point(120.5, 30.5))
    mouse.down()
    mouse.move(*editor.point(120.5, 110.5), steps=5)   # across the first stroke
    editor.press("Control+z")                          # while the button is still down
    mouse.move(*editor.point(120.5, 220.5), steps=5)
    mouse.up()
    for _ in range(3):                                 # more than enough to undo every edit
        editor.press("Control+z")
    assert editor.page.evaluate("() => facetEditor.map.undoStack.length") == 0
    editor.save()
    assert_map(stored_map(studio, 11, start.shape), start, start, "every edit undone, saved")


def test_next_image_moves_on_from_the_image_on_screen(editor_studio, editor):
    editor.open(12)
    editor.act("next")
    first = editor.wait_open()
    editor.act("next")
    editor.page.wait_for_function(
        "(was) => { const d = document.getElementById('facet-editor').dataset;"
        " return d.busy === 'false' && d.image !== String(was); }", arg=first)
    assert int(editor.data["image"]) not in (12, first)


def test_a_save_answered_503_is_tried_again_by_itself_and_lands(editor_studio, editor):
    """The database is busy for the first try (the server answers 503 with Retry-After): the
    editor says so, waits, sends the same save again, and it lands exactly once."""
    studio, _ = editor_studio
    start = editor.open(3)
    answered = []

    def busy_once(route):
        if route.request.method == "PUT" and not answered:
            answered.append(503)
            route.fulfill(status=503, headers={"Retry-After": "1"}, content_type="application/json",
                          body='{"detail": "the database is busy; nothing was changed.", "retry_after_s": 1}')
        else:
            route.continue_()

    editor.page.route("**/api/images/3/annotation*", busy_once)
    editor.press("h")
    editor.record()
    editor.stroke([(40.5, 60.5), (150.5, 70.5)])
    expected = start.copy()
    expected[brush_footprint(editor.events(), BRUSH, start.shape)] = class_id(studio, "hair")
    before = len(revisions(studio, 3))
    editor.act("save")
    editor.page.wait_for_function(
        "() => document.querySelector('.fe-status').innerText.includes('Trying again in 1 s')")
    editor.page.wait_for_function(
        "() => document.querySelector('.fe-status').dataset.kind === 'ok'", timeout=15_000)
    assert answered == [503]
    assert len(revisions(studio, 3)) == before + 1          # one save, not two
    assert_map(stored_map(studio, 3, start.shape), expected, start, "the retried save")
    editor.page.unroute("**/api/images/3/annotation*")
    # the browser logs the refused first try; that one is expected, nothing else is
    assert [e for e in editor.errors if "status of 503" not in e] == [], editor.errors
    editor.errors.clear()
