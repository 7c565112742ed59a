// Command abuse runs one attack from issue 14 against a running Parley and prints what it cost
// the server (RSS, CPU seconds, open files, read from /proc of -pid) and what a legitimate user
// saw meanwhile. bench/abuse.sh starts a server and runs every attack; the short versions of
// the attacks, with asserted bounds, are Go tests of the packages that hold the limits.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4443", "the server's shared port (host:port)")
	pid := flag.Int("pid", 0, "the server's process id, for its costs")
	n := flag.Int("n", 10000, "attack size (connections, requests, …)")
	sources := flag.Int("sources", 4, "attacker addresses (127.0.1.x)")
	frame := flag.Int("frame", 1<<20, "prejoin: the size each socket's unfinished frame announces; stalled: bytes of each signal's data; candidates: bytes of each candidate")
	meta := flag.Int("meta", 0, "prejoin: bytes of client metadata in the newcomer's joinRoom (at most 60,000)")
	flag.Parse()
	if flag.NArg() != 1 || *pid == 0 {
		fmt.Fprintln(os.Stderr, "usage: abuse -addr host:port -pid N [-n N] [-sources N] [-frame bytes] idle|prejoin|stalled|candidates|guess|sdp|turn")
		os.Exit(2)
	}
	a := attacks[flag.Arg(0)]
	if a == nil {
		fmt.Fprintf(os.Stderr, "abuse: unknown attack %q\n", flag.Arg(0))
		os.Exit(2)
	}
	pidOf = *pid
	before := readCost(*pid)
	seen, err := a(env{addr: *addr, n: *n, sources: *sources, frame: *frame, meta: min(*meta, 60000)})
	after := readCost(*pid)
	if err != nil {
		fmt.Fprintf(os.Stderr, "abuse %s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
	fmt.Printf("%-8s n=%-6d server: RSS %+.1f MB (%.1f MB, peak %.1f MB), CPU %.2f s, fds %d→%d | legitimate user: %s\n",
		flag.Arg(0), *n, float64(after.rss-before.rss)/1e6, float64(after.rss)/1e6, float64(after.peak)/1e6,
		after.cpu-before.cpu, before.fds, after.fds, seen)
}

type env struct {
	addr                    string
	n, sources, frame, meta int
}

var attacks = map[string]func(env) (string, error){
	"idle":       idle,
	"prejoin":    prejoin,
	"stalled":    stalled,
	"candidates": candidates,
	"guess":      guess,
	"sdp":        sdp,
	"turn":       turnAttack,
}

// pidOf is the server's process id, for attacks that read its CPU time themselves.
var pidOf int

type cost struct {
	rss  int64   // bytes
	peak int64   // the largest RSS the process ever had, bytes
	cpu  float64 // seconds, user + system
	fds  int
}

func readCost(pid int) cost {
	var c cost
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for l := range strings.Lines(string(b)) {
			if f := strings.Fields(l); len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				if f[0] == "VmRSS:" {
					c.rss = kb * 1024
				} else {
					c.peak = kb * 1024
				}
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		c.cpu = (ut + st) / 100 // USER_HZ
	}
	if es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		c.fds = len(es)
	}
	return c
}

// from is a dialer bound to attacker address i (127.0.1.i+1) or, for the legitimate user,
// 127.0.2.1.
func from(ip string) *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
}

func attacker(i, sources int) string { return fmt.Sprintf("127.0.1.%d", i%sources+1) }

// classifyTime is how long a fresh connection takes to get an HTTP answer from the port.
func classifyTime(addr string) (time.Duration, error) {
	start := time.Now()
	c, err := from("127.0.2.1").Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return time.Since(start), nil
}

func durations(ds []time.Duration) string {
	slices.Sort(ds)
	return fmt.Sprintf("median %v, max %v over %d", ds[len(ds)/2].Round(time.Millisecond),
		ds[len(ds)-1].Round(time.Millisecond), len(ds))
}

// idle opens n connections that send nothing, from a few addresses, keeps reopening those the
// server drops, and times a newcomer's first HTTP answer meanwhile.
func idle(e env) (string, error) {
	stop := make(chan struct{})
	opened := make(chan int, 1)
	full := make(chan struct{})
	held := make(chan struct{}, e.n) // one per attacker connection open
	go func() {
		conns := 0
		defer func() { opened <- conns }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case held <- struct{}{}:
			}
			c, err := from(attacker(i, e.sources)).Dial("tcp", e.addr)
			if err != nil {
				<-held
				continue
			}
			conns++
			if conns == e.n {
				close(full)
			}
			go func() { // hold it until the server lets go; then the loop opens another
				_, _ = c.Read(make([]byte, 1))
				c.Close()
				<-held
			}()
		}
	}()
	select { // let the flood build up
	case <-full:
	case <-time.After(30 * time.Second):
	}
	var ds []time.Duration
	failed := 0
	for range 10 {
		d, err := classifyTime(e.addr)
		if err != nil {
			failed++
			continue
		}
		ds = append(ds, d)
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	if len(ds) == 0 {
		return fmt.Sprintf("never classified (%d tries); %d attacker connections opened", failed, <-opened), nil
	}
	return fmt.Sprintf("classified in %s (%d failed); %d attacker connections opened", durations(ds), failed, <-opened), nil
}

// prejoin opens n WebSockets on /openvidu that never join: each announces a text frame of
// e.frame bytes and sends all of it but the last byte, then waits. It reports how many the
// server still holds once they are all sent, and how long a newcomer waits for its joinRoom
// answer (an error: its token is made up) meanwhile.
func prejoin(e env) (string, error) {
	payload := make([]byte, e.frame-1)
	for i := range payload {
		payload[i] = 'a'
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	refused := 0
	for i := range e.n {
		c, err := upgrade(attacker(i, e.sources), e.addr)
		if err != nil {
			refused++
			continue
		}
		conns = append(conns, c)
		// A masked text frame (FIN) announcing e.frame bytes: a client's frames are masked.
		hdr := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		for b := range 8 {
			hdr[2+b] = byte(uint64(e.frame) >> (56 - 8*b))
		}
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(append(hdr, payload...)); err != nil {
			continue // the server gave up on it: what we want to see
		}
	}
	time.Sleep(2 * time.Second) // let the server read what was sent (a bench, not a test)
	held := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && isTimeout(err) {
			held++
		}
	}
	var ds []time.Duration
	closed := 0
	for range 10 {
		d, err := joinTime(e.addr, e.meta)
		if errors.Is(err, errClosed) {
			closed++
			continue
		}
		if err != nil {
			return "", err
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return fmt.Sprintf("%d of %d sockets still open (%d upgrades refused); every joinRoom with %d bytes of metadata closed unanswered", held, e.n, refused, e.meta), nil
	}
	return fmt.Sprintf("%d of %d sockets still open (%d upgrades refused); joinRoom with %d bytes of metadata answered in %s, %d closed unanswered", held, e.n, refused, e.meta, durations(ds), closed), nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// upgrade opens a WebSocket on /openvidu from address ip, by hand: the attacks need frames no
// WebSocket library sends.
func upgrade(ip, addr string) (net.Conn, error) {
	c, err := from(ip).Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /openvidu HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("upgrade: %s", resp.Status)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// errClosed: the server closed the newcomer's socket instead of answering its joinRoom.
var errClosed = errors.New("closed before answering")

// joinTime is how long a newcomer waits from dialling to its joinRoom answer; its joinRoom
// carries meta bytes of client metadata.
func joinTime(addr string, meta int) (time.Duration, error) {
	start := time.Now()
	c, err := upgrade("127.0.2.1", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	req := []byte(`{"id":1,"jsonrpc":"2.0","method":"joinRoom","params":{"token":"wss://x/?sessionId=ses_Nobody&token=tok_Nothing","session":"ses_Nobody","metadata":"` + strings.Repeat("m", meta) + `"}}`)
	frame := append([]byte{0x81, 0x80 | 126, byte(len(req) >> 8), byte(len(req)), 0, 0, 0, 0}, req...) // zero mask
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(frame); err != nil {
		return 0, err
	}
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return 0, fmt.Errorf("joinRoom: no answer: %w", err)
	}
	if hdr[0]&0x0f == 8 { // a close frame
		return 0, errClosed
	}
	return time.Since(start), nil
}

// participant is a joined /openvidu socket of an app room (dev mode: rooms are open), driven by
// hand: the attacks need clients that stop reading.
type participant struct {
	ws  *websocket.Conn
	id  string
	seq int
	// turnUser and turnPass are the TURN credentials joinRoom gave it.
	turnUser, turnPass string
}

func joinRoom(addr, room, nick string) (*participant, error) {
	body := strings.NewReader(fmt.Sprintf(`{"nickname":%q}`, nick))
	resp, err := http.Post("http://"+addr+"/app/api/rooms/"+room+"/join", "application/json", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var tok struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
		return nil, fmt.Errorf("app join: %s %v", resp.Status, err)
	}
	u, err := url.Parse(tok.Token)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/openvidu", nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(-1)
	p := &participant{ws: ws}
	res, err := p.call("joinRoom", map[string]any{"token": tok.Token, "session": u.Query().Get("sessionId"), "platform": "abuse", "metadata": ""})
	if err != nil {
		return nil, err
	}
	p.id, _ = res["id"].(string)
	ice, _ := res["customIceServers"].([]any)
	for _, x := range ice {
		if m, _ := x.(map[string]any); m != nil && m["username"] != nil {
			p.turnUser, _ = m["username"].(string)
			p.turnPass, _ = m["credential"].(string)
		}
	}
	go p.keepAlive()
	return p, nil
}

// keepAlive pings every 5 s, as the SDK does, until the socket is gone: a participant that stops
// reading still writes.
func (p *participant) keepAlive() {
	ping := []byte(`{"jsonrpc":"2.0","id":0,"method":"ping"}`)
	for {
		time.Sleep(5 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.ws.Write(ctx, websocket.MessageText, ping)
		cancel()
		if err != nil {
			return
		}
	}
}

func (p *participant) send(method string, params any) error {
	p.seq++
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": p.seq, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.ws.Write(ctx, websocket.MessageText, b)
}

// call sends a request and waits for its answer, skipping notifications.
func (p *participant) call(method string, params any) (map[string]any, error) {
	if err := p.send(method, params); err != nil {
		return nil, err
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, data, err := p.ws.Read(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
		var m struct {
			ID     int
			Result map[string]any
			Error  *struct{ Code int }
		}
		if json.Unmarshal(data, &m) != nil || m.ID != p.seq {
			continue
		}
		if m.Error != nil {
			return nil, fmt.Errorf("%s: error %d", method, m.Error.Code)
		}
		return m.Result, nil
	}
}

// stalled: four participants stop reading while a fifth sends e.n signals of e.frame bytes of
// data to the room; it reports how many of the stalled were cut off.
func stalled(e env) (string, error) {
	room := fmt.Sprintf("stalled-%d", time.Now().UnixNano()%1e6)
	var stall []*participant
	for i := range 4 {
		p, err := joinRoom(e.addr, room, fmt.Sprint("stalled", i))
		if err != nil {
			return "", err
		}
		stall = append(stall, p) // never read again
	}
	sender, err := joinRoom(e.addr, room, "sender")
	if err != nil {
		return "", err
	}
	data := strings.Repeat("s", e.frame)
	msg, _ := json.Marshal(map[string]any{"to": []string{}, "data": data, "type": "signal:chat"})
	sent, refused := 0, 0
	for range e.n {
		if _, err := sender.call("sendMessage", map[string]any{"message": string(msg)}); err != nil {
			refused++
			if strings.Contains(err.Error(), "closed") || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "failed") {
				break // the sender's own socket was closed (frame too large)
			}
			continue
		}
		sent++
	}
	time.Sleep(2 * time.Second) // let the server settle (a bench, not a test)
	cut := 0
	for _, p := range stall {
		if p.send("ping", nil) != nil { // a write fails once the server closed the socket
			cut++
		}
		p.ws.CloseNow()
	}
	sender.ws.CloseNow()
	return fmt.Sprintf("%d signals of %d bytes sent, %d refused; %d of 4 stalled receivers cut off", sent, e.frame, refused, cut), nil
}

// candidates: one participant sends e.n candidates of e.frame bytes for endpoints that do not
// exist (64 of them), which the server keeps for when they appear.
func candidates(e env) (string, error) {
	p, err := joinRoom(e.addr, fmt.Sprintf("cands-%d", time.Now().UnixNano()%1e6), "cands")
	if err != nil {
		return "", err
	}
	defer p.ws.CloseNow()
	cand := strings.Repeat("c", e.frame)
	kept, refused := 0, 0
	for i := range e.n {
		_, err := p.call("onIceCandidate", map[string]any{"endpointName": fmt.Sprintf("con_Nowhere%02d", i%64), "candidate": cand, "sdpMid": "0", "sdpMLineIndex": 0})
		if err != nil {
			refused++
			if !strings.Contains(err.Error(), "error") {
				break // the socket was closed
			}
			continue
		}
		kept++
	}
	time.Sleep(2 * time.Second)
	return fmt.Sprintf("%d candidates of %d bytes answered {}, %d refused", kept, e.frame, refused), nil
}

// guessUser and guessPassword are the account bench/abuse.sh gives the server for the guess
// attack (PARLEY_APP_USERS).
const guessUser, guessPassword = "alice", "correct-horse-battery-staple"

// guess: e.n password guesses for guessUser from e.sources addresses, alternately through the
// login form and HTTP Basic on /app/api/config, as fast as the server answers. It reports how
// many the server checked (a form guess answered 401 rather than 429; Basic answers do not say),
// how long the server says the next must wait, and whether the user, from an address of her
// own, still signs in.
func guess(e env) (string, error) {
	clients := make([]*http.Client, e.sources)
	for i := range clients {
		clients[i] = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: from(attacker(i, e.sources)).DialContext}}
	}
	start := time.Now()
	checked, limited, basic := 0, 0, 0
	retry := ""
	for i := range e.n {
		c := clients[i%e.sources]
		pass := fmt.Sprintf("guess-%d", i)
		if i%2 == 1 {
			req, _ := http.NewRequest("GET", "http://"+e.addr+"/app/api/config", nil)
			req.SetBasicAuth(guessUser, pass)
			resp, err := c.Do(req)
			if err != nil {
				return "", err
			}
			var cfg struct{ User string }
			_ = json.NewDecoder(resp.Body).Decode(&cfg)
			resp.Body.Close()
			if cfg.User != "" {
				return "", fmt.Errorf("guess %q accepted", pass)
			}
			basic++
			continue
		}
		resp, err := c.Post("http://"+e.addr+"/app/api/login", "application/json",
			strings.NewReader(fmt.Sprintf(`{"user":%q,"password":%q}`, guessUser, pass)))
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
			limited++
			retry = resp.Header.Get("Retry-After")
		default:
			return "", fmt.Errorf("login form: %s", resp.Status)
		}
	}
	took := time.Since(start)
	own := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: from("127.0.2.1").DialContext}}
	t0 := time.Now()
	resp, err := own.Post("http://"+e.addr+"/app/api/login", "application/json",
		strings.NewReader(fmt.Sprintf(`{"user":%q,"password":%q}`, guessUser, guessPassword)))
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return fmt.Sprintf("%d guesses in %v (%d on the form: %d checked, %d refused, the last told to wait %s s; %d through Basic); %s signs in from her own address: %s in %v",
		e.n, took.Round(time.Millisecond), checked+limited, checked, limited, retry, basic, guessUser, resp.Status, time.Since(t0).Round(time.Millisecond)), nil
}

// sdp: one participant sends e.n publishVideo offers of about e.frame bytes (at most 40,000, so
// they fit a joined socket's 64 KiB frame once JSON-escaped) made of audio m-lines by the
// hundred, as issue 14's 14,000-m-line offer was; it reports the server's CPU per offer and how
// a newcomer's joinRoom fares meanwhile.
func sdp(e env) (string, error) {
	p, err := joinRoom(e.addr, fmt.Sprintf("sdp-%d", time.Now().UnixNano()%1e6), "sdp")
	if err != nil {
		return "", err
	}
	defer p.ws.CloseNow()
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
	mlines := 0
	for b.Len() < min(e.frame, 40000)-100 { // JSON escapes each CRLF as 4 bytes: ~58,000 in the frame
		b.WriteString("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=sendonly\r\n")
		mlines++
	}
	offer := b.String()
	before := readCost(pidOf)
	refused, last := 0, ""
	for range e.n {
		_, err := p.call("publishVideo", map[string]any{"sdpOffer": offer, "doLoopback": false, "hasAudio": true, "hasVideo": false,
			"audioActive": true, "videoActive": false, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": ""})
		if err == nil {
			return "", errors.New("a hostile offer was accepted")
		}
		if !strings.Contains(err.Error(), "error") {
			return "", err // the socket was closed
		}
		refused++
		last = err.Error()
	}
	cpu := readCost(pidOf).cpu - before.cpu
	var ds []time.Duration
	for range 10 {
		d, err := joinTime(e.addr, 0)
		if err != nil {
			return "", err
		}
		ds = append(ds, d)
	}
	return fmt.Sprintf("%d offers of %d bytes (%d m-lines) refused (%s); server CPU %.3f ms per offer with its frame; joinRoom answered in %s",
		refused, len(offer), mlines, last, cpu*1000/float64(e.n), durations(ds)), nil
}

var quiet = logging.NewDefaultLoggerFactory()

func init() { quiet.DefaultLogLevel = logging.LogLevelDisabled }

// allocate opens a TURN/TCP client on the shared port from address ip and allocates one relay,
// which it keeps; close releases both.
func allocate(addr, ip, user, pass string) (close func(), err error) {
	conn, err := from(ip).Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: turn.NewSTUNConn(conn),
		Username: user, Password: pass, LoggerFactory: quiet})
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.Listen(); err != nil {
		c.Close()
		conn.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	relay, err := c.AllocateWithContext(ctx)
	if err != nil {
		c.Close()
		conn.Close()
		return nil, err
	}
	return func() { relay.Close(); c.Close(); conn.Close() }, nil
}

// turnAttack: ten participants of one app room (tokens anyone gets where rooms are open) take
// every TURN allocation their credentials are given, from the attacker addresses; then a fresh
// participant of another room, from an address of its own, allocates.
func turnAttack(e env) (string, error) {
	room := fmt.Sprintf("turn-%d", time.Now().UnixNano()%1e6)
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	held, refused := 0, 0
	var lastErr error
	for i := range 10 {
		p, err := joinRoom(e.addr, room, fmt.Sprint("hostile", i))
		if err != nil {
			return "", err
		}
		defer p.ws.CloseNow()
		if p.turnUser == "" {
			return "", errors.New("joinRoom gave no TURN credentials")
		}
		for range e.n {
			c, err := allocate(e.addr, attacker(i, e.sources), p.turnUser, p.turnPass)
			if err != nil {
				refused++
				lastErr = err
				break
			}
			closers = append(closers, c)
			held++
		}
	}
	fresh, err := joinRoom(e.addr, room+"-other", "fresh")
	if err != nil {
		return "", err
	}
	defer fresh.ws.CloseNow()
	start := time.Now()
	c, err := allocate(e.addr, "127.0.2.1", fresh.turnUser, fresh.turnPass)
	if err != nil {
		return fmt.Sprintf("hostile credentials hold %d allocations (%d refused: %v); the fresh participant was refused: %v", held, refused, lastErr, err), nil
	}
	c()
	return fmt.Sprintf("hostile credentials hold %d allocations (%d refused: %v); the fresh participant allocated in %v",
		held, refused, lastErr, time.Since(start).Round(time.Millisecond)), nil
}
