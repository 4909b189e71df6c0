// The studio's REST API as the editor uses it. Requests carry the page's login cookie
// (same origin), so they act as the logged-in annotator with the same roles.
import { base64ToBytes, decodeGreyPng, encodeGreyPng } from "./png.js";

export class ApiError extends Error {
  constructor(status, detail, body, retryAfterS = null) {
    super(detail); this.status = status; this.body = body; this.retryAfterS = retryAfterS;
  }
}

/** Tries of a save when the server is unreachable or answers 503 (database busy, restarting). */
export const SAVE_TRIES = 4;

async function call(method, url, { json, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, credentials: "same-origin" };
  if (json !== undefined) { init.body = JSON.stringify(json); init.headers["Content-Type"] = "application/json"; }
  if (body !== undefined) init.body = body;
  let res;
  try { res = await fetch(url, init); } catch (err) { throw new ApiError(0, `the server cannot be reached (${err.message})`); }
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.arrayBuffer();
  if (!res.ok) {
    const detail = data && data.detail ? data.detail : `HTTP ${res.status}`;
    const retry = parseFloat(res.headers.get("Retry-After") || "");
    throw new ApiError(res.status, typeof detail === "string" ? detail : JSON.stringify(detail), data,
                       Number.isFinite(retry) ? retry : null);
  }
  return { data, headers: res.headers };
}

export const api = {
  config: async () => (await call("GET", "/api/editor/config")).data,
  open: async (id) => (await call("GET", `/api/images/${id}/open`)).data,
  next: async (skipped, release) => (await call("POST", "/api/queue/next", { json: { skipped, release } })).data.image,
  revisions: async (id) => (await call("GET", `/api/images/${id}/revisions`)).data,

  /** Save `pixels` as a draft or a submission on top of revision `base` (null: none yet).
   *  → {revision} or throws ApiError 409 with body.current_revision. A 503 or an unreachable
   *  server is tried again after its Retry-After (2 s otherwise, at most 10 s), up to
   *  SAVE_TRIES times: the server answers a repeated save with the revision it already made.
   *  ``onRetry(err, waitS, nextTry)`` is told before each wait. */
  async save(id, pixels, width, height, base, state, onRetry = null) {
    const png = await encodeGreyPng(pixels, width, height);
    const headers = { "Content-Type": "image/png" };
    if (base !== null && base !== undefined) headers["If-Match"] = `"${base}"`;
    for (let attempt = 1; ; attempt++) {
      try { return (await call("PUT", `/api/images/${id}/annotation?state=${state}`, { body: png, headers })).data; }
      catch (err) {
        if (!(err.status === 503 || err.status === 0) || attempt >= SAVE_TRIES) throw err;
        const waitS = Math.min(10, err.retryAfterS ?? 2);
        if (onRetry) onRetry(err, waitS, attempt + 1);
        await new Promise((done) => setTimeout(done, waitS * 1000));
      }
    }
  },

  async restore(id, revision, base) {
    const headers = base !== null && base !== undefined ? { "If-Match": `"${base}"` } : {};
    return (await call("POST", `/api/images/${id}/restore`, { json: { revision }, headers })).data;
  },

  /** SAM mask for clicks / a box in original-image pixels → {width, height, pixels (0|255),
   *  score, token, candidate (0-2 or null), candidates (3 or 1)}, or {pending: true, detail,
   *  retryAfterS} while the image's embedding is computed. ``refine``: the previous answer's
   *  token (SAM starts from that mask); ``candidate``: which of a lone click's three masks. */
  async sam(id, points, box, { refine = null, candidate = null } = {}) {
    const json = { points, box };
    if (refine) json.refine = refine;
    if (candidate !== null) json.candidate = candidate;
    const { data, headers } = await call("POST", `/api/images/${id}/sam`, { json });
    if (data && data.pending) return { pending: true, detail: data.detail, retryAfterS: data.retry_after_s || 2 };
    const mask = await decodeGreyPng(new Uint8Array(data));
    const chosen = headers.get("X-Sam-Candidate");
    return { ...mask, score: parseFloat(headers.get("X-Sam-Score") || "0"), token: headers.get("X-Sam-Token"),
             candidate: chosen === null || chosen === "none" ? null : parseInt(chosen, 10),
             candidates: parseInt(headers.get("X-Sam-Candidates") || "1", 10) };
  },
};

/** The start label map of an opened image → Uint8Array (label_width * label_height). */
export async function startPixels(opened) {
  const png = await decodeGreyPng(base64ToBytes(opened.labels_png));
  if (png.width !== opened.label_width || png.height !== opened.label_height)
    throw new Error(`label map is ${png.width}x${png.height}, expected ${opened.label_width}x${opened.label_height}`);
  return png.pixels;
}
