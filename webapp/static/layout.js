// The editor's DOM: toolbar, tools, canvas, palette, history and help. Built once; the
// editor only changes states, texts and attributes afterwards.

export const TOOLS = [
  ["brush", "b", "Brush", "paint the selected class"],
  ["eraser", "e", "Eraser", "erase to background, or back to the start map"],
  ["fill", "g", "Fill", "flood-fill the clicked region with the class"],
  ["poly", "p", "Poly +", "click corners (or drag a lasso); Enter or double-click closes"],
  ["cut", "o", "Poly −", "like Polygon +, but erases inside"],
  ["sam", "s", "SAM", "click = on the part, Alt/Shift-click = not on it, drag = box; more clicks refine; Tab = next of the 3 masks; Enter accepts, Esc drops"],
];

export const KEYS = [
  ["class keys", "pick a class (shown in the palette)"],
  ["b e g p o s", "brush, eraser, fill, polygon +, polygon −, SAM"],
  ["[  ]", "brush smaller / bigger"],
  [",  .", "overlay opacity down / up"],
  ["v", "flip between the overlay and the bare photo"],
  ["i", "outlines only"],
  ["x", "eraser: to background / back to the start map"],
  ["wheel, + −, Home", "zoom at the cursor, zoom, fit"],
  ["right or middle drag, Space + drag", "pan"],
  ["Ctrl+Z, Ctrl+Y (Ctrl+Shift+Z)", "undo, redo (also across saves)"],
  ["Ctrl+S", "save draft"],
  ["Ctrl+Enter", "submit for review"],
  ["Shift+N, Shift+K", "next image, skip"],
  ["Enter, Esc", "close polygon / accept SAM; cancel"],
  ["Tab", "SAM: the next of a single click's three masks"],
  ["?", "this help"],
];

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export { esc };

/** The editor's root element for `config` (GET /api/editor/config). */
export function buildLayout(config) {
  const el = document.createElement("div");
  el.className = "fe";
  el.id = "facet-editor";
  el.tabIndex = -1;
  const tools = TOOLS.map(([id, key, name, hint]) =>
    `<button type="button" class="fe-tool" data-tool="${id}" title="${esc(hint)} (${key})">${esc(name)} <kbd>${key}</kbd></button>`).join("");
  const classes = config.classes.map((c) => `
    <div class="fe-class" data-id="${c.id}" title="${esc(c.label)}${c.key ? ` (key ${esc(c.key)})` : ""}">
      <span class="fe-swatch" style="background:${c.color}"></span>
      <kbd>${esc(c.key || "")}</kbd><span class="fe-name">${esc(c.label)}${c.id === 0 ? " / eraser" : ""}</span>
      <input type="checkbox" class="fe-over" title="may be painted over (protect: chosen classes)">
      <input type="checkbox" class="fe-eye" title="show this class" checked>
    </div>`).join("");
  const keys = KEYS.map(([k, what]) => `<tr><td><kbd>${esc(k)}</kbd></td><td>${esc(what)}</td></tr>`).join("");
  el.innerHTML = `
  <div class="fe-bar">
    <button type="button" class="fe-btn fe-primary" data-act="next" title="Shift+N">Next image ▶</button>
    <button type="button" class="fe-btn" data-act="skip" title="Shift+K">Skip</button>
    <input class="fe-jump" type="text" inputmode="numeric" placeholder="image id" size="7" aria-label="image id">
    <button type="button" class="fe-btn" data-act="jump">Open</button>
    <span class="fe-gap"></span>
    <button type="button" class="fe-btn" data-act="undo" title="Ctrl+Z">↶ Undo</button>
    <button type="button" class="fe-btn" data-act="redo" title="Ctrl+Y">↷ Redo</button>
    <button type="button" class="fe-btn" data-act="save" title="Ctrl+S">Save draft</button>
    <button type="button" class="fe-btn fe-primary" data-act="submit" title="Ctrl+Enter">Submit for review</button>
    <button type="button" class="fe-btn" data-act="help" title="?">Keys ?</button>
  </div>
  <div class="fe-info"><span class="fe-title">Press <b>Next image</b> to start annotating.</span>
    <span class="fe-status" role="status"></span></div>
  <div class="fe-banner" hidden></div>
  <div class="fe-main">
    <div class="fe-tools">
      <div class="fe-toolgrid">${tools}</div>
      <label><span>Brush size <span><output class="fe-size-out">12</output> px</span></span><input type="range" class="fe-size" min="1" max="80" value="12"></label>
      <label><span>Overlay opacity <span><output class="fe-opacity-out">50</output> %</span></span><input type="range" class="fe-opacity" min="0" max="100" value="50"></label>
      <label>Eraser restores <select class="fe-erase-to"><option value="0">background</option><option value="start">start map</option></select></label>
      <label>Paint over <select class="fe-protect"><option value="off">everything</option>
        <option value="background">background only</option><option value="classes">ticked classes only</option></select></label>
      <label class="fe-check"><input type="checkbox" class="fe-outline"> outlines only <kbd>i</kbd></label>
      <label class="fe-check"><input type="checkbox" class="fe-photo-only"> bare photo <kbd>v</kbd></label>
      <button type="button" class="fe-btn fe-small" data-act="fit" title="Home">Fit view</button>
      <button type="button" class="fe-btn fe-small" data-act="sam-cycle" title="Tab" hidden>Next SAM mask (Tab)</button>
      <div class="fe-sam-note"></div>
    </div>
    <div class="fe-stage"><canvas class="fe-canvas"></canvas></div>
    <div class="fe-palette"><div class="fe-palette-head"><span>Class</span><span title="may be painted over">over</span><span>show</span></div>${classes}
      <button type="button" class="fe-btn fe-small" data-act="show-all">show all</button></div>
  </div>
  <details class="fe-history"><summary>History</summary><div class="fe-history-body">No image open.</div></details>
  <div class="fe-help" hidden><div class="fe-help-box"><h3>Keys</h3><table>${keys}</table>
    <p>Keys work whatever control has focus, except while typing in a text field.</p>
    <button type="button" class="fe-btn" data-act="help">Close</button></div></div>`;
  return el;
}
