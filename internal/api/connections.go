package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/session"
)

// Connections and tokens: /openvidu/api/sessions/{id}/connection and the deprecated /tokens.

func connectionOptions(b body) (session.ConnectionOptions, error) {
	o := session.ConnectionOptions{}
	var err error
	if o.Type, err = b.enum("type", "WEBRTC", "WEBRTC", "IPCAM"); err != nil {
		return o, err
	}
	if o.Type == "IPCAM" {
		if o.IPCam, err = ipcamOptions(b); err != nil {
			return o, err
		}
	}
	if o.Data, err = b.str("data", ""); err != nil {
		return o, err
	}
	if o.Record, err = b.boolean("record", true); err != nil {
		return o, err
	}
	role, err := b.enum("role", "PUBLISHER", "PUBLISHER", "SUBSCRIBER", "MODERATOR")
	if err != nil {
		return o, err
	}
	o.Role = session.Role(role)
	ko, err := b.object("kurentoOptions")
	if err != nil {
		return o, err
	}
	if ko != nil {
		k := &session.KurentoOptions{}
		for key, dst := range map[string]**int{
			"videoMaxRecvBandwidth": &k.VideoMaxRecvBandwidth, "videoMinRecvBandwidth": &k.VideoMinRecvBandwidth,
			"videoMaxSendBandwidth": &k.VideoMaxSendBandwidth, "videoMinSendBandwidth": &k.VideoMinSendBandwidth,
		} {
			if ko.present(key) {
				v, err := ko.integer(key, 0)
				if err != nil {
					return o, err
				}
				n := int(v)
				*dst = &n
			}
		}
		if k.AllowedFilters, _, err = ko.strings("allowedFilters"); err != nil {
			return o, err
		}
		o.KurentoOptions = k
	}
	if b.present("customIceServers") {
		var raw []body
		if err := json.Unmarshal(b["customIceServers"], &raw); err != nil {
			return o, errors.New(`"customIceServers" must be an array of objects`)
		}
		for _, s := range raw {
			is, err := iceServer(s)
			if err != nil {
				return o, err
			}
			o.CustomIceServers = append(o.CustomIceServers, is)
		}
	}
	return o, nil
}

// ipcamOptions reads an IPCAM connection's settings with OpenVidu's defaults. Only rtsp:// and
// rtsps:// sources are accepted: the server pulls what it is given, so a file:// or http:// URI
// would read its own disk or internal services.
func ipcamOptions(b body) (*session.IPCamOptions, error) {
	o := &session.IPCamOptions{}
	var err error
	if o.RTSPURI, err = b.str("rtspUri", ""); err != nil {
		return nil, err
	}
	u, perr := url.Parse(o.RTSPURI)
	if perr != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" || strings.ContainsAny(o.RTSPURI, " \t\r\n") {
		return nil, errors.New(`"rtspUri" must be an rtsp:// or rtsps:// URL with a host`)
	}
	if o.AdaptativeBitrate, err = b.boolean("adaptativeBitrate", true); err != nil {
		return nil, err
	}
	if o.OnlyPlayWithSubscribers, err = b.boolean("onlyPlayWithSubscribers", true); err != nil {
		return nil, err
	}
	n, err := b.integer("networkCache", 2000)
	if err != nil {
		return nil, err
	}
	if n < 0 || n > 60000 {
		return nil, errors.New(`"networkCache" must be between 0 and 60000 ms`)
	}
	o.NetworkCache = int(n)
	return o, nil
}

// iceServer checks one customIceServers entry with OpenVidu's rules (protocol note §8.2), the same
// ones that apply to OPENVIDU_WEBRTC_ICE_SERVERS.
func iceServer(b body) (session.IceServer, error) {
	var s session.IceServer
	var err error
	if s.URL, err = b.str("url", ""); err != nil {
		return s, err
	}
	if s.Username, err = b.str("username", ""); err != nil {
		return s, err
	}
	if s.Credential, err = b.str("credential", ""); err != nil {
		return s, err
	}
	if s.StaticAuthSecret, err = b.str("staticAuthSecret", ""); err != nil {
		return s, err
	}
	if err := (config.IceServer{URL: s.URL, Username: s.Username, Credential: s.Credential, StaticAuthSecret: s.StaticAuthSecret}).Validate(); err != nil {
		return s, err
	}
	return s, nil
}

func connectionJSON(c session.ConnectionInfo) map[string]any {
	var ko any
	if k := c.Options.KurentoOptions; k != nil {
		m := map[string]any{}
		for key, v := range map[string]*int{
			"videoMaxRecvBandwidth": k.VideoMaxRecvBandwidth, "videoMinRecvBandwidth": k.VideoMinRecvBandwidth,
			"videoMaxSendBandwidth": k.VideoMaxSendBandwidth, "videoMinSendBandwidth": k.VideoMinSendBandwidth,
		} {
			if v != nil {
				m[key] = *v
			}
		}
		if k.AllowedFilters != nil {
			m["allowedFilters"] = k.AllowedFilters
		}
		ko = m
	}
	ice := make([]any, 0, len(c.Options.CustomIceServers))
	for _, s := range c.Options.CustomIceServers {
		e := map[string]any{"url": s.URL}
		if s.Username != "" {
			e["username"], e["credential"] = s.Username, s.Credential
		}
		ice = append(ice, e)
	}
	v := map[string]any{
		"id": c.ID, "object": "connection", "type": c.Options.Type, "connectionId": c.ID, "sessionId": c.Session,
		"createdAt": c.CreatedAt.UnixMilli(), "token": c.Token, "serverData": c.Options.Data,
		"record": c.Options.Record, "role": c.Options.Role, "kurentoOptions": ko, "customIceServers": ice,
		"rtspUri": nil, "adaptativeBitrate": nil, "onlyPlayWithSubscribers": nil, "networkCache": nil,
		"status": "pending", "activeAt": nil, "location": nil, "ip": nil, "platform": nil, "clientData": nil,
		"publishers": nil, "subscribers": nil,
	}
	if c.Active {
		pubs := make([]any, 0, len(c.Publishers))
		for _, p := range c.Publishers {
			mo := map[string]any{"hasAudio": p.Media.HasAudio, "hasVideo": p.Media.HasVideo, "filter": map[string]any{}}
			if p.Media.HasAudio {
				mo["audioActive"] = p.Media.AudioActive
			}
			if p.Media.HasVideo {
				mo["videoActive"], mo["typeOfVideo"], mo["frameRate"], mo["videoDimensions"] = p.Media.VideoActive, p.Media.TypeOfVideo, p.Media.FrameRate, p.Media.VideoDimensions
			}
			pubs = append(pubs, map[string]any{"createdAt": p.CreatedAt.UnixMilli(), "streamId": p.ID, "mediaOptions": mo, "connectionPath": pathJSON(p.Path)})
		}
		subs := make([]any, 0, len(c.Subscribers))
		for _, s := range c.Subscribers {
			subs = append(subs, map[string]any{"createdAt": s.CreatedAt.UnixMilli(), "streamId": s.Stream, "connectionPath": pathJSON(s.Path)})
		}
		v["status"], v["activeAt"], v["location"], v["ip"], v["platform"], v["clientData"] = "active", c.ActiveAt.UnixMilli(), "unknown", c.IP, c.Platform, c.ClientData
		v["publishers"], v["subscribers"] = pubs, subs
	}
	if cam := c.Options.IPCam; cam != nil {
		// OpenVidu's IPCAM connection: no token, role or client data; the camera's settings.
		v["token"], v["role"], v["clientData"] = nil, nil, nil
		v["rtspUri"], v["adaptativeBitrate"], v["onlyPlayWithSubscribers"], v["networkCache"] = cam.RTSPURI, cam.AdaptativeBitrate, cam.OnlyPlayWithSubscribers, cam.NetworkCache
	}
	return v
}

// pathJSON is Parley's extra field on publishers and subscribers (stock clients ignore unknown
// keys): the ICE candidate pair that carries the media, or null before it connects.
func pathJSON(p session.MediaPath) any {
	if p.Protocol == "" {
		return nil
	}
	return map[string]any{"protocol": p.Protocol, "localType": p.LocalType, "remoteType": p.RemoteType, "local": p.Local, "remote": p.Remote, "viaTurn": p.ViaTURN}
}

func (a *API) createConnection(w http.ResponseWriter, r *http.Request) {
	id := session.SessionID(r.PathValue("id"))
	if _, err := a.m.Room(id).Info(false); err != nil {
		a.failModel(w, r, err)
		return
	}
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	o, err := connectionOptions(b)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ci, err := a.m.Room(id).CreateConnection(o)
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, connectionJSON(ci))
}

func (a *API) listConnections(w http.ResponseWriter, r *http.Request) {
	si, err := a.m.Room(session.SessionID(r.PathValue("id"))).Info(queryBool(r, "pendingConnections", true))
	cs := si.Connections
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	content := make([]any, 0, len(cs))
	for _, c := range cs {
		content = append(content, connectionJSON(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"numberOfElements": len(content), "content": content})
}

// sessionOr400 checks the session of a /connection/{cid} or /stream/{sid} path: the reference
// answers 400 for an unknown session there, keeping 404 for the unknown connection or stream.
func (a *API) sessionOr400(w http.ResponseWriter, r *http.Request) (session.SessionID, bool) {
	id := session.SessionID(r.PathValue("id"))
	if _, err := a.m.Room(id).Info(false); err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return id, false
	}
	return id, true
}

func (a *API) getConnection(w http.ResponseWriter, r *http.Request) {
	id, ok := a.sessionOr400(w, r)
	if !ok {
		return
	}
	ci, err := a.m.Room(id).Connection(session.ConnectionID(r.PathValue("cid")))
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, connectionJSON(ci))
}

func (a *API) patchConnection(w http.ResponseWriter, r *http.Request) {
	id, ok := a.sessionOr400(w, r)
	if !ok {
		return
	}
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	var role *session.Role
	var record *bool
	if b.present("role") {
		s, err := b.enum("role", "", "PUBLISHER", "SUBSCRIBER", "MODERATOR")
		if err != nil {
			a.fail(w, r, http.StatusBadRequest, err.Error())
			return
		}
		rl := session.Role(s)
		role = &rl
	}
	if b.present("record") {
		v, err := b.boolean("record", true)
		if err != nil {
			a.fail(w, r, http.StatusBadRequest, err.Error())
			return
		}
		record = &v
	}
	ci, err := a.m.Room(id).UpdateConnection(session.ConnectionID(r.PathValue("cid")), role, record)
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, connectionJSON(ci))
}

func (a *API) deleteConnection(w http.ResponseWriter, r *http.Request) {
	id, ok := a.sessionOr400(w, r)
	if !ok {
		return
	}
	if err := a.m.Room(id).DeleteConnection(session.ConnectionID(r.PathValue("cid"))); err != nil {
		a.failModel(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// createToken is the deprecated POST /tokens: a connection, answered in the old token shape.
func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	sid, err := b.required("session")
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	delete(b, "record") // ignored by the reference on this endpoint
	o, err := connectionOptions(b)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ci, err := a.m.Room(session.SessionID(sid)).CreateConnection(o)
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	v := map[string]any{"id": ci.Token, "token": ci.Token, "createdAt": ci.CreatedAt.UnixMilli(), "connectionId": ci.ID,
		"session": ci.Session, "data": o.Data, "role": o.Role}
	if c := connectionJSON(ci); c["kurentoOptions"] != nil {
		v["kurentoOptions"] = c["kurentoOptions"]
	}
	writeJSON(w, http.StatusOK, v)
}
