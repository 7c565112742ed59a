// Package rtsptest is an RTSP camera for tests: ffmpeg encodes a test pattern (H.264, and Opus when
// asked) to RTP on loopback, and a minimal RTSP server (OPTIONS, DESCRIBE, SETUP with TCP
// interleaving, PLAY, TEARDOWN) relays it to each client that plays. No RTSP server library is
// served by this project's module proxy, and Debian's ffmpeg cannot serve RTSP itself.
package rtsptest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Camera is a running test camera.
type Camera struct {
	// URL is its rtsp:// address.
	URL string

	ln      net.Listener
	cancel  context.CancelFunc
	ffmpeg  *exec.Cmd
	sdpFile string
	tracks  int

	mu      sync.Mutex
	clients map[int]map[net.Conn]bool // by track: connections playing it
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

// Start starts a camera sending a 320x240 test pattern at 15 fps (and a tone, with audio) on a
// loopback port. Stop ends it.
func Start(dir string, audio bool) (*Camera, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Camera{cancel: cancel, clients: map[int]map[net.Conn]bool{}, conns: map[net.Conn]bool{}}
	fail := func(err error) (*Camera, error) { c.Stop(); return nil, err }
	var socks []*net.UDPConn
	for range 1 + btoi(audio) {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return fail(err)
		}
		socks = append(socks, u)
	}
	c.tracks = len(socks)
	sdpFile := filepath.Join(dir, "camera.sdp")
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"}
	if audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	args = append(args, "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
		"-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "15", "-f", "rtp", "-payload_type", "96",
		fmt.Sprintf("rtp://%s?pkt_size=1200", socks[0].LocalAddr()))
	if audio {
		args = append(args, "-map", "1:a", "-c:a", "aac", "-b:a", "64k", "-f", "rtp", "-payload_type", "97",
			fmt.Sprintf("rtp://%s?pkt_size=1200", socks[1].LocalAddr()))
	}
	args = append(args, "-sdp_file", sdpFile)
	c.ffmpeg = exec.CommandContext(ctx, "ffmpeg", args...)
	if err := c.ffmpeg.Start(); err != nil {
		return fail(err)
	}
	// ffmpeg writes the SDP once its outputs are open: the camera is described from then on.
	for tries := 0; ; tries++ {
		if st, err := os.Stat(sdpFile); err == nil && st.Size() > 0 {
			break
		}
		if tries == 500 {
			return fail(fmt.Errorf("ffmpeg wrote no SDP in 10 s"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, u := range socks {
		c.wg.Add(1)
		go c.relay(ctx, i, u)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	c.ln = ln
	c.URL = "rtsp://" + ln.Addr().String() + "/cam"
	c.sdpFile = sdpFile
	c.wg.Add(1)
	go c.accept()
	return c, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// relay sends track i's RTP to every client playing it, interleaved on channel 2i.
func (c *Camera) relay(ctx context.Context, i int, u *net.UDPConn) {
	defer c.wg.Done()
	go func() { <-ctx.Done(); _ = u.Close() }()
	buf := make([]byte, 4+1500)
	for {
		n, err := u.Read(buf[4:])
		if err != nil {
			return
		}
		buf[0], buf[1], buf[2], buf[3] = '$', byte(2*i), byte(n>>8), byte(n)
		c.mu.Lock()
		for conn := range c.clients[i] {
			if _, err := conn.Write(buf[:4+n]); err != nil {
				delete(c.clients[i], conn)
			}
		}
		c.mu.Unlock()
	}
}

func (c *Camera) accept() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		c.conns[conn] = true
		c.mu.Unlock()
		c.wg.Add(1)
		go c.serve(conn)
	}
}

// Drop closes every client connection, as a camera that reboots does.
func (c *Camera) Drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.conns {
		_ = conn.Close()
	}
}

// Players counts the connections playing the camera now.
func (c *Camera) Players() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.clients {
		n = max(n, len(m))
	}
	return n
}

func (c *Camera) serve(conn net.Conn) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		for _, m := range c.clients {
			delete(m, conn)
		}
		delete(c.conns, conn)
		c.mu.Unlock()
		_ = conn.Close()
	}()
	r := textproto.NewReader(bufio.NewReader(conn))
	var setup []int
	for {
		line, err := r.ReadLine()
		if err != nil {
			return
		}
		if line == "" {
			continue
		}
		if line[0] == '$' { // interleaved RTCP from the client: skip it
			continue
		}
		method, rest, _ := strings.Cut(line, " ")
		uri, _, _ := strings.Cut(rest, " ")
		h, err := r.ReadMIMEHeader()
		if err != nil {
			return
		}
		if n, _ := strconv.Atoi(h.Get("Content-Length")); n > 0 {
			if _, err := r.R.Discard(n); err != nil {
				return
			}
		}
		cseq := h.Get("Cseq")
		reply := func(extra string, body string) {
			msg := "RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\nSession: 12345678\r\n" + extra
			if body != "" {
				msg += "Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
			}
			c.mu.Lock()
			_, _ = conn.Write([]byte(msg + "\r\n" + body))
			c.mu.Unlock()
		}
		switch method {
		case "OPTIONS":
			reply("Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n", "")
		case "DESCRIBE":
			sdp, err := c.describe()
			if err != nil {
				return
			}
			reply("Content-Base: "+c.URL+"/\r\n", sdp)
		case "SETUP":
			i := 0
			if k := strings.LastIndex(uri, "trackID="); k >= 0 {
				i, _ = strconv.Atoi(uri[k+len("trackID="):])
			}
			if i < 0 || i >= c.tracks {
				return
			}
			setup = append(setup, i)
			reply(fmt.Sprintf("Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d\r\n", 2*i, 2*i+1), "")
		case "PLAY":
			reply("", "")
			c.mu.Lock()
			for _, i := range setup {
				if c.clients[i] == nil {
					c.clients[i] = map[net.Conn]bool{}
				}
				c.clients[i][conn] = true
			}
			c.mu.Unlock()
		case "GET_PARAMETER":
			reply("", "")
		case "TEARDOWN":
			reply("", "")
			return
		default:
			return
		}
	}
}

// describe is ffmpeg's SDP with a control attribute per track.
func (c *Camera) describe() (string, error) {
	b, err := os.ReadFile(c.sdpFile)
	if err != nil {
		return "", err
	}
	var out []string
	track := 0
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if l == "" {
			continue
		}
		out = append(out, l)
		if strings.HasPrefix(l, "m=") {
			out = append(out, fmt.Sprintf("a=control:trackID=%d", track))
			track++
		}
	}
	return strings.Join(out, "\r\n") + "\r\n", nil
}

// Stop ends the camera.
func (c *Camera) Stop() {
	c.cancel()
	if c.ln != nil {
		_ = c.ln.Close()
	}
	c.Drop()
	if c.ffmpeg != nil && c.ffmpeg.Process != nil {
		_ = c.ffmpeg.Wait()
	}
	c.wg.Wait()
}
