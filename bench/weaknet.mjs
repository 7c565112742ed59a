// The weak-network matrix (bench/weaknet.sh builds the namespaces and calls this): for every cell
// (transport × link rate of the weak subscriber) a publisher and two unshaped subscribers run alone,
// then the weak subscriber joins through its shaped link, then the link is freed. Rounds alternate
// the order of the cells (forward, then backward); a fresh parley per round. Writes OUT.json (every
// sample) and OUT.md (medians over the rounds).
import { writeFileSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  NET, repoRoot, startParley, startLivekit, startPages, launchBrowsers, removeWrappers, runCell, describeCell, median, within,
} from '../test/e2e/weaknet/bed.mjs';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
const BIN = process.env.PARLEY_BIN || join(repoRoot, 'bin/parley');
const OUT = process.env.OUT || join(repoRoot, 'bench/results/weaknet');
const ROUNDS = Number(process.env.ROUNDS || 2);
const CELLS = (process.env.CELLS || 'udp:150,udp:300,udp:600,ice-tcp:150,ice-tcp:300,ice-tcp:600,turn-tcp:150,turn-tcp:300,turn-tcp:600')
  .split(',').filter((c) => c !== 'none').map((c) => {
    // pub-TRANSPORT:kbit shapes the publisher's uplink instead of a weak subscriber's downlink.
    // pubjoin-udp:kbit has the publisher join over that uplink (its first seconds, in "alone").
    const joinShaped = c.startsWith('pubjoin-');
    const uplink = joinShaped || c.startsWith('pub-');
    const [transport, kbit, loss] = (joinShaped ? c.slice(8) : uplink ? c.slice(4) : c).split(':');
    return { transport, kbit: Number(kbit), lossPct: Number(loss || 0), uplink, joinShaped };
  });
// LiveKit side by side when the operator gives a livekit-server binary and livekit-client's UMD bundle.
const LIVEKIT_BIN = process.env.LIVEKIT_BIN || '';
const LIVEKIT_CLIENT = process.env.LIVEKIT_CLIENT || '';
const LK_CELLS = (process.env.LIVEKIT_CELLS || 'udp:300,udp:600')
  .split(',').map((c) => { const [transport, kbit, loss] = c.split(':'); return { transport, kbit: Number(kbit), lossPct: Number(loss || 0) }; });
const [alone, shaped, freed, squeezed] = (process.env.PHASES || '10,30,10').split(',').map((x) => Number(x) * 1000);
const CAPTURE = process.env.CAPTURE || undefined;
const EXTRA_ENV = Object.fromEntries((process.env.PARLEY_ENV || '').split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const log = (...a) => console.log(...a);

const sh = (cmd, args) => { try { return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10000 }).trim(); } catch { return null; } };
const env = {
  at: new Date().toISOString(), cmdline: process.env.CMDLINE || null,
  git: sh('git', ['-C', repoRoot, 'describe', '--always', '--dirty']), parley: sh(BIN, ['version']), go: sh('go', ['version']),
  kernel: sh('uname', ['-r']), cpu: (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1], load: readFileSync('/proc/loadavg', 'utf8').trim(),
  net: `${NET}.0/24`, phasesMs: { alone, shaped, freed, squeezed }, capture: CAPTURE || '640x480', parleyEnv: EXTRA_ENV, rounds: ROUNDS,
};

const runs = [];
const pages = await startPages({ livekitClient: LIVEKIT_BIN ? LIVEKIT_CLIENT : undefined });
if (LIVEKIT_BIN) env.livekit = (sh(LIVEKIT_BIN, ['--version']) || '').replace('livekit-server version ', 'v');

// playRound runs cells against one fresh server process and fresh browsers.
async function playRound(round, sfu, cells) {
  const server = sfu === 'livekit'
    ? await startLivekit(LIVEKIT_BIN, { logPath: `${OUT}.livekit.log` })
    : await startParley(BIN, { logPath: `${OUT}.parley.log`, extraEnv: EXTRA_ENV, append: round > 1 }); // every round's log
  const browsers = await launchBrowsers();
  env.chromium = browsers.version;
  try {
    for (const c of cells) {
      log(`round ${round}: ${sfu} ${c.uplink ? 'publisher uplink ' : ''}${c.transport} ${c.kbit} kbit/s${c.lossPct ? ` loss ${c.lossPct}%` : ''}`);
      try {
        const cell = await within(alone + shaped + freed + 120000, runCell({ parley: server, pages, browsers }, { ...c, capture: CAPTURE, phases: { alone, shaped, freed, squeezed }, log }), 'cell');
        cell.round = round;
        runs.push(cell);
        log(`  ${describeCell(cell)}`);
      } catch (e) {
        log(`  FAILED: ${e.message}`);
        runs.push({ sfu, ...c, round, failure: e.message });
      }
      if (server.exited) throw new Error(`${sfu} exited: ${JSON.stringify(server.exited)}`);
    }
  } finally {
    await browsers.close();
    await server.stop();
  }
}

try {
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate: cells forward then backward; with LiveKit, parley first then LiveKit first.
    const plan = CELLS.length ? [['parley', CELLS]] : [];
    if (LIVEKIT_BIN) plan.push(['livekit', LK_CELLS]);
    for (const [sfu, cells] of round % 2 ? plan : [...plan].reverse()) await playRound(round, sfu, round % 2 ? cells : [...cells].reverse());
  }
} finally {
  await pages.close().catch(() => {});
  removeWrappers();
  env.loadAfter = readFileSync('/proc/loadavg', 'utf8').trim();
  writeFileSync(`${OUT}.json`, JSON.stringify({ env, runs }, null, 1) + '\n');
  writeFileSync(`${OUT}.md`, table());
  log(`\nwrote ${OUT}.md and ${OUT}.json\n`);
  log(readFileSync(`${OUT}.md`, 'utf8'));
}

function table() {
  const fmt = (x, unit = '') => (x === null || x === undefined ? '–' : `${x}${unit}`);
  const med = (cells, get) => { const m = median(cells.map(get)); return m === null ? null : Math.round(m * 100) / 100; };
  const lines = [
    `# Weak-network bed: ${env.git} (${env.parley || BIN})`, '',
    `${env.at}; Chromium ${env.chromium};${env.livekit ? ` ${env.livekit} with livekit-client's defaults (simulcast, adaptiveStream off);` : ''} kernel ${env.kernel}; ${env.cpu}; load ${env.load} → ${env.loadAfter}; ${ROUNDS} round(s), order alternating; phases alone/shaped/freed${squeezed ? '/squeezed' : ''} ${alone / 1000}/${shaped / 1000}/${freed / 1000}${squeezed ? `/${squeezed / 1000}` : ''} s; publisher captures ${env.capture}${Object.keys(EXTRA_ENV).length ? `; parley env ${JSON.stringify(EXTRA_ENV)}` : ''}.`,
    `Command: \`${env.cmdline || 'bench/weaknet.sh'}\``, '',
    'Median over the rounds. Weak = the shaped subscriber during the shaped phase (after its first 5 s); egress = what the server sent it during the whole shaped phase (iptables byte counter) ÷ its link rate; PLI/s = PLIs reaching the publisher (its outbound-rtp pliCount), alone → with the weak subscriber; others = the two unshaped subscribers\' received video bitrate as a share of what the publisher sent, while the weak one is shaped ÷ after its link is freed, and their worst loss with it; latency = capture-to-display of the presented frames (time code painted by the publisher, read from the subscriber\'s <video>); behind = how far the picture lagged real time at worst (freezes included); recover = from removing the shaping to the first frame as fresh as the others\'.', '',
    '| server | transport | link | n | weak fps | freeze s/min | height | audio concealed | latency p50 / p95 ms | behind max ms | egress kbit/s (× link) | recover ms | PLI/s at publisher | others kbit/s ratio | others loss | weak path | top after freed ms (first frame) | down after squeezed ms (first frame) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const rows = [...CELLS.filter((c) => !c.uplink).map((c) => ({ ...c, sfu: 'parley' })), ...(LIVEKIT_BIN ? LK_CELLS.map((c) => ({ ...c, sfu: 'livekit' })) : [])];
  for (const c of rows) {
    const all = runs.filter((r) => (r.sfu || 'parley') === c.sfu && !r.uplink && r.transport === c.transport && r.kbit === c.kbit && (r.lossPct || 0) === c.lossPct);
    const ok = all.filter((r) => r.summary);
    const w = (get) => med(ok, (r) => get(r.summary.weak));
    const paths = [...new Set(ok.map((r) => r.summary.weak.shaped.path || 'none'))].join(', ');
    const failed = all.length - ok.length;
    lines.push(`| ${c.sfu === 'livekit' ? `LiveKit ${env.livekit || ''}`.trim() : 'parley'} | ${c.transport} | ${c.kbit} kbit/s${c.lossPct ? ` + ${c.lossPct}% loss` : ''} | ${ok.length}${failed ? ` (${failed} failed)` : ''} | ${fmt(w((x) => x.shaped.fps))} | ${fmt(w((x) => x.shaped.freezeSPerMin))} | ${fmt(w((x) => x.shaped.height))} | ${fmt(w((x) => x.shaped.concealed))} | ${fmt(w((x) => x.shaped.latencyP50))} / ${fmt(w((x) => x.shaped.latencyP95))} | ${fmt(w((x) => x.shaped.behindMax))} | ${fmt(w((x) => x.egressKbps))} (${fmt(w((x) => x.egressRatio))}×) | ${fmt(w((x) => x.recoverMs))} | ${fmt(med(ok, (r) => r.summary.publisher.alone.pliPerS))} → ${fmt(med(ok, (r) => r.summary.publisher.shaped.pliPerS))} | ${fmt(med(ok, (r) => r.summary.othersKbpsRatio))} | ${fmt(med(ok, (r) => r.summary.othersLossShaped))} | ${paths} | ${fmt(w((x) => x.upMs))} (${fmt(w((x) => x.upFrameMs))}) | ${fmt(w((x) => x.downMs))} (${fmt(w((x) => x.downFrameMs))}) |`);
  }
  const up = CELLS.filter((c) => c.uplink);
  if (up.length) {
    lines.push('', 'Shaped publishers (pub- cells): the publisher\'s uplink is shaped, in the same phases; no weak subscriber. Subscribers = the two unshaped ones (median of the two; shaped phase after its first 5 s): fps, freeze s/min, received height, capture-to-display latency. Publisher = its getStats: the layers it sends (heights of the encodings whose bytes grew, most frequent per-second set), qualityLimitationReason, its send-side estimate (availableOutgoingBitrate), PLIs and NACKs (NACK packets) reaching it per second, what it retransmitted. Uplink = what reached the server from it ÷ the link. Up = from freeing the uplink to the first second both subscribers receive the height they had alone; down = from squeezing it again to the first second either receives less.', '',
      '| transport | uplink | n | subs fps alone → shaped → freed | freeze s/min shaped | height alone → shaped → freed | latency p50 / p95 ms shaped | pub layers alone → shaped → freed | pub kbit/s shaped (uplink carried, × link) | qualityLimitation shaped | pub estimate kbit/s shaped | PLI/s at pub alone → shaped | NACK/s at pub shaped → freed | pub resent kbit/s shaped | up after freed ms | down after squeezed ms |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of up) {
      const all = runs.filter((r) => r.uplink && r.transport === c.transport && r.kbit === c.kbit);
      const ok = all.filter((r) => r.summary?.uplink);
      const u = (get) => med(ok, (r) => get(r.summary.uplink));
      const m = (get) => { const xs = ok.map((r) => get(r.summary.uplink)).filter(Boolean); return xs.length ? [...new Set(xs)].join(', ') : '–'; };
      const failed = all.length - ok.length;
      lines.push(`| ${c.transport} | ${c.kbit} kbit/s | ${ok.length}${failed ? ` (${failed} failed)` : ''} | ${fmt(u((x) => x.others.alone.fps))} → ${fmt(u((x) => x.others.shaped.fps))} → ${fmt(u((x) => x.others.freed.fps))} | ${fmt(u((x) => x.others.shaped.freezeSPerMin))} | ${fmt(u((x) => x.others.alone.height))} → ${fmt(u((x) => x.others.shaped.height))} → ${fmt(u((x) => x.others.freed.height))} | ${fmt(u((x) => x.others.shaped.latencyP50))} / ${fmt(u((x) => x.others.shaped.latencyP95))} | ${m((x) => x.publisher.alone.layers)} → ${m((x) => x.publisher.shaped.layers)} → ${m((x) => x.publisher.freed.layers)} | ${fmt(u((x) => x.publisher.shaped.kbps))} (${fmt(u((x) => x.uplinkKbps))}, ${fmt(u((x) => x.uplinkRatio))}×) | ${m((x) => x.publisher.shaped.qlr)} | ${fmt(u((x) => x.publisher.shaped.aobKbps))} | ${fmt(u((x) => x.publisher.alone.pliPerS))} → ${fmt(u((x) => x.publisher.shaped.pliPerS))} | ${fmt(u((x) => x.publisher.shaped.nackPerS))} → ${fmt(u((x) => x.publisher.freed.nackPerS))} | ${fmt(u((x) => x.publisher.shaped.rtxKbps))} | ${fmt(u((x) => x.upMs))} | ${fmt(u((x) => x.downMs))} |`);
    }
  }
  lines.push('');
  for (const r of runs) {
    if (r.failure) lines.push(`- round ${r.round} ${r.sfu} ${r.uplink ? 'pub-' : ''}${r.transport} ${r.kbit}: FAILED ${r.failure}`);
    else {
      const ev = r.summary.weak?.events?.filter((e) => !e.startsWith('streamDestroyed')) || [];
      lines.push(`- round ${r.round}: ${describeCell(r)}${ev.length ? `; weak events: ${ev.join(', ')}` : ''}${r.notes.length ? `; ${r.notes.join('; ')}` : ''}`);
    }
  }
  return lines.join('\n') + '\n';
}
