// Package signaling serves OpenVidu 2.32's JSON-RPC 2.0 protocol over the /openvidu WebSocket
// (protocol note §1–5) on top of the session model.
//
// It owns sockets, JSON-RPC sessions (which outlive a socket for the reconnection grace period), the
// ping watchdog, and the translation of model events into OpenVidu notifications. It must not import
// api or edge, and never touches pion: media goes through the session model.
//
// Locks: Handler.mu, then rpcSession.mu, then socket.mu; see locksordering.txt.
package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/session"
)

// Version is the OpenVidu version we report: the SDK requires a semver with major 2 and minor 32 or
// 33 (protocol note §0.4). Parley's own version never goes here.
const Version = "2.32.2"

// Config tunes the signaling layer.
type Config struct {
	// ReconnectGrace is how long a participant whose socket dropped is kept for `connect`.
	ReconnectGrace time.Duration
	// PingTimeout closes a socket that sent no ping for this long.
	PingTimeout time.Duration
	// IceServers returns the ICE servers sent to a joining participant, given those configured on
	// its connection (possibly none). It must never return an empty list: the SDK then falls back
	// to public STUN servers.
	IceServers func(c session.ConnectionID, configured []session.IceServer) []session.IceServer
	// ClientIP, optional, is the participant's address behind a request (clientip.Resolver: headers
	// only from trusted proxies). Without it the socket's peer is the participant.
	ClientIP func(r *http.Request) string
	// OnError, optional, is told the code of every JSON-RPC error answer (metrics count them). It
	// runs on the socket's reader and must not block.
	OnError func(code int)
	// Simulcast makes joinRoom report mediaServer "mediasoup" and videoSimulcast (protocol note
	// §6.1): the stock client then publishes simulcast layers and subscribes with server offers.
	Simulcast bool
	// Limits bound sockets, frames and queues; zero fields take DefaultLimits.
	Limits Limits
	// Admit, optional, is asked before every joinRoom reaches the model: an error refuses the
	// join with error 999 and its text (the server near its memory limit). It must be cheap.
	Admit func() error
}

// Handler serves the /openvidu WebSocket.
type Handler struct {
	cfg Config
	lim Limits
	m   Model
	log *slog.Logger

	mu      sync.Mutex
	rpcs    map[string]*rpcSession
	sockets map[*socket]struct{}
	preJoin *preJoinSet
	budget  *frameBudget // bytes in unfinished frames of sockets not joined
	// bigFrames holds buffers of Limits.PreJoinFrame bytes (+2) for pre-join frames longer than
	// Limits.PreJoinFree: at most budget's worth are out at once.
	bigFrames sync.Pool
	wg        sync.WaitGroup
	closed    bool

	notes noteCache
	logs  *logBudget // lines all peers together may cause (peerlog.go)
	now   func() time.Time

	// testHooks are nil in production; tests use them to force interleavings.
	testHooks struct {
		// shutdownLocked runs inside Shutdown with Handler.mu held, before any rpcSession.mu.
		shutdownLocked func()
		// forgetting runs with rpcSession.mu held when a session is about to be forgotten.
		forgetting func()
	}
}

// New returns a Handler serving participants of m (FromManager adapts the session model).
func New(cfg Config, m Model, log *slog.Logger) *Handler {
	lim := cfg.Limits.withDefaults()
	h := &Handler{cfg: cfg, lim: lim, m: m, log: log, rpcs: map[string]*rpcSession{}, sockets: map[*socket]struct{}{},
		preJoin: newPreJoinSet(lim.PreJoinSockets, lim.PreJoinPerSource), budget: newFrameBudget(lim.PreJoinBytes, lim.PreJoinSourceBytes), logs: newLogBudget(allLogBurst, allLogEvery), now: time.Now}
	h.bigFrames.New = func() any { b := make([]byte, 0, lim.PreJoinFrame+2); return &b }
	return h
}

// ServeHTTP upgrades the request and serves the socket until it closes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Any origin, as the reference: authorization happens in joinRoom with the token.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept already wrote the HTTP error
	}
	ws.SetReadLimit(h.lim.PreJoinFrame)
	sock := newSocket(ws, h.clientIP(r), h.lim)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	h.sockets[sock] = struct{}{}
	sock.deadline = time.AfterFunc(h.lim.JoinDeadline, func() { h.expire(sock) })
	if old := h.preJoin.add(sock); old != nil {
		old.kick("too many sockets not joined from this address")
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	h.serve(r.Context(), sock)
}

// expire closes a socket that did not join in time, or that kick chose to make room.
func (h *Handler) expire(s *socket) {
	reason := s.kickReason()
	if reason == "" {
		reason = "no joinRoom in time"
	}
	h.peerLog(nil, slog.LevelInfo, "closing socket that has not joined", "remote", s.ip, "reason", reason)
	_ = s.ws.Close(websocket.StatusPolicyViolation, reason)
}

// markJoined lifts a socket's pre-join bounds once its JSON-RPC session has a participant.
func (h *Handler) markJoined(s *socket) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.joined {
		return
	}
	s.joined = true
	h.preJoin.remove(s)
	s.deadline.Stop()
	s.ws.SetReadLimit(h.lim.Frame)
}

// clientIP is the participant's address as Config.ClientIP says, else the socket's peer: a header
// anyone can write is never believed here.
func (h *Handler) clientIP(r *http.Request) string {
	if h.cfg.ClientIP != nil {
		return h.cfg.ClientIP(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Shutdown flushes pending notifications (the model has just evicted everyone) and closes every
// socket, then waits for their goroutines.
func (h *Handler) Shutdown(ctx context.Context) {
	h.mu.Lock()
	h.closed = true
	socks := make([]*socket, 0, len(h.sockets))
	for s := range h.sockets {
		socks = append(socks, s)
	}
	if f := h.testHooks.shutdownLocked; f != nil {
		f()
	}
	for _, r := range h.rpcs {
		r.stopGrace()
	}
	h.mu.Unlock()
	for _, s := range socks {
		s.finish()
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, s := range socks {
			_ = s.ws.CloseNow()
		}
	}
}

// socket is one WebSocket. Responses and notifications share its queue so they keep their order.
type socket struct {
	ws  *websocket.Conn
	ip  string
	src netip.Prefix // what it counts against before it joins
	lim Limits
	// wake tells the writer that the queue changed (one pending wake-up is enough).
	wake chan struct{}
	// deadline closes the socket if it has not joined in time (or at once, after kick).
	deadline *time.Timer
	// joined: its session has had a participant; guarded by Handler.mu.
	joined bool
	// logs bounds the log lines this socket causes (peerlog.go).
	logs *logBudget

	mu     sync.Mutex
	queue  [][]byte
	queued int // bytes in queue
	closed bool
	// overflowed: closed because the queue passed a bound; the writer drops what is queued and
	// closes with the reason instead of draining.
	overflowed bool
	kicked     string // why kick closed it early
}

func newSocket(ws *websocket.Conn, ip string, lim Limits) *socket {
	return &socket{ws: ws, ip: ip, src: sourceOf(ip), lim: lim, wake: make(chan struct{}, 1),
		logs: newLogBudget(socketLogBurst, socketLogEvery)}
}

// send queues a frame; a client too slow to drain the queue (Limits.QueueFrames frames or
// Limits.QueueBytes bytes) is disconnected (it will reconnect and renegotiate) rather than
// allowed to hold memory or block the model. Frames are shared between recipients, never
// modified.
func (s *socket) send(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if len(s.queue) >= s.lim.QueueFrames || (len(s.queue) > 0 && s.queued+len(b) > s.lim.QueueBytes) {
		s.closed, s.overflowed = true, true
		s.queue, s.queued = nil, 0 // the client is gone for us: let the frames go now
	} else {
		s.queue = append(s.queue, b)
		s.queued += len(b)
	}
	s.signal()
}

func (s *socket) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// finish stops accepting frames; the writer sends what is queued, then closes the socket.
func (s *socket) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.signal()
}

// kick closes a socket that has not joined now, with reason, to make room for a newer one. The
// close runs on the deadline timer's goroutine: it can take seconds against a peer that does
// not answer.
func (s *socket) kick(reason string) {
	s.mu.Lock()
	if s.kicked == "" {
		s.kicked = reason
	}
	s.mu.Unlock()
	s.deadline.Reset(0)
}

func (s *socket) kickReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kicked
}

// next waits for the next frame to write. It returns nil when the writer must stop: the socket
// finished with nothing left to send (overflowed false), or overflowed.
func (s *socket) next() (b []byte, overflowed bool) {
	for {
		s.mu.Lock()
		if s.overflowed {
			s.mu.Unlock()
			return nil, true
		}
		if len(s.queue) > 0 {
			b = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.queued -= len(b)
			s.mu.Unlock()
			return b, false
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, false
		}
		<-s.wake
	}
}

// abandon drops what is queued after a failed write and takes no more.
func (s *socket) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.queue, s.queued = nil, 0
}

// writeLoop writes queued frames in order. It is the only writer of data frames, so the close it
// sends comes after them.
func (s *socket) writeLoop(ctx context.Context) {
	for {
		b, overflowed := s.next()
		if overflowed {
			_ = s.ws.Close(websocket.StatusPolicyViolation, "slow consumer: notifications overflowed")
			return
		}
		if b == nil {
			_ = s.ws.Close(websocket.StatusNormalClosure, "")
			return
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.ws.Write(wctx, websocket.MessageText, b)
		cancel()
		if err != nil {
			s.abandon()
			_ = s.ws.CloseNow()
			return
		}
	}
}

// serve runs one socket: a writer goroutine, the ping watchdog, and the reader (this goroutine),
// which handles requests in order — the SDK's candidates must not overtake its offer.
func (h *Handler) serve(ctx context.Context, sock *socket) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); sock.writeLoop(ctx) }()

	rpc := h.newRPC(sock)
	watchdog := time.AfterFunc(h.cfg.PingTimeout, func() {
		h.peerLog(nil, slog.LevelInfo, "no ping from client, closing socket", "remote", sock.ip)
		_ = sock.ws.Close(websocket.StatusPolicyViolation, "ping timeout")
	})
	defer watchdog.Stop()

	for {
		var data []byte
		var big *[]byte
		var err error
		if sock.joined { // serve is the only writer of joined, under Handler.mu
			_, data, err = sock.ws.Read(ctx)
		} else {
			data, big, err = h.readPreJoin(ctx, sock)
		}
		if errors.Is(err, errFrameBudget) {
			h.peerLog(sock, slog.LevelInfo, "closing socket that has not joined", "remote", sock.ip, "reason", err.Error())
			_ = sock.ws.Close(websocket.StatusTryAgainLater, err.Error())
		}
		if err != nil {
			break
		}
		rpc = h.handleFrame(ctx, rpc, sock, data, watchdog) // keeps nothing of data (decoded copies)
		h.putBig(sock, big)
		if !sock.joined && rpc.participant() != nil {
			h.markJoined(sock)
		}
	}
	sock.finish()
	<-writerDone
	h.mu.Lock()
	delete(h.sockets, sock)
	h.preJoin.remove(sock)
	sock.deadline.Stop()
	h.mu.Unlock()
	rpc.detach(sock)
}

func (h *Handler) handleFrame(ctx context.Context, rpc *rpcSession, sock *socket, data []byte, watchdog *time.Timer) *rpcSession {
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		h.countError(codeParseError)
		sock.send(mustJSON(response{ID: json.RawMessage("null"), JSONRPC: "2.0", Error: &rpcError{Code: codeParseError, Message: "malformed JSON-RPC frame: " + err.Error()}}))
		return rpc
	}
	if len(req.ID) == 0 {
		req.ID = json.RawMessage("null")
	}
	if req.Method == "" {
		h.countError(codeInvalidRequest)
		sock.send(mustJSON(response{ID: req.ID, JSONRPC: "2.0", Error: &rpcError{Code: codeInvalidRequest, Message: "JSON-RPC request without method"}}))
		return rpc
	}
	switch req.Method {
	case "ping":
		watchdog.Reset(h.cfg.PingTimeout)
		sock.send(mustJSON(response{ID: req.ID, JSONRPC: "2.0", Result: &valueResult{Value: "pong"}}))
		return rpc
	case "connect":
		next, res, err := h.reconnect(ctx, rpc, sock, req.Params)
		h.reply(sock, req, next, res, err)
		return next
	}
	res, err := rpc.call(ctx, req.Method, req.Params)
	h.reply(sock, req, rpc, res, err)
	return rpc
}

func (h *Handler) reply(sock *socket, req request, rpc *rpcSession, res result, err error) {
	resp := response{ID: req.ID, JSONRPC: "2.0"}
	if err != nil {
		resp.Error = errorOf(err)
		h.countError(resp.Error.Code)
		h.peerLog(sock, slog.LevelInfo, "rpc error", append(rpc.logIDs(), "method", clip(req.Method), "code", resp.Error.Code, "error", clip(resp.Error.Message))...)
	} else {
		if res == nil {
			res = &emptyResult{}
		}
		res.setSessionID(rpc.id)
		resp.Result = res
	}
	sock.send(mustJSON(resp))
}

func (h *Handler) countError(code int) {
	if h.cfg.OnError != nil {
		h.cfg.OnError(code)
	}
}

// newRPC registers a fresh JSON-RPC session bound to sock.
func (h *Handler) newRPC(sock *socket) *rpcSession {
	r := &rpcSession{id: session.NewRPCSessionID(), h: h, sock: sock}
	h.mu.Lock()
	h.rpcs[r.id] = r
	h.mu.Unlock()
	return r
}

// forget drops r from the sessions `connect` can find. The caller must not hold r.mu: Handler.mu
// comes first (locksordering.txt).
func (h *Handler) forget(r *rpcSession) {
	h.mu.Lock()
	if h.rpcs[r.id] == r {
		delete(h.rpcs, r.id)
	}
	h.mu.Unlock()
}

// restore asks the model (a cluster's, a Restorer) for a participant another node held under the
// JSON-RPC session id, and makes a session of that id for it on sock.
func (h *Handler) restore(ctx context.Context, id string, sock *socket) (*rpcSession, bool) {
	rs, ok := h.m.(Restorer)
	if !ok || len(id) > maxRPCSessionID {
		return nil, false
	}
	r := &rpcSession{id: id, h: h, sock: sock}
	part, subs, err := rs.Restore(id, sock.ip, r)
	if err != nil {
		h.log.Info("connect: no participant to restore", "rpc", clip(id), "err", err)
		return nil, false
	}
	r.mu.Lock()
	r.part = part
	r.mu.Unlock()
	h.mu.Lock()
	if h.rpcs[id] != nil || h.closed {
		h.mu.Unlock()
		part.Evict(session.ReasonNetworkDisconnect)
		return nil, false
	}
	h.rpcs[id] = r
	h.mu.Unlock()
	h.log.Info("participant restored from another node", r.logIDs()...)
	h.offerAgain(ctx, r, part, subs)
	return r, true
}

// offerAgain offers a participant restored from a lost node the streams it was subscribed to
// there, each on a new PeerConnection of ours (forciblyReconnectSubscriber, which the SDK answers
// with reconnectStream{stream, sdpString}). Left to itself, the SDK reconnects a subscription only
// once its browser's ICE has given up on the lost node and 4 s more have passed (about ten seconds
// in all in the cluster bed). The offers go out before the `connect` answer: the SDK, if it finds
// a subscription's ICE broken when that answer comes, would reconnect it itself, and the two
// renegotiations would race; taken first, the offer is the reconnection the SDK's own then waits
// for (Stream.setupReconnectionEventEmitter). They are made in parallel and waited for at most
// offerAgainWait; a stream not published any more (it lived on the lost node) is skipped, and comes
// back as a new stream when its publisher returns.
func (h *Handler) offerAgain(ctx context.Context, r *rpcSession, part Participant, subs []session.StreamID) {
	if len(subs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, offerAgainWait)
	defer cancel()
	offers := make([]string, len(subs))
	var wg sync.WaitGroup
	for i, sid := range subs {
		wg.Go(func() {
			offer, err := part.PrepareSubscribe(ctx, sid)
			if err != nil {
				h.peerLog(r.socket(), slog.LevelInfo, "restored subscription not offered again", append(r.logIDs(), "stream", sid, "error", clip(err.Error()))...)
				return
			}
			offers[i] = offer
		})
	}
	wg.Wait()
	for i, sid := range subs {
		if offers[i] != "" {
			r.push(mustJSON(notification{JSONRPC: "2.0", Method: "forciblyReconnectSubscriber",
				Params: forciblyReconnectSubscriberJSON{ConnectionID: sid.Owner(), StreamID: sid, SDPOffer: offers[i]}}))
		}
	}
}

// offerAgainWait bounds how long a restoring `connect` waits for offerAgain: the SDK gives up on a
// request after 10 s, and on `connect` that means leaving the session.
const offerAgainWait = 3 * time.Second

// maxRPCSessionID bounds the ids `connect` looks up elsewhere (ours are far shorter).
const maxRPCSessionID = 128

// reconnect handles `connect` (protocol note §1.4): re-attach a live JSON-RPC session, identified by
// the id the SDK kept from joinRoom, to this new socket.
func (h *Handler) reconnect(ctx context.Context, cur *rpcSession, sock *socket, params json.RawMessage) (*rpcSession, result, error) {
	var p struct {
		SessionID string `json:"sessionId"`
	}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return cur, nil, invalidParams("connect", err)
		}
	}
	if p.SessionID == "" || p.SessionID == cur.id {
		return cur, &valueResult{Value: "OK"}, nil
	}
	h.mu.Lock()
	old := h.rpcs[p.SessionID]
	h.mu.Unlock()
	if old == nil {
		if r, ok := h.restore(ctx, p.SessionID, sock); ok {
			cur.discard()
			return r, &valueResult{Value: "reconnection successful"}, nil
		}
	}
	if old == nil || !old.attach(sock) {
		return cur, nil, &rpcError{Code: codeReconnection, Message: "reconnection error"}
	}
	cur.discard()
	h.log.Info("participant reconnected", old.logIDs()...)
	return old, &valueResult{Value: "reconnection successful"}, nil
}
