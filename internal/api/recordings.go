package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/parley/parley/internal/session"
)

// Recordings is what the REST API needs from the recorder (internal/recording satisfies it; the
// server wires it). Errors are *session.Error, mapped like the model's.
type Recordings interface {
	Start(session.SessionID, session.RecordingProperties) (session.RecordingInfo, error)
	Stop(id string) (session.RecordingInfo, error)
	Get(id string) (session.RecordingInfo, error)
	List() []session.RecordingInfo
	Delete(id string) error
	// File returns the path on disk of one file of a recording, refusing names outside its folder.
	File(id, name string) (string, error)
}

func (a *API) routeRecordings(p string) {
	if a.cfg.Recordings == nil {
		a.mux.HandleFunc(p+"/recordings", a.recordingsDisabled)
		a.mux.HandleFunc(p+"/recordings/", a.recordingsDisabled)
		return
	}
	a.mux.HandleFunc("POST "+p+"/recordings/start", a.startRecording)
	a.mux.HandleFunc("POST "+p+"/recordings/stop/{id}", a.stopRecording)
	a.mux.HandleFunc("GET "+p+"/recordings", a.listRecordings)
	a.mux.HandleFunc("GET "+p+"/recordings/{id}", a.getRecording)
	a.mux.HandleFunc("DELETE "+p+"/recordings/{id}", a.deleteRecording)
}

// recordingJSON is OpenVidu's Recording object (protocol note §10.3).
func (a *API) recordingJSON(r session.RecordingInfo) map[string]any {
	p := r.Props
	v := map[string]any{
		"id": r.ID, "object": "recording", "name": r.Name, "outputMode": p.OutputMode, "sessionId": r.Session,
		"createdAt": r.CreatedAt.UnixMilli(), "size": r.Size, "duration": r.Duration, "url": nil,
		"hasAudio": p.HasAudio, "hasVideo": p.HasVideo, "status": r.Status,
	}
	if p.OutputMode != "INDIVIDUAL" && p.HasVideo {
		v["resolution"], v["frameRate"], v["recordingLayout"] = p.Resolution, p.FrameRate, p.RecordingLayout
		if p.RecordingLayout == "CUSTOM" {
			v["customLayout"] = p.CustomLayout
		}
	}
	if r.File != "" && (r.Status == session.RecordingReady || r.Status == session.RecordingFailed) {
		v["url"] = a.cfg.PublicURL + "openvidu/recordings/" + r.ID + "/" + r.File
	}
	return v
}

// startProperties reads a start body over the session's defaultRecordingProperties, with the
// reference's codes: a wrong type is 400, a value out of range 422 (protocol note §10.2).
func startProperties(b body, def session.RecordingProperties) (session.RecordingProperties, int, error) {
	p := def
	var err error
	bad := func(e error) (session.RecordingProperties, int, error) { return p, http.StatusBadRequest, e }
	name, err := b.str("name", "")
	if err != nil {
		return bad(err)
	}
	if name != "" {
		if !recordingNameRE.MatchString(name) {
			return bad(errors.New(`"name" may contain only letters, digits, '_', '-' and '~'`)) // 400, as the reference
		}
		p.Name = name
	}
	if p.HasAudio, err = b.boolean("hasAudio", def.HasAudio); err != nil {
		return bad(err)
	}
	if p.HasVideo, err = b.boolean("hasVideo", def.HasVideo); err != nil {
		return bad(err)
	}
	if p.OutputMode, err = b.enum("outputMode", orDefault(def.OutputMode, "COMPOSED"), "COMPOSED", "COMPOSED_QUICK_START", "INDIVIDUAL"); err != nil {
		return bad(err)
	}
	if p.RecordingLayout, err = b.enum("recordingLayout", orDefault(def.RecordingLayout, "BEST_FIT"), "BEST_FIT", "CUSTOM", "PICTURE_IN_PICTURE", "VERTICAL_PRESENTATION", "HORIZONTAL_PRESENTATION"); err != nil {
		return bad(err)
	}
	if p.CustomLayout, err = b.str("customLayout", def.CustomLayout); err != nil {
		return bad(err)
	}
	if p.Resolution, err = b.str("resolution", orDefault(def.Resolution, "1280x720")); err != nil {
		return bad(err)
	}
	fr, err := b.integer("frameRate", int64(orDefaultInt(def.FrameRate, 25)))
	if err != nil {
		return bad(err)
	}
	p.FrameRate = int(fr)
	shm := def.ShmSize
	if shm == 0 {
		shm = 536870912
	}
	if p.ShmSize, err = b.integer("shmSize", shm); err != nil {
		return bad(err)
	}
	if p.IgnoreFailedStreams, err = b.boolean("ignoreFailedStreams", def.IgnoreFailedStreams); err != nil {
		return bad(err)
	}
	un := http.StatusUnprocessableEntity
	switch {
	case !p.HasAudio && !p.HasVideo:
		return p, un, errors.New(`"hasAudio" and "hasVideo" cannot both be false`)
	case p.OutputMode != "INDIVIDUAL" && !validResolution(p.Resolution):
		return p, un, errors.New(`"resolution" must be WIDTHxHEIGHT, each from 100 to 1999`)
	case p.OutputMode != "INDIVIDUAL" && (fr < 1 || fr > 120):
		return p, un, errors.New(`"frameRate" must be from 1 to 120`)
	case p.OutputMode != "INDIVIDUAL" && p.ShmSize < 134217728:
		return p, un, errors.New(`"shmSize" must be at least 134217728 (128 MB)`)
	}
	return p, 0, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDefaultInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

func (a *API) startRecording(w http.ResponseWriter, r *http.Request) {
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	sid, err := b.required("session")
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	si, err := a.m.Room(session.SessionID(sid)).Info(false)
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	p, status, err := startProperties(b, si.Props.DefaultRecording)
	if err != nil {
		a.fail(w, r, status, err.Error())
		return
	}
	info, err := a.cfg.Recordings.Start(si.ID, p)
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.recordingJSON(info))
}

func (a *API) stopRecording(w http.ResponseWriter, r *http.Request) {
	info, err := a.cfg.Recordings.Stop(r.PathValue("id"))
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.recordingJSON(info))
}

func (a *API) getRecording(w http.ResponseWriter, r *http.Request) {
	info, err := a.cfg.Recordings.Get(r.PathValue("id"))
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.recordingJSON(info))
}

func (a *API) listRecordings(w http.ResponseWriter, r *http.Request) {
	all := a.cfg.Recordings.List()
	items := make([]any, 0, len(all))
	for _, x := range all {
		items = append(items, a.recordingJSON(x))
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(items), "items": items})
}

func (a *API) deleteRecording(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Recordings.Delete(r.PathValue("id")); err != nil {
		a.failModel(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// RecordingFiles serves GET /openvidu/recordings/{id}/{file} (and the legacy /recordings/… path):
// behind the REST credentials unless OPENVIDU_RECORDING_PUBLIC_ACCESS.
func (a *API) RecordingFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			a.fail(w, r, http.StatusMethodNotAllowed, "recording files are read-only")
			return
		}
		if !a.cfg.RecordingPublicAccess && !a.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="OpenVidu"`)
			a.fail(w, r, http.StatusUnauthorized, "wrong or missing credentials")
			return
		}
		if a.cfg.Recordings == nil {
			a.recordingsDisabled(w, r)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/openvidu/recordings/")
		if !ok {
			rest, _ = strings.CutPrefix(r.URL.Path, "/recordings/")
		}
		id, file, ok := strings.Cut(rest, "/")
		if !ok || strings.Contains(file, "/") {
			a.fail(w, r, http.StatusNotFound, "no such recording file")
			return
		}
		path, err := a.cfg.Recordings.File(id, file)
		if err != nil {
			a.failModel(w, r, err)
			return
		}
		http.ServeFile(w, r, path)
	})
}
