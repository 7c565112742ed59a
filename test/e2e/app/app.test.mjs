// The built-in app, driven as people would drive it: Debian's Chromium with fake camera, microphone
// and screen, several browser contexts (one per person) against one Parley in dev mode.
// Screenshots go to test-output/ for a human to look at.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, person, shot, startParley, until } from './harness.mjs';

let srv, browser;

before(async () => {
  // A room of four: the 4-person test fills it and a fifth person must be told so.
  srv = await startParley('app-e2e', { PARLEY_APP_MAX_PARTICIPANTS: '4' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
});

// Contexts are closed by each test; browser.close() in after() catches those a failure left open.
const open = (path, opts) => person(browser, srv.url + path, opts);

/** lobbyJoin fills the lobby as a person would and presses Join. */
async function lobbyJoin(page, { room, name }) {
  await page.waitForSelector('#lobby-view:not([hidden])');
  if (room !== undefined) await page.fill('#room', room);
  await page.fill('#nickname', name);
  await page.click('#join-btn');
  await page.waitForSelector('#room-view:not([hidden])');
}

/** tiles describes the room's tiles as the page shows them. */
function tiles(page) {
  return page.$$eval('#grid .tile', (els) => els.map((t) => {
    const v = t.querySelector('video');
    return {
      name: t.dataset.name, kind: t.dataset.kind, local: t.classList.contains('local'), streamId: t.dataset.streamId || '', video: t.dataset.video, audio: t.dataset.audio,
      frames: Number(t.dataset.framesDecoded || 0), shown: v.getVideoPlaybackQuality?.().totalVideoFrames || 0,
      width: v.videoWidth, path: t.dataset.path || '', badge: t.querySelector('.path-badge').hidden ? '' : t.querySelector('.path-badge').textContent,
    };
  }));
}

/** seesVideo waits until page shows `name`'s `kind` tile with frames decoded (getStats) and painted. */
async function seesVideo(page, name, kind = 'camera') {
  return until(`${name}'s ${kind} video playing`, async () => {
    const t = (await tiles(page)).find((x) => !x.local && x.name === name && x.kind === kind);
    return t && t.frames > 5 && t.shown > 0 && t.width > 0 && t;
  }, { timeout: 30000 });
}

describe('the video call app', () => {
  test('two people meet through the lobby: video, chat, mute, screen share, leave', { timeout: 150000 }, async () => {
    const alice = await open('/', { width: 1280, height: 800 });
    await alice.ctx.grantPermissions(['camera', 'microphone', 'clipboard-read', 'clipboard-write'], { origin: srv.url });
    await alice.page.waitForSelector('#lobby-view:not([hidden])');
    await until('the lobby preview and microphone level', () => alice.page.evaluate(() =>
      document.getElementById('preview').videoWidth > 0 && Number(document.getElementById('lobby-meter').getAttribute('aria-valuenow')) > 0));
    assert.ok(await alice.page.$eval('#cam-select', (s) => s.options.length > 0 && !s.disabled), 'camera picker lists devices');
    assert.ok(await alice.page.$eval('#mic-select', (s) => s.options.length > 0 && !s.disabled), 'microphone picker lists devices');
    await alice.page.fill('#room', 'Design Review');
    await alice.page.fill('#nickname', 'Alice');
    await shot(alice.page, 'lobby.png');
    await alice.page.click('#join-btn');
    await alice.page.waitForSelector('#room-view:not([hidden])');
    assert.equal(await alice.page.textContent('#room-name'), 'design-review', 'the room name is normalised');

    // Bob comes in through the invite link Alice copied.
    await alice.page.click('#btn-invite');
    const link = await alice.page.evaluate(() => navigator.clipboard.readText());
    assert.equal(link, `${srv.url}/?room=design-review`);
    // Bob is on a phone-sized screen: the layout must hold there too.
    const bob = await open(link.slice(srv.url.length), { width: 390, height: 844 });
    // The lobby fills the room name from the link when the app starts, not when the page loads.
    await bob.page.waitForSelector('#lobby-view:not([hidden])');
    assert.equal(await bob.page.inputValue('#room'), 'design-review', 'the invite link fills the room name');
    await lobbyJoin(bob.page, { name: 'Bob' });

    const bobSeen = await seesVideo(alice.page, 'Bob');
    const aliceSeen = await seesVideo(bob.page, 'Alice');
    for (const t of [bobSeen, aliceSeen]) {
      assert.match(t.path, /^(UDP|TCP|TURN-(UDP|TCP|TLS))$/, 'the tile names the path from getStats');
    }
    await until('the path badge with bitrate and loss', async () => {
      const t = (await tiles(alice.page)).find((x) => x.name === 'Bob');
      return /^(UDP|TCP|TURN-\w+) · [\d.]+ (k|M)bps · [\d.]+% loss$/.test(t?.badge || '');
    });
    assert.match(await alice.page.textContent('#room-count'), /2 people/);
    await shot(alice.page, 'room-2.png');
    await shot(bob.page, 'room-2-phone.png');

    // Chat: Bob's panel is closed, so he gets an unread badge.
    await alice.page.click('#btn-chat');
    await alice.page.fill('#chat-input', 'Hello Bob, can you see my slides?');
    await alice.page.press('#chat-input', 'Enter');
    await bob.page.waitForSelector('#unread:not([hidden])');
    assert.equal(await bob.page.textContent('#unread'), '1');
    await bob.page.click('#btn-chat');
    await until('the message in Bob\'s chat', async () => {
      const items = await bob.page.$$eval('#chat-log li:not(.empty)', (l) => l.map((li) => li.innerText));
      return items.some((t) => t.includes('Alice') && t.includes('Hello Bob, can you see my slides?'));
    });
    assert.ok(await bob.page.isHidden('#unread'), 'opening the chat clears the badge');
    await bob.page.fill('#chat-input', 'Yes!');
    await bob.page.click('#chat-form button[type=submit]');
    await until('Bob\'s answer in Alice\'s chat', async () =>
      (await alice.page.$$eval('#chat-log li', (l) => l.map((li) => li.innerText))).some((t) => t.includes('Bob') && t.includes('Yes!')));
    await bob.page.click('#btn-chat'); // close it again

    // Alice stops her video and mutes: Bob sees both (streamPropertyChanged).
    await alice.page.click('#btn-cam');
    await alice.page.click('#btn-mic');
    await until('Bob sees Alice\'s camera and microphone off', async () => {
      const t = (await tiles(bob.page)).find((x) => x.name === 'Alice');
      return t?.video === 'off' && t?.audio === 'off';
    });
    assert.ok(await bob.page.isVisible('.tile[data-name="Alice"] .avatar'), 'an avatar replaces the stopped video');
    assert.ok(await bob.page.isVisible('.tile[data-name="Alice"] .mic-state'), 'a muted icon shows');
    await shot(bob.page, 'room-2-muted.png');
    await alice.page.click('#btn-cam');
    await alice.page.click('#btn-mic');
    await until('Bob sees Alice back', async () => {
      const t = (await tiles(bob.page)).find((x) => x.name === 'Alice');
      return t?.video === 'on' && t?.audio === 'on';
    });

    // Bob shares his screen: a second stream from a second connection, a second tile for Alice.
    await bob.page.click('#btn-screen');
    await seesVideo(alice.page, 'Bob', 'screen');
    assert.equal((await tiles(alice.page)).length, 3, 'Alice sees herself, Bob and Bob\'s screen');
    assert.equal(await bob.page.textContent('#btn-screen .label'), 'Stop sharing');
    assert.match(await alice.page.textContent('#room-count'), /2 people/, 'a screen share is not a person');
    await shot(alice.page, 'room-2-screen.png');

    // Bob leaves: both his tiles go away for Alice.
    await bob.page.click('#btn-leave');
    await bob.page.waitForSelector('#ended-view:not([hidden])');
    await until('Bob\'s tiles removed', async () => (await tiles(alice.page)).every((t) => t.name !== 'Bob'), { timeout: 15000 });
    assert.equal((await tiles(alice.page)).length, 1);
    assert.deepEqual(alice.errors.filter((e) => !/favicon/.test(e)), [], 'no page errors for Alice');
    await alice.ctx.close();
    await bob.ctx.close();
  });

  test('a hostile chat message is shown clipped and evicts nobody', { timeout: 90000 }, async () => {
    const carol = await open('/', { width: 1280, height: 800 });
    await lobbyJoin(carol.page, { room: 'hostile-chat', name: 'Carol' });
    await carol.page.click('#btn-chat');
    // The largest signal the server relays (32 KiB of data, no spaces), sent through REST as any
    // backend could; larger ones are refused before anyone gets them.
    const signal = (data) => fetch(`${srv.url}/openvidu/api/signal`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Basic ${Buffer.from('OPENVIDUAPP:MY_SECRET').toString('base64')}` },
      // A REST signal's type reaches the SDK as given: the page listens to signal:chat.
      body: JSON.stringify({ session: 'room_hostile-chat', type: 'signal:chat', data }),
    });
    assert.equal((await signal('x'.repeat(1 << 20))).status, 413, 'a 1 MiB signal is refused (REST bodies are 64 KiB at most)');
    assert.equal((await signal('x'.repeat(40000))).status, 400, 'a signal over 32 KiB is refused');
    assert.equal((await signal('w'.repeat(32000))).status, 200, 'the largest signal is relayed');
    await until('the long message in the chat, clipped', async () => {
      const lens = await carol.page.$$eval('#chat-log li .text', (l) => l.map((t) => t.textContent.length));
      return lens.length === 1 && lens[0] === 1001; // 1,000 characters and an ellipsis
    });
    // The page still works and the server still has her: her own message comes back.
    await carol.page.fill('#chat-input', 'Still here');
    await carol.page.press('#chat-input', 'Enter');
    await until('her next message in the chat', async () =>
      (await carol.page.$$eval('#chat-log li .text', (l) => l.map((t) => t.textContent))).includes('Still here'));
    assert.ok(await carol.page.isVisible('#room-view'), 'still in the room');
    assert.deepEqual(carol.errors, [], 'no page errors');
    await carol.ctx.close();
  });

  test('four people see each other; a fifth is told the room is full', { timeout: 180000 }, async () => {
    const names = ['Ana', 'Ben', 'Chloé', 'Dev'];
    const people = [];
    for (const name of names) {
      const p = await open('/?room=all-hands', { width: 1280, height: 800 });
      await lobbyJoin(p.page, { name });
      people.push(p);
    }
    for (const [i, p] of people.entries()) {
      for (const other of names.filter((n) => n !== names[i])) await seesVideo(p.page, other);
    }
    // Speaking indicator: the fake microphone beeps, so someone's tile lights up.
    await until('a speaking indicator', () => people[0].page.$('#grid .tile.speaking'), { timeout: 15000 });
    await people[0].page.click('#btn-people');
    assert.equal(await people[0].page.$$eval('#people-list li', (l) => l.length), 4);
    await shot(people[0].page, 'room-4.png');
    await people[0].page.click('#btn-people');

    const late = await open('/?room=all-hands');
    await late.page.waitForSelector('#lobby-view:not([hidden])');
    await late.page.fill('#nickname', 'Eve');
    await late.page.click('#join-btn');
    await late.page.waitForSelector('#join-error:not([hidden])');
    assert.match(await late.page.textContent('#join-error'), /full/i);
    assert.ok(await late.page.isVisible('#lobby-view'), 'the person stays in the lobby');
    await shot(late.page, 'lobby-room-full.png');
    for (const p of [...people, late]) await p.ctx.close();
  });

  test('a banner shows while the connection to the server is re-established', { timeout: 90000 }, async () => {
    const p = await open('/?room=flaky');
    // Put the signaling WebSocket through the test, so the "network" can drop it.
    const sockets = [];
    await p.page.routeWebSocket(/\/openvidu\?/, (ws) => { sockets.push({ ws, server: ws.connectToServer() }); });
    await lobbyJoin(p.page, { name: 'Flaky' });
    // Up means published (the tile gets its stream id when session.publish resolves), not just the
    // local tile drawn: a socket dropped mid-publish is a different story (the SDK loses the answer).
    await until('the publisher to be up', async () => (await tiles(p.page)).some((t) => t.local && t.streamId) && sockets.length === 1);
    // Record every time the banner shows: the SDK reconnects within a moment on this machine.
    await p.page.evaluate(() => {
      window.bannerShown = 0;
      const b = document.getElementById('reconnecting');
      new MutationObserver(() => { if (!b.hidden) window.bannerShown++; }).observe(b, { attributes: true, attributeFilter: ['hidden'] });
    });
    const { ws, server } = sockets[0];
    ws.close({ code: 1006, reason: 'network down' });
    server.close();
    await until('the banner to show', () => p.page.evaluate(() => window.bannerShown > 0), { timeout: 15000 });
    await until('a new signaling socket', () => sockets.length > 1, { timeout: 15000 });
    await p.page.waitForSelector('#reconnecting', { state: 'hidden', timeout: 20000 });
    assert.ok(await p.page.isVisible('#room-view'), 'still in the room after reconnecting');
    assert.match(await p.page.textContent('#toast'), /Reconnected/);
    // The banner as a person sees it, for the screenshot only: real outages last longer than this one.
    await p.page.evaluate(() => { document.getElementById('reconnecting').hidden = false; });
    await shot(p.page, 'room-reconnecting.png');
    await p.ctx.close();
  });

  test('a blocked camera and an unreachable server are explained in words', { timeout: 60000 }, async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await ctx.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    });
    const page = await ctx.newPage();
    await page.goto(`${srv.url}/?room=denied`);
    await page.waitForSelector('#media-error:not([hidden])');
    const text = await page.textContent('#media-error');
    assert.match(text, /blocking your camera and microphone/);
    assert.match(text, /Allow/);
    assert.ok(await page.isVisible('#media-retry'), 'a Try again button');
    await page.fill('#nickname', 'Watcher');
    await shot(page, 'lobby-camera-denied.png');

    // The server goes away between loading the page and joining.
    await page.route('**/app/api/**', (r) => r.abort('connectionrefused'));
    await page.click('#join-btn');
    await page.waitForSelector('#join-error:not([hidden])');
    assert.match(await page.textContent('#join-error'), /Can't reach the Parley server/);
    await ctx.close();
  });
});

describe('the device and network test (/test)', () => {
  test('records five seconds through the server and plays them back', { timeout: 90000 }, async () => {
    const p = await open('/test', { width: 1280, height: 900 });
    await p.page.click('#dev-start');
    const state = await until('the device test to finish', () =>
      p.page.$eval('#device-card', (c) => (c.dataset.state === 'running' ? '' : c.dataset.state)), { timeout: 60000 });
    const results = await p.page.textContent('#dev-results');
    assert.equal(state, 'done', results);
    const card = await p.page.$eval('#device-card', (c) => ({ ...c.dataset }));
    assert.ok(Number(card.framesDecoded) > 30, `frames decoded from the server's stream: ${card.framesDecoded}`);
    assert.ok(Number(card.width) > 0 && Number(card.height) > 0, 'a detected resolution');
    assert.match(results, /received through the server/);
    assert.match(results, /Microphone: working/);
    // The recording itself holds video frames: play it (muted, to be allowed) and count them.
    const played = await until('the recording to show frames', () => p.page.$eval('#dev-playback', (v) => {
      v.muted = true;
      if (v.paused) v.play().catch(() => {});
      const q = v.getVideoPlaybackQuality();
      return q.totalVideoFrames > 10 && v.videoWidth > 0 && { frames: q.totalVideoFrames, w: v.videoWidth, h: v.videoHeight, bytes: Number(v.dataset.bytes) };
    }), { timeout: 20000 });
    assert.ok(played.bytes > 10000, `recording size ${played.bytes}`);
    // In simulcast mode the recording starts on the layer the server sent first (a new subscriber
    // starts low and climbs), so it may be smaller than the last frame received, never larger.
    assert.ok(played.w <= Number(card.width) && played.w * Number(card.height) === played.h * Number(card.width),
      `the recording (${played.w}x${played.h}) has a resolution the server sent (last ${card.width}x${card.height})`);
    await p.page.$eval('#dev-playback', (v) => { v.pause(); v.currentTime = 2; });
    await until('the playback to seek', () => p.page.$eval('#dev-playback', (v) => v.readyState >= 2));
    await p.page.$eval('#device-card', (c) => c.scrollIntoView());
    await shot(p.page, 'device-test.png');
    await p.ctx.close();
  });

  test('tells which transports reach the server', { timeout: 120000 }, async () => {
    const p = await open('/test', { width: 1280, height: 900 });
    await p.page.click('#net-start');
    const state = await until('the network test to finish', () =>
      p.page.$eval('#net-card', (c) => (c.dataset.state === 'running' ? '' : c.dataset.state)), { timeout: 100000 });
    assert.equal(state, 'done');
    const rows = await p.page.$$eval('#net-rows tr', (trs) => Object.fromEntries(trs.map((tr) => [tr.dataset.probe, { result: tr.dataset.result, text: tr.innerText }])));
    assert.equal(rows.udp.result, 'ok', rows.udp.text);
    assert.equal(rows.tcp.result, 'ok', rows.tcp.text);
    assert.equal(rows['turn-tcp'].result, 'ok', rows['turn-tcp'].text);
    // Dev mode has no TLS, so no TURN/TLS: reported as not offered, not as blocked.
    assert.equal(rows['turn-tls'].result, 'na', rows['turn-tls'].text);
    assert.equal(await p.page.$eval('#net-summary', (s) => s.dataset.verdict), 'good');
    await p.page.$eval('#net-card', (c) => c.scrollIntoView());
    await shot(p.page, 'network-test.png');
    await p.ctx.close();
  });
});

describe('a production server (TLS on the shared port)', () => {
  test('the network test finds TURN over TLS working too', { timeout: 120000 }, async () => {
    const prod = await startParley('app-e2e-production', {}, { tls: true });
    // Chromium checks a TURN server's certificate like a web page's: this one must trust the
    // self-signed certificate, as a browser would trust a real one.
    const trusting = await launch(['--ignore-certificate-errors']);
    try {
      const p = await person(trusting, `${prod.url}/test`, { width: 1280, height: 900 });
      await p.page.click('#net-start');
      await until('the network test to finish', () =>
        p.page.$eval('#net-card', (c) => (c.dataset.state === 'running' ? '' : c.dataset.state)), { timeout: 100000 });
      const rows = await p.page.$$eval('#net-rows tr', (trs) => Object.fromEntries(trs.map((tr) => [tr.dataset.probe, { result: tr.dataset.result, text: tr.innerText }])));
      for (const id of ['udp', 'tcp', 'turn-tcp', 'turn-tls']) assert.equal(rows[id].result, 'ok', rows[id].text);
      await p.page.$eval('#net-card', (c) => c.scrollIntoView());
      await shot(p.page, 'network-test-production.png');
    } finally {
      await trusting.close();
      await prod.stop();
    }
  });
});

describe('a private server', () => {
  test('asks for a login before the lobby', { timeout: 60000 }, async () => {
    const priv = await startParley('app-e2e-private', { PARLEY_APP_USERS: 'ada:correct-horse' });
    try {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['camera', 'microphone'] });
      const page = await ctx.newPage();
      await page.goto(`${priv.url}/?room=board`);
      await page.waitForSelector('#login-view:not([hidden])');
      await page.fill('#login-user', 'ada');
      await page.fill('#login-pass', 'wrong');
      await page.click('#login-form button');
      await page.waitForSelector('#login-error:not([hidden])');
      assert.match(await page.textContent('#login-error'), /do not match/);
      await shot(page, 'login.png');
      await page.fill('#login-pass', 'correct-horse');
      await page.click('#login-form button');
      await page.waitForSelector('#lobby-view:not([hidden])');
      assert.equal(await page.inputValue('#room'), 'board');
      assert.equal(await page.textContent('#user-name'), 'ada');
      await ctx.close();
    } finally {
      await priv.stop();
    }
  });
});
