"""The class palette: names, colours and keyboard shortcuts, all derived from the LabelSet."""
import json
from typing import Any

import gradio as gr

from core.labels import LabelSet

_LETTERS = {"mouth": "m", "u_lip": "u", "l_lip": "l", "hair": "h", "hat": "t", "ear_r": "r",
            "neck_l": "k", "neck": "n", "cloth": "c", "hand": "a", "mask": "f"}
"""Shortcut letters for ids above 9 (0-9 are the digit keys)."""


def shortcut(label_set: LabelSet, class_id: int) -> str:
    """The key that selects ``class_id``: its digit for 0-9, else a mnemonic letter."""
    if class_id <= 9:
        return str(class_id)
    return _LETTERS.get(label_set.names[class_id], "")


def choices(label_set: LabelSet) -> list[tuple[str, str]]:
    """``(shown label, value)`` per class: "1 · skin"; value = id as a string."""
    out = []
    for i in range(label_set.num_classes):
        name = label_set.human_name(i) + (" / eraser" if i == 0 else "")
        key = shortcut(label_set, i)
        out.append((f"{key} · {name}" if key else name, str(i)))
    return out


def brush(label_set: LabelSet, class_id: int, size: int) -> gr.Brush:
    """A brush that can paint exactly one colour: the class's palette colour."""
    color = label_set.hex_colors()[class_id]
    return gr.Brush(colors=[color], default_color=color, color_mode="fixed", default_size=int(size))


def css(label_set: LabelSet) -> str:
    """Swatches in front of each palette entry, coloured with the class colour."""
    rules = ["#facet-palette .wrap { display: grid; grid-template-columns: 1fr; gap: 2px; }",
             "#facet-palette label { padding: 2px 6px; margin: 0; }",
             "#facet-palette label::before { content: ''; display: inline-block; width: 16px; "
             "height: 16px; border-radius: 3px; margin-right: 6px; border: 1px solid #888; }"]
    for i, color in enumerate(label_set.hex_colors()):
        rules.append(f"#facet-palette label:nth-of-type({i + 1})::before {{ background: {color}; }}")
    return "\n".join(rules)


def shortcuts_js(label_set: LabelSet) -> str:
    """A ``<script>`` that selects a class on its key (ignored while typing in a field)."""
    keys: dict[str, Any] = {shortcut(label_set, i): i for i in range(label_set.num_classes)
                            if shortcut(label_set, i)}
    return """<script>
(() => {
  const keys = %s;
  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
    const id = keys[ev.key.toLowerCase()];
    if (id === undefined) return;
    const labels = document.querySelectorAll("#facet-palette label");
    if (labels[id]) { labels[id].click(); ev.preventDefault(); }
  });
})();
</script>""" % json.dumps(keys)
