package ipcam

import (
	"context"
	"net"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley/parley/internal/ipcam/rtsptest"
	"github.com/parley/parley/internal/poll"
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (make test installs it)", b)
		}
	}
}

// TestPullCamera: a camera sending H.264 and AAC is probed, pulled as H.264 and Opus RTP, and
// pulled again after it drops its clients.
func TestPullCamera(t *testing.T) {
	needFFmpeg(t)
	cam, err := rtsptest.Start(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := Probe(ctx, cam.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !src.Video || !src.Audio || src.VideoCodec != "h264" || src.Width != 320 || src.Height != 240 || src.FrameRate != 15 {
		t.Fatalf("probed %+v", src)
	}
	var video, audio atomic.Int64
	listen := func(n *atomic.Int64, pt byte) *net.UDPAddr {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = u.Close() })
		go func() {
			buf := make([]byte, 2000)
			for {
				k, err := u.Read(buf)
				if err != nil {
					return
				}
				if k > 12 && buf[1]&0x7f == pt {
					n.Add(1)
				}
			}
		}()
		return u.LocalAddr().(*net.UDPAddr)
	}
	va, aa := listen(&video, 102), listen(&audio, 111)
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		Pull(ctx, cam.URL, src, va, aa, nil, nil)
	}()
	poll.Until(t, 20*time.Second, "H.264 and Opus RTP from the camera", func() bool { return video.Load() > 30 && audio.Load() > 20 })
	cam.Drop()
	v := video.Load()
	poll.Until(t, 20*time.Second, "the camera pulled again after it dropped", func() bool { return video.Load() > v+30 })
	cancel()
	<-pulled
}

func TestValidateURI(t *testing.T) {
	for uri, ok := range map[string]bool{
		"rtsp://cam.example:554/live":     true,
		"rtsps://user:pw@10.0.0.5/stream": true,
		"file:///etc/passwd":              false,
		"http://169.254.169.254/":         false,
		"rtsp:///nohost":                  false,
		"rtsp://cam/x -f":                 false,
		"":                                false,
	} {
		if err := ValidateURI(uri); (err == nil) != ok {
			t.Errorf("ValidateURI(%q) = %v", uri, err)
		}
	}
}
