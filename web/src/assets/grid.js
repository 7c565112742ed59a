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

/**
 * spotlightLayout sizes the strip beside a spotlighted tile for `others` tiles: 16:9 tiles about a
 * fifth of the width, shrunk (down to 90 px high) when they would not all fit the height, and
 * `rows` explicit rows that fill the height so the spotlight spans all of it.
 */
export function spotlightLayout(others, w, h, gap = 8) {
  let stripW = Math.min(280, Math.max(160, w * 0.22));
  let rowH = (stripW * 9) / 16;
  if (others * (rowH + gap) - gap > h) {
    rowH = Math.max(90, (h - gap * (others - 1)) / others);
    stripW = (rowH * 16) / 9;
  }
  const rows = Math.max(others, Math.floor((h + gap) / (rowH + gap)), 1);
  return { stripW: Math.floor(stripW), rowH: Math.floor(rowH), rows };
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
    this.el.dataset.count = String(n);
    // Someone else's shared screen is what everyone reads: it takes the stage, the cameras a strip.
    // Our own screen never does (it would be a hall of mirrors for the person sharing).
    const spot = this.el.querySelector('.tile.screen:not(.local)');
    for (const t of this.el.querySelectorAll('.tile.spot')) if (t !== spot) t.classList.remove('spot');
    if (spot && n > 1 && w > 480) {
      spot.classList.add('spot');
      const { stripW, rowH, rows } = spotlightLayout(n - 1, w, h, gap);
      this.el.dataset.layout = 'spotlight';
      this.el.style.setProperty('--strip-w', `${stripW}px`);
      this.el.style.setProperty('--row-h', `${rowH}px`);
      this.el.style.setProperty('--rows', String(rows));
      return;
    }
    spot?.classList.remove('spot');
    delete this.el.dataset.layout;
    const { cols, tileW } = bestLayout(n, w, h, gap);
    this.el.style.setProperty('--cols', String(cols));
    this.el.style.setProperty('--tile-w', `${tileW}px`);
  }

  stop() {
    this.ro.disconnect();
    this.mo.disconnect();
  }
}
