// The canvas tools of the editor: pointer handling for brush, eraser, fill, polygon/lasso
// and SAM prompts. Mixed into Editor (editor.js); ``this`` is the editor.
import { api } from "./api.js";
import { polygonMask } from "./labelmap.js";

/** SAM prompts and the answer on screen: none yet. ``seq`` numbers prompt generations (a late
 *  answer to an older one is dropped); ``token``/``candidate``/``candidates`` come from the
 *  last answer (refinement, cycling). */
export function emptySam(seq = 0) {
  return { points: [], box: null, mask: null, token: null, candidate: null, candidates: 1, seq };
}

export const toolMethods = {
  labelPoint(ev) {
    const r = this.view.canvas.getBoundingClientRect();
    return this.view.toLabel(ev.clientX - r.left, ev.clientY - r.top);
  },

  inside(x, y) { return x >= 0 && y >= 0 && x < this.map.width && y < this.map.height; },

  onPointerDown(ev) {
    if (!this.map) return;
    const canvas = this.view.canvas;
    canvas.setPointerCapture(ev.pointerId);
    const [x, y] = this.labelPoint(ev);
    if (ev.button === 1 || ev.button === 2 || this.space) {
      this.drag = { kind: "pan", sx: ev.clientX, sy: ev.clientY };
      return;
    }
    if (ev.button !== 0 || !this.config.can_annotate) return;
    const tool = this.tool;
    if (tool === "brush" || tool === "eraser") {
      const value = tool === "brush" ? this.cls : this.eraseValue();   // fixed at mouse-down
      this.map.begin();
      this.view.refresh(this.map.line(x, y, x, y, this.size, value, this.protect));
      this.drag = { kind: "stroke", value, x, y };
    } else if (tool === "fill") {
      if (!this.inside(x, y)) return;
      this.map.begin();
      this.map.fill(Math.floor(x), Math.floor(y), this.cls, this.protect);
      const box = this.map.commit();
      if (box.empty) this.status("Nothing filled: that region is already this class, or protected.", "info");
      this.afterEdit(box);
    } else if (tool === "poly" || tool === "cut") {
      const pts = this.view.polygon || (this.view.polygon = []);
      const first = pts[0];
      if (pts.length >= 3 && Math.hypot((first[0] - x) * this.view.zoom, (first[1] - y) * this.view.zoom) < 8) { this.closePolygon(); return; }
      pts.push([x, y]);
      this.drag = { kind: "lasso", x, y, value: tool === "poly" ? this.cls : this.eraseValue() };
      this.view.request();
    } else if (tool === "sam") {
      this.drag = { kind: "sam", x, y, sx: ev.clientX, sy: ev.clientY, negative: ev.altKey || ev.shiftKey };
    }
  },

  onPointerMove(ev) {
    if (!this.map) return;
    const [x, y] = this.labelPoint(ev);
    this.view.cursor = { x, y, size: ["brush", "eraser"].includes(this.tool) ? this.size : 0 };
    const d = this.drag;
    if (!d) { this.view.request(); return; }
    if (d.kind === "pan") { this.view.panBy(ev.clientX - d.sx, ev.clientY - d.sy); d.sx = ev.clientX; d.sy = ev.clientY; }
    else if (d.kind === "stroke") { this.view.refresh(this.map.line(d.x, d.y, x, y, this.size, d.value, this.protect)); d.x = x; d.y = y; }
    else if (d.kind === "lasso" && Math.hypot(x - d.x, y - d.y) * this.view.zoom > 4) { this.view.polygon.push([x, y]); d.x = x; d.y = y; d.moved = true; }
    else if (d.kind === "sam" && Math.hypot(ev.clientX - d.sx, ev.clientY - d.sy) > 5) { this.view.box = [d.x, d.y, x, y].map((v) => v); }
    this.view.request();
  },

  onPointerUp(ev) {
    const d = this.drag;
    this.drag = null;
    if (!d || !this.map) return;
    const [x, y] = this.labelPoint(ev);
    if (d.kind === "stroke") this.afterEdit(this.map.commit());
    else if (d.kind === "lasso" && d.moved && this.view.polygon.length >= 3) this.closePolygon();
    else if (d.kind === "sam") {
      if (this.view.box) {
        const [x0, y0, x1, y1] = this.view.box;
        this.sam.box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
        this.view.box = this.sam.box;
      } else if (this.inside(x, y)) this.sam.points.push([x, y, d.negative ? 0 : 1]);
      this.view.points = this.sam.points;
      this.askSam();
    }
  },

  closePolygon() {
    const pts = this.view.polygon;
    this.view.polygon = null;
    if (!pts || pts.length < 3) { this.view.request(); return; }
    const value = this.tool === "poly" ? this.cls : this.eraseValue();
    this.map.begin();
    this.map.mask(polygonMask(pts, this.map.width, this.map.height), value, this.protect);
    this.afterEdit(this.map.commit());
  },

  /** Send the prompts to SAM. A further click refines the mask on screen (its token goes
   *  along); ``candidate``: another of a lone click's three masks (cycling, no refinement);
   *  ``retry``: the request a pending answer repeats. */
  async askSam({ candidate = null, retry = null } = {}) {
    const o = this.image, [sx, sy] = o.scale, seq = retry ? retry.seq : ++this.sam.seq;
    const opts = retry ? retry.opts : { candidate, refine: candidate === null ? this.sam.token : null };
    const points = this.sam.points.map(([x, y, l]) => [Math.min(x * sx, o.width - 0.01), Math.min(y * sy, o.height - 0.01), l]);
    const box = this.sam.box ? this.sam.box.map((v, k) => Math.max(0, Math.min(v * (k % 2 ? sy : sx), (k % 2 ? o.height : o.width) - 1))) : null;
    this.status("SAM: working…", "info");
    try {
      const mask = await api.sam(o.id, points, box, opts);
      if (seq !== this.sam.seq || this.image !== o) return;   // a newer prompt or another image
      if (mask.pending) {                                     // the worker is embedding it: ask again
        this.status(`SAM: ${mask.detail} — retrying by itself…`, "info");
        setTimeout(() => { if (seq === this.sam.seq && this.image === o) this.askSam({ retry: { seq, opts } }); }, mask.retryAfterS * 1000);
        return;
      }
      this.sam.mask = this.maskToLabels(mask);
      Object.assign(this.sam, { token: mask.token, candidate: mask.candidate, candidates: mask.candidates });
      this.view.setPreview(this.sam.mask, this.cls);
      this.el.dataset.samPreview = "1";
      this.el.dataset.samCandidate = mask.candidate === null ? "" : String(mask.candidate);
      this.q('[data-act="sam-cycle"]').hidden = mask.candidate === null;
      const which = mask.candidate === null ? "" : `, mask ${mask.candidate + 1} of ${mask.candidates} — Tab for the next`;
      this.status(`SAM mask (score ${mask.score.toFixed(2)}${which}): Enter paints it in the selected class, Esc drops it; click more to refine.`, "info");
    } catch (err) { if (seq === this.sam.seq) this.status(`SAM: ${err.message}`, "error"); }
  },

  /** A mask at the original image size → Uint8Array at the label size (nearest). */
  maskToLabels(mask) {
    const w = this.map.width, h = this.map.height, out = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) {
      const my = Math.min(mask.height - 1, Math.floor(((y + 0.5) * mask.height) / h));
      for (let x = 0; x < w; x++) {
        const mx = Math.min(mask.width - 1, Math.floor(((x + 0.5) * mask.width) / w));
        out[y * w + x] = mask.pixels[my * mask.width + mx] ? 1 : 0;
      }
    }
    return out;
  },

  /** Show the next of a lone click's three candidate masks; false when there are none. */
  cycleSam() {
    if (!this.sam.mask || this.sam.candidate === null) return false;
    this.askSam({ candidate: (this.sam.candidate + 1) % this.sam.candidates });
    return true;
  },

  acceptSam() {
    if (!this.sam.mask) return false;
    this.map.begin();
    this.map.mask(this.sam.mask, this.cls, this.protect);
    const box = this.map.commit();
    this.cancelShape();
    this.afterEdit(box);
    return true;
  },

  /** Drop a polygon in progress and SAM prompts. */
  cancelShape() {
    this.sam = emptySam(this.sam ? this.sam.seq + 1 : 0);
    delete this.el.dataset.samPreview;
    delete this.el.dataset.samCandidate;
    const cycle = this.q('[data-act="sam-cycle"]');
    if (cycle) cycle.hidden = true;
    if (this.view.map) { this.view.polygon = null; this.view.box = null; this.view.points = []; this.view.setPreview(null); }
  },
};
