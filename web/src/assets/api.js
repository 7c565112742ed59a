// Calls to Parley's app API (/app/api/). Every failure becomes an AppError whose message a person
// can act on; `code` is the server's stable error code for the page's own logic.

export class AppError extends Error {
  constructor(code, message, status = 0) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const UNREACHABLE = "Can't reach the Parley server. Check that you are online and that the server is running, then try again.";

async function call(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new AppError('unreachable', UNREACHABLE);
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    // A proxy or a stopped server answered with something that is not ours.
    if (res.status >= 500) throw new AppError('unreachable', UNREACHABLE, res.status);
    throw new AppError('bad_response', `The server answered unexpectedly (HTTP ${res.status}). Try again.`, res.status);
  }
  if (!res.ok) {
    throw new AppError(data?.error || 'error', data?.message || `The server refused the request (HTTP ${res.status}).`, res.status);
  }
  return data;
}

export const getConfig = () => call('GET', '/app/api/config');
export const login = (user, password) => call('POST', '/app/api/login', { user, password });
export const logout = () => call('POST', '/app/api/logout', {});
export const joinRoom = (room, nickname, screen = false) =>
  call('POST', `/app/api/rooms/${encodeURIComponent(room)}/join`, { nickname, screen });
export const deviceTest = () => call('POST', '/app/api/test/device', {});
export const networkTest = () => call('POST', '/app/api/test/network', {});

/** Room names as the server accepts them (lowercased; letters, digits, '-' and '_'). */
export const ROOM_RE = /^[a-z0-9](?:[a-z0-9_-]{0,48}[a-z0-9])?$/;

/** normalizeRoom turns what a person typed into a room name: "Team Standup" → "team-standup". */
export function normalizeRoom(s) {
  return s.trim().toLowerCase().replace(/\s+/g, '-').replace(/[^a-z0-9_-]/g, '').replace(/^[-_]+|[-_]+$/g, '').slice(0, 50);
}

/** randomRoom suggests a name that is easy to say aloud. */
export function randomRoom() {
  const a = ['amber', 'brisk', 'calm', 'clever', 'eager', 'gentle', 'lucky', 'quiet', 'rapid', 'sunny', 'swift', 'witty'];
  const n = ['badger', 'comet', 'falcon', 'harbor', 'maple', 'meadow', 'otter', 'pebble', 'river', 'summit', 'tiger', 'willow'];
  const pick = (l) => l[Math.floor(Math.random() * l.length)];
  return `${pick(a)}-${pick(n)}-${Math.floor(Math.random() * 90 + 10)}`;
}

/** OpenVidu SDK errors → words. The SDK rejects connect() with an OpenViduError or a plain string. */
export function describeJoinError(err) {
  const msg = String(err?.message || err || '');
  if (/401|not valid|unauthori/i.test(msg)) return 'The server did not accept your invitation to this room. Go back to the lobby and join again.';
  if (/websocket|ws |socket|closed|1006/i.test(msg) || err?.name === 'NETWORK_ERROR') return UNREACHABLE;
  return `Could not join the room: ${msg || 'unknown error'}. Try again.`;
}

/** mediaErrorText explains a getUserMedia/getDisplayMedia failure and what to do about it. */
export function mediaErrorText(err, what = 'camera and microphone') {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return `Your browser is blocking your ${what}. Click the camera icon in the address bar (or your browser's site settings), choose Allow, then press “Try again”.`;
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return `No ${what} was found. Plug one in (or pick another in the lists below) and press “Try again”.`;
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return `Your ${what} is in use by another app, or the system blocked it. Close other apps that may use it (another call, the camera app), then press “Try again”.`;
    case 'InsecureContext':
      return 'Browsers only allow cameras on secure pages: open this site with https:// (or on http://localhost).';
    default:
      return `Your ${what} could not be started (${err?.name || 'unknown error'}). Press “Try again”, or pick another device.`;
  }
}
