// A tiny corporate HTTP proxy for cells e and e-tls: it answers only CONNECT, only to port 443, and
// only to the bed's server (its name or its address), so nothing it relays can leave the bed. Every request is
// logged with what the tunnel carried, told apart by the client's first bytes: TLS (HTTPS, WSS,
// TURN over TLS), TURN over TCP (STUN cookie at offset 4) or ICE-TCP (RFC 4571 framing, cookie at 6).
import { createServer, connect, isIP } from 'node:net';

const COOKIE = Buffer.from([0x21, 0x12, 0xa4, 0x42]);

export function firstBytesKind(b) {
  if (b.length >= 3 && b[0] === 0x16 && b[1] === 0x03) return 'TLS';
  if (b.length >= 8 && b.subarray(4, 8).equals(COOKIE)) return 'TURN/TCP';
  if (b.length >= 10 && b.subarray(6, 10).equals(COOKIE)) return 'ICE-TCP';
  if (/^[A-Z]{3,7} /.test(b.subarray(0, 8).toString('latin1'))) return 'HTTP';
  return b.length ? 'other' : 'nothing';
}

// startProxy listens on host:port. upstreams maps the names and addresses it may CONNECT to onto
// the address it really dials. tlsOnly makes it the stricter kind many companies run: CONNECT only
// to host names (no IP literals), and the tunnel is cut unless it starts with a TLS ClientHello (what
// a proxy that peeks at TLS, or inspects it, lets through). It resolves with { log, close }.
export async function startProxy({ host, port, upstreams, allowPort = 443, tlsOnly = false, headerTimeoutMs = 5000 }) {
  const log = [];
  const sockets = new Set();
  let nextId = 1;

  const server = createServer((client) => {
    const id = nextId++;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    let head = Buffer.alloc(0);
    client.setTimeout(headerTimeoutMs, () => client.destroy());
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 8192) client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      client.setTimeout(0);
      const requestLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      const rest = head.subarray(end + 4);
      const m = /^CONNECT (\[[^\]]+\]|[^\s:]+):(\d+) HTTP\/1\.[01]$/.exec(requestLine);
      const entry = { id, at: new Date().toISOString(), request: requestLine, from: `${client.remoteAddress}:${client.remotePort}` };
      log.push(entry);
      const refuse = (status, why) => {
        entry.result = `refused ${status}: ${why}`;
        client.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      };
      if (!m) return refuse('405 Method Not Allowed', 'only CONNECT is relayed');
      const [, target, portStr] = m;
      if (Number(portStr) !== allowPort) return refuse('403 Forbidden', `port ${portStr} is not ${allowPort}`);
      const dial = upstreams[target];
      if (!dial) return refuse('403 Forbidden', `${target} is not this bed's server`);
      if (tlsOnly && isIP(target.replace(/^\[|\]$/g, ''))) return refuse('403 Forbidden', 'an IP literal, not a host name');
      const up = connect({ host: dial, port: allowPort });
      sockets.add(up);
      up.on('close', () => sockets.delete(up));
      const t0 = Date.now();
      entry.up = 0; entry.down = 0;
      up.setTimeout(headerTimeoutMs, () => up.destroy(new Error('upstream connect timeout')));
      up.on('connect', () => {
        up.setTimeout(0);
        entry.result = 'relayed';
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        let sawFirst = false;
        // noteFirst classifies the tunnel by its first bytes; a TLS-only proxy cuts anything else.
        const noteFirst = (b) => {
          if (sawFirst || !b.length) return true;
          sawFirst = true;
          entry.carried = firstBytesKind(b);
          if (tlsOnly && entry.carried !== 'TLS') {
            entry.result = `cut: ${entry.carried} is not TLS`;
            client.destroy(); up.destroy();
            return false;
          }
          return true;
        };
        if (rest.length) { if (!noteFirst(rest)) return; entry.up += rest.length; up.write(rest); }
        client.on('data', (b) => { if (!noteFirst(b)) return; entry.up += b.length; if (!up.write(b)) client.pause(); });
        up.on('drain', () => client.resume());
        up.on('data', (b) => { entry.down += b.length; if (!client.write(b)) up.pause(); });
        client.on('drain', () => up.resume());
        client.resume();
      });
      up.on('error', (e) => { if (!entry.result) refuse('502 Bad Gateway', e.message); else client.destroy(); });
      client.on('close', () => up.destroy());
      up.on('close', () => { entry.ms = Date.now() - t0; if (!entry.carried) entry.carried = 'nothing'; client.destroy(); });
    };
    client.on('data', onData);
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve); });
  return {
    log,
    close: () => Promise.race([
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
      new Promise((resolve) => setTimeout(resolve, 5000).unref()),
    ]),
  };
}
