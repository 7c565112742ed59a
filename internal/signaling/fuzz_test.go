package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// sdkFrames are frames as the stock openvidu-browser 2.32.2 sends them, one per method, and as the
// native samples send them: the seed corpus of the fuzzers.
var sdkFrames = []string{
	`{"id":0,"jsonrpc":"2.0","method":"ping","params":{"interval":5000}}`,
	`{"id":1,"jsonrpc":"2.0","method":"joinRoom","params":{"token":"ws://localhost:4443?sessionId=ses_A&token=tok_B","session":"ses_A","platform":"Chrome 120.0.0.0 on Linux 64-bit","sdkVersion":"2.32.2","metadata":"{\"clientData\":\"alice\"}","secret":"","recorder":false,"stt":false}}`,
	`{"id":2,"jsonrpc":"2.0","method":"publishVideo","params":{"audioOnly":false,"hasAudio":true,"doLoopback":false,"hasVideo":true,"audioActive":true,"videoActive":true,"typeOfVideo":"CAMERA","frameRate":30,"videoDimensions":"{\"width\":640,\"height\":480}","filter":{},"sdpOffer":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}`,
	`{"id":3,"jsonrpc":"2.0","method":"onIceCandidate","params":{"endpointName":"con_A","candidate":"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host generation 0","sdpMid":"0","sdpMLineIndex":0}}`,
	`{"id":4,"jsonrpc":"2.0","method":"receiveVideoFrom","params":{"sender":"str_CAM_Abcd_con_B","reconnect":false,"sdpOffer":"v=0\r\n"}}`,
	`{"id":5,"jsonrpc":"2.0","method":"prepareReceiveVideoFrom","params":{"sender":"str_CAM_Abcd_con_B","reconnect":false}}`,
	`{"id":6,"jsonrpc":"2.0","method":"unsubscribeFromVideo","params":{"sender":"con_B"}}`,
	`{"id":7,"jsonrpc":"2.0","method":"unpublishVideo","params":{}}`,
	`{"id":8,"jsonrpc":"2.0","method":"sendMessage","params":{"message":"{\"to\":[],\"data\":\"hi\",\"type\":\"signal:chat\"}"}}`,
	`{"id":9,"jsonrpc":"2.0","method":"streamPropertyChanged","params":{"streamId":"str_CAM_Abcd_con_A","property":"audioActive","newValue":false,"reason":"publishAudio"}}`,
	`{"id":10,"jsonrpc":"2.0","method":"reconnectStream","params":{"stream":"str_CAM_Abcd_con_A","sdpString":"v=0\r\n"}}`,
	`{"id":11,"jsonrpc":"2.0","method":"forceDisconnect","params":{"connectionId":"con_B"}}`,
	`{"id":12,"jsonrpc":"2.0","method":"forceUnpublish","params":{"streamId":"str_CAM_Abcd_con_B"}}`,
	`{"id":13,"jsonrpc":"2.0","method":"applyFilter","params":{"streamId":"s","type":"GStreamerFilter","options":"{\"command\":\"videobalance\"}"}}`,
	`{"id":14,"jsonrpc":"2.0","method":"connect","params":{"sessionId":"abcdefghijklmnopqrstuvwxyz","reconnect":true}}`,
	`{"id":15,"jsonrpc":"2.0","method":"echo","params":{}}`,
	`{"id":16,"jsonrpc":"2.0","method":"videoData","params":{"height":480,"width":640,"videoActive":true,"audioActive":true}}`,
	`{"id":17,"jsonrpc":"2.0","method":"subscribeToSpeechToText","params":{"connectionId":"con_B","lang":"en-US"}}`,
	`{"id":18,"jsonrpc":"2.0","method":"leaveRoom","params":{}}`,
	`{"id":19,"jsonrpc":"2.0"}`,
	// The native samples' string-typed params (native_test.go).
	androidFrames[2], androidFrames[3], androidMediasoupFrames[1], iosFrames[1],
	`{"id":`,
	`[]`,
	``,
}

// knownCodes are the error codes signaling answers on its own (the fake model adds none).
var knownCodes = map[int]bool{-32700: true, -32600: true, -32601: true, -32602: true, codeReconnection: true,
	104: true, 302: true, 303: true, 401: true, 406: true, 600: true, 601: true, 803: true, 996: true}

// ids the handler makes up, which differ between two sockets for the same frames.
var madeUpIDs = regexp.MustCompile(`"[a-z0-9]{26}"|"[A-Z0-9]{16}"|con_Fake[0-9]{6}`)

// FuzzFrame sends one frame on a fresh socket, whole and then (on another socket) split into
// WebSocket fragments at the given points, and checks the answer: exactly one JSON-RPC 2.0 response
// with the request's id, a result or an error with a known code, the same however the frame was
// split, and a socket that still answers ping afterwards.
func FuzzFrame(f *testing.F) {
	for i, s := range sdkFrames {
		f.Add([]byte(s), uint16(i*7), uint16(i*13))
	}
	srv := newTestServer(f, Config{})
	f.Fuzz(func(t *testing.T, frame []byte, split1, split2 uint16) {
		if len(frame) > 64<<10 {
			return
		}
		whole := exchange(t, srv.url, [][]byte{frame})
		a, b := int(split1)%(len(frame)+1), int(split2)%(len(frame)+1)
		if a > b {
			a, b = b, a
		}
		split := exchange(t, srv.url, [][]byte{frame[:a], frame[a:b], frame[b:]})
		checkFrameAnswer(t, frame, whole)
		if w, s := madeUpIDs.ReplaceAll(whole, []byte("ID")), madeUpIDs.ReplaceAll(split, []byte("ID")); !bytes.Equal(w, s) {
			t.Fatalf("frame %q\nwhole: %s\nsplit at %d,%d: %s", frame, w, a, b, s)
		}
	})
}

// exchange writes one message made of parts (one WebSocket fragment each) on a new socket and
// returns the answer, after checking that a ping sent next is answered after it.
func exchange(t *testing.T, url string, parts [][]byte) []byte {
	t.Helper()
	ws, err := dialWS(url)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ctx := context.Background()
	w, err := ws.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if len(p) > 0 {
			if _, err := w.Write(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"id":"after","jsonrpc":"2.0","method":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	_, answer, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	_, pong, err := ws.Read(ctx)
	if err != nil || string(pong) != `{"id":"after","jsonrpc":"2.0","result":{"value":"pong"}}` {
		t.Fatalf("ping after the frame: %s %v", pong, err)
	}
	return answer
}

func checkFrameAnswer(t *testing.T, frame, answer []byte) {
	t.Helper()
	var resp struct {
		ID      json.RawMessage  `json:"id"`
		JSONRPC string           `json:"jsonrpc"`
		Result  *json.RawMessage `json:"result"`
		Error   *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(answer, &resp); err != nil || resp.JSONRPC != "2.0" {
		t.Fatalf("frame %q: answer %s is not JSON-RPC 2.0 (%v)", frame, answer, err)
	}
	if (resp.Result == nil) == (resp.Error == nil) {
		t.Fatalf("frame %q: answer %s needs exactly one of result and error", frame, answer)
	}
	if resp.Error != nil && (!knownCodes[resp.Error.Code] || resp.Error.Message == "") {
		t.Fatalf("frame %q: error %+v", frame, *resp.Error)
	}
	// The reference for the id: a frame that is not a JSON object gets a parse error and id
	// null; one that is gets its own id back (null when it has none).
	var req map[string]json.RawMessage
	if json.Unmarshal(frame, &req) != nil {
		if resp.Error == nil || resp.Error.Code != codeParseError || string(resp.ID) != "null" {
			t.Fatalf("frame %q is not a JSON object; answer %s", frame, answer)
		}
		return
	}
	if resp.Error != nil && resp.Error.Code == codeParseError {
		return // an object whose members have the wrong types (method 7)
	}
	want := []byte("null")
	for k, v := range req {
		switch {
		case k == "id":
			want = v
		case strings.EqualFold(k, "id"):
			return // encoding/json also matches "ID"; which one wins is its business
		}
	}
	// The same JSON value: encoding/json re-encodes the raw id (compacts it, escapes <>&).
	var w, g any
	if json.Unmarshal(want, &w) == nil && (json.Unmarshal(resp.ID, &g) != nil || !reflect.DeepEqual(w, g)) {
		t.Fatalf("frame %q: answer id %s, want %s", frame, resp.ID, want)
	}
}

// FuzzParams calls every method, before and after joining, with arbitrary params: no panic, a
// result or an error with a known code, and a result that encodes.
func FuzzParams(f *testing.F) {
	for _, s := range sdkFrames {
		var req request
		if json.Unmarshal([]byte(s), &req) == nil && req.Method != "" {
			f.Add(req.Method, []byte(req.Params))
		}
	}
	names := []string{"joinRoom", "echo"}
	for name := range methods {
		names = append(names, name)
	}
	f.Fuzz(func(t *testing.T, method string, params []byte) {
		h := New(Config{}, newFakeModel(), slog.New(slog.DiscardHandler))
		fresh := h.newRPC(newSocket(nil, "", DefaultLimits))
		joined := h.newRPC(newSocket(nil, "", DefaultLimits))
		joined.part = &fakeParticipant{f: newFakeModel(), id: "con_A"}
		for _, r := range []*rpcSession{fresh, joined} {
			for _, name := range append(names, method) {
				res, err := r.call(context.Background(), name, params)
				if (res == nil) == (err == nil) {
					t.Fatalf("%s(%q): result %v, error %v", name, params, res, err)
				}
				if err != nil {
					if e := errorOf(err); !knownCodes[e.Code] {
						t.Fatalf("%s(%q): error %d %q", name, params, e.Code, e.Message)
					}
					continue
				}
				res.setSessionID(r.id)
				mustJSON(res)
			}
		}
	})
}
