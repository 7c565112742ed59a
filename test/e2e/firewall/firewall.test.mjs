// The firewall test bed (issue 3): OpenVidu 2.2.0's "TURN made easy" experiment rebuilt with network
// namespaces. For each firewall cell, two stock openvidu-browser participants must decode each
// other's video, and we report which candidate pair carried it. run.sh builds the namespaces.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { readFileSync, writeFileSync, writeFileSync as write, chmodSync, createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { OpenVidu, chromiumArgs, poll, outputDir, openParticipant, waitDecoding } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SERVER = '198.51.100.1';
const RUNNER = '198.51.100.254';
const DOMAIN = 'parley.test';
const SECRET = 'firewall-test-secret';
const PAGE_PORT = 8077;
const PROXY_PORT = 3128;
const netns = (...args) => execFileSync(join(here, 'netns.sh'), args, { stdio: 'inherit' });

// What each cell lets out of a restricted participant's namespace.
const CELLS = {
  a: 'no restriction',
  b: 'all UDP dropped',
  c: 'only TCP 443 to the server',
  d: 'only TCP 443 and UDP 443 to the server',
  e: 'only an HTTP CONNECT proxy (port 443 only)',
};

let parley, pageServer, proxy, ov;
const proxyLog = [];
const results = [];

before(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pnb-'));
  const log = createWriteStream(join(outputDir, 'firewall.parley.log'));
  const { PARLEY_BIN: _b, ...env } = process.env;
  parley = spawn('ip', ['netns', 'exec', 'pnb-srv', process.env.PARLEY_BIN, 'serve'], {
    env: {
      ...env, DOMAIN_OR_PUBLIC_IP: DOMAIN, OPENVIDU_SECRET: SECRET, HTTPS_PORT: '443', HTTP_PORT: '80',
      CERTIFICATE_TYPE: 'selfsigned', PARLEY_DATA_DIR: dataDir, PARLEY_MEDIA_LISTEN_IPS: SERVER,
      PARLEY_LOG_LEVEL: 'debug', DOTENV_PATH: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  parley.stdout.pipe(log);
  parley.stderr.pipe(log);
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the server's certificate is self-signed
  ov = new OpenVidu(`https://${SERVER}:443`, SECRET);
  await poll('parley in its namespace', async () => {
    try { return (await fetch(`https://${SERVER}/openvidu/api/config/openvidu-publicurl`)).ok; } catch { return false; }
  }, { timeout: 15000 });

  const sdk = readFileSync(join(here, '../node_modules/openvidu-browser/static/js/openvidu-browser-2.32.2.min.js'));
  pageServer = createServer((req, res) => {
    if (req.url === '/openvidu-browser.min.js') { res.setHeader('content-type', 'text/javascript'); res.end(sdk); return; }
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><html><body><script src="/openvidu-browser.min.js"></script><div id="videos"></div></body></html>');
  });
  await new Promise((r) => pageServer.listen(PAGE_PORT, RUNNER, r));

  // A corporate proxy: CONNECT to port 443 only, and it resolves the server's name itself.
  proxy = createServer((req, res) => { res.statusCode = 403; res.end(); });
  proxy.on('connect', (req, client, head) => {
    const [host, port] = req.url.split(':');
    if (port !== '443') { proxyLog.push(`refused ${req.url}`); client.end('HTTP/1.1 403 Forbidden\r\n\r\n'); return; }
    proxyLog.push(`CONNECT ${req.url}`);
    const up = connect(443, host === DOMAIN ? SERVER : host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(client); client.pipe(up);
    });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise((r) => proxy.listen(PROXY_PORT, RUNNER, r));
});

after(async () => {
  pageServer?.close();
  proxy?.close();
  if (parley) {
    const done = new Promise((r) => parley.on('exit', r));
    parley.kill('SIGTERM');
    await done;
  }
  writeFileSync(join(outputDir, 'firewall.json'), JSON.stringify({ results, proxyLog: proxyLog.slice(0, 50) }, null, 2));
  const lines = ['| cell | restricted | A path | B path | connect→first frame (ms, median of joins) |', '|---|---|---|---|---|'];
  for (const r of results) lines.push(`| ${r.cell}: ${CELLS[r.cell]} | ${r.restricted} | ${r.pathA} | ${r.pathB} | ${r.ttff ?? ''} |`);
  writeFileSync(join(outputDir, 'firewall.md'), lines.join('\n') + '\n');
  console.log(lines.join('\n'));
});

// browserIn launches Chromium inside a namespace through a wrapper executable; playwright talks
// to it over a pipe, so the namespace does not get in the way.
async function browserIn(ns, cell) {
  const wrapper = join(mkdtempSync(join(tmpdir(), 'pnb-chromium-')), 'chromium');
  write(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} /usr/bin/chromium "$@"\n`);
  chmodSync(wrapper, 0o755);
  const args = [...chromiumArgs, '--ignore-certificate-errors', `--host-resolver-rules=MAP ${DOMAIN} ${SERVER}`,
    `--unsafely-treat-insecure-origin-as-secure=http://${RUNNER}:${PAGE_PORT}`];
  if (cell === 'e') args.push(`--proxy-server=http://${RUNNER}:${PROXY_PORT}`, `--proxy-bypass-list=${RUNNER}`);
  return chromium.launch({ executablePath: wrapper, args });
}

// selectedPath reads the candidate pair that carries the page's first subscription.
async function selectedPath(p) {
  return p.page.evaluate(async () => {
    const pc = window.subscribers[0].stream.getRTCPeerConnection();
    const stats = await pc.getStats();
    let pair;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    if (!pair) return 'none';
    const l = stats.get(pair.localCandidateId), r = stats.get(pair.remoteCandidateId);
    if (l.candidateType === 'relay') return `TURN/${(l.relayProtocol || '?').toUpperCase()} → ${r.port}`;
    return `${l.protocol.toUpperCase()} ${l.candidateType} → ${r.port}`;
  });
}

async function pair(cell, restrictBoth) {
  netns('cell', 'pnb-a', cell);
  netns('cell', 'pnb-b', restrictBoth ? cell : 'open');
  const browsers = [await browserIn('pnb-a', cell), await browserIn('pnb-b', restrictBoth ? cell : 'open')];
  const pageURL = `http://${RUNNER}:${PAGE_PORT}/`;
  try {
    const session = await ov.createSession({});
    const a = await openParticipant(browsers[0], pageURL, (await session.createConnection()).token, { name: 'a' });
    const b = await openParticipant(browsers[1], pageURL, (await session.createConnection()).token, { name: 'b' });
    await waitDecoding(a, [b.id], 40000);
    await waitDecoding(b, [a.id], 40000);
    const r = { cell, restricted: restrictBoth ? 'both' : 'A only', pathA: await selectedPath(a), pathB: await selectedPath(b) };
    if (restrictBoth) {
      // Time to first frame from inside the cell: a third page joins and subscribes, five times.
      const times = [];
      for (let i = 0; i < 5; i++) {
        const ctx = await browsers[0].newContext();
        const page = await ctx.newPage();
        await page.goto(pageURL);
        times.push(await page.evaluate(async (token) => {
          const OV = new OpenVidu(); OV.enableProdMode();
          const s = OV.initSession();
          const first = new Promise((resolve) => s.on('streamCreated', (e) => {
            if (window.done) return;
            window.done = true;
            const sub = s.subscribe(e.stream, 'videos');
            sub.on('videoElementCreated', (ev) => ev.element.requestVideoFrameCallback(() => resolve(performance.now())));
          }));
          const t0 = performance.now();
          await s.connect(token);
          const t1 = await Promise.race([first, new Promise((res) => setTimeout(() => res(-1), 20000))]);
          s.disconnect();
          return t1 < 0 ? -1 : Math.round(t1 - t0);
        }, (await session.createConnection()).token));
        await ctx.close();
      }
      const ok = times.filter((t) => t > 0).sort((x, y) => x - y);
      r.ttff = ok.length ? ok[Math.floor(ok.length / 2)] : 'none';
      r.ttffAll = times;
    }
    await session.close();
    results.push(r);
    console.log(`cell ${cell} (${CELLS[cell]}), ${r.restricted} restricted: A ${r.pathA}, B ${r.pathB}${r.ttff ? `, first frame ${r.ttff} ms` : ''}`);
    return r;
  } finally {
    for (const b of browsers) await b.close().catch(() => {});
  }
}

for (const cell of Object.keys(CELLS)) {
  for (const both of [false, true]) {
    test(`cell ${cell} (${CELLS[cell]}), ${both ? 'both' : 'one'} restricted: both decode each other`, async () => {
      const r = await pair(cell, both);
      if (cell === 'a') assert.match(r.pathA, /^UDP/, 'an open network must use UDP');
      if (cell === 'b' || cell === 'c') assert.doesNotMatch(r.pathA, /^UDP/, 'UDP is blocked');
      if (cell === 'e') {
        // Through the proxy's CONNECT tunnel to 443: TURN (over TLS or TCP) or ICE-TCP, never UDP.
        assert.match(r.pathA, /^(TURN|TCP)/, 'behind a CONNECT proxy only TCP through the tunnel gets through');
        assert.ok(proxyLog.some((l) => l.startsWith('CONNECT ')), 'the media must have gone through the proxy');
      }
      if (both && cell !== 'a') assert.doesNotMatch(r.pathB, cell === 'd' ? /^TURN/ : /^UDP/, 'B is restricted too');
    });
  }
}
