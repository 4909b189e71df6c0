// Unsaved edits kept in the browser (localStorage), per user and image, so a reload or a
// crash does not lose them; removed once the image is saved. Stored synchronously (run-length
// coded), so even an edit made just before the page goes away is kept.
import { bytesToBase64, base64ToBytes } from "./png.js";

const PREFIX = "facet-unsaved:";

/** Run-length code a label map: [value, run length (1..255)] byte pairs. */
export function encodeRuns(pixels) {
  const out = new Uint8Array(pixels.length * 2);
  let n = 0;
  for (let i = 0; i < pixels.length;) {
    const v = pixels[i];
    let run = 1;
    while (run < 255 && i + run < pixels.length && pixels[i + run] === v) run++;
    out[n++] = v; out[n++] = run; i += run;
  }
  return out.subarray(0, n);
}

export function decodeRuns(bytes, length) {
  const out = new Uint8Array(length);
  let at = 0;
  for (let k = 0; k + 1 < bytes.length; k += 2) { out.fill(bytes[k], at, at + bytes[k + 1]); at += bytes[k + 1]; }
  if (at !== length) throw new Error("kept edits are damaged");
  return out;
}

export class Autosave {
  constructor(user) { this.prefix = `${PREFIX}${user}:`; this.timer = 0; this.pending = null; }

  key(imageId) { return this.prefix + imageId; }

  /** Store the map a little later (edits come in bursts); `flush` stores it now. */
  schedule(imageId, map, base) {
    this.pending = { imageId, map, base };
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), 250);
  }

  flush() {
    clearTimeout(this.timer);
    const p = this.pending;
    this.pending = null;
    if (!p) return;
    const entry = { imageId: p.imageId, base: p.base, width: p.map.width, height: p.map.height,
                    at: new Date().toISOString(), runs: bytesToBase64(encodeRuns(p.map.pixels)) };
    try { localStorage.setItem(this.key(p.imageId), JSON.stringify(entry)); }
    catch (err) { console.warn("facet: could not keep unsaved edits locally", err); }
  }

  forget(imageId) {
    if (this.pending && this.pending.imageId === imageId) { clearTimeout(this.timer); this.pending = null; }
    localStorage.removeItem(this.key(imageId));
  }

  /** Every kept entry of this user, newest first: [{imageId, base, at}]. */
  list() {
    const out = [];
    for (let k = 0; k < localStorage.length; k++) {
      const key = localStorage.key(k);
      if (!key.startsWith(this.prefix)) continue;
      try { const e = JSON.parse(localStorage.getItem(key)); out.push({ imageId: e.imageId, base: e.base, at: e.at }); }
      catch { localStorage.removeItem(key); }
    }
    return out.sort((a, b) => (a.at < b.at ? 1 : -1));
  }

  /** The kept map of `imageId` → {base, at, width, height, pixels} or null. */
  load(imageId) {
    const raw = localStorage.getItem(this.key(imageId));
    if (!raw) return null;
    const e = JSON.parse(raw);
    return { base: e.base, at: e.at, width: e.width, height: e.height,
             pixels: decodeRuns(base64ToBytes(e.runs), e.width * e.height) };
  }
}
