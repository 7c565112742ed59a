// Issue 15 item 3: an IP camera over RTSP, added with openvidu-node-client's
// createConnection({ type: 'IPCAM', rtspUri }), is seen by a stock openvidu-browser participant as a
// publisher of typeOfVideo IPCAM whose video it decodes (H.264 passed through) and whose audio
// (AAC at the camera, Opus from us) it receives; deleting the connection ends the stream for it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { startParley, startPages, launch, openParticipant, waitDecoding, waitEvent, outputDir } from './lib.mjs';

let parley, pages, browser, camera, cameraURL;

before(async () => {
  const bin = join(outputDir, 'rtspcam');
  execFileSync('go', ['build', '-o', bin, './test/e2e/rtspcam'], { cwd: join(import.meta.dirname, '..', '..'), stdio: 'inherit' });
  camera = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  cameraURL = await new Promise((resolve, reject) => {
    createInterface({ input: camera.stdout }).once('line', resolve);
    camera.once('exit', (code) => reject(new Error(`rtspcam exited with ${code}`)));
  });
  parley = await startParley('ipcam');
  pages = await startPages();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await pages?.close();
  camera?.stdin.end();
  const code = await parley?.stop();
  assert.equal(code, 0, `parley must exit 0 on SIGTERM (log: ${parley?.logPath})`);
});

test('an RTSP camera is a publisher the browser decodes, until its connection is deleted', async () => {
  const session = await parley.ov.createSession({ customSessionId: 'ipcam' });
  const cam = await session.createConnection({ type: 'IPCAM', rtspUri: cameraURL, data: 'lobby' });
  assert.equal(cam.connectionProperties.type, 'IPCAM');
  assert.equal(cam.status, 'active');
  assert.equal(cam.connectionProperties.rtspUri, cameraURL);
  assert.equal(cam.publishers.length, 1);
  assert.equal(cam.publishers[0].typeOfVideo, 'IPCAM');

  const conn = await session.createConnection({ role: 'SUBSCRIBER' });
  const viewer = await openParticipant(browser, pages.url, conn.token, { name: 'viewer', publish: false });
  try {
    const types = await viewer.page.evaluate(() => window.subscribers.map((s) => s.stream.typeOfVideo));
    assert.deepEqual(types, ['IPCAM']);
    const stats = await waitDecoding(viewer, [cam.connectionId]);
    const s = stats.find((x) => x.from === cam.connectionId);
    assert.ok(s.framesDecoded > 0 && s.audioBytes > 0, JSON.stringify(s));

    await session.forceDisconnect(cam);
    await waitEvent(viewer, 'streamDestroyed', { connectionId: cam.connectionId });
    assert.deepEqual(viewer.consoleErrors.filter((e) => !/favicon/.test(e)), []);
  } finally {
    await viewer.context.close();
  }
});
