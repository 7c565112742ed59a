// The weak-network bed in make test (issue 12): one publisher and two unshaped subscribers with the
// stock openvidu-browser 2.32.2 in Chromium, and a weak subscriber whose downlink is a 150 kbit/s
// token bucket, over UDP, ICE-TCP and TURN/TCP. Asserts what users see: the unshaped subscribers
// keep their video as it was without the weak one, the publisher is not driven into keyframes, the
// weak subscriber stays in the session, and, where the server meets issue 12's targets on main,
// those targets. Targets not yet met are reported with their numbers, not asserted (see
// README.md; flip `enforced` when a fix lands). A simulcast-mode cell plays a weak subscriber at
// 300 kbit/s, then a weak publisher (its uplink at 150 kbit/s), and the last a subscriber whose
// link loses 15 % at random.
// bench/weaknet.sh runs the full matrix.
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

const share = (c, name) => {
  const o = c.summary.others[name], p = c.summary.publisher;
  return { before: o.alone.kbps / p.alone.kbps, during: o.shaped.kbps / p.shaped.kbps, what: `${o.alone.kbps} of ${p.alone.kbps} kbit/s without, ${o.shaped.kbps} of ${p.shaped.kbps} with` };
};
// Issue 12's targets as this bed measures them. enforced: asserted (they hold on main); otherwise
// the number is printed and kept in output/results.md.
const TARGETS = [
  { name: 'the unshaped subscribers keep decoding video while the weak subscriber is shaped', enforced: false,
    check: (c) => { const v = Object.values(c.summary.others).map((o) => o.shaped.fps); return [v.every((x) => x > 0), `${v.join(' and ')} fps`]; } },
  // A share of what the publisher sends, not a bitrate: the publisher's encoder drifts by itself on
  // a loaded machine.
  { name: 'the unshaped subscribers get as large a share of the publisher\'s video with the weak subscriber as without (≥ 0.9×)', enforced: false,
    check: (c) => { const x = ['s1', 's2'].map((n) => share(c, n)); return [x.every((y) => y.during >= 0.9 * Math.min(1, y.before)), x.map((y) => y.what).join('; ')]; } },
  { name: 'PLIs reaching the publisher ≤ 1/s while the weak subscriber is shaped', enforced: true,
    check: (c) => [c.summary.publisher.shaped.pliPerS <= 1, `${c.summary.publisher.shaped.pliPerS} PLI/s`] },
  { name: 'the unshaped subscribers lose no video while the weak subscriber is shaped (loss ≤ 1 %)', enforced: true,
    check: (c) => [c.summary.othersLossShaped <= 0.01, `worst loss ${c.summary.othersLossShaped}`] },
  { name: 'the weak subscriber plays video again once its link is freed', enforced: false,
    check: (c) => [c.summary.weak.freed.fps > 0, `${c.summary.weak.freed.fps} fps in the ${c.phases.freed / 1000} s after`] },
  // Enforced since the kurento-mode video reads the transport-wide feedback (pause within ~0.7 s,
  // probes ended at their first queued feedback): 0.89-1.00x in bench runs of this cell, 1.15-1.43
  // before.
  { name: 'server egress to the weak subscriber ≤ 1.25× its link rate', enforced: true, transports: ['udp'],
    check: (c) => [c.summary.weak.egressRatio <= 1.25, `${c.summary.weak.egressKbps} kbit/s = ${c.summary.weak.egressRatio}× the link`] },
  // Latency of the frames it presents; with its video paused (audio only) it presents none, which
  // meets the target: nothing old is shown.
  { name: 'the weak subscriber\'s frames reach the screen within 1 s of capture, p95 (dropped, not queued)', enforced: false, transports: ['ice-tcp', 'turn-tcp'],
    check: (c) => { const w = c.summary.weak.shaped; return [w.latencyP95 === null || w.latencyP95 < 1000, `latency p50/p95 ${w.latencyP50 ?? '-'}/${w.latencyP95 ?? '-'} ms (${w.latencyP95 === null ? 'no frames presented' : `${w.fps} fps`}); picture at worst ${w.behindMax ?? '-'} ms behind real time`]; } },
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
  parley = await startParley(BIN, { logPath: join(outputDir, 'parley.log'), extraEnv: { OPENVIDU_WEBRTC_SIMULCAST: 'false' } });
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
  test(`a weak subscriber at ${KBIT} kbit/s over ${transport} keeps the others in the call and the publisher free of keyframe storms`, { timeout: 190000 }, async () => {
    const cell = await within(180000, runCell({ parley, pages, browsers }, { transport, kbit: KBIT, phases: PHASES, log: (m) => console.log(`#${m}`) }), `${transport} cell`);
    cells.push(cell);
    console.log(`# ${describeCell(cell)}`);
    const s = cell.summary;
    const w = s.weak;

    // The bed did what it says: the weak subscriber's media took the transport under test.
    assert.equal(w.shaped.path, transport, `the weak subscriber's media must go over ${transport}, went over ${w.shaped.path}`);
    // The unshaped subscribers stay in the call: they keep receiving its audio and lose nothing.
    // (Their video is a target below: on main a subscriber whose browser stalls for a second or
    // two can have its video paused for longer than the shaped phase.)
    for (const [name, o] of Object.entries(s.others)) {
      assert.ok(o.shaped.audioKbps > 0, `${name} must keep receiving audio while the weak subscriber is shaped: ${JSON.stringify(o.shaped)}`);
    }
    assert.ok(s.publisher.shaped.fps > 0, 'the publisher must keep sending video');
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

// Simulcast mode (OPENVIDU_WEBRTC_SIMULCAST=true): the publisher captures 960x540, so the stock
// client sends three layers, and the weak subscriber at 300 kbit/s should get a lower one instead
// of a paused video. Its own server, after the cells above.
const SC_KBIT = 300;
test(`in simulcast mode a weak subscriber at ${SC_KBIT} kbit/s over udp decodes video and the others keep theirs`, { timeout: 220000 }, async () => {
  await parley.stop();
  parley = await startParley(BIN, { logPath: join(outputDir, 'parley-simulcast.log'), extraEnv: { OPENVIDU_WEBRTC_SIMULCAST: 'true' } });
  const cell = await within(180000, runCell({ parley, pages, browsers }, { transport: 'udp', kbit: SC_KBIT, capture: '960x540', phases: PHASES, log: (m) => console.log(`#${m}`) }), 'simulcast cell');
  cell.simulcast = true;
  cells.push(cell);
  console.log(`# simulcast: ${describeCell(cell)}`);
  const s = cell.summary;
  const w = s.weak;
  assert.equal(w.shaped.path, 'udp');
  // What the weak subscriber sees: video, not a paused picture (a layer that fits its link).
  assert.ok(w.shaped.fps > 0, `the weak subscriber must decode video in simulcast mode: ${JSON.stringify(w.shaped)}`);
  assert.ok(!w.events.some((e) => e.startsWith('sessionDisconnected')), `the weak subscriber must stay connected: ${w.events.join(', ')}`);
  // What the others see: their video and audio go on, without loss, and the publisher is not
  // driven into keyframes.
  for (const [name, o] of Object.entries(s.others)) {
    assert.ok(o.shaped.fps > 0, `${name} must keep decoding video: ${JSON.stringify(o.shaped)}`);
    assert.ok(o.shaped.audioKbps > 0, `${name} must keep receiving audio: ${JSON.stringify(o.shaped)}`);
  }
  assert.ok(s.othersLossShaped <= 0.01, `the unshaped subscribers must lose no video: worst loss ${s.othersLossShaped}`);
  assert.ok(s.publisher.shaped.pliPerS <= 1, `PLIs reaching the publisher: ${s.publisher.shaped.pliPerS}/s`);
  assert.equal(parley.exited, null, 'parley must keep running');
  const lower = w.shaped.height !== null && s.others.s1.shaped.height !== null && w.shaped.height < s.others.s1.shaped.height;
  reported.push({ transport: 'udp simulcast 300', target: 'the weak subscriber gets a lower layer than the unshaped ones', ok: lower, what: `${w.shaped.height}p vs ${s.others.s1.shaped.height}p`, enforced: false });
  if (!lower) console.log(`# TARGET NOT MET (reported, not asserted) simulcast: the weak subscriber gets a lower layer: ${w.shaped.height}p vs ${s.others.s1.shaped.height}p`);
  // Issue 12's 300 kbit/s target, as this short phase measures it (its first 5 s, the onset, are
  // not counted).
  const smooth = w.shaped.fps >= 15 && w.shaped.freezeSPerMin < 1;
  reported.push({ transport: 'udp simulcast 300', target: 'the weak subscriber: ≥ 15 fps, freezes < 1 s/min', ok: smooth, what: `${w.shaped.fps} fps, ${w.shaped.freezeSPerMin} s/min frozen`, enforced: false });
  if (!smooth) console.log(`# TARGET NOT MET (reported, not asserted) simulcast: the weak subscriber: ≥ 15 fps, freezes < 1 s/min: ${w.shaped.fps} fps, ${w.shaped.freezeSPerMin} s/min`);
});

// A weak publisher (simulcast mode, the server above): its uplink shaped to 150 kbit/s, no weak
// subscriber. The unshaped subscribers must keep decoding its video at the rate it still encodes
// (Chrome drops its upper layers under its own estimate), and what we send it back must not flood
// it: no keyframe storm, and no NACKs once its uplink is free again (pion's generator asked for the
// packets lost under the shaping ten times a second for half a minute).
const PUB_KBIT = 150;
test(`a publisher on a ${PUB_KBIT} kbit/s uplink: the others decode its video and nothing floods it`, { timeout: 150000 }, async () => {
  const cell = await within(140000, runCell({ parley, pages, browsers }, { transport: 'udp', kbit: PUB_KBIT, uplink: true, capture: '960x540', phases: PHASES, log: (m) => console.log(`#${m}`) }), 'publisher cell');
  cells.push(cell);
  console.log(`# ${describeCell(cell)}`);
  const u = cell.summary.uplink;
  const o = u.others.shaped, p = u.publisher.shaped;
  assert.ok(p.fps > 0, `the publisher must keep encoding video: ${JSON.stringify(p)}`);
  // What the subscribers see: the frames the publisher still encodes, at least half of them and
  // ten a second (main decoded 26 of its 30).
  assert.ok(o.fps >= 10 && o.fps >= 0.5 * p.fps, `the subscribers must decode the weak publisher's video: ${o.fps} fps of ${p.fps} encoded`);
  for (const [name, x] of Object.entries(cell.summary.others)) assert.ok(x.shaped.audioKbps > 0, `${name} must keep receiving audio`);
  assert.ok(p.pliPerS <= 1, `keyframe requests reaching the weak publisher: ${p.pliPerS}/s`);
  assert.ok(u.publisher.freed.nackPerS <= 1, `NACKs reaching the publisher once its uplink is free: ${u.publisher.freed.nackPerS}/s (${u.publisher.shaped.nackPerS}/s while shaped)`);
  assert.equal(parley.exited, null, 'parley must keep running');
  reported.push({ transport: `publisher uplink ${PUB_KBIT}`, target: 'the subscribers\' freezes while the publisher is shaped', ok: true, what: `${o.freezeSPerMin} s/min, ${o.height}p, latency p50 ${o.latencyP50} ms`, enforced: false });
});

// A subscriber whose link loses 15 % at random (a radio, no queue; simulcast mode, the server
// above): it must get a picture as good as kurento mode's one encoding, not the lowest layer for
// good (main kept it on 135p: its NACKs held back every probe), and freeze no more than the issue's
// baseline (2.8 s per 30 s) with a margin for a loaded machine.
const LOSS_PCT = 15;
test(`in simulcast mode a subscriber losing ${LOSS_PCT} % at random gets a layer above the lowest, with short freezes`, { timeout: 150000 }, async () => {
  const cell = await within(140000, runCell({ parley, pages, browsers }, { transport: 'udp', kbit: 5000, lossPct: LOSS_PCT, capture: '960x540', phases: PHASES, log: (m) => console.log(`#${m}`) }), 'random-loss cell');
  cell.simulcast = true;
  cells.push(cell);
  console.log(`# ${describeCell(cell)}`);
  const s = cell.summary, w = s.weak.shaped;
  assert.equal(w.path, 'udp');
  assert.ok(w.fps >= 15, `the lossy subscriber must decode video: ${JSON.stringify(w)}`);
  assert.ok(w.height >= 270, `the lossy subscriber must get a layer above the lowest (135p): ${w.height}p`);
  assert.ok(w.freezeSPerMin <= 10, `the lossy subscriber's freezes: ${w.freezeSPerMin} s/min`);
  assert.ok(s.othersLossShaped <= 0.01, `the others must lose no video: worst loss ${s.othersLossShaped}`);
  assert.equal(parley.exited, null, 'parley must keep running');
  reported.push({ transport: `udp ${LOSS_PCT} % random loss, simulcast`, target: 'the lossy subscriber\'s picture', ok: true, what: `${w.fps} fps, ${w.height}p, freezes ${w.freezeSPerMin} s/min`, enforced: true });
});

function writeResults() {
  writeFileSync(join(outputDir, 'results.json'), JSON.stringify({ at: new Date().toISOString(), parley: BIN, chromium: chromiumVersion, phases: PHASES, cells, reported }, null, 1) + '\n');
  const lines = ['# Weak-network bed results', '', `${new Date().toISOString()}; ${BIN}; Chromium ${chromiumVersion}; ${KBIT} kbit/s, phases ${PHASES.alone / 1000}/${PHASES.shaped / 1000}/${PHASES.freed / 1000} s.`, ''];
  for (const c of cells) lines.push(`- ${describeCell(c)}`);
  lines.push('', '| transport | target | met | measured | asserted |', '|---|---|---|---|---|');
  for (const r of reported) lines.push(`| ${r.transport} | ${r.target} | ${r.ok ? 'yes' : 'NO'} | ${r.what} | ${r.enforced ? 'yes' : 'reported'} |`);
  writeFileSync(join(outputDir, 'results.md'), lines.join('\n') + '\n');
}
