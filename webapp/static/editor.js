// Facet's label-map editor: the label map lives here, one class id per pixel; painting never
// waits on the server, which is asked only to load, save and run SAM. Mounted into the
// Annotate tab's placeholder (#facet-editor-root) and kept there across re-renders.
// The canvas tools live in tools.js, the keyboard in keys.js (mixed into Editor below).
import { ApiError, SAVE_TRIES, api, startPixels } from "./api.js";
import { Autosave } from "./autosave.js";
import { keyMethods } from "./keys.js";
import { LabelMap, Protect } from "./labelmap.js";
import { buildLayout, esc } from "./layout.js";
import { emptySam, toolMethods } from "./tools.js";
import { View } from "./view.js";

const SUBMIT_GRACE_MS = 700;   // a Submit click this soon after an image appears is the tail of a double click

function when(iso) { return iso ? iso.replace("T", " ").slice(0, 16) : ""; }

class Editor {
  constructor(config) {
    this.config = config;
    this.el = buildLayout(config);
    this.q = (sel) => this.el.querySelector(sel);
    this.view = new View(this.q(".fe-canvas"), config.classes.map((c) => c.color));
    this.autosave = new Autosave(config.user);
    this.keyToClass = new Map(config.classes.filter((c) => c.key).map((c) => [c.key, c.id]));
    this.image = null; this.map = null; this.base = null; this.saved = null;
    this.dirty = false; this.busy = false; this.leaveArmed = false; this.shownAt = 0;
    this.skipped = [];
    this.tool = "brush"; this.cls = 1; this.size = 12; this.eraseTo = 0;
    this.protect = new Protect();
    this.drag = null; this.space = false;
    this.sam = emptySam();
    this.wire();
    this.selectTool("brush"); this.selectClass(1);
    this.samNote();
    this.offerKept();
    this.sync();
  }

  // ------------------------------------------------------------ status and state
  status(text, kind = "info") {
    const s = this.q(".fe-status");
    s.textContent = text; s.dataset.kind = kind;
  }

  /** Mirror the state in data attributes (tests and CSS read them) and the buttons. */
  sync() {
    const d = this.el.dataset;
    d.image = this.image ? this.image.id : ""; d.base = this.base ?? ""; d.dirty = this.dirty;
    d.busy = this.busy; d.tool = this.tool; d.cls = this.cls;
    for (const act of ["save", "submit", "undo", "redo"]) {
      const b = this.q(`[data-act="${act}"]`);
      b.disabled = !this.image || this.busy || (act === "undo" && !this.map.undoStack.length)
        || (act === "redo" && !this.map.redoStack.length) || (act !== "undo" && act !== "redo" && !this.config.can_annotate);
    }
    for (const act of ["next", "skip"]) this.q(`[data-act="${act}"]`).disabled = this.busy || !this.config.can_annotate;
    this.q('[data-act="save"]').textContent = this.dirty ? "Save draft •" : "Save draft";
  }

  selectTool(tool) {
    if (tool === "sam" && !this.config.sam) { this.status(this.config.sam_hint || "SAM is off.", "warn"); return; }
    this.cancelShape();
    this.tool = tool;
    for (const b of this.el.querySelectorAll(".fe-tool")) b.classList.toggle("fe-on", b.dataset.tool === tool);
    this.q(".fe-stage").dataset.tool = tool;
    this.sync();
  }

  selectClass(id) {
    this.cls = id;
    for (const row of this.el.querySelectorAll(".fe-class")) row.classList.toggle("fe-on", +row.dataset.id === id);
    if (this.sam.mask) this.view.setPreview(this.sam.mask, id);
    this.sync();
  }

  setSize(size) {
    this.size = Math.max(1, Math.min(80, Math.round(size)));
    this.q(".fe-size").value = this.size; this.q(".fe-size-out").textContent = this.size;
    if (this.view.cursor) { this.view.cursor.size = this.size; this.view.request(); }
  }

  setOpacity(percent) {
    const p = Math.max(0, Math.min(100, Math.round(percent)));
    this.q(".fe-opacity").value = p; this.q(".fe-opacity-out").textContent = p;
    this.view.opacity = p / 100; this.view.request();
  }

  setPhotoOnly(on) { this.view.photoOnly = on; this.q(".fe-photo-only").checked = on; this.view.request(); }
  setOutline(on) { this.view.outline = on; this.q(".fe-outline").checked = on; this.view.refreshAll(); }

  samNote() {
    const note = this.q(".fe-sam-note"), button = this.q('[data-tool="sam"]');
    if (!this.config.sam) {
      note.textContent = this.config.sam_hint || "SAM is off.";
      button.classList.add("fe-off");
    } else if (this.image) {
      note.textContent = this.image.sam_ready ? `SAM (${this.config.sam.model}) ready for this image.`
        : `SAM (${this.config.sam.model}): embedding this image in the background; the first click may wait for it.`;
    }
  }

  // ------------------------------------------------------------ opening images
  /** Two-step leave: the first try with unsaved edits warns, the second goes. */
  mayLeave() {
    this.finishStroke();
    if (!this.image || !this.dirty || this.leaveArmed) return true;
    this.leaveArmed = true;
    this.status(`Image #${this.image.id} has unsaved edits (kept in this browser too): Save first, or press again to leave them.`, "warn");
    return false;
  }

  async run(work) {
    if (this.busy) return;
    this.busy = true; this.sync();
    try { await work(); }
    catch (err) { this.status(err instanceof ApiError || err instanceof Error ? err.message : String(err), "error"); }
    finally { this.busy = false; this.sync(); }
  }

  async show(opened, message) {
    const [pixels, photo] = await Promise.all([startPixels(opened), this.loadPhoto(opened.image_url)]);
    this.image = opened;
    this.map = new LabelMap(opened.label_width, opened.label_height, pixels.slice(), pixels);
    this.saved = pixels.slice();
    this.base = opened.base_revision;
    this.dirty = false; this.leaveArmed = false;
    this.cancelShape();
    this.view.show(photo, this.map);
    this.shownAt = performance.now();
    this.renderInfo(); this.renderHistory(opened.history); this.samNote();
    this.status(message, "info");
    await this.offerKept(opened.id);
    this.sync();
  }

  loadPhoto(url) {
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    return img.decode().then(() => img, () => { throw new Error(`the photo ${url} could not be loaded`); });
  }

  /** Lease and open the next image; the one on screen (``leaving``) is released and not served
   *  again by this call. */
  next(leaving = null) {
    return this.run(async () => {
      const skip = leaving === null ? this.skipped : [...new Set([...this.skipped, leaving])];
      const opened = await api.next(skip, leaving);
      if (!opened) {
        const more = this.skipped.length ? " (some were skipped: reload the page to see them again)" : "";
        this.status(`Nothing left to annotate${more}.`, "info");
        return;
      }
      await this.show(opened, `Opened image #${opened.id} from the queue.`);
    });
  }

  onNext() { if (this.mayLeave()) this.next(this.image ? this.image.id : null); }

  onSkip() {
    if (!this.image) { this.status("Nothing to skip yet: press Next image.", "info"); return; }
    if (!this.mayLeave()) return;
    this.skipped.push(this.image.id);
    this.next(this.image.id);
  }

  onJump(text) {
    const raw = String(text ?? this.q(".fe-jump").value).trim().replace(/^#/, "");
    if (!/^\d+$/.test(raw) || +raw < 1) { this.status("Type an image id (a whole number ≥ 1) first.", "error"); return; }
    if (!this.mayLeave()) return;
    return this.run(async () => {
      const opened = await api.open(+raw);
      await this.show(opened, `Opened image #${opened.id}.`);
    });
  }

  renderInfo() {
    const o = this.image, start = o.start;
    let from;
    if (start.source === "revision") {
      const r = start.revision;
      from = `starting from revision ${r.revision} (${r.state}) by ${r.author}, ${when(r.created_at)} UTC`;
      if (r.state === "rejected" && r.comment) from += ` — reviewer said: “${r.comment}”`;
    } else if (start.source === "model") from = `starting from the pre-annotation of ${start.version.describe} (not saved yet)`;
    else from = "no model yet: the map starts empty (all background)";
    const held = o.held_until ? ` ⚠ reserved by another annotator until ${when(o.held_until)} UTC.` : "";
    this.q(".fe-title").innerHTML = `<b>Image #${o.id}</b> · ${esc(o.filename)} · ${esc(from)}.${esc(held)}`;
  }

  renderHistory(rows) {
    const body = this.q(".fe-history-body");
    if (!rows.length) { body.textContent = "No revisions yet."; return; }
    const current = this.base;
    body.innerHTML = `<table><tr><th>revision</th><th>state</th><th>origin</th><th>author</th><th>time (UTC)</th><th>comment</th><th></th></tr>${
      rows.slice().reverse().map((r) => `<tr><td>${r.revision ?? "kept draft"}</td><td>${esc(r.state)}</td><td>${esc(r.origin)}</td>
        <td>${esc(r.author)}</td><td>${when(r.created_at)}</td><td>${esc(r.comment || "")}</td><td>${
        r.revision !== null && r.revision !== current ? `<button type="button" class="fe-btn fe-small" data-restore="${r.revision}">Restore as new draft</button>` : ""}</td></tr>`).join("")}</table>`;
  }

  // ------------------------------------------------------------ saving
  /** Save the map on screen (a draft, or a submission followed by the next image). */
  save(state) {
    if (!this.image || this.busy || !this.config.can_annotate) return;
    if (state === "submitted" && performance.now() - this.shownAt < SUBMIT_GRACE_MS) return;
    this.finishStroke();
    return this.run(async () => {
      const id = this.image.id, pixels = this.map.pixels.slice(), base = this.base;
      let answer;
      const retrying = (err, waitS, next) => this.status(
        `Not saved yet: ${err.message} Trying again in ${waitS} s (try ${next} of ${SAVE_TRIES}); your edits are kept.`, "warn");
      try { answer = await api.save(id, pixels, this.map.width, this.map.height, base, state, retrying); }
      catch (err) {
        if (err.status !== 409) throw err;
        this.base = err.body.current_revision;
        this.status(`Not saved over revision ${err.body.current_revision}: someone else saved it while you worked. ` +
          "Your map is kept as a draft in the history (nothing is lost); save again to put yours on top, or reopen the image to start from theirs.", "warn");
        this.renderHistory(await api.revisions(id));
        return;
      }
      this.base = answer.revision; this.saved = pixels; this.updateDirty();
      if (!this.dirty) this.autosave.forget(id);
      if (state === "submitted") {
        const opened = await api.next(this.skipped, null);
        if (opened) await this.show(opened, `Submitted image #${id} as revision ${answer.revision}. Opened image #${opened.id}.`);
        else { this.status(`Submitted image #${id} as revision ${answer.revision}. Nothing left to annotate.`, "ok"); this.renderHistory(await api.revisions(id)); }
        return;
      }
      this.status(`Saved draft revision ${answer.revision} of image #${id}.`, "ok");
      if (this.image && this.image.id === id) {  // the line under the toolbar: no longer "not saved yet"
        this.image.start = { source: "revision", revision: { revision: answer.revision, state: "draft",
          author: this.config.user || "you", created_at: new Date().toISOString() } };
        this.renderInfo();
      }
      this.renderHistory(await api.revisions(id));
    });
  }

  restore(number) {
    if (!this.image || !this.mayLeave()) return;
    return this.run(async () => {
      const id = this.image.id;
      try {
        const answer = await api.restore(id, number, this.base);
        await this.show(await api.open(id), `Restored revision ${number} as new draft revision ${answer.revision}.`);
      } catch (err) {
        if (err.status !== 409) throw err;
        this.status(`Not restored: the image moved on meanwhile (${err.message}). Reopen it and try again.`, "warn");
      }
    });
  }

  // ------------------------------------------------------------ unsaved edits kept locally
  async offerKept(imageId = null) {
    const banner = this.q(".fe-banner");
    const kept = this.autosave.list().filter((e) => imageId === null ? !this.image || e.imageId !== this.image.id : e.imageId === imageId);
    if (!kept.length) { if (imageId !== null) banner.hidden = true; return; }
    const e = kept[0];
    const here = this.image && this.image.id === e.imageId;
    banner.innerHTML = `Unsaved edits of image #${e.imageId} from ${when(e.at)} UTC are kept in this browser.
      <button type="button" class="fe-btn fe-primary" data-kept="restore" data-id="${e.imageId}">${here ? "Restore them" : "Open and restore them"}</button>
      <button type="button" class="fe-btn" data-kept="discard" data-id="${e.imageId}">Discard</button>`;
    banner.hidden = false;
  }

  async restoreKept(imageId) {
    const kept = this.autosave.load(imageId);
    this.q(".fe-banner").hidden = true;
    if (!kept) return;
    if (!this.image || this.image.id !== imageId) {
      await this.run(async () => { await this.show(await api.open(imageId), `Opened image #${imageId}.`); });
      this.q(".fe-banner").hidden = true;
    }
    if (!this.image || this.image.id !== imageId) return;
    if (kept.width !== this.map.width || kept.height !== this.map.height) { this.status("The kept edits do not fit this image's size; dropped.", "error"); this.autosave.forget(imageId); return; }
    const box = this.map.replaceAll(kept.pixels);
    this.base = kept.base;   // a save then conflicts (and keeps both) if someone saved since
    this.afterEdit(box);
    this.status(`Restored the unsaved edits from ${when(kept.at)} UTC (not saved yet).`, "ok");
  }

  // ------------------------------------------------------------ editing
  updateDirty() {
    const a = this.map.pixels, b = this.saved;
    let same = a.length === b.length;
    for (let i = 0; same && i < a.length; i++) if (a[i] !== b[i]) same = false;
    this.dirty = !same;
  }

  afterEdit(box) {
    this.view.refresh(box);
    this.updateDirty();
    this.leaveArmed = false;
    if (this.dirty) this.autosave.schedule(this.image.id, this.map, this.base);
    else this.autosave.forget(this.image.id);
    this.sync();
  }

  /** End a stroke in progress as its own edit (before undo, redo, saving or leaving). */
  finishStroke() {
    if (this.drag && this.drag.kind === "stroke") { this.drag = null; this.afterEdit(this.map.commit()); }
  }

  undo() { if (this.map) { this.finishStroke(); this.cancelShape(); const box = this.map.undo(); if (box) this.afterEdit(box); } }
  redo() { if (this.map) { this.finishStroke(); const box = this.map.redo(); if (box) this.afterEdit(box); } }

  eraseValue() { return this.eraseTo === "start" ? "start" : 0; }

  // ------------------------------------------------------------ wiring
  wire() {
    const el = this.el, canvas = this.view.canvas;
    el.addEventListener("click", (ev) => {
      const t = ev.target.closest("button");
      if (!t) {
        const row = ev.target.closest(".fe-class");
        if (row && !ev.target.matches("input")) this.selectClass(+row.dataset.id);
        return;
      }
      if (t.dataset.tool) this.selectTool(t.dataset.tool);
      else if (t.dataset.restore) this.restore(+t.dataset.restore);
      else if (t.dataset.kept === "restore") this.restoreKept(+t.dataset.id);
      else if (t.dataset.kept === "discard") { this.autosave.forget(+t.dataset.id); this.q(".fe-banner").hidden = true; this.offerKept(); }
      else this.act(t.dataset.act);
    });
    el.addEventListener("change", (ev) => {
      const t = ev.target;
      if (t.matches(".fe-eye")) { const id = +t.closest(".fe-class").dataset.id; t.checked ? this.view.hidden.delete(id) : this.view.hidden.add(id); this.view.refreshAll(); }
      else if (t.matches(".fe-over")) this.readProtect();
      else if (t.matches(".fe-protect")) this.readProtect();
      else if (t.matches(".fe-erase-to")) this.eraseTo = t.value === "start" ? "start" : 0;
      else if (t.matches(".fe-outline")) this.setOutline(t.checked);
      else if (t.matches(".fe-photo-only")) this.setPhotoOnly(t.checked);
    });
    el.addEventListener("input", (ev) => {
      if (ev.target.matches(".fe-size")) this.setSize(+ev.target.value);
      else if (ev.target.matches(".fe-opacity")) this.setOpacity(+ev.target.value);
    });
    this.q(".fe-jump").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); this.onJump(); } });
    canvas.addEventListener("pointerdown", (ev) => this.onPointerDown(ev));
    canvas.addEventListener("pointermove", (ev) => this.onPointerMove(ev));
    canvas.addEventListener("pointerup", (ev) => this.onPointerUp(ev));
    canvas.addEventListener("pointerleave", () => { this.view.cursor = null; this.view.request(); });
    canvas.addEventListener("dblclick", () => { if (this.view.polygon) this.closePolygon(); });
    canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
    canvas.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const r = canvas.getBoundingClientRect();
      this.view.zoomAt(ev.clientX - r.left, ev.clientY - r.top, Math.exp(-ev.deltaY * 0.0015));
    }, { passive: false });
    document.addEventListener("keydown", (ev) => this.onKey(ev), true);
    document.addEventListener("keyup", (ev) => { if (ev.key === " ") this.space = false; }, true);
    window.addEventListener("beforeunload", (ev) => {
      this.autosave.flush();
      if (this.dirty) { ev.preventDefault(); ev.returnValue = ""; }
    });
    window.addEventListener("pagehide", () => this.autosave.flush());
    new ResizeObserver(() => this.fitStage()).observe(document.body);
    window.addEventListener("resize", () => this.fitStage());
  }

  readProtect() {
    const mode = this.q(".fe-protect").value;
    const classes = new Set([...this.el.querySelectorAll(".fe-class")].filter((r) => r.querySelector(".fe-over").checked).map((r) => +r.dataset.id));
    this.protect = new Protect(mode, classes);
    this.el.dataset.protect = mode;
    if (mode === "classes" && !classes.size) this.status("Paint over ticked classes only: tick the classes (column “over”) that painting may replace.", "info");
  }

  /** The canvas fills the window's height below its top (Save/Submit stay above the fold). */
  fitStage() {
    const stage = this.q(".fe-stage");
    if (!stage.offsetParent) return;
    const top = stage.getBoundingClientRect().top + window.scrollY;
    const height = Math.max(320, window.innerHeight - top - 48);
    if (Math.abs(stage.clientHeight - height) > 2) {
      stage.style.height = `${height}px`;
      this.q(".fe-palette").style.maxHeight = `${height}px`;
      if (this.map && this.view.zoom && performance.now() - this.shownAt < 1500) this.view.fit();
    }
    this.view.request();
  }

  act(name) {
    const acts = {
      next: () => this.onNext(), skip: () => this.onSkip(), jump: () => this.onJump(),
      save: () => this.save("draft"), submit: () => this.save("submitted"),
      undo: () => this.undo(), redo: () => this.redo(), fit: () => this.view.fit(),
      "sam-cycle": () => this.cycleSam(),
      help: () => { const h = this.q(".fe-help"); h.hidden = !h.hidden; },
      "show-all": () => { for (const b of this.el.querySelectorAll(".fe-eye")) b.checked = true; this.view.hidden.clear(); this.view.refreshAll(); },
    };
    if (acts[name]) acts[name]();
  }

  visible() { return this.el.offsetParent !== null; }

  /** Client (page) coordinates of label pixel (x, y)'s centre — for tests and benches. */
  screenPoint(x, y) {
    const r = this.view.canvas.getBoundingClientRect(), [sx, sy] = this.view.toScreen(x + 0.5, y + 0.5);
    return { x: r.left + sx, y: r.top + sy };
  }
}

Object.assign(Editor.prototype, toolMethods, keyMethods);

/** Keep the editor inside the Annotate tab's placeholder, whenever Gradio (re)renders it. */
async function mount() {
  let config;
  try { config = await api.config(); }
  catch (err) { console.error("facet editor: no config", err); return; }
  const editor = new Editor(config);
  window.facetEditor = editor;
  const place = () => {
    const host = document.getElementById("facet-editor-root");
    if (host && editor.el.parentNode !== host) { host.appendChild(editor.el); editor.fitStage(); }
  };
  new MutationObserver(place).observe(document.body, { childList: true, subtree: true });
  place();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
else mount();
