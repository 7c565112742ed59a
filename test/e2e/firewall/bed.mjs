// The firewall bed's moving parts, seen from the runner in the root namespace: parley in pfw-srv,
// Chromium in pfw-a / pfw-b through a wrapper executable, the static page server, the cells'
// firewalls (netns.sh) and bounded waiting. Every wait here has a deadline.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { readFileSync, writeFileSync, chmodSync, mkdtempSync, mkdirSync, createWriteStream, rmSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
// lib.mjs's Firefox prefs: fake devices, no prompts, no updates or telemetry.
import { firefoxPrefs as baseFirefoxPrefs } from '../lib.mjs';

export const here = dirname(fileURLToPath(import.meta.url));
export const outputDir = join(here, 'output');
mkdirSync(outputDir, { recursive: true });

// The bed's /24 (netns.sh explains why it is not a private range by default).
export const NET = process.env.PFW_NET || '203.0.113';
export const SERVER = `${NET}.1`;
export const RUNNER = `${NET}.254`;
export const DOMAIN = 'parley.test';
export const SECRET = 'firewall-test-secret';
export const PAGE_PORT = 8077;
export const PROXY_PORT = 3128;
export const NS = { srv: 'pfw-srv', A: 'pfw-a', B: 'pfw-b' };

// The packages come from test/e2e/node_modules (test/e2e/setup.sh installs them).
const require = createRequire(join(here, '..', 'package.json'));
export const { chromium } = require('playwright-core');
export const { OpenVidu } = require('openvidu-node-client');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// within rejects when p has not settled after ms: no browser call or server call can hang the bed.
export function within(ms, p, what) {
  let t;
  const timeout = new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

// JOIN_DEADLINE_MS bounds one participant's connect and publish.
export const JOIN_DEADLINE_MS = 15000;

// openPage loads the bed's page (pagesUrl) in a fresh context of browser, with a new token of
// session for it; page errors are collected in problems. The caller closes context (closed here
// when this fails).
export async function openPage(browser, pagesUrl, session) {
  const context = await within(10000, browser.newContext(), 'new browser context');
  try {
    const page = await within(10000, context.newPage(), 'new page');
    const problems = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(pagesUrl, { timeout: 10000 });
    const token = (await within(5000, session.createConnection({}), 'createConnection')).token;
    return { context, page, token, problems };
  } catch (e) {
    await within(5000, context.close(), 'context close').catch(() => {});
    throw e;
  }
}

// openParticipant opens the bed's page (openPage) and joins session, publishing the fake camera.
export async function openParticipant(browser, pagesUrl, session, name) {
  const { context, page, token, problems } = await openPage(browser, pagesUrl, session);
  const id = await within(JOIN_DEADLINE_MS, page.evaluate(({ token, name }) => window.pfw.join(token, { name, publish: true }), { token, name }), `${name} to connect and publish`);
  return { name, context, page, id, problems };
}

// poll calls fn until it returns something truthy or the deadline passes.
export async function poll(what, fn, { timeout = 20000, interval = 100 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(interval);
  }
}

export const setCell = (ns, cell) => execFileSync(join(here, 'netns.sh'), ['cell', ns, cell], { stdio: 'inherit', timeout: 15000 });

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : Math.round((s[m - 1] + s[m]) / 2);
}

// startParley runs the server in production mode inside pfw-srv, with an environment of its own
// (nothing inherited but PATH), and waits for its REST API.
export async function startParley(bin, logName = 'parley.log', extraEnv = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'pfw-data-'));
  const logPath = join(outputDir, logName);
  const log = createWriteStream(logPath);
  const env = {
    PATH: process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dataDir, DOTENV_PATH: '',
    DOMAIN_OR_PUBLIC_IP: DOMAIN, OPENVIDU_SECRET: SECRET, HTTPS_PORT: '443', HTTP_PORT: '80',
    CERTIFICATE_TYPE: 'selfsigned', PARLEY_DATA_DIR: dataDir, PARLEY_MEDIA_LISTEN_IPS: SERVER,
    PARLEY_LOG_LEVEL: 'debug', ...extraEnv,
  };
  const proc = spawn('ip', ['netns', 'exec', NS.srv, bin, 'serve'], { env, cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; });
  const base = `https://${SERVER}:443`;
  await poll(`parley to answer on ${base}`, async () => {
    if (exited) throw new Error(`parley exited at start-up (${JSON.stringify(exited)}); see ${logPath}`);
    try { return (await fetch(`${base}/openvidu/api/config/openvidu-publicurl`, { signal: AbortSignal.timeout(2000) })).ok; } catch { return false; }
  }, { timeout: 20000 });
  const auth = 'Basic ' + Buffer.from(`OPENVIDUAPP:${SECRET}`).toString('base64');
  return {
    logPath, base, ov: new OpenVidu(base, SECRET),
    get exited() { return exited; },
    // rest GETs a REST path as JSON, bounded.
    async rest(path) {
      const res = await fetch(base + path, { headers: { authorization: auth }, signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
      return res.json();
    },
    // stop sends SIGTERM and waits up to 10 s for the exit, then SIGKILL; resolves with the exit.
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

// startPages serves the participants' page on the runner: the stock SDK bundle from the npm package
// and page.js, the part that drives it.
export async function startPages() {
  const sdk = readFileSync(require.resolve('openvidu-browser/static/js/openvidu-browser-2.32.2.min.js'));
  const driver = readFileSync(join(here, 'page.js'));
  const html = '<!doctype html><html><head><meta charset="utf-8"><title>parley firewall bed</title></head><body>' +
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
  const close = () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); });
  return { url: `http://${RUNNER}:${PAGE_PORT}/`, close: () => within(5000, close(), 'page server close') };
}

// The Chromium flags of the bed; the proxy cells add their proxy.
export function chromiumArgs({ proxyPort }) {
  const args = [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream', '--ignore-certificate-errors', '--autoplay-policy=no-user-gesture-required',
    `--host-resolver-rules=MAP ${DOMAIN} ${SERVER}`,
    `--unsafely-treat-insecure-origin-as-secure=http://${RUNNER}:${PAGE_PORT}`,
  ];
  // The page comes from the intranet (the runner), as a proxy auto-config would arrange it; the
  // server is reachable only through the proxy.
  if (proxyPort) args.push(`--proxy-server=http://${RUNNER}:${proxyPort}`, `--proxy-bypass-list=${RUNNER}`);
  return args;
}

// wrapperFor writes the executable playwright starts: Chromium inside the namespace. Playwright
// drives it over the debugging pipe, which the namespace does not affect.
const wrapperDir = mkdtempSync(join(tmpdir(), 'pfw-chromium-'));
export function wrapperFor(ns) {
  const path = join(wrapperDir, `chromium-${ns}`);
  writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${ns} ${process.env.CHROMIUM || '/usr/bin/chromium'} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}
export const removeWrappers = () => rmSync(wrapperDir, { recursive: true, force: true });

export async function launchIn(ns, { proxyPort }) {
  return chromium.launch({ executablePath: wrapperFor(ns), args: chromiumArgs({ proxyPort }), timeout: 20000 });
}

// The prefs of the bed's Firefox, beside lib.mjs's (fake devices, no prompts, no phoning home):
// the runner's page counts as a secure origin (as --unsafely-treat-insecure-origin-as-secure does
// for Chromium), and no system proxy or DNS over HTTPS is used: parley.test comes from the
// namespace's hosts file (netns.sh).
export const firefoxPrefs = {
  ...baseFirefoxPrefs,
  'dom.securecontext.allowlist': RUNNER,
  'network.proxy.type': 0,
  'network.trr.mode': 5,
};

// firefoxProxyPrefs send Firefox's HTTP and HTTPS through the runner's proxy on port (the proxy
// cells), except the runner's page, as --proxy-server and --proxy-bypass-list do for Chromium.
export const firefoxProxyPrefs = (port) => ({
  'network.proxy.type': 1, 'network.proxy.http': RUNNER, 'network.proxy.http_port': port,
  'network.proxy.ssl': RUNNER, 'network.proxy.ssl_port': port, 'network.proxy.no_proxies_on': RUNNER,
});

// launchFirefoxIn starts Debian's Firefox ESR inside namespace ns through puppeteer-core over
// WebDriver BiDi, returning playwright's Browser calls the tests use (newContext, newPage, close).
// Puppeteer has no pipe for Firefox: it reads "WebDriver BiDi listening on ws://127.0.0.1:P" and
// connects there, but that is the namespace's loopback. So Firefox gets port P, and the runner
// listens on its own 127.0.0.1:P and relays each connection into the namespace's loopback through
// a node started there (the Host header stays 127.0.0.1:P, which Firefox's remote agent wants).
export async function launchFirefoxIn(ns, { proxyPort, trustCA } = {}) {
  const { default: puppeteer } = await import('puppeteer-core');
  const relays = new Set();
  const relay = createNetServer((sock) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e',
      `const s = require('net').connect(${port}, '127.0.0.1'); process.stdin.pipe(s); s.pipe(process.stdout);` +
      "s.on('error', () => process.exit(1)); s.on('close', () => process.exit(0));"], { stdio: ['pipe', 'pipe', 'ignore'] });
    relays.add(child);
    child.on('exit', () => { relays.delete(child); sock.destroy(); });
    sock.pipe(child.stdin);
    child.stdout.pipe(sock);
    sock.on('error', () => child.kill());
    sock.on('close', () => child.kill());
  });
  await new Promise((r, j) => { relay.once('error', j); relay.listen(0, '127.0.0.1', r); });
  const { port } = relay.address();
  const firefox = process.env.FIREFOX || '/usr/bin/firefox-esr';
  const path = join(wrapperDir, `firefox-${ns}${trustCA ? '-ca' : ''}`);
  if (trustCA) {
    // Firefox has no flag to trust a CA; an enterprise policy does (Certificates.Install), read from
    // <install dir>/distribution/policies.json. That directory is bind-mounted inside the mount
    // namespace `ip netns exec` makes for this Firefox alone: nothing on the host changes.
    const dist = join(wrapperDir, `distribution-${ns}`);
    mkdirSync(dist, { recursive: true });
    writeFileSync(join(dist, 'policies.json'), JSON.stringify({ policies: { Certificates: { Install: [trustCA] } } }));
    const target = join(dirname(realpathSync(firefox)), 'distribution');
    writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${ns} sh -c 'mount --bind "$0" ${target} && exec ${firefox} "$@"' ${dist} "$@"\n`);
  } else {
    writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${ns} ${firefox} "$@"\n`);
  }
  chmodSync(path, 0o755);
  let b;
  try {
    b = await within(30000, puppeteer.launch({
      browser: 'firefox', executablePath: path, headless: true, debuggingPort: port,
      acceptInsecureCerts: !trustCA, extraPrefsFirefox: { ...firefoxPrefs, ...(proxyPort ? firefoxProxyPrefs(proxyPort) : {}) },
    }), `Firefox to start in ${ns}`);
  } catch (e) {
    relay.close();
    throw e;
  }
  const closeRelay = () => { for (const c of relays) c.kill(); relay.close(); };
  return {
    name: 'firefox',
    version: () => b.version(),
    async newContext() {
      const ctx = await b.createBrowserContext();
      return {
        async newPage() {
          const page = await ctx.newPage();
          // playwright's goto(url, { timeout }) and evaluate(fn, arg), as the tests call them
          return {
            goto: (url, opts) => page.goto(url, opts),
            evaluate: (fn, arg) => page.evaluate(fn, arg),
            on: (ev, fn) => page.on(ev, fn),
          };
        },
        close: () => ctx.close(),
      };
    },
    close: async () => { try { await within(10000, b.close(), 'Firefox close'); } finally { closeRelay(); } },
  };
}

// makeCertificates writes, into dir, a certificate authority (ca.pem) and a certificate for
// DOMAIN it signed (parley.pem, parley.key): parley serves it as an owncert, and a browser that
// trusts ca.pem verifies parley as it would a real server.
export function makeCertificates(dir) {
  const f = (n) => join(dir, n);
  const ssl = (args) => execFileSync('openssl', args, { stdio: 'ignore', timeout: 15000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl(['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=parley firewall bed CA', '-keyout', f('ca.key'), '-out', f('ca.pem'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  ssl(['req', ...ec, '-subj', `/CN=${DOMAIN}`, '-keyout', f('parley.key'), '-out', f('parley.csr')]);
  writeFileSync(f('ext.cnf'), `subjectAltName=DNS:${DOMAIN}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  ssl(['x509', '-req', '-in', f('parley.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2',
    '-extfile', f('ext.cnf'), '-out', f('parley.pem')]);
  return { ca: f('ca.pem'), cert: f('parley.pem'), key: f('parley.key') };
}

// describePath turns a getStats candidate pair into one short label: the class of path, then the
// local candidate's type and protocol (relay: udp/<how the browser reaches TURN>, and the TURN URL's
// scheme and port), then the server's port the pair ends on.
export function describePath(p) {
  if (!p) return 'none';
  if (p.localType === 'relay') {
    const m = /^(turns?):[^?]*:(\d+)/.exec(p.url || '');
    return `TURN/${(p.relayProtocol || '?').toUpperCase()}: relay ${p.protocol}/${p.relayProtocol}${m ? ` via ${m[1]} :${m[2]}` : ''} → :${p.remotePort}`;
  }
  if (p.protocol === 'tcp') return `ICE-TCP: ${p.localType} tcp → :${p.remotePort}`;
  return `${(p.protocol || '?').toUpperCase()}: ${p.localType} ${p.protocol} → :${p.remotePort}`;
}

// pathKind is the class the assertions look at: udp (direct), ice-tcp, turn-udp, turn-tcp, turn-tls.
export function pathKind(p) {
  if (!p) return 'none';
  if (p.localType === 'relay') return `turn-${p.relayProtocol || '?'}`;
  return p.protocol === 'tcp' ? 'ice-tcp' : p.protocol;
}

export const repoRoot = resolve(here, '../../..');
