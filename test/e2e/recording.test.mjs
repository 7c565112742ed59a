// Issue 5's browser end-to-end tests: an openvidu-node-client@2.32.2 backend records a call of
// openvidu-browser@2.32.2 pages through the OpenVidu recording API, and the files hold what the
// participants sent — checked with ffprobe/ffmpeg: length, codecs, frames, sound, and for COMPOSED
// where each tile is and when it lights up.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startParley, startPages, launch, openParticipant, waitDecoding, poll, freePort } from './lib.mjs';

const run = promisify(execFile);
// Every file the tests make lives under one temporary folder, removed at the end.
const scratch = mkdtempSync(join(tmpdir(), 'parley-e2e-rec-'));
const recPath = join(scratch, 'recordings');
const recEnv = { OPENVIDU_RECORDING: 'true', OPENVIDU_RECORDING_PATH: recPath, OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT: '0' };
// The backend's webhook endpoint: recordingStatusChanged says when a recording is ready.
const hooks = { events: [] };
// Recordings are short so the suite stays near its three-minute budget on a shared machine.
const RECORD_MS = 6000;

let parley, pages, browser;
const opened = [];

before(async () => {
  const port = await freePort();
  hooks.server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      hooks.events.push({ ...JSON.parse(Buffer.concat(chunks)), arrivedAt: Date.now() });
      res.writeHead(200).end();
    });
  });
  await new Promise((res) => hooks.server.listen(port, '127.0.0.1', res));
  // The three-minute test runs in a process of its own beside the others (run.sh): its own log.
  parley = await startParley(process.env.LONG_COMPOSED ? 'recording-long' : 'recording', { ...recEnv, OPENVIDU_WEBHOOK: 'true', OPENVIDU_WEBHOOK_ENDPOINT: `http://127.0.0.1:${port}/hook` });
  pages = await startPages();
  browser = await launch();
});

afterEach(async () => {
  for (const p of opened.splice(0)) await p.context.close().catch(() => {});
});

after(async () => {
  await browser?.close();
  await pages?.close();
  const code = await parley?.stop();
  hooks.server?.close();
  if (!process.env.KEEP_RECORDINGS) rmSync(scratch, { recursive: true, force: true });
  assert.equal(code, 0, `parley must exit 0 on SIGTERM (log: ${parley?.logPath})`);
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// enter opens a participant and notes the recording notifications its SDK raises.
async function enter(session, name, opts = {}) {
  const conn = await session.createConnection(opts.connection || {});
  const p = await openParticipant(browser, pages.url, conn.token, { name, ...opts });
  await p.page.evaluate(() => {
    for (const type of ['recordingStarted', 'recordingStopped']) {
      window.session.on(type, (e) => window.events.push({ type, id: e.id, name: e.name, reason: e.reason }));
    }
  });
  opened.push(p);
  return p;
}

async function pageEvents(p, type) {
  return p.page.evaluate((type) => window.events.filter((e) => e.type === type), type);
}

// record runs one recording of ms milliseconds (after during() returns, at the earliest) and
// returns it once ready, with the wall-clock time from the start request to the stop request.
async function record(ov, sessionId, props, ms, during = async () => {}) {
  const t0 = Date.now();
  const started = await ov.startRecording(sessionId, props);
  assert.equal(started.status, 'started', 'startRecording answers a started recording');
  await during(started, t0);
  await sleep(Math.max(0, ms - (Date.now() - t0)));
  // The recording's wall-clock length ends at the stop request: Parley answers it only once the
  // files are final (or after a bound), which for COMPOSED includes the mixing.
  const wallMs = Date.now() - t0;
  const stopped = await ov.stopRecording(started.id);
  assert.ok(['stopped', 'ready'].includes(stopped.status), `stopRecording answers ${stopped.status}`);
  const ready = await poll(`recording ${started.id} to be ready`, async () => {
    const r = await ov.getRecording(started.id);
    assert.notEqual(r.status, 'failed', `recording ${started.id} failed`);
    return r.status === 'ready' && r;
  }, { timeout: 120000, interval: 300 });
  return { rec: ready, wallMs, t0 };
}

// probe is ffprobe's view of a file: duration (s) and, per stream, codec and packet count.
async function probe(file) {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_packets', '-show_entries',
    'stream=codec_type,codec_name,nb_read_packets,width,height:format=duration', '-of', 'json', file]);
  const j = JSON.parse(stdout);
  const s = (kind) => j.streams.find((x) => x.codec_type === kind);
  return { duration: Number(j.format.duration), video: s('video'), audio: s('audio') };
}

// peakDb is the audio's peak level in dBFS (about -91 for digital silence).
async function peakDb(file, from = 0, length = 3600) {
  const { stderr } = await run('ffmpeg', ['-hide_banner', '-nostats', '-ss', String(from), '-t', String(length),
    '-i', file, '-map', '0:a:0', '-af', 'volumedetect', '-f', 'null', '-']);
  const m = /max_volume: (-?[\d.]+) dB/.exec(stderr);
  return m ? Number(m[1]) : -Infinity;
}

// frameAt decodes the frame at t seconds as w×h RGB and returns a function giving a region's
// mean brightness (0..255).
async function frameAt(file, t, w, h) {
  const { stdout } = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-ss', String(t), '-i', file,
    '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${w}x${h}`, 'pipe:1'],
  { encoding: 'buffer', maxBuffer: 64 << 20 });
  assert.equal(stdout.length, w * h * 3, `frame at ${t}s of ${file}`);
  return (x, y, rw, rh) => {
    let sum = 0;
    for (let yy = y; yy < y + rh; yy++) for (let xx = x; xx < x + rw; xx++) {
      const i = (yy * w + xx) * 3;
      sum += stdout[i] + stdout[i + 1] + stdout[i + 2];
    }
    return sum / (3 * rw * rh);
  };
}

// tilesAt says, for a w×h two-tile composition at t seconds, whether the left and right tiles
// show a picture (Chromium's fake camera is green, about 45 here; the background is black, near 0).
async function tilesAt(file, t, w = 640, h = 360) {
  const mean = await frameAt(file, t, w, h);
  const tw = w / 2;
  const lit = (x) => mean(x + tw / 4, h / 3, tw / 2, h / 3) > 25;
  return { left: lit(0), right: lit(tw), background: mean(0, 0, w, 8) };
}

function checkAV(file, info, wallMs, { vcodec, acodec, minFps }) {
  const wall = wallMs / 1000;
  assert.ok(Math.abs(info.duration - wall) <= 1, `${file}: ${info.duration.toFixed(2)} s long, recording took ${wall.toFixed(2)} s`);
  assert.equal(info.video?.codec_name, vcodec, `${file}: video codec`);
  assert.equal(info.audio?.codec_name, acodec, `${file}: audio codec`);
  assert.ok(Number(info.video.nb_read_packets) >= minFps * info.duration,
    `${file}: ${info.video.nb_read_packets} video frames in ${info.duration} s`);
}

async function unzip(zip, dir) {
  await run('unzip', ['-o', '-q', zip, '-d', dir]);
  return readdirSync(dir);
}

test('INDIVIDUAL and COMPOSED recordings of a two-person call, with recordingStarted/Stopped on the pages', async () => {
  const ov = parley.ov;
  const session = await ov.createSession({ customSessionId: 'rec-two' });
  const a = await enter(session, 'alice');
  const b = await enter(session, 'bob');
  await waitDecoding(a, [b.id]);
  await waitDecoding(b, [a.id]);

  // INDIVIDUAL: a zip with one WebM per stream and the sync JSON.
  const ind = await record(ov, 'rec-two', { outputMode: 'INDIVIDUAL', name: 'both-streams' }, RECORD_MS);
  for (const p of [a, b]) {
    await poll(`${p.id} to get recordingStarted and recordingStopped`, async () =>
      (await pageEvents(p, 'recordingStarted')).some((e) => e.id === ind.rec.id && e.name === 'both-streams') &&
      (await pageEvents(p, 'recordingStopped')).some((e) => e.id === ind.rec.id && e.reason === 'recordingStoppedByServer'));
  }
  assert.equal(ind.rec.properties.outputMode, 'INDIVIDUAL');
  assert.ok(ind.rec.url.endsWith(`/openvidu/recordings/${ind.rec.id}/both-streams.zip`), `url ${ind.rec.url}`);
  assert.ok(Math.abs(ind.rec.duration - ind.wallMs / 1000) <= 1, `duration ${ind.rec.duration} s, wall ${ind.wallMs} ms`);
  const zip = join(recPath, ind.rec.id, 'both-streams.zip');
  const unz = mkdtempSync(join(scratch, 'unzip-'));
  const files = await unzip(zip, unz);
  const webms = files.filter((f) => f.endsWith('.webm'));
  assert.equal(webms.length, 2, `two stream files in ${files}`);
  assert.ok(files.includes('both-streams.json'), `sync JSON in ${files}`);
  // OpenVidu's size of an INDIVIDUAL recording is the sum of its stream files (protocol note §10.4).
  const sync = JSON.parse(readFileSync(join(unz, 'both-streams.json'), 'utf8'));
  for (const f of sync.files) assert.equal(statSync(join(unz, f.name)).size, f.size, `${f.name}: size in the sync JSON`);
  assert.equal(ind.rec.size, sync.files.reduce((n, f) => n + f.size, 0), 'recording size is the sum of the stream files');
  assert.deepEqual(sync.files.map((f) => f.connectionId).sort(), [a.id, b.id].sort(), 'one file per participant');
  for (const f of webms) {
    const file = join(unz, f);
    checkAV(file, await probe(file), ind.wallMs, { vcodec: 'vp8', acodec: 'opus', minFps: 5 });
    assert.ok(await peakDb(file) > -50, `${file}: the fake microphone's beeps are heard`);
  }

  // COMPOSED on the same call: one MP4 with two tiles side by side, and a thumbnail.
  const comp = await record(ov, 'rec-two', { outputMode: 'COMPOSED', name: 'grid', resolution: '640x360', frameRate: 15 }, RECORD_MS);
  assert.equal(comp.rec.properties.resolution, '640x360');
  assert.ok(comp.rec.url.endsWith(`/openvidu/recordings/${comp.rec.id}/grid.mp4`), `url ${comp.rec.url}`);
  const mp4 = join(recPath, comp.rec.id, 'grid.mp4');
  const cinfo = await probe(mp4);
  checkAV(mp4, cinfo, comp.wallMs, { vcodec: 'h264', acodec: 'aac', minFps: 14 });
  assert.equal(cinfo.video.width, 640);
  assert.ok(await peakDb(mp4) > -50, `${mp4}: the fake microphone's beeps are heard`);
  const tiles = await tilesAt(mp4, cinfo.duration / 2);
  assert.ok(tiles.left && tiles.right && tiles.background < 20, `both tiles show a picture on black: ${JSON.stringify(tiles)}`);
  assert.ok(existsSync(join(recPath, comp.rec.id, `${comp.rec.id}.jpg`)), 'thumbnail written');

  // COMPOSED without video: the voices mixed into an Opus WebM.
  const voices = await record(ov, 'rec-two', { outputMode: 'COMPOSED', name: 'voices', hasVideo: false }, 4000);
  assert.ok(voices.rec.url.endsWith(`/openvidu/recordings/${voices.rec.id}/voices.webm`), `url ${voices.rec.url}`);
  const webm = join(recPath, voices.rec.id, 'voices.webm');
  const vinfo = await probe(webm);
  assert.ok(Math.abs(vinfo.duration - voices.wallMs / 1000) <= 1, `${webm}: ${vinfo.duration} s long, recording took ${voices.wallMs} ms`);
  assert.equal(vinfo.audio?.codec_name, 'opus');
  assert.equal(vinfo.video, undefined, 'no video stream');
  assert.ok(await peakDb(webm) > -50, `${webm}: the fake microphones' beeps are heard`);

  // Listing, then deleting.
  const ids = (await ov.listRecordings()).map((r) => r.id);
  for (const id of [ind.rec.id, comp.rec.id, voices.rec.id]) assert.ok(ids.includes(id), `${id} listed in ${ids}`);
  await ov.deleteRecording(ind.rec.id);
  await assert.rejects(ov.getRecording(ind.rec.id), (e) => e.message === '404');
  assert.ok(!existsSync(join(recPath, ind.rec.id)), 'deleting removes the files');
  assert.ok(!(await ov.listRecordings()).some((r) => r.id === ind.rec.id));
});

// A COMPOSED recording of a three-minute call is mixed while the call goes on (5.12 s pieces at
// 25 fps, a minute's window per ffmpeg) and joined at stop: stop answers "stopped" at once and
// the backend's webhook hears recordingStatusChanged "ready" when the MP4 is (how long after stop
// is printed, with the live mix's lag at stop: the 10 s target is measured, not asserted, as
// bench/composed.sh does for an hour); the MP4 lasts the call and both tiles are lit on either
// side of the pieces' and windows' joins. The call is mostly waiting, so run.sh runs this test
// (LONG_COMPOSED=1 and its name) in a process of its own beside the other suites of this
// folder, with cameras of 320x240 at 15 fps to keep its load on them small; here it is skipped.
const LONG_MS = 180000;
test('COMPOSED of a three-minute call: mixed during the call, ready at stop', { skip: !process.env.LONG_COMPOSED && 'LONG_COMPOSED=1 runs it', timeout: LONG_MS + 240000 }, async () => {
  const ov = parley.ov;
  const session = await ov.createSession({ customSessionId: 'rec-long' });
  const camera = { resolution: '320x240', frameRate: 15 };
  const a = await enter(session, 'alice', camera);
  const b = await enter(session, 'bob', camera);
  await waitDecoding(a, [b.id]);
  await waitDecoding(b, [a.id]);
  const t0 = Date.now();
  const started = await ov.startRecording('rec-long', { outputMode: 'COMPOSED', name: 'long', resolution: '640x360', frameRate: 25 });
  await sleep(LONG_MS);
  const wallMs = Date.now() - t0;
  const stopAt = Date.now();
  const stopped = await ov.stopRecording(started.id);
  assert.equal(stopped.status, 'stopped', 'stop answers at once, before the MP4 is ready');
  const ready = await poll('recordingStatusChanged ready', () => hooks.events.find((e) =>
    e.event === 'recordingStatusChanged' && e.id === started.id && ['ready', 'failed'].includes(e.status)), { timeout: 240000, interval: 100 });
  assert.equal(ready.status, 'ready', `recording ${started.id} ready, not failed`);
  console.log(`# stop -> recordingStatusChanged ready: ${((ready.arrivedAt - stopAt) / 1000).toFixed(2)} s (load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  const mp4 = join(recPath, started.id, 'long.mp4');
  const info = await probe(mp4);
  checkAV(mp4, info, wallMs, { vcodec: 'h264', acodec: 'aac', minFps: 24 });
  assert.ok(await peakDb(mp4) > -50, `${mp4}: the fake microphone's beeps are heard`);
  for (const t of [2, 5.1, 5.2, 61.3, 61.5, 120, info.duration - 1]) {
    const tiles = await tilesAt(mp4, t);
    assert.ok(tiles.left && tiles.right, `at ${t} s both tiles show a picture: ${JSON.stringify(tiles)}`);
  }
  const lines = readFileSync(join(recPath, started.id, '.compose.log'), 'utf8').split('\n');
  const log = lines.find((l) => l.startsWith('composed recording: joined'));
  assert.ok(log, 'the join is logged');
  console.log(`# ${lines.find((l) => l.startsWith('live mix lag at stop')) || 'no lag line'}`);
  console.log(`# ${log}`);
});

// A joins, B comes 2 s into the recording, A leaves a few seconds later: both modes place each
// stream at the time it really started and ended.
for (const mode of ['INDIVIDUAL', 'COMPOSED']) {
  test(`${mode}: a late joiner and an early leaver appear at the right offsets`, async () => {
    const ov = parley.ov;
    const sessionId = `rec-late-${mode.toLowerCase()}`;
    const session = await ov.createSession({ customSessionId: sessionId });
    const a = await enter(session, 'early');
    const props = mode === 'COMPOSED' ? { outputMode: mode, name: 'late', resolution: '640x360', frameRate: 15 } : { outputMode: mode, name: 'late' };
    let b, bEnter, bIn, aOut, aGone, createdAt;
    const { rec, wallMs } = await record(ov, sessionId, props, 0, async (started) => {
      createdAt = started.createdAt;
      await sleep(2000); // the recording runs with A alone for 2 s
      bEnter = Date.now();
      b = await enter(session, 'late');
      await waitDecoding(a, [b.id]);
      bIn = Date.now();
      await sleep(2500); // both on the call
      aOut = Date.now();
      await a.page.evaluate(() => window.session.disconnect());
      await poll('A to be gone from the session', async () => {
        await session.fetch();
        return !session.activeConnections.some((c) => c.connectionId === a.id);
      });
      aGone = Date.now();
      await sleep(2500); // B alone until the stop
    });
    const at = (t) => (t - createdAt) / 1000; // seconds into the recording
    if (mode === 'INDIVIDUAL') {
      const unz = mkdtempSync(join(scratch, 'unzip-'));
      await unzip(join(recPath, rec.id, 'late.zip'), unz);
      const sync = JSON.parse(readFileSync(join(unz, 'late.json'), 'utf8'));
      const byConn = (id) => sync.files.find((f) => f.connectionId === id);
      const fa = byConn(a.id), fb = byConn(b.id);
      assert.ok(fa && fb, `a file per participant in ${JSON.stringify(sync.files)}`);
      const ms = (t) => t - createdAt;
      assert.ok(fa.startTimeOffset < 1000, `A was there from the start: startTimeOffset ${fa.startTimeOffset}`);
      assert.ok(fa.endTimeOffset >= ms(aOut) - 1000 && fa.endTimeOffset <= ms(aGone) + 1000,
        `A left between ${ms(aOut)} and ${ms(aGone)} ms: endTimeOffset ${fa.endTimeOffset}`);
      assert.ok(fb.startTimeOffset >= ms(bEnter) && fb.startTimeOffset <= ms(bIn) + 1000,
        `B joined between ${ms(bEnter)} and ${ms(bIn)} ms: startTimeOffset ${fb.startTimeOffset}`);
      assert.ok(Math.abs(fb.endTimeOffset - wallMs) <= 1000, `B stayed to the end (${wallMs} ms): endTimeOffset ${fb.endTimeOffset}`);
      for (const f of [fa, fb]) {
        const info = await probe(join(unz, f.name));
        const len = (f.endTimeOffset - f.startTimeOffset) / 1000;
        assert.ok(Math.abs(info.duration - len) <= 1, `${f.name}: ${info.duration} s long, offsets say ${len} s`);
      }
    } else {
      const mp4 = join(recPath, rec.id, 'late.mp4');
      const info = await probe(mp4);
      assert.ok(Math.abs(info.duration - wallMs / 1000) <= 1, `${mp4}: ${info.duration} s long, recording took ${wallMs} ms`);
      const alone = await tilesAt(mp4, Math.min(1, at(bEnter) - 0.5));
      const both = await tilesAt(mp4, (at(bIn) + at(aOut)) / 2 + 0.5);
      const after = await tilesAt(mp4, Math.min(at(aGone) + 1.5, info.duration - 0.3));
      const seen = JSON.stringify({ alone, both, after, bEnter: at(bEnter), bIn: at(bIn), aOut: at(aOut), aGone: at(aGone) });
      // Before B: A in its tile of the two-tile grid when B's stream began in the same segment
      // (5 s), or A alone filling the frame when it began in a later one.
      const aInTile = alone.left !== alone.right;
      const aAlone = alone.left && alone.right && alone.background > 20;
      assert.ok(aInTile || aAlone, `only A lit before B joins: ${seen}`);
      assert.ok(both.left && both.right, `both tiles lit while both are on: ${seen}`);
      // After A left: B in its tile, A's black, until the next segment (about 5 s), whose grid
      // has B alone, filling the frame (its picture reaches the top rows the 2-tile grid leaves black).
      // B's tile is the one A did not have; when A filled the frame alone, either tile can be B's.
      const bInTile = after.left !== after.right && (!aInTile || after.left === alone.right);
      const bAlone = after.left && after.right && after.background > 20;
      assert.ok(bInTile || bAlone, `only B lit after A left: ${seen}`);
    }
  });
}

// kill -9 in the middle of recordings: after a restart on the same recording path they are listed
// as failed and their stream files are readable up to the kill — an INDIVIDUAL recording of a
// two-person call and, in another session, a COMPOSED one, whose tracks wait in <id>/tracks/.
test('kill -9 during recordings: listed as failed after restart, files readable', async () => {
  const path = join(scratch, 'kill');
  const env = { ...recEnv, OPENVIDU_RECORDING_PATH: path };
  const srv = await startParley('recording-kill', env);
  let restarted;
  try {
    const enterOn = async (session, name) => {
      const conn = await session.createConnection();
      const p = await openParticipant(browser, pages.url, conn.token, { name });
      opened.push(p);
      return p;
    };
    const two = await srv.ov.createSession({ customSessionId: 'rec-kill' });
    const solo = await srv.ov.createSession({ customSessionId: 'rec-kill-composed' });
    const a = await enterOn(two, 'alice');
    const b = await enterOn(two, 'bob');
    await enterOn(solo, 'carol');
    await waitDecoding(a, [b.id]);
    const recs = [
      { rec: await srv.ov.startRecording('rec-kill', { outputMode: 'INDIVIDUAL', name: 'killed' }), streams: 2 },
      { rec: await srv.ov.startRecording('rec-kill-composed', { outputMode: 'COMPOSED', name: 'killed' }), streams: 1 },
    ];
    // Let every stream's file (a COMPOSED one's parts together) grow past a few seconds of media
    // before the kill.
    const webmsUnder = (dir) => readdirSync(dir, { recursive: true }).filter((f) => /\.(webm|mkv)$/.test(f)).map((f) => join(dir, f));
    const stream = (f) => f.replace(/(\.\d+)?\.(webm|mkv)$/, '');
    await poll('every stream file with 3 s of media', () => recs.every(({ rec, streams }) => {
      const bytes = new Map();
      for (const f of webmsUnder(join(path, rec.id))) bytes.set(stream(f), (bytes.get(stream(f)) || 0) + statSync(f).size);
      return bytes.size === streams && [...bytes.values()].every((n) => n > 150000) && Date.now() - rec.createdAt > 3000;
    }), { timeout: 20000 });
    const killed = new Promise((r) => srv.proc.on('exit', r));
    srv.proc.kill('SIGKILL');
    await killed;
    const killedAt = Date.now();

    restarted = await startParley('recording-kill-restart', env);
    const listed = await restarted.ov.listRecordings();
    for (const { rec, streams } of recs) {
      const got = await restarted.ov.getRecording(rec.id);
      assert.equal(got.status, 'failed', `${rec.id}: a recording cut by a crash is failed`);
      assert.ok(listed.some((r) => r.id === rec.id && r.status === 'failed'), `${rec.id} listed as failed`);
      // A COMPOSED recording writes each stream in parts (<stream>.webm, <stream>.1.webm, …, one
      // per segment of its live mix): every part is readable, and together they hold the time.
      const files = webmsUnder(join(path, rec.id));
      assert.equal(new Set(files.map(stream)).size, streams, `${rec.id}: every stream file kept: ${files}`);
      const frames = new Map();
      for (const f of files) {
        const info = await probe(f);
        assert.equal(info.video?.codec_name, 'vp8', `${f}: video readable`);
        assert.equal(info.audio?.codec_name, 'opus', `${f}: audio readable`);
        frames.set(stream(f), (frames.get(stream(f)) || 0) + Number(info.video.nb_read_packets));
      }
      const secs = (killedAt - rec.createdAt) / 1000;
      for (const [f, n] of frames) assert.ok(n >= 5 * (secs - 1.5), `${f}: ${n} frames for ${secs} s recorded`);
    }
  } finally {
    if (srv.proc.exitCode === null && srv.proc.signalCode === null) srv.proc.kill('SIGKILL');
    if (restarted) assert.equal(await restarted.stop(), 0, `restarted parley exits 0 (log: ${restarted.logPath})`);
  }
});
