// The call: one OpenVidu Session for camera and microphone, and a second Session (its own
// connection and token) while sharing the screen, because an OpenVidu connection publishes at most
// one stream. Remote tiles show which path carries their media (getStats), bitrate and loss.

import * as api from './api.js';
import { Grid } from './grid.js';
import { icon, setIcon } from './icons.js';
import { SpeakingDetector, stopStream } from './media.js';
import { formatKbps, InboundMeter } from './stats.js';
import { $, avatarColor, copyText, initials, parseConnData, sdk, toast } from './ui.js';

// What the chat shows: messages of at most MAX_CHAT characters (what our form sends), names of
// MAX_NAME, the newest MAX_CHAT_LOG messages.
const MAX_CHAT = 1000;
const MAX_NAME = 64;
const MAX_CHAT_LOG = 200;
const clip = (s, n) => (s.length > n ? `${s.slice(0, n)}…` : s);

/** How long a remote tile may wait for its first frame before we tell the person why. */
const STALL_MS = 15000;
const STATS_EVERY_MS = 2000;

/** ended reasons from the SDK's sessionDisconnected → what to tell the person. */
const ENDED = {
  networkDisconnect: ['You lost your connection', 'The network dropped for too long, so the server let you go. Check your connection, then rejoin.'],
  forceDisconnectByUser: ['You were removed from the room', 'A moderator removed you from this room.'],
  forceDisconnectByServer: ['You were removed from the room', 'The server removed you from this room.'],
  sessionClosedByServer: ['The meeting has ended', 'The server closed this room.'],
  openviduServerStopped: ['The server restarted', 'The server was restarted. Wait a moment, then rejoin.'],
};

export class Room {
  /** onEnded(title, text) shows the ended view; onFail(msg) returns to the lobby with an error. */
  constructor({ onEnded, onFail }) {
    this.onEnded = onEnded;
    this.onFail = onFail;
    this.tiles = new Map(); // key → tile element: 'local:camera', 'local:screen', or a remote streamId
    this.meters = new Map(); // streamId → InboundMeter
    this.people = new Map(); // connectionId → {name, screen, connection}
    this.unread = 0;
    this.panel = '';
    this.grid = new Grid($('grid'));

    $('btn-mic').addEventListener('click', () => this.setMic(!this.micOn));
    $('btn-cam').addEventListener('click', () => this.setCam(!this.camOn));
    $('btn-screen').addEventListener('click', () => (this.share ? this.stopShare() : this.startShare()));
    $('btn-chat').addEventListener('click', () => this.togglePanel('chat'));
    $('btn-people').addEventListener('click', () => this.togglePanel('people'));
    $('panel-close').addEventListener('click', () => this.togglePanel(''));
    $('btn-invite').addEventListener('click', () => this.invite());
    $('btn-leave').addEventListener('click', () => this.leave());
    $('chat-form').addEventListener('submit', (e) => { e.preventDefault(); this.sendChat(); });
    addEventListener('keydown', (e) => { if (e.key === 'Escape' && this.panel) this.togglePanel(''); });
    addEventListener('pagehide', () => this.disconnectAll());
  }

  /** enter connects and publishes; on failure it calls onFail and releases everything. */
  async enter({ token, room, nickname, stream, micOn, camOn }) {
    const OpenVidu = sdk();
    this.room = room;
    this.nickname = nickname;
    this.active = true;
    this.OV = new OpenVidu();
    this.OV.enableProdMode();
    this.session = this.OV.initSession();
    this.myScreens = new Set();
    this.speech = new SpeakingDetector((key, on) => this.tiles.get(key)?.classList.toggle('speaking', on));
    this.wire(this.session);

    $('room-name').textContent = room;
    history.replaceState(null, '', `/?room=${encodeURIComponent(room)}`);
    document.title = `${room} · Parley`;
    $('chat-log').replaceChildren(Object.assign(document.createElement('li'), { className: 'empty', textContent: 'No messages yet. Say hello!' }));
    this.unread = 0;
    this.renderUnread();

    try {
      await this.session.connect(token);
    } catch (err) {
      stopStream(stream);
      this.teardown();
      this.onFail(api.describeJoinError(err));
      return;
    }
    this.myId = this.session.connection.connectionId;

    const audio = stream?.getAudioTracks()[0], video = stream?.getVideoTracks()[0];
    this.micOn = !!audio && micOn;
    this.camOn = !!video && camOn;
    const tile = this.addTile('local:camera', { name: nickname, local: true, kind: 'camera' });
    if (audio || video) {
      try {
        this.publisher = await this.makePublisher(audio, video);
        // The publisher opened the devices itself: release the preview's tracks it does not use.
        const used = new Set(this.publisher.stream.getMediaStream()?.getTracks());
        stream.getTracks().filter((t) => !used.has(t)).forEach((t) => t.stop());
        this.publisher.addVideoElement(tile.querySelector('video'));
        tile.querySelector('video').muted = true; // never play ourselves back
        await this.session.publish(this.publisher);
        tile.dataset.streamId = this.publisher.stream.streamId;
        this.speech.add('local:camera', this.publisher.stream.getMediaStream());
        this.speech.setMuted('local:camera', !this.micOn);
      } catch (err) {
        toast(`Others can't see or hear you: ${err?.message || err}`);
      }
    }
    this.setTileState(tile, { audio: this.micOn, video: this.camOn });
    $('btn-mic').disabled = !audio;
    $('btn-cam').disabled = !video;
    this.renderControls();
    this.statsTimer = setInterval(() => this.pollStats(), STATS_EVERY_MS);
  }

  /**
   * makePublisher publishes the devices the lobby previewed. It names them by deviceId so the SDK
   * opens them itself and announces the stream as typeOfVideo CAMERA (OpenVidu's str_CAM_ ids,
   * what recording layouts and other OpenVidu clients expect); handing over the preview tracks
   * would make it CUSTOM. The preview stays open meanwhile, so the camera never blinks off, and the
   * tracks are the fallback if opening the devices again fails.
   */
  async makePublisher(audio, video) {
    const opts = { publishAudio: this.micOn, publishVideo: this.camOn, mirror: false, resolution: '640x480', frameRate: 30 };
    try {
      return await this.OV.initPublisherAsync(undefined, {
        ...opts,
        audioSource: audio ? audio.getSettings().deviceId || undefined : false,
        videoSource: video ? video.getSettings().deviceId || undefined : false,
      });
    } catch {
      return this.OV.initPublisherAsync(undefined, { ...opts, audioSource: audio || false, videoSource: video || false });
    }
  }

  /** wire subscribes the page to the camera session's events. */
  wire(s) {
    s.on('connectionCreated', (e) => {
      const d = parseConnData(e.connection.data);
      this.people.set(e.connection.connectionId, { ...d, connection: e.connection });
      this.renderPeople();
    });
    s.on('connectionDestroyed', (e) => {
      this.people.delete(e.connection.connectionId);
      this.renderPeople();
    });
    s.on('streamCreated', (e) => this.onStream(e.stream));
    s.on('streamDestroyed', (e) => {
      e.preventDefault(); // our tiles, not the SDK's elements
      this.removeTile(e.stream.streamId);
      this.renderPeople();
    });
    s.on('streamPropertyChanged', (e) => {
      const t = this.tiles.get(e.stream.streamId);
      if (t && !t.classList.contains('local')) {
        if (e.changedProperty === 'audioActive') this.setTileState(t, { audio: e.newValue });
        if (e.changedProperty === 'videoActive') this.setTileState(t, { video: e.newValue });
        // The server paused this stream's video for us alone: our link cannot carry it.
        if (e.changedProperty === 'videoActive' && e.reason === 'networkConstrained') this.constrained(t, !e.newValue);
      }
      this.renderPeople();
    });
    s.on('signal:chat', (e) => this.onChat(e));
    s.on('reconnecting', () => { $('reconnecting').hidden = false; });
    s.on('reconnected', () => { $('reconnecting').hidden = true; toast('Reconnected'); });
    s.on('sessionDisconnected', (e) => {
      if (!this.active || e.reason === 'disconnect') return;
      const [title, text] = ENDED[e.reason] || ['You were disconnected', `The connection to the room ended (${e.reason}). Rejoin when you are ready.`];
      this.teardown();
      this.onEnded(title, text);
    });
    s.on('exception', (e) => {
      // ICE failures on a subscription: say so on the tile instead of leaving it black.
      const t = e.origin?.streamId && this.tiles.get(e.origin.streamId);
      if (t && /ICE_CONNECTION_(FAILED|DISCONNECTED)/.test(e.name)) this.stalled(t, true);
    });
  }

  onStream(stream) {
    const cid = stream.connection.connectionId;
    if (this.myScreens.has(cid)) return; // our own screen: shown from the local publisher
    const d = parseConnData(stream.connection.data);
    const kind = d.screen || stream.typeOfVideo === 'SCREEN' ? 'screen' : 'camera';
    const tile = this.addTile(stream.streamId, { name: d.name, local: false, kind });
    tile.dataset.connectionId = cid;
    this.setTileState(tile, { audio: stream.audioActive && stream.hasAudio, video: stream.videoActive && stream.hasVideo });
    const sub = this.session.subscribe(stream, undefined);
    sub.addVideoElement(tile.querySelector('video'));
    tile.sub = sub;
    sub.on('streamPlaying', () => {
      tile.dataset.playing = 'true';
      this.stalled(tile, false);
      this.speech.add(stream.streamId, stream.getMediaStream());
      this.speech.setMuted(stream.streamId, tile.dataset.audio === 'off');
    });
    tile.stallTimer = setTimeout(() => { if (tile.dataset.playing !== 'true' && stream.hasVideo) this.stalled(tile, true); }, STALL_MS);
    const pcReady = () => {
      // In simulcast (mediasoup) mode the subscriber's peer exists only once the server's offer
      // came back, and openvidu-browser throws until then.
      let pc;
      try { pc = stream.getRTCPeerConnection?.(); } catch { pc = undefined; }
      if (pc) this.meters.set(stream.streamId, new InboundMeter(pc));
      else setTimeout(pcReady, 500);
    };
    pcReady();
    this.renderPeople();
  }

  // ---- tiles ----

  addTile(key, { name, local, kind }) {
    this.removeTile(key);
    const tile = $('tile-tpl').content.firstElementChild.cloneNode(true);
    tile.classList.add(kind);
    if (local) tile.classList.add('local');
    tile.dataset.key = key;
    tile.dataset.kind = kind;
    tile.dataset.name = name;
    if (!local) tile.dataset.streamId = key;
    const label = kind === 'screen' ? (local ? 'Your screen' : `${name}'s screen`) : local ? `${name} (you)` : name;
    tile.querySelector('.name').textContent = label;
    tile.setAttribute('aria-label', label);
    tile.querySelector('.avatar span').textContent = initials(name);
    tile.style.setProperty('--avatar', avatarColor(name));
    const mic = tile.querySelector('.mic-state');
    mic.append(icon('micOff'));
    mic.setAttribute('title', 'Muted');
    // Local media must never play back into the room; remote tiles carry the remote audio.
    tile.querySelector('video').muted = local;
    // Screens first, then our own tile, then everyone in arrival order: the shared screen is what
    // people look at, and we always find ourselves in the same place.
    const grid = $('grid');
    if (kind === 'screen') grid.prepend(tile);
    else if (local) grid.insertBefore(tile, [...grid.children].find((c) => !c.classList.contains('screen')) || null);
    else grid.append(tile);
    this.tiles.set(key, tile);
    return tile;
  }

  removeTile(key) {
    const t = this.tiles.get(key);
    if (!t) return;
    clearTimeout(t.stallTimer);
    this.speech?.remove(key);
    t.remove();
    this.tiles.delete(key);
    this.meters.delete(key);
  }

  setTileState(tile, { audio, video }) {
    if (audio !== undefined) {
      tile.dataset.audio = audio ? 'on' : 'off';
      this.speech?.setMuted(tile.dataset.key, !audio);
      tile.querySelector('.mic-state').hidden = !!audio || tile.classList.contains('screen');
    }
    if (video !== undefined) tile.dataset.video = video ? 'on' : 'off';
  }

  constrained(tile, on) {
    const st = tile.querySelector('.tile-status');
    st.textContent = 'Video paused: your connection is too slow for it right now. You still hear them; video comes back by itself.';
    st.hidden = !on;
  }

  stalled(tile, on) {
    const st = tile.querySelector('.tile-status');
    if (!on) {
      st.hidden = true;
      return;
    }
    st.replaceChildren(
      "Video isn't getting through to you. Your network may be blocking it: ",
      Object.assign(document.createElement('a'), { href: '/test', target: '_blank', rel: 'noopener', textContent: 'run the network test' }),
      '.',
    );
    st.hidden = false;
  }


  async pollStats() {
    for (const [sid, meter] of this.meters) {
      const tile = this.tiles.get(sid);
      if (!tile) continue;
      let s;
      try {
        s = await meter.sample();
      } catch {
        continue;
      }
      if (!s) continue;
      tile.dataset.framesDecoded = String(s.framesDecoded);
      tile.dataset.path = s.path;
      if (s.framesDecoded > 0) this.stalled(tile, false);
      const badge = tile.querySelector('.path-badge');
      if (!s.path) continue;
      badge.hidden = false;
      // The first sample has nothing to compare with: name the path only, never a false "0 kbps".
      // The numbers are a separate span so small tiles can drop them and keep the path.
      const path = document.createElement('b');
      path.textContent = s.path;
      badge.replaceChildren(path);
      if (meter.samples > 1) {
        const more = document.createElement('span');
        more.className = 'detail';
        more.textContent = ` · ${formatKbps(s.kbps)} · ${s.loss.toFixed(1)}% loss`;
        badge.append(more);
      }
      badge.title = `Media reaches you over ${s.path}${s.width ? `, ${s.width}×${s.height}` : ''}${s.fps ? ` at ${Math.round(s.fps)} fps` : ''}`;
      badge.classList.toggle('bad', s.loss >= 5);
    }
  }

  // ---- controls ----

  setMic(on) {
    if (!this.publisher) return;
    this.micOn = on;
    this.publisher.publishAudio(on); // others learn it from streamPropertyChanged
    this.setTileState(this.tiles.get('local:camera'), { audio: on });
    this.renderControls();
    this.renderPeople();
  }

  setCam(on) {
    if (!this.publisher) return;
    this.camOn = on;
    this.publisher.publishVideo(on);
    this.setTileState(this.tiles.get('local:camera'), { video: on });
    this.renderControls();
    this.renderPeople();
  }

  renderControls() {
    const mic = $('btn-mic'), cam = $('btn-cam'), scr = $('btn-screen');
    mic.classList.toggle('off', !this.micOn);
    setIcon(mic, this.micOn ? 'mic' : 'micOff');
    mic.querySelector('.label').textContent = mic.disabled ? 'No mic' : this.micOn ? 'Mute' : 'Unmute';
    cam.classList.toggle('off', !this.camOn);
    setIcon(cam, this.camOn ? 'cam' : 'camOff');
    cam.querySelector('.label').textContent = cam.disabled ? 'No camera' : this.camOn ? 'Stop video' : 'Start video';
    scr.classList.toggle('active', !!this.share);
    scr.querySelector('.label').textContent = this.share ? 'Stop sharing' : 'Share screen';
    if (!navigator.mediaDevices?.getDisplayMedia) {
      scr.disabled = true;
      scr.title = "This browser can't share its screen";
    }
  }

  async startShare() {
    const btn = $('btn-screen');
    btn.disabled = true;
    const OpenVidu = sdk();
    const OV = new OpenVidu();
    OV.enableProdMode();
    let publisher;
    try {
      // Ask for the screen before taking a seat, so cancelling the browser's picker costs nothing.
      publisher = await OV.initPublisherAsync(undefined, { videoSource: 'screen', audioSource: false, publishAudio: false, mirror: false });
    } catch (err) {
      btn.disabled = false;
      // Cancelling the browser's picker is a choice, not an error: say nothing then.
      if (err?.name !== 'SCREEN_CAPTURE_DENIED') toast(api.mediaErrorText(err, 'screen'));
      return;
    }
    const session = OV.initSession();
    try {
      const res = await api.joinRoom(this.room, this.nickname, true);
      await session.connect(res.token);
      this.myScreens.add(session.connection.connectionId);
      await session.publish(publisher);
    } catch (err) {
      btn.disabled = false;
      stopStream(publisher.stream?.getMediaStream());
      try { session.disconnect(); } catch { /* not connected */ }
      toast(err instanceof api.AppError ? err.message : `Could not share your screen: ${err?.message || err}`);
      return;
    }
    this.share = { OV, session, publisher };
    session.on('sessionDisconnected', () => { if (this.share?.session === session) this.stopShare(); });
    // The browser's own "Stop sharing" bar ends the track: follow it.
    publisher.stream.getMediaStream().getVideoTracks()[0]?.addEventListener('ended', () => this.stopShare());
    const tile = this.addTile('local:screen', { name: this.nickname, local: true, kind: 'screen' });
    publisher.addVideoElement(tile.querySelector('video'));
    tile.querySelector('video').muted = true;
    tile.dataset.streamId = publisher.stream.streamId;
    this.setTileState(tile, { audio: false, video: true });
    btn.disabled = false;
    this.renderControls();
  }

  stopShare() {
    const sh = this.share;
    if (!sh) return;
    this.share = null;
    try { sh.session.disconnect(); } catch { /* already gone */ }
    stopStream(sh.publisher.stream?.getMediaStream());
    this.removeTile('local:screen');
    this.renderControls();
  }

  async invite() {
    const link = `${location.origin}/?room=${encodeURIComponent(this.room)}`;
    toast((await copyText(link)) ? 'Invite link copied. Paste it to whoever should join.' : `Copy this link: ${link}`);
  }

  // ---- side panel: chat and people ----

  togglePanel(which) {
    this.panel = this.panel === which ? '' : which;
    $('panel').hidden = !this.panel;
    $('chat-panel').hidden = this.panel !== 'chat';
    $('people-panel').hidden = this.panel !== 'people';
    $('panel-title').textContent = this.panel === 'people' ? 'People' : 'Chat';
    $('btn-chat').setAttribute('aria-expanded', String(this.panel === 'chat'));
    $('btn-people').setAttribute('aria-expanded', String(this.panel === 'people'));
    $('btn-chat').classList.toggle('active', this.panel === 'chat');
    $('btn-people').classList.toggle('active', this.panel === 'people');
    if (this.panel === 'chat') {
      this.unread = 0;
      this.renderUnread();
      $('chat-input').focus();
      const log = $('chat-log');
      log.scrollTop = log.scrollHeight;
    } else if (!this.panel) {
      $('btn-chat').focus();
    }
  }

  sendChat() {
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text || !this.session) return;
    // Sent to everyone including ourselves: the server's echo is what we display, so a message we
    // see is a message the others got.
    this.session.signal({ type: 'chat', data: text.slice(0, MAX_CHAT) }).catch(() => toast('Your message could not be sent. Check your connection.'));
    input.value = '';
  }

  onChat(e) {
    const log = $('chat-log');
    log.querySelector('.empty')?.remove();
    const mine = e.from?.connectionId === this.myId;
    const li = document.createElement('li');
    if (mine) li.classList.add('mine');
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = mine ? 'You' : clip(parseConnData(e.from?.data).name, MAX_NAME);
    const time = document.createElement('time');
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    who.append(time);
    const text = document.createElement('span');
    text.className = 'text';
    // Clipped as our own form clips what it sends: a hostile client can signal up to the
    // server's limit, and laying out 200,000 characters froze pages long enough to be evicted.
    text.textContent = clip(String(e.data ?? ''), MAX_CHAT);
    li.append(who, text);
    log.append(li);
    while (log.children.length > MAX_CHAT_LOG) log.firstElementChild.remove();
    log.scrollTop = log.scrollHeight;
    if (this.panel !== 'chat' && !mine) {
      this.unread++;
      this.renderUnread();
    }
  }

  renderUnread() {
    const b = $('unread');
    b.hidden = this.unread === 0;
    b.textContent = this.unread > 9 ? '9+' : String(this.unread);
    $('btn-chat').setAttribute('aria-label', this.unread ? `Chat, ${this.unread} unread` : 'Chat');
  }

  renderPeople() {
    const list = $('people-list');
    const rows = [];
    for (const [cid, p] of this.people) {
      if (p.screen) continue;
      const me = cid === this.myId;
      const st = me ? { a: this.micOn, v: this.camOn } : { a: p.connection.stream?.audioActive, v: p.connection.stream?.videoActive };
      const li = document.createElement('li');
      const dot = document.createElement('span');
      dot.className = 'dot';
      dot.style.setProperty('--avatar', avatarColor(p.name));
      dot.textContent = initials(p.name);
      dot.setAttribute('aria-hidden', 'true');
      const name = document.createElement('span');
      name.className = 'pname';
      name.textContent = me ? `${p.name} (you)` : p.name;
      const states = document.createElement('span');
      states.className = 'states';
      const a = icon(st.a ? 'mic' : 'micOff'), v = icon(st.v ? 'cam' : 'camOff');
      if (!st.a) a.classList.add('off');
      if (!st.v) v.classList.add('off');
      states.append(a, v);
      const sr = document.createElement('span');
      sr.className = 'sr-only';
      sr.textContent = `${st.a ? 'microphone on' : 'muted'}, ${st.v ? 'camera on' : 'camera off'}`;
      states.append(sr);
      li.append(dot, name, states);
      rows.push(me ? [0, li] : [1, li]);
    }
    rows.sort((x, y) => x[0] - y[0]);
    list.replaceChildren(...rows.map((r) => r[1]));
    const n = rows.length;
    $('people-count').textContent = n ? `(${n})` : '';
    $('room-count').textContent = n === 1 ? 'Only you so far — invite someone' : `${n} people`;
  }

  // ---- leaving ----

  leave() {
    this.teardown();
    this.onEnded('You left the room', `You left “${this.room}”.`);
  }

  disconnectAll() {
    this.stopShare();
    try { this.session?.disconnect(); } catch { /* already gone */ }
  }

  teardown() {
    if (!this.active) return;
    this.active = false;
    clearInterval(this.statsTimer);
    this.speech?.stop();
    this.disconnectAll();
    stopStream(this.publisher?.stream?.getMediaStream());
    this.publisher = null;
    for (const key of [...this.tiles.keys()]) this.removeTile(key);
    this.people.clear();
    this.meters.clear();
    $('reconnecting').hidden = true;
    if (this.panel) this.togglePanel('');
  }
}
