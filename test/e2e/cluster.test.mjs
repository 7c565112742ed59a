// Issue 16's browser end-to-end test of sessions that span nodes: two Parley nodes on one
// redis-server, the stock openvidu-browser@2.32.2 pages joined to different nodes (each token made
// through the node-client on the node it joins), an openvidu-node-client@2.32.2 backend. Each page
// decodes the other's video, though each stream crosses between the nodes, and they signal each
// other; REST on either node shows the whole session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { startParley, startPages, launch, openParticipant, waitDecoding, waitEvent, freePort, poll, OpenVidu } from './lib.mjs';

let redis, nodeA, nodeB, pages, browser;
const opened = [];
// make test installs redis-server (scripts/install-test-deps.sh); without it there is no cluster.
const noRedis = spawnSync('redis-server', ['--version']).status !== 0 && 'redis-server is not installed';

before(async () => {
  if (noRedis) return;
  const port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await poll('redis-server to listen', async () => {
    const { createConnection } = await import('node:net');
    return new Promise((r) => { const s = createConnection(port, '127.0.0.1', () => { s.end(); r(true); }); s.on('error', () => r(false)); });
  }, { timeout: 10000, interval: 100 });
  const url = `redis://127.0.0.1:${port}/0`;
  nodeA = await startParley('cluster-a', { PARLEY_REDIS_URL: url, PARLEY_NODE_ID: 'node-a' });
  nodeB = await startParley('cluster-b', { PARLEY_REDIS_URL: url, PARLEY_NODE_ID: 'node-b' });
  pages = await startPages();
  browser = await launch();
});

after(async () => {
  for (const p of opened) await p.context.close().catch(() => {});
  await browser?.close();
  await pages?.close();
  for (const n of [nodeA, nodeB].filter(Boolean)) {
    const code = await n.stop();
    assert.equal(code, 0, `parley must exit 0 on SIGTERM (log: ${n.logPath})`);
  }
  redis?.kill('SIGKILL');
});

test('participants on two nodes decode each other and signal', { skip: noRedis }, async () => {
  const onA = await nodeA.ov.createSession({ customSessionId: 'two-nodes' });
  await nodeB.ov.fetch();
  const onB = nodeB.ov.activeSessions.find((s) => s.sessionId === 'two-nodes');
  assert.ok(onB, 'the session made on A is listed on B');

  const alice = await openParticipant(browser, pages.url, (await onA.createConnection()).token, { name: 'alice' });
  opened.push(alice);
  const bob = await openParticipant(browser, pages.url, (await onB.createConnection()).token, { name: 'bob' });
  opened.push(bob);
  await waitDecoding(bob, [alice.id], 45000);
  await waitDecoding(alice, [bob.id], 45000);

  await bob.page.evaluate(() => window.session.signal({ data: 'hello from B', type: 'chat' }));
  const got = await waitEvent(alice, 'signal:chat', { data: 'hello from B' });
  assert.equal(got.from, bob.id);

  for (const ov of [nodeA.ov, new OpenVidu(nodeB.url, 'MY_SECRET')]) {
    await ov.fetch();
    const s = ov.activeSessions.find((x) => x.sessionId === 'two-nodes');
    assert.equal(s.activeConnections.length, 2, `both participants listed by ${ov.hostname || 'a node'}`);
    for (const c of s.activeConnections) {
      assert.equal(c.publishers.length, 1, `${c.connectionId} publishes`);
      assert.equal(c.subscribers.length, 1, `${c.connectionId} subscribes to the other`);
    }
  }

  await alice.page.evaluate(() => window.session.disconnect());
  await waitEvent(bob, 'connectionDestroyed', { connectionId: alice.id, reason: 'disconnect' });
});
