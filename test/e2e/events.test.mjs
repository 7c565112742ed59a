// Issue 6's browser end-to-end test: what an operator's systems see of a two-person call made with
// the stock openvidu-browser@2.32.2 pages and an openvidu-node-client@2.32.2 backend — the webhook
// receiver gets OpenVidu's exact event sequence, signed, and loses nothing while it is down for
// 5 s; the CDR file holds the same events; /metrics exposes the counters and they move; the log
// has a line per lifecycle step and no credential. A second server whose endpoint is gone for good
// counts its drops.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startParley, startPages, launch, openParticipant, mediaStats, waitDecoding, waitEvent, poll, freePort, outputDir } from './lib.mjs';

const SECRET = 'MY_SECRET';
const HOOK_HEADER = 'Bearer e2e-hook-credential-5309';
// webhook.DefaultKey: the hex HMAC-SHA256 of "parley-webhook" keyed with OPENVIDU_SECRET, as text
// (the README's openssl command).
const hookKey = createHmac('sha256', SECRET).update('parley-webhook').digest('hex');

// receiver is the operator's webhook endpoint. mode 'up' accepts (after checking the signature and
// the configured header), '503' answers Service Unavailable, 'refuse' has closed its socket so
// connections are refused.
async function startReceiver() {
  const port = await freePort();
  const r = { port, url: `http://127.0.0.1:${port}/parley-hook`, mode: 'up', events: [], ids: [], arrivals: [], n503: 0, problems: [] };
  const handle = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      if (r.mode !== 'up') { r.n503++; res.writeHead(503).end(); return; }
      const sig = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(req.headers['x-parley-signature'] || '');
      const want = sig && createHmac('sha256', hookKey).update(`${sig[1]}.`).update(raw).digest();
      if (!sig || !timingSafeEqual(Buffer.from(sig[2], 'hex'), want) || Math.abs(Date.now() / 1000 - Number(sig[1])) > 300) {
        r.problems.push(`bad signature ${req.headers['x-parley-signature']} on ${raw}`);
      }
      if (req.method !== 'POST' || req.headers['content-type'] !== 'application/json' || req.headers.authorization !== HOOK_HEADER) {
        r.problems.push(`request ${req.method} ${JSON.stringify(req.headers)}`);
      }
      r.ids.push(req.headers['x-parley-event-id']);
      r.events.push(JSON.parse(raw));
      r.arrivals.push(Date.now());
      res.writeHead(200).end();
    });
  };
  let srv;
  const listen = () => new Promise((res, rej) => { srv = createServer(handle); srv.once('error', rej); srv.listen(port, '127.0.0.1', res); });
  const close = () => new Promise((res) => { srv.close(res); srv.closeAllConnections(); });
  await listen();
  // outage: 503 for the first half, then nothing listening; up again after ms.
  r.outage = async (ms) => {
    r.mode = '503';
    r.outageStart = Date.now();
    await new Promise((res) => setTimeout(res, ms / 2));
    await close();
    r.mode = 'refuse';
    await new Promise((res) => setTimeout(res, ms / 2));
    await listen();
    r.mode = 'up';
    r.outageEnd = Date.now();
  };
  r.close = close;
  return r;
}

async function scrape(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

function cdrRecords(dir) {
  const out = [];
  for (const f of readdirSync(dir).filter((n) => /^CDR\.\d{4}-\d\d-\d\d_\d+\.log$/.test(n)).sort()) {
    for (const l of readFileSync(join(dir, f), 'utf8').split('\n')) if (l) out.push(JSON.parse(l));
  }
  return out;
}

async function publish(p) {
  await p.page.evaluate(async () => {
    const pub = await window.OV.initPublisherAsync(undefined, { resolution: '640x480', frameRate: 30 });
    await window.session.publish(pub);
    window.publisher = pub;
  });
}

// relayOnly makes a page's peer connections use TURN relays only (iceTransportPolicy "relay"), as
// for a participant behind a firewall that lets nothing but TCP through: its media then goes
// through the embedded TURN, whose counters /metrics must show.
const relayOnly = () => {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function RTCPeerConnection(cfg, ...rest) { return new Native({ ...(cfg || {}), iceTransportPolicy: 'relay' }, ...rest); };
  window.RTCPeerConnection.prototype = Native.prototype;
};

const streamIdOf = (p) => p.page.evaluate(() => window.publisher.stream.streamId);
const framesFrom = async (p, id) => (await mediaStats(p)).filter((s) => s.from === id).reduce((n, s) => n + s.framesDecoded, 0);

let hooks, cdrDir, metricsPort, parley, pages, browser;
const opened = [];

before(async () => {
  hooks = await startReceiver();
  cdrDir = mkdtempSync(join(tmpdir(), 'parley-events-cdr-'));
  parley = await startParley('events', {
    OPENVIDU_WEBHOOK: 'true', OPENVIDU_WEBHOOK_ENDPOINT: hooks.url,
    OPENVIDU_WEBHOOK_HEADERS: JSON.stringify([`Authorization: ${HOOK_HEADER}`]),
    OPENVIDU_CDR: 'true', OPENVIDU_CDR_PATH: cdrDir,
  }, { metrics: true });
  metricsPort = parley.metricsPort;
  pages = await startPages();
  browser = await launch();
});

after(async () => {
  for (const p of opened) await p.context.close().catch(() => {});
  await browser?.close();
  await pages?.close();
  const code = await parley?.stop();
  await hooks?.close().catch(() => {});
  if (cdrDir) rmSync(cdrDir, { recursive: true, force: true });
  assert.equal(code, 0, `parley must exit 0 on SIGTERM (log: ${parley?.logPath})`);
});

test('a two-person browser call: webhooks through a 5 s receiver outage, CDR, metrics, logs', async () => {
  const session = await parley.ov.createSession({ customSessionId: 'events-call' });
  const conns = { alice: await session.createConnection({ data: 'alice-server-data' }), bob: await session.createConnection({ data: 'bob-server-data' }) };
  const m0 = await scrape(metricsPort);

  // Alice joins and publishes; Bob, who reaches the server through TURN only, joins and
  // subscribes to her. Each step's webhook is awaited so the expected order is the order of the
  // actions.
  const a = await openParticipant(browser, pages.url, conns.alice.token, { name: 'alice' });
  opened.push(a);
  await poll('webrtcConnectionCreated of Alice', () => hooks.events.length >= 3);
  const b = await openParticipant(browser, pages.url, conns.bob.token, { name: 'bob', publish: false, initScript: relayOnly });
  opened.push(b);
  await waitDecoding(b, [a.id]);
  await poll('Bob\'s subscription webhook', () => hooks.events.length >= 5);

  // The receiver goes down for 5 s (503, then connection refused). Meanwhile Bob publishes, Alice
  // subscribes to him and signals, and the call must not notice.
  const outage = hooks.outage(5000);
  const framesBefore = await framesFrom(b, a.id);
  await publish(b);
  await waitDecoding(a, [b.id]);
  await a.page.evaluate(() => window.session.signal({ data: 'hello during the outage', type: 'chat' }));
  await waitEvent(b, 'signal:chat', { data: 'hello during the outage' });
  // A JSON-RPC error the SDK gets from the server (a PUBLISHER may not force a disconnect).
  const rpcError = await b.page.evaluate((target) => new Promise((res) => {
    window.session.openvidu.sendRequest('forceDisconnect', { connectionId: target }, (err) => res(err && err.code));
  }), a.id);
  assert.ok(Number.isInteger(rpcError), `forceDisconnect by a PUBLISHER must fail, got ${rpcError}`);
  const m1 = await scrape(metricsPort);
  await poll('frames still decoded while the receiver is down', async () => Date.now() > hooks.outageStart + 3000
    && await framesFrom(b, a.id) > framesBefore + 30);
  assert.equal(hooks.events.length, 5, 'no webhook can be delivered during the outage');
  await outage;
  const m2 = await scrape(metricsPort);
  const streams = { alice: await streamIdOf(a), bob: await streamIdOf(b) };
  await session.fetch();
  const rest = Object.fromEntries(session.activeConnections.map((c) => [c.connectionId, c]));

  await poll('the outage\'s webhooks to arrive', () => hooks.events.length >= 8, { timeout: 20000 });
  const framesAfter = await framesFrom(b, a.id);
  assert.ok(framesAfter > framesBefore, 'Bob kept decoding Alice');

  // Bob leaves, then Alice: the session ends.
  await b.page.evaluate(() => window.session.disconnect());
  await waitEvent(a, 'connectionDestroyed', { connectionId: b.id, reason: 'disconnect' });
  await a.page.evaluate(() => window.session.disconnect());
  await poll('sessionDestroyed', () => hooks.events.some((e) => e.event === 'sessionDestroyed'), { timeout: 20000 });

  // ---- the exact webhook sequence (protocol note §11.3) ----
  const ev = hooks.events;
  const sessionKeys = ['event', 'sessionId', 'uniqueSessionId', 'timestamp'];
  const endKeys = ['startTime', 'duration', 'reason'];
  const partKeys = [...sessionKeys, 'participantId', 'connectionId', 'location', 'ip', 'platform', 'clientData', 'serverData'];
  const rtcKeys = [...sessionKeys, 'streamId', 'participantId', 'connectionId', 'connection', 'videoSource', 'videoFramerate', 'videoDimensions', 'audioEnabled', 'videoEnabled'];
  const who = (p, name) => ({ participantId: p.id, connectionId: p.id, location: 'unknown', ip: rest[p.id].ip, platform: rest[p.id].platform,
    clientData: JSON.stringify({ clientData: name }), serverData: `${name}-server-data` });
  const media = { videoSource: 'CAMERA', videoFramerate: 30, videoDimensions: JSON.stringify({ width: 640, height: 480 }), audioEnabled: true, videoEnabled: true };
  const outbound = (p, sid) => ({ ...media, streamId: sid, participantId: p.id, connectionId: p.id, connection: 'OUTBOUND' });
  const inbound = (p, from, sid) => ({ ...media, streamId: sid, participantId: p.id, connectionId: p.id, connection: 'INBOUND', receivingFrom: from.id });
  const bye = { reason: 'disconnect' };
  const want = [
    ['sessionCreated', sessionKeys, {}],
    ['participantJoined', partKeys, who(a, 'alice')],
    ['webrtcConnectionCreated', rtcKeys, outbound(a, streams.alice)],
    ['participantJoined', partKeys, who(b, 'bob')],
    ['webrtcConnectionCreated', [...rtcKeys, 'receivingFrom'], inbound(b, a, streams.alice)],
    // During the outage:
    ['webrtcConnectionCreated', rtcKeys, outbound(b, streams.bob)],
    ['webrtcConnectionCreated', [...rtcKeys, 'receivingFrom'], inbound(a, b, streams.bob)],
    ['signalSent', [...sessionKeys, 'from', 'to', 'type', 'data'], { from: a.id, type: 'chat', data: 'hello during the outage' }],
    // Bob leaves, in openvidu-server's order: the subscription to his stream, his subscription,
    // his stream, himself.
    ['webrtcConnectionDestroyed', [...rtcKeys, 'receivingFrom', ...endKeys], { ...inbound(a, b, streams.bob), ...bye }],
    ['webrtcConnectionDestroyed', [...rtcKeys, 'receivingFrom', ...endKeys], { ...inbound(b, a, streams.alice), ...bye }],
    ['webrtcConnectionDestroyed', [...rtcKeys, ...endKeys], { ...outbound(b, streams.bob), ...bye }],
    ['participantLeft', [...partKeys, ...endKeys], { ...who(b, 'bob'), ...bye }],
    ['webrtcConnectionDestroyed', [...rtcKeys, ...endKeys], { ...outbound(a, streams.alice), ...bye }],
    ['participantLeft', [...partKeys, ...endKeys], { ...who(a, 'alice'), ...bye }],
    ['sessionDestroyed', [...sessionKeys, ...endKeys], { reason: 'lastParticipantLeft' }],
  ];
  writeFileSync(join(outputDir, 'events.webhooks.json'), JSON.stringify(ev, null, 1));
  assert.deepEqual(hooks.problems, [], 'every request signed and carrying the configured header');
  assert.deepEqual(ev.map((e) => e.event), want.map((w) => w[0]), 'the exact OpenVidu event sequence, nothing lost, nothing twice');
  assert.equal(new Set(hooks.ids).size, hooks.ids.length, 'no event delivered twice');
  assert.equal(ev[0].timestamp, session.createdAt, 'sessionCreated is stamped with the session\'s createdAt');
  for (const [i, [name, keys, fields]] of want.entries()) {
    const e = ev[i];
    assert.deepEqual(Object.keys(e).sort(), [...keys].sort(), `fields of event ${i} (${name})`);
    assert.equal(e.sessionId, 'events-call', `sessionId of event ${i}`);
    assert.equal(e.uniqueSessionId, `events-call_${session.createdAt}`, `uniqueSessionId of event ${i}`);
    for (const [k, v] of Object.entries(fields)) assert.deepEqual(e[k], v, `${k} of event ${i} (${name})`);
    if (i > 0) assert.ok(e.timestamp >= ev[i - 1].timestamp, `event ${i} (${name}) is not older than the one before`);
  }
  assert.ok(/Chrom/.test(ev[1].platform) && /^(127\.0\.0\.1|::1)$/.test(ev[1].ip), `platform and ip of a browser: ${ev[1].platform} ${ev[1].ip}`);
  assert.deepEqual([...ev[7].to].sort(), [a.id, b.id].sort(), 'a signal to everyone reaches both');
  // Each end event starts where its start event was stamped; durations are whole seconds.
  for (const [end, start] of [[8, 6], [9, 4], [10, 5], [11, 3], [12, 2], [13, 1], [14, 0]]) {
    assert.equal(ev[end].startTime, ev[start].timestamp, `startTime of event ${end} (${ev[end].event})`);
    assert.equal(ev[end].duration, Math.floor((ev[end].timestamp - ev[end].startTime) / 1000), `duration of event ${end}`);
  }
  // Events stamped during the outage arrived after it, in order.
  const late = ev.map((e, i) => [e, hooks.arrivals[i]]).filter(([e]) => e.timestamp >= hooks.outageStart && e.timestamp < hooks.outageEnd);
  assert.ok(late.length >= 3 && late.every(([, t]) => t >= hooks.outageEnd), 'the outage\'s events were held back and delivered after it');

  // ---- the CDR holds the same events ----
  const recs = await poll('the CDR to hold every event', () => { const r = cdrRecords(cdrDir); return r.length >= ev.length && r; });
  assert.deepEqual(recs, ev.map(({ event, ...fields }) => ({ [event]: fields })), 'CDR lines = webhook bodies without "event"');

  // ---- metrics ----
  const m3 = await poll('the webhook counters to settle', async () => {
    const m = await scrape(metricsPort);
    return m.get('parley_webhook_delivered_total') === ev.length && m.get('parley_webhook_queue_depth') === 0 && m.get('parley_turn_allocations') === 0 && m;
  });
  const series = (m, s) => { assert.ok(m.has(s), `/metrics has ${s}`); return m.get(s); };
  const moved = [
    'parley_rtp_packets_total{direction="in"}', 'parley_rtp_packets_total{direction="out"}',
    'parley_rtp_bytes_total{direction="in"}', 'parley_rtp_bytes_total{direction="out"}',
    // Bob's media, both ways, through the embedded TURN:
    'parley_turn_relayed_bytes_total{direction="from_peer"}', 'parley_turn_relayed_bytes_total{direction="to_peer"}',
    'parley_turn_relayed_packets_total{direction="from_peer"}', 'parley_turn_relayed_packets_total{direction="to_peer"}',
  ];
  for (const s of moved) {
    assert.ok(series(m1, s) > series(m0, s), `${s} moved once media flowed: ${m0.get(s)} → ${m1.get(s)}`);
    assert.ok(series(m2, s) > series(m1, s), `${s} kept moving during the call: ${m1.get(s)} → ${m2.get(s)}`);
  }
  // Every new subscriber asks its publisher for a keyframe (by the call's middle: in simulcast mode
  // the first frames can come from the layer's own first keyframe, the request deferred a moment).
  assert.ok(series(m2, 'parley_rtcp_plis_total') >= series(m0, 'parley_rtcp_plis_total') + 2,
    `a keyframe request per subscription: ${m0.get('parley_rtcp_plis_total')} → ${m2.get('parley_rtcp_plis_total')}`);
  for (const [s, v] of [['parley_sessions', 1], ['parley_participants', 2], ['parley_published_streams', 2], ['parley_subscribed_streams', 2],
    ['parley_sfu_peer_connections{role="publisher"}', 2], ['parley_sfu_peer_connections{role="subscriber"}', 2]]) {
    assert.equal(series(m2, s), v, `${s} during the call`);
  }
  for (const s of ['parley_rtcp_nacks_total', 'parley_rtp_retransmitted_packets_total', 'parley_rtp_packets_lost_total{direction="in"}',
    'parley_rtp_packets_lost_total{direction="out"}', 'parley_webhook_queue_depth', 'parley_webhook_dropped_total{reason="expired"}',
    'go_goroutines', 'go_memstats_heap_alloc_bytes', 'process_resident_memory_bytes']) series(m2, s);
  // Chromium allocates a relay per TURN server address it was given (IPv4, IPv6) and peer connection.
  assert.ok(series(m2, 'parley_turn_allocations') >= 2, `Bob's two peer connections hold TURN allocations: ${m2.get('parley_turn_allocations')}`);
  assert.ok(series(m2, `parley_signaling_errors_total{code="${rpcError}"}`) >= 1, 'the JSON-RPC error is counted by its code');
  assert.ok(series(m2, 'parley_webhook_failed_attempts_total') > hooks.n503,
    `attempts failed by 503 (${hooks.n503}) and by refused connections (${m2.get('parley_webhook_failed_attempts_total')} in all)`);
  for (const [s, v] of [['parley_sessions', 0], ['parley_participants', 0], ['parley_published_streams', 0], ['parley_subscribed_streams', 0],
    ['parley_participants_left_total{reason="disconnect"}', 2], ['parley_cdr_written_total', ev.length]]) {
    assert.equal(series(m3, s), v, `${s} after the call`);
  }
  for (const r of ['queue_full', 'expired', 'rejected', 'shutdown']) assert.equal(series(m3, `parley_webhook_dropped_total{reason="${r}"}`), 0, `nothing dropped (${r})`);
  const lat = m3.get('parley_webhook_delivery_latency_seconds_sum') / m3.get('parley_webhook_delivery_latency_seconds_count');
  // Measured, not asserted: event timestamp → arrival at the receiver, for the events the outage
  // did not hold back.
  const quiet = ev.map((e, i) => hooks.arrivals[i] - e.timestamp).filter((_, i) => !late.some(([e]) => e === ev[i])).sort((x, y) => x - y);
  const median = quiet.length % 2 ? quiet[(quiet.length - 1) / 2] : (quiet[quiet.length / 2 - 1] + quiet[quiet.length / 2]) / 2;
  writeFileSync(join(outputDir, 'events.latency.json'), JSON.stringify({ events: ev.length, outsideOutage: quiet.length, medianMs: median, maxMs: quiet.at(-1), meanWithOutageMs: lat * 1000 }, null, 1));
  console.log(`webhooks: ${ev.length} events, ${hooks.n503} answered 503, ${m3.get('parley_webhook_failed_attempts_total')} failed attempts; `
    + `event→receiver outside the outage: median ${median} ms, max ${quiet.at(-1)} ms (n=${quiet.length}); mean event→2xx with the outage ${(lat * 1000).toFixed(1)} ms`);

  // ---- logs: a line per lifecycle step with its ids, never a credential ----
  const log = readFileSync(parley.logPath, 'utf8');
  const has = (msg, kv) => log.split('\n').some((l) => (l.includes(`msg="${msg}" `) || l.includes(`msg=${msg} `))
    && Object.entries(kv).every(([k, v]) => l.includes(` ${k}=${v}`)));
  for (const [msg, kv] of [
    ['session created', { session: 'events-call' }],
    ['participant joined', { session: 'events-call', connection: a.id }],
    ['participant joined', { session: 'events-call', connection: b.id }],
    ['stream published', { session: 'events-call', connection: a.id, stream: streams.alice }],
    ['stream published', { session: 'events-call', connection: b.id, stream: streams.bob }],
    ['subscribed', { session: 'events-call', connection: b.id, stream: streams.alice }],
    ['subscribed', { session: 'events-call', connection: a.id, stream: streams.bob }],
    ['unsubscribed', { session: 'events-call', connection: b.id, stream: streams.alice, reason: 'disconnect' }],
    ['unsubscribed', { session: 'events-call', connection: a.id, stream: streams.bob, reason: 'disconnect' }],
    ['stream unpublished', { session: 'events-call', connection: b.id, stream: streams.bob, reason: 'disconnect' }],
    ['participant left', { session: 'events-call', connection: b.id, reason: 'disconnect' }],
    ['stream unpublished', { session: 'events-call', connection: a.id, stream: streams.alice, reason: 'disconnect' }],
    ['participant left', { session: 'events-call', connection: a.id, reason: 'disconnect' }],
    ['session destroyed', { session: 'events-call', reason: 'lastParticipantLeft' }],
    ['rpc error', { session: 'events-call', connection: b.id, method: 'forceDisconnect', code: rpcError }],
  ]) assert.ok(has(msg, kv), `log line "${msg}" with ${JSON.stringify(kv)}`);
  for (const secret of [conns.alice.token, conns.bob.token, new URL(conns.alice.token).searchParams.get('token'), new URL(conns.bob.token).searchParams.get('token'), HOOK_HEADER, hookKey]) {
    assert.ok(!log.includes(secret), `the log must not contain ${secret}`);
  }
  const pionWarnings = log.split('\n').filter((l) => /level=(WARN|ERROR)/.test(l) && / pion=/.test(l));
  assert.deepEqual(pionWarnings, [], 'a normal call leaves no pion warning in the log');
});

test('an endpoint gone for good: the call goes on, every event is dropped and counted', async () => {
  // Port 1 (tcpmux): nothing listens there, and unlike a probed ephemeral port it can never be
  // handed to this test's own servers in the meantime. Connections are refused.
  const gonePort = 1;
  const p2 = await startParley('events-gone', {
    OPENVIDU_WEBHOOK: 'true', OPENVIDU_WEBHOOK_ENDPOINT: `http://127.0.0.1:${gonePort}/hook`, PARLEY_WEBHOOK_RETRY_TIMEOUT: '1',
  }, { metrics: true });
  const port = p2.metricsPort;
  try {
    const session = await p2.ov.createSession({ customSessionId: 'events-gone' });
    const ca = await session.createConnection();
    const cb = await session.createConnection();
    const a = await openParticipant(browser, pages.url, ca.token, { name: 'alice' });
    opened.push(a);
    const b = await openParticipant(browser, pages.url, cb.token, { name: 'bob', publish: false });
    opened.push(b);
    await waitDecoding(b, [a.id]);
    const f0 = await framesFrom(b, a.id);
    const m1 = await poll('the first drop', async () => { const m = await scrape(port); return m.get('parley_webhook_dropped_total{reason="expired"}') >= 1 && m; });
    await poll('frames decoded after events were dropped', async () => await framesFrom(b, a.id) > f0 + 30);
    assert.ok(m1.get('parley_webhook_failed_attempts_total') >= 1);
    await b.page.evaluate(() => window.session.disconnect());
    await a.page.evaluate(() => window.session.disconnect());
    // sessionCreated, 2 × participantJoined, OUTBOUND, INBOUND, 2 × destroyed, 2 × participantLeft, sessionDestroyed.
    const m = await poll('all 10 events dropped', async () => { const m = await scrape(port); return m.get('parley_webhook_dropped_total{reason="expired"}') === 10 && m; }, { timeout: 30000 });
    assert.equal(m.get('parley_webhook_delivered_total'), 0);
    assert.equal(m.get('parley_webhook_queue_depth'), 0);
    assert.ok(/webhook events dropped/.test(readFileSync(p2.logPath, 'utf8')), 'the drops are logged');
  } finally {
    assert.equal(await p2.stop(), 0, `parley must exit 0 on SIGTERM (log: ${p2.logPath})`);
  }
});
