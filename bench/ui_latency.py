"""What the annotator waits for in the browser-side label-map editor, in real Chromium.

    python bench/ui_latency.py [--runs 15] [--warmup 2] [--demo 40] [--doc docs/UI_LATENCY.md]
                               [--sam-checkpoint sam_vit_b_01ec64.pth --sam-model vit_b]

Starts its own studio, ``python app.py serve --demo N --no-worker --no-prior`` on a free
127.0.0.1 port with a fresh data dir in a temporary folder (open mode: no users, no login; the
demo's 512 x 512 synthetic faces, half of them approved; no worker and no face prior, so no model
and every start map is empty: the times are the editor's and the API's, not a parser's),
then drives Debian's ``/usr/bin/chromium`` with Playwright (never ``playwright install``) and
times, inside the page with ``performance.now()``, over ``--runs`` repetitions after
``--warmup`` discarded ones:

* **next image → editable canvas**: from the click to ``#facet-editor``'s ``data-image``
  naming another image with ``data-busy="false"`` (the queue request, the start map, the photo
  and the first draw; the photo is new every time). The bench advances with "Skip", which
  makes the same ``POST /api/queue/next`` as "Next image ▶" and the same ``show()``;
* **class key → stroke**: the class key pressed, then the mouse pressed on the canvas at once
  (no wait at all); the time from the keydown to the pointerdown handler having painted, and
  whether that first stroke pixel has the new class (it must, every time);
* **save click → confirmation**: after a small stroke, from the Save click to the status line
  turning ``data-kind="ok"`` (PNG encoding in the page, the PUT, the server's revision);
* **opacity change → redraw**: the range input set (value + ``input`` event) to the first
  animation frame after the one in which the editor drew with the new opacity;
* **class visibility → redraw**: a class's "show" box clicked, the same way (the overlay is
  recoloured as a whole, then drawn);
* **SAM click → preview**: a click with the SAM tool to ``data-sam-preview="1"`` (after a warm
  up click that embeds the image). Needs a checkpoint ``serve`` can load: the bench first tries
  a tiny random-weight SAM (tests/model/tiny_sam.py) through ``serve --sam-checkpoint`` and
  reports why the command line refuses it; pass an official checkpoint to measure the row.

Prints a Markdown table (median, p90, target, pass: p90 within the target; the class key: the
new class in every run) and, with ``--doc``, writes it with the method and the command to that
file.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 768}


# ---------------------------------------------------------------- results
@dataclass
class Row:
    action: str
    target: str
    limit_ms: float | None              # pass: p90 <= limit (None: see ``ok``)
    samples: list[float] = field(default_factory=list)
    ok: bool | None = None              # for rows judged otherwise (the class key)
    note: str = ""
    skipped: str = ""

    def median(self) -> float:
        return statistics.median(self.samples)

    def p90(self) -> float:
        s = sorted(self.samples)
        return s[max(0, math.ceil(0.9 * len(s)) - 1)]   # nearest rank

    def passed(self) -> bool:
        if self.ok is not None:
            return self.ok
        return self.p90() <= self.limit_ms

    def cells(self) -> list[str]:
        if self.skipped:
            return [self.action, "–", "–", self.target, f"skipped: {self.skipped}"]
        return [self.action, f"{self.median():.1f}", f"{self.p90():.1f}", self.target,
                ("yes" if self.passed() else "**no**") + (f" ({self.note})" if self.note else "")]


def table(rows: list[Row]) -> str:
    lines = ["| action | median ms | p90 ms | target | pass |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- the studio process
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(port: int, data_dir: Path, demo: int, sam: tuple[Path, str] | None) -> list[str]:
    cmd = [sys.executable, "app.py", "serve", "--demo", str(demo), "--no-worker", "--no-prior",
           "--port", str(port), "--data-dir", str(data_dir)]
    if sam is not None:
        cmd += ["--sam-checkpoint", str(sam[0]), "--sam-model", sam[1]]
    return cmd


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACET_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def try_tiny_sam(tmp: Path) -> tuple[str, str | None]:
    """Ask ``serve`` to load a tiny random-weight SAM: ``(why it refuses, "")`` or
    ``("", the --sam-model that loaded it)``."""
    from tests.model.tiny_sam import write_tiny_checkpoint

    ckpt = write_tiny_checkpoint(tmp / "tiny_sam.pth")
    reasons = []
    for model in ("tiny", "vit_b"):
        port = free_port()
        probe = StudioProcess(serve_command(port, tmp / f"probe-{model}", 1, (ckpt, model)),
                              tmp / f"probe-{model}.log", port)
        try:
            probe.wait_ready(timeout=180)
            return "", model
        except RuntimeError:
            lines = [line for line in probe.log.read_text().splitlines() if line.strip()]
            last = (lines[-1] if lines else "no output").replace(f"{tmp}{os.sep}", "")
            reasons.append(f"`--sam-model {model}` → {shorten(last)}")
        finally:
            probe.stop()
    return "; ".join(reasons), None


def random_vit_b(path: Path) -> Path:
    """The official vit_b architecture with random weights, saved as a state dict (timing only)."""
    import torch
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    torch.save(sam_model_registry["vit_b"](checkpoint=None).state_dict(), path)
    return path


def shorten(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class StudioProcess:
    """``python app.py serve`` in the background until :meth:`stop`; its log in ``log``."""

    def __init__(self, cmd: list[str], log: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=environment(), stdout=log.open("w"),
                                     stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited ({self.proc.returncode}):\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=2) as answer:
                    return json.load(answer)
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"serve did not answer within {timeout:.0f} s:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------- in-page probes
STATE = "() => ({...document.getElementById('facet-editor').dataset})"

OPEN_NEXT = """async (act) => {
  const el = document.getElementById('facet-editor'), before = el.dataset.image;
  const ready = new Promise((res) => { const mo = new MutationObserver(() => {
    if (el.dataset.busy === 'false' && el.dataset.image !== before) { mo.disconnect(); res(performance.now()); } });
    mo.observe(el, {attributes: true}); });
  const t0 = performance.now();
  el.querySelector(`[data-act="${act}"]`).click();
  const t1 = await ready;
  await new Promise((r) => requestAnimationFrame(r));
  return {ready: t1 - t0, drawn: performance.now() - t0, image: el.dataset.image};
}"""

KEY_PROBE = """() => {
  const ed = window.facetEditor;
  window.__lat = {key: 0, name: '', rows: []};
  window.addEventListener('keydown', (ev) => { window.__lat.key = ev.timeStamp; window.__lat.name = ev.key; }, true);
  ed.view.canvas.addEventListener('pointerdown', (ev) => {
    const [x, y] = ed.labelPoint(ev), i = Math.floor(y) * ed.map.width + Math.floor(x);
    window.__lat.rows.push({ms: performance.now() - window.__lat.key, got: ed.map.pixels[i],
                            want: ed.keyToClass.get(window.__lat.name)});
  });
}"""

SAVE = """async () => {
  const el = document.getElementById('facet-editor'), st = el.querySelector('.fe-status');
  st.dataset.kind = 'pending';
  const done = new Promise((res) => { const mo = new MutationObserver(() => {
    if (st.dataset.kind !== 'pending') { mo.disconnect(); res([performance.now(), st.dataset.kind, st.textContent]); } });
    mo.observe(st, {attributes: true}); });
  const t0 = performance.now();
  el.querySelector('[data-act="save"]').click();
  const [t1, kind, text] = await done;
  return {ms: t1 - t0, kind, text};
}"""

REDRAW = """async ([what, value]) => {
  const ed = window.facetEditor, view = ed.view;
  let drawn = 0;
  view.draw = function () { Object.getPrototypeOf(view).draw.call(view); drawn = performance.now(); };
  const t0 = performance.now();
  if (what === 'opacity') {
    const r = ed.el.querySelector('.fe-opacity');
    r.value = value; r.dispatchEvent(new Event('input', {bubbles: true}));
  } else {
    ed.el.querySelector(`.fe-class[data-id="${value}"] .fe-eye`).click();
  }
  await new Promise((r) => requestAnimationFrame(r));   // runs after the editor's draw, same frame
  const tDraw = drawn;
  await new Promise((r) => requestAnimationFrame(r));   // the next frame: the drawn one is shown
  const t1 = performance.now();
  delete view.draw;
  return {drawn: tDraw ? tDraw - t0 : null, next: t1 - t0};
}"""

SAM_ARM = """() => {
  const el = document.getElementById('facet-editor'), ed = window.facetEditor;
  window.__sam = new Promise((res) => {
    let t0 = 0;
    ed.view.canvas.addEventListener('pointerdown', (ev) => { t0 = ev.timeStamp; }, {once: true});
    const mo = new MutationObserver(() => {
      if (el.dataset.samPreview === '1') { mo.disconnect();
        const t1 = performance.now(); requestAnimationFrame(() => res({preview: t1 - t0, drawn: performance.now() - t0})); } });
    mo.observe(el, {attributes: true});
  });
}"""


def wait_idle(page) -> None:
    page.wait_for_function("() => document.getElementById('facet-editor').dataset.busy === 'false'")


def screen_point(page, x: float, y: float) -> tuple[float, float]:
    p = page.evaluate("([x, y]) => facetEditor.screenPoint(x, y)", [x, y])
    return p["x"], p["y"]


def measure(page, args, sam_reason: str) -> list[Row]:
    total = args.warmup + args.runs
    rows = []

    # Next image: Skip through the queue (fresh photos and maps every time).
    row = Row("next image → editable canvas", "≤ 700 ms", 700)
    drawn = []
    page.evaluate("() => document.querySelector('#facet-editor [data-act=\"next\"]').click()")
    page.wait_for_function("() => { const d = document.getElementById('facet-editor').dataset; "
                           "return d.busy === 'false' && d.image !== ''; }")
    for k in range(total):
        r = page.evaluate(OPEN_NEXT, "skip")
        if k >= args.warmup:
            row.samples.append(r["ready"])
            drawn.append(r["drawn"])
    row.note = f"first frame drawn: median {statistics.median(drawn):.0f} ms"
    rows.append(row)
    w, h = page.evaluate("() => [facetEditor.map.width, facetEditor.map.height]")

    # Class key, then the stroke at once.
    row = Row("class key → stroke in that class", "new class at 0 ms wait", None)
    page.evaluate(KEY_PROBE)
    keys = ["h", "u", "2", "t", "7", "n", "l", "4"]
    for k in range(total):
        x, y = w * (0.15 + 0.7 * ((k % 6) / 5)), h * (0.1 + 0.8 * (k // 6) / max(1, total // 6))
        page.mouse.move(*screen_point(page, x, y))
        page.keyboard.press(keys[k % len(keys)])
        page.mouse.down()                                   # no wait after the key
        page.mouse.move(*screen_point(page, x + 6, y), steps=2)
        page.mouse.up()
    results = page.evaluate("() => window.__lat.rows")[args.warmup:]
    row.samples = [r["ms"] for r in results]
    right = sum(r["got"] == r["want"] for r in results)
    row.ok = right == len(results) == args.runs
    row.note = f"{right}/{len(results)} strokes started in the new class"
    rows.append(row)

    # Save: a small stroke, then Save.
    row = Row("save click → confirmation", "≤ 400 ms", 400)
    for k in range(total):
        x, y = w * (0.2 + 0.6 * k / total), h * 0.5
        page.mouse.move(*screen_point(page, x, y))
        page.mouse.down()
        page.mouse.move(*screen_point(page, x, y + 10), steps=2)
        page.mouse.up()
        r = page.evaluate(SAVE)
        if r["kind"] != "ok":
            raise RuntimeError(f"save failed: {r}")
        wait_idle(page)
        if k >= args.warmup:
            row.samples.append(r["ms"])
    rows.append(row)

    # Opacity and visibility: redraws only.
    for action, what, values in (("opacity change → redraw", "opacity", [30, 70]),
                                 ("class visibility toggle → redraw", "eye", [13, 13])):
        row = Row(action, "≤ 50 ms", 50)
        first = []
        for k in range(total):
            r = page.evaluate(REDRAW, [what, values[k % 2]])
            if r["drawn"] is None:
                raise RuntimeError(f"{action}: the editor did not draw")
            if k >= args.warmup:
                row.samples.append(r["next"])
                first.append(r["drawn"])
        row.note = f"drawn after median {statistics.median(first):.0f} ms"
        rows.append(row)

    # SAM.
    row = Row("SAM click → preview", "–", None)
    if sam_reason:
        row.skipped = sam_reason
    else:
        page.keyboard.press("s")
        times = []
        for k in range(total + 1):                  # +1: the first click embeds the image
            page.evaluate(SAM_ARM)
            page.mouse.click(*screen_point(page, w * (0.3 + 0.4 * (k % 5) / 4), h * 0.45))
            r = page.evaluate("() => window.__sam")
            page.keyboard.press("Escape")
            if k == 0:
                first = r["preview"]
            elif k > args.warmup:
                times.append(r["preview"])
        row.samples = times
        row.ok = True
        row.note = f"no target; the first click, embedding the image, took {first / 1000:.1f} s"
    rows.append(row)
    return rows


# ---------------------------------------------------------------- the document
def document(rows: list[Row], args, command: str, health: dict, sam_reason: str, refused: str,
             started: str, browser_version: str) -> str:
    cpu = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    tiny = (f"The bench wrote a tiny random-weight SAM checkpoint (tests/model/tiny_sam.py, the "
            f"one the webapp tests load through `ServeOptions(sam_builders=...)`) and asked "
            f"`python app.py serve --sam-checkpoint tiny_sam.pth` to load it: "
            f"{sam_reason or refused}. The command line only builds the official architectures "
            f"(`--sam-model vit_b|vit_l|vit_h`; the tiny builders are not a command-line option).")
    if sam_reason:
        sam_text = (f"**SAM row skipped.** {tiny} The row needs an official checkpoint "
                    f"(`--sam-checkpoint sam_vit_b_01ec64.pth --sam-model vit_b`) or "
                    f"`--sam-random-vit-b`.")
    elif refused:
        sam_text = (f"**SAM row: random-weight vit_b.** {tiny} With `--sam-random-vit-b` the bench "
                    f"then wrote the official vit_b architecture with random weights (seed 0) to "
                    f"the temp dir and served it with `--sam-checkpoint random_vit_b.pth "
                    f"--sam-model vit_b` (`{health.get('sam')}`): a click costs what it costs with "
                    f"the official weights (prompt encoder + mask decoder on the cached "
                    f"embedding), though the masks mean nothing. The first click on the image, "
                    f"which computes its embedding in the web process (no worker), is not counted.")
    else:
        sam_text = (f"SAM: `{health.get('sam')}`; the first click on the image, which computes its "
                    f"embedding in the web process (no worker), is not counted.")
    machine = (f"{cpu} CPU cores ({platform.machine()}, {platform.system()} {platform.release()}), "
               f"load average {'/'.join(f'{v:.1f}' for v in load) if load else 'n/a'} at the end "
               f"(the machine is shared); the studio process and Chromium share the cores, no "
               f"GPU. Timings move with the load: compare numbers from one machine only.")
    return f"""# UI latency of the label-map editor

What an annotator waits for in the Annotate tab's browser-side editor (`webapp/static/`),
measured in real Chromium by `bench/ui_latency.py`. Regenerate this file with:

    {command}

{started}: {args.runs} runs per action after {args.warmup} discarded warm-up runs;
median and p90 (nearest rank) in milliseconds, timed inside the page with `performance.now()`;
**pass** means p90 within the target (the class key: the stroke started in the new class in
every run).

{table(rows)}

## Method

The script starts its own studio — `python app.py serve --demo {args.demo} --no-worker --no-prior`
on a free 127.0.0.1 port with a fresh data dir in a temporary folder (open mode: no users, no
login; the demo's 512 × 512 synthetic faces, half of them approved; no worker and no face prior,
hence no model and an empty start map, so that no parser runs while an image opens: with a
model and no worker the first open of each image would also time its pre-annotation) — and
drives `/usr/bin/chromium` ({browser_version}, headless, software rendering) through Playwright
at {VIEWPORT['width']} × {VIEWPORT['height']}.

* **next image → editable canvas**: from the click to `#facet-editor` showing another image
  (`data-image`) with `data-busy="false"`: the `POST /api/queue/next` answer (start map as a
  base64 PNG, history), decoding the map, loading and decoding the photo (a new one each time),
  building the overlay. The note gives the time to the first animation frame after it (the
  drawn canvas). The bench advances with "Skip"; "Next image ▶" sends the same request (the
  image on screen released and left out) and runs the same `show()`.
* **class key → stroke in that class**: the mouse rests on the canvas; Playwright presses a
  class key and then at once presses the mouse button (no wait, no redraw awaited). A capturing
  `keydown` listener on `window` notes the key's `timeStamp`; a `pointerdown` listener on the
  canvas, registered after the editor's, reads the label map under the pointer once the editor
  has painted. The time is key → first stroke pixel in the map (it includes Playwright's round
  trips between the two events); the check is that this pixel has the class of the key.
* **save click → confirmation**: a small brush stroke, then the Save button clicked in the page;
  the time until the status line turns `data-kind="ok"` ("Saved draft revision N"): PNG encoding
  of the 512 × 512 map in the page (the browser's deflate stream), `PUT
  /api/images/{{id}}/annotation`, the server's checks and the revision written to SQLite.
* **opacity change → redraw**: the opacity range set (value and an `input` event, as a drag
  does); the time until the first animation frame after the frame in which the editor drew with
  the new opacity (the note: until that draw). Alternates 30 % and 70 %.
* **class visibility toggle → redraw**: the "show" box of hair clicked (off, on, …): the whole
  512 × 512 overlay is recoloured and drawn; timed the same way.
* **SAM click → preview**: a click with the SAM tool until `data-sam-preview="1"`, from the
  click's `pointerdown` `timeStamp`.

{textwrap.fill(sam_text, 96)}

## Machine

{textwrap.fill(machine, 96)}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--demo", type=int, default=40,
                        help="demo faces (half need work: keep above 2 x (runs + warmup + 1))")
    parser.add_argument("--doc", type=Path, default=None, help="also write the table and method here")
    parser.add_argument("--sam-checkpoint", type=Path, default=None,
                        help="an official SAM checkpoint for the SAM row (default: try a tiny one)")
    parser.add_argument("--sam-model", default="vit_b")
    parser.add_argument("--sam-random-vit-b", action="store_true",
                        help="when the tiny SAM is refused, time the SAM row with a random-weight "
                             "vit_b checkpoint written to the temp dir (official size, ~375 MB: "
                             "timing only, its masks mean nothing)")
    args = parser.parse_args()
    if args.demo - args.demo // 2 < args.runs + args.warmup + 2:
        parser.error("--demo too small for that many runs: each 'next image' run needs a fresh image")
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is missing (apt-get install -y chromium)", file=sys.stderr)
        return 2
    command = "python bench/ui_latency.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="facet-ui-latency-") as tmp_name:
        tmp = Path(tmp_name)
        refused = ""
        if args.sam_checkpoint is not None:
            sam, sam_reason = (args.sam_checkpoint.resolve(), args.sam_model), ""
        else:
            sam_reason, model = try_tiny_sam(tmp)
            sam = (tmp / "tiny_sam.pth", model) if model else None
            if sam is None and args.sam_random_vit_b:
                refused, sam_reason = sam_reason, ""
                sam = (random_vit_b(tmp / "random_vit_b.pth"), "vit_b")
        port = free_port()
        studio = StudioProcess(serve_command(port, tmp / "data", args.demo, sam), tmp / "serve.log", port)
        try:
            t0 = time.monotonic()
            health = studio.wait_ready()
            print(f"studio ready in {time.monotonic() - t0:.1f} s at {studio.url} (SAM: {health.get('sam')})",
                  file=sys.stderr)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(60_000)
                errors: list[str] = []
                page.on("pageerror", lambda err: errors.append(str(err)))
                page.goto(studio.url + "/")
                page.wait_for_function("() => window.facetEditor && document.querySelector('#facet-editor-root #facet-editor')")
                rows = measure(page, args, sam_reason)
                version = browser.version
                browser.close()
            if errors:
                print("page errors: " + "; ".join(errors), file=sys.stderr)
        finally:
            studio.stop()
    print(table(rows))
    if args.doc is not None:
        args.doc.write_text(document(rows, args, command, health, sam_reason, refused, started,
                                      f"Chromium {version}"))
        print(f"wrote {args.doc}", file=sys.stderr)
    return 0 if all(r.skipped or r.passed() for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
