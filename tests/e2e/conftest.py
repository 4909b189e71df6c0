"""Browser tests: a live studio on 127.0.0.1 with real users, demo faces, a drafted image and a
briefly trained model; Debian's chromium driven by Playwright (never `playwright install`).

:class:`Editor` drives the Annotate tab's label-map editor (webapp/static/editor.js) through its
data attributes and ``window.facetEditor``, and computes what each tool must paint (brush
footprints, polygon masks, flood fills) in numpy, independently of the page, from the label
coordinates the canvas received (recorded with the editor's own ``labelPoint``).
"""
from __future__ import annotations

import math
import os
import tempfile
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from core.imageio import decode_label_png, encode_label_png
from db.images import read_image
from db.jobs import add_point, create_job, finish, mark_running
from db.models import Image, Origin, Revision, RevisionState
from db.revisions import save_revision
from db.settings import Settings
from db.users import get_user_by_name
from db.versions import activate, add_version
from tests.model.tiny_sam import TINY_BUILDERS, write_tiny_checkpoint
from tests.webapp.helpers import PASSWORDS, add_users
from tests.webapp.live import LiveServer
from webapp.demo import DEMO_SEED, fill_demo
from webapp.options import ServeOptions
from webapp.server import build_app
from webapp.studio import Studio

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DEMO_SIZE = 256
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _truth(k: int) -> np.ndarray:
    from model.synth import face_seed, render_face

    return render_face(face_seed(DEMO_SEED, k), DEMO_SIZE)[1]


def _train_first_model(studio: Studio) -> None:
    """A real (short) training run on the approved demo faces, logged as a job, evaluated on
    the other faces and published as the active version: what the worker would do."""
    from model.checkpoint import save_checkpoint
    from model.evaluate import evaluate
    from model.inference import Predictor
    from model.net import ParserConfig
    from model.train import train_steps as train

    with studio.session() as session:
        images = session.query(Image).order_by(Image.id).all()
        pixels = [read_image(studio.settings, im) for im in images]
        job_id = create_job(session, "train", {"source": "e2e"}).id
        mark_running(session, job_id)
    samples = [(pixels[k], _truth(k)) for k in range(2)]
    config = ParserConfig.small(input_size=64, context_channels=16, decoder_channels=16,
                                skip_channels=8, edge_channels=8)
    points: list[tuple[int, dict]] = []
    result = train(samples, config, 12, batch_size=2, num_workers=0, seed=0,
                   on_step=lambda step, _n, terms, _rate: points.append((step, terms)))
    metrics = evaluate(Predictor(result.model, result.config, result.labels, result.meta),
                       [(pixels[k], _truth(k)) for k in range(2, len(pixels))])
    path = studio.settings.models_dir / "v1.pt"
    save_checkpoint(path, result.model, result.config, result.labels, result.meta)
    with studio.session() as session:
        for step, terms in points:
            add_point(session, job_id, step, {"loss": terms["total"], "ce": terms["ce"],
                                              "edge": terms["edge"]})
        finish(session, job_id, "12 steps on 2 approved faces")
        version = add_version(session, path.relative_to(studio.settings.data_dir).as_posix(),
                              config.to_dict(), {"mean_f1": metrics["mean_f1"],
                                                 "per_class_f1": metrics["per_class_f1"]},
                              job_id=job_id, num_labels=2, note="first model")
        activate(session, version.id)


@pytest.fixture(scope="module")
def studio_url():
    """``(studio, url)``: 4 faces (2 approved), image 3 drafted by ann without its nose."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); browser tests skipped")
    with tempfile.TemporaryDirectory(prefix="facet-e2e-") as tmp:
        settings = Settings.resolve(data_dir=Path(tmp) / "data", env={})
        studio = Studio.create(settings, ServeOptions(), None)
        add_users(studio)
        fill_demo(studio, 4, size=DEMO_SIZE, labelled_fraction=0.5)
        draft = _truth(2)
        draft[draft == studio.labels.id("nose")] = studio.labels.id("skin")
        with studio.session() as session:
            save_revision(session, 3, encode_label_png(draft), get_user_by_name(session, "ann").id,
                          None, state=RevisionState.draft, origin=Origin.human)
        _train_first_model(studio)
        with LiveServer(build_app(studio)) as url:
            yield studio, url


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def login(browser, url: str, name: str, viewport: tuple[int, int] = (1280, 1300), context=None):
    """A new page logged in as ``name``, on the studio: in a new browser context, or in
    ``context`` (whose later pages then share the login cookie)."""
    page = context.new_page() if context is not None else \
        browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.set_default_timeout(60_000)
    page.goto(url + "/")
    page.locator("input[type=text]").first.fill(name)
    page.locator("input[type=password]").first.fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#facet-whoami :text('" + name + "')")
    return page


def screenshot(page, name: str, width: int | None = 1100) -> Path:
    """Save a small PNG of the viewport under docs/screenshots/ (scaled to ``width``, or kept at
    the viewport's size for ``None``; 256 colours)."""
    import io

    from PIL import Image as PILImage

    raw = PILImage.open(io.BytesIO(page.screenshot())).convert("RGB")
    scaled = raw if width is None or width == raw.width else \
        raw.resize((width, round(raw.height * width / raw.width)), PILImage.LANCZOS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    scaled.quantize(256, method=PILImage.Quantize.FASTOCTREE,
                    dither=PILImage.Dither.NONE).save(path, optimize=True)
    return path


# ---------------------------------------------------------------- the label-map editor
EDITOR_FACES = 12
EDITOR_APPROVED = 3
"""Editor studio: images 1-3 come with their exact (approved) maps, 4-12 have none, and with no
model their start maps are all background."""


@pytest.fixture(scope="module")
def editor_studio():
    """``(studio, url)``: a studio with a tiny random-weight SAM (``sam_model="tiny"``), users,
    :data:`EDITOR_FACES` demo faces of 256 x 256 (the first :data:`EDITOR_APPROVED` approved),
    no model and no worker (the first SAM click embeds the image in the web process)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); browser tests skipped")
    with tempfile.TemporaryDirectory(prefix="facet-e2e-editor-") as tmp:
        ckpt = write_tiny_checkpoint(Path(tmp) / "tiny_sam.pth")
        settings = Settings.resolve(data_dir=Path(tmp) / "data", env={})
        options = ServeOptions(sam_checkpoint=ckpt, sam_model="tiny", sam_builders=TINY_BUILDERS)
        studio = Studio.create(settings, options, None)
        add_users(studio)
        fill_demo(studio, EDITOR_FACES, size=DEMO_SIZE,
                  labelled_fraction=EDITOR_APPROVED / EDITOR_FACES)
        with LiveServer(build_app(studio)) as url:
            yield studio, url


def revisions(studio: Studio, image_id: int) -> list[tuple]:
    """Every revision row of an image, oldest first: ``(number, state, author, comment, map)``
    (``number`` is None for a draft kept off the main line after a conflict)."""
    with studio.session() as session:
        return [(r.revision, r.state.value, r.author.name if r.author else None, r.comment,
                 decode_label_png(r.label_png, studio.labels.num_classes))
                for r in session.query(Revision).filter_by(image_id=image_id).order_by(Revision.id)]


def stored_map(studio: Studio, image_id: int, shape: tuple[int, int]) -> np.ndarray:
    """The newest main-line revision's label map, or all background when there is none (what
    the editor starts from without a model)."""
    main = [r for r in revisions(studio, image_id) if r[0] is not None]
    return max(main, key=lambda r: r[0])[4] if main else np.zeros(shape, np.uint8)


def brush_footprint(events: list[tuple], size: float, shape: tuple[int, int]) -> np.ndarray:
    """Pixels a brush stroke touches: labelmap.js's ``line``/``disc`` replayed on the recorded
    label points (down: a dot, each move: a segment from the previous point; up: nothing)."""
    h, w = shape
    mask = np.zeros(shape, bool)
    r = max(size / 2, 0.5)
    r2 = r * r

    def disc(cx: float, cy: float) -> None:
        for y in range(max(0, math.floor(cy - r)), min(h - 1, math.ceil(cy + r)) + 1):
            dy = y + 0.5 - cy
            for x in range(max(0, math.floor(cx - r)), min(w - 1, math.ceil(cx + r)) + 1):
                dx = x + 0.5 - cx
                if dx * dx + dy * dy <= r2:
                    mask[y, x] = True

    def line(ax: float, ay: float, bx: float, by: float) -> None:
        steps = max(1, math.ceil(math.hypot(bx - ax, by - ay) / max(size / 4, 0.5)))
        for s in range(steps + 1):
            t = s / steps
            disc(ax + (bx - ax) * t, ay + (by - ay) * t)

    last = None
    for kind, x, y in events:
        if kind == "pointerdown":
            line(x, y, x, y)
            last = (x, y)
        elif kind == "pointermove" and last is not None:
            line(last[0], last[1], x, y)
            last = (x, y)
        elif kind == "pointerup":
            last = None
    return mask


def polygon_mask(points: list[tuple[float, float]], shape: tuple[int, int]) -> np.ndarray:
    """labelmap.js's ``polygonMask``: pixel centres inside the polygon (even-odd scan lines)."""
    h, w = shape
    mask = np.zeros(shape, bool)
    if len(points) < 3:
        return mask
    ys = [p[1] for p in points]
    for y in range(max(0, math.floor(min(ys))), min(h - 1, math.ceil(max(ys))) + 1):
        cy = y + 0.5
        xs = []
        for k, (ax, ay) in enumerate(points):
            bx, by = points[(k + 1) % len(points)]
            if (ay <= cy < by) or (by <= cy < ay):
                xs.append(ax + ((cy - ay) / (by - ay)) * (bx - ax))
        xs.sort()
        for k in range(0, len(xs) - 1, 2):
            lo, hi = max(0, math.ceil(xs[k] - 0.5)), min(w - 1, math.floor(xs[k + 1] - 0.5))
            if hi >= lo:
                mask[y, lo:hi + 1] = True
    return mask


def flood_region(labels: np.ndarray, x: int, y: int, diagonal: bool = False) -> np.ndarray:
    """The 4-connected (``diagonal``: 8-connected) region of ``labels[y, x]``'s class that
    contains (x, y) (plain BFS)."""
    h, w = labels.shape
    cls = labels[y, x]
    steps = [(0, -1), (0, 1), (-1, 0), (1, 0)]
    if diagonal:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    seen = np.zeros(labels.shape, bool)
    seen[y, x] = True
    queue = deque([(y, x)])
    while queue:
        py, px = queue.popleft()
        for ny, nx in ((py + dy, px + dx) for dy, dx in steps):
            if 0 <= ny < h and 0 <= nx < w and not seen[ny, nx] and labels[ny, nx] == cls:
                seen[ny, nx] = True
                queue.append((ny, nx))
    return seen


def nearest_resize(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A mask at the image size → the label size, nearest pixel centre (bool)."""
    mh, mw = mask.shape
    h, w = shape
    ys = np.minimum(mh - 1, ((np.arange(h) + 0.5) * mh / h).astype(int))
    xs = np.minimum(mw - 1, ((np.arange(w) + 0.5) * mw / w).astype(int))
    return mask[ys][:, xs] > 0


_RECORDER = """() => {
  const ed = window.facetEditor, canvas = ed.view.canvas;
  if (!window.__facetEvents) {
    window.__facetEvents = [];
    for (const type of ["pointerdown", "pointermove", "pointerup"])
      canvas.addEventListener(type, (ev) => {
        if (type === "pointermove" && !ev.buttons) return;
        const [x, y] = ed.labelPoint(ev);
        window.__facetEvents.push([type, x, y]);
      });
  }
  window.__facetEvents.length = 0;
}"""


class Editor:
    """Drives the editor of one logged-in page; waits on its data attributes, never on sleeps."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda err: self.errors.append(f"page error: {err}"))
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}")
                if msg.type == "error" else None)
        page.on("dialog", lambda dialog: dialog.accept())   # "leave the page?" on a reload

    # -------------------------------------------------------------- state
    def wait_mounted(self) -> None:
        self.page.wait_for_function(
            "() => window.facetEditor && document.querySelector('#facet-editor-root #facet-editor')")

    @property
    def data(self) -> dict:
        return self.page.evaluate("() => ({...document.getElementById('facet-editor').dataset})")

    def wait_open(self, image_id: int | None = None) -> int:
        """Until an image (``image_id``, or any) is open and the editor is not busy; its id."""
        want = "" if image_id is None else str(image_id)
        self.page.wait_for_function(
            """(want) => { const d = document.getElementById('facet-editor').dataset;
                           return d.busy === 'false' && d.image !== '' && (!want || d.image === want); }""",
            arg=want)
        self.settle()
        return int(self.data["image"])

    def settle(self) -> None:
        """Two animation frames: layout (the stage's fit to the window) and drawing are done."""
        self.page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def open(self, image_id: int) -> np.ndarray:
        """Open an image by id (the Open box); returns its start map (the page's)."""
        self.page.fill(".fe-jump", str(image_id))
        self.page.click('[data-act="jump"]')
        self.wait_open(image_id)
        self.page.evaluate("() => document.activeElement && document.activeElement.blur()")
        return self.start()

    @property
    def shape(self) -> tuple[int, int]:
        w, h = self.page.evaluate("() => [facetEditor.map.width, facetEditor.map.height]")
        return h, w

    def _array(self, expr: str) -> np.ndarray:
        values = self.page.evaluate(f"() => Array.from({expr})")
        return np.array(values, np.uint8).reshape(self.shape)

    def pixels(self) -> np.ndarray:
        return self._array("facetEditor.map.pixels")

    def start(self) -> np.ndarray:
        return self._array("facetEditor.map.start")

    def status(self) -> tuple[str, str]:
        s = self.page.locator(".fe-status")
        return s.get_attribute("data-kind") or "", s.inner_text()

    # -------------------------------------------------------------- input
    def press(self, key: str) -> None:
        self.page.keyboard.press(key)

    def point(self, x: float, y: float) -> tuple[float, float]:
        """Page coordinates of label point (x, y) (pixel (x, y)'s centre is (x + 0.5, y + 0.5))."""
        p = self.page.evaluate("([x, y]) => facetEditor.screenPoint(x - 0.5, y - 0.5)", [x, y])
        return p["x"], p["y"]

    def record(self) -> None:
        """Start recording the label points of pointer events on the canvas (clears the log)."""
        self.page.evaluate(_RECORDER)

    def events(self) -> list[tuple[str, float, float]]:
        return [tuple(e) for e in self.page.evaluate("() => window.__facetEvents.slice()")]

    def stroke(self, points: list[tuple[float, float]], steps: int = 6) -> None:
        """Press at the first label point, drag through the others, release."""
        self.drag([self.point(*p) for p in points], steps)

    def drag(self, on_screen: list[tuple[float, float]], steps: int = 6) -> None:
        """Press at the first page point, drag through the others (``steps`` moves each), release."""
        mouse = self.page.mouse
        mouse.move(*on_screen[0])
        mouse.down()
        for p in on_screen[1:]:
            mouse.move(*p, steps=steps)
        mouse.up()

    def click_at(self, x: float, y: float) -> None:
        self.page.mouse.click(*self.point(x, y))

    def set_range(self, selector: str, value: float) -> None:
        """Move a range input (brush size, opacity) the way a drag does: value, then "input"."""
        self.page.evaluate("""([sel, v]) => { const r = document.querySelector(sel); r.value = v;
                              r.dispatchEvent(new Event('input', {bubbles: true})); }""", [selector, value])

    def act(self, name: str) -> None:
        self.page.click(f'[data-act="{name}"]')

    def save(self, how: str = "button") -> int:
        """Save a draft (the button or Ctrl+S), wait for the answer; the revision number."""
        self.page.evaluate("() => { document.querySelector('.fe-status').dataset.kind = 'pending'; }")
        if how == "button":
            self.act("save")
        else:
            self.press("Control+s")
        self.page.wait_for_function(
            """() => document.querySelector('.fe-status').dataset.kind !== 'pending'
                     && document.getElementById('facet-editor').dataset.busy === 'false'""")
        kind, text = self.status()
        assert kind == "ok" and text.startswith("Saved draft revision"), (kind, text)
        assert self.data["dirty"] == "false"
        title = self.page.inner_text(".fe-title")
        assert f"starting from revision {self.data['base']} (draft)" in title, title
        assert "not saved yet" not in title, title
        return int(self.data["base"])

    def check_clean(self) -> None:
        """No page errors, console errors, error statuses or Gradio error toasts."""
        assert not self.errors, self.errors
        assert self.status()[0] != "error", self.status()
        assert self.page.locator(".toast-body").count() == 0, self.page.locator(".toast-body").all_inner_texts()
