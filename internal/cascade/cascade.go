// Package cascade carries media between the nodes of a cluster (design.md, "Several nodes"): a
// stream published on node A and subscribed on node B crosses A→B once, however many subscribe to
// it on B, on one link per ordered node pair (a DTLS-SRTP PeerConnection between the nodes' media
// ports, sfu.RelayOut and sfu.RelayIn). A session whose participants are all on one node never
// makes a link.
//
// B pulls: its first subscriber to the stream asks A for it; A puts the stream's tracks on its
// link to B (making the link if there is none) and offers; B answers, and the stream appears on B
// as a local publisher that B's subscribers attach to. When B's last subscriber goes, B drops it;
// A takes the tracks off and, when nothing crosses any more, closes the link.
//
// The signalling travels over the cluster's message bus (a Transport; Redis pub/sub). Each message
// carries an HMAC-SHA256, keyed from OPENVIDU_SECRET (which every node shares), over its sender,
// recipient, time, sequence and body; a node accepts only messages with a valid tag, for it, at
// most maxSkew old, and never one it has seen. The DTLS fingerprints are in the authenticated SDP,
// so the media itself is bound to a node that knows the secret, and SRTP encrypts it.
//
// It must not import the session model or anything above it: the wiring gives it the local
// publishers (Local) and the bus (Transport).
package cascade

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley/parley/internal/sfu"
)

// Transport delivers a payload to another node's Links.Handle: at most once, in order per sender.
type Transport interface {
	Send(ctx context.Context, node string, payload []byte) error
}

// Local returns this node's publisher of a stream.
type Local func(streamID string) (*sfu.Publisher, error)

// Config configures Links.
type Config struct {
	// NodeID is this node's id (PARLEY_NODE_ID).
	NodeID string
	// Secret is OPENVIDU_SECRET, shared by every node: the signalling's key derives from it.
	Secret string
	// PullTimeout bounds how long a subscription waits for another node's stream to arrive
	// (default DefaultPullTimeout).
	PullTimeout time.Duration
}

// Bounds.
const (
	// DefaultPullTimeout is Config.PullTimeout's default: within openvidu-browser's own 10 s wait
	// for receiveVideoFrom's answer.
	DefaultPullTimeout = 8 * time.Second
	// maxSkew is how old (or early, by the sender's clock) a message may be.
	maxSkew = 30 * time.Second
	// inboxSize bounds the messages waiting to be handled; past it they are dropped (and logged),
	// and what they asked for times out.
	inboxSize = 1024
	// maxPayload bounds a message; a link's SDP with a few hundred streams fits.
	maxPayload = 1 << 20
	// opTimeout bounds one negotiation step (gathering, a send).
	opTimeout = 5 * time.Second
)

// Links is this node's set of inter-node links.
type Links struct {
	cfg   Config
	sfu   *sfu.SFU
	tr    Transport
	local Local
	log   *slog.Logger
	key   []byte
	boot  string // this run's id: sequence numbers restart with it
	seq   atomic.Uint64
	inbox chan envelope
	// failed are links whose PeerConnection failed or closed (the other node died or cannot be
	// reached); Run forgets them.
	failed chan linkEnd

	mu  sync.Mutex
	out map[string]*outLink // by receiving node
	// sent are the counts of the closed links by receiving node, so Stats' counters never go back.
	sent map[string]sfu.RelayStats
	in   map[string]*inLink // by sending node
	seen map[string]seen    // by sending node: the last message accepted
}

// linkEnd names a link that failed: out is the sending end's, else the receiving end's.
type linkEnd struct {
	node, id string
	out      bool
}

type seen struct {
	boot string
	seq  uint64
}

// outLink is the link on which this node sends streams to one node. Only Run's goroutine uses it.
type outLink struct {
	id      string
	relay   *sfu.RelayOut
	streams map[string][]sfu.RelayCodec
	gen     uint64 // offers made
	waiting bool   // the offer gen awaits its answer
	dirty   bool   // what it carries changed since that offer
}

// inLink is the link on which this node receives streams from one node.
type inLink struct {
	id    string
	relay *sfu.RelayIn // nil until the first offer
	pulls map[string]*pull
}

// pull is one stream pulled from a node, shared by its subscribers here.
type pull struct {
	refs  int
	pub   *sfu.Publisher
	err   error
	ready chan struct{} // closed once pub or err is set
	done  bool
}

// New returns this node's links; Run serves them.
func New(cfg Config, s *sfu.SFU, tr Transport, local Local, log *slog.Logger) *Links {
	if cfg.PullTimeout <= 0 {
		cfg.PullTimeout = DefaultPullTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mac := hmac.New(sha256.New, []byte(cfg.Secret))
	mac.Write([]byte("parley cascade signalling v1"))
	return &Links{cfg: cfg, sfu: s, tr: tr, local: local, log: log, key: mac.Sum(nil), boot: randomID(),
		inbox: make(chan envelope, inboxSize), failed: make(chan linkEnd, inboxSize), out: map[string]*outLink{}, in: map[string]*inLink{}, seen: map[string]seen{},
		sent: map[string]sfu.RelayStats{}}
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Message kinds.
const (
	kindPull   = "pull"   // receiver → sender: send Stream
	kindDrop   = "drop"   // receiver → sender: Stream is no longer wanted
	kindRefuse = "refuse" // sender → receiver: Stream cannot be sent (Err)
	kindOffer  = "offer"  // sender → receiver: SDP for Link, generation Gen, carrying Streams
	kindAnswer = "answer" // receiver → sender: SDP answering Link's offer Gen
	kindClose  = "close"  // sender → receiver: Link is closed (nothing crosses it)
)

// body is what a message says.
type body struct {
	Kind    string                      `json:"kind"`
	Link    string                      `json:"link,omitempty"`
	Gen     uint64                      `json:"gen,omitempty"`
	Stream  string                      `json:"stream,omitempty"`
	SDP     string                      `json:"sdp,omitempty"`
	Streams map[string][]sfu.RelayCodec `json:"streams,omitempty"`
	Err     string                      `json:"err,omitempty"`
}

// envelope is a message as it travels: the body and who may have sent it.
type envelope struct {
	From string          `json:"from"`
	To   string          `json:"to"`
	Boot string          `json:"boot"`
	Seq  uint64          `json:"seq"`
	Time int64           `json:"time"` // unix milliseconds, the sender's clock
	Body json.RawMessage `json:"body"`
	MAC  string          `json:"mac"`
}

func (l *Links) tag(e *envelope) string {
	m := hmac.New(sha256.New, l.key)
	for _, f := range []string{e.From, e.To, e.Boot, strconv.FormatUint(e.Seq, 10), strconv.FormatInt(e.Time, 10)} {
		m.Write([]byte(f))
		m.Write([]byte{0})
	}
	m.Write(e.Body)
	return hex.EncodeToString(m.Sum(nil))
}

// send signs b and sends it to node.
func (l *Links) send(ctx context.Context, node string, b body) error {
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	e := envelope{From: l.cfg.NodeID, To: node, Boot: l.boot, Seq: l.seq.Add(1), Time: time.Now().UnixMilli(), Body: raw}
	e.MAC = l.tag(&e)
	p, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return l.tr.Send(ctx, node, p)
}

// errForged is what Handle reports of a message it refuses.
var errForged = errors.New("cascade: message refused (bad tag, not for this node, replayed or too old)")

// Handle takes a message from the bus; from is the sender the bus names. It never blocks: the
// message is checked and queued for Run.
func (l *Links) Handle(from string, payload []byte) error {
	if len(payload) > maxPayload {
		return errors.New("cascade: message too large")
	}
	var e envelope
	if err := json.Unmarshal(payload, &e); err != nil {
		return fmt.Errorf("cascade: unreadable message: %w", err)
	}
	if e.From != from || e.To != l.cfg.NodeID || !hmac.Equal([]byte(e.MAC), []byte(l.tag(&e))) {
		return errForged
	}
	if age := time.Since(time.UnixMilli(e.Time)); age > maxSkew || age < -maxSkew {
		return errForged
	}
	l.mu.Lock()
	last := l.seen[e.From]
	if last.boot == e.Boot && e.Seq <= last.seq {
		l.mu.Unlock()
		return errForged
	}
	l.seen[e.From] = seen{e.Boot, e.Seq}
	l.mu.Unlock()
	select {
	case l.inbox <- e:
		return nil
	default:
		return errors.New("cascade: too many messages waiting; dropped")
	}
}

// Run handles the other nodes' messages until ctx ends, then closes every link.
func (l *Links) Run(ctx context.Context) error {
	defer l.closeAll()
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-l.failed:
			l.onFailed(ctx, f)
		case e := <-l.inbox:
			var b body
			if err := json.Unmarshal(e.Body, &b); err != nil {
				l.log.Warn("cascade: unreadable message body", "from", e.From, "err", err)
				continue
			}
			l.handle(ctx, e.From, b)
		}
	}
}

func (l *Links) handle(ctx context.Context, from string, b body) {
	log := l.log.With("peer", from, "stream", b.Stream)
	switch b.Kind {
	case kindPull:
		l.onPull(ctx, from, b.Stream, log)
	case kindDrop:
		l.onDrop(ctx, from, b.Stream, log)
	case kindAnswer:
		l.onAnswer(ctx, from, b, log)
	case kindOffer:
		l.onOffer(ctx, from, b, log)
	case kindRefuse:
		l.fail(from, b.Stream, errors.New(b.Err))
	case kindClose:
		l.onClose(from, b.Link)
	default:
		log.Warn("cascade: unknown message", "kind", b.Kind)
	}
}

// ---- sending side ----

func (l *Links) onPull(ctx context.Context, to, stream string, log *slog.Logger) {
	pub, err := l.local(stream)
	if err != nil {
		l.sendLogged(ctx, to, body{Kind: kindRefuse, Stream: stream, Err: err.Error()}, log)
		return
	}
	ol := l.out[to]
	if ol == nil {
		id := randomID()
		relay, err := l.sfu.NewRelayOut(l.log.With("peer", to), l.watch(to, id, true, log))
		if err != nil {
			l.sendLogged(ctx, to, body{Kind: kindRefuse, Stream: stream, Err: err.Error()}, log)
			return
		}
		ol = &outLink{id: id, relay: relay, streams: map[string][]sfu.RelayCodec{}}
		l.mu.Lock()
		l.out[to] = ol
		l.mu.Unlock()
		log.Info("cascade: link opened")
	}
	codecs, err := ol.relay.Add(stream, pub)
	if err != nil {
		l.sendLogged(ctx, to, body{Kind: kindRefuse, Stream: stream, Err: err.Error()}, log)
		l.closeIfIdle(ctx, to, ol, log)
		return
	}
	ol.streams[stream] = codecs
	l.negotiate(ctx, to, ol, log)
}

func (l *Links) onDrop(ctx context.Context, to, stream string, log *slog.Logger) {
	ol := l.out[to]
	if ol == nil || ol.streams[stream] == nil {
		return
	}
	ol.relay.Remove(stream)
	delete(ol.streams, stream)
	if !l.closeIfIdle(ctx, to, ol, log) {
		l.negotiate(ctx, to, ol, log)
	}
}

// closeIfIdle closes a link that carries nothing, and tells the receiving node.
func (l *Links) closeIfIdle(ctx context.Context, to string, ol *outLink, log *slog.Logger) bool {
	if len(ol.streams) > 0 {
		return false
	}
	l.forgetOut(to, ol)
	l.sendLogged(ctx, to, body{Kind: kindClose, Link: ol.id}, log)
	log.Info("cascade: link closed: nothing crosses it")
	return true
}

// negotiate offers what the link carries now, unless an offer is waiting for its answer: then
// the change goes in the offer after it.
func (l *Links) negotiate(ctx context.Context, to string, ol *outLink, log *slog.Logger) {
	if ol.waiting {
		ol.dirty = true
		return
	}
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	sdp, err := ol.relay.Offer(octx)
	if err != nil {
		log.Warn("cascade: offer failed", "err", err)
		return
	}
	ol.gen++
	ol.waiting, ol.dirty = true, false
	streams := make(map[string][]sfu.RelayCodec, len(ol.streams))
	for id, c := range ol.streams {
		streams[id] = c
	}
	l.sendLogged(octx, to, body{Kind: kindOffer, Link: ol.id, Gen: ol.gen, SDP: sdp, Streams: streams}, log)
}

func (l *Links) onAnswer(ctx context.Context, to string, b body, log *slog.Logger) {
	ol := l.out[to]
	if ol == nil || ol.id != b.Link || ol.gen != b.Gen || !ol.waiting {
		return // an answer to an offer since replaced
	}
	ol.waiting = false
	if err := ol.relay.SetAnswer(b.SDP); err != nil {
		log.Warn("cascade: answer refused", "err", err)
		return
	}
	if ol.dirty {
		l.negotiate(ctx, to, ol, log)
	}
}

func (l *Links) sendLogged(ctx context.Context, to string, b body, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := l.send(sctx, to, b); err != nil {
		log.Warn("cascade: sending failed", "kind", b.Kind, "err", err)
	}
}

// ---- receiving side ----

// Pull returns this node's publisher of stream, published on node, and the func that releases it
// (call it once, when the subscription ends). The first pull of a stream asks node for it and waits
// for it to arrive, within ctx and Config.PullTimeout; later ones share it.
func (l *Links) Pull(ctx context.Context, node, stream string) (*sfu.Publisher, func(), error) {
	if node == l.cfg.NodeID {
		return nil, nil, errors.New("cascade: a stream of this node is not pulled")
	}
	l.mu.Lock()
	il := l.in[node]
	if il == nil {
		il = &inLink{pulls: map[string]*pull{}}
		l.in[node] = il
	}
	p := il.pulls[stream]
	first := p == nil
	if first {
		p = &pull{ready: make(chan struct{})}
		il.pulls[stream] = p
	}
	p.refs++
	l.mu.Unlock()
	var once sync.Once
	release := func() { once.Do(func() { l.release(node, stream, p) }) }
	if first {
		if err := l.send(ctx, node, body{Kind: kindPull, Stream: stream}); err != nil {
			l.fail(node, stream, err)
		}
	}
	t := time.NewTimer(l.cfg.PullTimeout)
	defer t.Stop()
	select {
	case <-p.ready:
	case <-ctx.Done():
		release()
		return nil, nil, ctx.Err()
	case <-t.C:
		release()
		return nil, nil, fmt.Errorf("cascade: stream %s did not arrive from node %s within %v", stream, node, l.cfg.PullTimeout)
	}
	if p.err != nil {
		release()
		return nil, nil, p.err
	}
	return p.pub, release, nil
}

// release ends one subscriber's use of a pulled stream; the last one drops it.
func (l *Links) release(node, stream string, p *pull) {
	l.mu.Lock()
	p.refs--
	il := l.in[node]
	if p.refs > 0 || il == nil || il.pulls[stream] != p {
		l.mu.Unlock()
		return
	}
	delete(il.pulls, stream)
	relay := il.relay
	failed := p.err != nil
	l.mu.Unlock()
	if relay != nil {
		relay.Drop(stream)
	}
	if !failed {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := l.send(ctx, node, body{Kind: kindDrop, Stream: stream}); err != nil {
			l.log.Warn("cascade: dropping a stream failed", "peer", node, "stream", stream, "err", err)
		}
	}
}

// fail ends the wait of a pull that cannot be served.
func (l *Links) fail(node, stream string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	il := l.in[node]
	if il == nil {
		return
	}
	if p := il.pulls[stream]; p != nil && !p.done {
		p.err, p.done = fmt.Errorf("cascade: node %s cannot send stream %s: %w", node, stream, err), true
		close(p.ready)
		delete(il.pulls, stream)
	}
}

func (l *Links) onOffer(ctx context.Context, from string, b body, log *slog.Logger) {
	l.mu.Lock()
	il := l.in[from]
	if il == nil {
		il = &inLink{pulls: map[string]*pull{}}
		l.in[from] = il
	}
	var stale *sfu.RelayIn
	if il.id != b.Link {
		// A new link: the sending node closed the old one (or restarted).
		stale, il.relay, il.id = il.relay, nil, b.Link
	}
	relay := il.relay
	l.mu.Unlock()
	if stale != nil {
		stale.Close()
	}
	if relay == nil {
		var err error
		if relay, err = l.sfu.NewRelayIn(l.log.With("peer", from), l.watch(from, b.Link, false, log)); err != nil {
			log.Warn("cascade: link refused", "err", err)
			return
		}
		l.mu.Lock()
		il.relay = relay
		l.mu.Unlock()
	}
	var ready []*pull
	l.mu.Lock()
	for stream, codecs := range b.Streams {
		p := il.pulls[stream]
		if p == nil || p.done {
			continue
		}
		pub, err := relay.Expect(stream, codecs)
		if err != nil {
			p.err = err
		}
		p.pub = pub
		ready = append(ready, p)
	}
	l.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	sdp, err := relay.Answer(actx, b.SDP)
	if err != nil {
		log.Warn("cascade: offer refused", "err", err)
	} else {
		l.sendLogged(actx, from, body{Kind: kindAnswer, Link: b.Link, Gen: b.Gen, SDP: sdp}, log)
	}
	l.mu.Lock()
	for _, p := range ready {
		if err != nil && p.err == nil {
			p.err = err
		}
		if !p.done {
			p.done = true
			close(p.ready)
		}
	}
	l.mu.Unlock()
}

func (l *Links) onClose(from, link string) {
	l.mu.Lock()
	il := l.in[from]
	if il == nil || il.id != link {
		l.mu.Unlock()
		return
	}
	relay := il.relay
	il.relay, il.id = nil, ""
	l.mu.Unlock()
	if relay != nil {
		relay.Close()
	}
}

// watch returns a link's state callback: a link that fails or closes is reported to Run.
func (l *Links) watch(node, id string, out bool, log *slog.Logger) func(string) {
	return func(st string) {
		log.Debug("cascade: link state", "state", st, "link", id)
		// closed: the other end closed it (a node shutting down), or we did (then the link is
		// forgotten already and this is ignored).
		if st == "failed" || st == "closed" {
			select {
			case l.failed <- linkEnd{node, id, out}:
			default:
			}
		}
	}
}

// onFailed forgets a failed link. Sending end: its streams stop (the other node pulls again if it
// is still there). Receiving end: its streams here stop, and the next subscriber to one of them
// pulls it anew.
func (l *Links) onFailed(ctx context.Context, f linkEnd) {
	log := l.log.With("peer", f.node, "link", f.id)
	if f.out {
		if ol := l.out[f.node]; ol != nil && ol.id == f.id {
			l.forgetOut(f.node, ol)
			l.sendLogged(ctx, f.node, body{Kind: kindClose, Link: ol.id}, log)
			log.Warn("cascade: link failed; its streams stopped crossing", "streams", len(ol.streams))
		}
		return
	}
	l.mu.Lock()
	il := l.in[f.node]
	if il == nil || il.id != f.id {
		l.mu.Unlock()
		return
	}
	relay := il.relay
	il.relay, il.id = nil, ""
	for stream, p := range il.pulls {
		if p.done {
			delete(il.pulls, stream) // its subscribers keep a publisher that gets nothing more
		}
	}
	l.mu.Unlock()
	if relay != nil {
		relay.Close()
	}
	log.Warn("cascade: link failed; the streams it brought stopped")
}

// forgetOut closes the sending link to node and keeps its counts.
func (l *Links) forgetOut(node string, ol *outLink) {
	l.mu.Lock()
	delete(l.out, node)
	l.mu.Unlock()
	ol.relay.Close()
	st := ol.relay.Stats()
	l.mu.Lock()
	t := l.sent[node]
	t.Packets += st.Packets
	t.Bytes += st.Bytes
	l.sent[node] = t
	l.mu.Unlock()
}

// closeAll ends every link (Run's end).
func (l *Links) closeAll() {
	l.mu.Lock()
	out, in := l.out, l.in
	l.out, l.in = map[string]*outLink{}, map[string]*inLink{}
	l.mu.Unlock()
	for _, ol := range out {
		ol.relay.Close()
	}
	for _, il := range in {
		if il.relay != nil {
			il.relay.Close()
		}
	}
}

// LinkStats are the links this node sends on to one node.
type LinkStats struct {
	Node string
	// Live is set while a link to Node is open.
	Live bool
	// Streams and Tracks are what the live link carries now (0 when there is none); Packets and
	// Bytes count everything sent to Node since start.
	Streams int
	sfu.RelayStats
}

// Stats lists the nodes this node sends to, or did: a live link, or counts of closed ones.
func (l *Links) Stats() []LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LinkStats, 0, len(l.out))
	for node, ol := range l.out {
		st := LinkStats{Node: node, Live: true, Streams: len(ol.relay.Streams()), RelayStats: ol.relay.Stats()}
		st.Packets += l.sent[node].Packets
		st.Bytes += l.sent[node].Bytes
		out = append(out, st)
	}
	for node, t := range l.sent {
		if l.out[node] == nil {
			out = append(out, LinkStats{Node: node, RelayStats: t})
		}
	}
	return out
}
