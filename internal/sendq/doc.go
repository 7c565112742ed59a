// Package sendq is a bounded, time-limited send queue in front of one stream connection (ICE-TCP,
// TURN/TCP, TURN/TLS) that carries framed datagrams: RFC 4571 frames, TURN ChannelData and STUN.
//
// A datagram sent over TCP to a slow peer is not lost, it waits: the kernel's send buffer and any
// user-space buffer in front of it fill with seconds of media, and every later packet waits behind
// them. For real-time media a late packet is worth nothing, and the wait costs every other
// participant the moment one goroutine blocks on the write. So:
//
//   - Write copies one whole frame into the queue and never blocks. One writer goroutine per queue
//     drains it to the connection, several frames per write.
//   - A frame older than MaxAge, when the writer reaches it or a newer frame arrives, is dropped
//     whole (reason stale); when MaxBytes would be exceeded the oldest frames are dropped whole
//     (reason full). Dropping whole frames keeps the far end's framing valid: it only ever sees
//     complete frames, in order.
//   - The kernel keeps at most UnsentBytes of not-yet-sent bytes (TCP_NOTSENT_LOWAT), so what
//     waits, waits here, where its age is checked, instead of in an unbounded socket buffer.
//   - Nor does it keep much more sent and unacknowledged than the link delivers in
//     InFlightDelay beyond the round trip: the congestion window alone can hold seconds of media
//     on a slow link (and BBR on a shallow token bucket retransmits a third of it). The writer
//     reads the socket's progress (TCP_INFO) and holds back until the peer has caught up.
//   - Delay tells a sender how long video waited here: a queue that never drains within a
//     second is a link that cannot carry what is sent, TCP's equivalent of loss.
//
// Counters say what was sent and what was dropped, by reason. Steady-state Write makes no
// allocation: frames are copied into a ring that grows (by doubling) only up to MaxBytes.
package sendq
