package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/parley/parley/internal/session"
)

// Sessions: /openvidu/api/sessions, their streams and signals (protocol note §10).

var customIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func (a *API) createSession(w http.ResponseWriter, r *http.Request) {
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	p, err := sessionProperties(b, a.defCodec, a.defTranscoding)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	si, err := a.m.CreateSession(p)
	if err != nil {
		var se *session.Error
		if errors.As(err, &se) && se.Kind == session.KindConflict {
			// node-client reads 409 as "exists, fetch it"; the reference sends no body.
			w.WriteHeader(http.StatusConflict)
			return
		}
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionJSON(si))
}

// sessionProperties reads a POST /sessions body (the reference's SessionProperties.fromJson);
// codec and transcoding are the configured defaults.
func sessionProperties(b body, codec string, transcoding bool) (session.Properties, error) {
	var p session.Properties
	var err error
	if p.MediaMode, err = b.enum("mediaMode", "ROUTED", "ROUTED", "RELAYED"); err != nil {
		return p, err
	}
	if p.RecordingMode, err = b.enum("recordingMode", "MANUAL", "MANUAL", "ALWAYS"); err != nil {
		return p, err
	}
	if p.CustomSessionID, err = b.str("customSessionId", ""); err != nil {
		return p, err
	}
	if p.CustomSessionID != "" && (!customIDRE.MatchString(p.CustomSessionID) || len(p.CustomSessionID) > 128) {
		return p, errors.New(`"customSessionId" may contain only letters, digits, '_' and '-' (at most 128)`)
	}
	if p.ForcedVideoCodec, err = b.enum("forcedVideoCodec", codec, videoCodecs...); err != nil {
		return p, err
	}
	if p.AllowTranscoding, err = b.boolean("allowTranscoding", transcoding); err != nil {
		return p, err
	}
	rec, err := b.object("defaultRecordingProperties")
	if err != nil {
		return p, err
	}
	if p.DefaultRecording, err = recordingProperties(rec); err != nil {
		return p, fmt.Errorf(`"defaultRecordingProperties" is not valid: %w`, err)
	}
	return p, nil
}

var (
	recordingNameRE = regexp.MustCompile(`^[a-zA-Z0-9_\-~]+$`)
	resolutionRE    = regexp.MustCompile(`^([1-9][0-9]{2,3})x([1-9][0-9]{2,3})$`)
)

// validResolution is the reference's Utils.isAcceptableRecordingResolution: WxH, each 100..1999.
func validResolution(s string) bool {
	m := resolutionRE.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	for _, d := range m[1:] {
		if len(d) == 4 && d[0] != '1' {
			return false
		}
	}
	return true
}

// recordingProperties reads defaultRecordingProperties with the reference's checks
// (RecordingProperties.fromJson, protocol note §10.2): every field's type always; the layout,
// resolution, frame rate and shared memory only for composed output, where they are used.
func recordingProperties(b body) (session.RecordingProperties, error) {
	rp := session.RecordingProperties{}
	var err error
	if b == nil {
		b = body{}
	}
	if rp.Name, err = b.str("name", ""); err != nil {
		return rp, err
	}
	if rp.Name != "" && !recordingNameRE.MatchString(rp.Name) {
		return rp, errors.New(`"name" may contain only letters, digits, '_', '-' and '~'`)
	}
	if rp.HasAudio, err = b.boolean("hasAudio", true); err != nil {
		return rp, err
	}
	if rp.HasVideo, err = b.boolean("hasVideo", true); err != nil {
		return rp, err
	}
	if !rp.HasAudio && !rp.HasVideo {
		return rp, errors.New(`"hasAudio" and "hasVideo" cannot both be false`)
	}
	if rp.OutputMode, err = b.enum("outputMode", "COMPOSED", "COMPOSED", "COMPOSED_QUICK_START", "INDIVIDUAL"); err != nil {
		return rp, err
	}
	layout, err := b.str("recordingLayout", "BEST_FIT")
	if err != nil {
		return rp, err
	}
	if rp.CustomLayout, err = b.str("customLayout", ""); err != nil {
		return rp, err
	}
	if rp.Resolution, err = b.str("resolution", "1280x720"); err != nil {
		return rp, err
	}
	fr, err := b.integer("frameRate", 25)
	if err != nil {
		return rp, err
	}
	rp.FrameRate = int(fr)
	if rp.ShmSize, err = b.integer("shmSize", 536870912); err != nil {
		return rp, err
	}
	if rp.IgnoreFailedStreams, err = b.boolean("ignoreFailedStreams", false); err != nil {
		return rp, err
	}
	rp.RecordingLayout = "BEST_FIT"
	if rp.OutputMode == "INDIVIDUAL" {
		return rp, nil
	}
	if rp.RecordingLayout, err = b.enum("recordingLayout", layout, "BEST_FIT", "CUSTOM", "PICTURE_IN_PICTURE", "VERTICAL_PRESENTATION", "HORIZONTAL_PRESENTATION"); err != nil {
		return rp, err
	}
	switch {
	case !validResolution(rp.Resolution):
		return rp, errors.New(`"resolution" must be WIDTHxHEIGHT, each from 100 to 1999`)
	case fr < 1 || fr > 120:
		return rp, errors.New(`"frameRate" must be from 1 to 120`)
	case rp.ShmSize < 134217728:
		return rp, errors.New(`"shmSize" must be at least 134217728 (128 MB)`)
	}
	return rp, nil
}

func recordingPropertiesJSON(rp session.RecordingProperties) map[string]any {
	v := map[string]any{"name": rp.Name, "hasAudio": rp.HasAudio, "hasVideo": rp.HasVideo, "outputMode": rp.OutputMode}
	if rp.OutputMode != "INDIVIDUAL" && rp.HasVideo {
		v["recordingLayout"], v["resolution"], v["frameRate"], v["shmSize"] = rp.RecordingLayout, rp.Resolution, rp.FrameRate, rp.ShmSize
		if rp.RecordingLayout == "CUSTOM" {
			v["customLayout"] = rp.CustomLayout
		}
	}
	if rp.OutputMode == "INDIVIDUAL" {
		v["ignoreFailedStreams"] = rp.IgnoreFailedStreams
	}
	return v
}

func sessionJSON(si session.SessionInfo) map[string]any {
	content := make([]any, 0, len(si.Connections))
	for _, c := range si.Connections {
		content = append(content, connectionJSON(c))
	}
	return map[string]any{
		"id": si.ID, "object": "session", "sessionId": si.ID, "createdAt": si.CreatedAt.UnixMilli(),
		"recording": si.Recording, "broadcasting": false,
		"mediaMode": si.Props.MediaMode, "recordingMode": si.Props.RecordingMode,
		"defaultRecordingProperties": recordingPropertiesJSON(si.Props.DefaultRecording),
		"customSessionId":            si.Props.CustomSessionID,
		"forcedVideoCodec":           si.Props.ForcedVideoCodec,
		"allowTranscoding":           si.Props.AllowTranscoding,
		"connections":                map[string]any{"numberOfElements": len(content), "content": content},
	}
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	all := a.m.Sessions(queryBool(r, "pendingConnections", false))
	content := make([]any, 0, len(all))
	for _, s := range all {
		content = append(content, sessionJSON(s))
	}
	writeJSON(w, http.StatusOK, map[string]any{"numberOfElements": len(content), "content": content})
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request) {
	si, err := a.m.Room(session.SessionID(r.PathValue("id"))).Info(queryBool(r, "pendingConnections", false))
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionJSON(si))
}

func (a *API) deleteSession(w http.ResponseWriter, r *http.Request) {
	if err := a.m.Room(session.SessionID(r.PathValue("id"))).Close(); err != nil {
		a.failModel(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) deleteStream(w http.ResponseWriter, r *http.Request) {
	id, ok := a.sessionOr400(w, r)
	if !ok {
		return
	}
	if err := a.m.Room(id).ForceUnpublish(session.StreamID(r.PathValue("sid"))); err != nil {
		a.failModel(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) signal(w http.ResponseWriter, r *http.Request) {
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	sid, err := b.required("session")
	var typ, data string
	var to []string
	if err == nil {
		typ, err = b.str("type", "")
	}
	if err == nil {
		data, err = b.str("data", "")
	}
	if err == nil {
		to, _, err = b.strings("to")
	}
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ids := make([]session.ConnectionID, len(to))
	for i, t := range to {
		ids[i] = session.ConnectionID(t)
	}
	if err := a.m.Room(session.SessionID(sid)).Signal(ids, typ, data); err != nil {
		a.failModel(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
