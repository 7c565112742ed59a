package signaling

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parley/parley/internal/session"
)

// TestMethods sends every JSON-RPC method the stock openvidu-browser 2.32.2 sends, with good and bad
// params, and checks the answer and what reached the model.
func TestMethods(t *testing.T) {
	t.Parallel()
	const self = "con_Fake000001" // the fake's first participant
	modelErr := func(code int) error {
		return &session.Error{Kind: session.KindNotAcceptable, Code: code, Msg: "model says no"}
	}
	cases := []struct {
		name   string
		joined bool
		fail   map[string]error // model method → error
		method string
		params string // JSON; empty: no params member
		result string // JSON of the expected result without sessionId; empty when an error is expected
		code   int
		calls  []string
	}{
		// Before joinRoom.
		{name: "ping", method: "ping", params: `{"interval":5000}`, result: `{"value":"pong"}`},
		{name: "echo", method: "echo", result: `{}`},
		{name: "connect without session id", method: "connect", result: `{"value":"OK"}`},
		{name: "connect to an unknown session", method: "connect", params: `{"sessionId":"nosuch"}`, code: 40007},
		{name: "connect with malformed params", method: "connect", params: `{"sessionId":7}`, code: -32602},
		{name: "publishVideo before joinRoom", method: "publishVideo", params: `{"sdpOffer":"o"}`, code: 803},
		{name: "leaveRoom before joinRoom", method: "leaveRoom", code: 803},
		{name: "unknown method before joinRoom", method: "nosuch", code: -32601},

		// joinRoom.
		{name: "joinRoom", method: "joinRoom", params: `{"token":"tok","session":"ses_A","platform":"Chrome 120","metadata":"{\"clientData\":\"alice\"}","sdkVersion":"2.32.2","recorder":false}`,
			calls: []string{`Join ses_A tok metadata="{\"clientData\":\"alice\"}" platform="Chrome 120"`}},
		{name: "joinRoom takes the session from the token", method: "joinRoom", params: `{"token":"ws://h/openvidu?sessionId=ses_T&token=tok_X"}`,
			calls: []string{`Join ses_T ws://h/openvidu?sessionId=ses_T&token=tok_X metadata="" platform=""`}},
		{name: "joinRoom without token", method: "joinRoom", params: `{"session":"ses_A"}`, code: -32602},
		{name: "joinRoom with malformed params", method: "joinRoom", params: `[1]`, code: -32602},
		{name: "joinRoom with the secret joins with the token", method: "joinRoom", params: `{"token":"tok","session":"ses_A","secret":"MY_SECRET","recorder":"false"}`,
			calls: []string{`Join ses_A tok metadata="" platform=""`}},
		{name: "joinRoom with the secret alone", method: "joinRoom", params: `{"session":"ses_A","secret":"MY_SECRET","recorder":true}`, code: -32602},
		{name: "joinRoom with a malformed recorder", method: "joinRoom", params: `{"token":"tok","session":"ses_A","recorder":"no"}`, code: -32602},
		{name: "joinRoom refused by the model", method: "joinRoom", params: `{"token":"tok","session":"ses_A"}`, fail: map[string]error{"Join": modelErr(202)}, code: 202,
			calls: []string{`Join ses_A tok metadata="" platform=""`}},
		{name: "joinRoom twice", joined: true, method: "joinRoom", params: `{"token":"tok2","session":"ses_A"}`, code: 104},

		// Publishing.
		{name: "publishVideo", joined: true, method: "publishVideo",
			params: `{"sdpOffer":"v=0 offer","doLoopback":false,"hasAudio":true,"hasVideo":true,"audioActive":true,"videoActive":false,"typeOfVideo":"SCREEN","frameRate":30,"videoDimensions":"{\"width\":640,\"height\":480}"}`,
			result: `{"sdpAnswer":"answer to v=0 offer","id":"str_CAM_Fake_` + self + `","createdAt":1700000000000}`,
			calls:  []string{`Publish offer="v=0 offer" media={HasAudio:true HasVideo:true AudioActive:true VideoActive:false TypeOfVideo:SCREEN FrameRate:30 VideoDimensions:{"width":640,"height":480}}`}},
		{name: "publishVideo defaults", joined: true, method: "publishVideo", params: `{"sdpOffer":"o","hasVideo":true,"filter":{}}`,
			result: `{"sdpAnswer":"answer to o","id":"str_CAM_Fake_` + self + `","createdAt":1700000000000}`,
			calls:  []string{`Publish offer="o" media={HasAudio:false HasVideo:true AudioActive:false VideoActive:true TypeOfVideo:CAMERA FrameRate:-1 VideoDimensions:}`}},
		{name: "publishVideo with strings for booleans and numbers", joined: true, method: "publishVideo",
			params: `{"audioActive":"true","videoActive":"false","doLoopback":"false","frameRate":"29.97","hasAudio":"TRUE","hasVideo":"true","typeOfVideo":"CAMERA","videoDimensions":"{\"width\":320, \"height\":240}","sdpOffer":"o"}`,
			result: `{"sdpAnswer":"answer to o","id":"str_CAM_Fake_` + self + `","createdAt":1700000000000}`,
			calls:  []string{`Publish offer="o" media={HasAudio:true HasVideo:true AudioActive:true VideoActive:false TypeOfVideo:CAMERA FrameRate:29.97 VideoDimensions:{"width":320, "height":240}}`}},
		{name: "publishVideo with a word for a boolean", joined: true, method: "publishVideo", params: `{"sdpOffer":"o","hasVideo":"yes"}`, code: -32602},
		{name: "publishVideo with a number for a boolean", joined: true, method: "publishVideo", params: `{"sdpOffer":"o","audioActive":1}`, code: -32602},
		{name: "publishVideo with a word for the frame rate", joined: true, method: "publishVideo", params: `{"sdpOffer":"o","frameRate":"fast"}`, code: -32602},
		{name: "publishVideo with an object for the frame rate", joined: true, method: "publishVideo", params: `{"sdpOffer":"o","frameRate":{}}`, code: -32602},
		{name: "publishVideo with an infinite frame rate", joined: true, method: "publishVideo", params: `{"sdpOffer":"o","frameRate":"Inf"}`, code: -32602},
		{name: "publishVideo without offer", joined: true, method: "publishVideo", params: `{"hasAudio":true}`, code: -32602},
		{name: "publishVideo with loopback", joined: true, method: "publishVideo", params: `{"sdpOffer":"o","doLoopback":true,"hasVideo":true}`,
			result: `{"sdpAnswer":"answer to o","id":"str_CAM_Fake_` + self + `","createdAt":1700000000000}`,
			calls:  []string{`Publish offer="o" media={HasAudio:false HasVideo:true AudioActive:false VideoActive:true TypeOfVideo:CAMERA FrameRate:-1 VideoDimensions:} loopback`}},
		{name: "publishVideo with loopback as a string", joined: true, method: "publishVideo", params: `{"sdpOffer":"o","doLoopback":"true"}`,
			result: `{"sdpAnswer":"answer to o","id":"str_CAM_Fake_` + self + `","createdAt":1700000000000}`,
			calls:  []string{`Publish offer="o" media={HasAudio:false HasVideo:false AudioActive:false VideoActive:false TypeOfVideo: FrameRate:-1 VideoDimensions:} loopback`}},
		{name: "publishVideo with a filter", joined: true, method: "publishVideo", params: `{"sdpOffer":"o","filter":{"type":"GStreamerFilter"}}`, code: 406},
		{name: "publishVideo with malformed params", joined: true, method: "publishVideo", params: `{"sdpOffer":1}`, code: -32602},
		{name: "publishVideo refused by the model", joined: true, method: "publishVideo", params: `{"sdpOffer":"o"}`, fail: map[string]error{"Publish": modelErr(106)}, code: 106,
			calls: []string{`Publish offer="o" media={HasAudio:false HasVideo:false AudioActive:false VideoActive:false TypeOfVideo: FrameRate:-1 VideoDimensions:}`}},
		{name: "unpublishVideo", joined: true, method: "unpublishVideo", result: `{}`, calls: []string{"Unpublish"}},
		{name: "unpublishVideo when not publishing", joined: true, method: "unpublishVideo", fail: map[string]error{"Unpublish": modelErr(105)}, code: 105, calls: []string{"Unpublish"}},
		{name: "streamPropertyChanged", joined: true, method: "streamPropertyChanged", params: `{"streamId":"str_X","property":"videoActive","newValue":false,"reason":"publishVideo"}`,
			result: `{}`, calls: []string{`ChangeStreamProperty videoActive false reason="publishVideo"`}},
		{name: "streamPropertyChanged keeps the value's JSON text", joined: true, method: "streamPropertyChanged", params: `{"property":"videoDimensions","newValue":"{\"width\":1,\"height\":2}","reason":"screenResized"}`,
			result: `{}`, calls: []string{`ChangeStreamProperty videoDimensions "{\"width\":1,\"height\":2}" reason="screenResized"`}},
		{name: "streamPropertyChanged with a string for a boolean", joined: true, method: "streamPropertyChanged", params: `{"streamId":"str_X","property":"audioActive","newValue":"False","reason":"publishAudio"}`,
			result: `{}`, calls: []string{`ChangeStreamProperty audioActive false reason="publishAudio"`}},
		{name: "streamPropertyChanged with a word for a boolean", joined: true, method: "streamPropertyChanged", params: `{"property":"videoActive","newValue":"off"}`, code: -32602},
		{name: "streamPropertyChanged without property", joined: true, method: "streamPropertyChanged", params: `{"newValue":true}`, code: -32602},
		{name: "reconnectStream of the own stream", joined: true, method: "reconnectStream", params: `{"stream":"str_CAM_Abcd_` + self + `","sdpString":"new offer","sdpOffer":"old"}`,
			result: `{"sdpAnswer":"answer to new offer","id":"str_CAM_Fake_` + self + `","createdAt":1700000000000}`, calls: []string{`ReconnectPublisher offer="new offer"`}},
		{name: "reconnectStream of a subscription", joined: true, method: "reconnectStream", params: `{"stream":"str_CAM_Abcd_con_Other","sdpOffer":"o"}`,
			result: `{"sdpAnswer":"answer to o"}`, calls: []string{`Subscribe str_CAM_Abcd_con_Other offer="o"`}},
		{name: "reconnectStream of a subscription with the answer to our offer", joined: true, method: "reconnectStream",
			params: `{"stream":"str_CAM_Abcd_con_Other","sdpString":"a","forciblyReconnect":false}`, result: `{}`, calls: []string{`AnswerSubscribe str_CAM_Abcd_con_Other answer="a"`}},
		{name: "reconnectStream without stream", joined: true, method: "reconnectStream", params: `{"sdpOffer":"o"}`, code: -32602},
		{name: "reconnectStream of a subscription without offer", joined: true, method: "reconnectStream", params: `{"stream":"str_CAM_Abcd_con_Other"}`, code: -32602},

		// Subscribing.
		{name: "receiveVideoFrom", joined: true, method: "receiveVideoFrom", params: `{"sender":"str_CAM_Abcd_con_Other","sdpOffer":"o"}`,
			result: `{"sdpAnswer":"answer to o"}`, calls: []string{`Subscribe str_CAM_Abcd_con_Other offer="o"`}},
		{name: "receiveVideoFrom without sender", joined: true, method: "receiveVideoFrom", params: `{"sdpOffer":"o"}`, code: -32602},
		{name: "receiveVideoFrom without offer", joined: true, method: "receiveVideoFrom", params: `{"sender":"str_X_con_Y"}`, code: -32602},
		{name: "receiveVideoFrom with the answer to our offer", joined: true, method: "receiveVideoFrom", params: `{"sender":"str_X_con_Y","sdpAnswer":"a"}`,
			result: `{}`, calls: []string{`AnswerSubscribe str_X_con_Y answer="a"`}},
		{name: "receiveVideoFrom with an answer nobody asked for", joined: true, method: "receiveVideoFrom", params: `{"sender":"str_X_con_Y","sdpAnswer":"a"}`,
			fail: map[string]error{"AnswerSubscribe": modelErr(102)}, code: 102, calls: []string{`AnswerSubscribe str_X_con_Y answer="a"`}},
		{name: "receiveVideoFrom of a stream gone", joined: true, method: "receiveVideoFrom", params: `{"sender":"str_X_con_Y","sdpOffer":"o"}`, fail: map[string]error{"Subscribe": modelErr(102)}, code: 102,
			calls: []string{`Subscribe str_X_con_Y offer="o"`}},
		{name: "prepareReceiveVideoFrom", joined: true, method: "prepareReceiveVideoFrom", params: `{"sender":"str_X_con_Y","reconnect":false}`,
			result: `{"sdpOffer":"offer for str_X_con_Y"}`, calls: []string{`PrepareSubscribe str_X_con_Y`}},
		{name: "prepareReceiveVideoFrom with a string for reconnect", joined: true, method: "prepareReceiveVideoFrom", params: `{"sender":"str_X_con_Y","reconnect":"false"}`,
			result: `{"sdpOffer":"offer for str_X_con_Y"}`, calls: []string{`PrepareSubscribe str_X_con_Y`}},
		{name: "prepareReceiveVideoFrom with a malformed reconnect", joined: true, method: "prepareReceiveVideoFrom", params: `{"sender":"str_X_con_Y","reconnect":[]}`, code: -32602},
		{name: "prepareReceiveVideoFrom without sender", joined: true, method: "prepareReceiveVideoFrom", params: `{"reconnect":true}`, code: -32602},
		{name: "unsubscribeFromVideo by connection id", joined: true, method: "unsubscribeFromVideo", params: `{"sender":"con_Other"}`, result: `{}`, calls: []string{"Unsubscribe con_Other"}},
		{name: "unsubscribeFromVideo by stream id", joined: true, method: "unsubscribeFromVideo", params: `{"sender":"str_CAM_Abcd_con_Other"}`, result: `{}`, calls: []string{"Unsubscribe con_Other"}},
		{name: "unsubscribeFromVideo without sender", joined: true, method: "unsubscribeFromVideo", code: -32602},
		{name: "unsubscribeFromVideo of nothing", joined: true, method: "unsubscribeFromVideo", params: `{"sender":"con_Other"}`, fail: map[string]error{"Unsubscribe": modelErr(102)}, code: 102,
			calls: []string{"Unsubscribe con_Other"}},
		{name: "onIceCandidate", joined: true, method: "onIceCandidate", params: `{"endpointName":"con_Other","candidate":"candidate:1 1 udp 1 192.0.2.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}`,
			result: `{}`, calls: []string{`AddCandidate con_Other "candidate:1 1 udp 1 192.0.2.1 5000 typ host" mid=0 index=0`}},
		{name: "onIceCandidate end of candidates", joined: true, method: "onIceCandidate", params: `{"endpointName":"` + self + `","candidate":""}`,
			result: `{}`, calls: []string{`AddCandidate ` + self + ` "" mid=<nil> index=<nil>`}},
		{name: "onIceCandidate the model cannot use is no error", joined: true, method: "onIceCandidate", params: `{"endpointName":"x","candidate":"junk"}`,
			fail: map[string]error{"AddCandidate": errors.New("bad candidate")}, result: `{}`, calls: []string{`AddCandidate x "junk" mid=<nil> index=<nil>`}},
		{name: "onIceCandidate with a string index", joined: true, method: "onIceCandidate", params: `{"endpointName":"con_Other","candidate":"candidate:1 1 udp 1 192.0.2.1 5000 typ host","sdpMid":"1","sdpMLineIndex":"1"}`,
			result: `{}`, calls: []string{`AddCandidate con_Other "candidate:1 1 udp 1 192.0.2.1 5000 typ host" mid=1 index=1`}},
		{name: "onIceCandidate with malformed params", joined: true, method: "onIceCandidate", params: `{"sdpMLineIndex":-1}`, code: -32602},
		{name: "onIceCandidate with a negative string index", joined: true, method: "onIceCandidate", params: `{"candidate":"c","sdpMLineIndex":"-1"}`, code: -32602},
		{name: "onIceCandidate with a fractional index", joined: true, method: "onIceCandidate", params: `{"candidate":"c","sdpMLineIndex":"0.5"}`, code: -32602},
		{name: "onIceCandidate with a number for the mid", joined: true, method: "onIceCandidate", params: `{"candidate":"c","sdpMid":0}`, code: -32602},
		{name: "onIceCandidate of the longest size accepted", joined: true, method: "onIceCandidate", params: `{"endpointName":"con_Other","candidate":"` + strings.Repeat("c", maxCandidate) + `"}`,
			result: `{}`, calls: []string{`AddCandidate con_Other "` + strings.Repeat("c", maxCandidate) + `" mid=<nil> index=<nil>`}},
		{name: "onIceCandidate longer than any browser's", joined: true, method: "onIceCandidate", params: `{"endpointName":"con_Other","candidate":"` + strings.Repeat("c", maxCandidate+1) + `"}`, code: -32602},
		{name: "onIceCandidate with a long endpoint name", joined: true, method: "onIceCandidate", params: `{"endpointName":"` + strings.Repeat("e", maxCandidateName+1) + `","candidate":"c"}`, code: -32602},
		{name: "onIceCandidate with a long mid", joined: true, method: "onIceCandidate", params: `{"endpointName":"con_Other","candidate":"c","sdpMid":"` + strings.Repeat("m", maxCandidateName+1) + `"}`, code: -32602},

		// Messages and moderation.
		{name: "sendMessage", joined: true, method: "sendMessage", params: `{"message":"{\"to\":[\"con_B\"],\"data\":\"hi\",\"type\":\"signal:chat\"}"}`,
			result: `{}`, calls: []string{`Signal to=[con_B] type="signal:chat" data="hi"`}},
		{name: "sendMessage to everyone", joined: true, method: "sendMessage", params: `{"message":"{\"to\":[],\"data\":\"hi\",\"type\":\"signal\"}"}`,
			result: `{}`, calls: []string{`Signal to=[] type="signal" data="hi"`}},
		{name: "sendMessage not JSON", joined: true, method: "sendMessage", params: `{"message":"hi"}`, code: 600},
		{name: "sendMessage to null", joined: true, method: "sendMessage", params: `{"message":"{\"to\":[null],\"data\":\"hi\"}"}`, code: 601},
		{name: "sendMessage to a stranger", joined: true, method: "sendMessage", params: `{"message":"{\"to\":[\"con_Z\"]}"}`, fail: map[string]error{"Signal": modelErr(601)}, code: 601,
			calls: []string{`Signal to=[con_Z] type="" data=""`}},
		{name: "forceDisconnect", joined: true, method: "forceDisconnect", params: `{"connectionId":"con_B"}`, result: `{}`, calls: []string{"ForceDisconnect con_B"}},
		{name: "forceDisconnect by a publisher", joined: true, method: "forceDisconnect", params: `{"connectionId":"con_B"}`, fail: map[string]error{"ForceDisconnect": modelErr(401)}, code: 401,
			calls: []string{"ForceDisconnect con_B"}},
		{name: "forceUnpublish", joined: true, method: "forceUnpublish", params: `{"streamId":"str_CAM_X_con_B"}`, result: `{}`, calls: []string{"ForceUnpublish str_CAM_X_con_B"}},
		{name: "a model error without a code", joined: true, method: "forceUnpublish", params: `{"streamId":"s"}`, fail: map[string]error{"ForceUnpublish": errors.New("boom")}, code: 999,
			calls: []string{"ForceUnpublish s"}},
		{name: "videoData", joined: true, method: "videoData", params: `{"height":480,"width":640,"videoActive":true,"audioActive":true}`, result: `{}`},
		{name: "leaveRoom", joined: true, method: "leaveRoom", result: `{}`, calls: []string{"Leave"}},
		{name: "unknown method", joined: true, method: "nosuch", code: -32601},

		// Not supported: no media pipeline, no speech to text.
		{name: "applyFilter", joined: true, method: "applyFilter", params: `{"streamId":"s","type":"GStreamerFilter","options":"{}"}`, code: 406},
		{name: "removeFilter", joined: true, method: "removeFilter", params: `{"streamId":"s"}`, code: 406},
		{name: "execFilterMethod", joined: true, method: "execFilterMethod", params: `{"streamId":"s","method":"setElementProperty","params":"{}"}`, code: 406},
		{name: "addFilterEventListener", joined: true, method: "addFilterEventListener", params: `{"streamId":"s","eventType":"CodeFound"}`, code: 406},
		{name: "removeFilterEventListener", joined: true, method: "removeFilterEventListener", params: `{"streamId":"s","eventType":"CodeFound"}`, code: 406},
		{name: "subscribeToSpeechToText", joined: true, method: "subscribeToSpeechToText", params: `{"connectionId":"con_B","lang":"en-US"}`, code: 996},
		{name: "unsubscribeFromSpeechToText", joined: true, method: "unsubscribeFromSpeechToText", params: `{"connectionId":"con_B"}`, code: 996},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, Config{})
			var c *testClient
			rpcID := ""
			if tc.joined {
				var res map[string]any
				c, res = s.joined(t)
				rpcID, _ = res["sessionId"].(string)
			} else {
				c = dialTest(t, s.url)
			}
			for name, err := range tc.fail {
				s.m.fail(name, err)
			}
			var params any
			if tc.params != "" {
				params = json.RawMessage(tc.params)
			}
			resp := c.call(tc.method, params)
			checkResponse(t, resp, tc.result, tc.code, rpcID, tc.method)
			if got := s.m.takeCalls(); !slices.Equal(got, tc.calls) {
				t.Errorf("model calls:\n got %q\nwant %q", got, tc.calls)
			}
		})
	}
}

// checkResponse checks a response frame: with code 0, a result equal to want plus the JSON-RPC
// session id (rpcID when known) that Kurento adds to every result but ping's.
func checkResponse(t *testing.T, resp map[string]any, want string, code int, rpcID, method string) {
	t.Helper()
	if resp["jsonrpc"] != "2.0" {
		t.Errorf("jsonrpc %v, want 2.0", resp["jsonrpc"])
	}
	if code != 0 {
		e, _ := resp["error"].(map[string]any)
		if got, _ := e["code"].(float64); int(got) != code {
			t.Fatalf("want error %d, got %v", code, resp)
		}
		if msg, _ := e["message"].(string); msg == "" {
			t.Errorf("error %d without message", code)
		}
		if _, ok := resp["result"]; ok {
			t.Errorf("error response with a result: %v", resp)
		}
		return
	}
	res, ok := resp["result"].(map[string]any)
	if !ok {
		t.Fatalf("want result %s, got %v", want, resp)
	}
	if method != "ping" && method != "joinRoom" {
		sid, _ := res["sessionId"].(string)
		if sid == "" || (rpcID != "" && sid != rpcID) {
			t.Errorf("result sessionId %q, want the JSON-RPC session's %q", sid, rpcID)
		}
	}
	delete(res, "sessionId")
	if method == "joinRoom" {
		return // TestJoinRoomGolden pins it
	}
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, w) {
		got, _ := json.Marshal(res)
		t.Errorf("result %s, want %s", got, want)
	}
}

// TestParamErrors: a param of the wrong shape is answered with -32602 naming the param and what it
// takes, so that a native client's author sees what to fix.
func TestParamErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{})
	c, _ := s.joined(t)
	for _, tc := range []struct{ method, params, want string }{
		{"publishVideo", `{"sdpOffer":"o","doLoopback":"yes"}`, `invalid params for publishVideo: 'doLoopback' must be a boolean (true, false, "true" or "false"), not "yes"`},
		{"publishVideo", `{"sdpOffer":"o","frameRate":"30fps"}`, `invalid params for publishVideo: 'frameRate' must be a number (30 or "30"), not "30fps"`},
		{"publishVideo", `{"sdpOffer":7}`, `invalid params for publishVideo: 'sdpOffer' must be a string, not a JSON number`},
		{"publishVideo", `["o"]`, `invalid params for publishVideo: params must be a JSON object`},
		{"onIceCandidate", `{"candidate":"c","sdpMLineIndex":"70000"}`, `invalid params for onIceCandidate: 'sdpMLineIndex' must be a whole number from 0 to 65535 (0 or "0"), not "70000"`},
		{"streamPropertyChanged", `{"property":"audioActive","newValue":"` + strings.Repeat("x", 60) + `"}`,
			`invalid params for streamPropertyChanged: 'newValue' of audioActive must be a boolean (true, false, "true" or "false"), not "` + strings.Repeat("x", 39) + `…`},
	} {
		resp := c.call(tc.method, json.RawMessage(tc.params))
		e, _ := resp["error"].(map[string]any)
		if code, _ := e["code"].(float64); code != -32602 || e["message"] != tc.want {
			t.Errorf("%s %s:\n got %v %q\nwant -32602 %q", tc.method, tc.params, code, e["message"], tc.want)
		}
	}
	if calls := s.m.takeCalls(); len(calls) != 0 {
		t.Errorf("malformed params reached the model: %q", calls)
	}
}
