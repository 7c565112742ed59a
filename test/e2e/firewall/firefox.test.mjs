// Firefox behind the firewall bed's firewalls: Debian's Firefox ESR runs in pfw-a (restricted),
// Debian's Chromium in pfw-b (open), both with the stock openvidu-browser 2.32.2. In each cell
// Firefox publishes and subscribes: Chromium must decode Firefox's video (Firefox's publisher
// connection crosses the firewall upstream) and Firefox must decode Chromium's (its subscriber
// connection crosses it downstream), and both of Firefox's connections must use the path the cell
// leaves open, as Firefox's own getStats reports the selected candidate pair. In the proxy cells
// (e, e-tls) Firefox is given the proxy, and the proxy must have carried that path. Firefox checks
// parley's certificate (from a CA it trusts) as it would a real server's. run.sh starts this
// after firewall.test.mjs, on the same namespaces (README.md, "Firefox").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startProxy } from './proxy.mjs';
import {
  NS, NET, SERVER, RUNNER, DOMAIN, PROXY_PORT, outputDir, repoRoot, within, poll, setCell, startParley, startPages, launchIn, launchFirefoxIn,
  describePath, pathKind, removeWrappers, makeCertificates, openParticipant, openPage,
} from './bed.mjs';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // parley's certificate is self-signed

// The cells (netns.sh has the rules) and the paths each leaves Firefox.
const CELLS = {
  b: { what: 'all UDP dropped', expect: ['ice-tcp'], why: 'ICE-TCP to the server\'s passive candidate on 443 outranks a TCP relay' },
  c: { what: 'only TCP 443 to the server', expect: ['ice-tcp', 'turn-tcp', 'turn-tls'], why: 'only TCP to port 443 leaves' },
  'c-tls': { what: 'only TLS on TCP 443 to the server', expect: ['turn-tls'], why: 'the firewall resets plain STUN (ICE-TCP, TURN/TCP)' },
  e: { what: 'only an HTTP CONNECT proxy (port 443 only)', expect: ['ice-tcp', 'turn-tcp', 'turn-tls'], why: 'only the proxy\'s TCP tunnels lead out', proxy: PROXY_PORT },
  'e-tls': { what: 'only a CONNECT proxy that also wants host names and TLS inside', expect: ['turn-tls'], why: 'the proxy cuts every tunnel but TLS', proxy: PROXY_PORT + 1 },
};
const BIN = process.env.PARLEY_BIN || join(repoRoot, 'bin/parley');
const DECODE_DEADLINE_MS = 25000;

let parley, pages, chromium, firefox, proxies, certs;
const certDir = mkdtempSync(join(tmpdir(), 'pfw-certs-'));
const rows = [];
const versions = {};

before(async () => {
  const route = execFileSync('ip', ['route', 'get', SERVER], { encoding: 'utf8', timeout: 5000 });
  assert.match(route, /\bdev pfw-br\b/, `the route to ${SERVER} must be the bed's bridge (run.sh builds it): ${route}`);
  setCell(NS.A, 'open');
  setCell(NS.B, 'open');
  pages = await startPages();
  const upstreams = { [DOMAIN]: SERVER, [SERVER]: SERVER };
  proxies = {
    [PROXY_PORT]: await startProxy({ host: RUNNER, port: PROXY_PORT, upstreams }),
    [PROXY_PORT + 1]: await startProxy({ host: RUNNER, port: PROXY_PORT + 1, upstreams, tlsOnly: true }),
  };
  // Parley has a certificate from a CA Firefox trusts, as a real server has, so Firefox checks it
  // for WSS and TURN over TLS (Chromium, open, ignores certificate errors as in the other cells).
  certs = makeCertificates(certDir);
  parley = await startParley(BIN, 'firefox.parley.log', { CERTIFICATE_TYPE: 'owncert', PARLEY_CERT_FILE: certs.cert, PARLEY_KEY_FILE: certs.key });
  // One browser each for every cell: each cell is a new session, so new peer connections.
  [chromium, firefox] = await Promise.all([launchIn(NS.B, {}), launchFirefoxIn(NS.A, { trustCA: certs.ca })]);
  versions.chromium = chromium.version();
  versions.firefox = await firefox.version();
});

after(async () => {
  await firefox?.close().catch(() => {});
  await chromium?.close().catch(() => {});
  await parley?.stop();
  for (const px of Object.values(proxies || {})) await px.close();
  await pages?.close().catch(() => {});
  removeWrappers();
  rmSync(certDir, { recursive: true, force: true });
  writeResults();
});

const report = (p) => within(5000, p.page.evaluate(() => window.pfw.report()), `${p.name}'s stats`);

// serverPath is parley's connectionPath (REST) for Firefox's publisher and its subscription.
async function serverPaths(sessionId, foxId) {
  const s = await parley.rest(`/openvidu/api/sessions/${sessionId}`);
  const c = s.connections.content.find((x) => x.connectionId === foxId);
  return { publisher: c?.publishers[0]?.connectionPath ?? null, subscriber: c?.subscribers[0]?.connectionPath ?? null };
}
// tlsFirewallResets counts the connections cell c-tls's firewall reset in pfw-a (netns.sh tls_only_443).
function tlsFirewallResets() {
  const out = execFileSync('ip', ['netns', 'exec', NS.A, 'iptables', '-w', '-L', 'pfw-tls443', '-v', '-x', '-n'], { encoding: 'utf8', timeout: 5000 });
  const line = out.split('\n').find((l) => /\bREJECT\b/.test(l));
  return line ? Number(line.trim().split(/\s+/)[0]) : 0;
}

const PROXY_CARRIES = { 'turn-tcp': 'TURN/TCP', 'turn-tls': 'TLS', 'ice-tcp': 'ICE-TCP' };
// summariseProxy counts what the proxy did with Firefox's requests for the server, e.g.
// "2 × parley.test:443 relayed TLS", and how many others (Firefox's own services) it refused.
function summariseProxy(log) {
  const counts = {};
  let others = 0;
  for (const l of log) {
    if (!l.from.startsWith(`${NET}.11:`)) continue;
    const target = l.request.split(' ')[1] || '';
    if (![`${DOMAIN}:443`, `${SERVER}:443`].includes(target)) { others++; continue; }
    const k = `${target} ${l.result === 'relayed' ? `relayed ${l.carried}` : l.result.split(':')[0]}`;
    counts[k] = (counts[k] || 0) + 1;
  }
  return [...Object.entries(counts).map(([k, n]) => `${n} × ${k}`), ...(others ? [`${others} other requests refused`] : [])].join(', ');
}

const serverLabel = (p) => (p ? `${p.protocol} ${p.remoteType}${p.viaTurn ? ' via TURN' : ''}` : 'not recorded');

// The certificate checks are on: Firefox accepts parley's certificate by its name, and refuses it
// at the server's address, which the certificate does not name. So TURN over TLS below passed a
// real check.
test('Firefox verifies parley\'s certificate', { timeout: 30000 }, async () => {
  const context = await within(10000, firefox.newContext(), 'new browser context');
  try {
    const page = await within(10000, context.newPage(), 'new page');
    await page.goto(pages.url, { timeout: 10000 });
    const got = await within(15000, page.evaluate(async (urls) => {
      const out = {};
      for (const u of urls) {
        try { await fetch(u, { mode: 'no-cors', cache: 'no-store' }); out[u] = 'loaded'; } catch (e) { out[u] = `refused: ${e.message}`; }
      }
      return out;
    }, [`https://${DOMAIN}/`, `https://${SERVER}/`]), 'fetches');
    assert.equal(got[`https://${DOMAIN}/`], 'loaded', JSON.stringify(got));
    assert.match(got[`https://${SERVER}/`], /^refused/, JSON.stringify(got));
  } finally {
    await within(5000, context.close(), 'context close').catch(() => {});
  }
});

for (const [cell, c] of Object.entries(CELLS)) {
  test(`cell ${cell} (${c.what}): a Firefox publisher and a Firefox subscriber get video over ${c.expect.join(' or ')}`, { timeout: 60000 }, async () => {
    setCell(NS.A, cell);
    const row = { cell, what: c.what };
    rows.push(row);
    const px = c.proxy && proxies[c.proxy];
    const proxyFrom = px ? px.log.length : 0;
    const opened = [];
    let browser = firefox, session;
    try {
      // Firefox takes its proxy from prefs at start: the proxy cells get a Firefox of their own.
      if (c.proxy) browser = await launchFirefoxIn(NS.A, { proxyPort: c.proxy, trustCA: certs.ca });
      session = await within(5000, parley.ov.createSession({}), 'createSession');
      const fox = await openParticipant(browser, pages.url, session, 'firefox');
      opened.push(fox);
      const chrome = await openParticipant(chromium, pages.url, session, 'chromium');
      opened.push(chrome);
      let last;
      const decodes = (r, from) => r.subscribers.some((s) => s.from === from && s.framesDecoded > 0);
      try {
        await poll('Chromium to decode Firefox\'s video and Firefox to decode Chromium\'s', async () => {
          last = { fox: await report(fox), chrome: await report(chrome) };
          return decodes(last.chrome, fox.id) && decodes(last.fox, chrome.id);
        }, { timeout: DECODE_DEADLINE_MS, interval: 200 });
      } catch (e) {
        row.failure = e.message;
        if (px) row.proxyLog = px.log.slice(proxyFrom);
        const diag = await within(5000, fox.page.evaluate(() => window.pfw.diagnose()), 'diagnose').catch((x) => String(x));
        throw new Error(`cell ${cell}: ${e.message}\nFirefox's peer connections: ${JSON.stringify(diag, null, 1).slice(0, 6000)}\n` +
          `candidate errors: ${JSON.stringify(last?.fox?.candidateErrors)}\npage errors: ${fox.problems.join('; ')}` +
          (px ? `\nproxy: ${JSON.stringify(row.proxyLog)}` : ''));
      }
      const sub = last.fox.subscribers.find((s) => s.from === chrome.id);
      const server = await serverPaths(session.sessionId, fox.id).catch(() => ({}));
      Object.assign(row, {
        publisher: describePath(last.fox.publisher?.path), publisherServer: serverLabel(server.publisher),
        subscriber: describePath(sub.path), subscriberServer: serverLabel(server.subscriber),
        iceServerURLs: last.fox.iceServerURLs,
      });
      console.log(`# cell ${cell}: Firefox publishes over ${row.publisher} [server: ${row.publisherServer}], receives over ${row.subscriber} [server: ${row.subscriberServer}]`);
      for (const [role, path] of [['publisher', last.fox.publisher?.path], ['subscriber', sub.path]]) {
        assert.ok(c.expect.includes(pathKind(path)), `cell ${cell}: Firefox's ${role} must be on ${c.expect.join(' or ')} (${c.why}), got ${describePath(path)}`);
        // ICE-TCP ends on the server's passive candidate, which must be the one on 443. (A relay's
        // TURN server is the one turns:/turn: URL on 443; Firefox's stats do not name the URL.)
        if (path.localType !== 'relay') assert.equal(path.remotePort, 443, `cell ${cell}: Firefox's ${role} on ${describePath(path)}`);
      }
      if (px) {
        // Through the proxy: it must have relayed a tunnel of that kind from Firefox's namespace.
        const log = px.log.slice(proxyFrom);
        for (const [role, path] of [['publisher', last.fox.publisher?.path], ['subscriber', sub.path]]) {
          const carried = PROXY_CARRIES[pathKind(path)];
          assert.ok(log.some((l) => l.result === 'relayed' && l.from.startsWith(`${NET}.11:`) && l.carried === carried),
            `cell ${cell}: Firefox's ${role} is on ${describePath(path)} but the proxy relayed no ${carried} tunnel from it: ${JSON.stringify(log)}`);
        }
        row.proxied = summariseProxy(log);
      }
      if (cell === 'c-tls') {
        // The path was forced: the firewall reset Firefox's plain-STUN connections to 443.
        row.resets = tlsFirewallResets();
        assert.ok(row.resets > 0, `cell c-tls: the firewall reset none of Firefox's ICE-TCP or TURN/TCP attempts`);
      }
      assert.deepEqual(fox.problems, [], 'no page errors in Firefox');
      row.firstFrame = await firstFrame(browser, session, chrome.id);
    } finally {
      for (const p of opened) await within(5000, p.context.close(), 'context close').catch(() => {});
      if (session) await within(5000, session.close(), 'session close').catch(() => {});
      if (browser !== firefox) await browser.close().catch(() => {});
    }
  });
}

// firstFrame reports (does not assert) one subscriber-only join of Firefox against Chromium's
// stream: from session.connect() to the first decoded frame (page.js firstFrame), and its path.
async function firstFrame(browser, session, fromId) {
  let context;
  try {
    const p = await openPage(browser, pages.url, session);
    context = p.context;
    const r = await within(20000, p.page.evaluate(({ token, fromId }) => window.pfw.firstFrame(token, fromId, 15000), { token: p.token, fromId }), 'first-frame join');
    return r.decodedMs !== null ? `${r.decodedMs} ms over ${describePath(r.path)}` : `none: ${r.error}`;
  } catch (e) {
    return `none: ${e.message}`;
  } finally {
    if (context) await within(5000, context.close(), 'context close').catch(() => {});
  }
}

function writeResults() {
  const lines = [
    '', '## Firefox behind the firewall', '',
    `Firefox ${versions.firefox || '?'} restricted in pfw-a, Chromium ${versions.chromium || '?'} open in pfw-b; the paths of Firefox's two peer connections (its getStats, selected pair) and what parley recorded.`, '',
    '| cell | Firefox publishes over | Firefox receives over | server saw (publisher; subscriber) | a Firefox subscriber\'s first frame (one join) | firewall |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    if (r.failure || !r.publisher) lines.push(`| ${r.cell}: ${r.what} | FAILED: ${r.failure || 'no result'} | | | | |`);
    else lines.push(`| ${r.cell}: ${r.what} | ${r.publisher} | ${r.subscriber} | ${r.publisherServer}; ${r.subscriberServer} | ${r.firstFrame ?? ''} | ${r.resets !== undefined ? `reset ${r.resets} plain-STUN connections` : ''}${r.proxied ? `proxy: ${r.proxied}` : ''} |`);
  }
  writeFileSync(join(outputDir, 'firefox-results.md'), lines.join('\n') + '\n');
}
