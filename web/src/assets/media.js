// Camera and microphone: acquiring them with errors a person can act on, listing devices, and a
// live level meter.

/** The video we ask cameras for: what the OpenVidu tutorials use, light enough for 16 tiles. */
export const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } };

function insecure() {
  const e = new Error('getUserMedia needs a secure context');
  e.name = 'InsecureContext';
  return e;
}

/**
 * acquire opens the wanted devices. It asks for both at once (one permission prompt); when that
 * fails because one kind is missing, it retries each alone, so a laptop without a camera still
 * joins with its microphone. Returns {stream, audioError, videoError}; stream may have no tracks.
 */
export async function acquire({ audioId, videoId, audio = true, video = true } = {}) {
  if (!navigator.mediaDevices?.getUserMedia) {
    const e = insecure();
    return { stream: new MediaStream(), audioError: e, videoError: e };
  }
  const a = audio && (audioId ? { deviceId: { exact: audioId } } : true);
  const v = video && (videoId ? { ...VIDEO, deviceId: { exact: videoId } } : VIDEO);
  if (!a && !v) return { stream: new MediaStream(), audioError: null, videoError: null };
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ audio: a, video: v }), audioError: null, videoError: null };
  } catch (err) {
    if (err.name === 'NotAllowedError' || err.name === 'SecurityError' || !(a && v)) {
      return { stream: new MediaStream(), audioError: a ? err : null, videoError: v ? err : null };
    }
  }
  const out = { stream: new MediaStream(), audioError: null, videoError: null };
  try {
    (await navigator.mediaDevices.getUserMedia({ audio: a })).getTracks().forEach((t) => out.stream.addTrack(t));
  } catch (err) {
    out.audioError = err;
  }
  try {
    (await navigator.mediaDevices.getUserMedia({ video: v })).getTracks().forEach((t) => out.stream.addTrack(t));
  } catch (err) {
    out.videoError = err;
  }
  return out;
}

/** listDevices returns {audio: [...], video: [...]} input devices (labels need permission first). */
export async function listDevices() {
  const all = (await navigator.mediaDevices?.enumerateDevices?.()) || [];
  return {
    audio: all.filter((d) => d.kind === 'audioinput' && d.deviceId),
    video: all.filter((d) => d.kind === 'videoinput' && d.deviceId),
  };
}

/** fillSelect lists devices in a <select>, keeping `current` selected when present. */
export function fillSelect(select, devices, current, noneLabel) {
  select.replaceChildren();
  if (!devices.length) {
    select.append(new Option(noneLabel, ''));
    select.disabled = true;
    return;
  }
  select.disabled = false;
  devices.forEach((d, i) => select.append(new Option(d.label || `Device ${i + 1}`, d.deviceId, false, d.deviceId === current)));
}

let ctx;
/** audioContext is shared: browsers cap how many a page may open. */
export function audioContext() {
  if (!ctx) ctx = new AudioContext();
  // Autoplay rules keep a context suspended until the person interacts; resume on the first input.
  if (ctx.state === 'suspended') {
    ctx.resume().catch(() => {});
    const wake = () => ctx.resume().catch(() => {});
    addEventListener('pointerdown', wake, { once: true });
    addEventListener('keydown', wake, { once: true });
  }
  return ctx;
}

/**
 * LevelMeter measures a MediaStream's audio: `level` is 0..1 on a −60…0 dBFS scale, `peakDb` the
 * loudest moment so far. It draws into an element with role="meter" (width of its .fill child).
 */
export class LevelMeter {
  constructor(stream, el) {
    this.el = el;
    this.level = 0;
    this.peakDb = -Infinity;
    const track = stream.getAudioTracks()[0];
    if (!track) return;
    const c = audioContext();
    this.src = c.createMediaStreamSource(new MediaStream([track]));
    this.an = c.createAnalyser();
    this.an.fftSize = 1024;
    this.buf = new Float32Array(this.an.fftSize);
    this.src.connect(this.an);
    this.lastAria = 0;
    const tick = () => {
      if (!this.an) return;
      this.an.getFloatTimeDomainData(this.buf);
      let sum = 0;
      for (const x of this.buf) sum += x * x;
      const db = 10 * Math.log10(sum / this.buf.length + 1e-12);
      if (db > this.peakDb) this.peakDb = db;
      // Fast attack, slow release, like a hardware meter: easy to read while someone talks.
      const target = Math.max(0, Math.min(1, (db + 60) / 60));
      this.level = target > this.level ? target : this.level * 0.9 + target * 0.1;
      this.draw();
      this.raf = requestAnimationFrame(tick);
    };
    tick();
  }

  draw() {
    if (!this.el) return;
    const fill = this.el.querySelector('.fill');
    // Clip rather than scale: the green→red gradient stays put and the level uncovers it.
    if (fill) fill.style.clipPath = `inset(0 ${(100 - this.level * 100).toFixed(1)}% 0 0)`;
    // Screen readers get a value a few times a second, not sixty.
    const now = performance.now();
    if (now - this.lastAria > 500) {
      this.lastAria = now;
      this.el.setAttribute('aria-valuenow', String(Math.round(this.level * 100)));
    }
  }

  stop() {
    cancelAnimationFrame(this.raf);
    this.src?.disconnect();
    this.an = null;
    this.level = 0;
    this.draw();
  }
}

/** stopStream ends every track (the camera light goes off). */
export function stopStream(stream) {
  stream?.getTracks().forEach((t) => t.stop());
}

/**
 * SpeakingDetector lights up whoever is talking. One timer analyses every stream (rather than the
 * SDK's hark, which runs an AudioContext and a timer per stream and, in our tests, stayed silent for
 * remote streams). A stream counts as speaking after two of three 100 ms windows above the
 * threshold, and stops after 800 ms below: quick to show, slow to flicker off between words.
 */
export class SpeakingDetector {
  constructor(onChange, thresholdDb = -45) {
    this.onChange = onChange;
    this.threshold = thresholdDb;
    this.items = new Map(); // key → {src, an, buf, recent: [], quiet, speaking}
    this.timer = setInterval(() => this.tick(), 100);
  }

  add(key, stream) {
    this.remove(key);
    const track = stream?.getAudioTracks()[0];
    if (!track) return;
    const c = audioContext();
    const src = c.createMediaStreamSource(new MediaStream([track]));
    const an = c.createAnalyser();
    an.fftSize = 512;
    src.connect(an);
    this.items.set(key, { src, an, buf: new Float32Array(an.fftSize), recent: [], quiet: 0, speaking: false });
  }

  /** setMuted makes a muted stream stop speaking at once, instead of after its quiet spell. */
  setMuted(key, muted) {
    const it = this.items.get(key);
    if (!it) return;
    it.muted = muted;
    if (muted && it.speaking) {
      it.speaking = false;
      this.onChange(key, false);
    }
  }

  remove(key) {
    const it = this.items.get(key);
    if (!it) return;
    it.src.disconnect();
    this.items.delete(key);
    if (it.speaking) this.onChange(key, false);
  }

  tick() {
    for (const [key, it] of this.items) {
      it.an.getFloatTimeDomainData(it.buf);
      let sum = 0;
      for (const x of it.buf) sum += x * x;
      const loud = !it.muted && 10 * Math.log10(sum / it.buf.length + 1e-12) > this.threshold;
      it.recent.push(loud);
      if (it.recent.length > 3) it.recent.shift();
      it.quiet = loud ? 0 : it.quiet + 1;
      const next = it.speaking ? it.quiet < 8 : it.recent.filter(Boolean).length >= 2;
      if (next !== it.speaking) {
        it.speaking = next;
        this.onChange(key, next);
      }
    }
  }

  stop() {
    clearInterval(this.timer);
    for (const key of [...this.items.keys()]) this.remove(key);
  }
}
