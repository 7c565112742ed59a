// The lobby: room name, nickname, camera and microphone preview with device pickers and a live
// microphone level. It hands the very tracks it previewed to the room, so joining needs no second
// permission prompt and the person sees on the call exactly what they checked.

import * as api from './api.js';
import { setIcon } from './icons.js';
import { acquire, fillSelect, LevelMeter, listDevices, stopStream } from './media.js';
import { $, showError } from './ui.js';

const store = {
  get: (k) => { try { return localStorage.getItem(k) || ''; } catch { return ''; } },
  set: (k, v) => { try { localStorage.setItem(k, v); } catch { /* private mode */ } },
};

export class Lobby {
  /** onJoin({token, room, nickname, stream, micOn, camOn}) enters the room; onLogin shows sign-in. */
  constructor({ onJoin, onLogin }) {
    this.onJoin = onJoin;
    this.onLogin = onLogin;
    this.stream = null;
    this.meter = null;
    this.micOn = store.get('parley.mic') !== 'off';
    this.camOn = store.get('parley.cam') !== 'off';
    this.audioError = null;
    this.videoError = null;
    this.busy = false;

    $('join-form').addEventListener('submit', (e) => { e.preventDefault(); this.join(); });
    $('lobby-mic').addEventListener('click', () => this.toggle('audio'));
    $('lobby-cam').addEventListener('click', () => this.toggle('video'));
    $('media-retry').addEventListener('click', () => this.openDevices());
    $('cam-select').addEventListener('change', (e) => this.switchDevice('video', e.target.value));
    $('mic-select').addEventListener('change', (e) => this.switchDevice('audio', e.target.value));
    $('room').addEventListener('input', () => $('room').removeAttribute('aria-invalid'));
    $('nickname').addEventListener('input', () => $('nickname').removeAttribute('aria-invalid'));
    navigator.mediaDevices?.addEventListener?.('devicechange', () => this.refreshDevices());
  }

  /** show prepares the lobby for `room` (from an invite link) and opens the devices. */
  async show({ room, user, autoJoin = false } = {}) {
    const r = $('room');
    r.value = room || r.value || store.get('parley.room') || api.randomRoom();
    $('nickname').value = $('nickname').value || store.get('parley.nickname');
    $('user-line').hidden = !user;
    $('user-name').textContent = user || '';
    showError($('join-error'), '');
    this.renderToggles();
    if (!this.stream) await this.openDevices();
    (($('nickname').value ? $('join-btn') : $('nickname'))).focus();
    if (autoJoin) this.join();
  }

  async openDevices() {
    this.closeDevices();
    const res = await acquire({
      audioId: store.get('parley.micId'), videoId: store.get('parley.camId'),
    }).then(async (r) => {
      // A remembered device that is gone: ask again for whatever the system has.
      if ((r.audioError?.name === 'OverconstrainedError' || r.videoError?.name === 'OverconstrainedError' ||
           r.audioError?.name === 'NotFoundError' || r.videoError?.name === 'NotFoundError') &&
          (store.get('parley.micId') || store.get('parley.camId'))) {
        stopStream(r.stream);
        store.set('parley.micId', '');
        store.set('parley.camId', '');
        return acquire({});
      }
      return r;
    });
    this.stream = res.stream;
    this.audioError = res.audioError;
    this.videoError = res.videoError;
    this.applyEnabled();
    $('preview').srcObject = this.stream;
    this.meter = new LevelMeter(this.stream, $('lobby-meter'));
    this.renderMediaError();
    this.renderToggles();
    await this.refreshDevices();
  }

  closeDevices() {
    this.meter?.stop();
    this.meter = null;
    stopStream(this.stream);
    this.stream = null;
  }

  renderMediaError() {
    const a = this.audioError, v = this.videoError;
    let msg = '';
    if (a && v) msg = api.mediaErrorText(v, 'camera and microphone');
    else if (v) msg = `${api.mediaErrorText(v, 'camera')} You can also join with your microphone only.`;
    else if (a) msg = `${api.mediaErrorText(a, 'microphone')} You can also join with your camera only.`;
    if (a && v) msg += ' You can still join to watch and listen.';
    showError($('media-error'), msg);
  }

  async refreshDevices() {
    const d = await listDevices();
    const cam = this.stream?.getVideoTracks()[0]?.getSettings().deviceId || store.get('parley.camId');
    const mic = this.stream?.getAudioTracks()[0]?.getSettings().deviceId || store.get('parley.micId');
    fillSelect($('cam-select'), this.videoError && !d.video.some((x) => x.label) ? [] : d.video, cam, 'No camera available');
    fillSelect($('mic-select'), this.audioError && !d.audio.some((x) => x.label) ? [] : d.audio, mic, 'No microphone available');
  }

  /** switchDevice replaces one track of the preview with the chosen device's. */
  async switchDevice(kind, deviceId) {
    store.set(kind === 'audio' ? 'parley.micId' : 'parley.camId', deviceId);
    const res = await acquire({ audio: kind === 'audio', video: kind === 'video', audioId: deviceId, videoId: deviceId });
    const err = kind === 'audio' ? res.audioError : res.videoError;
    if (err) {
      showError($('media-error'), api.mediaErrorText(err, kind === 'audio' ? 'microphone' : 'camera'));
      return;
    }
    const fresh = kind === 'audio' ? res.stream.getAudioTracks()[0] : res.stream.getVideoTracks()[0];
    if (!this.stream) this.stream = new MediaStream();
    for (const t of kind === 'audio' ? this.stream.getAudioTracks() : this.stream.getVideoTracks()) {
      t.stop();
      this.stream.removeTrack(t);
    }
    this.stream.addTrack(fresh);
    if (kind === 'audio') this.audioError = null; else this.videoError = null;
    this.applyEnabled();
    // A new MediaStream object makes the <video> pick up the changed track set at once.
    this.stream = new MediaStream(this.stream.getTracks());
    $('preview').srcObject = this.stream;
    if (kind === 'audio') {
      this.meter?.stop();
      this.meter = new LevelMeter(this.stream, $('lobby-meter'));
    }
    this.renderMediaError();
    this.renderToggles();
  }

  toggle(kind) {
    if (kind === 'audio') this.micOn = !this.micOn; else this.camOn = !this.camOn;
    store.set('parley.mic', this.micOn ? 'on' : 'off');
    store.set('parley.cam', this.camOn ? 'on' : 'off');
    this.applyEnabled();
    this.renderToggles();
  }

  applyEnabled() {
    this.stream?.getAudioTracks().forEach((t) => { t.enabled = this.micOn; });
    this.stream?.getVideoTracks().forEach((t) => { t.enabled = this.camOn; });
  }

  renderToggles() {
    const hasA = !!this.stream?.getAudioTracks().length, hasV = !!this.stream?.getVideoTracks().length;
    const mic = $('lobby-mic'), cam = $('lobby-cam');
    mic.disabled = !hasA;
    cam.disabled = !hasV;
    const micOn = hasA && this.micOn, camOn = hasV && this.camOn;
    mic.classList.toggle('off', !micOn);
    cam.classList.toggle('off', !camOn);
    setIcon(mic, micOn ? 'mic' : 'micOff');
    setIcon(cam, camOn ? 'cam' : 'camOff');
    mic.querySelector('.sr-only').textContent = !hasA ? 'No microphone' : micOn ? 'Turn microphone off' : 'Turn microphone on';
    cam.querySelector('.sr-only').textContent = !hasV ? 'No camera' : camOn ? 'Turn camera off' : 'Turn camera on';
    mic.title = mic.querySelector('.sr-only').textContent;
    cam.title = cam.querySelector('.sr-only').textContent;
    $('preview-off').hidden = camOn;
    $('preview-off-text').textContent = hasV ? 'Camera is off' : 'No camera';
  }

  async join() {
    if (this.busy) return;
    const roomEl = $('room'), nickEl = $('nickname');
    const room = api.normalizeRoom(roomEl.value);
    const nickname = nickEl.value.trim();
    showError($('join-error'), '');
    if (!api.ROOM_RE.test(room)) {
      roomEl.setAttribute('aria-invalid', 'true');
      showError($('join-error'), 'Enter a room name: letters, digits and dashes, up to 50.');
      roomEl.focus();
      return;
    }
    if (!nickname) {
      nickEl.setAttribute('aria-invalid', 'true');
      showError($('join-error'), 'Enter your name, so others know who joined.');
      nickEl.focus();
      return;
    }
    roomEl.value = room;
    store.set('parley.room', room);
    store.set('parley.nickname', nickname);
    this.busy = true;
    const btn = $('join-btn');
    btn.disabled = true;
    btn.textContent = 'Joining…';
    try {
      const res = await api.joinRoom(room, nickname);
      const stream = this.stream;
      this.meter?.stop();
      this.meter = null;
      this.stream = null; // the room owns the tracks now
      $('preview').srcObject = null;
      await this.onJoin({ token: res.token, room: res.room, nickname: res.nickname, stream, micOn: this.micOn, camOn: this.camOn });
    } catch (err) {
      if (err.code === 'login_required') {
        this.onLogin();
        return;
      }
      if (err.code === 'invalid_nickname') nickEl.setAttribute('aria-invalid', 'true');
      if (err.code === 'invalid_room') roomEl.setAttribute('aria-invalid', 'true');
      showError($('join-error'), err.message);
    } finally {
      this.busy = false;
      btn.disabled = false;
      btn.textContent = 'Join room';
    }
  }

  /** fail shows an error that happened after the lobby handed over (the room could not start). */
  fail(msg) {
    showError($('join-error'), msg);
  }
}
