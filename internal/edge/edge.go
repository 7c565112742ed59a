// Package edge owns Parley's public TCP port: it accepts connections and hands them to the HTTP
// handler (REST, signaling, app). Later it also tells TURN and ICE-TCP apart by their first bytes.
//
// It knows nothing of sessions, OpenVidu or media: it receives handlers and must not import api,
// signaling, session or sfu.
package edge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server serves HTTP on one listener.
type Server struct {
	ln   net.Listener
	http *http.Server
}

// New wraps ln; h serves every HTTP request.
func New(ln net.Listener, h http.Handler, log *slog.Logger) *Server {
	return &Server{ln: ln, http: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second, // slowloris: headers must arrive promptly
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}
}

// Run serves until ctx ends, then stops accepting and waits for in-flight requests (WebSockets are
// closed by their owner, see Shutdown in main).
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(sctx)
	if err2 := <-errc; !errors.Is(err2, http.ErrServerClosed) && err == nil {
		err = err2
	}
	return err
}
