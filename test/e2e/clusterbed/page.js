// Runs in every participant's page of the cluster bed, loaded before the stock openvidu-browser
// bundle. It drives the SDK as an application does (connect, publish, subscribe to everything) and
// watches, every 200 ms, each subscription's decoded video frames through getStats, across the peer
// connections a reconnection replaces, so the test can ask what a user saw after a moment T: when
// the video of each participant moved again, the longest stall, freezes, packets lost. The test
// calls window.pcl.* through playwright.
(() => {
  const state = { session: null, publisher: null, subscribers: [], events: [] };
  // watch: by publisher's connection id, the progress of its video here.
  const watch = new Map();
  const note = (type, extra) => { if (state.events.length < 2000) state.events.push({ type, at: Date.now(), ...extra }); };
  // The timeline of a failover (printed by the test): every peer connection's ICE state and every
  // WebSocket's open and close, with the time, so where the seconds go can be read from one run.
  let pcs = 0;
  const NativePC = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const pc = new NativePC(...args);
    const id = ++pcs;
    const dir = () => pc.getTransceivers().map((t) => t.direction[0]).join('');
    note('pc', { pc: id });
    pc.addEventListener('iceconnectionstatechange', () => note('ice', { pc: id, dir: dir(), state: pc.iceConnectionState }));
    return pc;
  };
  window.RTCPeerConnection.prototype = NativePC.prototype;
  const NativeWS = window.WebSocket;
  window.WebSocket = function (url, ...rest) {
    const ws = new NativeWS(url, ...rest);
    ws.addEventListener('open', () => note('wsOpen'));
    ws.addEventListener('close', (e) => note('wsClose', { code: e.code }));
    return ws;
  };
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.WebSocket.prototype = NativeWS.prototype;
  // openvidu-browser throws until a subscriber's peer exists (simulcast mode makes it on the server's offer).
  const pcOf = (sub) => { try { return (sub && sub.stream && sub.stream.getRTCPeerConnection && sub.stream.getRTCPeerConnection()) || null; } catch { return null; } };

  async function videoStats(pc) {
    const r = { frames: 0, freezes: 0, lost: 0 };
    for (const s of (await pc.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        r.frames += s.framesDecoded || 0;
        r.freezes += s.freezeCount || 0;
        r.lost += s.packetsLost || 0;
      }
    }
    return r;
  }

  // sample adds one point per subscription: totals carried over from the peer connections it had
  // before (a reconnection starts a new one, whose counters start at 0).
  let sampling = false;
  async function sample() {
    if (sampling) return;
    sampling = true;
    try {
      const now = Date.now();
      // The newest subscription to each participant (a restored stream may be announced anew).
      const latest = new Map();
      for (const sub of state.subscribers) latest.set(sub.stream.connection.connectionId, sub);
      for (const [from, sub] of latest) {
        const pc = pcOf(sub);
        if (!pc) continue;
        let w = watch.get(from);
        if (!w) { w = { pc: null, pcs: 0, base: { frames: 0, freezes: 0, lost: 0 }, last: { frames: 0, freezes: 0, lost: 0 }, points: [] }; watch.set(from, w); }
        if (w.pc !== pc) {
          w.base = { frames: w.base.frames + w.last.frames, freezes: w.base.freezes + w.last.freezes, lost: w.base.lost + w.last.lost };
          w.last = { frames: 0, freezes: 0, lost: 0 };
          w.pc = pc;
          w.pcs++;
        }
        try {
          const got = await videoStats(pc);
          // A closed peer connection may report nothing: its counters never go back.
          if (got.frames >= w.last.frames) w.last = got;
        } catch {
          continue; // closed while we asked: the next sample sees its successor
        }
        const p = { t: now, pcFrames: w.last.frames, frames: w.base.frames + w.last.frames, freezes: w.base.freezes + w.last.freezes, lost: w.base.lost + w.last.lost, pcs: w.pcs, ice: pc.iceConnectionState };
        const prev = w.points[w.points.length - 1];
        // Keep the points where something moved, and the latest (bounded: 6000 = 10 minutes).
        const before = w.points[w.points.length - 2];
        if (prev && before && prev.frames === p.frames && prev.pcs === p.pcs && before.frames === p.frames && before.pcs === p.pcs) w.points.pop();
        w.points.push(p);
        if (w.points.length > 6000) w.points.shift();
      }
    } catch (e) {
      note('sampleError', { error: String(e) });
    } finally {
      sampling = false;
    }
  }
  setInterval(sample, 200);

  // join connects with token, subscribes to every stream that appears and publishes the fake camera
  // (320x240 at 15 fps: three browsers and three nodes share a small machine).
  async function join(token, { name, forceMediaReconnection }) {
    const OV = new OpenVidu();
    OV.enableProdMode();
    // An application's choice (openvidu-browser advanced configuration): after a WebSocket
    // reconnection, renegotiate every stream at once instead of waiting for ICE to fail.
    if (forceMediaReconnection) OV.setAdvancedConfiguration({ forceMediaReconnectionAfterNetworkDrop: true });
    const session = OV.initSession();
    state.session = session;
    session.on('streamCreated', (e) => {
      note('streamCreated', { from: e.stream.connection.connectionId, stream: e.stream.streamId });
      state.subscribers.push(session.subscribe(e.stream, 'videos'));
    });
    session.on('streamDestroyed', (e) => {
      note('streamDestroyed', { from: e.stream.connection.connectionId, reason: e.reason });
      state.subscribers = state.subscribers.filter((s) => s.stream.streamId !== e.stream.streamId);
    });
    session.on('connectionCreated', (e) => note('connectionCreated', { id: e.connection.connectionId }));
    session.on('connectionDestroyed', (e) => note('connectionDestroyed', { id: e.connection.connectionId, reason: e.reason }));
    session.on('sessionDisconnected', (e) => note('sessionDisconnected', { reason: e.reason }));
    session.on('reconnecting', () => note('reconnecting'));
    session.on('reconnected', () => note('reconnected'));
    session.on('exception', (e) => note('exception', { name: e.name, message: e.message }));
    await session.connect(token, { clientData: name });
    const pub = await OV.initPublisherAsync(undefined, { resolution: '320x240', frameRate: 15, insertMode: 'APPEND' });
    await session.publish(pub);
    state.publisher = pub;
    return session.connection.connectionId;
  }

  // since(T) tells, for each participant whose video this page receives, what happened after T
  // (ms since the epoch): the first decoded frame after T (ms after T; null if none yet), the
  // first decoded on a peer connection made after T (a reconnection's: frames still buffered in
  // the old one do not count), the
  // longest stretch without one (T to the first, and between frames), new peer connections,
  // freezes and packets lost (Chromium's counters), and frames decoded.
  function since(T) {
    const out = {};
    for (const [from, w] of watch) {
      const pts = w.points;
      let i = pts.length - 1;
      while (i > 0 && pts[i - 1].t >= T) i--;
      const at = pts[i - 1] || pts[0];  // the last point before T
      let first = null, recover = null, maxGap = 0, lastMove = T, frames = at.frames;
      for (let j = i; j < pts.length; j++) {
        const p = pts[j];
        if (p.t < T) continue;
        if (recover === null && p.pcs > at.pcs && p.pcFrames > 0) recover = p.t - T;
        if (p.frames > frames) {
          if (first === null) first = p.t - T;
          maxGap = Math.max(maxGap, p.t - lastMove);
          lastMove = p.t;
          frames = p.frames;
        }
      }
      const end = pts[pts.length - 1];
      maxGap = Math.max(maxGap, end.t - lastMove);
      out[from] = {
        firstFrameMs: first, recoverMs: recover, maxGapMs: maxGap, framesAfter: end.frames - at.frames, newPeerConnections: end.pcs - at.pcs,
        freezes: end.freezes - at.freezes, lost: end.lost - at.lost, ice: end.ice, framesTotal: end.frames,
      };
    }
    return out;
  }

  window.pcl = { join, since, events: () => state.events, id: () => state.session && state.session.connection && state.session.connection.connectionId };
})();
