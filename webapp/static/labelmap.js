// The label map being edited: one class id per pixel (Uint8Array, width*height, row-major),
// every change an undoable edit. Nothing here touches the DOM or the network.

/** Which pixels a paint tool may change: "off" (all), "background" (only class 0), or
 *  "classes" (only the ids in `classes`). A pixel already in the painted class is left as is. */
export class Protect {
  constructor(mode = "off", classes = new Set()) { this.mode = mode; this.classes = classes; }
  allows(current) {
    return this.mode === "off" || (this.mode === "background" ? current === 0 : this.classes.has(current));
  }
}

/** A bounding box of changed pixels, inclusive, in label pixels. */
export class Box {
  constructor() { this.x0 = Infinity; this.y0 = Infinity; this.x1 = -Infinity; this.y1 = -Infinity; }
  add(x, y) {
    if (x < this.x0) this.x0 = x; if (x > this.x1) this.x1 = x;
    if (y < this.y0) this.y0 = y; if (y > this.y1) this.y1 = y;
  }
  get empty() { return this.x1 < this.x0; }
}

/** A change in progress (one stroke, fill, polygon or SAM mask): pixel index → value before. */
class Change {
  constructor() { this.before = new Map(); this.box = new Box(); }
}

export class LabelMap {
  /** `pixels`: Uint8Array width*height; `start`: the map the image opened with (what "erase to
   *  start" restores). */
  constructor(width, height, pixels, start) {
    this.width = width; this.height = height;
    this.pixels = pixels; this.start = start;
    this.undoStack = []; this.redoStack = [];
    this.change = null;
  }

  begin() { this.change = new Change(); }

  /** Set pixel (x, y) to `value` if `protect` allows; returns whether it changed. */
  set(x, y, value, protect) {
    const i = y * this.width + x, cur = this.pixels[i];
    if (cur === value || !protect.allows(cur)) return false;
    if (!this.change.before.has(i)) this.change.before.set(i, cur);
    this.pixels[i] = value;
    this.change.box.add(x, y);
    return true;
  }

  /** `value` is a class id, or "start" (each pixel back to the start map). */
  valueAt(value, i) { return value === "start" ? this.start[i] : value; }

  /** Paint a disc of diameter `size` centred on (cx, cy) (label pixels, fractional). */
  disc(cx, cy, size, value, protect, touched) {
    const r = Math.max(size / 2, 0.5), r2 = r * r;
    const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(this.width - 1, Math.ceil(cx + r));
    const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(this.height - 1, Math.ceil(cy + r));
    for (let y = y0; y <= y1; y++) {
      const dy = y + 0.5 - cy;
      for (let x = x0; x <= x1; x++) {
        const dx = x + 0.5 - cx;
        if (dx * dx + dy * dy > r2) continue;
        const v = this.valueAt(value, y * this.width + x);
        if (this.set(x, y, v, protect)) touched.add(x, y);
      }
    }
  }

  /** A brush segment from (ax, ay) to (bx, by): discs every quarter diameter. */
  line(ax, ay, bx, by, size, value, protect) {
    const touched = new Box();
    const steps = Math.max(1, Math.ceil(Math.hypot(bx - ax, by - ay) / Math.max(size / 4, 0.5)));
    for (let s = 0; s <= steps; s++) {
      const t = s / steps;
      this.disc(ax + (bx - ax) * t, ay + (by - ay) * t, size, value, protect, touched);
    }
    return touched;
  }

  /** Flood fill (4-connected) the region of (x, y)'s class with `value`. */
  fill(x, y, value, protect) {
    const touched = new Box();
    const w = this.width, h = this.height, seed = y * w + x, from = this.pixels[seed];
    if (!protect.allows(from)) return touched;
    const seen = new Uint8Array(w * h), queue = new Int32Array(w * h);
    let head = 0, tail = 0;
    queue[tail++] = seed; seen[seed] = 1;
    while (head < tail) {
      const i = queue[head++], px = i % w, py = (i - px) / w;
      if (this.set(px, py, this.valueAt(value, i), protect)) touched.add(px, py);
      const next = [px > 0 ? i - 1 : -1, px < w - 1 ? i + 1 : -1, py > 0 ? i - w : -1, py < h - 1 ? i + w : -1];
      for (const j of next) {
        if (j >= 0 && !seen[j] && this.pixels[j] === from) { seen[j] = 1; queue[tail++] = j; }
      }
    }
    return touched;
  }

  /** Set every pixel where `mask` (Uint8Array width*height, nonzero = in) is set. */
  mask(mask, value, protect) {
    const touched = new Box(), w = this.width;
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) continue;
      const x = i % w, y = (i - x) / w;
      if (this.set(x, y, this.valueAt(value, i), protect)) touched.add(x, y);
    }
    return touched;
  }

  /** Close the change in progress as one undoable edit; returns its box (empty: no change). */
  commit() {
    const change = this.change;
    this.change = null;
    if (!change || change.before.size === 0) return new Box();
    const idx = Int32Array.from(change.before.keys());
    const before = Uint8Array.from(change.before.values());
    const after = new Uint8Array(idx.length);
    for (let k = 0; k < idx.length; k++) after[k] = this.pixels[idx[k]];
    this.undoStack.push({ idx, before, after, box: change.box });
    this.redoStack.length = 0;
    return change.box;
  }

  _replay(from, to, field) {
    const edit = from.pop();
    if (!edit) return null;
    const values = edit[field];
    for (let k = 0; k < edit.idx.length; k++) this.pixels[edit.idx[k]] = values[k];
    to.push(edit);
    return edit.box;
  }

  /** Take back the newest edit; its box, or null when there is none. */
  undo() { return this._replay(this.undoStack, this.redoStack, "before"); }
  redo() { return this._replay(this.redoStack, this.undoStack, "after"); }

  /** Replace every pixel (a restored autosave) as one undoable edit. */
  replaceAll(pixels, protect = new Protect()) {
    this.begin();
    const w = this.width;
    for (let i = 0; i < pixels.length; i++) this.set(i % w, Math.floor(i / w), pixels[i], protect);
    return this.commit();
  }
}

/** Inside-test of a polygon (label coords) rasterised at pixel centres → Uint8Array mask. */
export function polygonMask(points, width, height) {
  const mask = new Uint8Array(width * height);
  if (points.length < 3) return mask;
  const ys = points.map((p) => p[1]);
  const y0 = Math.max(0, Math.floor(Math.min(...ys))), y1 = Math.min(height - 1, Math.ceil(Math.max(...ys)));
  for (let y = y0; y <= y1; y++) {
    const cy = y + 0.5, xs = [];
    for (let k = 0; k < points.length; k++) {
      const [ax, ay] = points[k], [bx, by] = points[(k + 1) % points.length];
      if ((ay <= cy && by > cy) || (by <= cy && ay > cy)) xs.push(ax + ((cy - ay) / (by - ay)) * (bx - ax));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const from = Math.max(0, Math.ceil(xs[k] - 0.5)), to = Math.min(width - 1, Math.floor(xs[k + 1] - 0.5));
      for (let x = from; x <= to; x++) mask[y * width + x] = 1;
    }
  }
  return mask;
}
