package compose

import "math"

// rect is a tile of the output frame, in pixels.
type rect struct{ X, Y, W, H int }

// bestFit lays n tiles on a w×h frame like OpenVidu's BEST_FIT layout: the smallest square-ish
// grid that holds them (1 → full frame, 2 → side by side, 3–4 → 2×2, 5–6 → 3×2, 7–9 → 3×3, …),
// filled row by row, the last row centred when it is short, the grid centred in the frame.
// Sizes and positions are even because H.264 4:2:0 halves the chroma planes.
func bestFit(n, w, h int) []rect {
	if n <= 0 {
		return nil
	}
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	rows := (n + cols - 1) / cols
	tw, th := even(w/cols), even(h/rows)
	y0 := even((h - rows*th) / 2)
	tiles := make([]rect, 0, n)
	for r := range rows {
		inRow := min(cols, n-r*cols)
		x0 := even((w - inRow*tw) / 2)
		for c := range inRow {
			tiles = append(tiles, rect{X: x0 + c*tw, Y: y0 + r*th, W: tw, H: th})
		}
	}
	return tiles
}

// even rounds down to an even number.
func even(v int) int { return v &^ 1 }
