// Package ipcam pulls an IP camera's RTSP stream into the SFU: ffprobe says what the camera sends,
// and an ffmpeg process per camera reads it and sends RTP to the SFU's ingest sockets on loopback:
// H.264 as the camera encoded it (parameter sets repeated at each keyframe, so a subscriber that
// starts late can decode), any other video as H.264 Constrained Baseline, any audio as Opus.
// When the camera drops, ffmpeg is started again with a growing delay.
package ipcam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Source is what a camera sends.
type Source struct {
	Video, Audio bool
	// VideoCodec is ffprobe's codec name ("h264", "hevc", "mjpeg"…).
	VideoCodec    string
	Width, Height int
	FrameRate     int
}

// protocols are the only ones ffmpeg may open for a camera URI: an application's rtspUri must
// not make the server read its own files or call internal HTTP services.
const protocols = "rtsp,rtsps,tcp,udp,tls,rtp,srtp"

// ioTimeout bounds each read from the camera (ffmpeg's -timeout, in microseconds): a camera that
// stops sending ends the process, which is then restarted.
const ioTimeout = "5000000"

// Available tells whether ffmpeg and ffprobe are installed.
func Available() bool {
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			return false
		}
	}
	return true
}

// ValidateURI checks that uri is an rtsp:// or rtsps:// URL with a host.
func ValidateURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
		return errors.New(`"rtspUri" must be an rtsp:// or rtsps:// URL with a host`)
	}
	if strings.ContainsAny(uri, " \t\r\n") {
		return errors.New(`"rtspUri" must not contain white space`)
	}
	return nil
}

// Probe asks the camera what it sends; ctx bounds it.
func Probe(ctx context.Context, uri string) (Source, error) {
	if err := ValidateURI(uri); err != nil {
		return Source{}, err
	}
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-timeout", ioTimeout,
		"-protocol_whitelist", protocols, "-show_entries", "stream=codec_type,codec_name,width,height,avg_frame_rate",
		"-of", "json", uri)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return Source{}, fmt.Errorf("camera %s: %s", redact(uri), firstLine(ee.Stderr))
		}
		return Source{}, fmt.Errorf("camera %s: %w", redact(uri), err)
	}
	var probed struct {
		Streams []struct {
			Type   string `json:"codec_type"`
			Codec  string `json:"codec_name"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
			Rate   string `json:"avg_frame_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probed); err != nil {
		return Source{}, fmt.Errorf("camera %s: unreadable probe: %w", redact(uri), err)
	}
	var s Source
	for _, st := range probed.Streams {
		switch {
		case st.Type == "video" && !s.Video:
			s.Video, s.VideoCodec, s.Width, s.Height, s.FrameRate = true, st.Codec, st.Width, st.Height, frameRate(st.Rate)
		case st.Type == "audio":
			s.Audio = true
		}
	}
	if !s.Video && !s.Audio {
		return Source{}, fmt.Errorf("camera %s sends neither audio nor video", redact(uri))
	}
	return s, nil
}

// frameRate reads ffprobe's "30/1" or "30000/1001", rounded; 0 when unknown.
func frameRate(r string) int {
	n, d, ok := strings.Cut(r, "/")
	num, err1 := strconv.ParseFloat(n, 64)
	den, err2 := strconv.ParseFloat(d, 64)
	if !ok || err1 != nil || err2 != nil || den == 0 {
		return 0
	}
	return int(num/den + 0.5)
}

// Args are ffmpeg's arguments to pull uri and send src's tracks as RTP to video and audio.
func Args(uri string, src Source, video, audio *net.UDPAddr) []string {
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-timeout", ioTimeout,
		"-protocol_whitelist", protocols, "-i", uri}
	if src.Video && video != nil {
		args = append(args, "-map", "0:v:0", "-an")
		if src.VideoCodec == "h264" {
			args = append(args, "-c:v", "copy", "-bsf:v", "dump_extra=freq=keyframe")
		} else {
			args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline",
				"-pix_fmt", "yuv420p", "-g", "50")
		}
		args = append(args, "-f", "rtp", "-payload_type", "102", rtpURL(video))
	}
	if src.Audio && audio != nil {
		args = append(args, "-map", "0:a:0", "-vn", "-c:a", "libopus", "-ar", "48000", "-ac", "2", "-b:a", "64k",
			"-f", "rtp", "-payload_type", "111", rtpURL(audio))
	}
	return args
}

func rtpURL(a *net.UDPAddr) string {
	return "rtp://" + a.String() + "?pkt_size=1200"
}

// Backoff bounds the delay before the camera is pulled again after ffmpeg ended: it starts at
// backoffMin, doubles on each failure and falls back to backoffMin once a pull lasted backoffMax.
const (
	backoffMin = time.Second
	backoffMax = 30 * time.Second
)

// Pull runs ffmpeg for the camera until ctx ends, starting it again with backoff whenever it
// exits. onState is told "connected" when a pull starts and "disconnected" when it ends (optional).
func Pull(ctx context.Context, uri string, src Source, video, audio *net.UDPAddr, log *slog.Logger, onState func(string)) {
	if log == nil {
		log = slog.Default()
	}
	delay := backoffMin
	for ctx.Err() == nil {
		started := time.Now()
		cmd := exec.CommandContext(ctx, "ffmpeg", Args(uri, src, video, audio)...)
		var stderr strings.Builder
		cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
		if onState != nil {
			onState("connected")
		}
		err := cmd.Run()
		if onState != nil {
			onState("disconnected")
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) >= backoffMax {
			delay = backoffMin
		}
		log.Warn("camera pull ended; retrying", "camera", redact(uri), "err", err, "stderr", firstLine([]byte(stderr.String())), "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, backoffMax)
	}
}

// Linger is how long a camera pulled only for its subscribers goes on after the last one left:
// a subscriber that reconnects, or the next one to come, finds it still playing.
const Linger = 3 * time.Second

// OnDemand runs pull while count() > 0 (onlyPlayWithSubscribers): from the first subscriber to
// Linger after the last, rechecking count whenever changed receives, until ctx ends. One pull
// at a time: the next starts once the one before has returned.
func OnDemand(ctx context.Context, changed <-chan struct{}, count func() int, pull func(context.Context)) {
	type running struct {
		stop context.CancelFunc
		done chan struct{}
	}
	var cur *running
	linger := time.NewTimer(Linger)
	linger.Stop()
	stopPull := func() {
		if cur != nil {
			cur.stop()
			<-cur.done
			cur = nil
		}
	}
	defer stopPull()
	for {
		select {
		case <-ctx.Done():
			return
		case <-linger.C:
			if count() == 0 {
				stopPull()
			}
			continue
		case <-changed:
		}
		if count() == 0 {
			if cur != nil {
				linger.Reset(Linger)
			}
			continue
		}
		linger.Stop()
		if cur == nil {
			pctx, stop := context.WithCancel(ctx)
			cur = &running{stop: stop, done: make(chan struct{})}
			go func(done chan struct{}) {
				defer close(done)
				pull(pctx)
			}(cur.done)
		}
	}
}

// limitedWriter keeps the first n bytes of ffmpeg's complaints.
type limitedWriter struct {
	w interface{ WriteString(string) (int, error) }
	n int
}

func (l *limitedWriter) Write(b []byte) (int, error) {
	if l.n > 0 {
		k := min(len(b), l.n)
		_, _ = l.w.WriteString(string(b[:k]))
		l.n -= k
	}
	return len(b), nil
}

// redact drops the credentials from a camera URI for logs and errors.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparseable URI)"
	}
	u.User = nil
	return u.String()
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
