// Small DOM helpers shared by the app and the test page.

export const $ = (id) => document.getElementById(id);

let toastTimer;
/** toast shows a short confirmation, announced politely to screen readers. */
export function toast(msg) {
  const el = $('toast');
  if (!el) return;
  el.textContent = msg;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 3500);
}

/** showError fills an .error-box (or hides it when msg is empty). */
export function showError(box, msg) {
  const p = box.querySelector('p') || box;
  p.textContent = msg || '';
  box.hidden = !msg;
}

/** initials: "Ada Lovelace" → "AL". */
export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const chars = parts.length > 1 ? [parts[0], parts[parts.length - 1]] : [parts[0] || '?'];
  return chars.map((p) => Array.from(p)[0]).join('').toUpperCase();
}

/** avatarColor picks a stable colour per name from a palette that keeps white text readable. */
export function avatarColor(name) {
  const palette = ['#4a5a80', '#7a4a80', '#80504a', '#3f6e5a', '#6a5f2e', '#2f6378', '#5b4a8a', '#7a3f5a'];
  let h = 0;
  for (const c of String(name)) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return palette[h % palette.length];
}

/** copyText copies to the clipboard, falling back to a selection copy where the API is refused. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.style.position = 'fixed';
    ta.style.opacity = '0';
    document.body.append(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

/** withTimeout rejects with `msg` if p has not settled within ms. */
export function withTimeout(p, ms, msg) {
  let t;
  return Promise.race([p, new Promise((_, reject) => { t = setTimeout(() => reject(new Error(msg)), ms); })]).finally(() => clearTimeout(t));
}

/** sdk returns the OpenVidu browser SDK (a classic script that defines window.OpenVidu). */
export function sdk() {
  if (!window.OpenVidu) throw new Error('The OpenVidu browser SDK did not load. Reload the page.');
  return window.OpenVidu;
}

/** parseConnData reads the server data the app puts on each connection ({clientData, screen}). */
export function parseConnData(data) {
  for (const part of String(data || '').split('%/%').reverse()) {
    try {
      const d = JSON.parse(part);
      if (d && typeof d === 'object') return { name: String(d.clientData || 'Guest'), screen: !!d.screen };
    } catch {
      // not JSON: a stock client's plain client data
    }
  }
  return { name: String(data || 'Guest'), screen: false };
}
