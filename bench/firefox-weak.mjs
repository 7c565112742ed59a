// A Firefox subscriber on a shaped downlink (manual run, root): a Chromium publisher (640x480, two
// simulcast layers) and a Debian Firefox ESR subscriber on one machine, Parley in dev mode; once
// the subscriber decodes, what the server sends to the subscriber's UDP port is shaped with tc
// (an htb class with tbf on lo, matched by that port alone) for SHAPED seconds, then freed. Prints
// per-second samples and a summary: the subscriber's fps, height, freezes, and its inbound video
// bitrate while shaped, and the server's layer choice (debug log). Needs root and tc.
//
// usage: flock /tmp/parley-heavy.lock env PARLEY_BIN=bin/parley node bench/firefox-weak.mjs [kbit=300] [shaped=30]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startParley, startPages, launch, launchFirefox, openParticipant, waitDecoding } from '../test/e2e/lib.mjs';

const kbit = Number(process.argv[2] || 300);
const shapedS = Number(process.argv[3] || 30);
const tc = (...a) => execFileSync('tc', a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const unshape = () => { try { tc('qdisc', 'del', 'dev', 'lo', 'root'); } catch { /* none */ } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (!/noqueue/.test(tc('qdisc', 'show', 'dev', 'lo'))) throw new Error('lo already has a qdisc: not ours to replace');
const parley = await startParley('firefox-weak', { OPENVIDU_WEBRTC_SIMULCAST: 'true' });
const pages = await startPages();
const [chromium, firefox] = await Promise.all([launch(), launchFirefox()]);
const samples = [];
try {
  const session = await parley.ov.createSession({ customSessionId: 'firefox-weak' });
  const pub = await openParticipant(chromium, pages.url, (await session.createConnection({})).token, { name: 'pub' });
  const sub = await openParticipant(firefox, pages.url, (await session.createConnection({})).token, { name: 'fox', publish: false });
  await waitDecoding(sub, [pub.id]);
  const read = () => sub.page.evaluate(async () => {
    const pc = window.subscribers[0].stream.getRTCPeerConnection();
    const r = { t: Date.now() };
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') Object.assign(r, { frames: s.framesDecoded, height: s.frameHeight || 0, bytes: s.bytesReceived, lost: s.packetsLost });
      if (s.type === 'inbound-rtp' && s.kind === 'audio') r.audio = s.bytesReceived;
      if (s.type === 'candidate-pair' && s.selected) r.pair = s.localCandidateId;
      if (s.type === 'local-candidate') (r.locals ||= {})[s.id] = s.port;
    });
    r.port = r.locals?.[r.pair];
    delete r.locals;
    return r;
  });
  const phase = async (name, seconds) => {
    for (let i = 0; i < seconds; i++) {
      await sleep(1000);
      const s = { phase: name, ...(await read()) };
      const prev = samples.at(-1);
      if (prev) Object.assign(s, { fps: s.frames - prev.frames, kbps: Math.round((s.bytes - prev.bytes) * 8 / (s.t - prev.t)) });
      samples.push(s);
      console.log(JSON.stringify(s));
    }
  };
  await phase('alone', 10);
  const port = samples.at(-1).port;
  if (!port) throw new Error('no selected candidate pair in Firefox');
  // As netns.sh shape-pub: an htb without a default class sends what no filter classifies
  // straight out, so only the subscriber's port goes through the tbf; the rest of lo is untouched.
  tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '10gbit', 'quantum', '65535');
  tc('qdisc', 'add', 'dev', 'lo', 'parent', '1:10', 'handle', '10:', 'tbf', 'rate', `${kbit}kbit`, 'burst', '4kb', 'latency', '200ms');
  tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'protocol', '17', '0xff', 'match', 'ip', 'dport', String(port), '0xffff', 'flowid', '1:10');
  tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ipv6', 'prio', '2', 'u32', 'match', 'ip6', 'protocol', '17', '0xff', 'match', 'ip6', 'dport', String(port), '0xffff', 'flowid', '1:10');
  const shapedAt = Date.now();
  await phase('shaped', shapedS);
  const stats = tc('-s', 'qdisc', 'show', 'dev', 'lo');
  unshape();
  await phase('freed', 10);
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : null; };
  const summary = {};
  for (const name of ['alone', 'shaped', 'freed']) {
    // The shaped phase is judged after its first 5 s, as bench/weaknet.sh does.
    const xs = samples.filter((s) => s.phase === name && s.fps !== undefined).slice(name === 'shaped' ? 5 : 0);
    summary[name] = { fps: med(xs.map((s) => s.fps)), height: med(xs.map((s) => s.height)), kbps: med(xs.map((s) => s.kbps)),
      frozenS: xs.filter((s) => s.fps === 0).length, lost: xs.at(-1)?.lost, audioKB: Math.round((xs.at(-1)?.audio || 0) / 1000) };
  }
  const log = readFileSync(parley.logPath, 'utf8').split('\n');
  summary.layerSwitches = log.filter((l) => l.includes('msg="simulcast layer switch"') && l.includes(`connection=${sub.id} `) && Date.parse(l.slice(5, 29)) >= shapedAt)
    .map((l) => `${Math.round((Date.parse(l.slice(5, 29)) - shapedAt) / 100) / 10}s→${l.match(/ to=(\d+)/)[1]}`);
  summary.paused = log.some((l) => l.includes(`connection=${sub.id} `) && /video paused|paused=true/.test(l) && Date.parse(l.slice(5, 29)) >= shapedAt);
  summary.tbf = (stats.match(/qdisc tbf[^]*?Sent (\d+) bytes (\d+) pkt \(dropped (\d+)/) || []).slice(1).join(' bytes / pkts / dropped ');
  console.log('SUMMARY', JSON.stringify(summary));
} finally {
  unshape();
  await firefox.close();
  await chromium.close();
  await pages.close();
  await parley.stop();
}
