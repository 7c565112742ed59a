// Runs in every participant's page, loaded before the stock openvidu-browser bundle. It drives the
// SDK the way an application does (connect, publish, subscribe to everything) and reads what the
// browser itself knows about the media path: getStats and ICE candidate errors. The test calls
// window.pfw.* through playwright.
(() => {
  const candidateErrors = [];
  const iceServerURLs = new Set();

  // Watch every RTCPeerConnection the SDK creates: the ICE servers it was given (URLs only, never
  // credentials) and the candidate errors (a TURN server refusing, TLS failing, a port blocked).
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config, ...rest) {
      super(config, ...rest);
      for (const s of (config && config.iceServers) || []) {
        for (const u of [].concat(s.urls || s.url || [])) iceServerURLs.add(u);
      }
      this.addEventListener('icecandidateerror', (e) => {
        if (candidateErrors.length < 50) {
          candidateErrors.push({ url: e.url, code: e.errorCode, text: e.errorText, address: e.address, port: e.port });
        }
      });
    }
  };

  // selectedPath is the candidate pair that carries a peer connection's media, as getStats reports it.
  async function selectedPath(pc) {
    if (!pc) return null;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId) || pair;
    });
    // Firefox has no transport stats; it marks the pair in use "selected".
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.selected) pair = s; });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    if (!pair) return null;
    const l = stats.get(pair.localCandidateId) || {};
    const r = stats.get(pair.remoteCandidateId) || {};
    return {
      localType: l.candidateType, protocol: l.protocol, relayProtocol: l.relayProtocol || null,
      local: `${l.address}:${l.port}`, url: l.url || null,
      remoteType: r.candidateType, remoteProtocol: r.protocol, remote: `${r.address}:${r.port}`, remotePort: r.port,
      tcpType: l.tcpType || null,
    };
  }

  async function videoFramesDecoded(pc) {
    if (!pc) return 0;
    let n = 0;
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.framesDecoded || 0; });
    return n;
  }

  // openvidu-browser throws until a subscriber's peer exists (simulcast mode makes it on the server's offer).
  const pcOf = (sub) => { try { return (sub && sub.stream && sub.stream.getRTCPeerConnection && sub.stream.getRTCPeerConnection()) || null; } catch { return null; } };
  const state = { session: null, publisher: null, subscribers: [] };

  // join connects with token, subscribes to every stream that appears and, when asked, publishes
  // the fake camera at 640x480.
  async function join(token, { name, publish }) {
    const OV = new OpenVidu();
    OV.enableProdMode();
    const session = OV.initSession();
    state.session = session;
    session.on('streamCreated', (e) => state.subscribers.push(session.subscribe(e.stream, 'videos')));
    await session.connect(token, { clientData: name });
    if (publish) {
      const pub = await OV.initPublisherAsync(undefined, { resolution: '640x480', frameRate: 30, insertMode: 'APPEND' });
      await session.publish(pub);
      state.publisher = pub;
    }
    return session.connection.connectionId;
  }

  // report gives, for every subscription, whom it receives, the frames decoded and the path.
  async function report() {
    const subs = [];
    for (const sub of state.subscribers) {
      const pc = pcOf(sub);
      subs.push({
        from: sub.stream.connection.connectionId,
        framesDecoded: await videoFramesDecoded(pc),
        ice: pc ? pc.iceConnectionState : 'no peer connection',
        path: await selectedPath(pc),
      });
    }
    const pubPC = state.publisher && state.publisher.stream.getRTCPeerConnection();
    return {
      subscribers: subs,
      publisher: pubPC ? { ice: pubPC.iceConnectionState, path: await selectedPath(pubPC) } : null,
      candidateErrors, iceServerURLs: [...iceServerURLs],
    };
  }

  // firstFrame joins as a subscriber only and measures, from the start of session.connect(), the
  // time until the stream of fromId has its first decoded video frame (getStats polled every 10 ms)
  // and first presented frame (requestVideoFrameCallback). Bounded by deadlineMs.
  async function firstFrame(token, fromId, deadlineMs) {
    const OV = new OpenVidu();
    OV.enableProdMode();
    const session = OV.initSession();
    let sub = null;
    let renderedAt = null;
    session.on('streamCreated', (e) => {
      if (sub || e.stream.connection.connectionId !== fromId) return;
      sub = session.subscribe(e.stream, 'videos');
      sub.on('videoElementCreated', (ev) => {
        if (ev.element.requestVideoFrameCallback) ev.element.requestVideoFrameCallback(() => { renderedAt = renderedAt ?? performance.now(); });
      });
    });
    const t0 = performance.now();
    const out = { decodedMs: null, renderedMs: null, path: null, error: null };
    try {
      await session.connect(token, { clientData: 'ttff' });
      for (;;) {
        const now = performance.now();
        if (now - t0 > deadlineMs) { out.error = `no decoded frame within ${deadlineMs} ms (ice: ${pcOf(sub) ? pcOf(sub).iceConnectionState : 'no peer connection'})`; break; }
        if (await videoFramesDecoded(pcOf(sub)) > 0) { out.decodedMs = Math.round(now - t0); break; }
        await new Promise((r) => setTimeout(r, 10));
      }
      if (out.decodedMs !== null) {
        const until = performance.now() + 2000;  // the first presented frame follows within a frame or two
        while (renderedAt === null && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
        if (renderedAt !== null) out.renderedMs = Math.round(renderedAt - t0);
        out.path = await selectedPath(pcOf(sub));
      }
    } catch (e) {
      out.error = String(e && (e.message || e.name) || e);
    }
    // Leave cleanly (leaveRoom answered) so the server does not keep a dropped participant around.
    const left = new Promise((r) => session.on('sessionDisconnected', r));
    try { session.disconnect(); } catch { /* already gone */ }
    await Promise.race([left, new Promise((r) => setTimeout(r, 3000))]);
    out.candidateErrors = candidateErrors.slice();
    return out;
  }

  // diagnose describes every peer connection for a failure report: the candidates the server
  // signalled, the candidates and pairs the browser has, and their states.
  async function diagnose() {
    const out = [];
    const all = [...state.subscribers.map((s) => ['subscriber', pcOf(s)]), ['publisher', state.publisher && state.publisher.stream.getRTCPeerConnection()]];
    for (const [role, pc] of all) {
      if (!pc) { out.push({ role, pc: null }); continue; }
      const signalled = ((pc.remoteDescription && pc.remoteDescription.sdp) || '').split('\r\n').filter((l) => l.startsWith('a=candidate'));
      const local = [], remote = [], pairs = [];
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'local-candidate') local.push(`${s.candidateType} ${s.protocol}${s.relayProtocol ? '/' + s.relayProtocol : ''} ${s.address}:${s.port}${s.tcpType ? ' ' + s.tcpType : ''}`);
        if (s.type === 'remote-candidate') remote.push(`${s.candidateType} ${s.protocol} ${s.address}:${s.port}`);
        if (s.type === 'candidate-pair') pairs.push(`${s.state}${s.nominated ? ' nominated' : ''} req=${s.requestsSent} resp=${s.responsesReceived}`);
      });
      out.push({ role, ice: pc.iceConnectionState, gathering: pc.iceGatheringState, signalled, local, remote, pairs });
    }
    return out;
  }

  window.pfw = { join, report, firstFrame, diagnose, leave: () => state.session && state.session.disconnect() };
})();
