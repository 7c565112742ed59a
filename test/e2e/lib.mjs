// Shared harness of the browser tests: a Parley process per test file, a static page that loads the
// stock openvidu-browser bundle, headless Debian Chromium with fake devices, and polling helpers.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readFileSync, mkdirSync, createWriteStream } from 'node:fs';
import { createServer as netServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import ovnode from 'openvidu-node-client';

export const { OpenVidu } = ovnode;
const here = dirname(fileURLToPath(import.meta.url));
export const outputDir = join(here, 'output');
mkdirSync(outputDir, { recursive: true });

export const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required',
];

export async function freePort() {
  return new Promise((res, rej) => {
    const s = netServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
    s.on('error', rej);
  });
}

// poll calls fn until it returns a truthy value or the deadline passes; the error names what was
// missing, with the last value seen.
export async function poll(what, fn, { timeout = 20000, interval = 200 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

// startParley runs bin/parley in dev mode on free ports; its log goes to output/<name>.log. With
// { metrics: true } it also serves /metrics on a free loopback port (metricsPort). A port taken by
// someone else between our probe and parley's bind is retried on fresh ports.
export async function startParley(name, env = {}, { metrics = false } = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startParleyOnce(name, env, metrics);
    } catch (e) {
      if (attempt >= 3 || !e.portTaken) throw e;
    }
  }
}

async function startParleyOnce(name, env, metrics) {
  const bin = process.env.PARLEY_BIN || resolve(here, '../../bin/parley');
  const port = await freePort();
  let metricsPort;
  while (metrics && (!metricsPort || metricsPort === port)) metricsPort = await freePort();
  const logPath = join(outputDir, `${name}.parley.log`);
  const log = createWriteStream(logPath);
  // PARLEY_BIN is ours, not parley's: parley refuses PARLEY_* names it does not know.
  const { PARLEY_BIN: _unused, ...inherited } = process.env;
  const proc = spawn(bin, ['serve'], {
    env: { ...inherited, HTTPS_PORT: String(port), OPENVIDU_SECRET: 'MY_SECRET', DOTENV_PATH: '', PARLEY_LOG_LEVEL: 'debug', PARLEY_DATA_DIR: join(outputDir, `${name}.data`),
      ...(metrics ? { PARLEY_METRICS_ADDR: `127.0.0.1:${metricsPort}` } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (b) => { tail = (tail + b).slice(-4000); };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  let exited = null;
  const closed = new Promise((r) => proc.on('close', r)); // after its output has been read
  proc.on('exit', (code, sig) => { exited = { code, sig }; });
  const url = `http://localhost:${port}`;
  try {
    await poll('parley to answer', async () => {
      if (exited) throw new Error('exited');
      try { return (await fetch(`${url}/openvidu/api/config/openvidu-publicurl`)).ok; } catch { return false; }
    }, { timeout: 15000, interval: 100 });
  } catch (e) {
    if (!exited) {
      proc.kill('SIGKILL');
      throw e;
    }
    await closed;
    const err = new Error(`parley exited early (${JSON.stringify(exited)}); see ${logPath}:\n${tail}`);
    err.portTaken = /address already in use/.test(tail);
    throw err;
  }
  return {
    url, port, metricsPort, logPath, proc,
    ov: new OpenVidu(url, 'MY_SECRET'),
    // stop sends SIGTERM and resolves with the exit code (0 is a clean shutdown).
    async stop() {
      if (exited) return exited.code;
      const done = new Promise((r) => proc.on('exit', (code) => r(code)));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      const code = await done;
      clearTimeout(t);
      return code;
    },
  };
}

// startPages serves the page that loads the SDK bundle from the npm package, as a tutorial would.
export async function startPages() {
  const sdk = readFileSync(join(here, 'node_modules/openvidu-browser/static/js/openvidu-browser-2.32.2.min.js'));
  const page = '<!doctype html><html><head><meta charset="utf-8"><title>e2e</title></head><body><script src="/openvidu-browser.min.js"></script><div id="videos"></div></body></html>';
  const srv = createServer((req, res) => {
    if (req.url === '/openvidu-browser.min.js') { res.setHeader('content-type', 'text/javascript'); res.end(sdk); return; }
    res.setHeader('content-type', 'text/html'); res.end(page);
  });
  const port = await freePort();
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  return { url: `http://localhost:${port}/`, close: () => new Promise((r) => srv.close(r)) };
}

export async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: chromiumArgs });
}

// firefoxPrefs give Debian's Firefox ESR fake devices without a permission prompt, as
// --use-fake-device-for-media-stream and --use-fake-ui-for-media-stream do for Chromium, and keep
// it from reaching out (updates, telemetry) during a test.
export const firefoxPrefs = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'app.update.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
  'media.gmp-manager.updateEnabled': false,
};

// launchFirefox starts Debian's Firefox ESR (never a downloaded build) through puppeteer-core over
// WebDriver BiDi, and returns it behind the few calls of playwright's Browser that this harness
// uses (newContext, addInitScript, newPage, close), so openParticipant takes either browser.
export async function launchFirefox() {
  // Imported here, so suites without Firefox run on a node_modules installed before it came in.
  const { default: puppeteer } = await import('puppeteer-core');
  const b = await puppeteer.launch({
    browser: 'firefox', executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr', headless: true,
    extraPrefsFirefox: firefoxPrefs,
  });
  return {
    name: 'firefox',
    version: () => b.version(),
    async newContext() {
      const ctx = await b.createBrowserContext();
      const scripts = [];
      return {
        addInitScript: async (s) => { scripts.push(s); },
        async newPage() {
          const page = await ctx.newPage();
          for (const s of scripts) await page.evaluateOnNewDocument(s);
          return page;
        },
        close: () => ctx.close(),
      };
    },
    close: () => b.close(),
  };
}

// openParticipant opens a page in its own browser context and connects it with token. The page
// records every SDK event the tests look at in window.events, and subscribes to every stream.
// initScript, if given, runs in the page before the SDK loads (e.g. to force a WebRTC policy);
// resolution and frameRate are the camera's.
export async function openParticipant(browser, pagesUrl, token, { name = 'user', publish = true, initScript, resolution = '640x480', frameRate = 30 } = {}) {
  const context = await browser.newContext();
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(pagesUrl);
  const connectMs = await page.evaluate(async ({ token, name, publish, resolution, frameRate }) => {
    const OV = new OpenVidu();
    OV.enableProdMode();
    const session = OV.initSession();
    window.OV = OV; window.session = session; window.subscribers = []; window.events = [];
    const note = (type, extra) => window.events.push({ type, ...extra });
    session.on('streamCreated', (e) => {
      const sub = session.subscribe(e.stream, 'videos');
      window.subscribers.push(sub);
    });
    session.on('streamDestroyed', (e) => note('streamDestroyed', { reason: e.reason, connectionId: e.stream.connection.connectionId }));
    session.on('connectionDestroyed', (e) => note('connectionDestroyed', { reason: e.reason, connectionId: e.connection.connectionId }));
    session.on('sessionDisconnected', (e) => note('sessionDisconnected', { reason: e.reason }));
    session.on('signal:chat', (e) => note('signal:chat', { data: e.data, from: e.from && e.from.connectionId }));
    const t0 = performance.now();
    await session.connect(token, { clientData: name });
    const ms = performance.now() - t0;
    if (publish) {
      const pub = await OV.initPublisherAsync(undefined, { resolution, frameRate });
      pub.on('streamDestroyed', (e) => note('publisherStreamDestroyed', { reason: e.reason }));
      await session.publish(pub);
      window.publisher = pub;
    }
    return ms;
  }, { token, name, publish, resolution, frameRate });
  return { page, context, consoleErrors, connectMs, id: await page.evaluate(() => window.session.connection.connectionId) };
}

// mediaStats reads, for every subscriber of the page, the decoded video frames and received audio
// bytes from its RTCPeerConnection.
export async function mediaStats(p) {
  return p.page.evaluate(async () => {
    const out = [];
    for (const sub of window.subscribers) {
      // In simulcast (mediasoup) mode openvidu-browser throws until the server's offer made the peer.
      let pc;
      try { pc = sub.stream.getRTCPeerConnection && sub.stream.getRTCPeerConnection(); } catch { pc = undefined; }
      const r = { from: sub.stream.connection.connectionId, framesDecoded: 0, audioBytes: 0 };
      if (pc) {
        (await pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') r.framesDecoded += s.framesDecoded || 0;
          if (s.type === 'inbound-rtp' && s.kind === 'audio') r.audioBytes += s.bytesReceived || 0;
        });
      }
      out.push(r);
    }
    return out;
  });
}

// waitDecoding waits until page p decodes video and receives audio from every one of fromIds.
export async function waitDecoding(p, fromIds, timeout = 30000) {
  return poll(`${p.id} to decode video and receive audio from ${fromIds.join(', ')}`, async () => {
    const stats = await mediaStats(p);
    const ok = fromIds.every((id) => stats.some((s) => s.from === id && s.framesDecoded > 0 && s.audioBytes > 0));
    return ok ? stats : false;
  }, { timeout });
}

// waitEvent waits until page p has seen an SDK event of type whose fields match want.
export async function waitEvent(p, type, want = {}, timeout = 15000) {
  return poll(`${p.id} to see ${type} ${JSON.stringify(want)}`, () => p.page.evaluate(({ type, want }) =>
    window.events.find((e) => e.type === type && Object.entries(want).every(([k, v]) => e[k] === v)) || false,
  { type, want }), { timeout });
}
