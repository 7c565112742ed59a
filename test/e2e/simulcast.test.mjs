// Issue 12 item 5's browser test: with OPENVIDU_WEBRTC_SIMULCAST=true the stock openvidu-browser
// 2.32.2 is told mediaServer "mediasoup" and videoSimulcast, publishes its camera in rid layers
// (rdiv4/rdiv2/rdiv1 at 960x540), subscribes through server offers (prepareReceiveVideoFrom, then
// receiveVideoFrom with its answer), and its subscribers decode one continuous video.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startParley, startPages, launch, openParticipant, waitDecoding, poll } from './lib.mjs';

let parley, pages, browser;
const opened = [];

before(async () => {
  parley = await startParley('simulcast', { OPENVIDU_WEBRTC_SIMULCAST: 'true' });
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
  assert.equal(code, 0, `parley must exit 0 on SIGTERM (log: ${parley?.logPath})`);
});

// publishLayers publishes the page's camera at 960x540, the size from which the SDK asks for three
// layers.
async function publishLayers(p) {
  await p.page.evaluate(async () => {
    const pub = await window.OV.initPublisherAsync(undefined, { resolution: '960x540', frameRate: 30 });
    await window.session.publish(pub);
    window.publisher = pub;
  });
}

// outboundLayers lists, per rid, what the publisher's browser sends.
async function outboundLayers(p) {
  return p.page.evaluate(async () => {
    const out = {};
    const pc = window.publisher.stream.getRTCPeerConnection();
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        out[s.rid || ''] = { bytesSent: s.bytesSent || 0, frameWidth: s.frameWidth || 0, framesEncoded: s.framesEncoded || 0 };
      }
    });
    return out;
  });
}

// inboundVideo reads what the page's one subscription decodes.
async function inboundVideo(p) {
  return p.page.evaluate(async () => {
    const pc = window.subscribers[0].stream.getRTCPeerConnection();
    let r = null;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        r = { framesDecoded: s.framesDecoded || 0, frameWidth: s.frameWidth || 0, packetsLost: s.packetsLost || 0, keyFramesDecoded: s.keyFramesDecoded || 0 };
      }
    });
    return r;
  });
}

test('the stock client publishes rid layers, its subscriber decodes them through a server offer, and both reconnect', async (t) => {
  const session = await parley.ov.createSession({ customSessionId: 'simulcast' });
  const enter = async (name) => {
    const conn = await session.createConnection({});
    const p = await openParticipant(browser, pages.url, conn.token, { name, publish: false });
    opened.push(p);
    return p;
  };
  const alice = await enter('alice');
  const mode = await alice.page.evaluate(() => ({ mediaServer: window.OV.mediaServer, videoSimulcast: window.OV.videoSimulcast }));
  assert.deepEqual(mode, { mediaServer: 'mediasoup', videoSimulcast: true });
  await publishLayers(alice);

  // The publisher sends its layers: Chrome starts them as its estimate of the uplink allows.
  const layers = await poll('the publisher to send two or three rid layers', async () => {
    const l = await outboundLayers(alice);
    const sending = Object.entries(l).filter(([rid, s]) => rid.startsWith('rdiv') && s.bytesSent > 0);
    return sending.length >= 2 ? l : false;
  }, { timeout: 30000 });
  assert.ok(Object.keys(layers).every((rid) => ['rdiv4', 'rdiv2', 'rdiv1'].includes(rid)), `rids ${Object.keys(layers)}`);

  // Bob subscribes the mediasoup way (the SDK does it on streamCreated) and decodes video.
  const bob = await enter('bob');
  await waitDecoding(bob, [alice.id]);
  const first = await inboundVideo(bob);
  const later = await poll('the subscriber to keep decoding', async () => {
    const v = await inboundVideo(bob);
    return v.framesDecoded >= first.framesDecoded + 60 ? v : false;
  }, { timeout: 30000 });
  t.diagnostic(`publisher layers ${JSON.stringify(await outboundLayers(alice))}; subscriber ${JSON.stringify(later)}`);
  assert.ok(later.frameWidth > 0, `decoded width ${later.frameWidth}`);
  assert.ok(later.frameWidth <= 960, `decoded width ${later.frameWidth}`);

  // reconnectStream in this mode: the subscriber asks for a new server offer
  // (prepareReceiveVideoFrom{reconnect}) and answers in reconnectStream's sdpString; the publisher
  // offers its layers again. Video flows on the new PeerConnections.
  await bob.page.evaluate(() => window.subscribers[0].stream.reconnect());
  await poll('the reconnected subscription to decode', async () => (await inboundVideo(bob))?.framesDecoded > 30, { timeout: 30000 });
  await alice.page.evaluate(() => window.publisher.stream.reconnect());
  const before = (await inboundVideo(bob)).framesDecoded;
  await poll('video from the reconnected publisher', async () => (await inboundVideo(bob)).framesDecoded > before + 30, { timeout: 30000 });
  await poll('the reconnected publisher to send two or three rid layers', async () =>
    Object.entries(await outboundLayers(alice)).filter(([rid, s]) => rid.startsWith('rdiv') && s.bytesSent > 0).length >= 2, { timeout: 30000 });

  // The subscription is a PeerConnection whose offer came from the server: REST shows it.
  await session.fetch();
  const b = session.activeConnections.find((c) => c.connectionId === bob.id);
  assert.equal(b.subscribers.length, 1);
  for (const p of [alice, bob]) assert.deepEqual(p.consoleErrors.filter((e) => !/favicon/.test(e)), [], `console errors on ${p.id}`);
});
