package compose

import (
	"encoding/binary"
	"errors"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSegmentUnit(t *testing.T) {
	for fps, want := range map[int]time.Duration{25: 320 * time.Millisecond, 30: 8 * time.Second / 15,
		10: 1600 * time.Millisecond, 24: 8 * time.Second / 3, 7: 8 * time.Second} {
		u := SegmentUnit(fps)
		if u != want {
			t.Errorf("SegmentUnit(%d) = %v, want %v", fps, u, want)
		}
		// Whole video frames and whole AAC frames.
		// Whole video frames and whole AAC frames (to the nanosecond Duration rounds to).
		near := func(x, unit int64) bool { r := x % unit; return r < 100000 || unit-r < 100000 }
		if !near(int64(u)*int64(fps), int64(time.Second)) || !near(int64(u)*48000, 1024*int64(time.Second)) {
			t.Errorf("SegmentUnit(%d) = %v holds partial frames", fps, u)
		}
	}
	if got := SegmentLength(10*time.Second, 25); got != 10240*time.Millisecond {
		t.Errorf("SegmentLength(10 s, 25) = %v, want 10.24 s", got)
	}
}

func TestTrimADTS(t *testing.T) {
	var b []byte
	for i := range 5 {
		l := 7 + i
		f := make([]byte, l)
		f[0], f[1] = 0xFF, 0xF1
		f[3], f[4], f[5] = byte(l>>11)&3, byte(l>>3), byte(l<<5)
		b = append(b, f...)
	}
	got, err := trimADTS(b, 2, 2)
	if err != nil || len(got) != 9+10 {
		t.Fatalf("trimADTS = %d bytes, %v; want frames 2 and 3 (19 bytes)", len(got), err)
	}
	if got, _ := trimADTS(b, 2, 10); len(got) != 9+10+11 {
		t.Errorf("keep beyond the end: %d bytes, want 30", len(got))
	}
	if _, err := trimADTS([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 0, 1); err == nil {
		t.Error("garbage accepted as ADTS")
	}
}

// A call mixed in segments while it goes on and joined at the end is one continuous MP4: its
// length is the call's, the picture has both tiles at every join, and the tone runs through the
// joins without a gap or a click of silence. The first stream is written in two overlapping
// parts, as the recorder writes a long call.
func TestSegmentsJoined(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	redA := makeTrack(t, dir, "redA", trackSpec{colour: "red", tone: 440, length: 3500 * time.Millisecond})
	redB := makeTrack(t, dir, "redB", trackSpec{colour: "red", tone: 440, length: 4 * time.Second})
	green := makeTrack(t, dir, "green", trackSpec{colour: "green", length: 5 * time.Second})
	parts := []Track{
		// The second part starts 0.2 s before the 3.2 s join and takes over there.
		{Path: redA, Stream: "red", HasAudio: true, HasVideo: true, Length: 3500 * time.Millisecond, Until: 3200 * time.Millisecond},
		{Path: redB, Stream: "red", Offset: 3 * time.Second, HasAudio: true, HasVideo: true, Length: 4 * time.Second, Since: 3200 * time.Millisecond},
		{Path: green, Stream: "green", Offset: time.Second, HasVideo: true, Length: 5 * time.Second},
	}
	const call = 7 * time.Second
	seg := SegmentLength(3*time.Second, outFPS) // 3.2 s
	var videos, audios []string
	for from := time.Duration(0); from < call; from += seg {
		n := len(videos)
		s := Segment{From: from, Length: min(seg, call-from), Width: outW, Height: outH, FrameRate: outFPS,
			Video: filepath.Join(dir, "s"+string(rune('0'+n))+".mp4"), Audio: filepath.Join(dir, "s"+string(rune('0'+n))+".aac")}
		// A live mix gets only the parts that reach into its window.
		for _, p := range parts {
			if p.Offset < s.From+s.Length && p.Offset+p.Length > s.From {
				s.Tracks = append(s.Tracks, p)
			}
		}
		if err := MixSegment(testCtx(t, 2*time.Minute), s); err != nil {
			t.Fatal(err)
		}
		videos, audios = append(videos, s.Video), append(audios, s.Audio)
	}
	out := joinSeven(t, dir, videos, audios)
	left, right := rect{0, 30, 160, 120}, rect{160, 30, 160, 120}
	expectTiles(t, out, 500*time.Millisecond, outW, outH, map[string]rect{"red": inner(rect{60, 20, 200, 140})})
	for _, at := range []time.Duration{1500 * time.Millisecond, seg - 100*time.Millisecond, seg, seg + 50*time.Millisecond, 5900 * time.Millisecond} {
		expectTiles(t, out, at, outW, outH, map[string]rect{"red": inner(left), "green": inner(right)})
	}
	// Green leaves at 6 s: its tile is black for the rest of that segment; the next segment has
	// red alone, full frame.
	expectTiles(t, out, 6200*time.Millisecond, outW, outH, map[string]rect{"red": inner(left), "black": inner(right)})
	expectTiles(t, out, 6600*time.Millisecond, outW, outH, map[string]rect{"red": inner(rect{60, 20, 200, 140})})
	checkToneSteady(t, out)
}

// A segment mixed at the lowest priority whose Boost is closed (the recording stopped) is put
// back to full priority and finishes; where that is not allowed it is stopped with ErrNotBoosted
// for the caller to mix again.
func TestSegmentBoosted(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", tone: 440, length: 2 * time.Second})
	boost := make(chan struct{})
	close(boost)
	var log strings.Builder
	s := Segment{Length: SegmentUnit(outFPS), Width: outW, Height: outH, FrameRate: outFPS, Nice: LiveNice, Boost: boost,
		Video: filepath.Join(dir, "s.mp4"), Audio: filepath.Join(dir, "s.aac"), Log: &log,
		Tracks: []Track{{Path: red, HasAudio: true, HasVideo: true, Length: 2 * time.Second}}}
	err := MixSegment(testCtx(t, 2*time.Minute), s)
	if syscall.Geteuid() != 0 {
		if !errors.Is(err, ErrNotBoosted) {
			t.Fatalf("without the right to raise priority: %v, want ErrNotBoosted", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "now at full priority") {
		t.Errorf("the mix was not raised to full priority; log:\n%s", log.String())
	}
	if info, want := probeOut(t, s.Video), int(s.Length*outFPS/time.Second); info.video == nil || info.video.packets != want {
		t.Errorf("video %+v, want the unit's %d frames", info.video, want)
	}
}

// checkToneSteady checks that the tone's level in every 10 ms from 0.1 s to the end stays
// within 3 dB of the mean: no gap or click at a join.
func checkToneSteady(t *testing.T, out string) {
	t.Helper()
	pcm, err := exec.Command("ffmpeg", "-v", "error", "-i", out, "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "s16le", "pipe:1").Output()
	if err != nil {
		t.Fatal(err)
	}
	const block = 480
	var levels []float64
	for i := 4800 * 2; i+block*2 <= len(pcm)-4800*2; i += block * 2 {
		var sum float64
		for j := 0; j < block; j++ {
			v := float64(int16(binary.LittleEndian.Uint16(pcm[i+2*j:])))
			sum += v * v
		}
		levels = append(levels, 10*math.Log10(sum/block+1e-9))
	}
	var mean float64
	for _, l := range levels {
		mean += l / float64(len(levels))
	}
	for i, l := range levels {
		if math.Abs(l-mean) > 3 {
			t.Errorf("audio at %.2f s is %.1f dB from its mean: a gap or glitch at a join", 0.1+float64(i)*0.01, l-mean)
		}
	}
}

// joinSeven joins the pieces (videos[i] with audios[i]) into dir/out.mp4 as stop does and checks
// what the tests' 7-second call must give: every frame decodes without an error, the duration is
// the call's, 70 video frames (10 fps) and 7 s of AAC frames. It returns the MP4's path.
func joinSeven(t *testing.T, dir string, videos, audios []string) string {
	t.Helper()
	const call = 7 * time.Second
	out := filepath.Join(dir, "out.mp4")
	o, err := NewOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	for i := range videos {
		if err := o.Append(videos[i], audios[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", out, "-f", "null", "-").CombinedOutput(); err != nil || len(msg) > 0 {
		t.Errorf("decoding the MP4: %v\n%s", err, msg)
	}
	info := probeOut(t, out)
	checkDuration(t, info, call)
	if info.video == nil || info.video.packets != 70 {
		t.Errorf("video %+v, want 70 frames (7 s at 10 fps)", info.video)
	}
	if info.audio == nil || info.audio.packets < 328 || info.audio.packets > 329 {
		t.Errorf("audio %+v, want 7 s of AAC frames (328)", info.audio)
	}
	return out
}
