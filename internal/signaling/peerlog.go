package signaling

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Log lines a peer can cause are bounded twice: what it chose is cut to logText bytes, and how
// many lines it causes is rate-limited, per socket and for the whole handler, so neither one
// socket nor a crowd of forged ones floods the log. Lines over budget are counted and the count
// rides on the next line that is written.
const (
	logText = 128 // bytes of a peer-chosen string kept in a log line

	socketLogBurst = 5                // lines one socket may cause at once…
	socketLogEvery = 10 * time.Second // …then one per this
	allLogBurst    = 50               // lines all sockets together may cause at once…
	allLogEvery    = 100 * time.Millisecond
)

// clip cuts a peer-chosen string for a log line or an error message, saying how long it was.
func clip(s string) string {
	if len(s) <= logText {
		return s
	}
	cut := logText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// logBudget is a token bucket of log lines.
type logBudget struct {
	mu         sync.Mutex
	burst      float64
	every      time.Duration
	tokens     float64
	last       time.Time
	suppressed int
}

func newLogBudget(burst int, every time.Duration) *logBudget {
	return &logBudget{burst: float64(burst), every: every, tokens: float64(burst)}
}

// take spends one line if the budget has it; otherwise it counts the line as suppressed.
func (b *logBudget) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+float64(now.Sub(b.last))/float64(b.every))
	}
	b.last = now
	if b.tokens < 1 {
		b.suppressed++
		return false
	}
	b.tokens--
	return true
}

// suppress counts a line left out for another reason (a socket's own budget).
func (b *logBudget) suppress() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.suppressed++
}

// takeSuppressed returns and resets the count of lines suppressed so far.
func (b *logBudget) takeSuppressed() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.suppressed
	b.suppressed = 0
	return n
}

// peerLog writes a line caused by a peer if both sock's budget (nil: none of its own) and the
// handler's allow it, with the number of lines left out, by any socket, since the last one
// written.
func (h *Handler) peerLog(sock *socket, level slog.Level, msg string, args ...any) {
	if !h.log.Enabled(context.Background(), level) {
		return
	}
	now := h.now()
	if sock != nil && !sock.logs.take(now) {
		h.logs.suppress()
		return
	}
	if !h.logs.take(now) {
		return
	}
	if n := h.logs.takeSuppressed(); n > 0 {
		args = append(args, "suppressed", n)
	}
	h.log.Log(context.Background(), level, msg, args...)
}
