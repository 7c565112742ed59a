package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

// static serves the embedded web files. Every response is revalidated (Cache-Control: no-cache)
// against a content ETag: the files are small, and after an upgrade nobody runs yesterday's script
// against today's server.
type static struct {
	files map[string][]byte // path inside the FS → content
	etags map[string]string
}

func newStatic(fsys fs.FS, log *slog.Logger) *static {
	s := &static{files: map[string][]byte{}, etags: map[string]string{}}
	if fsys == nil {
		return s
	}
	// Read everything once: the set is embedded and small, and a missing file is found at start-up
	// rather than on someone's first click.
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			log.Warn("web file unreadable", "file", p, "err", err)
			return nil
		}
		sum := sha256.Sum256(b)
		s.files[p] = b
		s.etags[p] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	if _, ok := s.files["index.html"]; !ok {
		log.Warn("the web app is not built into this binary: / and /test explain how to build it (make build)")
	}
	return s
}

// securityHeaders keep the pages to our own origin: scripts, styles and media only from here (the
// SDK included), camera and microphone only for this origin, no referrer carrying room names away.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "+
		"media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)")
}

func (s *static) serve(w http.ResponseWriter, r *http.Request, name string) bool {
	b, ok := s.files[name]
	if !ok {
		return false
	}
	securityHeaders(w.Header())
	w.Header().Set("ETag", s.etags[name])
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	return true
}

// page serves an HTML page, or explains how to build the app when the binary has none.
func (s *static) page(w http.ResponseWriter, r *http.Request, name string) {
	if s.serve(w, r, name) {
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(notBuilt))
}

// asset serves /assets/<file> from the FS's assets/ folder.
func (s *static) asset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if !strings.HasPrefix(name, "assets/") || !s.serve(w, r, name) {
		http.NotFound(w, r)
	}
}

const notBuilt = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Parley</title>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;line-height:1.5">
<h1>Parley is running, but its web app was not built into this binary</h1>
<p>The REST API and signaling work (OpenVidu applications can use this server). To get the video
call app and the device test, build with <code>make build</code> (it runs <code>make web</code>,
which needs Node.js and npm) and start the new binary.</p></body></html>`
