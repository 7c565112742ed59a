// Runs in every page of the weak-network bed, before the stock openvidu-browser bundle. It drives the
// SDK as an application does and measures what a user sees:
//   publisher:   publishes a canvas track: the fake camera, with the capture time painted over its top
//                tenth as 40 black/white blocks (32 bits of the wall-clock millisecond, 8 check bits),
//                plus the fake microphone; samples its outbound-rtp (PLIs, keyframes, bytes) every second.
//   subscribers: subscribe to every stream, read the time code of every presented frame
//                (requestVideoFrameCallback + drawImage) to get capture-to-display latency (all
//                browsers run on one host clock), and sample inbound-rtp video and audio every second.
// window.pwnTransport (set by the runner before the page loads) restricts the ICE servers: 'ice-tcp'
// gives the peer connections none (only the server's ICE-TCP candidate can work once the network
// drops UDP), 'turn-tcp' keeps only turn:…?transport=tcp with iceTransportPolicy 'relay', 'turn-tls'
// only turns: (TURN over TLS on the shared port) with 'relay'.
(() => {
  const COLS = 20, ROWS = 2, BITS = COLS * ROWS; // 32 bits of time + 8 check bits
  const STRIP = 0.1; // the code's share of the frame's height
  const wallNow = () => Math.round(performance.timeOrigin + performance.now());
  const low32 = (ms) => ms % 4294967296;

  const allPCs = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config = {}, ...rest) {
      const mode = window.pwnTransport || 'udp';
      if (mode === 'ice-tcp') config = { ...config, iceServers: [] };
      if (mode === 'turn-tcp' || mode === 'turn-tls') {
        const keep = mode === 'turn-tcp' ? /^turn:.*transport=tcp/ : /^turns:/;
        const servers = [];
        for (const s of config.iceServers || []) {
          const urls = [].concat(s.urls || s.url || []).filter((u) => keep.test(u));
          if (urls.length) servers.push({ ...s, urls });
        }
        config = { ...config, iceServers: servers, iceTransportPolicy: 'relay' };
      }
      super(config, ...rest);
      allPCs.push(this);
    }
  };

  const checkByte = (t) => ((t & 255) ^ ((t >>> 8) & 255) ^ ((t >>> 16) & 255) ^ ((t >>> 24) & 255) ^ 0xa5) & 255;

  // paintCode draws t (ms, low 32 bits) and its check byte as blocks over the top of the canvas.
  function paintCode(ctx, w, h, t) {
    const bw = w / COLS, bh = (h * STRIP) / ROWS, c = checkByte(t);
    for (let i = 0; i < BITS; i++) {
      const bit = i < 32 ? (t >>> (31 - i)) & 1 : (c >>> (39 - i)) & 1;
      ctx.fillStyle = bit ? '#fff' : '#000';
      ctx.fillRect((i % COLS) * bw, Math.floor(i / COLS) * bh, bw, bh);
    }
  }

  // readCode reads the code from the top of a video frame; null when the check fails (a frame
  // damaged by loss or blurred beyond reading).
  const reader = document.createElement('canvas');
  reader.width = COLS * 8; reader.height = ROWS * 8;
  const rctx = reader.getContext('2d', { willReadFrequently: true });
  function readCode(video) {
    const vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) return null;
    rctx.drawImage(video, 0, 0, vw, vh * STRIP, 0, 0, reader.width, reader.height);
    const px = rctx.getImageData(0, 0, reader.width, reader.height).data;
    let t = 0, c = 0;
    for (let i = 0; i < BITS; i++) {
      const x = (i % COLS) * 8 + 4, y = Math.floor(i / COLS) * 8 + 4, o = (y * reader.width + x) * 4;
      const bit = (px[o] + px[o + 1] + px[o + 2]) / 3 > 127 ? 1 : 0;
      if (i < 32) t = (t * 2 + bit) >>> 0; else c = (c << 1) | bit;
    }
    return checkByte(t) === c ? t : null;
  }

  const state = { role: null, session: null, publisher: null, subs: [], samples: [], frames: [], events: [], lastCode: null };
  const note = (type, extra) => { if (state.events.length < 200) state.events.push({ type, at: Date.now(), ...extra }); };
  window.addEventListener('error', (e) => note('error', { message: String(e.message) }));

  async function connect(token, name) {
    const OV = new OpenVidu();
    OV.enableProdMode();
    const session = OV.initSession();
    state.session = session;
    session.on('sessionDisconnected', (e) => note('sessionDisconnected', { reason: e.reason }));
    session.on('streamDestroyed', (e) => note('streamDestroyed', { reason: e.reason }));
    session.on('reconnecting', () => note('reconnecting'));
    session.on('reconnected', () => note('reconnected'));
    session.on('exception', (e) => note('exception', { name: e.name, message: e.message }));
    return { OV, session, connected: session.connect(token, { clientData: name }) };
  }

  // capture is the publisher's capture size, window.pwnCapture ('WxH', set by the runner) or 640x480.
  // 'WxH/L1T3' also has the publisher ask for that scalability mode on every simulcast encoding in
  // place of the stock client's 'L1T1' (openvidu-browser 2.32.2 hard-codes it; the temporal layers
  // of Chrome's own default are what the server's half-rate rungs use): not the stock client.
  const capture = () => { const [w, h] = (window.pwnCapture || '640x480').split('/')[0].split('x').map(Number); return { w, h }; };
  const scalability = (window.pwnCapture || '').split('/')[1];
  if (scalability) {
    const add = RTCPeerConnection.prototype.addTransceiver;
    RTCPeerConnection.prototype.addTransceiver = function (track, init) {
      for (const e of init?.sendEncodings || []) if (e.scalabilityMode) e.scalabilityMode = scalability;
      return add.call(this, track, init);
    };
  }

  // codedCanvasTrack is the publisher's video: the fake camera at the capture size with the time
  // painted on.
  async function codedCanvasTrack() {
    const { w, h } = capture();
    const cam = await navigator.mediaDevices.getUserMedia({ video: { width: w, height: h, frameRate: 30 } });
    const camVideo = document.createElement('video');
    camVideo.muted = true; camVideo.srcObject = cam; await camVideo.play();
    const canvas = document.createElement('canvas');
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext('2d');
    const paint = () => {
      ctx.drawImage(camVideo, 0, 0, canvas.width, canvas.height);
      paintCode(ctx, canvas.width, canvas.height, low32(wallNow()));
    };
    paint();
    setInterval(paint, 1000 / 30);
    return canvas.captureStream(30).getVideoTracks()[0];
  }

  // publish joins and publishes the coded canvas (the capture size, 30 fps) with the fake microphone.
  async function publish(token) {
    state.role = 'publisher';
    const { OV, session, connected } = await connect(token, 'publisher');
    await connected;
    const track = await codedCanvasTrack();
    const pub = await OV.initPublisherAsync(undefined, { videoSource: track, resolution: `${capture().w}x${capture().h}`, frameRate: 30, insertMode: 'APPEND', mirror: false });
    await session.publish(pub);
    state.publisher = pub;
    setInterval(sample, 1000);
    return session.connection.connectionId;
  }

  // LiveKit, for the side-by-side bench: the same canvas and microphone with livekit-client's
  // defaults (simulcast on, adaptiveStream off so the server alone picks the layer), and
  // subscribers that attach every track they get.
  async function lkRoom(url, token) {
    const LK = window.LivekitClient;
    const room = new LK.Room({ adaptiveStream: false, dynacast: true });
    room.on(LK.RoomEvent.Disconnected, (reason) => note('sessionDisconnected', { reason: String(reason) }));
    room.on(LK.RoomEvent.Reconnecting, () => note('reconnecting'));
    room.on(LK.RoomEvent.Reconnected, () => note('reconnected'));
    state.lk = room;
    await room.connect(url, token);
    return room;
  }

  async function lkPublish(url, token) {
    state.role = 'publisher';
    const LK = window.LivekitClient;
    const room = await lkRoom(url, token);
    const track = await codedCanvasTrack();
    await room.localParticipant.publishTrack(track, { source: LK.Track.Source.Camera, simulcast: true });
    const mic = await LK.createLocalAudioTrack();
    await room.localParticipant.publishTrack(mic);
    state.lkPublishing = true;
    setInterval(sample, 1000);
    return room.localParticipant.identity;
  }

  async function lkSubscribe(url, token) {
    state.role = 'subscriber';
    const LK = window.LivekitClient;
    const LKRoom = LK.Room;
    const room = new LKRoom({ adaptiveStream: false, dynacast: true });
    room.on(LK.RoomEvent.Disconnected, (reason) => note('sessionDisconnected', { reason: String(reason) }));
    room.on(LK.RoomEvent.TrackSubscribed, (track) => {
      const el = track.attach();
      if (track.kind === 'video') { el.width = 640; el.height = 480; el.muted = true; watchFrames(el); }
      document.getElementById('videos').appendChild(el);
    });
    state.lk = room;
    setInterval(sample, 1000);
    await room.connect(url, token);
    return room.localParticipant.identity;
  }

  // subscribe joins without publishing and subscribes to every stream; resolves once connected.
  async function subscribe(token, name) {
    state.role = 'subscriber';
    const { session, connected } = await connect(token, name);
    session.on('streamCreated', (e) => {
      const sub = session.subscribe(e.stream, 'videos');
      state.subs.push(sub);
      sub.on('videoElementCreated', (ev) => watchFrames(ev.element));
    });
    setInterval(sample, 1000);
    await connected;
    return session.connection.connectionId;
  }

  // watchFrames reads the time code of every frame the <video> presents.
  function watchFrames(video) {
    if (!video.requestVideoFrameCallback) { note('error', { message: 'no requestVideoFrameCallback' }); return; }
    const onFrame = () => {
      const now = wallNow();
      const t = readCode(video);
      if (t !== null) {
        const latency = (low32(now) - t + 4294967296) % 4294967296;
        state.lastCode = { at: now, latency };
        if (state.frames.length < 20000) state.frames.push([now, latency, video.videoWidth, video.videoHeight]);
      } else if (state.frames.length < 20000) {
        state.frames.push([now, null, video.videoWidth, video.videoHeight]);
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  const pick = (s, keys) => Object.fromEntries(keys.filter((k) => s[k] !== undefined).map((k) => [k, s[k]]));
  const VIDEO_IN = ['bytesReceived', 'packetsReceived', 'packetsLost', 'framesDecoded', 'framesDropped', 'framesReceived', 'freezeCount',
    'totalFreezesDuration', 'pauseCount', 'totalPausesDuration', 'frameWidth', 'frameHeight', 'framesPerSecond', 'nackCount', 'pliCount',
    'firCount', 'keyFramesDecoded', 'jitterBufferDelay', 'jitterBufferEmittedCount'];
  const AUDIO_IN = ['bytesReceived', 'packetsReceived', 'packetsLost', 'concealedSamples', 'silentConcealedSamples', 'totalSamplesReceived',
    'concealmentEvents', 'insertedSamplesForDeceleration', 'removedSamplesForAcceleration'];
  const VIDEO_OUT = ['bytesSent', 'packetsSent', 'retransmittedBytesSent', 'framesEncoded', 'keyFramesEncoded', 'pliCount', 'firCount', 'nackCount',
    'frameWidth', 'frameHeight', 'framesPerSecond', 'qualityLimitationReason', 'targetBitrate'];

  async function pathOf(stats) {
    let pair = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId) || pair; });
    if (!pair) return null;
    const l = stats.get(pair.localCandidateId) || {};
    const kind = l.candidateType === 'relay' ? `turn-${l.relayProtocol || '?'}` : l.protocol === 'tcp' ? 'ice-tcp' : l.protocol;
    return { kind, local: `${l.candidateType} ${l.protocol}${l.relayProtocol ? '/' + l.relayProtocol : ''}`, rtt: pair.currentRoundTripTime ?? null };
  }

  // receivingPCs: the subscription's peer connection (openvidu-browser has one per subscription);
  // with LiveKit, every peer connection of the page.
  const receivingPCs = () => {
    if (state.lk) return allPCs;
    const sub = state.subs[0];
    const pc = sub && sub.stream.getRTCPeerConnection && sub.stream.getRTCPeerConnection();
    return pc ? [pc] : [];
  };
  const sendingPCs = () => {
    if (state.lk) return state.lkPublishing ? allPCs : [];
    const pc = state.publisher && state.publisher.stream.getRTCPeerConnection();
    return pc ? [pc] : [];
  };

  // inbound reads the video and audio inbound-rtp of the page (the busiest of each kind).
  async function inbound() {
    const out = { video: null, audio: null, path: null, ice: null };
    for (const pc of receivingPCs()) {
      const stats = await pc.getStats();
      let got = false;
      stats.forEach((s) => {
        if (s.type !== 'inbound-rtp' || (s.kind !== 'video' && s.kind !== 'audio')) return;
        const keys = s.kind === 'video' ? VIDEO_IN : AUDIO_IN;
        if (!out[s.kind] || (s.bytesReceived || 0) > (out[s.kind].bytesReceived || 0)) out[s.kind] = pick(s, keys);
        got = true;
      });
      if (got || !out.path) { out.path = await pathOf(stats); out.ice = pc.iceConnectionState; }
    }
    return out;
  }

  // outbound sums the publisher's video outbound-rtp (one per simulcast layer), and keeps each
  // layer's own (layers: rid, height, fps, bytes, why the encoder is limited) and Chrome's send-side
  // estimate (availableOutgoingBitrate of the selected pair).
  async function outbound() {
    let pub = null, path = null;
    const layers = [];
    let aob = null;
    for (const pc of sendingPCs()) {
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate !== undefined) aob = s.availableOutgoingBitrate;
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
        const x = pick(s, VIDEO_OUT);
        layers.push({ rid: s.rid ?? null, h: s.frameHeight ?? 0, fps: s.framesPerSecond ?? 0, bytes: s.bytesSent || 0, qlr: s.qualityLimitationReason ?? null,
          active: s.active ?? null, nack: s.nackCount || 0, pli: s.pliCount || 0 });
        if (!pub) { pub = x; return; }
        for (const k of ['bytesSent', 'packetsSent', 'retransmittedBytesSent', 'keyFramesEncoded', 'pliCount', 'firCount', 'nackCount']) pub[k] = (pub[k] || 0) + (x[k] || 0);
        for (const k of ['frameWidth', 'frameHeight', 'framesEncoded', 'framesPerSecond']) pub[k] = Math.max(pub[k] || 0, x[k] || 0);
      });
      path = path || await pathOf(stats);
    }
    if (pub) { pub.layers = layers; pub.aob = aob; }
    return { pub, path };
  }

  let sampling = false;
  async function sample() {
    if (sampling) return; // a getStats slower than a second must not pile up
    sampling = true;
    try {
      const out = { at: Date.now() };
      if (state.role === 'publisher') {
        const o = await outbound();
        if (o.pub) out.pub = o.pub;
        out.path = o.path;
      } else {
        const i = await inbound();
        if (i.video) out.video = i.video;
        if (i.audio) out.audio = i.audio;
        out.path = i.path;
        out.ice = i.ice;
      }
      if (state.lastCode) out.age = out.at - state.lastCode.at + state.lastCode.latency; // how far behind real time the picture is
      state.samples.push(out);
    } catch (e) {
      note('error', { message: `getStats: ${e && e.message}` });
    } finally {
      sampling = false;
    }
  }

  // decoding tells whether the page has decoded video and received audio.
  async function decoding() {
    const i = await inbound();
    return (i.video?.framesDecoded || 0) > 0 && (i.audio?.bytesReceived || 0) > 0;
  }

  // sendEstimate is the publisher's send-side estimate now, in kbit/s (null before it has one).
  async function sendEstimate() {
    const { pub } = await outbound();
    return pub?.aob == null ? null : pub.aob / 1000;
  }

  async function leave() {
    if (state.lk) { await Promise.race([state.lk.disconnect(), new Promise((r) => setTimeout(r, 3000))]); return; }
    if (!state.session) return;
    const left = new Promise((r) => state.session.on('sessionDisconnected', r));
    try { state.session.disconnect(); } catch { /* already gone */ }
    await Promise.race([left, new Promise((r) => setTimeout(r, 3000))]);
  }

  window.pwn = {
    publish, subscribe, lkPublish, lkSubscribe, decoding, sendEstimate, leave,
    results: () => ({ role: state.role, samples: state.samples, frames: state.frames, events: state.events }),
  };
})();
