// /test: the device test (five seconds recorded *through the server* and played back, the
// OpenMeetings "test setup" flow) and the network test (which transports reach the server).

import * as api from './api.js';
import { hydrateIcons, icon } from './icons.js';
import { LevelMeter, stopStream } from './media.js';
import { runProbe, PROBES } from './netcheck.js';
import { pathName, selectedPair } from './stats.js';
import { $, sdk, withTimeout } from './ui.js';

const RECORD_MS = 5000;

// ---- results list ----

function result(list, kind, what, detail) {
  const li = document.createElement('li');
  li.dataset.result = kind;
  const i = icon(kind === 'ok' ? 'check' : kind === 'bad' ? 'cross' : 'warn');
  i.classList.add(kind);
  const body = document.createElement('div');
  const w = document.createElement('div');
  w.className = 'what';
  w.textContent = what;
  const d = document.createElement('div');
  d.className = 'detail';
  d.textContent = detail;
  body.append(w, d);
  const sr = document.createElement('span');
  sr.className = 'sr-only';
  sr.textContent = kind === 'ok' ? 'Passed: ' : kind === 'bad' ? 'Problem: ' : 'Note: ';
  li.append(i, sr, body);
  list.append(li);
}

function status(msg) { $('dev-status').textContent = msg; }

// ---- device test ----

async function deviceTest() {
  const btn = $('dev-start');
  btn.disabled = true;
  const card = $('device-card');
  card.dataset.state = 'running';
  const list = $('dev-results');
  list.replaceChildren();
  $('dev-playback').removeAttribute('src');
  const live = $('dev-live');
  let pubSession, loopSession, publisher, meter, recorder;
  const cleanup = () => {
    meter?.stop();
    // The publisher leaves first, so the loopback participant hears about a connection it knows.
    try { pubSession?.disconnect(); } catch { /* gone */ }
    try { loopSession?.disconnect(); } catch { /* gone */ }
    stopStream(publisher?.stream?.getMediaStream());
    live.srcObject = null;
    $('dev-idle').hidden = false;
  };
  try {
    const OpenVidu = sdk();
    status('Asking the server for a private test room…');
    const toks = await api.deviceTest();

    status('Starting your camera and microphone…');
    const OV1 = new OpenVidu();
    OV1.enableProdMode();
    try {
      publisher = await OV1.initPublisherAsync(undefined, { resolution: '640x480', frameRate: 30, mirror: false });
    } catch (err) {
      throw new Error(api.mediaErrorText({ name: err?.name === 'DEVICE_ACCESS_DENIED' ? 'NotAllowedError' : err?.name === 'INPUT_VIDEO_DEVICE_NOT_FOUND' || err?.name === 'INPUT_AUDIO_DEVICE_NOT_FOUND' ? 'NotFoundError' : err?.name }));
    }
    const sent = publisher.stream.getMediaStream().getVideoTracks()[0]?.getSettings() || {};

    status('Sending them to the server…');
    pubSession = OV1.initSession();
    await pubSession.connect(toks.publisherToken);
    await pubSession.publish(publisher);

    // A second participant in the same private session subscribes to our stream: what it
    // receives has made the whole trip, browser → server → browser.
    status('Receiving them back from the server…');
    const OV2 = new OpenVidu();
    OV2.enableProdMode();
    loopSession = OV2.initSession();
    const created = new Promise((resolve) => loopSession.on('streamCreated', (e) => resolve(e.stream)));
    await loopSession.connect(toks.loopbackToken);
    const stream = await withTimeout(created, 10000, 'the server never announced your stream');
    const sub = loopSession.subscribe(stream, undefined);
    const playing = new Promise((resolve) => sub.on('streamPlaying', resolve));
    sub.addVideoElement(live);
    $('dev-idle').hidden = true;
    live.muted = true; // playing our own voice live would feed back into the microphone
    await withTimeout(playing, 15000, "your video did not come back from the server. Your network may block media: run the network test below");

    const back = sub.stream.getMediaStream();
    meter = new LevelMeter(back, $('dev-meter'));
    const mime = ['video/webm;codecs=vp8,opus', 'video/webm;codecs=vp8', 'video/webm'].find((m) => MediaRecorder.isTypeSupported(m));
    recorder = new MediaRecorder(back, mime ? { mimeType: mime } : undefined);
    const chunks = [];
    recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
    recorder.start(250);
    const t0 = performance.now();
    await new Promise((resolve) => {
      const tick = () => {
        const left = Math.ceil((RECORD_MS - (performance.now() - t0)) / 1000);
        if (left <= 0) return resolve();
        status(`Recording… ${left} s left. Say something and wave!`);
        setTimeout(tick, 250);
      };
      tick();
    });
    // What arrived, measured before we hang up.
    const pc = sub.stream.getRTCPeerConnection();
    const report = await pc.getStats();
    let frames = 0, fps = 0, w = live.videoWidth, h = live.videoHeight, audioBytes = 0;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        frames = s.framesDecoded || 0;
        fps = s.framesPerSecond || 0;
        w = s.frameWidth || w;
        h = s.frameHeight || h;
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') audioBytes = s.bytesReceived || 0;
    });
    const path = pathName(selectedPair(report));
    recorder.stop();
    await stopped;
    const peak = meter.peakDb;
    cleanup();

    const blob = new Blob(chunks, { type: recorder.mimeType || 'video/webm' });
    const pb = $('dev-playback');
    pb.src = URL.createObjectURL(blob);
    pb.dataset.bytes = String(blob.size);
    card.dataset.framesDecoded = String(frames);
    card.dataset.width = String(w);
    card.dataset.height = String(h);
    card.dataset.path = path;
    pb.play().catch(() => { /* the controls let the person start it */ });

    if (frames > 0 && w > 0) {
      result(list, 'ok', `Camera: ${w}×${h} received through the server${fps ? ` at ${Math.round(fps)} fps` : ''}`,
        `Your camera sends ${sent.width || '?'}×${sent.height || '?'}. The recording on the right is what others will see.`);
    } else {
      result(list, 'bad', 'Camera: no video came back', 'Check that no other app uses the camera, and run the network test below.');
    }
    if (peak > -50) {
      result(list, 'ok', `Microphone: working (loudest ${Math.round(peak)} dB)`, 'Play the recording to hear how you sound to others.');
    } else if (audioBytes > 0) {
      result(list, 'warn', 'Microphone: very quiet or muted', 'We received sound, but almost silent. Check the microphone is not muted, or pick another one in the lobby.');
    } else {
      result(list, 'bad', 'Microphone: no sound came back', 'Check your microphone is plugged in and allowed for this site.');
    }
    if (path) result(list, 'ok', `Path: ${path}`, 'How your media reached the server in this test.');
    status('Done. Play the recording to check picture and sound.');
    card.dataset.state = 'done';
  } catch (err) {
    recorder?.state === 'recording' && recorder.stop();
    cleanup();
    const msg = err instanceof api.AppError ? err.message : String(err?.message || err);
    result(list, 'bad', 'The test could not finish', msg.charAt(0).toUpperCase() + msg.slice(1));
    status('The test stopped.');
    card.dataset.state = 'failed';
    if (err?.code === 'login_required') showLogin();
  } finally {
    btn.disabled = false;
    btn.textContent = 'Run it again';
  }
}

// ---- network test ----

function renderRows() {
  const body = $('net-rows');
  body.replaceChildren();
  for (const p of PROBES) {
    const tr = document.createElement('tr');
    tr.dataset.probe = p.id;
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = p.name;
    const res = document.createElement('td');
    res.className = 'result wait';
    res.textContent = 'Not run';
    const what = document.createElement('td');
    what.className = 'muted';
    what.textContent = '';
    tr.append(th, res, what);
    body.append(tr);
  }
}

function setRow(id, kind, text, detail) {
  const tr = $('net-rows').querySelector(`tr[data-probe="${id}"]`);
  tr.dataset.result = kind;
  const res = tr.children[1];
  res.className = `result ${kind}`;
  res.replaceChildren();
  if (kind === 'ok' || kind === 'bad') res.append(icon(kind === 'ok' ? 'check' : 'cross'));
  res.append(text);
  tr.children[2].textContent = detail;
}

async function networkTest() {
  const btn = $('net-start');
  btn.disabled = true;
  const card = $('net-card');
  card.dataset.state = 'running';
  $('net-summary').hidden = true;
  renderRows();
  const results = {};
  try {
    // One at a time: in parallel they would compete for the same link and the fastest path would
    // hide a slow one's timeout.
    let server = [];
    for (const p of PROBES) {
      setRow(p.id, 'wait', 'Testing…', '');
      const { token } = await api.networkTest(); // a session per probe: the last to leave ends one
      const r = await runProbe(p, token, p.id.startsWith('turn') ? 15000 : 10000);
      results[p.id] = r;
      server = server.concat(r.server);
      if (r.skipped) setRow(p.id, 'na', 'Not offered', config.dev ? 'This server runs in development mode, without TLS, so it has no encrypted relay.' : r.detail);
      else if (r.ok) setRow(p.id, 'ok', r.rtt !== undefined ? `Works · ${r.rtt} ms` : 'Works', p.good);
      else if (p.id === 'turn-tls' && config.selfSignedCert) {
        setRow(p.id, 'bad', 'Blocked', 'Browsers refuse the encrypted relay of a server with a self-signed certificate. Its operator should install a real one (CERTIFICATE_TYPE=letsencrypt or owncert).');
      } else setRow(p.id, 'bad', 'Blocked', `${p.bad} ${r.detail}`);
    }
    summarize(results, server);
    card.dataset.state = 'done';
  } catch (err) {
    const s = $('net-summary');
    s.className = 'summary bad';
    s.textContent = err.message;
    s.hidden = false;
    card.dataset.state = 'failed';
    if (err?.code === 'login_required') showLogin();
  } finally {
    btn.disabled = false;
    btn.textContent = 'Run it again';
  }
}

function summarize(r, server) {
  const s = $('net-summary');
  s.replaceChildren();
  const host = location.hostname;
  const httpsPort = location.port || (location.protocol === 'https:' ? '443' : '80');
  const udp = server.find((c) => c.protocol === 'udp')?.port;
  const tcp = server.find((c) => c.protocol === 'tcp')?.port || httpsPort;
  const p = (t) => { const e = document.createElement('p'); e.textContent = t; return e; };
  let cls, head;
  if (r.udp?.ok) {
    cls = 'good';
    head = 'Your network is good for calls: media flows directly over UDP.';
  } else if (r.tcp?.ok) {
    cls = 'fair';
    head = 'Calls will work, over TCP. UDP is blocked, so video may stutter a little more when the network is busy.';
  } else if (r['turn-tls']?.ok || r['turn-tcp']?.ok) {
    cls = 'fair';
    head = 'Calls will work through the server\'s relay. Direct paths are blocked, which adds a little delay.';
  } else {
    cls = 'bad';
    head = 'Media cannot reach this server from your network, so calls would connect but show no video or sound.';
  }
  s.className = `summary ${cls}`;
  s.dataset.verdict = cls;
  const strong = document.createElement('strong');
  strong.textContent = head;
  s.append(strong);
  if (cls === 'bad' || (cls === 'fair' && !r.udp?.ok)) {
    s.append(p(cls === 'bad'
      ? 'Ask your network or IT team to allow outgoing traffic from your computer to this server, ideally all of:'
      : 'For the best quality, ask your network or IT team to allow outgoing traffic to this server:'));
    const ul = document.createElement('ul');
    const li = (t) => { const e = document.createElement('li'); e.textContent = t; ul.append(e); };
    li(`UDP to ${host}, port ${udp || httpsPort} (media, best quality);`);
    li(`TCP to ${host}, port ${tcp} (media over TCP, and the relay);`);
    li(`and not to inspect or break TLS connections to ${host}:${httpsPort} (the encrypted relay looks like HTTPS).`);
    s.append(ul);
    if (cls === 'bad') s.append(p('If you are on a guest or hotel network, try another network or your phone\'s hotspot.'));
  }
  s.hidden = false;
}

// ---- sign-in (private servers) ----

function showLogin() {
  $('login-card').hidden = false;
  $('login-user').focus();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const err = $('login-error');
  err.hidden = true;
  try {
    await api.login($('login-user').value.trim(), $('login-pass').value);
    $('login-card').hidden = true;
    $('dev-start').focus();
  } catch (ex) {
    err.textContent = ex.message;
    err.hidden = false;
  }
});

$('dev-start').addEventListener('click', deviceTest);
$('net-start').addEventListener('click', networkTest);
hydrateIcons();
renderRows();
let config = {};
api.getConfig().then((c) => {
  config = c;
  if (c.private && !c.user) showLogin();
  if (!c.builtIn) document.querySelector('a[href="/"]')?.parentElement?.remove();
}).catch((err) => {
  status(err.message);
});
