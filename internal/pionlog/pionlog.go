// Package pionlog routes the logs of pion (webrtc, ice, dtls, turn) into slog, at levels an
// operator can live with: pion logs per packet at debug and reports a peer's ordinary goodbye as a
// warning or an error.
//
// It owns the level mapping, a rate limit on warnings (clients trigger most of pion's warnings, so
// an attacker could otherwise flood the log) and the recognition of teardown noise. It imports
// nothing of Parley's; sfu and turn hand it their logger.
package pionlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/logging"
)

// LevelTrace is below slog.LevelDebug: pion's per-packet lines show only if the handler is set
// this low.
const LevelTrace = slog.LevelDebug - 4

// Levels maps pion's levels onto slog's.
type Levels struct {
	Trace, Debug, Info, Warn, Error slog.Level
}

// Default is the mapping for pion's media stacks and TURN: per-packet lines at LevelTrace,
// per-request ones at Debug, warnings and errors at Warn.
var Default = Levels{Trace: LevelTrace, Debug: LevelTrace, Info: slog.LevelDebug, Warn: slog.LevelWarn, Error: slog.LevelWarn}

// Factory is a logging.LoggerFactory writing to Log with the scope as the "pion" key.
type Factory struct {
	Log    *slog.Logger
	Levels Levels
}

var _ logging.LoggerFactory = Factory{}

// NewLogger implements logging.LoggerFactory.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return &Logger{log: f.Log.With("pion", scope), lv: f.Levels}
}

// Logger is one scope's logger. Lines at Warn and above are limited to Burst per Window; the
// suppressed ones are counted and the count rides on the next line that gets through.
type Logger struct {
	log *slog.Logger
	lv  Levels

	windowStart atomic.Int64 // unix nanoseconds
	inWindow    atomic.Int64
	suppressed  atomic.Int64
}

// Rate limit of warnings per scope.
const (
	Burst  = 10
	Window = time.Minute
)

var _ logging.LeveledLogger = (*Logger)(nil)

func (l *Logger) emit(level slog.Level, msg string) {
	if level >= slog.LevelWarn && !l.allowWarn() {
		return
	}
	var attrs []slog.Attr
	if level >= slog.LevelWarn {
		if n := l.suppressed.Swap(0); n > 0 {
			attrs = append(attrs, slog.Int64("suppressed", n))
		}
	}
	l.log.LogAttrs(context.Background(), level, msg, attrs...)
}

func (l *Logger) allowWarn() bool {
	now := time.Now().UnixNano()
	start := l.windowStart.Load()
	if now-start > int64(Window) && l.windowStart.CompareAndSwap(start, now) {
		l.inWindow.Store(0)
	}
	if l.inWindow.Add(1) > Burst {
		l.suppressed.Add(1)
		return false
	}
	return true
}

func (l *Logger) logf(level slog.Level, format string, args ...any) {
	if level >= slog.LevelWarn {
		msg := fmt.Sprintf(format, args...)
		if Teardown(msg, args...) {
			level = slog.LevelDebug
		}
		if l.log.Enabled(context.Background(), level) {
			l.emit(level, msg)
		}
		return
	}
	// Check first: formatting is the expensive part, and most of pion's lines are filtered out.
	if l.log.Enabled(context.Background(), level) {
		l.emit(level, fmt.Sprintf(format, args...))
	}
}

func (l *Logger) logs(level slog.Level, msg string) {
	if level >= slog.LevelWarn && Teardown(msg) {
		level = slog.LevelDebug
	}
	if l.log.Enabled(context.Background(), level) {
		l.emit(level, msg)
	}
}

// teardownText are what the errors of a connection closed under pion's feet say, when they reach
// the log already formatted (pion wraps with %v, which loses the error chain).
var teardownText = []string{
	"use of closed network connection",
	"closeNotify", "close_notify", "close notify",
	"connection reset by peer",
	"broken pipe",
	"read/write on closed pipe",
	"EOF",
	"already closed",
	"conn is closed",
	"is closed",
}

// Teardown tells whether a warning or error of pion is only a connection's normal end: a TLS or
// DTLS close_notify, a write to an allocation or socket that was just closed, a peer that hung up.
// Such lines are demoted to debug; a participant leaving is not a warning.
func Teardown(msg string, args ...any) bool {
	for _, a := range args {
		if err, ok := a.(error); ok && (errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) ||
			errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			return true
		}
	}
	for _, t := range teardownText {
		if strings.Contains(msg, t) {
			return true
		}
	}
	return false
}

// Trace implements logging.LeveledLogger.
func (l *Logger) Trace(msg string) { l.logs(l.lv.Trace, msg) }

// Tracef implements logging.LeveledLogger.
func (l *Logger) Tracef(format string, args ...any) { l.logf(l.lv.Trace, format, args...) }

// Debug implements logging.LeveledLogger.
func (l *Logger) Debug(msg string) { l.logs(l.lv.Debug, msg) }

// Debugf implements logging.LeveledLogger.
func (l *Logger) Debugf(format string, args ...any) { l.logf(l.lv.Debug, format, args...) }

// Info implements logging.LeveledLogger.
func (l *Logger) Info(msg string) { l.logs(l.lv.Info, msg) }

// Infof implements logging.LeveledLogger.
func (l *Logger) Infof(format string, args ...any) { l.logf(l.lv.Info, format, args...) }

// Warn implements logging.LeveledLogger.
func (l *Logger) Warn(msg string) { l.logs(l.lv.Warn, msg) }

// Warnf implements logging.LeveledLogger.
func (l *Logger) Warnf(format string, args ...any) { l.logf(l.lv.Warn, format, args...) }

// Error implements logging.LeveledLogger.
func (l *Logger) Error(msg string) { l.logs(l.lv.Error, msg) }

// Errorf implements logging.LeveledLogger.
func (l *Logger) Errorf(format string, args ...any) { l.logf(l.lv.Error, format, args...) }
