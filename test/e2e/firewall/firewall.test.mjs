// The firewall bed (issue 3): OpenVidu 2.2.0's "TURN made easy" experiment rebuilt with network
// namespaces. In each firewall cell two stock openvidu-browser participants publish the fake camera,
// subscribe to each other and must decode each other's video; the test reports the candidate pair
// that carried each subscription, the path the server saw, and the time from session.connect() to
// the first decoded remote frame. run.sh builds the namespaces (netns.sh) and starts this file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  NS, NET, RUNNER, SERVER, DOMAIN, PROXY_PORT, outputDir, repoRoot, within, poll, setCell, median,
  startParley, startPages, launchIn, describePath, pathKind, removeWrappers, openParticipant, JOIN_DEADLINE_MS,
} from './bed.mjs';
import { startProxy } from './proxy.mjs';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // parley's certificate is self-signed

// The cells: what a restricted participant's firewall lets out (netns.sh has the rules).
const CELLS = {
  a: { what: 'no restriction', simulates: 'an open network', expect: 'UDP host/srflx' },
  b: { what: 'all UDP dropped', simulates: 'a firewall that drops UDP', expect: 'ICE-TCP or TURN over TCP/TLS' },
  c: { what: 'only TCP 443 to the server', simulates: 'a strict corporate firewall', expect: 'TURN/TLS or ICE-TCP on 443' },
  d: { what: 'only TCP 443 and UDP 443 to the server', simulates: 'a firewall opened for "443"', expect: 'UDP on 443' },
  e: { what: 'only an HTTP CONNECT proxy (port 443 only)', simulates: 'a proxy-only network', expect: 'TCP through the proxy: TURN/TCP, TURN/TLS or ICE-TCP', proxy: PROXY_PORT },
  'e-tls': {
    what: 'only a CONNECT proxy that also wants host names and TLS inside', simulates: 'a proxy-only network whose proxy peeks at TLS',
    expect: 'TURN/TLS through the proxy', proxy: PROXY_PORT + 1,
  },
};
const MODES = [
  { key: 'A', label: 'A only', both: false },
  { key: 'both', label: 'A and B', both: true },
];

const BIN = process.env.PARLEY_BIN || join(repoRoot, 'bin/parley');
// A pair starts only with 45 s of budget left and ends within about 100 s even when everything
// times out, so the runner is done before run.sh's hard limit of 400 s. The twelve pairs take
// 170-180 s on a quiet machine; at load 10 they took 200 s before the last cell and 240 s left it
// unrun, so the budget leaves room for that.
const BUDGET_MS = Number(process.env.PFW_BUDGET_MS || 300000);
const JOINS = 5;                 // time-to-first-frame joins per cell
const DECODE_DEADLINE_MS = 25000;
const started = Date.now();
const left = () => BUDGET_MS - (Date.now() - started);

let parley, pages, proxy, proxyTLS;
const pairs = [];
const ttff = {};
const notes = [];
const versions = {};

before(async () => {
  // Everything the runner sends must stay on the bed's bridge.
  const route = execFileSync('ip', ['route', 'get', SERVER], { encoding: 'utf8', timeout: 5000 });
  assert.match(route, /\bdev pfw-br\b/, `the route to ${SERVER} must be the bed's bridge (run.sh builds it): ${route}`);
  pages = await startPages();
  proxy = await startProxy({ host: RUNNER, port: PROXY_PORT, upstreams: { [DOMAIN]: SERVER, [SERVER]: SERVER } });
  proxyTLS = await startProxy({ host: RUNNER, port: PROXY_PORT + 1, upstreams: { [DOMAIN]: SERVER, [SERVER]: SERVER }, tlsOnly: true });
  parley = await startParley(BIN);
  try { versions.parley = execFileSync(BIN, ['version'], { encoding: 'utf8', timeout: 5000 }).trim(); } catch { /* reported as absent */ }
});

after(async () => {
  await parley?.stop();
  await proxy?.close();
  await proxyTLS?.close();
  await pages?.close().catch(() => {});
  removeWrappers();
  writeResults();
});

const report = (p) => within(5000, p.page.evaluate(() => window.pfw.report()), `${p.name}'s stats`);

// serverPaths reads, from the REST session, the connectionPath the server recorded for every
// subscription: connectionId → { fromStream → path }.
async function serverPaths(sessionId) {
  const s = await parley.rest(`/openvidu/api/sessions/${sessionId}`);
  const out = {};
  for (const c of s.connections.content) {
    out[c.connectionId] = {
      subscribers: Object.fromEntries(c.subscribers.map((x) => [x.streamId, x.connectionPath ?? null])),
      publishers: c.publishers.map((x) => x.connectionPath ?? null),
    };
  }
  return out;
}

// serverAgrees tells whether the connectionPath parley reports matches the browser's selected pair.
function serverAgrees(kind, sp) {
  if (!sp) return false;
  if (kind.startsWith('turn-')) return sp.protocol === 'udp' && sp.viaTurn === true;
  if (kind === 'ice-tcp') return sp.protocol === 'tcp';
  return sp.protocol === 'udp' && !sp.viaTurn;
}

const serverLabel = (p) => (p ? `${p.protocol} ${p.remoteType}${p.viaTurn ? ' via TURN' : ''} from ${p.remote}` : 'not recorded');

async function runPair(cell, mode) {
  const restrictedB = mode.both ? cell : 'open';
  setCell(NS.A, cell);
  setCell(NS.B, restrictedB);
  const px = cell === 'e' ? proxy : cell === 'e-tls' ? proxyTLS : null;
  const proxyFrom = px ? px.log.length : 0;
  const launched = await Promise.allSettled([
    launchIn(NS.A, { proxyPort: CELLS[cell].proxy }),
    launchIn(NS.B, { proxyPort: mode.both ? CELLS[cell].proxy : undefined }),
  ]);
  const browsers = launched.filter((x) => x.status === 'fulfilled').map((x) => x.value);
  if (browsers.length < 2) {
    await Promise.all(browsers.map((br) => within(10000, br.close(), 'browser close').catch(() => {})));
    throw launched.find((x) => x.status === 'rejected').reason;
  }
  versions.chromium ??= browsers[0].version();
  const row = { cell, what: CELLS[cell].what, restricted: mode.label };
  let session;
  try {
    session = await within(5000, parley.ov.createSession({}), 'createSession');
    row.sessionId = session.sessionId;
    const t0 = Date.now();
    const [a, b] = await Promise.all([openParticipant(browsers[0], pages.url, session, 'A'), openParticipant(browsers[1], pages.url, session, 'B')]);
    let last = {};
    try {
      await poll('A and B to decode each other\'s video', async () => {
        last = { A: await report(a), B: await report(b) };
        const decodes = (r, from) => r.subscribers.some((s) => s.from === from && s.framesDecoded > 0);
        return decodes(last.A, b.id) && decodes(last.B, a.id);
      }, { timeout: DECODE_DEADLINE_MS, interval: 200 });
    } catch (e) {
      row.failure = e.message;
      const diagnose = (p) => within(5000, p.page.evaluate(() => window.pfw.diagnose()), 'diagnose').catch((x) => String(x));
      row.diagnostics = {
        reports: last, peerConnections: { A: await diagnose(a), B: await diagnose(b) },
        server: await serverPaths(session.sessionId).catch((x) => String(x)), pageErrors: [...a.problems, ...b.problems],
      };
      const pcs = Object.values(row.diagnostics.peerConnections).flat().filter((x) => x && x.signalled);
      if (pcs.some((x) => x.signalled.length && !x.remote.length && !x.pairs.length)) {
        row.failure += '. The browser kept none of the candidates the server signalled (libwebrtc drops remote candidates on port 80 or 443 at private addresses)';
      }
      throw new Error(`cell ${cell}, ${mode.label} restricted: ${row.failure}\n${JSON.stringify(row.diagnostics, null, 1).slice(0, 6000)}`);
    } finally {
      row.proxyLog = px ? px.log.slice(proxyFrom) : undefined;
    }
    row.decodedAfterMs = Date.now() - t0;
    const firstPaths = last;
    // ICE may still move to a better pair after the first frames (Chromium renominates, e.g. from a
    // TURN relay to ICE-TCP): read the paths until they have not changed for 1.5 s (at most 6 s).
    const key = (r) => JSON.stringify([r.A.subscribers.map((x) => x.path), r.B.subscribers.map((x) => x.path)]);
    let prev = key(last), stableSince = Date.now();
    await poll('the selected candidate pairs to settle', async () => {
      last = { A: await report(a), B: await report(b) };
      if (key(last) !== prev) { prev = key(last); stableSince = Date.now(); }
      return Date.now() - stableSince >= 1500;
    }, { timeout: 6000, interval: 250 }).catch(() => notes.push(`cell ${cell}, ${mode.label}: the selected pairs were still changing after 6 s`));
    const server = await serverPaths(session.sessionId);
    for (const [p, other, rep, first] of [[a, b, last.A, firstPaths.A], [b, a, last.B, firstPaths.B]]) {
      const sub = rep.subscribers.find((s) => s.from === other.id);
      const firstSub = first.subscribers.find((s) => s.from === other.id);
      const pubStream = Object.keys(server[p.id]?.subscribers || {}).find((k) => k.endsWith(other.id));
      row[p.name] = {
        connectionId: p.id, framesDecoded: sub.framesDecoded, path: sub.path, label: describePath(sub.path), kind: pathKind(sub.path),
        firstLabel: describePath(firstSub?.path),
        server: pubStream ? server[p.id].subscribers[pubStream] : null,
        publisherPath: rep.publisher?.path ?? null, publisherServer: server[p.id]?.publishers?.[0] ?? null,
        candidateErrors: rep.candidateErrors, iceServerURLs: rep.iceServerURLs,
      };
      const agrees = serverAgrees(row[p.name].kind, row[p.name].server);
      if (!agrees) {
        notes.push(`cell ${cell}, ${mode.label}: ${p.name}'s subscription is on ${row[p.name].label} (browser) but parley's connectionPath says ${serverLabel(row[p.name].server)}`);
      }
    }
    console.log(`# cell ${cell} (${CELLS[cell].what}), ${mode.label} restricted: A ← ${row.A.label} [server: ${serverLabel(row.A.server)}]; B ← ${row.B.label} [server: ${serverLabel(row.B.server)}]`);

    if (mode.both) row.ttff = ttff[cell] = await timeToFirstFrame(cell, browsers[0], session, b);
    return row;
  } finally {
    pairs.push(row);
    if (session) await within(5000, session.close(), 'session close').catch(() => {});
    await Promise.all(browsers.map((br) => within(10000, br.close(), 'browser close').catch(() => {})));
  }
}

// timeToFirstFrame: a subscriber joins from A's namespace against B's published stream, JOINS times
// (fewer if the bed's time budget runs short; the result says so), each in a fresh page.
async function timeToFirstFrame(cell, browser, session, publisher) {
  const joins = [];
  // pairs still to run after this one (it is pushed to pairs when it ends)
  const remainingPairs = () => Object.keys(CELLS).length * MODES.length - pairs.length - 1;
  for (let i = 0; i < JOINS; i++) {
    if (left() < remainingPairs() * 20000 + 10000) {
      notes.push(`cell ${cell}: time budget short, ${i} of ${JOINS} first-frame joins`);
      break;
    }
    const context = await within(10000, browser.newContext(), 'new browser context');
    try {
      const page = await within(10000, context.newPage(), 'new page');
      await page.goto(pages.url, { timeout: 10000 });
      const token = (await within(5000, session.createConnection({}), 'createConnection')).token;
      const r = await within(JOIN_DEADLINE_MS + 5000, page.evaluate(({ token, from, ms }) => window.pfw.firstFrame(token, from, ms),
        { token, from: publisher.id, ms: JOIN_DEADLINE_MS }), 'first-frame join');
      joins.push({ decodedMs: r.decodedMs, renderedMs: r.renderedMs, path: describePath(r.path), error: r.error });
    } catch (e) {
      joins.push({ decodedMs: null, error: e.message });
    } finally {
      await within(5000, context.close(), 'context close').catch(() => {});
    }
  }
  const ok = joins.filter((j) => j.decodedMs !== null).map((j) => j.decodedMs);
  return { median: median(ok), n: ok.length, failed: joins.length - ok.length, joins };
}

// Assertions beyond "both decode": a must be direct UDP; where a participant is restricted the
// firewall must hold (no UDP in b, c, e and e-tls; only port 443 in c and d); behind a proxy the
// media must have gone through it, and with the TLS-only proxy only TURN over TLS is possible.
const CLIENT_IP = { A: `${NET}.11`, B: `${NET}.12` };
const PROXY_CARRIES = { 'turn-tcp': 'TURN/TCP', 'turn-tls': 'TLS', 'ice-tcp': 'ICE-TCP' };
function checkPaths(row, mode) {
  const restricted = mode.both ? ['A', 'B'] : ['A'];
  const cell = row.cell;
  if (cell === 'a') {
    for (const p of ['A', 'B']) assert.equal(row[p].kind, 'udp', `cell a: ${p} must receive over direct UDP, got ${row[p].label}`);
    return;
  }
  for (const p of restricted) {
    const { kind, path, label } = row[p];
    if (cell !== 'd') assert.ok(!['udp', 'turn-udp'].includes(kind), `cell ${cell}: ${p} is denied UDP yet got ${label}`);
    if (['c', 'd'].includes(cell)) {
      const port = kind.startsWith('turn-') ? Number(/:(\d+)(\?|$)/.exec(path.url || '')?.[1]) : path.remotePort;
      assert.equal(port, 443, `cell ${cell}: ${p} may only reach port 443, got ${label}`);
    }
    if (CELLS[cell].proxy) {
      assert.ok(PROXY_CARRIES[kind], `cell ${cell}: ${p} can only get media through the proxy's TCP tunnels, got ${label}`);
      const tunnels = row.proxyLog.filter((l) => l.result === 'relayed' && l.from.startsWith(`${CLIENT_IP[p]}:`) && l.carried === PROXY_CARRIES[kind]);
      assert.ok(tunnels.length > 0, `cell ${cell}: no ${PROXY_CARRIES[kind]} tunnel through the proxy from ${p} (${CLIENT_IP[p]})`);
    }
    if (cell === 'e-tls') assert.equal(kind, 'turn-tls', `cell e-tls: ${p} must receive through TURN over TLS, got ${label}`);
  }
}

for (const cell of Object.keys(CELLS)) {
  for (const mode of MODES) {
    test(`cell ${cell} (${CELLS[cell].what}), ${mode.label} restricted: both decode each other's video`, { timeout: 110000 }, async () => {
      assert.ok(left() > 45000, 'the bed\'s time budget is spent');
      const row = await runPair(cell, mode);
      checkPaths(row, mode);
    });
  }
}

function writeResults() {
  const parleyWarnings = summariseLog();
  const results = {
    at: new Date().toISOString(), parley: BIN, versions, net: `${NET}.0/24`, budgetMs: BUDGET_MS, elapsedMs: Date.now() - started,
    cells: CELLS, pairs, ttff, notes, parleyWarnings, proxyLog: { e: proxy?.log ?? [], 'e-tls': proxyTLS?.log ?? [] },
  };
  writeFileSync(join(outputDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  const lines = [
    '# Firewall bed results', '',
    `${results.at}; ${versions.parley || BIN}; Chromium ${versions.chromium || '?'}; bed ${NET}.0/24; elapsed ${(results.elapsedMs / 1000).toFixed(0)} s.`, '',
    'Path = the selected candidate pair of each subscription as the browser\'s getStats reports it once it has settled ("first" = the pair of the first decoded frames when it differs); "server saw" = the connectionPath parley reports for it in the REST connection JSON.', '',
    '| cell | restricted | A receives B over | B receives A over | server saw (A; B) | first remote frame, median (n) |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of pairs) {
    let t = '';
    if (r.ttff && !r.ttff.joins.length) t = 'not measured (time budget)';
    else if (r.ttff) t = r.ttff.median === null ? `none: all ${r.ttff.failed} joins failed` : `${r.ttff.median} ms (n=${r.ttff.n}${r.ttff.failed ? `, ${r.ttff.failed} failed` : ''})`;
    const show = (x) => `${x.label}${x.firstLabel !== x.label ? ` (first ${x.firstLabel})` : ''}`;
    const a = r.A ? show(r.A) : `FAILED: ${r.failure || 'no result'}`;
    const b = r.B ? show(r.B) : '';
    const mark = (x) => `${serverLabel(x.server)}${serverAgrees(x.kind, x.server) ? '' : ' ≠'}`;
    const s = r.A ? `${mark(r.A)}; ${mark(r.B)}` : '';
    lines.push(`| ${r.cell}: ${r.what} | ${r.restricted} | ${a} | ${b} | ${s} | ${t} |`);
  }
  lines.push('', `Expected: ${Object.entries(CELLS).map(([k, c]) => `${k} → ${c.expect}`).join('; ')}.`);
  lines.push('First remote frame: a subscriber joins from A\'s namespace (both restricted) against B\'s stream; time from session.connect() to the first decoded frame. "≠": parley\'s connectionPath disagrees with the browser.');
  for (const [cell, t] of Object.entries(ttff)) {
    if (!t.joins.length) continue;
    const paths = {};
    for (const j of t.joins) paths[j.path || j.error] = (paths[j.path || j.error] || 0) + 1;
    lines.push(`- ${cell}: joins ${t.joins.map((j) => j.decodedMs ?? 'failed').join(', ')} ms over ${Object.entries(paths).map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  }
  for (const n of notes) lines.push(`- ${n}`);
  for (const [cell, px] of [['e', proxy], ['e-tls', proxyTLS]]) {
    if (!px?.log.length) continue;
    const counts = {};
    for (const l of px.log) { const k = `${l.request.split(' ').slice(0, 2).join(' ').slice(0, 60)} → ${l.result}${l.carried && l.result === 'relayed' ? ` (${l.carried})` : ''}`; counts[k] = (counts[k] || 0) + 1; }
    lines.push('', `Proxy of cell ${cell} (what it was asked, what it did):`, ...Object.entries(counts).map(([k, n]) => `- ${n} × ${k}`));
  }
  if (parleyWarnings.length) lines.push('', 'parley warnings and errors (count × message):', ...parleyWarnings.map((w) => `- ${w.count} × ${w.level} ${w.msg}`));
  writeFileSync(join(outputDir, 'results.md'), lines.join('\n') + '\n');  // run.sh prints it
}

// summariseLog counts parley's WARN and ERROR lines by message.
function summariseLog() {
  let text = '';
  try { text = readFileSync(join(outputDir, 'parley.log'), 'utf8'); } catch { return []; }
  const counts = new Map();
  for (const line of text.split('\n')) {
    let j;
    try { j = JSON.parse(line); } catch { if (/\b(WARN|ERROR)\b/.test(line)) j = { level: 'LOG', msg: line.slice(0, 200) }; else continue; }
    if (!j || !['WARN', 'ERROR', 'LOG'].includes(j.level)) continue;
    const key = `${j.level}\t${j.msg}${j.error ? `: ${String(j.error).slice(0, 120)}` : ''}`;
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  return [...counts].map(([k, count]) => { const [level, msg] = k.split('\t'); return { level, msg, count }; });
}
