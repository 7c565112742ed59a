package compose

import (
	"fmt"
	"testing"
	"time"
)

func TestBestFit(t *testing.T) {
	tests := []struct {
		n    int
		want []rect
	}{
		{1, []rect{{0, 0, 1280, 720}}},
		{2, []rect{{0, 0, 640, 720}, {640, 0, 640, 720}}},
		{3, []rect{{0, 0, 640, 360}, {640, 0, 640, 360}, {320, 360, 640, 360}}},
		{4, []rect{{0, 0, 640, 360}, {640, 0, 640, 360}, {0, 360, 640, 360}, {640, 360, 640, 360}}},
		{5, []rect{{0, 0, 426, 360}, {426, 0, 426, 360}, {852, 0, 426, 360}, {214, 360, 426, 360}, {640, 360, 426, 360}}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			got := bestFit(tt.n, 1280, 720)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("bestFit(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

// TestBestFitInsideFrame checks every count up to 25 on odd-sized frames: tiles stay inside the
// frame, never overlap, and have even sizes and positions.
func TestBestFitInsideFrame(t *testing.T) {
	for _, size := range [][2]int{{1280, 720}, {1999, 1001}, {100, 100}} {
		for n := 1; n <= 25; n++ {
			tiles := bestFit(n, size[0], size[1])
			if len(tiles) != n {
				t.Fatalf("%v n=%d: %d tiles", size, n, len(tiles))
			}
			for i, a := range tiles {
				if a.X < 0 || a.Y < 0 || a.X+a.W > size[0] || a.Y+a.H > size[1] || a.W <= 0 || a.H <= 0 {
					t.Errorf("%v n=%d: tile %d %v outside the frame", size, n, i, a)
				}
				if a.X%2+a.Y%2+a.W%2+a.H%2 != 0 {
					t.Errorf("%v n=%d: tile %d %v not even", size, n, i, a)
				}
				for _, b := range tiles[i+1:] {
					if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
						t.Errorf("%v n=%d: tiles %v and %v overlap", size, n, a, b)
					}
				}
			}
		}
	}
}

func TestAssignTiles(t *testing.T) {
	s := time.Second
	tests := []struct {
		name   string
		spans  [][2]time.Duration // offset, end
		want   []int
		nTiles int
	}{
		{"all at once", [][2]time.Duration{{0, 10 * s}, {0, 10 * s}, {0, 10 * s}}, []int{0, 1, 2}, 3},
		{"one after the other", [][2]time.Duration{{0, 3 * s}, {3 * s, 6 * s}, {6 * s, 9 * s}}, []int{0, 0, 0}, 1},
		{"a leaver's tile goes to the next joiner", [][2]time.Duration{{0, 4 * s}, {s, 10 * s}, {5 * s, 10 * s}}, []int{0, 1, 0}, 2},
		{"listed out of order", [][2]time.Duration{{5 * s, 10 * s}, {0, 4 * s}, {s, 10 * s}}, []int{0, 0, 1}, 2},
		{"republished a moment early", [][2]time.Duration{{0, 4 * s}, {4*s - 200*time.Millisecond, 10 * s}}, []int{0, 0}, 1},
		{"real overlap", [][2]time.Duration{{0, 4 * s}, {3 * s, 10 * s}}, []int{0, 1}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inputs []input
			var vids []int
			for i, sp := range tt.spans {
				inputs = append(inputs, input{offset: sp[0], end: sp[1], video: true})
				vids = append(vids, i)
			}
			slot, n := assignTiles(inputs, vids)
			if fmt.Sprint(slot) != fmt.Sprint(tt.want) || n != tt.nTiles {
				t.Errorf("assignTiles = %v, %d tiles; want %v, %d", slot, n, tt.want, tt.nTiles)
			}
		})
	}
}
