// The proxied-mode bed (run.sh builds the namespaces and starts this file): HAProxy, then nginx
// (when Debian's nginx and libnginx-mod-stream are installed), each configured with its file in
// deploy/proxy/ as shipped, terminates TLS on TCP 443 in front of parley (PARLEY_BEHIND_PROXY=true)
// and passes the TLS server name turn.parley.test through to parley's TURN/TLS. Everything the participants do goes through https://parley.test/; media goes beside
// the proxy (UDP 443 to parley), or, for a participant that can reach only TCP 443, through
// TURN/TLS inside HAProxy's 443.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, readFileSync, writeFileSync, mkdtempSync, mkdirSync, createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { within, poll, wrapperFor, removeWrappers, describePath, pathKind } from '../firewall/bed.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const outputDir = join(here, 'output');
mkdirSync(outputDir, { recursive: true });
const require = createRequire(join(here, '..', 'package.json'));
const { chromium } = require('playwright-core');
const { OpenVidu } = require('openvidu-node-client');

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // HAProxy's certificate is self-signed

const NET = process.env.PPX_NET || '198.51.100';
const SERVER = `${NET}.1`;
const RUNNER = `${NET}.254`;
const ADDR = { A: `${NET}.11`, B: `${NET}.12` };
const NS = { srv: 'ppx-srv', A: 'ppx-a', B: 'ppx-b' };
const DOMAIN = 'parley.test';
const TURN_HOST = 'turn.parley.test';
const SECRET = 'proxied-bed-secret';
const PAGE_PORT = 8078;
const BIN = process.env.PARLEY_BIN || join(repoRoot, 'bin/parley');
const BASE = `https://${SERVER}`; // HAProxy's 443; no server name, so the web side of the split
const auth = 'Basic ' + Buffer.from(`OPENVIDUAPP:${SECRET}`).toString('base64');

const setCell = (ns, cell) => execFileSync(join(here, 'netns.sh'), ['cell', ns, cell], { stdio: 'inherit', timeout: 15000 });
const tmp = mkdtempSync(join(tmpdir(), 'ppx-'));
const procs = [];
let pages;

// startIn runs a command inside the server namespace with its own environment, logging to file.
function startIn(name, argv, env) {
  const log = createWriteStream(join(outputDir, `${name}.log`));
  const proc = spawn('ip', ['netns', 'exec', NS.srv, ...argv], { env: { PATH: process.env.PATH, ...env }, cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  const p = { name, proc, exited: null };
  proc.on('exit', (code, signal) => { p.exited = { code, signal }; });
  procs.push(p);
  return p;
}

async function rest(path, init = {}) {
  const res = await fetch(BASE + path, { ...init, headers: { authorization: auth, ...(init.headers || {}) }, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

// PROXIES: how each proxy runs from its shipped file. adapt replaces the file's names and paths
// with the bed's; routedTURN tells from the proxy's log that turn.parley.test went to parley's
// TURN/TLS by server name.
const PROXIES = {
  haproxy: {
    file: 'haproxy.cfg',
    available: () => commandExists('haproxy'),
    adapt: (cfg, pem) => cfg.replaceAll('/etc/haproxy/certs/meet.example.com.pem', pem.pem),
    check: (path) => ['haproxy', ['-c', '-q', '-f', path]],
    argv: (path) => ['haproxy', '-db', '-f', path],
    routedTURN: () => /parley_turn\/parley/.test(readLog('haproxy.log')),
  },
  nginx: {
    file: 'nginx.conf',
    available: () => commandExists('nginx') && existsSync('/usr/lib/nginx/modules/ngx_stream_module.so'),
    adapt: (cfg, pem) => cfg.replaceAll('/etc/nginx/certs/meet.example.com.crt', pem.crt).replaceAll('/etc/nginx/certs/meet.example.com.key', pem.key)
      .replaceAll('/run/nginx.pid', join(tmp, 'nginx.pid')).replaceAll('/var/log/nginx/', `${outputDir}/nginx-`),
    check: (path) => ['nginx', ['-t', '-q', '-c', path, '-g', `error_log ${outputDir}/nginx-check.log;`]],
    argv: (path) => ['nginx', '-c', path, '-g', 'daemon off;'],
    routedTURN: () => new RegExp(`sni=${TURN_HOST.replaceAll('.', '\\.')} upstream=127\\.0\\.0\\.1:5350`).test(readLog('nginx-stream.log')),
  },
};
const commandExists = (c) => { try { execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }); return true; } catch { return false; } };
const readLog = (name) => { try { return readFileSync(join(outputDir, name), 'utf8'); } catch { return ''; } };
const pem = {};

before(async () => {
  const route = execFileSync('ip', ['route', 'get', SERVER], { encoding: 'utf8', timeout: 5000 });
  assert.match(route, /\bdev ppx-br\b/, `the route to ${SERVER} must be the bed's bridge (run.sh builds it): ${route}`);

  // HAProxy's certificate for the web name, and its configuration: the shipped file with the
  // bed's names.
  Object.assign(pem, { key: join(tmp, 'web.key'), crt: join(tmp, 'web.crt'), pem: join(tmp, 'web.pem') });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${DOMAIN}`, '-addext', `subjectAltName=DNS:${DOMAIN}`, '-keyout', pem.key, '-out', pem.crt], { stdio: 'ignore', timeout: 15000 });
  writeFileSync(pem.pem, readFileSync(pem.crt, 'utf8') + readFileSync(pem.key, 'utf8'));

  const parley = startIn('parley', [BIN, 'serve'], {
    HOME: tmp, DOTENV_PATH: '', DOMAIN_OR_PUBLIC_IP: DOMAIN, OPENVIDU_SECRET: SECRET, CERTIFICATE_TYPE: 'selfsigned',
    PARLEY_BEHIND_PROXY: 'true', PARLEY_MEDIA_PORT: '443', PARLEY_MEDIA_TCP_PORT: '5349', PARLEY_TURN_TLS_HOST: TURN_HOST,
    PARLEY_DATA_DIR: join(tmp, 'data'), PARLEY_MEDIA_LISTEN_IPS: SERVER, PARLEY_LOG_LEVEL: 'debug', PARLEY_METRICS_ADDR: 'off',
  });
  await poll('parley to listen on 127.0.0.1:5443', async () => {
    if (parley.exited) throw new Error(`parley exited at start-up (${JSON.stringify(parley.exited)}); see output/parley.log`);
    return /parley serving behind a reverse proxy/.test(readLog('parley.log'));
  }, { timeout: 20000, interval: 200 });

  const sdk = readFileSync(require.resolve('openvidu-browser/static/js/openvidu-browser-2.32.2.min.js'));
  const driver = readFileSync(join(here, '..', 'firewall', 'page.js'));
  const html = '<!doctype html><html><head><meta charset="utf-8"><title>parley proxied bed</title></head><body>' +
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

async function stop(p) {
  if (p.exited) return;
  const done = new Promise((r) => p.proc.once('exit', r));
  p.proc.kill('SIGTERM');
  await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
  if (!p.exited) p.proc.kill('SIGKILL');
  await Promise.race([done, new Promise((r) => setTimeout(r, 2000))]);
}

after(async () => {
  await pages?.close();
  for (const p of procs.reverse()) await stop(p);
  removeWrappers();
  rmSync(tmp, { recursive: true, force: true });
});

async function launch(ns) {
  const args = [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--ignore-certificate-errors',
    '--autoplay-policy=no-user-gesture-required', `--host-resolver-rules=MAP ${DOMAIN} ${SERVER}, MAP ${TURN_HOST} ${SERVER}`,
    `--unsafely-treat-insecure-origin-as-secure=http://${RUNNER}:${PAGE_PORT}`,
  ];
  return chromium.launch({ executablePath: wrapperFor(ns), args, timeout: 40000 });
}

async function openParticipant(browser, session, name) {
  const context = await within(30000, browser.newContext(), 'new browser context');
  const page = await within(30000, context.newPage(), 'new page');
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(pages.url, { timeout: 30000 });
  const token = (await within(5000, session.createConnection({}), 'createConnection')).token;
  assert.match(token, new RegExp(`^wss://${DOMAIN.replace('.', '\\.')}/openvidu\\?`), 'tokens name the public URL');
  const id = await within(45000, page.evaluate(({ token, name }) => window.pfw.join(token, { name, publish: true }), { token, name }), `${name} to connect and publish`);
  return { name, page, id, problems };
}

const report = (p) => within(15000, p.page.evaluate(() => window.pfw.report()), `${p.name}'s stats`);
const decodes = (r, from) => r.subscribers.some((s) => s.from === from && s.framesDecoded > 0);

// decodeAll waits until every participant in subs decodes the video of every one in pubs, and
// returns their last reports by name; on failure it says what each browser saw.
async function decodeAll(subs, pubs, what) {
  let last = {};
  try {
    await poll(what, async () => {
      // A loaded machine may keep getStats from answering for a while: that is a miss, not the end.
      for (const p of subs) last[p.name] = await report(p).catch((e) => ({ subscribers: [], error: e.message }));
      return subs.every((p) => pubs.every((q) => q === p || decodes(last[p.name], q.id)));
    }, { timeout: 60000, interval: 250 });
  } catch (e) {
    const diag = {};
    for (const p of subs) diag[p.name] = await p.page.evaluate(() => window.pfw.diagnose()).catch(String);
    throw new Error(`${e.message}\nreports: ${JSON.stringify(last).slice(0, 3000)}\ndiagnose: ${JSON.stringify(diag).slice(0, 4000)}\npage errors: ${subs.flatMap((p) => p.problems)}`);
  }
  return last;
}

// withPair opens A (open network) and B (behind cellB) in one session and runs fn once they
// decode each other.
async function withPair(cellB, fn) {
  setCell(NS.A, 'open');
  setCell(NS.B, cellB);
  const browsers = await Promise.all([launch(NS.A), launch(NS.B)]);
  let session;
  try {
    const ov = new OpenVidu(BASE, SECRET);
    session = await within(5000, ov.createSession({}), 'createSession');
    const [a, b] = await Promise.all([openParticipant(browsers[0], session, 'A'), openParticipant(browsers[1], session, 'B')]);
    const last = await decodeAll([a, b], [a, b], "A and B to decode each other's video");
    const subA = last.A.subscribers.find((x) => x.from === b.id);
    const subB = last.B.subscribers.find((x) => x.from === a.id);
    console.log(`# B behind ${cellB}: A ← ${describePath(subA.path)}; B ← ${describePath(subB.path)}`);
    await fn({ a, b, subA, subB, session, browsers });
  } finally {
    if (session) await within(5000, session.close(), 'session close').catch(() => {});
    await Promise.all(browsers.map((br) => within(10000, br.close(), 'browser close').catch(() => {})));
  }
}

// The cells that do not depend on the proxy's kind run once, behind nginx when it is there.
const extrasBehind = PROXIES.nginx.available() ? 'nginx' : 'haproxy';

for (const [name, proxy] of Object.entries(PROXIES)) {
  describe(`behind ${name}`, { skip: !proxy.available() && `${name} is not installed` }, () => {
    let proc, cfgPath;
    const startProxy = async () => {
      proc = startIn(name, proxy.argv(cfgPath), {});
      await poll(`parley to answer through ${name}`, async () => {
        if (proc.exited) throw new Error(`${name} exited at start-up (${JSON.stringify(proc.exited)}); see output/${name}.log`);
        try { return (await rest('/openvidu/api/config/openvidu-publicurl')).status === 200; } catch { return false; }
      }, { timeout: 20000, interval: 200 });
    };
    before(async () => {
      const shipped = readFileSync(join(repoRoot, 'deploy/proxy', proxy.file), 'utf8');
      const cfg = proxy.adapt(shipped, pem).replaceAll('turn.example.com', TURN_HOST).replaceAll('meet.example.com', DOMAIN);
      assert.ok(!/(meet|turn)\.example\.com/.test(cfg), `deploy/proxy/${proxy.file} has names the bed does not replace`);
      cfgPath = join(tmp, proxy.file);
      writeFileSync(cfgPath, cfg);
      const [cmd, args] = proxy.check(cfgPath);
      execFileSync(cmd, args, { stdio: 'inherit', timeout: 10000 });
      await startProxy();
    });
    after(async () => { if (proc) await stop(proc); });

    test('REST, the app and the public URL through the proxy', async () => {
      const url = await rest('/openvidu/api/config/openvidu-publicurl');
      assert.equal(url.body, `https://${DOMAIN}/`, 'openvidu-publicurl names the proxy\'s URL, not 127.0.0.1:5443');
      const app = await rest('/app/api/config');
      assert.equal(app.status, 200, `the app's API through the proxy: ${app.status} ${app.body.slice(0, 200)}`);
      const redirect = await fetch(`http://${SERVER}/openvidu/api/sessions`, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
      assert.equal(redirect.status, 301, 'port 80 redirects');
      assert.equal(redirect.headers.get('location'), `https://${SERVER}/openvidu/api/sessions`);
    });

    test('A (open network) and B (only TCP 443) decode each other; B through TURN/TLS passed by SNI; REST shows their own addresses', async () => {
      await withPair('tcp443', async ({ a, b, subB, session }) => {
        assert.equal(pathKind(subB.path), 'turn-tls', `B can reach only TCP 443: its media must come through TURN/TLS, got ${describePath(subB.path)}`);
        assert.match(subB.path.url || '', new RegExp(`^turns:${TURN_HOST.replaceAll('.', '\\.')}:443`), `through the turns: host name ${name} passes through`);
        const s = JSON.parse((await rest(`/openvidu/api/sessions/${session.sessionId}`)).body);
        const ipOf = (id) => s.connections.content.find((c) => c.connectionId === id)?.ip;
        assert.equal(ipOf(a.id), ADDR.A, "REST shows A's own address, not the proxy's");
        assert.equal(ipOf(b.id), ADDR.B, "REST shows B's own address, not the proxy's");
        if (name !== extrasBehind) return;

        // The proxy restarts: every signaling WebSocket and B's TURN/TLS stream through it drop.
        // Both participants reconnect through it (the SDK's `connect` within
        // PARLEY_RECONNECT_GRACE), and B, limited to TCP 443, gets A's video again through
        // TURN/TLS passed by the restarted proxy.
        await stop(proc);
        await startProxy();
        await poll('A and B to reconnect through the restarted proxy', () => [a.id, b.id].every((id) =>
          new RegExp(`participant reconnected[^\\n]*"connection":"${id}"`).test(readLog('parley.log'))), { timeout: 30000, interval: 250 });
        let prev = -1, growing = 0;
        await poll("B to keep decoding A's video through the restarted proxy", async () => {
          const r = await report(b).catch(() => null);
          if (!r) return false;
          const n = r.subscribers.filter((x) => x.from === a.id).reduce((t, x) => t + x.framesDecoded, 0);
          growing = prev >= 0 && n > prev ? growing + 1 : 0;
          prev = n;
          return growing >= 3;
        }, { timeout: 40000, interval: 500 });
        const after = JSON.parse((await rest(`/openvidu/api/sessions/${session.sessionId}`)).body);
        assert.deepEqual(after.connections.content.map((x) => x.connectionId).sort(), [a.id, b.id].sort(), 'A and B are the same participants after the restart');
      });
      // nginx logs a stream when it closes: the browsers are gone by now.
      await poll(`${name}'s log to show a connection for ${TURN_HOST} routed to parley's TURN/TLS`, () => proxy.routedTURN(), { timeout: 15000, interval: 250 });
    });

    test('B with every UDP datagram dropped gets media over TCP beside the proxy (ICE-TCP on PARLEY_MEDIA_TCP_PORT, or TURN)', { skip: name !== extrasBehind && 'runs once, behind ' + extrasBehind }, async () => {
      await withPair('noudp', async ({ subB }) => {
        const kind = pathKind(subB.path);
        assert.ok(['ice-tcp', 'turn-tcp', 'turn-tls'].includes(kind), `B without UDP: ${describePath(subB.path)}`);
        if (kind === 'ice-tcp') assert.equal(subB.path.remotePort, 5349, 'ICE-TCP ends on PARLEY_MEDIA_TCP_PORT');
      });
    });
  });
}
