// Package cascade carries media between the nodes of a cluster (design.md, "Several nodes"): a
// stream published on node A and subscribed on node B crosses A→B once, however many subscribe to
// it on B, on one link per node pair that carries both directions (a DTLS-SRTP PeerConnection
// between the nodes' media ports, sfu.Relay: two PeerConnections between the same two addresses
// cannot be told apart on the shared media port). A session whose participants are all on one node
// never makes a link.
//
// B pulls: its first subscriber to the stream asks A for it, and A puts the stream's tracks on its
// end of the link (making the link if there is none). The end with the lower node id makes every
// offer, so the two never offer at once: if that is A, it offers the stream's m-lines and B
// answers; if it is B, A tells B the stream's codecs (send), B adds recvonly m-lines for it and
// offers, and A answers with the stream's tracks on them. Either way the stream appears on B as a
// local publisher that B's subscribers attach to. When B's last subscriber goes, B drops it; A
// takes the tracks off, and the end that finds nothing crossing either way closes the link.
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
	// sending makes sends one at a time, in the order of their sequence numbers: the receiver
	// refuses a number lower than one it has seen (a replay), so two sends racing (a pull from a
	// subscriber's goroutine, an offer from Run's) lost the one numbered first but sent second.
	sending sync.Mutex
	seq     uint64
	inbox   chan envelope
	// failed are links whose PeerConnection failed or closed (the other node died or cannot be
	// reached); Run forgets them.
	failed chan linkEnd

	mu    sync.Mutex
	links map[string]*link // by other node; only Run adds and removes them
	// sent are the counts of the closed links by other node, so Stats' counters never go back.
	sent  map[string]sfu.RelayStats
	pulls map[string]map[string]*pull // by sending node, by stream
	seen  map[string]seen             // by sending node: the last message accepted
}

// linkEnd names a link that failed.
type linkEnd struct {
	node string
	lk   *link
}

type seen struct {
	boot string
	seq  uint64
}

// link is this node's end of the link with one node. Only Run's goroutine uses its fields after
// id and relay (which it writes under Links.mu).
type link struct {
	// id is the offering end's name for the link; "" on the answering end until its first offer.
	id      string
	relay   *sfu.Relay
	offerer bool
	sends   map[string][]sfu.RelayCodec // the streams this node sends on it
	// The offering end's negotiation.
	gen     uint64 // offers made
	waiting bool   // the offer gen awaits its answer
	dirty   bool   // what the link carries changed since that offer
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
		inbox: make(chan envelope, inboxSize), failed: make(chan linkEnd, inboxSize), links: map[string]*link{}, pulls: map[string]map[string]*pull{},
		seen: map[string]seen{}, sent: map[string]sfu.RelayStats{}}
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
	kindSend   = "send"   // answering sender → offering receiver: Stream comes with Streams' codecs
	kindOffer  = "offer"  // offering end → answering end: SDP for Link, generation Gen, carrying Streams, receiving Recv
	kindAnswer = "answer" // answering end → offering end: SDP answering Link's offer Gen
	kindClose  = "close"  // either end: Link is closed (nothing crosses it)
)

// body is what a message says.
type body struct {
	Kind   string `json:"kind"`
	Link   string `json:"link,omitempty"`
	Gen    uint64 `json:"gen,omitempty"`
	Stream string `json:"stream,omitempty"`
	SDP    string `json:"sdp,omitempty"`
	// Streams are the streams the sender of the message sends, with their codecs.
	Streams map[string][]sfu.RelayCodec `json:"streams,omitempty"`
	// Recv are the streams the offering end receives, with the m-lines (mids) of each.
	Recv map[string][]string `json:"recv,omitempty"`
	Err  string              `json:"err,omitempty"`
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
	l.sending.Lock()
	defer l.sending.Unlock()
	l.seq++
	e := envelope{From: l.cfg.NodeID, To: node, Boot: l.boot, Seq: l.seq, Time: time.Now().UnixMilli(), Body: raw}
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
	case kindSend:
		l.onSend(ctx, from, b, log)
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

// offers reports whether this node makes the offers on its link with node: the lower id does, so
// the two ends never offer at once.
func (l *Links) offers(node string) bool { return l.cfg.NodeID < node }

// linkTo returns this node's end of the link with node, made if there is none.
func (l *Links) linkTo(node string, log *slog.Logger) (*link, error) {
	if lk := l.links[node]; lk != nil {
		return lk, nil
	}
	lk := &link{offerer: l.offers(node), sends: map[string][]sfu.RelayCodec{}}
	if lk.offerer {
		lk.id = randomID()
	}
	relay, err := l.sfu.NewRelay(l.log.With("peer", node), lk.offerer, l.watch(node, lk, log))
	if err != nil {
		return nil, err
	}
	lk.relay = relay
	l.mu.Lock()
	l.links[node] = lk
	l.mu.Unlock()
	log.Info("cascade: link opened", "offers", lk.offerer)
	return lk, nil
}

// ---- sending ----

func (l *Links) onPull(ctx context.Context, to, stream string, log *slog.Logger) {
	pub, err := l.local(stream)
	if err != nil {
		l.sendLogged(ctx, to, body{Kind: kindRefuse, Stream: stream, Err: err.Error()}, log)
		return
	}
	lk, err := l.linkTo(to, log)
	if err != nil {
		l.sendLogged(ctx, to, body{Kind: kindRefuse, Stream: stream, Err: err.Error()}, log)
		return
	}
	codecs, err := lk.relay.Add(stream, pub)
	if err != nil {
		l.sendLogged(ctx, to, body{Kind: kindRefuse, Stream: stream, Err: err.Error()}, log)
		l.closeIfIdle(ctx, to, lk, log)
		return
	}
	lk.sends[stream] = codecs
	if lk.offerer {
		l.negotiate(ctx, to, lk, log)
		return
	}
	// The offering end adds the m-lines the stream goes on.
	l.sendLogged(ctx, to, body{Kind: kindSend, Stream: stream, Streams: map[string][]sfu.RelayCodec{stream: codecs}}, log)
}

func (l *Links) onDrop(ctx context.Context, to, stream string, log *slog.Logger) {
	lk := l.links[to]
	if lk == nil || lk.sends[stream] == nil {
		return
	}
	lk.relay.Remove(stream)
	delete(lk.sends, stream)
	if !l.closeIfIdle(ctx, to, lk, log) && lk.offerer {
		l.negotiate(ctx, to, lk, log)
	}
}

// closeIfIdle closes a link on which nothing crosses either way, and tells the other node.
func (l *Links) closeIfIdle(ctx context.Context, node string, lk *link, log *slog.Logger) bool {
	l.mu.Lock()
	pulling := len(l.pulls[node]) > 0
	l.mu.Unlock()
	if len(lk.sends) > 0 || pulling {
		return false
	}
	l.forget(node, lk)
	if lk.id != "" {
		l.sendLogged(ctx, node, body{Kind: kindClose, Link: lk.id}, log)
	}
	log.Info("cascade: link closed: nothing crosses it")
	return true
}

// negotiate offers what the link carries now, unless an offer is waiting for its answer: then
// the change goes in the offer after it.
func (l *Links) negotiate(ctx context.Context, to string, lk *link, log *slog.Logger) {
	if lk.waiting {
		lk.dirty = true
		return
	}
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	sdp, recv, err := lk.relay.Offer(octx)
	if err != nil {
		log.Warn("cascade: offer failed", "err", err)
		return
	}
	lk.gen++
	lk.waiting, lk.dirty = true, false
	streams := make(map[string][]sfu.RelayCodec, len(lk.sends))
	for id, c := range lk.sends {
		streams[id] = c
	}
	l.sendLogged(octx, to, body{Kind: kindOffer, Link: lk.id, Gen: lk.gen, SDP: sdp, Streams: streams, Recv: recv}, log)
}

func (l *Links) onAnswer(ctx context.Context, to string, b body, log *slog.Logger) {
	lk := l.links[to]
	if lk == nil || !lk.offerer || lk.id != b.Link || lk.gen != b.Gen || !lk.waiting {
		return // an answer to an offer since replaced
	}
	lk.waiting = false
	if err := lk.relay.SetAnswer(b.SDP); err != nil {
		log.Warn("cascade: answer refused", "err", err)
		return
	}
	if lk.dirty {
		l.negotiate(ctx, to, lk, log)
	}
}

func (l *Links) sendLogged(ctx context.Context, to string, b body, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := l.send(sctx, to, b); err != nil {
		log.Warn("cascade: sending failed", "kind", b.Kind, "err", err)
	}
}

// ---- receiving ----

// Pull returns this node's publisher of stream, published on node, and the func that releases it
// (call it once, when the subscription ends). The first pull of a stream asks node for it and waits
// for it to arrive, within ctx and Config.PullTimeout; later ones share it.
func (l *Links) Pull(ctx context.Context, node, stream string) (*sfu.Publisher, func(), error) {
	if node == l.cfg.NodeID {
		return nil, nil, errors.New("cascade: a stream of this node is not pulled")
	}
	l.mu.Lock()
	pulls := l.pulls[node]
	if pulls == nil {
		pulls = map[string]*pull{}
		l.pulls[node] = pulls
	}
	p := pulls[stream]
	first := p == nil
	if first {
		p = &pull{ready: make(chan struct{})}
		pulls[stream] = p
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
	if p.refs > 0 || l.pulls[node][stream] != p {
		l.mu.Unlock()
		return
	}
	delete(l.pulls[node], stream)
	var relay *sfu.Relay
	if lk := l.links[node]; lk != nil {
		relay = lk.relay
	}
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
	if p := l.pulls[node][stream]; p != nil && !p.done {
		p.err, p.done = fmt.Errorf("cascade: node %s cannot send stream %s: %w", node, stream, err), true
		close(p.ready)
		delete(l.pulls[node], stream)
	}
}

// waiting returns the pull of stream from node that still waits for its publisher, or nil.
func (l *Links) waiting(node, stream string) *pull {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.pulls[node][stream]; p != nil && !p.done {
		return p
	}
	return nil
}

// ready ends the wait of pulls: each gets its publisher or err.
func (l *Links) ready(ps map[*pull]*sfu.Publisher, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, pub := range ps {
		if p.done {
			continue
		}
		p.pub = pub
		if pub == nil && err == nil {
			err = errors.New("cascade: the stream could not be received")
		}
		if pub == nil || err != nil {
			p.err = err
		}
		p.done = true
		close(p.ready)
	}
}

// onSend: the answering end of our link with from sends stream; this end, which offers, adds the
// m-lines it comes on.
func (l *Links) onSend(ctx context.Context, from string, b body, log *slog.Logger) {
	p := l.waiting(from, b.Stream)
	if p == nil || !l.offers(from) {
		return // released meanwhile: our drop is on its way
	}
	lk, err := l.linkTo(from, log)
	if err != nil {
		l.fail(from, b.Stream, err)
		return
	}
	pub, err := lk.relay.Expect(b.Stream, b.Streams[b.Stream])
	l.ready(map[*pull]*sfu.Publisher{p: pub}, err)
	if err != nil {
		return
	}
	l.negotiate(ctx, from, lk, log)
}

func (l *Links) onOffer(ctx context.Context, from string, b body, log *slog.Logger) {
	lk := l.links[from]
	if l.offers(from) {
		log.Warn("cascade: an offer from a node this one offers to", "link", b.Link)
		return
	}
	if lk != nil && lk.id != "" && lk.id != b.Link {
		// A new link: the offering end closed the old one (or restarted).
		l.forget(from, lk)
		lk = nil
	}
	if lk == nil {
		var err error
		if lk, err = l.linkTo(from, log); err != nil {
			log.Warn("cascade: link refused", "err", err)
			return
		}
	}
	if lk.id == "" {
		l.mu.Lock()
		lk.id = b.Link
		l.mu.Unlock()
	}
	ready := map[*pull]*sfu.Publisher{}
	var expectErr error
	for stream, codecs := range b.Streams {
		p := l.waiting(from, stream)
		if p == nil {
			continue
		}
		pub, err := lk.relay.Expect(stream, codecs)
		if err != nil {
			expectErr = err
		}
		ready[p] = pub
	}
	actx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	sdp, err := lk.relay.Answer(actx, b.SDP, b.Recv)
	if err != nil {
		log.Warn("cascade: offer refused", "err", err)
	} else {
		l.sendLogged(actx, from, body{Kind: kindAnswer, Link: b.Link, Gen: b.Gen, SDP: sdp}, log)
	}
	if err == nil {
		err = expectErr
	}
	l.ready(ready, err)
}

func (l *Links) onClose(from, id string) {
	if lk := l.links[from]; lk != nil && lk.id == id && id != "" {
		l.forget(from, lk)
	}
}

// watch returns a link's state callback: a link that fails or closes is reported to Run.
func (l *Links) watch(node string, lk *link, log *slog.Logger) func(string) {
	return func(st string) {
		log.Debug("cascade: link state", "state", st)
		// closed: the other end closed it (a node shutting down), or we did (then the link is
		// forgotten already and this is ignored).
		if st == "failed" || st == "closed" {
			select {
			case l.failed <- linkEnd{node, lk}:
			default:
			}
		}
	}
}

// onFailed forgets a failed link: the streams it carried stop both ways. The other node pulls
// again if it is still there; here, the next subscriber to one of them pulls it anew.
func (l *Links) onFailed(ctx context.Context, f linkEnd) {
	if l.links[f.node] != f.lk {
		return
	}
	log := l.log.With("peer", f.node, "link", f.lk.id)
	l.forget(f.node, f.lk)
	if f.lk.id != "" {
		l.sendLogged(ctx, f.node, body{Kind: kindClose, Link: f.lk.id}, log)
	}
	log.Warn("cascade: link failed; its streams stopped crossing", "sent", len(f.lk.sends))
}

// forget closes the link with node, keeps its counts, and forgets the streams it brought (their
// subscribers keep a publisher that gets nothing more; a new subscriber pulls anew).
func (l *Links) forget(node string, lk *link) {
	l.mu.Lock()
	if l.links[node] == lk {
		delete(l.links, node)
	}
	for stream, p := range l.pulls[node] {
		if p.done {
			delete(l.pulls[node], stream)
		}
	}
	l.mu.Unlock()
	lk.relay.Close()
	st := lk.relay.Stats()
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
	links := l.links
	l.links = map[string]*link{}
	l.mu.Unlock()
	for _, lk := range links {
		lk.relay.Close()
	}
}

// LinkStats are what this node sends to one node.
type LinkStats struct {
	Node string
	// Live is set while a link to Node carries streams of this node.
	Live bool
	// Streams and Tracks are what the link carries from this node now (0 when nothing); Packets
	// and Bytes count everything sent to Node since start.
	Streams int
	sfu.RelayStats
}

// Stats lists the nodes this node sends to, or did: a live link, or counts of closed ones.
func (l *Links) Stats() []LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LinkStats, 0, len(l.links))
	listed := map[string]bool{}
	for node, lk := range l.links {
		st := LinkStats{Node: node, RelayStats: lk.relay.Stats()}
		st.Streams = len(lk.relay.Streams())
		st.Live = st.Tracks > 0
		st.Packets += l.sent[node].Packets
		st.Bytes += l.sent[node].Bytes
		if st.Live || st.Packets > 0 {
			out = append(out, st)
			listed[node] = true
		}
	}
	for node, t := range l.sent {
		if !listed[node] && t.Packets > 0 {
			out = append(out, LinkStats{Node: node, RelayStats: t})
		}
	}
	return out
}
