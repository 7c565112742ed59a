// The network test: one PeerConnection per transport, each allowed to use only that transport,
// publishing a tiny canvas stream to the server. Whether ICE connects over it answers "does UDP /
// ICE-TCP / TURN over TCP / TURN over TLS work from here?".
//
// The OpenVidu SDK cannot restrict a PeerConnection to one transport, so this speaks the SDK's
// JSON-RPC protocol itself (joinRoom, publishVideo, onIceCandidate, leaveRoom) on the /openvidu
// socket, and filters candidates both ways: ours before we send them, the server's before we add
// them (including those inside the SDP answer).

/** Rpc is a minimal OpenVidu JSON-RPC 2.0 client over WebSocket. */
class Rpc {
  constructor(url) {
    this.ws = new WebSocket(url);
    this.id = 0;
    this.pending = new Map();
    this.handlers = new Map();
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error('signaling socket failed'));
    });
    this.ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.id !== undefined && this.pending.has(m.id)) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p.reject(new Error(m.error.message || `error ${m.error.code}`));
        else p.resolve(m.result);
      } else if (m.method) {
        this.handlers.get(m.method)?.(m.params || {});
      }
    };
    this.ws.onclose = () => {
      for (const p of this.pending.values()) p.reject(new Error('signaling socket closed'));
      this.pending.clear();
    };
  }

  async call(method, params = {}, timeout = 10000) {
    await this.opened;
    const id = ++this.id;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.pending.delete(id); reject(new Error(`${method} timed out`)); }, timeout);
      this.pending.set(id, { resolve: (v) => { clearTimeout(t); resolve(v); }, reject: (e) => { clearTimeout(t); reject(e); } });
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  on(method, fn) { this.handlers.set(method, fn); }
  close() { try { this.ws.close(); } catch { /* closed */ } }
}

/** parseCandidate reads protocol, address, port, type and tcptype from an a=candidate value. */
export function parseCandidate(line) {
  const f = String(line || '').replace(/^a=/, '').replace(/^candidate:/, '').trim().split(/\s+/);
  if (f.length < 8) return null;
  const c = { protocol: f[2].toLowerCase(), address: f[4], port: Number(f[5]), type: f[7], tcptype: '' };
  const i = f.indexOf('tcptype');
  if (i > 0) c.tcptype = f[i + 1];
  return c;
}

/** filterSdp removes a=candidate lines that keep() rejects. */
function filterSdp(sdp, keep) {
  return sdp.split(/\r\n/).filter((l) => !l.startsWith('a=candidate:') || keep(parseCandidate(l))).join('\r\n');
}

/** tokenParts reads what the SDK reads from a token: the socket URL and the session id. */
function tokenParts(token) {
  const u = new URL(token);
  return { ws: `${u.protocol}//${u.host}/openvidu?sessionId=${u.searchParams.get('sessionId')}`, session: u.searchParams.get('sessionId') };
}

/**
 * The probes. `ice` picks ICE servers from joinRoom's customIceServers (null: none offered, the
 * probe is skipped); `local`/`remote` say which candidates may be used; `check` validates the
 * selected pair so a success is really over the intended transport.
 */
export const PROBES = [
  {
    id: 'udp', name: 'UDP, direct', good: 'Best quality: media goes straight to the server over UDP.',
    bad: 'UDP to the server is blocked (common on corporate and guest networks).',
    ice: () => [], policy: 'all',
    local: (c) => c.protocol === 'udp' && c.type !== 'relay', remote: (c) => c.protocol === 'udp',
    check: (l) => l.protocol === 'udp' && l.candidateType !== 'relay',
  },
  {
    id: 'tcp', name: 'TCP, direct (ICE-TCP)', good: 'Media can go straight to the server over TCP: a little more delay when packets are lost.',
    bad: 'Direct TCP to the server is blocked too.',
    ice: () => [], policy: 'all',
    local: (c) => c.protocol === 'tcp' && c.type !== 'relay', remote: (c) => c.protocol === 'tcp',
    check: (l) => l.protocol === 'tcp' && l.candidateType !== 'relay',
  },
  {
    id: 'turn-tcp', name: 'TURN relay over TCP', good: 'The server relays media over a plain TCP connection.',
    bad: 'The relay over plain TCP is blocked (a proxy or firewall that inspects traffic may do this).',
    ice: (servers) => pick(servers, (u) => /^turn:/i.test(u) && /transport=tcp/i.test(u)), policy: 'relay',
    local: (c) => c.type === 'relay', remote: (c) => c.protocol === 'udp',
    check: (l) => l.candidateType === 'relay' && (l.relayProtocol || 'tcp') === 'tcp',
  },
  {
    id: 'turn-tls', name: 'TURN relay over TLS', good: 'The server relays media inside an encrypted connection that looks like HTTPS: works through most firewalls.',
    bad: 'Even the encrypted relay is blocked: something intercepts or blocks HTTPS-like traffic to this server.',
    ice: (servers) => pick(servers, (u) => /^turns:/i.test(u)), policy: 'relay',
    local: (c) => c.type === 'relay', remote: (c) => c.protocol === 'udp',
    check: (l) => l.candidateType === 'relay' && (l.relayProtocol || 'tls') === 'tls',
  },
];

function pick(servers, match) {
  const out = (servers || []).filter((s) => match(s.url || s.urls || '')).map((s) => ({ urls: s.url || s.urls, username: s.username, credential: s.credential }));
  return out.length ? out : null;
}

/** tinyTrack returns a small moving canvas video track: the probe needs media, not a camera. */
function tinyTrack() {
  const c = document.createElement('canvas');
  c.width = 64;
  c.height = 48;
  const g = c.getContext('2d');
  let n = 0;
  const draw = () => { g.fillStyle = `hsl(${(n++ * 7) % 360} 60% 50%)`; g.fillRect(0, 0, 64, 48); };
  draw();
  const timer = setInterval(draw, 100);
  const track = c.captureStream(10).getVideoTracks()[0];
  track.addEventListener('ended', () => clearInterval(timer));
  return { track, stop: () => { clearInterval(timer); track.stop(); } };
}

/**
 * runProbe tries one transport with one token. Resolves {ok, skipped?, detail, rtt?, server: [{protocol,address,port}]}
 * and never rejects.
 */
export async function runProbe(probe, token, timeoutMs = 12000) {
  const { ws, session } = tokenParts(token);
  const rpc = new Rpc(ws);
  let pc, media;
  const server = [];
  const pingTimer = setInterval(() => rpc.call('ping', { interval: 5000 }).catch(() => {}), 4000);
  try {
    const join = await rpc.call('joinRoom', {
      token, session, platform: navigator.userAgent, sdkVersion: '2.32.2', metadata: '', secret: '', recorder: false, stt: false,
    });
    const ice = probe.ice(join.customIceServers || []);
    if (ice === null) return { ok: false, skipped: true, detail: 'This server does not offer it.', server };
    pc = new RTCPeerConnection({ iceServers: ice, iceTransportPolicy: probe.policy });
    media = tinyTrack();
    pc.addTransceiver(media.track, { direction: 'sendonly' });
    const myId = join.id;
    pc.onicecandidate = (e) => {
      const c = e.candidate && parseCandidate(e.candidate.candidate);
      if (c && probe.local(c)) {
        rpc.call('onIceCandidate', { endpointName: myId, candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex }).catch(() => {});
      }
    };
    const remoteOK = (c) => {
      if (!c) return false;
      if (!server.some((s) => s.protocol === c.protocol && s.address === c.address && s.port === c.port)) server.push({ protocol: c.protocol, address: c.address, port: c.port });
      return probe.remote(c);
    };
    rpc.on('iceCandidate', (p) => {
      if (remoteOK(parseCandidate(p.candidate))) pc.addIceCandidate({ candidate: p.candidate, sdpMid: p.sdpMid, sdpMLineIndex: p.sdpMLineIndex }).catch(() => {});
    });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const res = await rpc.call('publishVideo', {
      sdpOffer: offer.sdp, doLoopback: false, hasAudio: false, hasVideo: true, audioActive: false, videoActive: true,
      typeOfVideo: 'CUSTOM', frameRate: 10, videoDimensions: JSON.stringify({ width: 64, height: 48 }),
    });
    await pc.setRemoteDescription({ type: 'answer', sdp: filterSdp(res.sdpAnswer, remoteOK) });
    const state = await new Promise((resolve) => {
      const t = setTimeout(() => resolve('timeout'), timeoutMs);
      const look = () => {
        const s = pc.iceConnectionState;
        if (s === 'connected' || s === 'completed' || s === 'failed') { clearTimeout(t); resolve(s); }
      };
      pc.addEventListener('iceconnectionstatechange', look);
      look();
    });
    if (state !== 'connected' && state !== 'completed') {
      return { ok: false, detail: state === 'failed' ? 'No connection could be made.' : `No connection within ${timeoutMs / 1000} s.`, server };
    }
    // Read the pair that carried it; a success over the wrong transport would be a lie.
    let sel = null;
    for (let i = 0; i < 10 && !sel; i++) {
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = report.get(s.selectedCandidatePairId);
          if (pair) sel = { pair, local: report.get(pair.localCandidateId), remote: report.get(pair.remoteCandidateId) };
        }
      });
      if (!sel) await new Promise((r) => setTimeout(r, 200));
    }
    if (!sel?.local) return { ok: true, detail: 'Connected.', server };
    if (!probe.check(sel.local)) {
      return { ok: false, detail: `Connected, but over ${sel.local.protocol}/${sel.local.candidateType}${sel.local.relayProtocol ? `/${sel.local.relayProtocol}` : ''} instead.`, server };
    }
    const rtt = sel.pair.currentRoundTripTime;
    return { ok: true, rtt: rtt !== undefined ? Math.round(rtt * 1000) : undefined, detail: 'Connected.', server };
  } catch (err) {
    return { ok: false, detail: `Could not test: ${err?.message || err}.`, server };
  } finally {
    clearInterval(pingTimer);
    rpc.call('leaveRoom', {}, 2000).catch(() => {}).finally(() => rpc.close());
    pc?.close();
    media?.stop();
  }
}
