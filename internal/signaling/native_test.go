package signaling

import (
	"encoding/json"
	"strings"
	"testing"
)

// Frames as the public native samples build them, field for field: both put every param in a map
// of strings (so booleans and numbers travel as "true" and "30") and their JSON writers escape '/'.
//
//   - openvidu-android 2.32.2, CustomWebSocket.java: ping with interval on the first call only,
//     joinRoom with an empty secret, publishVideo once joined, trickle ICE with endpointName,
//     receiveVideoFrom with an offer (kurento) or prepareReceiveVideoFrom then receiveVideoFrom
//     with the answer (mediasoup), leaveRoom.
//   - the iOS sample (OpenVidu/openvidu-ios-app, WebSocketListener.swift and PeersManager.swift):
//     joinRoom with recorder "false" and the secret "MY_SECRET" next to a REST token, publishVideo
//     sent right behind joinRoom without waiting for its answer, the candidates gathered meanwhile,
//     receiveVideoFrom naming the sender by connection id and "_CAMERA".
const (
	nativeOffer  = `v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n`
	nativeAnswer = `v=0\r\no=- 4611731400430051337 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n`
	nativeCand   = `candidate:842163049 1 udp 1677729535 192.0.2.7 40000 typ srflx raddr 10.0.2.16 rport 40000 generation 0 ufrag sk3R network-id 3 network-cost 10`
	nativeToken  = `ws:\/\/localhost:4443?sessionId=ses_A&token=tok_Native`
)

var androidFrames = []string{
	`{"jsonrpc":"2.0","method":"ping","id":0,"params":{"interval":"5000"}}`,
	`{"jsonrpc":"2.0","method":"joinRoom","id":1,"params":{"metadata":"{\"clientData\": \"Participant42\"}","secret":"","session":"ses_A","platform":"Android 34","token":"` + nativeToken + `","sdkVersion":"2.32.2"}}`,
	`{"jsonrpc":"2.0","method":"publishVideo","id":2,"params":{"audioActive":"true","videoActive":"true","doLoopback":"false","frameRate":"30","hasAudio":"true","hasVideo":"true","typeOfVideo":"CAMERA","videoDimensions":"{\"width\":320, \"height\":240}","sdpOffer":"` + nativeOffer + `"}}`,
	`{"jsonrpc":"2.0","method":"onIceCandidate","id":3,"params":{"endpointName":"con_Fake000001","candidate":"` + nativeCand + `","sdpMid":"0","sdpMLineIndex":"0"}}`,
	`{"jsonrpc":"2.0","method":"onIceCandidate","id":4,"params":{"endpointName":"con_Fake000001","candidate":"` + nativeCand + `","sdpMid":"1","sdpMLineIndex":"1"}}`,
	`{"jsonrpc":"2.0","method":"receiveVideoFrom","id":5,"params":{"sender":"str_CAM_Abcd_con_Bob","sdpOffer":"` + nativeOffer + `"}}`,
	`{"jsonrpc":"2.0","method":"onIceCandidate","id":6,"params":{"endpointName":"con_Bob","candidate":"` + nativeCand + `","sdpMid":"0","sdpMLineIndex":"0"}}`,
	`{"jsonrpc":"2.0","method":"ping","id":7,"params":{}}`,
	`{"jsonrpc":"2.0","method":"leaveRoom","id":8,"params":{}}`,
}

// androidMediasoupFrames: the subscription when joinRoom said mediaServer "mediasoup".
var androidMediasoupFrames = []string{
	androidFrames[1],
	`{"jsonrpc":"2.0","method":"prepareReceiveVideoFrom","id":2,"params":{"sender":"str_CAM_Abcd_con_Bob","reconnect":"false"}}`,
	`{"jsonrpc":"2.0","method":"receiveVideoFrom","id":3,"params":{"sender":"str_CAM_Abcd_con_Bob","sdpAnswer":"` + nativeAnswer + `"}}`,
	`{"jsonrpc":"2.0","method":"onIceCandidate","id":4,"params":{"endpointName":"con_Bob","candidate":"` + nativeCand + `","sdpMid":"0","sdpMLineIndex":"0"}}`,
}

var iosFrames = []string{
	`{"method":"ping","id":0,"params":{"interval":"5000"},"jsonrpc":"2.0"}`,
	`{"method":"joinRoom","id":1,"params":{"recorder":"false","platform":"iOS","metadata":"{\"clientData\": \"iOSUser\"}","secret":"MY_SECRET","session":"ses_A","token":"` + nativeToken + `"},"jsonrpc":"2.0"}`,
	`{"method":"publishVideo","id":2,"params":{"audioActive":"true","videoActive":"true","doLoopback":"false","hasAudio":"true","hasVideo":"true","frameRate":"30","typeOfVideo":"CAMERA","videoDimensions":"{\"width\":640,\"height\":480}","sdpOffer":"` + nativeOffer + `"},"jsonrpc":"2.0"}`,
	`{"method":"onIceCandidate","id":3,"params":{"sdpMid":"audio","sdpMLineIndex":"0","candidate":"` + nativeCand + `","endpointName":"con_Fake000001"},"jsonrpc":"2.0"}`,
	`{"method":"receiveVideoFrom","id":4,"params":{"sdpOffer":"` + nativeOffer + `","sender":"con_Bob_CAMERA"},"jsonrpc":"2.0"}`,
	`{"method":"onIceCandidate","id":5,"params":{"sdpMid":"video","sdpMLineIndex":"1","candidate":"` + nativeCand + `","endpointName":"con_Bob"},"jsonrpc":"2.0"}`,
	`{"method":"ping","id":6,"params":{"interval":"5000"},"jsonrpc":"2.0"}`,
}

// TestNativeClients replays the native samples' frames and pins, in testdata/native_*.golden,
// every answer and what reached the model: each method succeeds, the string params arrive as the
// booleans and numbers they stand for, and the answers carry what the samples read.
func TestNativeClients(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cfg    Config
		frames []string
		// pipelined: frames sent before reading any answer, as the iOS sample sends publishVideo
		// right behind joinRoom.
		pipelined int
	}{
		{name: "native_android", frames: androidFrames},
		{name: "native_android_mediasoup", cfg: Config{Simulcast: true}, frames: androidMediasoupFrames},
		{name: "native_ios", frames: iosFrames, pipelined: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, tc.cfg)
			c := dialTest(t, s.url)
			type exchange struct {
				Sent   json.RawMessage `json:"sent"`
				Answer json.RawMessage `json:"answer"`
				Model  []string        `json:"model"`
			}
			groups := [][]string{}
			rest := tc.frames
			if tc.pipelined > 0 {
				groups, rest = append(groups, rest[:tc.pipelined]), rest[tc.pipelined:]
			}
			for _, f := range rest {
				groups = append(groups, []string{f})
			}
			var transcript []exchange
			for _, g := range groups {
				for _, f := range g {
					c.send(f)
				}
				for _, f := range g {
					answer := c.nextNote() // answers come in order, and no notification is due
					transcript = append(transcript, exchange{Sent: json.RawMessage(f), Answer: answer})
				}
				// What the group's frames made the model do.
				transcript[len(transcript)-1].Model = s.m.takeCalls()
			}
			for _, x := range transcript {
				var a struct {
					Error *rpcError `json:"error"`
				}
				if err := json.Unmarshal(x.Answer, &a); err != nil || a.Error != nil {
					t.Errorf("%s answered %s", x.Sent, x.Answer)
				}
			}
			wire, err := json.Marshal(transcript)
			if err != nil {
				t.Fatal(err)
			}
			rpcID := s.h.onlyRPC(t)
			text := strings.ReplaceAll(string(wire), rpcID, "RPCSESSIONID")
			text = strings.ReplaceAll(text, strings.ToUpper(rpcID[:16]), "FINALUSERID")
			golden(t, tc.name, []byte(text))
		})
	}
}
