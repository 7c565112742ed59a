// The weak-network bed's moving parts, seen from the runner in the root namespace: parley in pwn-srv,
// Chromium in pwn-pub / pwn-ok / pwn-weak through wrapper executables, the page server, the weak
// link's shaping (netns.sh), and runCell, which plays one cell and measures it. Used by
// weaknet.test.mjs (make test) and bench/weaknet.mjs (the full matrix). Every wait has a deadline.
import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { readFileSync, writeFileSync, chmodSync, mkdtempSync, mkdirSync, createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

export const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../../..');

export const NET = process.env.PWN_NET || '198.18.99';
export const SERVER = `${NET}.1`;
export const RUNNER = `${NET}.254`;
export const DOMAIN = 'parley.test';
export const SECRET = 'weaknet-test-secret';
export const PAGE_PORT = 8078;
export const NS = { srv: 'pwn-srv', pub: 'pwn-pub', ok: 'pwn-ok', weak: 'pwn-weak' };

const require = createRequire(join(here, '..', 'package.json'));
export const { chromium } = require('playwright-core');
export const { OpenVidu } = require('openvidu-node-client');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function within(ms, p, what) {
  let t;
  const timeout = new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

export async function poll(what, fn, { timeout = 20000, interval = 200 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(interval);
  }
}

export const netns = (...args) => execFileSync(join(here, 'netns.sh'), args.map(String), { encoding: 'utf8', timeout: 15000, env: { ...process.env, PWN_NET: NET } }).trim();
export const weakBytes = () => Number(netns('bytes')) || 0;
export const pubBytes = () => Number(netns('pub-bytes')) || 0;

export function median(xs) {
  const s = xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function quantile(xs, q) {
  const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

// startParley runs the server in production mode inside pwn-srv (nothing inherited but PATH, plus
// extraEnv, e.g. OPENVIDU_WEBRTC_SIMULCAST=true) and waits for its REST API. append: add to
// logPath (one log for several server runs) instead of replacing it.
export async function startParley(bin, { logPath, extraEnv = {}, append = false } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'pwn-data-'));
  const log = createWriteStream(logPath, { flags: append ? 'a' : 'w' });
  const env = {
    PATH: process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dataDir, DOTENV_PATH: '',
    DOMAIN_OR_PUBLIC_IP: DOMAIN, OPENVIDU_SECRET: SECRET, HTTPS_PORT: '443', HTTP_PORT: '80',
    CERTIFICATE_TYPE: 'selfsigned', PARLEY_DATA_DIR: dataDir, PARLEY_MEDIA_LISTEN_IPS: SERVER,
    // Debug, as the benches run: a cell that goes wrong once in a few runs (ci22c's 300 kbit/s
    // subscriber paused 10 s) can be read only from the congestion ticks and probes it logs.
    PARLEY_LOG_LEVEL: 'debug', ...extraEnv,
  };
  const cmd = process.env.PWN_SERVER_CPU ? ['netns', 'exec', NS.srv, 'taskset', '-c', process.env.PWN_SERVER_CPU, bin, 'serve'] : ['netns', 'exec', NS.srv, bin, 'serve'];
  const proc = spawn('ip', cmd, { env, cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; });
  const base = `https://${SERVER}:443`;
  await poll(`parley to answer on ${base}`, async () => {
    if (exited) throw new Error(`parley exited at start-up (${JSON.stringify(exited)}); see ${logPath}`);
    try { return (await fetch(`${base}/openvidu/api/config/openvidu-publicurl`, { signal: AbortSignal.timeout(2000) })).ok; } catch { return false; }
  }, { timeout: 20000 });
  return {
    kind: 'parley', logPath, base, ov: new OpenVidu(base, SECRET), pid: proc.pid,
    get exited() { return exited; },
    async stop() {
      if (!exited) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([done, sleep(10000)]);
        if (!exited) { proc.kill('SIGKILL'); await Promise.race([done, sleep(3000)]); }
      }
      rmSync(dataDir, { recursive: true, force: true });
      return exited;
    },
  };
}

// startLivekit runs a livekit-server the operator built (bench only; never part of the product or
// its tests) in pwn-srv: dev keys devkey/secret, signalling on :7880, media on UDP 7882 and ICE-TCP
// 7881 at the server's bed address.
export async function startLivekit(bin, { logPath, args = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'pwn-lk-'));
  const config = join(dir, 'livekit.yaml');
  writeFileSync(config, ['log_level: info', 'port: 7880', 'bind_addresses: ["0.0.0.0"]', 'rtc:', '  udp_port: 7882', '  tcp_port: 7881',
    '  use_external_ip: false', `  node_ip: ${SERVER}`, '  interfaces: {includes: [eth0]}', ''].join('\n'));
  const log = createWriteStream(logPath);
  const cmd = process.env.PWN_SERVER_CPU ? ['netns', 'exec', NS.srv, 'taskset', '-c', process.env.PWN_SERVER_CPU, bin] : ['netns', 'exec', NS.srv, bin];
  const proc = spawn('ip', [...cmd, '--dev', '--config', config, ...args], { env: { PATH: process.env.PATH, HOME: dir }, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; });
  const base = `http://${SERVER}:7880`;
  await poll(`livekit-server to answer on ${base}`, async () => {
    if (exited) throw new Error(`livekit-server exited at start-up (${JSON.stringify(exited)}); see ${logPath}`);
    try { return (await fetch(`${base}/`, { signal: AbortSignal.timeout(2000) })).ok; } catch { return false; }
  }, { timeout: 20000 });
  return {
    kind: 'livekit', logPath, url: `ws://${SERVER}:7880`, pid: proc.pid,
    get exited() { return exited; },
    // token mints a join token (JWT, HS256) for identity in room, with the dev keys.
    token(room, identity) {
      const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iss: 'devkey', sub: identity, name: identity, nbf: now - 10, exp: now + 3600,
        video: { room, roomJoin: true, canPublish: true, canSubscribe: true } })}`;
      return `${body}.${createHmac('sha256', 'secret').update(body).digest('base64url')}`;
    },
    async stop() {
      if (!exited) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([done, sleep(10000)]);
        if (!exited) { proc.kill('SIGKILL'); await Promise.race([done, sleep(3000)]); }
      }
      rmSync(dir, { recursive: true, force: true });
      return exited;
    },
  };
}

// startPages serves the page: page.js, then the stock SDK bundle from the npm package (and, given
// livekitClient, the path of livekit-client's UMD bundle, that too).
export async function startPages({ livekitClient } = {}) {
  const sdk = readFileSync(require.resolve('openvidu-browser/static/js/openvidu-browser-2.32.2.min.js'));
  const driver = readFileSync(join(here, 'page.js'));
  const lk = livekitClient ? readFileSync(livekitClient) : null;
  const html = '<!doctype html><html><head><meta charset="utf-8"><title>parley weak-network bed</title></head><body>' +
    '<script src="/page.js"></script><script src="/openvidu-browser.min.js"></script>' + (lk ? '<script src="/livekit-client.js"></script>' : '') +
    '<div id="videos"></div></body></html>';
  const server = createServer((req, res) => {
    const path = req.url.split('?')[0];
    if (path === '/openvidu-browser.min.js') { res.setHeader('content-type', 'text/javascript'); res.end(sdk); return; }
    if (path === '/livekit-client.js' && lk) { res.setHeader('content-type', 'text/javascript'); res.end(lk); return; }
    if (path === '/page.js') { res.setHeader('content-type', 'text/javascript'); res.end(driver); return; }
    if (path === '/favicon.ico') { res.statusCode = 404; res.end(); return; }
    res.setHeader('content-type', 'text/html');
    res.end(html);
  });
  await new Promise((r, j) => { server.once('error', j); server.listen(PAGE_PORT, RUNNER, r); });
  const close = () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); });
  return { url: `http://${RUNNER}:${PAGE_PORT}/`, close: () => within(5000, close(), 'page server close') };
}

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream', '--ignore-certificate-errors', '--autoplay-policy=no-user-gesture-required',
  // Two subscriber pages share one browser: neither may be throttled as a background page.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
  `--host-resolver-rules=MAP ${DOMAIN} ${SERVER}`,
  `--unsafely-treat-insecure-origin-as-secure=http://${RUNNER}:${PAGE_PORT}`,
];

const wrapperDir = mkdtempSync(join(tmpdir(), 'pwn-chromium-'));
function wrapperFor(ns) {
  const path = join(wrapperDir, `chromium-${ns}`);
  const pin = process.env.PWN_LOAD_CPU ? `taskset -c ${process.env.PWN_LOAD_CPU} ` : '';
  writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${ns} ${pin}${process.env.CHROMIUM || '/usr/bin/chromium'} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}
export const removeWrappers = () => rmSync(wrapperDir, { recursive: true, force: true });

// launchBrowsers starts the bed's three Chromium processes: publisher, the two unshaped subscribers
// (one browser, two contexts), the weak subscriber.
export async function launchBrowsers() {
  const launch = (ns) => chromium.launch({ executablePath: wrapperFor(ns), args: CHROMIUM_ARGS, timeout: 30000 });
  const all = await Promise.allSettled([launch(NS.pub), launch(NS.ok), launch(NS.weak)]);
  const ok = all.filter((x) => x.status === 'fulfilled').map((x) => x.value);
  if (ok.length < 3) {
    await Promise.all(ok.map((b) => within(10000, b.close(), 'browser close').catch(() => {})));
    throw all.find((x) => x.status === 'rejected').reason;
  }
  const [pub, others, weak] = ok;
  return { pub, others, weak, version: pub.version(), close: () => Promise.all(ok.map((b) => within(10000, b.close(), 'browser close').catch(() => {}))) };
}

// The transports of the weak subscriber: what its namespace lets out and what ICE servers its page
// keeps (page.js).
export const TRANSPORTS = {
  udp: { net: 'udp', page: 'udp', label: 'UDP' },
  'ice-tcp': { net: 'tcp', page: 'ice-tcp', label: 'ICE-TCP' },
  'turn-tcp': { net: 'tcp', page: 'turn-tcp', label: 'TURN/TCP' },
  'turn-tls': { net: 'tcp', page: 'turn-tls', label: 'TURN/TLS' },
};

async function openPage(browser, url, transport, name, capture) {
  // Generous deadlines: on a loaded machine a fresh renderer can take seconds to start.
  const context = await within(30000, browser.newContext(), 'new browser context');
  if (transport) await context.addInitScript((t) => { window.pwnTransport = t; }, transport);
  if (capture) await context.addInitScript((c) => { window.pwnCapture = c; }, capture);
  const page = await within(30000, context.newPage(), 'new page');
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(url, { timeout: 30000 });
  return { name, context, page, problems };
}

const results = (p) => within(15000, p.page.evaluate(() => window.pwn.results()), `${p.name}'s results`);

// runCell plays one cell: publisher and two unshaped subscribers (phase "alone", no weak
// subscriber), then the weak subscriber joins through its shaped link and chosen transport
// ("shaped"), then the shaping is removed ("freed"). Returns the raw samples and the summary.
// withWeak false runs the same phases without a weak subscriber (the reference). capture ('WxH',
// default 640x480) is the publisher's capture size: openvidu-browser sends three simulcast layers
// from 960x540, two under it. phases.squeezed, when given, shapes the link again after "freed" for
// that long ("squeezed": how fast the weak subscriber's layer comes down).
// uplink true shapes the publisher's uplink instead (netns.sh shape-pub), in the same phases, with
// no weak subscriber: what the two unshaped subscribers see of a weak publisher (UDP only).
// pubCapKbps is the server's cap on the publisher (its REMB; OpenVidu's default 1000): a cell
// begins once the publisher's send-side estimate is near it.
export async function runCell(bed, { transport = 'udp', kbit = 150, lossPct = 0, withWeak = true, uplink = false, joinShaped = false, capture, pubCapKbps = 1000, phases = { alone: 10000, shaped: 25000, freed: 10000 }, log = () => {} }) {
  const { parley, pages, browsers } = bed;
  const t = TRANSPORTS[transport];
  if (!t) throw new Error(`unknown transport ${transport}`);
  if (uplink && (transport !== 'udp' || lossPct)) throw new Error('a shaped publisher is played over udp without loss only');
  if (joinShaped) uplink = true;
  if (uplink) withWeak = false;
  const cell = { sfu: parley.kind || 'parley', transport, kbit, lossPct, withWeak, uplink, joinShaped, capture: capture || '640x480', phases, marks: {}, notes: [] };
  const shape = () => netns(uplink ? 'shape-pub' : 'shape', kbit);
  const unshape = () => netns(uplink ? 'unshape-pub' : 'unshape');
  const open = [];
  let session;
  try {
    netns('unshape');
    netns('unshape-pub');
    netns('loss', 0);
    netns('transport', t.net);
    // How a page joins: openvidu-browser with a token from openvidu-node-client, or livekit-client.
    let join;
    if (parley.kind === 'livekit') {
      const room = `pwn-${randomBytes(4).toString('hex')}`;
      join = (p, name) => p.page.evaluate(({ url, tk, name }) => (name === 'publisher' ? window.pwn.lkPublish(url, tk) : window.pwn.lkSubscribe(url, tk, name)),
        { url: parley.url, tk: parley.token(room, name), name });
    } else {
      session = await within(5000, parley.ov.createSession({}), 'createSession');
      join = async (p, name) => {
        const tk = (await within(5000, session.createConnection({}), 'createConnection')).token;
        return p.page.evaluate(({ tk, name }) => (name === 'publisher' ? window.pwn.publish(tk) : window.pwn.subscribe(tk, name)), { tk, name });
      };
    }

    if (joinShaped) shape(); // the publisher joins over its weak uplink: "alone" is its first seconds there
    const pub = await openPage(browsers.pub, pages.url, null, 'publisher', capture);
    open.push(pub);
    const joinedFrom = Date.now();
    cell.publisherId = await within(30000, join(pub, 'publisher'), 'publisher to publish');
    const others = [];
    for (const name of ['s1', 's2']) {
      const p = await openPage(browsers.others, pages.url, null, name);
      open.push(p);
      others.push(p);
      await within(20000, join(p, name), `${name} to connect`);
    }
    await poll('the unshaped subscribers to decode video and audio', async () => {
      const ok = await Promise.all(others.map((p) => within(15000, p.page.evaluate(() => window.pwn.decoding()), 'decoding').catch(() => false)));
      return ok.every(Boolean);
    }, { timeout: 45000, interval: 250 });
    cell.othersDecodingMs = Date.now() - joinedFrom;
    // Every cell starts from a publisher at its cap. Chrome's send-side estimate started at
    // 300 kbit/s, and when its first probe failed (37 of 92 cells of earlier make test runs) it
    // climbed 8 % a second from there or from lower: the layers above the lowest came 10-30 s late
    // (a failed make test: the random-loss cell's publisher sent 135p alone for its first 19 s,
    // so the lossy subscriber could get nothing better). Parley now has it start at the cap
    // (sfu/startbitrate.go); this keeps the cells' premise whatever the browser does.
    if (!joinShaped) {
      const rampFrom = Date.now();
      try {
        await poll('the publisher\'s send-side estimate to reach 80 % of its cap', async () =>
          ((await within(15000, pub.page.evaluate(() => window.pwn.sendEstimate()), 'sendEstimate')) ?? 0) >= 0.8 * pubCapKbps, { timeout: 45000, interval: 500 });
      } catch (e) {
        cell.notes.push(`the publisher's estimate never reached 80 % of ${pubCapKbps} kbit/s (${e.message})`);
      }
      cell.publisherRampMs = Date.now() - rampFrom;
    }
    // Then let the subscribers settle, so that "alone" is the others' steady state and not a ramp
    // the weak subscriber would be blamed for.
    await sleep(phases.warm ?? 5000);
    cell.marks.alone = Date.now();
    log(`  alone ${phases.alone / 1000} s`);
    await sleep(phases.alone); // a measurement window, not a synchronisation

    let weak = null;
    if (withWeak) {
      weak = await openPage(browsers.weak, pages.url, t.page, 'weak');
      open.push(weak);
    }
    shape();
    if (lossPct) netns('loss', lossPct);
    cell.bytesShaped0 = weakBytes();
    cell.pubBytesShaped0 = pubBytes();
    cell.marks.shaped = Date.now();
    if (weak) {
      // The join runs under the shaping; it may take long or never finish (that is a result).
      cell.weakJoin = within(phases.shaped, join(weak, 'weak'), 'weak subscriber to connect')
        .then((id) => { cell.weakId = id; cell.weakConnectedMs = Date.now() - cell.marks.shaped; }, (e) => { cell.notes.push(`weak join: ${e.message}`); });
    }
    log(`  shaped ${uplink ? 'the publisher\'s uplink ' : ''}${kbit} kbit/s ${t.label}${lossPct ? ` ${lossPct}% loss` : ''} ${phases.shaped / 1000} s`);
    await sleep(phases.shaped);
    cell.bytesShaped1 = weakBytes();
    cell.pubBytesShaped1 = pubBytes();
    unshape();
    netns('loss', 0);
    cell.marks.freed = Date.now();
    log(`  freed ${phases.freed / 1000} s`);
    await sleep(phases.freed);
    cell.bytesFreed1 = weakBytes();
    cell.pubBytesFreed1 = pubBytes();
    if (phases.squeezed) {
      shape();
      cell.marks.squeezed = Date.now();
      log(`  squeezed ${kbit} kbit/s ${phases.squeezed / 1000} s`);
      await sleep(phases.squeezed);
      unshape();
    }
    cell.marks.end = Date.now();
    await cell.weakJoin;
    delete cell.weakJoin;

    cell.raw = {};
    const t0 = Date.now();
    const got = await Promise.all(open.map((p) => results(p).catch((e) => ({ error: e.message }))));
    open.forEach((p, i) => { cell.raw[p.name] = { ...got[i], problems: p.problems }; if (got[i].error) cell.notes.push(`${p.name}: ${got[i].error}`); });
    log(`  results in ${Date.now() - t0} ms`);
    cell.summary = summarise(cell);
    return cell;
  } finally {
    netns('unshape');
    netns('unshape-pub');
    netns('loss', 0);
    await Promise.all(open.reverse().map(async (p) => {
      await within(5000, p.page.evaluate(() => window.pwn.leave()), 'leave').catch(() => {});
      await within(10000, p.context.close(), 'context close').catch(() => {});
    }));
    if (session) await within(5000, session.close(), 'session close').catch(() => {});
  }
}

// at returns the sample nearest to time ms (the page samples every second).
function at(samples, ms) {
  let best = null;
  for (const s of samples || []) if (!best || Math.abs(s.at - ms) < Math.abs(best.at - ms)) best = s;
  return best;
}

// delta of a counter between the samples nearest t0 and t1, per second; null when absent.
function rate(samples, t0, t1, get) {
  const a = at(samples, t0), b = at(samples, t1);
  if (!a || !b || b.at <= a.at) return null;
  const x = get(a), y = get(b);
  if (x === undefined || y === undefined || x === null || y === null) return (y ?? null) === null ? null : y / ((b.at - a.at) / 1000);
  return (y - x) / ((b.at - a.at) / 1000);
}

function diff(samples, t0, t1, get) {
  const a = at(samples, t0), b = at(samples, t1);
  if (!a || !b) return null;
  const y = get(b);
  if (y === undefined || y === null) return null;
  return y - (get(a) ?? 0);
}

const round = (x, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

// subscriberWindow summarises what one subscriber saw between t0 and t1.
function subscriberWindow(r, t0, t1) {
  const s = r?.samples || [];
  const secs = (t1 - t0) / 1000;
  const v = (k) => (x) => x.video?.[k];
  const a = (k) => (x) => x.audio?.[k];
  const lost = diff(s, t0, t1, v('packetsLost')), recv = diff(s, t0, t1, v('packetsReceived'));
  const conc = diff(s, t0, t1, a('concealedSamples')), total = diff(s, t0, t1, a('totalSamplesReceived'));
  const frames = (r?.frames || []).filter(([when]) => when >= t0 && when < t1);
  const lat = frames.map((f) => f[1]).filter((x) => x !== null);
  const inWin = s.filter((x) => x.at >= t0 && x.at <= t1);
  const heights = inWin.map((x) => x.video?.frameHeight).filter(Boolean);
  const ages = inWin.map((x) => x.age).filter((x) => x !== undefined);
  return {
    kbps: round((rate(s, t0, t1, v('bytesReceived')) ?? 0) * 8 / 1000, 0),
    fps: round(rate(s, t0, t1, v('framesDecoded')) ?? 0, 1),
    loss: recv === null ? null : round(Math.max(0, lost ?? 0) / Math.max(1, recv + Math.max(0, lost ?? 0)), 4), // packetsLost falls when late packets arrive
    freezes: diff(s, t0, t1, v('freezeCount')),
    freezeS: round(diff(s, t0, t1, v('totalFreezesDuration')), 2),
    freezeSPerMin: round((diff(s, t0, t1, v('totalFreezesDuration')) ?? 0) * 60 / secs, 1),
    height: median(heights),
    concealed: total ? round(conc / total, 3) : null,
    audioKbps: round((rate(s, t0, t1, a('bytesReceived')) ?? 0) * 8 / 1000, 0),
    latencyP50: median(lat), latencyP95: quantile(lat, 0.95), latencyMax: lat.length ? Math.max(...lat) : null,
    behindMax: ages.length ? Math.max(...ages) : null,
    unreadable: frames.length ? round(frames.filter((f) => f[1] === null).length / frames.length, 2) : null,
    path: inWin.map((x) => x.path?.kind).filter(Boolean).pop() || null,
    ice: inWin.map((x) => x.ice).filter(Boolean).pop() || null,
  };
}

// summarise turns a cell's raw samples into the numbers the bench tabulates and the test asserts.
export function summarise(cell) {
  const { marks, raw, kbit } = cell;
  const settle = 5000; // the first seconds of a phase belong to the change that started it
  const A = [marks.alone, marks.shaped], B = [marks.shaped + settle, marks.freed], Bfull = [marks.shaped, marks.freed], C = [marks.freed, marks.squeezed || marks.end];
  const secs = ([t0, t1]) => (t1 - t0) / 1000;
  const pub = raw.publisher?.samples || [];
  const pubWin = ([t0, t1]) => ({
    kbps: round((rate(pub, t0, t1, (x) => x.pub?.bytesSent) ?? 0) * 8 / 1000, 0),
    pliPerS: round(rate(pub, t0, t1, (x) => x.pub?.pliCount), 2),
    keyframesPerS: round(rate(pub, t0, t1, (x) => x.pub?.keyFramesEncoded), 2),
    fps: round(rate(pub, t0, t1, (x) => x.pub?.framesEncoded), 1),
    height: median(pub.filter((x) => x.at >= t0 && x.at <= t1).map((x) => x.pub?.frameHeight).filter(Boolean)),
  });
  const out = {
    publisher: { alone: pubWin(A), shaped: pubWin(Bfull), freed: pubWin(C) },
    others: {},
  };
  for (const name of ['s1', 's2']) {
    // Their share of what the publisher sent while the weak one is shaped, against the same share
    // after its link is freed: the publisher's own ramp-up (its one encoding in kurento mode sends
    // 3x as much at 30 s as in the first 10) is not the weak subscriber's doing.
    const alone = subscriberWindow(raw[name], ...A), shaped = subscriberWindow(raw[name], ...Bfull), freed = subscriberWindow(raw[name], ...C);
    const share = (o, p) => (p.kbps ? o.kbps / p.kbps : null);
    const now = share(shaped, out.publisher.shaped), base = share(freed, out.publisher.freed);
    out.others[name] = { alone, shaped, freed, kbpsRatio: now !== null && base ? round(now / base, 3) : null };
  }
  out.othersKbpsRatio = round(median(Object.values(out.others).map((o) => o.kbpsRatio)), 3);
  out.othersLatencyP50 = median(Object.values(out.others).map((o) => o.shaped.latencyP50));
  out.othersLossShaped = Math.max(...Object.values(out.others).map((o) => o.shaped.loss ?? 0));
  if (cell.uplink) out.uplink = summariseUplink(cell, { A, B, C, pubWin });
  if (cell.withWeak) {
    const w = raw.weak;
    out.weak = { shaped: subscriberWindow(w, ...B), freed: subscriberWindow(w, ...C) };
    const egress = (cell.bytesShaped1 - cell.bytesShaped0) * 8 / secs(Bfull) / 1000;
    out.weak.egressKbps = round(egress, 0);
    out.weak.egressRatio = round(egress / kbit, 2);
    out.weak.egressFreedKbps = round((cell.bytesFreed1 - cell.bytesShaped1) * 8 / secs(C) / 1000, 0);
    // Recovery: from freeing the link to the first presented frame that is as fresh as the others'
    // (their p95 + 200 ms, at least 400 ms).
    const fresh = Math.max(400, (quantile(Object.values(raw).filter((r) => r !== w && r.role === 'subscriber').flatMap((r) => (r.frames || []).filter((f) => f[0] >= B[0] && f[0] < B[1]).map((f) => f[1])), 0.95) ?? 200) + 200);
    const first = (w?.frames || []).find(([when, lat]) => when >= marks.freed && lat !== null && lat <= fresh);
    out.weak.recoverMs = first ? first[0] - marks.freed : null;
    out.weak.freshMs = fresh;
    out.weak.connectedMs = cell.weakConnectedMs ?? null;
    out.weak.events = (w?.events || []).map((e) => e.type + (e.reason ? `:${e.reason}` : ''));
    // Up: from freeing the link to the first second the weak subscriber receives the height the
    // others do (the top layer); down: from squeezing it again to the first second it receives
    // less. By getStats' frameHeight, so to about a second.
    const othersTop = median(['s1', 's2'].map((n) => subscriberWindow(raw[n], ...C).height));
    out.weak.topHeight = othersTop;
    const ws = w?.samples || [];
    const upAt = ws.find((x) => x.at >= C[0] && x.at < C[1] && othersTop && x.video?.frameHeight >= othersTop);
    out.weak.upMs = upAt ? upAt.at - C[0] : null;
    // The same from the frames presented (requestVideoFrameCallback), to a frame: the samples
    // above add up to a second, by where their phase falls.
    const wf = w?.frames || [];
    const upFrame = wf.find(([when, , , h]) => when >= C[0] && when < C[1] && othersTop && h >= othersTop);
    out.weak.upFrameMs = upFrame ? upFrame[0] - C[0] : null;
    if (marks.squeezed) {
      const downAt = ws.find((x) => x.at >= marks.squeezed && x.video?.frameHeight && x.video.frameHeight < othersTop);
      out.weak.downMs = downAt ? downAt.at - marks.squeezed : null;
      const downFrame = wf.find(([when, , , h]) => when >= marks.squeezed && h && h < othersTop);
      out.weak.downFrameMs = downFrame ? downFrame[0] - marks.squeezed : null;
      out.weak.squeezed = subscriberWindow(w, marks.squeezed, marks.end);
    }
  }
  return out;
}

// mode is the most frequent of xs (null when none).
function mode(xs) {
  const n = new Map();
  for (const x of xs) if (x !== null && x !== undefined) n.set(x, (n.get(x) || 0) + 1);
  let best = null;
  for (const [x, c] of n) if (best === null || c > n.get(best)) best = x;
  return best;
}

// summariseUplink: a cell whose publisher's uplink was shaped. What the two unshaped subscribers
// see (medians of the two) before, while and after, and what the publisher's browser says of it:
// the layers it sends (the heights of the encodings whose bytes grew in a sample), why its encoder
// is limited, its send-side estimate, the PLIs and NACKs that reach it.
function summariseUplink(cell, { A, B, C, pubWin }) {
  const { marks, raw, kbit } = cell;
  const pub = raw.publisher?.samples || [];
  const secs = ([t0, t1]) => (t1 - t0) / 1000;
  const D = marks.squeezed ? [marks.squeezed, marks.end] : null;
  const others = (win) => {
    const w = ['s1', 's2'].map((n) => subscriberWindow(raw[n], ...win));
    const m = (k) => median(w.map((x) => x[k]));
    return { fps: m('fps'), freezeSPerMin: m('freezeSPerMin'), height: m('height'), kbps: m('kbps'), loss: Math.max(...w.map((x) => x.loss ?? 0)),
      latencyP50: m('latencyP50'), latencyP95: m('latencyP95'), behindMax: m('behindMax') };
  };
  const sent = (i) => {
    const a = pub[i - 1], b = pub[i];
    if (!a?.pub?.layers || !b?.pub?.layers) return null;
    return b.pub.layers.filter((l, j) => l.bytes > (a.pub.layers[j]?.bytes ?? 0) + 1000).map((l) => l.h).sort((x, y) => y - x).join('/') || 'none';
  };
  const inWin = ([t0, t1]) => pub.map((x, i) => [x, i]).filter(([x]) => x.at >= t0 && x.at <= t1);
  const pubSide = (win) => ({
    ...pubWin(win),
    nackPerS: round(rate(pub, win[0], win[1], (x) => x.pub?.nackCount), 2),
    rtxKbps: round((rate(pub, win[0], win[1], (x) => x.pub?.retransmittedBytesSent) ?? 0) * 8 / 1000, 0),
    layers: mode(inWin(win).map(([, i]) => sent(i))),
    qlr: mode(inWin(win).map(([x]) => x.pub?.qualityLimitationReason)),
    aobKbps: round((median(inWin(win).map(([x]) => x.pub?.aob)) ?? NaN) / 1000, 0),
  });
  const u = {
    others: { alone: others(A), shaped: others(B), freed: others(C), squeezed: D && others(D) },
    publisher: { alone: pubSide(A), shaped: pubSide(B), freed: pubSide(C), squeezed: D && pubSide(D) },
    uplinkKbps: round((cell.pubBytesShaped1 - cell.pubBytesShaped0) * 8 / secs([marks.shaped, marks.freed]) / 1000, 0),
  };
  u.uplinkRatio = round(u.uplinkKbps / kbit, 2);
  // Up: from freeing the uplink to the first second both subscribers get the height they had
  // alone; down: from squeezing it again to the first second either gets less. As in summarise,
  // by getStats' frameHeight (to about a second) and by the frames presented.
  const top = u.others.alone.height;
  u.topHeight = top;
  const firstAll = (t0, t1, ok) => {
    const ts = ['s1', 's2'].map((n) => (raw[n]?.samples || []).find((x) => x.at >= t0 && x.at < t1 && ok(x.video?.frameHeight))?.at ?? null);
    return ts.every((x) => x !== null) ? Math.max(...ts) - t0 : null;
  };
  const firstAny = (t0, t1, ok) => {
    const ts = ['s1', 's2'].map((n) => (raw[n]?.samples || []).find((x) => x.at >= t0 && x.at < t1 && ok(x.video?.frameHeight))?.at ?? null).filter((x) => x !== null);
    return ts.length ? Math.min(...ts) - t0 : null;
  };
  u.upMs = top ? firstAll(C[0], C[1], (h) => h >= top) : null;
  u.downMs = top && D ? firstAny(D[0], D[1], (h) => h && h < top) : null;
  return u;
}

// describeCell is one line for the log.
export function describeCell(c) {
  const s = c.summary;
  if (c.uplink) {
    const u = s.uplink, o = u.others, p = u.publisher;
    const side = (x, y) => `${x.fps} fps, freezes ${x.freezeSPerMin} s/min, ${x.height ?? '-'}p, latency p50/p95 ${x.latencyP50 ?? '-'}/${x.latencyP95 ?? '-'} ms; publisher sends ${y.layers ?? '-'} at ${y.kbps} kbit/s (${y.qlr ?? '-'}, estimate ${y.aobKbps ?? '-'} kbit/s), PLI ${y.pliPerS}/s, NACK ${y.nackPerS}/s, resent ${y.rtxKbps} kbit/s`;
    if (c.joinShaped) return `publisher joined over an uplink of ${c.kbit} kbit/s: the others decoded ${c.othersDecodingMs} ms after it joined; first seconds: ${side(o.alone, p.alone)}`;
    return `publisher uplink ${c.transport} ${c.kbit} kbit/s: alone: ${side(o.alone, p.alone)}; shaped: ${side(o.shaped, p.shaped)}; uplink carried ${u.uplinkKbps} kbit/s = ${u.uplinkRatio}× link; freed: ${side(o.freed, p.freed)}; top ${u.topHeight ?? '-'}p back after ${u.upMs ?? '-'} ms${o.squeezed ? `; squeezed: ${side(o.squeezed, p.squeezed)}; down after ${u.downMs ?? '-'} ms` : ''}`;
  }
  const w = s.weak;
  const parts = [`${c.sfu === 'livekit' ? 'LiveKit ' : ''}${c.transport} ${c.kbit} kbit/s${c.lossPct ? ` loss ${c.lossPct}%` : ''}${c.withWeak ? '' : ' (no weak subscriber)'}:`];
  if (w) {
    parts.push(`weak ${w.shaped.fps} fps, freezes ${w.shaped.freezeS ?? '-'} s, ${w.shaped.height ?? '-'}p, concealed ${w.shaped.concealed ?? '-'}, latency p50/max ${w.shaped.latencyP50 ?? '-'}/${w.shaped.latencyMax ?? '-'} ms, behind ≤ ${w.shaped.behindMax ?? '-'} ms, path ${w.shaped.path};`);
    parts.push(`egress ${w.egressKbps} kbit/s = ${w.egressRatio}× link; recovered in ${w.recoverMs ?? '-'} ms; top ${w.topHeight ?? '-'}p after ${w.upMs ?? '-'} ms (frame ${w.upFrameMs ?? '-'})${w.squeezed ? `, down after ${w.downMs ?? '-'} ms (frame ${w.downFrameMs ?? '-'}; freezes ${w.squeezed.freezeS ?? '-'} s)` : ''};`);
  }
  parts.push(`PLI/s at publisher ${s.publisher.alone.pliPerS} → ${s.publisher.shaped.pliPerS}; others' kbit/s ratio ${s.othersKbpsRatio}, loss ${s.othersLossShaped};`);
  parts.push(`publisher at its cap ${c.publisherRampMs ?? '-'} ms after the others decoded`);
  return parts.join(' ');
}
