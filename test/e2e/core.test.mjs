// Issue 2's browser end-to-end tests: an application written against OpenVidu 2 — backend on
// openvidu-node-client@2.32.2, page on openvidu-browser@2.32.2, both unmodified — runs against
// Parley, and its users see and hear each other.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startParley, startPages, launch, openParticipant, waitDecoding, waitEvent, poll, outputDir, mediaStats } from './lib.mjs';

let parley, pages, browser;
const opened = [];

before(async () => {
  parley = await startParley('core');
  pages = await startPages();
  browser = await launch();
});

// Each test closes its pages, so the next one (and the time-to-first-frame measurement) does not
// share this 2-core machine with the previous test's browsers.
afterEach(async () => {
  for (const p of opened.splice(0)) await p.context.close().catch(() => {});
});

after(async () => {
  await browser?.close();
  await pages?.close();
  const code = await parley?.stop();
  assert.equal(code, 0, `parley must exit 0 on SIGTERM (log: ${parley?.logPath})`);
});

async function enter(session, name, opts = {}) {
  const conn = await session.createConnection(opts.connection || {});
  const p = await openParticipant(browser, pages.url, conn.token, { name, ...opts });
  opened.push(p);
  return p;
}

test('two participants see and hear each other, signal, and show in REST', async () => {
  const session = await parley.ov.createSession({ customSessionId: 'two-users' });
  const a = await enter(session, 'alice');
  const b = await enter(session, 'bob');
  await waitDecoding(a, [b.id]);
  await waitDecoding(b, [a.id]);

  await a.page.evaluate(() => window.session.signal({ data: 'hello bob', type: 'chat' }));
  const got = await waitEvent(b, 'signal:chat', { data: 'hello bob' });
  assert.equal(got.from, a.id);

  await session.fetch();
  assert.equal(session.activeConnections.length, 2);
  for (const c of session.activeConnections) {
    assert.equal(c.publishers.length, 1, `${c.connectionId} publishes one stream`);
    assert.equal(c.subscribers.length, 1, `${c.connectionId} subscribes to the other`);
  }
  for (const p of [a, b]) assert.deepEqual(p.consoleErrors.filter((e) => !/favicon/.test(e)), [], `console errors on ${p.id}`);

  // SRTP with AEAD-AES-128-GCM on every PeerConnection, publisher and subscriber: about five
  // times cheaper per forwarded packet than Chromium's own choice (AES-CM + HMAC-SHA1), which it
  // makes whenever it is the DTLS server.
  for (const p of [a, b]) {
    const ciphers = await p.page.evaluate(async () => {
      const pcs = [window.publisher, ...window.subscribers].map((x) => x.stream.getRTCPeerConnection());
      const out = [];
      for (const pc of pcs) (await pc.getStats()).forEach((st) => { if (st.type === 'transport') out.push(st.srtpCipher); });
      return out;
    });
    assert.deepEqual(ciphers, ['SRTP_AEAD_AES_128_GCM', 'SRTP_AEAD_AES_128_GCM'], `SRTP ciphers on ${p.id}`);
  }

  // The SFU's RTCP sender reports reach the subscriber (Chromium uses them for lip sync and shows
  // them as remote-outbound-rtp): one per kind, counting what was sent, on the track's own SSRC.
  for (const p of [a, b]) {
    const remote = await p.page.evaluate(async () => {
      const pc = window.subscribers[0].stream.getRTCPeerConnection();
      for (const until = Date.now() + 10000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
        const inbound = {}, out = {};
        (await pc.getStats()).forEach((st) => {
          if (st.type === 'inbound-rtp') inbound[st.kind] = st;
          if (st.type === 'remote-outbound-rtp') out[st.kind] = st;
        });
        const ready = ['audio', 'video'].every((k) => out[k] && out[k].reportsSent > 0 && out[k].packetsSent > 0);
        if (ready) {
          return ['audio', 'video'].map((k) => ({ kind: k, same: out[k].ssrc === inbound[k].ssrc, sent: out[k].packetsSent, got: inbound[k].packetsReceived }));
        }
      }
      return null;
    });
    assert.ok(remote, `no sender reports on ${p.id}'s subscriber`);
    for (const r of remote) assert.ok(r.same && r.sent > 0 && r.got > 0, `sender report for ${r.kind} on ${p.id}: ${JSON.stringify(r)}`);
  }
});

test('REST forceUnpublish and forceDisconnect give the right events and reasons on both sides', async () => {
  const session = await parley.ov.createSession({ customSessionId: 'force' });
  const a = await enter(session, 'alice');
  const b = await enter(session, 'bob');
  await waitDecoding(b, [a.id]);
  await session.fetch();
  const aConn = session.activeConnections.find((c) => c.connectionId === a.id);

  await session.forceUnpublish(aConn.publishers[0]);
  await waitEvent(a, 'publisherStreamDestroyed', { reason: 'forceUnpublishByServer' });
  await waitEvent(b, 'streamDestroyed', { reason: 'forceUnpublishByServer', connectionId: a.id });

  await session.forceDisconnect(a.id);
  await waitEvent(a, 'sessionDisconnected', { reason: 'forceDisconnectByServer' });
  await waitEvent(b, 'connectionDestroyed', { reason: 'forceDisconnectByServer', connectionId: a.id });
  await session.fetch();
  assert.deepEqual(session.activeConnections.map((c) => c.connectionId), [b.id]);
});

test('Publisher.subscribeToRemote(): the publisher plays its own stream back through the server', async () => {
  const session = await parley.ov.createSession({ customSessionId: 'loopback' });
  const a = await enter(session, 'alice', { publish: false });
  await a.page.evaluate(async () => {
    const pub = await window.OV.initPublisherAsync('videos', { resolution: '640x480', frameRate: 30 });
    pub.subscribeToRemote(); // doLoopback: true; Kurento sent the stream back on the same connection
    pub.on('streamPlaying', () => window.events.push({ type: 'publisherStreamPlaying' }));
    await window.session.publish(pub);
    window.publisher = pub;
  });
  await waitEvent(a, 'publisherStreamPlaying');
  // What plays is the remote copy: the tracks the PeerConnection receives, decoded.
  const loop = await poll('the publisher to decode its own stream from the server', () => a.page.evaluate(async () => {
    const pub = window.publisher;
    const pc = pub.stream.getRTCPeerConnection();
    const received = pc.getReceivers().map((r) => r.track.id);
    const shown = pub.stream.getMediaStream().getTracks().map((t) => t.id);
    const r = { sendrecv: pc.getTransceivers().every((t) => t.currentDirection === 'sendrecv'),
      showsRemote: shown.length === 2 && shown.every((id) => received.includes(id)), framesDecoded: 0, audioBytes: 0 };
    (await pc.getStats()).forEach((st) => {
      if (st.type === 'inbound-rtp' && st.kind === 'video') r.framesDecoded += st.framesDecoded || 0;
      if (st.type === 'inbound-rtp' && st.kind === 'audio') r.audioBytes += st.bytesReceived || 0;
    });
    return r.framesDecoded > 0 && r.audioBytes > 0 ? r : false;
  }));
  assert.ok(loop.sendrecv, 'the publisher connection is sendrecv');
  assert.ok(loop.showsRemote, 'the publisher shows the tracks it receives, not its camera');
  // Others subscribe to the stream as to any other.
  const b = await enter(session, 'bob', { publish: false });
  await waitDecoding(b, [a.id]);
  assert.deepEqual(a.consoleErrors.filter((e) => !/favicon/.test(e)), [], 'console errors on the publisher');
});

test('WHIP: a browser publishing over WHIP with a connection token is decoded by a stock client', async () => {
  const session = await parley.ov.createSession({ customSessionId: 'whip' });
  const conn = await session.createConnection();
  const context = await browser.newContext();
  opened.push({ context });
  const page = await context.newPage();
  await page.goto(pages.url); // another origin than Parley's: the WHIP calls are cross-origin, as from a web encoder
  const res = await page.evaluate(async ({ endpoint, token }) => {
    const pc = new RTCPeerConnection();
    window.whipPC = pc;
    const ms = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    for (const t of ms.getTracks()) pc.addTransceiver(t, { direction: 'sendonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((done) => {
      if (pc.iceGatheringState === 'complete') done();
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') done(); };
    });
    const resp = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` }, body: pc.localDescription.sdp });
    const answer = await resp.text();
    if (resp.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    return { status: resp.status, location: resp.headers.get('Location'), answer };
  }, { endpoint: `${parley.url}/openvidu/whip`, token: conn.token });
  assert.equal(res.status, 201, `WHIP POST: ${res.answer}`);
  assert.match(res.location, /^\/openvidu\/whip\/[0-9a-f]{32}$/);
  const viewer = await enter(session, 'viewer', { publish: false });
  await waitDecoding(viewer, [conn.connectionId]);
  // DELETE of the resource: the viewer sees the publisher leave.
  const status = await page.evaluate(async ({ url, token }) => (await fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } })).status,
    { url: parley.url + res.location, token: conn.token });
  assert.equal(status, 200);
  await waitEvent(viewer, 'connectionDestroyed', { connectionId: conn.connectionId, reason: 'disconnect' });
});

test('closing the session disconnects everyone and fetch() then fails with 404', async () => {
  const session = await parley.ov.createSession({ customSessionId: 'closing' });
  const a = await enter(session, 'alice');
  const b = await enter(session, 'bob', { publish: false });
  await waitDecoding(b, [a.id]);
  await session.close();
  await waitEvent(a, 'sessionDisconnected', { reason: 'sessionClosedByServer' });
  await waitEvent(b, 'sessionDisconnected', { reason: 'sessionClosedByServer' });
  await assert.rejects(session.fetch(), (e) => e.message === '404');
});

test('reconnectStream of a publisher: its subscriber goes on decoding the new stream and hearing it', async () => {
  const session = await parley.ov.createSession({ customSessionId: 'republish' });
  const alice = await enter(session, 'alice');
  const bob = await enter(session, 'bob', { publish: false });
  const first = (await waitDecoding(bob, [alice.id])).find((s) => s.from === alice.id);
  await alice.page.evaluate(() => window.publisher.stream.reconnect());
  // Both counters must move well past where they were: the new track's packets continue the
  // subscriber's stream instead of looking like old ones.
  await poll('bob to decode and hear the reconnected publisher', async () => {
    const s = (await mediaStats(bob)).find((x) => x.from === alice.id);
    return s && s.framesDecoded > first.framesDecoded + 60 && s.audioBytes > first.audioBytes + 20000;
  }, { timeout: 30000 });
});

test('four participants: everyone decodes everyone (12 subscriptions)', async () => {
  const session = await parley.ov.createSession({ customSessionId: 'four' });
  const ps = [];
  for (const name of ['ann', 'ben', 'cat', 'dan']) ps.push(await enter(session, name));
  for (const p of ps) await waitDecoding(p, ps.filter((q) => q !== p).map((q) => q.id), 45000);
  await session.fetch();
  const subs = session.activeConnections.reduce((n, c) => n + c.subscribers.length, 0);
  assert.equal(subs, 12);
});

test('time from connect() to the first decoded remote frame (measured, not asserted)', async () => {
  const session = await parley.ov.createSession({ customSessionId: 'ttff' });
  await enter(session, 'publisher');
  const times = [];
  for (let i = 0; i < 10; i++) {
    const conn = await session.createConnection();
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(pages.url);
    const ms = await page.evaluate(async (token) => {
      const OV = new OpenVidu();
      OV.enableProdMode();
      const s = OV.initSession();
      const first = new Promise((resolve) => s.on('streamCreated', (e) => {
        const sub = s.subscribe(e.stream, 'videos');
        sub.on('videoElementCreated', (ev) => ev.element.requestVideoFrameCallback(() => resolve(performance.now())));
      }));
      const t0 = performance.now();
      await s.connect(token);
      const t1 = await Promise.race([first, new Promise((r) => setTimeout(() => r(-1), 15000))]);
      s.disconnect();
      return t1 < 0 ? -1 : t1 - t0;
    }, conn.token);
    await context.close();
    assert.ok(ms > 0, `join ${i}: no remote frame within 15 s`);
    times.push(ms);
  }
  const sorted = [...times].sort((x, y) => x - y);
  const result = { joins: sorted.length, medianMs: Math.round((sorted[4] + sorted[5]) / 2), p95Ms: Math.round(sorted[9]), allMs: times.map(Math.round) };
  writeFileSync(join(outputDir, 'ttff.json'), JSON.stringify(result, null, 2));
  console.log(`time to first frame over ${result.joins} joins: median ${result.medianMs} ms, max ${result.p95Ms} ms`);
});
