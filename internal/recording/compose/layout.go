package compose

import (
	"cmp"
	"math"
	"slices"
	"time"
)

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

// tileReuseSlack is how much two tracks may seem to overlap and still share a tile: file
// durations are rounded and a republished stream's first frame can precede the old one's last.
const tileReuseSlack = 500 * time.Millisecond

// assignTiles gives each video input (vids indexes inputs) a tile, reusing the tile of a track
// that has ended for one that starts later, so someone who leaves frees a place for someone who
// joins and a stream published again takes the place it had: the grid has as many tiles as
// there were videos at the same time, not as many as there were streams. Tiles go to tracks in
// order of start, each to the lowest free tile; slot[k] is vids[k]'s tile, n the tile count.
func assignTiles(inputs []input, vids []int) (slot []int, n int) {
	order := make([]int, len(vids))
	for k := range order {
		order[k] = k
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(inputs[vids[a]].offset, inputs[vids[b]].offset)
	})
	slot = make([]int, len(vids))
	var freeAt []time.Duration // per tile, when its last track ends
	for _, k := range order {
		in := inputs[vids[k]]
		t := slices.IndexFunc(freeAt, func(end time.Duration) bool { return end <= in.offset+tileReuseSlack })
		if t < 0 {
			t = len(freeAt)
			freeAt = append(freeAt, 0)
		}
		slot[k], freeAt[t] = t, max(in.end, in.offset)
	}
	return slot, len(freeAt)
}
