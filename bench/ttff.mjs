// Time to first frame with the stock openvidu-browser 2.32.2 in Debian's headless Chromium: a
// publisher (fake camera) joins first, then subscribers join one after another; each measures
// from just before session.connect() to the first decoded frame of the remote video
// (requestVideoFrameCallback). Round 0 warms up and is dropped. Writes <out>.md and <out>.json.
//
// env: PARLEY_URL (a running server, secret MY_SECRET), JOINS (30), ROUNDS (1), OUT, CMDLINE
import { execSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { OpenVidu, startPages, launch } from '../test/e2e/lib.mjs';

const url = process.env.PARLEY_URL;
const joins = Number(process.env.JOINS || 30);
const rounds = Number(process.env.ROUNDS || 1);
const out = process.env.OUT || 'bench/results/ttff';
if (!url) throw new Error('PARLEY_URL is not set');

const ov = new OpenVidu(url, 'MY_SECRET');
const pages = await startPages();
const browser = await launch();
const deadline = setTimeout(() => { console.error('ttff: gave up after 15 minutes'); process.exit(1); }, 15 * 60 * 1000);

async function open(token, publish) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(pages.url);
  const r = await page.evaluate(async ({ token, publish }) => {
    const OV = new OpenVidu();
    OV.enableProdMode();
    const session = OV.initSession();
    window.session = session;
    const times = {};
    const firstFrame = new Promise((resolve, reject) => {
      setTimeout(() => reject(new Error('no remote frame within 20 s')), 20000);
      session.on('streamCreated', (e) => {
        times.streamCreated = performance.now() - t0;
        const sub = session.subscribe(e.stream, 'videos');
        sub.on('videoElementCreated', (ev) => {
          ev.element.requestVideoFrameCallback(() => resolve(performance.now() - t0));
        });
      });
    });
    const t0 = performance.now();
    await session.connect(token, { clientData: publish ? 'publisher' : 'viewer' });
    times.connect = performance.now() - t0;
    if (publish) {
      const pub = await OV.initPublisherAsync(undefined, { resolution: '640x480', frameRate: 30, audioSource: false });
      await session.publish(pub);
      return times;
    }
    times.firstFrame = await firstFrame;
    return times;
  }, { token, publish });
  return { context, page, ...r };
}

const pct = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]; };
const session = await ov.createSession({});
const publisher = await open((await session.createConnection({ role: 'PUBLISHER' })).token, true);
const results = [];
for (let round = 0; round <= rounds; round++) {
  const n = round === 0 ? 5 : joins;
  const samples = [];
  for (let i = 0; i < n; i++) {
    const { token } = await session.createConnection({ role: 'SUBSCRIBER' });
    const s = await open(token, false);
    samples.push({ connect: s.connect, streamCreated: s.streamCreated, firstFrame: s.firstFrame });
    await s.page.evaluate(() => window.session.disconnect());
    await s.context.close();
  }
  const ff = samples.map((s) => s.firstFrame);
  const row = { round, joins: n, p50: pct(ff, 50), p95: pct(ff, 95), max: Math.max(...ff),
    connectP50: pct(samples.map((s) => s.connect), 50), samples };
  console.error(`round ${round}: first frame p50 ${row.p50.toFixed(0)} ms, p95 ${row.p95.toFixed(0)} ms`);
  results.push(row);
}
await publisher.context.close();
await browser.close();
await pages.close();
clearTimeout(deadline);

const kept = results.filter((r) => r.round > 0);
const median = (v) => pct(v, 50);
const sh = (c) => { try { return execSync(c, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return '?'; } };
const machine = { git: `parley ${sh('git describe --always --dirty')}`, go: sh('go env GOVERSION').replace(/^go/, ''), kernel: sh('uname -r'),
  cpu: `${cpus()[0]?.model} × ${cpus().length}`, chromium: sh('/usr/bin/chromium --version'), sdk: 'openvidu-browser 2.32.2' };
let md = `### time to first frame: publisher first, then ${joins} sequential subscriber joins\n\n`;
if (process.env.CMDLINE) md += `\`${process.env.CMDLINE}\`\n\n`;
md += `${machine.git} · Go ${machine.go} · kernel ${machine.kernel} · ${machine.cpu} · ${machine.chromium} · ${machine.sdk} · server on CPU 0, browser on CPU 1 · round 0 (5 joins) dropped\n\n`;
md += '| round | joins | connect() p50 ms | connect() → first frame p50 ms | p95 ms | max ms |\n|---|---|---|---|---|---|\n';
for (const r of kept) md += `| ${r.round} | ${r.joins} | ${r.connectP50.toFixed(0)} | ${r.p50.toFixed(0)} | ${r.p95.toFixed(0)} | ${r.max.toFixed(0)} |\n`;
md += `\nmedian over rounds: p50 ${median(kept.map((r) => r.p50)).toFixed(0)} ms, p95 ${median(kept.map((r) => r.p95)).toFixed(0)} ms (targets: p50 < 300, p95 < 600)\n`;
writeFileSync(`${out}.md`, md);
writeFileSync(`${out}.json`, JSON.stringify({ command: process.env.CMDLINE, machine, rounds: results }, null, 2));
process.stdout.write(md);
