// Drives the editor's pure modules (no DOM) for tests/webapp/test_editor_core.py:
// reads a job (JSON) on argv[2], writes results (JSON) to stdout.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [, , jobPath, staticDir] = process.argv;
const load = (name) => import(pathToFileURL(`${staticDir}/${name}`).href);
const { decodeGreyPng, encodeGreyPng, base64ToBytes, bytesToBase64 } = await load("png.js");
const { LabelMap, Protect, polygonMask } = await load("labelmap.js");
const { encodeRuns, decodeRuns } = await load("autosave.js");

const job = JSON.parse(readFileSync(jobPath, "utf8"));
const out = {};

// PNG: decode Pillow's file, encode again.
const decoded = await decodeGreyPng(base64ToBytes(job.png));
out.decoded = Array.from(decoded.pixels);
out.reencoded = bytesToBase64(await encodeGreyPng(decoded.pixels, decoded.width, decoded.height));
out.runs = Array.from(decodeRuns(encodeRuns(decoded.pixels), decoded.pixels.length));

// Edits on a W x H map, replayed with undo/redo.
const { width: w, height: h } = job;
const start = Uint8Array.from(job.start);
const map = new LabelMap(w, h, start.slice(), start);
const snap = () => Array.from(map.pixels);
const steps = {};
for (const op of job.ops) {
  const protect = new Protect(op.protect || "off", new Set(op.over || []));
  map.begin();
  if (op.kind === "line") map.line(...op.from, ...op.to, op.size, op.value, protect);
  if (op.kind === "fill") map.fill(...op.at, op.value, protect);
  if (op.kind === "polygon") map.mask(polygonMask(op.points, w, h), op.value, protect);
  map.commit();
  steps[op.name] = snap();
}
out.steps = steps;
map.undo(); out.undone = snap();
map.undo(); out.undone2 = snap();
map.redo(); out.redone = snap();
console.log(JSON.stringify(out));
