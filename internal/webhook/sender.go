package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/parley/parley/internal/eventjson"
	"github.com/parley/parley/internal/session"
)

// Config configures a Sender. Zero durations and sizes take the defaults named on each field.
type Config struct {
	// Endpoint is OPENVIDU_WEBHOOK_ENDPOINT, an http or https URL.
	Endpoint string
	// Headers are OPENVIDU_WEBHOOK_HEADERS, added to every request.
	Headers http.Header
	// Events are OPENVIDU_WEBHOOK_EVENTS: the OpenVidu event names to send. Names Parley never
	// emits (recordingStatusChanged until recording exists, the PRO ones) simply never match.
	Events []string
	// Key signs every request (see Sign).
	Key []byte
	// QueueSize bounds the events waiting for delivery (default 4096).
	QueueSize int
	// RetryTimeout is how old an event may get while its delivery is retried (default 60 s).
	RetryTimeout time.Duration
	// AttemptTimeout bounds one request, connection included (default 10 s, as OpenVidu).
	AttemptTimeout time.Duration
	// FlushTimeout is how long Run keeps delivering after its context ends (default 5 s).
	FlushTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts (default 100 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
	// Client, if set, sends the requests (tests). It must not follow redirects.
	Client *http.Client
}

// Drop reasons, as counted in Stats.Dropped.
const (
	DropQueueFull = iota // the queue was full when the event happened
	DropExpired          // still undelivered after RetryTimeout
	DropRejected         // the endpoint answered a status that retrying will not change
	DropShutdown         // undelivered when the flush deadline passed
	numDropReasons
)

// DropReasons names the drop reasons, by index, for logs and metrics labels.
var DropReasons = [numDropReasons]string{"queue_full", "expired", "rejected", "shutdown"}

// Stats are the sender's counters since start.
type Stats struct {
	// Queued is the number of events waiting (gauge).
	Queued int
	// Delivered counts events the endpoint accepted (2xx).
	Delivered uint64
	// FailedAttempts counts requests that failed and were retried or led to a drop.
	FailedAttempts uint64
	// Dropped counts undelivered events by reason (see DropReasons).
	Dropped [numDropReasons]uint64
	// LatencySum adds up, over delivered events, the time from the event to the endpoint's answer.
	LatencySum time.Duration
}

// Sender delivers events to one endpoint. Listen is safe from any goroutine; Run is called once.
type Sender struct {
	cfg      Config
	log      *slog.Logger
	endpoint string
	host     string // what logs name: the URL may carry credentials in its path or query
	want     map[session.EventKind]bool
	queue    chan session.Event
	client   *http.Client
	bootID   string

	delivered, failedAttempts, latencyNanos atomic.Uint64
	dropped                                 [numDropReasons]atomic.Uint64

	// Owned by the Run goroutine.
	seq          uint64
	backoff      time.Duration
	failingSince time.Time // zero while the endpoint answers
	lastDropLog  time.Time
	loggedDrops  [numDropReasons]uint64
}

// New checks cfg and returns a Sender; nothing is sent before Run.
func New(cfg Config, log *slog.Logger) (*Sender, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("webhook endpoint must be an http:// or https:// URL with a host")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.RetryTimeout, 60*time.Second)
	def(&cfg.AttemptTimeout, 10*time.Second)
	def(&cfg.FlushTimeout, 5*time.Second)
	def(&cfg.MinBackoff, 100*time.Millisecond)
	def(&cfg.MaxBackoff, 5*time.Second)
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	s := &Sender{cfg: cfg, log: log, endpoint: cfg.Endpoint, host: u.Host, want: map[session.EventKind]bool{},
		queue: make(chan session.Event, cfg.QueueSize), client: cfg.Client, backoff: cfg.MinBackoff}
	for _, name := range cfg.Events {
		if k, ok := eventjson.Kind(name); ok {
			s.want[k] = true
		}
	}
	if s.client == nil {
		s.client = &http.Client{
			// A redirected POST turns into a GET on most servers: report the 3xx instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s.bootID = hex.EncodeToString(b)
	return s, nil
}

// Listen queues e if its event is wanted; it never blocks (a session.Listener). A full queue drops
// e: the model must not wait for an endpoint.
func (s *Sender) Listen(e session.Event) {
	if !s.want[e.Kind] {
		return
	}
	select {
	case s.queue <- e:
	default:
		s.dropped[DropQueueFull].Add(1) // logged by the sender, which may write to a slow stderr
	}
}

// Stats returns the counters.
func (s *Sender) Stats() Stats {
	st := Stats{Queued: len(s.queue), Delivered: s.delivered.Load(), FailedAttempts: s.failedAttempts.Load(),
		LatencySum: time.Duration(s.latencyNanos.Load())}
	for i := range st.Dropped {
		st.Dropped[i] = s.dropped[i].Load()
	}
	return st
}

// errFlushDeadline is why deliveries stop after shutdown.
var errFlushDeadline = errors.New("webhook flush deadline passed")

// Run delivers queued events until ctx ends, then keeps delivering what is queued for up to
// FlushTimeout (the last events of a shutdown are the ones operators most want). It returns an
// error only if the flush deadline cut deliveries short.
func (s *Sender) Run(ctx context.Context) error {
	// hard ends every request and wait FlushTimeout after ctx: a down endpoint cannot hold
	// shutdown hostage.
	hard, cancel := context.WithCancelCause(context.Background())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-hard.Done():
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(s.cfg.FlushTimeout)
		defer t.Stop()
		select {
		case <-hard.Done():
		case <-t.C:
			cancel(errFlushDeadline)
		}
	}()
	defer func() { cancel(nil); <-watchDone }()

	for {
		select {
		case e := <-s.queue:
			s.deliver(hard, e)
		case <-ctx.Done():
			for {
				select {
				case e := <-s.queue:
					s.deliver(hard, e)
					continue
				default:
				}
				s.logDrops(true)
				if err := context.Cause(hard); err != nil {
					return err
				}
				return nil
			}
		}
	}
}

// deliver sends one event, retrying as the package doc says. Called by Run only.
func (s *Sender) deliver(ctx context.Context, e session.Event) {
	defer s.logDrops(false)
	body, ok := eventjson.Webhook(e)
	if !ok {
		return
	}
	s.seq++
	id := s.bootID + "-" + strconv.FormatUint(s.seq, 10)
	deadline := e.Time.Add(s.cfg.RetryTimeout)
	for first := true; ; first = false {
		// An event that aged out in the queue still gets one try if the endpoint was answering.
		if (!first || !s.failingSince.IsZero()) && time.Now().After(deadline) {
			s.drop(DropExpired)
			return
		}
		if ctx.Err() != nil {
			s.drop(DropShutdown)
			return
		}
		status, err := s.post(ctx, id, body)
		switch {
		case err == nil && status/100 == 2:
			s.recovered()
			s.delivered.Add(1)
			s.latencyNanos.Add(uint64(max(time.Since(e.Time), 0)))
			return
		case err == nil && !retryable(status):
			s.recovered()
			s.log.Warn("webhook refused by the endpoint, not retried", "endpoint", s.host, "status", status,
				"event", e.Kind.String(), "session", e.Session)
			s.drop(DropRejected)
			return
		}
		s.failedAttempts.Add(1)
		if s.failingSince.IsZero() {
			s.failingSince = time.Now()
			reason := "status " + strconv.Itoa(status)
			if err != nil {
				reason = err.Error()
			}
			s.log.Warn("webhook endpoint failing, retrying", "endpoint", s.host, "error", reason, "queued", len(s.queue))
		}
		wait := min(s.backoff, time.Until(deadline))
		s.backoff = min(2*s.backoff, s.cfg.MaxBackoff)
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		s.logDrops(false) // the queue may have overflowed meanwhile
	}
}

// retryable statuses are the endpoint's temporary troubles; any other is its answer.
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

func (s *Sender) recovered() {
	s.backoff = s.cfg.MinBackoff
	if !s.failingSince.IsZero() {
		s.log.Info("webhook endpoint answering again", "endpoint", s.host, "after", time.Since(s.failingSince).Round(time.Millisecond))
		s.failingSince = time.Time{}
	}
}

// post makes one attempt. It returns the status, or an error without the URL (which may carry
// credentials) for a request that got no answer.
func (s *Sender) post(ctx context.Context, id string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("bad webhook request")
	}
	for k, v := range s.cfg.Headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "parley-webhook")
	req.Header.Set(EventIDHeader, id)
	req.Header.Set(SignatureHeader, Sign(s.cfg.Key, time.Now(), body))
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err
	}
	// Drain a little so the connection can be reused; a receiver has nothing to tell us.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func (s *Sender) drop(reason int) { s.dropped[reason].Add(1) }

// logDrops reports new drops at most every 10 s (a down endpoint would otherwise log one line per
// event); final reports whatever is left.
func (s *Sender) logDrops(final bool) {
	if !final && time.Since(s.lastDropLog) < 10*time.Second {
		return
	}
	var attrs []any
	for i := range s.loggedDrops {
		n := s.dropped[i].Load()
		if d := n - s.loggedDrops[i]; d > 0 {
			attrs = append(attrs, DropReasons[i], d)
		}
		s.loggedDrops[i] = n
	}
	if len(attrs) > 0 {
		s.lastDropLog = time.Now()
		s.log.Warn("webhook events dropped", append(attrs, "endpoint", s.host, "queued", len(s.queue))...)
	}
}
