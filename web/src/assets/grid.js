// The room's tile grid: for n tiles in a w×h area, the column count that makes tiles largest at a
// fixed aspect ratio. CSS grid alone cannot do this (it does not know the tile count fits the
// height), so the grid element gets the column count and tile width as custom properties.

/** bestLayout returns {cols, rows, tileW, tileH} that maximises tile area. */
export function bestLayout(n, w, h, gap = 8, aspect = 16 / 9) {
  let best = { cols: 1, rows: 1, tileW: 0, tileH: 0 };
  n = Math.max(1, n);
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const maxW = (w - gap * (cols - 1)) / cols;
    const maxH = (h - gap * (rows - 1)) / rows;
    const tileW = Math.min(maxW, maxH * aspect);
    if (tileW > best.tileW) best = { cols, rows, tileW, tileH: tileW / aspect };
  }
  best.tileW = Math.max(0, Math.floor(best.tileW));
  best.tileH = Math.max(0, Math.floor(best.tileH));
  return best;
}

/** Grid keeps an element's tiles laid out as the element resizes or tiles come and go. */
export class Grid {
  constructor(el) {
    this.el = el;
    this.ro = new ResizeObserver(() => this.layout());
    this.ro.observe(el);
    this.mo = new MutationObserver(() => this.layout());
    this.mo.observe(el, { childList: true });
  }

  layout() {
    const n = this.el.children.length;
    const style = getComputedStyle(this.el);
    const w = this.el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const h = this.el.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    const gap = parseFloat(style.columnGap) || 8;
    const { cols, tileW } = bestLayout(n, w, h, gap);
    this.el.style.setProperty('--cols', String(cols));
    this.el.style.setProperty('--tile-w', `${tileW}px`);
    this.el.dataset.count = String(n);
  }

  stop() {
    this.ro.disconnect();
    this.mo.disconnect();
  }
}
