package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The composed outputs here are 320x180 at 10 fps so that each ffmpeg run takes well under a
// second on a busy machine.
const (
	outW, outH, outFPS = 320, 180, 10
)

func job(out string, d time.Duration, tracks ...Track) Job {
	return Job{Tracks: tracks, Out: out, Width: outW, Height: outH, FrameRate: outFPS,
		HasAudio: true, HasVideo: true, Duration: d}
}

func run(t *testing.T, j Job) string {
	t.Helper()
	var log bytes.Buffer
	j.Log = &log
	if err := Run(testCtx(t, 2*time.Minute), j); err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "progress=end") {
		t.Errorf("progress log has no progress=end:\n%s", log.String())
	}
	return log.String()
}

// A single 4:3 camera fills a 16:9 frame's height, centred between black bars.
func TestComposeOneTrackLetterboxed(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", tone: 440, length: 3 * time.Second})
	out := filepath.Join(dir, "out.mp4")
	run(t, job(out, 3*time.Second, Track{Path: red, HasAudio: true, HasVideo: true}))

	info := probeOut(t, out)
	checkDuration(t, info, 3*time.Second)
	if info.video == nil || info.video.codec != "h264" || info.video.width != outW {
		t.Fatalf("video stream %+v, want h264 %d wide", info.video, outW)
	}
	if info.video.packets < 29 || info.video.packets > 31 {
		t.Errorf("%d video frames, want 30 (3 s at %d fps)", info.video.packets, outFPS)
	}
	if info.audio == nil || info.audio.codec != "aac" {
		t.Fatalf("audio stream %+v, want aac", info.audio)
	}
	// 160x120 scaled into 320x180 is 240x180 at x=40.
	expectTiles(t, out, 1500*time.Millisecond, outW, outH, map[string]rect{
		"red":    {60, 20, 200, 140},
		"black1": {0, 0, 36, 180},
		"black2": {284, 0, 36, 180},
	})
	// The tone is summed, not divided by the number of amix inputs (the silent bed is one).
	in, got := loudness(t, red, 0, 3*time.Second), loudness(t, out, 0, 3*time.Second)
	if got < in-1.5 || got > in+1.5 {
		t.Errorf("output peak %.1f dB, input %.1f dB: levels must be kept", got, in)
	}
}

// Two people side by side, the second joining 2 s in: black tile and silence before, colour
// and sound after.
func TestComposeTwoTracksLateJoiner(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", length: 5 * time.Second})
	green := makeTrack(t, dir, "green", trackSpec{colour: "green", tone: 660, length: 3 * time.Second})
	out := filepath.Join(dir, "out.mp4")
	run(t, job(out, 5*time.Second,
		Track{Path: red, HasVideo: true},
		Track{Path: green, Offset: 2 * time.Second, HasAudio: true, HasVideo: true}))

	info := probeOut(t, out)
	checkDuration(t, info, 5*time.Second)
	if info.video == nil || info.video.packets < 49 || info.video.packets > 51 {
		t.Errorf("video %+v, want 50 frames", info.video)
	}
	if info.audio == nil {
		t.Fatal("no audio stream")
	}
	// 160x120 in a 160x180 tile: 160x120 at y=30.
	left, right := rect{0, 30, 160, 120}, rect{160, 30, 160, 120}
	expectTiles(t, out, time.Second, outW, outH, map[string]rect{"red": inner(left), "black": inner(right)})
	expectTiles(t, out, 3*time.Second, outW, outH, map[string]rect{"red": inner(left), "green": inner(right)})
	if v := loudness(t, out, 0, 1500*time.Millisecond); v > -60 {
		t.Errorf("audio before the late joiner peaks at %.1f dB, want silence", v)
	}
	if v := loudness(t, out, 2500*time.Millisecond, 2*time.Second); v < -30 {
		t.Errorf("audio after the late joiner peaks at %.1f dB, want the tone", v)
	}
}

// Three tracks make a 2x2 grid with the third centred below; one that ends early leaves its
// tile black; both voices are mixed.
func TestComposeThreeTracksOneEndsEarly(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", tone: 440, length: 4 * time.Second})
	green := makeTrack(t, dir, "green", trackSpec{colour: "green", length: 4 * time.Second})
	blue := makeTrack(t, dir, "blue", trackSpec{colour: "blue", tone: 880, length: 2 * time.Second})
	out := filepath.Join(dir, "out.mp4")
	run(t, job(out, 4*time.Second,
		Track{Path: red, HasAudio: true, HasVideo: true},
		Track{Path: green, HasVideo: true},
		Track{Path: blue, Offset: 500 * time.Millisecond, HasAudio: true, HasVideo: true}))

	checkDuration(t, probeOut(t, out), 4*time.Second)
	// Tiles are 160x90; a 4:3 picture in them is 120x90.
	tl, tr, bottom := rect{20, 0, 120, 90}, rect{180, 0, 120, 90}, rect{100, 90, 120, 90}
	corner := rect{0, 100, 60, 80} // the unused bottom-left corner
	expectTiles(t, out, 1500*time.Millisecond, outW, outH, map[string]rect{
		"red": inner(tl), "green": inner(tr), "blue": inner(bottom), "black": corner})
	expectTiles(t, out, 3500*time.Millisecond, outW, outH, map[string]rect{
		"red": inner(tl), "green": inner(tr), "black": inner(bottom)})
	// Both tones (440 and 880 Hz) mixed: the sum peaks above either alone.
	both, redOnly := loudness(t, out, 1*time.Second, time.Second), loudness(t, out, 3*time.Second, time.Second)
	if redOnly < -30 || both < redOnly+2 {
		t.Errorf("peaks %.1f dB with two voices, %.1f dB with one: want both mixed, undivided", both, redOnly)
	}
}

func TestComposeAudioOnly(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	a := makeTrack(t, dir, "a", trackSpec{tone: 440, length: 3 * time.Second})
	b := makeTrack(t, dir, "b", trackSpec{colour: "red", tone: 660, length: 2 * time.Second})
	out := filepath.Join(dir, "out.webm")
	run(t, Job{Out: out, HasAudio: true, Duration: 4 * time.Second, Tracks: []Track{
		{Path: a, HasAudio: true},
		{Path: b, Offset: time.Second, HasAudio: true, HasVideo: true}}})

	info := probeOut(t, out)
	checkDuration(t, info, 4*time.Second)
	if info.video != nil {
		t.Errorf("audio-only output has a video stream %+v", info.video)
	}
	if info.audio == nil || info.audio.codec != "opus" {
		t.Fatalf("audio %+v, want opus", info.audio)
	}
	if v := loudness(t, out, 500*time.Millisecond, 2*time.Second); v < -30 {
		t.Errorf("peak %.1f dB, want the tones", v)
	}
	if v := loudness(t, out, 3200*time.Millisecond, 700*time.Millisecond); v > -60 {
		t.Errorf("peak %.1f dB after every track ended, want silence", v)
	}
}

func TestComposeVideoOnly(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", tone: 440, length: 2 * time.Second})
	out := filepath.Join(dir, "out.mp4")
	j := job(out, 2*time.Second, Track{Path: red, HasAudio: true, HasVideo: true})
	j.HasAudio = false
	run(t, j)
	info := probeOut(t, out)
	checkDuration(t, info, 2*time.Second)
	if info.audio != nil {
		t.Errorf("video-only output has an audio stream %+v", info.audio)
	}
	if info.video == nil || info.video.codec != "h264" {
		t.Errorf("video %+v, want h264", info.video)
	}
}

// A browser lowers and raises its resolution mid-call; the file's later keyframes then carry
// another size than its header. The tile must keep its place and the clock must not restart.
func TestComposeResolutionChange(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	small := makeTrack(t, dir, "small", trackSpec{colour: "red", size: "160x120", tone: 440, length: 2 * time.Second})
	big := makeTrack(t, dir, "big", trackSpec{colour: "green", size: "320x240", tone: 440, length: 2 * time.Second})
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte("file '"+small+"'\nfile '"+big+"'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	both := filepath.Join(dir, "both.webm")
	tool(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", list, "-c", "copy", both)
	other := makeTrack(t, dir, "blue", trackSpec{colour: "blue", length: 4 * time.Second})

	out := filepath.Join(dir, "out.mp4")
	run(t, job(out, 4*time.Second,
		Track{Path: both, HasAudio: true, HasVideo: true},
		Track{Path: other, HasVideo: true}))
	info := probeOut(t, out)
	checkDuration(t, info, 4*time.Second)
	if info.video == nil || info.video.packets < 39 || info.video.packets > 41 {
		t.Errorf("video %+v, want 40 frames", info.video)
	}
	left, right := rect{0, 30, 160, 120}, rect{160, 30, 160, 120}
	expectTiles(t, out, time.Second, outW, outH, map[string]rect{"red": inner(left), "blue": inner(right)})
	expectTiles(t, out, 3*time.Second, outW, outH, map[string]rect{"green": inner(left), "blue": inner(right)})
}

// A track whose file is unreadable costs its tile, not the recording.
func TestComposeBrokenTrackLeftOut(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", tone: 440, length: 2 * time.Second})
	broken := filepath.Join(dir, "broken.webm")
	if err := os.WriteFile(broken, []byte("not a webm file"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.mp4")
	log := run(t, job(out, 2*time.Second,
		Track{Path: broken, HasAudio: true, HasVideo: true},
		Track{Path: red, HasAudio: true, HasVideo: true}))
	if !strings.Contains(log, "track 0 ("+broken+") left out") {
		t.Errorf("log does not say the broken track was left out:\n%s", log)
	}
	// The one readable track gets the whole frame.
	expectTiles(t, out, time.Second, outW, outH, map[string]rect{"red": {60, 20, 200, 140}})
}

// signalWriter closes started at ffmpeg's first progress report.
type signalWriter struct {
	once    sync.Once
	started chan struct{}
}

func (s *signalWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("progress=")) {
		s.once.Do(func() { close(s.started) })
	}
	return len(p), nil
}

func TestComposeCancelKillsFFmpeg(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", tone: 440, length: 2 * time.Second})
	out := filepath.Join(dir, "out.mp4")
	// An hour at 1080p would take far longer than the test's deadline.
	j := Job{Tracks: []Track{{Path: red, HasAudio: true, HasVideo: true}}, Out: out,
		Width: 1920, Height: 1080, FrameRate: 30, HasAudio: true, HasVideo: true, Duration: time.Hour}
	sw := &signalWriter{started: make(chan struct{})}
	j.Log = sw
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, j) }()
	select {
	case <-sw.started:
	case err := <-done:
		t.Fatalf("Run ended before any progress: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("no progress report within a minute")
	}
	stop := errors.New("operator stopped it")
	cancel(stop)
	select {
	case err := <-done:
		if !errors.Is(err, stop) {
			t.Errorf("Run = %v, want the cancel cause", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running 10 s after cancel")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "out.mp4") {
			t.Errorf("%s left behind after cancel", e.Name())
		}
	}
}

func TestThumbnail(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", length: 4 * time.Second})
	green := makeTrack(t, dir, "green", trackSpec{colour: "green", length: 2 * time.Second})
	out := filepath.Join(dir, "out.mp4")
	// Green appears at 1 s and ends at 3 s: the middle frame (2 s) shows both.
	run(t, job(out, 4*time.Second, Track{Path: red, HasVideo: true}, Track{Path: green, Offset: time.Second, HasVideo: true}))
	jpg := filepath.Join(dir, "out.jpg")
	if err := Thumbnail(testCtx(t, time.Minute), out, jpg); err != nil {
		t.Fatal(err)
	}
	info := probeOut(t, jpg)
	if info.video == nil || info.video.codec != "mjpeg" || info.video.width != outW {
		t.Fatalf("thumbnail %+v, want a %d-wide JPEG", info.video, outW)
	}
	left, right := rect{0, 30, 160, 120}, rect{160, 30, 160, 120}
	expectTiles(t, jpg, 0, outW, outH, map[string]rect{"red": inner(left), "green": inner(right)})

	if err := Thumbnail(testCtx(t, time.Minute), filepath.Join(dir, "missing.mp4"), jpg+"2"); err == nil || exists(jpg+"2") {
		t.Errorf("thumbnail of a missing file: err %v, file written %v", err, exists(jpg+"2"))
	}
}

func TestValidate(t *testing.T) {
	ok := Job{Tracks: []Track{{Path: "a.webm", HasAudio: true, HasVideo: true}}, Out: "x.mp4",
		Width: 1280, Height: 720, FrameRate: 25, HasAudio: true, HasVideo: true, Duration: time.Minute}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid job: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(*Job)
		wants []string
	}{
		{"no tracks", func(j *Job) { j.Tracks = nil }, []string{"no tracks"}},
		{"empty path", func(j *Job) { j.Tracks[0].Path = "" }, []string{"track 0 has no path"}},
		{"negative offset", func(j *Job) { j.Tracks[0].Offset = -time.Second }, []string{"negative offset"}},
		{"too small", func(j *Job) { j.Width = 99 }, []string{"resolution 99x720"}},
		{"too big", func(j *Job) { j.Height = 2000 }, []string{"resolution 1280x2000"}},
		{"frame rate", func(j *Job) { j.FrameRate = 0 }, []string{"frame rate 0"}},
		{"no kinds", func(j *Job) { j.HasAudio, j.HasVideo = false, false }, []string{"neither audio nor video"}},
		{"no duration", func(j *Job) { j.Duration = 0 }, []string{"duration 0s"}},
		{"wrong container", func(j *Job) { j.Out = "x.webm" }, []string{"is an .mp4"}},
		{"audio-only mp4", func(j *Job) { j.HasVideo = false }, []string{"is a .webm"}},
		{"all at once", func(j *Job) { j.Tracks, j.Out, j.Width = nil, "", 5000 },
			[]string{"no tracks", "no output file", "resolution 5000x720"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := ok
			j.Tracks = append([]Track(nil), ok.Tracks...)
			tt.edit(&j)
			err := j.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			// Run refuses before starting anything.
			if rerr := Run(context.Background(), j); !errors.Is(rerr, ErrInvalid) {
				t.Errorf("Run = %v, want ErrInvalid", rerr)
			}
		})
	}
	// Audio-only jobs ignore the video settings.
	a := ok
	a.HasVideo, a.Out, a.Width, a.FrameRate = false, "x.webm", 0, 0
	if err := a.Validate(); err != nil {
		t.Errorf("audio-only job with no video settings: %v", err)
	}
}

// Without ffmpeg on PATH, Run says what to install instead of failing on a missing file.
func TestComposeWithoutFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	j := job(filepath.Join(t.TempDir(), "out.mp4"), time.Second, Track{Path: "a.webm", HasVideo: true})
	if err := Run(context.Background(), j); !errors.Is(err, ErrNoFFmpeg) {
		t.Errorf("Run = %v, want ErrNoFFmpeg", err)
	}
	if err := Thumbnail(context.Background(), "a.mp4", "a.jpg"); !errors.Is(err, ErrNoFFmpeg) {
		t.Errorf("Thumbnail = %v, want ErrNoFFmpeg", err)
	}
}

// Seven cameras without microphones make a 3x3 grid filled row by row, the last row centred;
// the output still has an audio track, silent, for players that expect one.
func TestComposeSevenTracksGrid(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	colours := []string{"red", "green", "blue", "red", "green", "blue", "red"}
	var tracks []Track
	for i, c := range colours {
		tracks = append(tracks, Track{Path: makeTrack(t, dir, fmt.Sprint(i), trackSpec{colour: c, length: 2 * time.Second}), HasVideo: true})
	}
	out := filepath.Join(dir, "out.mp4")
	// 300x180: 100x60 tiles, each 4:3 picture 80x60 in the middle of its tile.
	j := job(out, 2*time.Second, tracks...)
	j.Width = 300
	run(t, j)
	info := probeOut(t, out)
	if info.audio == nil || info.audio.codec != "aac" {
		t.Fatalf("audio %+v, want a silent aac track", info.audio)
	}
	if v := loudness(t, out, 0, 2*time.Second); v > -60 {
		t.Errorf("audio peaks at %.1f dB with no microphones, want silence", v)
	}
	want := map[string]rect{}
	for i, tl := range bestFit(7, 300, 180) {
		want[fmt.Sprintf("%s%d", colours[i], i)] = inner(rect{tl.X + 10, tl.Y, 80, 60})
	}
	if got := bestFit(7, 300, 180)[6]; got != (rect{100, 120, 100, 60}) {
		t.Fatalf("seventh tile %v, want the bottom row's centre", got)
	}
	want["black1"] = rect{10, 130, 60, 40}  // bottom-left, unused
	want["black2"] = rect{230, 130, 60, 40} // bottom-right, unused
	expectTiles(t, out, time.Second, 300, outH, want)
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A log that cannot be written costs the log, not the recording; a track named like an ffmpeg
// protocol is read as the file it is.
func TestComposeFailingLogAndProtocolLikeName(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", tone: 440, length: 2 * time.Second})
	// A relative name that looks like an ffmpeg protocol is still read as a file.
	t.Chdir(dir)
	if err := os.Rename(red, filepath.Join(dir, "concat:red.webm")); err != nil {
		t.Fatal(err)
	}
	j := job(filepath.Join(dir, "out.mp4"), 2*time.Second, Track{Path: "concat:red.webm", HasAudio: true, HasVideo: true})
	j.Log = failingWriter{}
	if err := Run(testCtx(t, time.Minute), j); err != nil {
		t.Fatalf("Run with a failing log: %v", err)
	}
	checkDuration(t, probeOut(t, j.Out), 2*time.Second)
	expectTiles(t, j.Out, time.Second, outW, outH, map[string]rect{"red": {60, 20, 200, 140}})
}

// Red leaves at 2 s and blue joins at 2.5 s: blue takes red's tile, the grid stays two wide.
func TestComposeJoinerTakesLeaversTile(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", length: 2 * time.Second})
	green := makeTrack(t, dir, "green", trackSpec{colour: "green", length: 3 * time.Second})
	blue := makeTrack(t, dir, "blue", trackSpec{colour: "blue", length: 1500 * time.Millisecond})
	out := filepath.Join(dir, "out.mp4")
	run(t, job(out, 4*time.Second,
		Track{Path: red, HasVideo: true},
		Track{Path: blue, Offset: 2500 * time.Millisecond, HasVideo: true},
		Track{Path: green, Offset: time.Second, HasVideo: true}))
	left, right := rect{0, 30, 160, 120}, rect{160, 30, 160, 120}
	expectTiles(t, out, 1500*time.Millisecond, outW, outH, map[string]rect{"red": inner(left), "green": inner(right)})
	expectTiles(t, out, 2200*time.Millisecond, outW, outH, map[string]rect{"black": inner(left), "green": inner(right)})
	expectTiles(t, out, 3200*time.Millisecond, outW, outH, map[string]rect{"blue": inner(left), "green": inner(right)})
}

// The writer stores VP8 and VP9 in WebM and H.264 in Matroska; all three mix alike.
func TestComposeEveryRecordedCodec(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	vp8 := makeTrack(t, dir, "vp8", trackSpec{colour: "red", tone: 440, length: 2 * time.Second})
	vp9 := makeTrack(t, dir, "vp9", trackSpec{colour: "green", tone: 440, length: 2 * time.Second, codec: "vp9"})
	h264 := makeTrack(t, dir, "h264", trackSpec{colour: "blue", tone: 440, length: 2 * time.Second, codec: "h264"})
	out := filepath.Join(dir, "out.mp4")
	run(t, job(out, 2*time.Second,
		Track{Path: vp8, HasAudio: true, HasVideo: true},
		Track{Path: vp9, HasAudio: true, HasVideo: true},
		Track{Path: h264, HasAudio: true, HasVideo: true}))
	expectTiles(t, out, time.Second, outW, outH, map[string]rect{
		"red": inner(rect{20, 0, 120, 90}), "green": inner(rect{180, 0, 120, 90}), "blue": inner(rect{100, 90, 120, 90})})
}
