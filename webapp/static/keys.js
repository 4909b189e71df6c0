// The editor's keyboard: class keys, tools, view, undo/redo, save/submit/next/skip, help.
// Mixed into Editor (editor.js); ``this`` is the editor. Keys act whatever control has focus,
// except while typing in a text field.

export const keyMethods = {
  onKey(ev) {
    if (!this.visible()) return;
    const t = ev.target, typing = t && (t.isContentEditable || t.tagName === "TEXTAREA"
      || (t.tagName === "INPUT" && !["range", "checkbox", "radio", "button"].includes(t.type)));
    const ctrl = ev.ctrlKey || ev.metaKey, key = ev.key, lower = key.length === 1 ? key.toLowerCase() : key;
    const done = () => { ev.preventDefault(); ev.stopPropagation(); };
    if (ctrl && lower === "s") { done(); this.save("draft"); return; }
    if (ctrl && key === "Enter") { done(); this.save("submitted"); return; }
    if (typing || ev.altKey) return;
    if (ctrl) {
      if (lower === "z" && !ev.shiftKey) { done(); this.undo(); }
      else if (lower === "y" || (lower === "z" && ev.shiftKey)) { done(); this.redo(); }
      return;
    }
    if (ev.shiftKey && key === "N") { done(); this.onNext(); return; }
    if (ev.shiftKey && key === "K") { done(); this.onSkip(); return; }
    if (key === "?") { done(); this.act("help"); return; }
    if (key === "Escape") { done(); this.q(".fe-help").hidden = true; this.cancelShape(); return; }
    if (key === "Enter") { done(); if (this.view.polygon) this.closePolygon(); else this.acceptSam(); return; }
    if (key === "Tab" && !ev.shiftKey && this.sam.candidate !== null) { done(); this.cycleSam(); return; }
    if (key === " ") { done(); this.space = true; return; }
    if (key === "Home") { done(); this.view.fit(); return; }
    if (key === "+" || key === "=") { done(); this.zoomCentre(1.25); return; }
    if (key === "-") { done(); this.zoomCentre(0.8); return; }
    if (ev.shiftKey && !["?", "+"].includes(key)) return;
    const tools = { b: "brush", e: "eraser", g: "fill", p: "poly", o: "cut", s: "sam" };
    const other = {
      "[": () => this.setSize(this.size - (this.size > 10 ? 2 : 1)), "]": () => this.setSize(this.size + (this.size >= 10 ? 2 : 1)),
      ",": () => this.setOpacity(this.view.opacity * 100 - 10), ".": () => this.setOpacity(this.view.opacity * 100 + 10),
      v: () => this.setPhotoOnly(!this.view.photoOnly), i: () => this.setOutline(!this.view.outline),
      x: () => { this.eraseTo = this.eraseTo === "start" ? 0 : "start"; this.q(".fe-erase-to").value = String(this.eraseTo);
                 this.status(`Eraser now restores ${this.eraseTo === "start" ? "the start map" : "background"}.`, "info"); },
    };
    if (this.keyToClass.has(lower)) { done(); this.selectClass(this.keyToClass.get(lower)); }
    else if (tools[lower]) { done(); this.selectTool(tools[lower]); }
    else if (other[lower]) { done(); other[lower](); }
  },

  zoomCentre(factor) { const c = this.view.canvas; this.view.zoomAt(c.clientWidth / 2, c.clientHeight / 2, factor); },
};
