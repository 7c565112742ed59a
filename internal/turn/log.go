package turn

import (
	"log/slog"

	"github.com/pion/logging"

	"github.com/parley/parley/internal/pionlog"
)

// levelTrace is where pion's per-datagram lines go (below slog.LevelDebug).
const levelTrace = pionlog.LevelTrace

// pionLoggerFactory routes pion/turn's logs into our slog logger, with the scope as a key:
//
//	pion trace, debug → levelTrace (per datagram)
//	pion info         → Debug      (per request: "permission denied for client …")
//	pion warn, error  → Warn, rate-limited; a connection's normal end → Debug
func pionLoggerFactory(log *slog.Logger) logging.LoggerFactory {
	return pionlog.Factory{Log: log, Levels: pionlog.Default}
}
