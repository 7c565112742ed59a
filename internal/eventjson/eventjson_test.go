package eventjson

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/parley/parley/internal/session"
)

var (
	created = time.UnixMilli(1_700_000_000_000)
	at      = created.Add(7500 * time.Millisecond)
)

func base(k session.EventKind) session.Event {
	return session.Event{Kind: k, Session: "ses_A", SessionCreatedAt: created, Time: at}
}

// TestShapes pins each event's exact JSON against OpenVidu 2.32's field sets (protocol note §11.3,
// whose reference key counts, "event" excluded, the cases below also check).
func TestShapes(t *testing.T) {
	cam := &session.MediaOptions{HasAudio: true, HasVideo: true, TypeOfVideo: "CAMERA", FrameRate: 30, VideoDimensions: `{"width":640,"height":480}`}
	client := &session.ClientInfo{IP: "192.0.2.7", Platform: "Chrome 120 on Linux", ClientData: `{"clientData":"alice"}`, ServerData: "srv"}
	ended := func(e session.Event, reason string) session.Event {
		e.Started, e.Reason = created.Add(2*time.Second), reason
		return e
	}
	with := func(e session.Event, f func(*session.Event)) session.Event { f(&e); return e }
	cases := []struct {
		name string
		e    session.Event
		keys int
		want string
	}{
		{"sessionCreated", with(base(session.SessionCreated), func(e *session.Event) { e.Time = created }), 3,
			`{"event":"sessionCreated","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000000000}`},
		{"sessionDestroyed", ended(base(session.SessionDestroyed), "lastParticipantLeft"), 6,
			`{"event":"sessionDestroyed","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"startTime":1700000002000,"duration":5,"reason":"lastParticipantLeft"}`},
		{"participantJoined", with(base(session.ParticipantJoined), func(e *session.Event) { e.Connection, e.Client = "con_A", client }), 10,
			`{"event":"participantJoined","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"participantId":"con_A","connectionId":"con_A","location":"unknown","ip":"192.0.2.7","platform":"Chrome 120 on Linux","clientData":"{\"clientData\":\"alice\"}","serverData":"srv"}`},
		{"participantLeft", with(ended(base(session.ParticipantLeft), "disconnect"), func(e *session.Event) { e.Connection, e.Client = "con_A", client }), 13,
			`{"event":"participantLeft","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"startTime":1700000002000,"duration":5,"reason":"disconnect","participantId":"con_A","connectionId":"con_A","location":"unknown","ip":"192.0.2.7","platform":"Chrome 120 on Linux","clientData":"{\"clientData\":\"alice\"}","serverData":"srv"}`},
		{"webrtcConnectionCreated OUTBOUND", with(base(session.WebRTCConnectionCreated), func(e *session.Event) { e.Connection, e.Stream, e.Media = "con_A", "str_CAM_X_con_A", cam }), 12,
			`{"event":"webrtcConnectionCreated","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"streamId":"str_CAM_X_con_A","participantId":"con_A","connectionId":"con_A","connection":"OUTBOUND","videoSource":"CAMERA","videoFramerate":30,"videoDimensions":"{\"width\":640,\"height\":480}","audioEnabled":true,"videoEnabled":true}`},
		{"webrtcConnectionDestroyed INBOUND", with(ended(base(session.WebRTCConnectionDestroyed), "unsubscribe"), func(e *session.Event) {
			e.Connection, e.Subscriber, e.Stream, e.Media = "con_A", "con_B", "str_CAM_X_con_A", cam
		}), 16,
			`{"event":"webrtcConnectionDestroyed","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"startTime":1700000002000,"duration":5,"reason":"unsubscribe","streamId":"str_CAM_X_con_A","participantId":"con_B","connectionId":"con_B","connection":"INBOUND","receivingFrom":"con_A","videoSource":"CAMERA","videoFramerate":30,"videoDimensions":"{\"width\":640,\"height\":480}","audioEnabled":true,"videoEnabled":true}`},
		{"webrtcConnectionCreated audio only", with(base(session.WebRTCConnectionCreated), func(e *session.Event) {
			e.Connection, e.Stream, e.Media = "con_A", "str_MIC_X_con_A", &session.MediaOptions{HasAudio: true}
		}), 9,
			`{"event":"webrtcConnectionCreated","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"streamId":"str_MIC_X_con_A","participantId":"con_A","connectionId":"con_A","connection":"OUTBOUND","audioEnabled":true,"videoEnabled":false}`},
		{"signalSent over RPC", with(base(session.SignalSent), func(e *session.Event) {
			e.Signal = &session.Signal{Type: "signal:chat", Data: "hi", From: "con_A", To: []session.ConnectionID{"con_A", "con_B"}}
		}), 7,
			`{"event":"signalSent","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"from":"con_A","to":["con_A","con_B"],"type":"chat","data":"hi"}`},
		{"signalSent over REST", with(base(session.SignalSent), func(e *session.Event) {
			e.Signal = &session.Signal{Type: "MY_TYPE", Data: "", To: []session.ConnectionID{"con_B"}}
		}), 7,
			`{"event":"signalSent","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"from":null,"to":["con_B"],"type":"MY_TYPE","data":""}`},
		{"recordingStatusChanged started INDIVIDUAL", recordingEvent("started", "", "INDIVIDUAL"), 12,
			`{"event":"recordingStatusChanged","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"id":"ses_A","name":"rec","outputMode":"INDIVIDUAL","hasAudio":true,"hasVideo":true,"size":0,"duration":0,"status":"started","startTime":1700000001000}`},
		{"recordingStatusChanged stopped INDIVIDUAL", recordingEvent("stopped", "recordingStoppedByServer", "INDIVIDUAL"), 13,
			`{"event":"recordingStatusChanged","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"id":"ses_A","name":"rec","outputMode":"INDIVIDUAL","hasAudio":true,"hasVideo":true,"size":0,"duration":0,"status":"stopped","startTime":1700000001000,"reason":"recordingStoppedByServer"}`},
		{"recordingStatusChanged ready COMPOSED", with(recordingEvent("ready", "automaticStop", "COMPOSED"), func(e *session.Event) { e.Recording.Size, e.Recording.Duration = 1234, 6.5 }), 16,
			`{"event":"recordingStatusChanged","sessionId":"ses_A","uniqueSessionId":"ses_A_1700000000000","timestamp":1700000007500,"id":"ses_A","name":"rec","outputMode":"COMPOSED","resolution":"1280x720","frameRate":25,"recordingLayout":"BEST_FIT","hasAudio":true,"hasVideo":true,"size":1234,"duration":6.5,"status":"ready","startTime":1700000001000,"reason":"automaticStop"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, ok := Webhook(tc.e)
			if !ok || string(body) != tc.want {
				t.Fatalf("webhook body\n got %s\nwant %s", body, tc.want)
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil || len(m)-1 != tc.keys {
				t.Fatalf("%d keys besides event, want %d (%v)", len(m)-1, tc.keys, err)
			}
			// The CDR line holds the same fields under the event name, without "event".
			line, ok := CDRLine(tc.e)
			var outer map[string]map[string]any
			if !ok || json.Unmarshal(line, &outer) != nil || len(outer) != 1 {
				t.Fatalf("CDR line %s", line)
			}
			inner := outer[m["event"].(string)]
			delete(m, "event")
			if got, _ := json.Marshal(inner); string(got) != string(must(json.Marshal(m))) {
				t.Fatalf("CDR fields %s, want %s", got, must(json.Marshal(m)))
			}
		})
	}
}

func recordingEvent(status, reason, mode string) session.Event {
	e := base(session.RecordingStatusChanged)
	e.Recording = &session.RecordingInfo{ID: "ses_A", Name: "rec", Session: "ses_A", SessionCreatedAt: created, CreatedAt: created.Add(time.Second),
		Status: status, Reason: reason, Props: session.RecordingProperties{HasAudio: true, HasVideo: true, OutputMode: mode,
			RecordingLayout: "BEST_FIT", Resolution: "1280x720", FrameRate: 25}}
	return e
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestNotRecorded(t *testing.T) {
	for _, k := range []session.EventKind{session.StreamPublished, session.StreamUnpublished, session.StreamPropertyChanged, session.ParticipantEvicted} {
		if _, ok := Webhook(base(k)); ok {
			t.Errorf("%v must not be a webhook event", k)
		}
		if _, ok := CDRLine(base(k)); ok {
			t.Errorf("%v must not be a CDR event", k)
		}
	}
}
