// Firefox on a shaped link (manual run, root), Parley in dev mode on one machine with a Debian
// Firefox ESR and Chromium:
// - "sub" (the default): a Chromium publisher (640x480, two simulcast layers) and a Firefox
//   subscriber; what the server sends to the subscriber's UDP port is shaped;
// - "pub": a Firefox publisher (640x480, its two rid layers) and a Chromium subscriber; what
//   Firefox sends from its UDP port (its uplink) is shaped.
// Once the subscriber decodes, that traffic goes through tc (an htb class with tbf on lo, matched
// by that port alone) for SHAPED seconds, then is freed. Prints per-second samples and a summary:
// the subscriber's fps, height, freezes, and its inbound video bitrate; with "pub" also what
// Firefox encodes and sends of each layer; and the server's layer choice (debug log). Needs root
// and tc.
//
// usage: flock /tmp/parley-heavy.lock env PARLEY_BIN=bin/parley [FFW_ENV='{...}'] node bench/firefox-weak.mjs [kbit=300] [shaped=30] [sub|pub]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startParley, startPages, launch, launchFirefox, openParticipant, waitDecoding } from '../test/e2e/lib.mjs';

const kbit = Number(process.argv[2] || 300);
const shapedS = Number(process.argv[3] || 30);
const role = process.argv[4] || 'sub';
if (!['sub', 'pub'].includes(role)) throw new Error(`role ${role}: sub or pub`);
const tc = (...a) => execFileSync('tc', a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const unshape = () => { try { tc('qdisc', 'del', 'dev', 'lo', 'root'); } catch { /* none */ } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (!/noqueue/.test(tc('qdisc', 'show', 'dev', 'lo'))) throw new Error('lo already has a qdisc: not ours to replace');
// FFW_ENV: more server settings, as JSON (e.g. '{"OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH":"100"}').
const parley = await startParley('firefox-weak', { OPENVIDU_WEBRTC_SIMULCAST: 'true', ...JSON.parse(process.env.FFW_ENV || '{}') });
const pages = await startPages();
const [chromium, firefox] = await Promise.all([launch(), launchFirefox()]);
const samples = [];
try {
  const session = await parley.ov.createSession({ customSessionId: 'firefox-weak' });
  const [pubBrowser, subBrowser] = role === 'pub' ? [firefox, chromium] : [chromium, firefox];
  const pub = await openParticipant(pubBrowser, pages.url, (await session.createConnection({})).token, { name: role === 'pub' ? 'fox' : 'pub' });
  const sub = await openParticipant(subBrowser, pages.url, (await session.createConnection({})).token, { name: role === 'pub' ? 'sub' : 'fox', publish: false });
  await waitDecoding(sub, [pub.id]);
  // The shaped side's UDP port: the local candidate of its selected pair, as Firefox reports it.
  const firefoxPort = (page, which) => page.evaluate(async (which) => {
    const pc = (which === 'pub' ? window.publisher : window.subscribers[0]).stream.getRTCPeerConnection();
    let pair, locals = {};
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'candidate-pair' && s.selected) pair = s.localCandidateId;
      if (s.type === 'local-candidate') locals[s.id] = s.port;
    });
    return locals[pair];
  }, which);
  // What Firefox encodes and sends of each rid layer (a publisher only).
  const sent = () => role !== 'pub' ? null : pub.page.evaluate(async () => {
    const out = {};
    (await window.publisher.stream.getRTCPeerConnection().getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') out[s.rid || s.ssrc] = { bytes: s.bytesSent, frames: s.framesEncoded, width: s.frameWidth || 0 };
    });
    return out;
  });
  const read = async () => {
    const r = await sub.page.evaluate(async () => {
      const pc = window.subscribers[0].stream.getRTCPeerConnection();
      const r = { t: Date.now() };
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') Object.assign(r, { frames: s.framesDecoded, height: s.frameHeight || 0, bytes: s.bytesReceived, lost: s.packetsLost, freezeS: s.totalFreezesDuration });
        if (s.type === 'inbound-rtp' && s.kind === 'audio') r.audio = s.bytesReceived;
      });
      return r;
    });
    const layers = await sent();
    if (layers) r.layers = layers;
    return r;
  };
  const phase = async (name, seconds) => {
    for (let i = 0; i < seconds; i++) {
      await sleep(1000);
      const s = { phase: name, ...(await read()) };
      const prev = samples.at(-1);
      if (prev) Object.assign(s, { fps: s.frames - prev.frames, kbps: Math.round((s.bytes - prev.bytes) * 8 / (s.t - prev.t)) });
      if (prev?.layers) {
        s.sent = Object.fromEntries(Object.entries(s.layers).map(([rid, l]) => [rid, `${l.width}w ${l.frames - (prev.layers[rid]?.frames ?? 0)}f ${Math.round((l.bytes - (prev.layers[rid]?.bytes ?? 0)) * 8 / (s.t - prev.t))}k`]));
      }
      samples.push(s);
      console.log(JSON.stringify(s));
    }
  };
  await phase('alone', 10);
  const port = await firefoxPort(role === 'pub' ? pub.page : sub.page, role);
  if (!port) throw new Error('no selected candidate pair in Firefox');
  const match = role === 'pub' ? 'sport' : 'dport';
  // As netns.sh shape-pub: an htb without a default class sends what no filter classifies
  // straight out, so only the subscriber's port goes through the tbf; the rest of lo is untouched.
  tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '10gbit', 'quantum', '65535');
  tc('qdisc', 'add', 'dev', 'lo', 'parent', '1:10', 'handle', '10:', 'tbf', 'rate', `${kbit}kbit`, 'burst', '4kb', 'latency', '200ms');
  tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'protocol', '17', '0xff', 'match', 'ip', match, String(port), '0xffff', 'flowid', '1:10');
  tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ipv6', 'prio', '2', 'u32', 'match', 'ip6', 'protocol', '17', '0xff', 'match', 'ip6', match, String(port), '0xffff', 'flowid', '1:10');
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
      frozenS: xs.filter((s) => s.fps === 0).length, freezeS: xs.length > 1 && xs[0].freezeS !== undefined ? Math.round((xs.at(-1).freezeS - xs[0].freezeS) * 100) / 100 : null,
      lost: xs.at(-1)?.lost, audioKB: Math.round((xs.at(-1)?.audio || 0) / 1000) };
    if (role === 'pub' && xs.length > 1 && xs[0].layers) {
      // What Firefox sent of each layer over the phase: kbit/s and frames a second.
      const secs = (xs.at(-1).t - xs[0].t) / 1000;
      summary[name].sent = Object.fromEntries(Object.entries(xs.at(-1).layers).map(([rid, l]) => [rid,
        `${l.width}w ${Math.round((l.frames - (xs[0].layers[rid]?.frames ?? 0)) / secs)} fps ${Math.round((l.bytes - (xs[0].layers[rid]?.bytes ?? 0)) * 8 / secs / 1000)} kbit/s`]));
    }
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
