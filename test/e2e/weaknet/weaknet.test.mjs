// The weak-network bed in make test (issue 12): one publisher and two unshaped subscribers with the
// stock openvidu-browser 2.32.2 in Chromium, and a weak subscriber whose downlink is a 150 kbit/s
// token bucket, over UDP, ICE-TCP and TURN/TCP. Asserts what users see: the unshaped subscribers
// keep their video as it was without the weak one, the publisher is not driven into keyframes, the
// weak subscriber comes back once its link is freed, and, where the server meets issue 12's targets
// on main, those targets. Targets not yet met are reported with their numbers, not asserted (see
// README.md; flip `enforced` when a fix lands). bench/weaknet.sh runs the full matrix.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  SERVER, here, repoRoot, startParley, startPages, launchBrowsers, removeWrappers, runCell, describeCell, within,
} from './bed.mjs';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // parley's certificate is self-signed
const BIN = process.env.PARLEY_BIN || join(repoRoot, 'bin/parley');
const outputDir = join(here, 'output');
const PHASES = { warm: 3000, alone: 6000, shaped: 16000, freed: 8000 };
const KBIT = 150;

// Issue 12's targets as this bed measures them. enforced: asserted (they hold on main); otherwise
// the number is printed and kept in output/results.md.
const TARGETS = [
  { name: 'PLIs reaching the publisher ≤ 1/s while the weak subscriber is shaped', enforced: true,
    check: (c) => [c.summary.publisher.shaped.pliPerS <= 1, `${c.summary.publisher.shaped.pliPerS} PLI/s`] },
  { name: 'the unshaped subscribers lose no video while the weak subscriber is shaped (loss ≤ 1 %)', enforced: true,
    check: (c) => [c.summary.othersLossShaped <= 0.01, `worst loss ${c.summary.othersLossShaped}`] },
  { name: 'server egress to the weak subscriber ≤ 1.25× its link rate', enforced: false, transports: ['udp'],
    check: (c) => [c.summary.weak.egressRatio <= 1.25, `${c.summary.weak.egressKbps} kbit/s = ${c.summary.weak.egressRatio}× the link`] },
  { name: 'the weak subscriber\'s picture stays less than 1 s behind real time (frames dropped, not queued)', enforced: false, transports: ['ice-tcp', 'turn-tcp'],
    check: (c) => [c.summary.weak.shaped.behindMax !== null && c.summary.weak.shaped.behindMax < 1000, `at worst ${c.summary.weak.shaped.behindMax} ms behind; latency p50 ${c.summary.weak.shaped.latencyP50} ms`] },
  { name: 'the weak subscriber is back to real time within 2 s of the link being freed', enforced: false, transports: ['ice-tcp', 'turn-tcp'],
    check: (c) => [c.summary.weak.recoverMs !== null && c.summary.weak.recoverMs <= 2000, `recovered after ${c.summary.weak.recoverMs ?? 'never (within the phase)'} ms`] },
];

let parley, pages, browsers;
const cells = [];
const reported = [];
let chromiumVersion = null;

before(async () => {
  const route = execFileSync('ip', ['route', 'get', SERVER], { encoding: 'utf8', timeout: 5000 });
  assert.match(route, /\bdev pwn-br\b/, `the route to ${SERVER} must be the bed's bridge (run.sh builds it): ${route}`);
  pages = await startPages();
  parley = await startParley(BIN, { logPath: join(outputDir, 'parley.log') });
  browsers = await launchBrowsers();
  chromiumVersion = browsers.version;
});

after(async () => {
  await browsers?.close();
  await parley?.stop();
  await pages?.close().catch(() => {});
  removeWrappers();
  writeResults();
});

for (const transport of ['udp', 'ice-tcp', 'turn-tcp']) {
  test(`a weak subscriber at ${KBIT} kbit/s over ${transport} costs the others nothing and comes back when freed`, { timeout: 190000 }, async () => {
    const cell = await within(180000, runCell({ parley, pages, browsers }, { transport, kbit: KBIT, phases: PHASES, log: (m) => console.log(`#${m}`) }), `${transport} cell`);
    cells.push(cell);
    console.log(`# ${describeCell(cell)}`);
    const s = cell.summary;
    const w = s.weak;

    // The bed did what it says: the weak subscriber's media took the transport under test.
    assert.equal(w.shaped.path, transport, `the weak subscriber's media must go over ${transport}, went over ${w.shaped.path}`);
    // The unshaped subscribers' video goes on as before: it plays, and at the bitrate it had
    // without the weak subscriber (within a third: the publisher's encoder varies on its own).
    for (const [name, o] of Object.entries(s.others)) {
      assert.ok(o.shaped.fps > 0 && o.shaped.kbps > 0, `${name} must keep decoding while the weak subscriber is shaped: ${JSON.stringify(o.shaped)}`);
      assert.ok(o.kbpsRatio > 0.67 && o.kbpsRatio < 1.5, `${name}'s video bitrate must not change with the weak subscriber: ${o.alone.kbps} → ${o.shaped.kbps} kbit/s`);
    }
    assert.ok(s.publisher.shaped.fps > 0, 'the publisher must keep sending video');
    // Once its link is freed, the weak subscriber plays video again and is still in the session.
    assert.ok(w.freed.fps > 0, `the weak subscriber must decode video once its link is freed: ${JSON.stringify(w.freed)}`);
    assert.ok(!w.events.some((e) => e.startsWith('sessionDisconnected')), `the weak subscriber must stay connected: ${w.events.join(', ')}`);
    assert.equal(parley.exited, null, 'parley must keep running');

    const failed = [];
    for (const t of TARGETS) {
      if (t.transports && !t.transports.includes(transport)) continue;
      const [ok, what] = t.check(cell);
      reported.push({ transport, target: t.name, ok, what, enforced: t.enforced });
      if (!ok && t.enforced) failed.push(`${t.name}: ${what}`);
      else if (!ok) console.log(`# TARGET NOT MET (reported, not asserted) ${transport}: ${t.name}: ${what}`);
    }
    assert.deepEqual(failed, [], `issue 12 targets over ${transport}`);
  });
}

function writeResults() {
  writeFileSync(join(outputDir, 'results.json'), JSON.stringify({ at: new Date().toISOString(), parley: BIN, chromium: chromiumVersion, phases: PHASES, cells, reported }, null, 1) + '\n');
  const lines = ['# Weak-network bed results', '', `${new Date().toISOString()}; ${BIN}; Chromium ${chromiumVersion}; ${KBIT} kbit/s, phases ${PHASES.alone / 1000}/${PHASES.shaped / 1000}/${PHASES.freed / 1000} s.`, ''];
  for (const c of cells) lines.push(`- ${describeCell(c)}`);
  lines.push('', '| transport | target | met | measured | asserted |', '|---|---|---|---|---|');
  for (const r of reported) lines.push(`| ${r.transport} | ${r.target} | ${r.ok ? 'yes' : 'NO'} | ${r.what} | ${r.enforced ? 'yes' : 'reported'} |`);
  writeFileSync(join(outputDir, 'results.md'), lines.join('\n') + '\n');
}
