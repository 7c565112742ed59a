// Package app is the server side of Parley's built-in videoconference app (what OpenVidu shipped
// as the separate openvidu-call container) and of the device and network test at /test, plus the
// reverse proxy that puts a customer's own application behind Parley's port (what nginx did in
// an OpenVidu CE deployment).
//
// It owns:
//   - /app/api/: login, the app's configuration, POST rooms/{name}/join (a token for a nickname,
//     the session created on first use) and the per-test sessions of /test, all rate-limited per
//     client address;
//   - the embedded web files (package web) at / and /test;
//   - the customer-app proxy (Proxy), which never forwards Parley's own paths.
//
// It talks to the session model directly through the small Rooms interface, never over HTTP to
// ourselves, and must not import api, signaling, edge, sfu, turn or server (deps_test.go): it is a
// client of the model like the REST API, not a layer under it.
//
// Room names map to session ids with a prefix (room_<name>; tests: test_<random>), so a person with
// an app login can only ever reach sessions the app made, never a customer's session created
// through the REST API.
package app
