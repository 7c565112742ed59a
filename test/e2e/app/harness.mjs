// Shared plumbing of the app's browser tests: a Parley process on a free port, Debian's Chromium
// driven by playwright-core, and polling with deadlines (never sleeps as synchronisation).

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../../..');
export const outDir = path.join(repo, 'test-output');
mkdirSync(outDir, { recursive: true });

/** freePort asks the kernel for an unused TCP port (Parley uses it for TCP and UDP). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** until polls fn until it returns a truthy value or the deadline passes, then throws what. */
export async function until(what, fn, { timeout = 20000, every = 200 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** status GETs url and resolves its HTTP status; a self-signed certificate is accepted. */
export function status(url) {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { rejectUnauthorized: false, timeout: 5000 }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * startParley runs the binary on a free port with env added, logs to test-output/<name>.log, and
 * resolves once the app API answers. Dev mode (http://localhost) unless tls: then production mode
 * for 127.0.0.1 with a self-signed certificate (HTTPS, and TURN over TLS on the same port).
 */
export async function startParley(name, env = {}, { tls = false } = {}) {
  const bin = process.env.PARLEY_BIN || path.join(repo, 'bin/parley');
  const port = await freePort();
  if (tls) {
    env = {
      DOMAIN_OR_PUBLIC_IP: '127.0.0.1', CERTIFICATE_TYPE: 'selfsigned', HTTP_PORT: String(await freePort()),
      OPENVIDU_SECRET: 'e2e-production-secret', ...env,
    };
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-app-e2e-'));
  const log = openSync(path.join(outDir, `${name}.log`), 'w');
  const child = spawn(bin, ['serve'], {
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME, HTTPS_PORT: String(port), OPENVIDU_SECRET: 'MY_SECRET', PARLEY_APP_PRIVATE: tls ? 'false' : '',
      PARLEY_DATA_DIR: dataDir, PARLEY_LOG_LEVEL: 'info', DOTENV_PATH: '/nonexistent',
      // Production servers run side by side here: none may take the fixed default metrics port.
      PARLEY_METRICS_ADDR: 'off', ...env,
    },
    stdio: ['ignore', log, log],
  });
  let exited = null;
  child.on('exit', (code, sig) => { exited = `exited with ${code ?? sig}`; });
  const url = tls ? `https://127.0.0.1:${port}` : `http://localhost:${port}`;
  await until('parley to serve /app/api/config', async () => {
    if (exited) throw new Error(`parley ${exited}; see test-output/${name}.log`);
    return (await status(`${url}/app/api/config`)) === 200;
  }, { timeout: 20000 });
  if ((await status(`${url}/test`)) === 503) {
    child.kill('SIGKILL');
    throw new Error(`${bin} was built without the web app: run make build (it runs make web first)`);
  }
  return {
    url,
    port,
    async stop() {
      if (exited) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10000);
      await done;
      clearTimeout(t);
    },
  };
}

/** The flags the brief fixes for Debian's Chromium in tests. */
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  // Fake screen capture picks the whole (virtual) screen without a picker.
  '--auto-select-desktop-capture-source=Entire screen',
];

export async function launch(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [...CHROMIUM_ARGS, ...extra],
    headless: true,
    timeout: 30000,
  });
}

/** person opens a fresh browser context (own storage, own permissions) on url. */
export async function person(browser, url, { width = 1280, height = 800 } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height }, permissions: ['camera', 'microphone'], ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url);
  return { ctx, page, errors };
}

export const shot = (page, name) => page.screenshot({ path: path.join(outDir, name) });
