package turn

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
)

// levelTrace is below slog.LevelDebug: pion logs at debug level for every datagram it handles,
// which is far too much for an operator's "debug". They show only if the handler is set this low.
const levelTrace = slog.LevelDebug - 4

// pionLoggerFactory routes pion's logs into our slog logger, with the scope as a key.
type pionLoggerFactory struct{ log *slog.Logger }

var _ logging.LoggerFactory = pionLoggerFactory{}

// NewLogger implements logging.LoggerFactory.
func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return &pionLogger{log: f.log.With("pion", scope)}
}

// pionLogger maps pion's levels onto slog:
//
//	pion trace, debug → levelTrace (per packet)
//	pion info         → Debug      (per request: "permission denied for client …")
//	pion warn, error  → Warn, at most warnBurst lines per warnWindow
//
// pion's warnings and errors are mostly triggered by clients (a failed TLS handshake, a bad
// ChannelBind), so an attacker could otherwise flood the log; suppressed lines are counted and the
// count is reported with the next line that gets through.
type pionLogger struct {
	log *slog.Logger

	windowStart atomic.Int64 // unix nanoseconds
	inWindow    atomic.Int64
	suppressed  atomic.Int64
}

const (
	warnBurst  = 10
	warnWindow = time.Minute
)

func (l *pionLogger) emit(level slog.Level, msg string) {
	if level >= slog.LevelWarn && !l.allowWarn() {
		return
	}
	attrs := []slog.Attr(nil)
	if n := l.suppressed.Swap(0); n > 0 && level >= slog.LevelWarn {
		attrs = append(attrs, slog.Int64("suppressed", n))
	}
	l.log.LogAttrs(context.Background(), level, msg, attrs...)
}

func (l *pionLogger) allowWarn() bool {
	now := time.Now().UnixNano()
	start := l.windowStart.Load()
	if now-start > int64(warnWindow) && l.windowStart.CompareAndSwap(start, now) {
		l.inWindow.Store(0)
	}
	if l.inWindow.Add(1) > warnBurst {
		l.suppressed.Add(1)
		return false
	}
	return true
}

func (l *pionLogger) logf(level slog.Level, format string, args ...any) {
	// Check first: formatting is the expensive part, and most of pion's lines are filtered out.
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.emit(level, fmt.Sprintf(format, args...))
}

func (l *pionLogger) logs(level slog.Level, msg string) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.emit(level, msg)
}

// Trace implements logging.LeveledLogger.
func (l *pionLogger) Trace(msg string) { l.logs(levelTrace, msg) }

// Tracef implements logging.LeveledLogger.
func (l *pionLogger) Tracef(format string, args ...any) { l.logf(levelTrace, format, args...) }

// Debug implements logging.LeveledLogger.
func (l *pionLogger) Debug(msg string) { l.logs(levelTrace, msg) }

// Debugf implements logging.LeveledLogger.
func (l *pionLogger) Debugf(format string, args ...any) { l.logf(levelTrace, format, args...) }

// Info implements logging.LeveledLogger.
func (l *pionLogger) Info(msg string) { l.logs(slog.LevelDebug, msg) }

// Infof implements logging.LeveledLogger.
func (l *pionLogger) Infof(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }

// Warn implements logging.LeveledLogger.
func (l *pionLogger) Warn(msg string) { l.logs(slog.LevelWarn, msg) }

// Warnf implements logging.LeveledLogger.
func (l *pionLogger) Warnf(format string, args ...any) { l.logf(slog.LevelWarn, format, args...) }

// Error implements logging.LeveledLogger.
func (l *pionLogger) Error(msg string) { l.logs(slog.LevelWarn, msg) }

// Errorf implements logging.LeveledLogger.
func (l *pionLogger) Errorf(format string, args ...any) { l.logf(slog.LevelWarn, format, args...) }
