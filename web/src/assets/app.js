// Entry point of the app at /: decides between sign-in, lobby and room, and moves between them.

import * as api from './api.js';
import { hydrateIcons } from './icons.js';
import { Lobby } from './lobby.js';
import { Room } from './room.js';
import { $, showError } from './ui.js';

const VIEWS = ['login-view', 'lobby-view', 'room-view', 'ended-view'];

function show(id) {
  $('boot').hidden = true;
  for (const v of VIEWS) $(v).hidden = v !== id;
  // Move focus to the new view's heading, so keyboard and screen-reader users land where the page
  // changed rather than on a button that vanished.
  const h = $(id).querySelector('h1');
  if (h && id !== 'lobby-view') {
    h.tabIndex = -1;
    h.focus();
  }
}

let config = { private: false, user: '' };
let last = { room: '' };

const lobby = new Lobby({
  onJoin: async (opts) => {
    last = { room: opts.room };
    show('room-view');
    await room.enter(opts);
  },
  onLogin: () => showLogin(),
});

const room = new Room({
  onEnded: (title, text) => {
    $('ended-title').textContent = title;
    $('ended-text').textContent = text;
    show('ended-view');
  },
  onFail: (msg) => {
    showLobby(last.room);
    lobby.fail(msg);
  },
});

function roomFromURL() {
  const r = new URLSearchParams(location.search).get('room') || '';
  return api.normalizeRoom(r);
}

function showLobby(roomName, autoJoin = false) {
  show('lobby-view');
  lobby.show({ room: roomName, user: config.private ? config.user : '', autoJoin });
}

function showLogin() {
  show('login-view');
  $('login-user').focus();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const err = $('login-error');
  err.hidden = true;
  const btn = e.target.querySelector('button');
  btn.disabled = true;
  try {
    await api.login($('login-user').value.trim(), $('login-pass').value);
    $('login-pass').value = '';
    config = await api.getConfig();
    showLobby(roomFromURL());
  } catch (ex) {
    err.textContent = ex.message;
    err.hidden = false;
    $('login-pass').select();
  } finally {
    btn.disabled = false;
  }
});

$('logout').addEventListener('click', async () => {
  await api.logout().catch(() => {});
  lobby.closeDevices();
  config.user = '';
  showLogin();
});

$('rejoin').addEventListener('click', () => showLobby(last.room, true));
$('to-lobby').addEventListener('click', () => showLobby(last.room));

async function boot() {
  hydrateIcons();
  try {
    config = await api.getConfig();
  } catch (err) {
    $('ended-title').textContent = "Can't reach the server";
    $('ended-text').textContent = err.message;
    $('rejoin').textContent = 'Try again';
    $('rejoin').onclick = () => location.reload();
    $('to-lobby').hidden = true;
    show('ended-view');
    return;
  }
  if (!config.available) {
    show('login-view');
    $('login-form').hidden = true;
    $('login-title').textContent = 'This server has no open rooms';
    $('login-view').querySelector('p.muted').textContent =
      "Its video rooms are private and no accounts exist yet. If you run this server, set PARLEY_APP_USERS (user:password pairs) or PARLEY_APP_PRIVATE=false and restart it.";
    return;
  }
  if (config.private && !config.user) {
    showLogin();
    return;
  }
  showLobby(roomFromURL());
}

showError($('join-error'), '');
boot();
