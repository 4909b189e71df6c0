"""Browser tests: a live studio on 127.0.0.1 with real users, demo faces, a drafted image and a
briefly trained model; Debian's chromium driven by Playwright (never `playwright install`)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from core.imageio import encode_label_png
from db.images import read_image
from db.jobs import add_point, create_job, finish, mark_running
from db.models import Image, Origin, RevisionState
from db.revisions import save_revision
from db.settings import Settings
from db.users import get_user_by_name
from db.versions import activate, add_version
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
    metrics = evaluate(Predictor(result.model, result.config, result.labels),
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


def login(browser, url: str, name: str):
    """A new page logged in as ``name``, on the studio."""
    page = browser.new_page(viewport={"width": 1280, "height": 1300})
    page.set_default_timeout(60_000)
    page.goto(url + "/")
    page.locator("input[type=text]").first.fill(name)
    page.locator("input[type=password]").first.fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#facet-whoami :text('" + name + "')")
    return page


def screenshot(page, name: str, width: int = 1100) -> Path:
    """Save a small PNG of the viewport under docs/screenshots/ (scaled, 256 colours)."""
    import io

    from PIL import Image as PILImage

    raw = PILImage.open(io.BytesIO(page.screenshot())).convert("RGB")
    scaled = raw.resize((width, round(raw.height * width / raw.width)), PILImage.LANCZOS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    scaled.quantize(256, method=PILImage.Quantize.FASTOCTREE,
                    dither=PILImage.Dither.NONE).save(path, optimize=True)
    return path
