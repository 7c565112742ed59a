// The cluster bed (run.sh builds the namespaces and starts this file). Three Parley nodes in
// production mode (TLS on TCP 443, media on UDP 443 at each node's own address) share one
// redis-server; HAProxy, with deploy/proxy/haproxy-cluster.cfg as shipped, passes TCP 443 through
// to them with a PROXY protocol v2 header (send-proxy-v2), which every node believes from HAProxy's
// address only (PARLEY_PROXY_PROTOCOL_FROM). Participant B joins through HAProxy; A and C join two
// other nodes directly (their Chromium resolves the public name to that node), so every stream
// crosses between nodes; REST goes to every node. Then, mid-call: Redis restarts empty, and the node holding B is killed with
// SIGKILL. What is asserted is what users and the REST API see; how long things took is printed
// (and appended to CLUSTERBED_OUT for bench/cluster-kill.sh), never asserted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createConnection } from 'node:net';
import { readFileSync, writeFileSync, appendFileSync, mkdtempSync, mkdirSync, createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { within, poll, wrapperFor, removeWrappers } from '../firewall/bed.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const outputDir = join(here, 'output');
mkdirSync(outputDir, { recursive: true });
const require = createRequire(join(here, '..', 'package.json'));
const { chromium } = require('playwright-core');
const { OpenVidu } = require('openvidu-node-client');

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // every node's certificate is self-signed

const NET = process.env.PCL_NET || '192.0.2';
const RUNNER = `${NET}.254`;
const LB = `${NET}.10`;
const REDIS = `${NET}.20`;
const NODES = [1, 2, 3].map((i) => ({ id: `node-${i}`, ns: `pcl-n${i}`, ip: `${NET}.${i}` }));
const PEOPLE = { A: 'pcl-a', B: 'pcl-b', C: 'pcl-c' };
const PEOPLE_IP = { A: `${NET}.11`, B: `${NET}.12`, C: `${NET}.13` }; // netns.sh
const DOMAIN = 'parley.test';
const SECRET = 'cluster-bed-secret';
const SESSION = 'cluster-bed';
const PAGE_PORT = 8079;
const BIN = process.env.PARLEY_BIN || join(repoRoot, 'bin/parley');
// CLUSTERBED_QUICK=1 (make test): two participants instead of three (A on one node, B through
// HAProxy on another), which keeps every check but the one of a pair that never touched the dead
// node (A<->C) and saves a Chromium on a small machine.
const QUICK = process.env.CLUSTERBED_QUICK === '1';
// CLUSTERBED_FORCE_MEDIA_RECONNECTION=1: the pages set openvidu-browser's
// forceMediaReconnectionAfterNetworkDrop (bench/cluster-kill.sh compares).
const FORCE_MEDIA_RECONNECTION = process.env.CLUSTERBED_FORCE_MEDIA_RECONNECTION === '1';
const auth = 'Basic ' + Buffer.from(`OPENVIDUAPP:${SECRET}`).toString('base64');

const tmp = mkdtempSync(join(tmpdir(), 'pcl-'));
const procs = [];
const browsers = [];
const people = {};
let pages;
let redis;
const measured = {};

const readLog = (name) => { try { return readFileSync(join(outputDir, name), 'utf8'); } catch { return ''; } };

// startIn runs a command inside a namespace with an environment of its own, logging to a file.
function startIn(ns, name, argv, env = {}) {
  const log = createWriteStream(join(outputDir, `${name}.log`));
  const proc = spawn('ip', ['netns', 'exec', ns, ...argv], { env: { PATH: process.env.PATH, ...env }, cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  const p = { name, proc, exited: null };
  p.done = new Promise((r) => proc.on('exit', (code, signal) => { p.exited = { code, signal }; r(p.exited); }));
  procs.push(p);
  return p;
}

async function stop(p, signal = 'SIGTERM') {
  if (p.exited) return p.exited;
  p.proc.kill(signal);
  await Promise.race([p.done, new Promise((r) => setTimeout(r, 8000))]);
  if (!p.exited) p.proc.kill('SIGKILL');
  return Promise.race([p.done, new Promise((r) => setTimeout(r, 3000))]);
}

async function rest(ip, path, init = {}) {
  const res = await fetch(`https://${ip}${path}`, { ...init, headers: { authorization: auth, 'content-type': 'application/json', ...(init.headers || {}) }, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return { status: res.status, body: /json/.test(res.headers.get('content-type') || '') && text ? JSON.parse(text) : text };
}

const tcpOpen = (host, port) => new Promise((r) => {
  const s = createConnection(port, host, () => { s.end(); r(true); });
  s.on('error', () => r(false));
  s.setTimeout(1000, () => { s.destroy(); r(false); });
});

function startRedis() {
  const p = startIn('pcl-rd', `redis-${Date.now()}`, ['redis-server', '--bind', REDIS, '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no']);
  return poll('redis-server to listen', async () => {
    if (p.exited) throw new Error(`redis-server exited (${JSON.stringify(p.exited)})`);
    return (await tcpOpen(REDIS, 6379)) && p;
  }, { timeout: 15000, interval: 100 });
}

async function startNode(n) {
  const data = join(tmp, n.id);
  mkdirSync(data, { recursive: true });
  n.proc = startIn(n.ns, n.id, [BIN, 'serve'], {
    HOME: data, DOTENV_PATH: '', DOMAIN_OR_PUBLIC_IP: DOMAIN, OPENVIDU_SECRET: SECRET, HTTPS_PORT: '443', HTTP_PORT: '80',
    CERTIFICATE_TYPE: 'selfsigned', PARLEY_DATA_DIR: data, PARLEY_MEDIA_LISTEN_IPS: n.ip, PARLEY_METRICS_ADDR: 'off',
    PARLEY_REDIS_URL: `redis://${REDIS}:6379/0`, PARLEY_NODE_ID: n.id,
    // HAProxy sends the PROXY protocol (send-proxy-v2 in the shipped file): its header names the client.
    PARLEY_PROXY_PROTOCOL_FROM: LB,
    // Three browsers and three nodes on a shared two-core machine: a starved page may miss its
    // pings for longer than the default 15 s. The failures under test are not ping timeouts.
    PARLEY_PING_TIMEOUT: '45',
  });
  await poll(`${n.id} to answer on https://${n.ip}`, async () => {
    if (n.proc.exited) throw new Error(`${n.id} exited at start-up (${JSON.stringify(n.proc.exited)}); see output/${n.id}.log`);
    try { return (await rest(n.ip, '/openvidu/api/config/openvidu-publicurl')).status === 200; } catch { return false; }
  }, { timeout: 30000, interval: 200 });
}

before(async () => {
  const route = execFileSync('ip', ['route', 'get', LB], { encoding: 'utf8', timeout: 5000 });
  assert.match(route, /\bdev pcl-br\b/, `the route to ${LB} must be the bed's bridge (run.sh builds it): ${route}`);
  redis = await startRedis();
  for (const n of NODES) await startNode(n);

  // HAProxy with the shipped file; the bed replaces only the nodes' addresses.
  const shipped = readFileSync(join(repoRoot, 'deploy/proxy/haproxy-cluster.cfg'), 'utf8');
  const cfg = shipped.replace(/\b10\.0\.0\.(\d)\b/g, (_, i) => NODES[Number(i) - 1].ip);
  assert.equal(NODES.filter((n) => cfg.includes(`${n.ip}:443`)).length, 3, 'deploy/proxy/haproxy-cluster.cfg names three nodes at 10.0.0.1-3:443');
  const cfgPath = join(tmp, 'haproxy.cfg');
  writeFileSync(cfgPath, cfg);
  execFileSync('haproxy', ['-c', '-q', '-f', cfgPath], { stdio: 'inherit', timeout: 10000 });
  const haproxy = startIn('pcl-lb', 'haproxy', ['haproxy', '-db', '-f', cfgPath]);
  await poll('parley to answer through HAProxy', async () => {
    if (haproxy.exited) throw new Error(`haproxy exited at start-up (${JSON.stringify(haproxy.exited)}); see output/haproxy.log`);
    try { return (await rest(LB, '/openvidu/api/config/openvidu-publicurl')).status === 200; } catch { return false; }
  }, { timeout: 20000, interval: 200 });

  const sdk = readFileSync(require.resolve('openvidu-browser/static/js/openvidu-browser-2.32.2.min.js'));
  const driver = readFileSync(join(here, 'page.js'));
  const html = '<!doctype html><html><head><meta charset="utf-8"><title>parley cluster bed</title></head><body>' +
    '<script src="/page.js"></script><script src="/openvidu-browser.min.js"></script><div id="videos"></div></body></html>';
  const server = createServer((req, res) => {
    const path = req.url.split('?')[0];
    if (path === '/openvidu-browser.min.js') { res.setHeader('content-type', 'text/javascript'); res.end(sdk); return; }
    if (path === '/page.js') { res.setHeader('content-type', 'text/javascript'); res.end(driver); return; }
    if (path === '/favicon.ico') { res.statusCode = 404; res.end(); return; }
    res.setHeader('content-type', 'text/html');
    res.end(html);
  });
  await new Promise((r, j) => { server.once('error', j); server.listen(PAGE_PORT, RUNNER, r); });
  pages = { url: `http://${RUNNER}:${PAGE_PORT}/`, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) };
});

after(async () => {
  await Promise.all(browsers.map((b) => within(10000, b.close(), 'browser close').catch(() => {})));
  await pages?.close();
  for (const p of [...procs].reverse()) await stop(p);
  removeWrappers();
  rmSync(tmp, { recursive: true, force: true });
  if (process.env.CLUSTERBED_OUT && Object.keys(measured).length) appendFileSync(process.env.CLUSTERBED_OUT, JSON.stringify(measured) + '\n');
});

// joinVia opens a participant's Chromium in its namespace, resolving the public name to addr (a node,
// or HAProxy), and joins with a token minted through REST on tokenNode.
async function joinVia(name, addr, tokenNode) {
  const args = [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--ignore-certificate-errors',
    '--autoplay-policy=no-user-gesture-required', `--host-resolver-rules=MAP ${DOMAIN} ${addr}`,
    `--unsafely-treat-insecure-origin-as-secure=http://${RUNNER}:${PAGE_PORT}`,
  ];
  const browser = await chromium.launch({ executablePath: wrapperFor(PEOPLE[name]), args, timeout: 40000 });
  browsers.push(browser);
  const page = await within(30000, browser.newContext().then((c) => c.newPage()), 'new page');
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(pages.url, { timeout: 30000 });
  const made = await rest(tokenNode.ip, `/openvidu/api/sessions/${SESSION}/connection`, { method: 'POST', body: '{}' });
  assert.equal(made.status, 200, `a token for ${name} through ${tokenNode.id}: ${JSON.stringify(made.body)}`);
  assert.match(made.body.token, new RegExp(`^wss://${DOMAIN.replace('.', '\\.')}/openvidu\\?`), 'tokens name the public URL');
  const id = await within(60000, page.evaluate(({ token, name, force }) => window.pcl.join(token, { name, forceMediaReconnection: force }),
    { token: made.body.token, name, force: FORCE_MEDIA_RECONNECTION }), `${name} to connect and publish`);
  people[name] = { name, page, id, problems };
  return people[name];
}

const since = (p, T) => within(15000, p.page.evaluate((T) => window.pcl.since(T), T), `${p.name}'s stats`).catch((e) => ({ error: e.message }));

// nodeOf tells which node's log shows id joining (or restored).
function nodeOf(id) {
  const re = new RegExp(`participant (joined|restored from another node|reconnected)[^\\n]*${id}`);
  return NODES.find((n) => re.test(readLog(`${n.id}.log`)));
}

// seeAll waits until every participant decodes, after T, the video of every other one (for the
// pairs in renewed, on a peer connection made after T); it returns what each saw, by name and by
// publisher.
async function seeAll(T, what, { timeout = 90000, renewed = [] } = {}) {
  const list = Object.values(people);
  let last = {};
  try {
    await poll(what, async () => {
      for (const p of list) last[p.name] = await since(p, T);
      const ok = (p, q) => {
        const s = last[p.name][q.id];
        return s && (renewed.includes(`${p.name}<-${q.name}`) ? s.recoverMs !== null : s.firstFrameMs !== null);
      };
      return list.every((p) => list.every((q) => q === p || ok(p, q)));
    }, { timeout, interval: 250 });
  } catch (e) {
    const events = {};
    for (const p of list) events[p.name] = await p.page.evaluate(() => window.pcl.events()).catch(String);
    throw new Error(`${e.message}\nseen: ${JSON.stringify(last).slice(0, 3000)}\nevents: ${JSON.stringify(events).slice(0, 4000)}\npage errors: ${list.flatMap((p) => p.problems)}`);
  }
  const out = {};
  for (const p of list) out[p.name] = Object.fromEntries(list.filter((q) => q !== p).map((q) => [q.name, last[p.name][q.id]]));
  return out;
}

// listed is the session as one node's REST shows it: connection id → [publishers, subscribers].
async function listed(node) {
  const r = await rest(node.ip, `/openvidu/api/sessions/${SESSION}`);
  if (r.status !== 200) return { status: r.status };
  return Object.fromEntries(r.body.connections.content.map((c) => [c.connectionId, [c.publishers.length, c.subscribers.length]]));
}

// streams is the session as one node's REST shows it: connection id → the streams it publishes
// and the streams it subscribes to.
async function streams(node) {
  const r = await rest(node.ip, `/openvidu/api/sessions/${SESSION}`);
  if (r.status !== 200) return { status: r.status };
  return Object.fromEntries(r.body.connections.content.map((c) => [c.connectionId, { pubs: c.publishers.map((x) => x.streamId), subs: c.subscribers.map((x) => x.streamId) }]));
}

// wholeSession is what REST must show once things settle: A, B and C (A and B when quick), each
// publishing once and subscribed to the others, and nobody else.
function wholeSession() {
  const n = Object.keys(people).length;
  return Object.fromEntries(Object.values(people).map((p) => [p.id, [1, n - 1]]).sort());
}
// timeline writes what happened from T on, in ms after T, to output/timeline.txt and returns it:
// each page's ICE states, WebSocket opens and closes and SDK events, and the nodes' log lines.
async function timeline(T) {
  const rows = [];
  for (const p of Object.values(people)) {
    const evs = await p.page.evaluate(() => window.pcl.events()).catch(() => []);
    for (const e of evs) if (e.at >= T - 1000) rows.push([e.at - T, p.name, JSON.stringify({ ...e, at: undefined })]);
  }
  for (const n of NODES) {
    for (const line of readLog(`${n.id}.log`).split('\n')) {
      let j;
      try { j = JSON.parse(line); } catch { continue; }
      const at = Date.parse(j.time);
      if (!(at >= T - 1000)) continue;
      const { time, level, msg, node, ...rest } = j;
      rows.push([at - T, n.id, `${level} ${msg} ${JSON.stringify(rest).slice(0, 300)}`]);
    }
  }
  rows.sort((a, b) => a[0] - b[0]);
  const text = rows.map(([ms, who, what]) => `${String(ms).padStart(7)} ${who.padEnd(7)} ${what}`).join('\n');
  writeFileSync(join(outputDir, 'timeline.txt'), text + '\n');
  return text;
}

const sorted = (o) => Object.fromEntries(Object.entries(o).sort());

test('three nodes behind HAProxy: a call across them survives a Redis restart and a node killed with SIGKILL', async (t) => {
  const ov = new OpenVidu(`https://${NODES[2].ip}`, SECRET);
  await within(10000, ov.createSession({ customSessionId: SESSION }), 'createSession on node-3');

  // B through HAProxy first: its node X is the one to kill; A and C join the two others directly.
  const b = await joinVia('B', LB, NODES[0]);
  const X = await poll(`the node that took B (${b.id})`, () => nodeOf(b.id), { timeout: 10000 });
  const [P, Q] = NODES.filter((n) => n !== X);
  const a = await joinVia('A', P.ip, Q);
  const c = QUICK ? null : await joinVia('C', Q.ip, X);
  console.log(`# B (${b.id}) through HAProxy on ${X.id}; A (${a.id}) on ${P.id}` + (c ? `, C (${c.id}) on ${Q.id}` : ''));
  assert.equal(nodeOf(a.id), P, `A joined ${P.id} directly`);
  if (c) assert.equal(nodeOf(c.id), Q, `C joined ${Q.id} directly`);

  const T0 = Date.now();
  await t.test('every node\'s REST lists the whole session; everyone decodes everyone, every stream crossing between nodes', async () => {
    for (const n of NODES) {
      await poll(`${n.id}'s REST to show A, B and C publishing and subscribed to each other`, async () =>
        JSON.stringify(sorted(await listed(n))) === JSON.stringify(wholeSession()), { timeout: 30000, interval: 250 });
    }
    await seeAll(T0, 'A, B and C to decode each other');
  });

  await t.test('every node\'s REST shows each participant\'s own address, B\'s too through HAProxy (PROXY protocol)', async () => {
    for (const n of NODES) {
      const r = await rest(n.ip, `/openvidu/api/sessions/${SESSION}`);
      assert.equal(r.status, 200);
      const ips = Object.fromEntries(r.body.connections.content.map((c) => [c.connectionId, c.ip]));
      for (const p of Object.values(people)) {
        assert.equal(ips[p.id], PEOPLE_IP[p.name], `${n.id}'s REST: ${p.name}'s ip is its browser's (${PEOPLE_IP[p.name]}), not HAProxy's (${LB}): ${JSON.stringify(ips)}`);
      }
    }
  });

  await t.test('Redis restarted empty: the call goes on, the nodes write the session back', async () => {
    const T1 = Date.now();
    await stop(redis, 'SIGKILL');
    redis = await startRedis();
    const restartedMs = Date.now() - T1;
    for (const n of NODES) {
      await poll(`${n.id}'s REST to show the whole session again after Redis came back empty`, async () => {
        try { return JSON.stringify(sorted(await listed(n))) === JSON.stringify(wholeSession()); } catch { return false; }
      }, { timeout: 30000, interval: 250 });
    }
    const rewrittenMs = Date.now() - T1;
    measured.redis = { restartedMs, rewrittenMs };
    const seen = await seeAll(T1, 'A, B and C to keep decoding each other across the Redis restart');
    for (const [who, from] of Object.entries(seen)) {
      for (const [name, s] of Object.entries(from)) {
        assert.equal(s.newPeerConnections, 0, `${who} kept receiving ${name} on the same peer connection (no reconnection): ${JSON.stringify(s)}`);
      }
    }
    measured.redis.maxGapMs = Math.max(...Object.values(seen).flatMap((f) => Object.values(f).map((s) => s.maxGapMs)));
    console.log(`# Redis restarted in ${restartedMs} ms; every node's REST showed the session again ${rewrittenMs} ms after it was killed; longest stall ${measured.redis.maxGapMs} ms`);
  });

  const survivors = NODES.filter((n) => n !== X);
  let T2, back;
  await t.test(`${X.id}, holding B, killed with SIGKILL: B is restored on a survivor under its old id; REST shows no ghost`, async () => {
    T2 = Date.now();
    X.proc.proc.kill('SIGKILL');
    await X.proc.done;
    assert.equal(X.proc.exited.signal, 'SIGKILL');
    back = await poll(`B (${b.id}) to be restored on ${survivors.map((n) => n.id).join(' or ')}`, () =>
      survivors.find((n) => new RegExp(`participant restored from another node[^\\n]*${b.id}`).test(readLog(`${n.id}.log`))), { timeout: 60000, interval: 250 });
    measured.restoredMs = Date.now() - T2;
    assert.equal(await b.page.evaluate(() => window.pcl.id()), b.id, 'B is the same participant to its own page');

    // No ghost: once the registry dropped the dead node, both survivors' REST lists A, B and C,
    // each publishing once, and no subscription to a stream that is not published.
    await poll(`the survivors' registry to drop ${X.id}`, async () => {
      for (const n of survivors) {
        const cfg = await rest(n.ip, '/openvidu/api/config').catch(() => null);
        const nodes = cfg?.body?.PARLEY_CLUSTER?.nodes;
        if (!Array.isArray(nodes) || nodes.some((x) => x.id === X.id) || nodes.length !== 2) return false;
      }
      return true;
    }, { timeout: 40000, interval: 250 });
    const want = Object.values(people).map((p) => p.id).sort();
    let last = {};
    await poll(`REST on ${survivors.map((n) => n.id).join(' and ')} to show A, B and C and no ghost`, async () => {
      for (const n of survivors) last[n.id] = await streams(n).catch((e) => ({ error: e.message }));
      return survivors.every((n) => {
        const l = last[n.id];
        if (l.error || l.status || JSON.stringify(Object.keys(l).sort()) !== JSON.stringify(want)) return false;
        const published = new Set(Object.values(l).flatMap((c) => c.pubs));
        return Object.values(l).every((c) => c.pubs.length === 1 && c.subs.every((x) => published.has(x)));
      });
    }, { timeout: 30000, interval: 250 }).catch((e) => { throw new Error(`${e.message}\nwant ${JSON.stringify(want)}\ngot ${JSON.stringify(last)}`); });
    measured.noGhostMs = Date.now() - T2;
    console.log(`# ${X.id} killed: B restored on ${back.id} ${measured.restoredMs} ms later; the survivors' REST clean ${measured.noGhostMs} ms after the kill`);
  });

  await t.test('after the kill: B decodes A and C again, A and C decode B again, A and C never stopped', async () => {
    assert.ok(T2, 'the kill happened');
    const renewed = QUICK ? ['B<-A', 'A<-B'] : ['B<-A', 'B<-C', 'A<-B', 'C<-B'];
    let seen;
    try {
      seen = await seeAll(T2, 'B to decode A and C again, and A and C to decode B again (on new peer connections)', { renewed });
    } finally {
      console.log(`# timeline from the kill (ms; also in output/timeline.txt):\n${(await timeline(T2)).split('\n').slice(0, 400).map((l) => '#' + l).join('\n')}`);
    }
    for (const [who, from] of QUICK ? [] : [['A', 'C'], ['C', 'A']]) {
      const s = seen[who][from];
      assert.equal(s.newPeerConnections, 0, `${who} kept receiving ${from} (neither on ${X.id}) on the same peer connection: ${JSON.stringify(s)}`);
      assert.ok(s.framesAfter > 0, `${who} kept decoding ${from}`);
    }
    for (const n of survivors) {
      await poll(`${n.id}'s REST to show A, B and C subscribed to each other again`, async () =>
        JSON.stringify(sorted(await listed(n))) === JSON.stringify(wholeSession()), { timeout: 30000, interval: 250 });
    }
    const ms = (s) => s ? s.recoverMs : -Infinity; // C is absent when quick
    measured.kill = {
      killed: X.id, restoredOn: back?.id, forceMediaReconnection: FORCE_MEDIA_RECONNECTION,
      // Its participant decodes the others again, and the others decode it again (ms after the kill).
      reDecodeMs: Math.max(ms(seen.B.A), ms(seen.B.C), ms(seen.A.B), ms(seen.C?.B)),
      // Apart: B decoding the others (its subscriptions, which the survivor offers again at once),
      // and the others decoding B (its stream, which its SDK publishes again only once its ICE
      // to the dead node has failed: Chromium's ~6 s, then the SDK's own 4 s wait).
      decodesMs: Math.max(ms(seen.B.A), ms(seen.B.C)),
      decodedMs: Math.max(ms(seen.A.B), ms(seen.C?.B)),
      detail: { 'B<-A': ms(seen.B.A), 'B<-C': ms(seen.B.C), 'A<-B': ms(seen.A.B), 'C<-B': ms(seen.C?.B) },
      quick: QUICK,
      // The streams that never touched the dead node.
      survivors: QUICK ? {} : { 'A<-C': seen.A.C, 'C<-A': seen.C.A },
    };
    console.log(`# after the kill: ${JSON.stringify(measured.kill)}`);
  });
});
