// Draws the photo, the label overlay (through the palette), a SAM preview and the tool's
// cursor on one canvas, with wheel zoom and drag pan. Label pixels are the canvas's world
// units: screen = pan + zoom * label (CSS pixels).

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export class View {
  /** `canvas`: the on-screen canvas; `colors`: "#rrggbb" per class id. */
  constructor(canvas, colors) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.rgb = colors.map(hexToRgb);
    this.hidden = new Set();
    this.outline = false;
    this.opacity = 0.5;
    this.photoOnly = false;
    this.zoom = 1; this.panX = 0; this.panY = 0;
    this.photo = null; this.map = null;
    this.overlay = document.createElement("canvas");
    this.previewCanvas = document.createElement("canvas");
    this.preview = null;          // {mask: Uint8Array, color: [r,g,b]}
    this.cursor = null;           // {x, y, size} in label pixels
    this.polygon = null;          // [[x, y], …] in label pixels
    this.box = null;              // [x0, y0, x1, y1] in label pixels
    this.points = [];             // SAM clicks [[x, y, 1|0], …] in label pixels
    this.frame = 0;
  }

  /** A new image: `photo` (an ImageBitmap / HTMLImageElement), `map` (LabelMap). Fits the view. */
  show(photo, map) {
    this.photo = photo; this.map = map;
    this.overlay.width = map.width; this.overlay.height = map.height;
    this.overlayData = new ImageData(map.width, map.height);
    this.previewCanvas.width = map.width; this.previewCanvas.height = map.height;
    this.preview = null; this.polygon = null; this.box = null; this.points = [];
    this.fit();
    this.refreshAll();
  }

  fit() {
    if (!this.map) return;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    this.zoom = Math.min(w / this.map.width, h / this.map.height) * 0.98;
    this.panX = (w - this.map.width * this.zoom) / 2;
    this.panY = (h - this.map.height * this.zoom) / 2;
    this.request();
  }

  /** Zoom by `factor` keeping the label point under (sx, sy) (CSS px) where it is. */
  zoomAt(sx, sy, factor) {
    const z = Math.min(64, Math.max(0.1, this.zoom * factor));
    const [lx, ly] = this.toLabel(sx, sy);
    this.zoom = z;
    this.panX = sx - lx * z; this.panY = sy - ly * z;
    this.request();
  }

  panBy(dx, dy) { this.panX += dx; this.panY += dy; this.request(); }

  toLabel(sx, sy) { return [(sx - this.panX) / this.zoom, (sy - this.panY) / this.zoom]; }
  toScreen(lx, ly) { return [this.panX + lx * this.zoom, this.panY + ly * this.zoom]; }

  /** Recolour the overlay inside `box` (+1 px for outlines); whole map when box is null. */
  refresh(box) {
    const map = this.map;
    if (!map || (box && box.empty)) return;
    const w = map.width, h = map.height;
    const x0 = box ? Math.max(0, box.x0 - 1) : 0, x1 = box ? Math.min(w - 1, box.x1 + 1) : w - 1;
    const y0 = box ? Math.max(0, box.y0 - 1) : 0, y1 = box ? Math.min(h - 1, box.y1 + 1) : h - 1;
    const px = map.pixels, out = this.overlayData.data;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const i = y * w + x, c = px[i], o = i * 4;
        let on = c !== 0 && !this.hidden.has(c);
        if (on && this.outline) {
          on = (x > 0 && px[i - 1] !== c) || (x < w - 1 && px[i + 1] !== c)
            || (y > 0 && px[i - w] !== c) || (y < h - 1 && px[i + w] !== c);
        }
        const rgb = this.rgb[c] || [255, 0, 255];
        out[o] = rgb[0]; out[o + 1] = rgb[1]; out[o + 2] = rgb[2]; out[o + 3] = on ? 255 : 0;
      }
    }
    this.overlay.getContext("2d").putImageData(this.overlayData, 0, 0, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
    this.request();
  }

  refreshAll() { this.refresh(null); }

  setPreview(mask, classId) {
    this.preview = mask;
    if (mask) {
      const w = this.map.width, data = new ImageData(w, this.map.height), rgb = this.rgb[classId];
      for (let i = 0; i < mask.length; i++) {
        if (!mask[i]) continue;
        const o = i * 4;
        data.data[o] = rgb[0]; data.data[o + 1] = rgb[1]; data.data[o + 2] = rgb[2]; data.data[o + 3] = 255;
      }
      this.previewCanvas.getContext("2d").putImageData(data, 0, 0);
    }
    this.request();
  }

  /** Draw on the next animation frame (many requests, one draw). */
  request() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  draw() {
    const c = this.canvas, ctx = this.ctx, dpr = window.devicePixelRatio || 1;
    const cw = Math.round(c.clientWidth * dpr), ch = Math.round(c.clientHeight * dpr);
    if (c.width !== cw || c.height !== ch) { c.width = cw; c.height = ch; }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#1f2023";
    ctx.fillRect(0, 0, cw, ch);
    if (!this.map) return;
    const z = this.zoom * dpr;
    ctx.setTransform(z, 0, 0, z, this.panX * dpr, this.panY * dpr);
    ctx.imageSmoothingEnabled = this.zoom < 2;
    if (this.photo) ctx.drawImage(this.photo, 0, 0, this.map.width, this.map.height);
    ctx.imageSmoothingEnabled = false;
    if (!this.photoOnly) {
      ctx.globalAlpha = this.opacity;
      ctx.drawImage(this.overlay, 0, 0);
      if (this.preview) {
        ctx.globalAlpha = Math.max(0.55, this.opacity);
        ctx.drawImage(this.previewCanvas, 0, 0);
      }
      ctx.globalAlpha = 1;
    }
    this.drawMarks(ctx, 1 / this.zoom);
  }

  /** Cursor, polygon, SAM box and clicks; `px` = one CSS pixel in label units. */
  drawMarks(ctx, px) {
    ctx.lineWidth = 1.5 * px;
    if (this.cursor) {
      ctx.strokeStyle = "rgba(255,255,255,0.9)";
      ctx.beginPath();
      ctx.arc(this.cursor.x, this.cursor.y, Math.max(this.cursor.size / 2, 0.5), 0, 2 * Math.PI);
      ctx.stroke();
    }
    if (this.polygon && this.polygon.length) {
      ctx.strokeStyle = "#ffeb3b";
      ctx.beginPath();
      this.polygon.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (this.cursor) ctx.lineTo(this.cursor.x, this.cursor.y);
      ctx.stroke();
    }
    if (this.box) {
      const [x0, y0, x1, y1] = this.box;
      ctx.strokeStyle = "#00e5ff";
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    }
    for (const [x, y, positive] of this.points) {
      ctx.fillStyle = positive ? "#00e676" : "#ff1744";
      ctx.beginPath();
      ctx.arc(x, y, 5 * px, 0, 2 * Math.PI);
      ctx.fill();
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    }
  }
}
