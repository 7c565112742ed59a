// Measures what an INDIVIDUAL recording costs Parley in CPU, per recorded stream: a two-person
// call of Debian Chromium pages (fake camera 640x480@30 and microphone, VP8 + Opus), parley's own
// utime+stime from /proc/<pid>/stat over a window without a recording, then over the same window
// with an INDIVIDUAL recording of both streams; ROUNDS rounds alternate, and the medians are
// printed. Browsers run on the same machine but are not counted (only parley's pid is read).
//
//   make build && (cd test/e2e && ./setup.sh) && node bench/recording-cpu.mjs
//   WINDOW_S=20 ROUNDS=3 node bench/recording-cpu.mjs
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startParley, startPages, launch, openParticipant, waitDecoding, poll } from '../test/e2e/lib.mjs';

const WINDOW_S = Number(process.env.WINDOW_S || 20);
const ROUNDS = Number(process.env.ROUNDS || 3);
const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// cpuSeconds is the process's user+system CPU time so far.
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  return (Number(f[11]) + Number(f[12])) / ticks; // utime (14), stime (15)
}

async function window(pid) {
  const c0 = cpuSeconds(pid), t0 = Date.now();
  await sleep(WINDOW_S * 1000);
  return (cpuSeconds(pid) - c0) / ((Date.now() - t0) / 1000); // cores busy
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

const recPath = mkdtempSync(join(tmpdir(), 'parley-bench-rec-'));
const parley = await startParley('bench-recording-cpu', { OPENVIDU_RECORDING: 'true', OPENVIDU_RECORDING_PATH: recPath });
const pages = await startPages();
const browser = await launch();
try {
  const session = await parley.ov.createSession({ customSessionId: 'cpu' });
  const ps = [];
  for (const name of ['a', 'b']) ps.push(await openParticipant(browser, pages.url, (await session.createConnection()).token, { name }));
  await waitDecoding(ps[0], [ps[1].id]);
  await waitDecoding(ps[1], [ps[0].id]);
  await sleep(5000); // past the browsers' bandwidth ramp-up
  const pid = parley.proc.pid;
  const without = [], withRec = [], kbps = [];
  for (let r = 0; r < ROUNDS; r++) {
    without.push(await window(pid));
    const rec = await parley.ov.startRecording('cpu', { outputMode: 'INDIVIDUAL', name: `r${r}` });
    withRec.push(await window(pid));
    await parley.ov.stopRecording(rec.id);
    const done = await poll('recording ready', async () => { const x = await parley.ov.getRecording(rec.id); return x.status === 'ready' && x; }, { timeout: 60000 });
    kbps.push((8 * done.size) / done.duration / 1000 / 2);
    console.log(`round ${r + 1}: parley ${(100 * without[r]).toFixed(1)} % of a core without, ${(100 * withRec[r]).toFixed(1)} % with an INDIVIDUAL recording ` +
      `(${kbps[r].toFixed(0)} kbps written per stream)`);
  }
  const perStream = without.map((w, i) => (withRec[i] - w) / 2);
  console.log(`median over ${ROUNDS} rounds of ${WINDOW_S} s: call ${(100 * median(without)).toFixed(1)} % of a core, ` +
    `with recording ${(100 * median(withRec)).toFixed(1)} %, recording cost per stream ${(100 * median(perStream)).toFixed(2)} % of a core ` +
    `(${(1000 * median(perStream)).toFixed(1)} ms CPU per second of stream, streams of ${median(kbps).toFixed(0)} kbps)`);
} finally {
  await browser.close();
  await pages.close();
  await parley.stop();
  rmSync(recPath, { recursive: true, force: true });
}
