// What carries a PeerConnection, read from getStats: the selected candidate pair's transport as a
// person would name it (UDP, TCP, TURN-UDP/TCP/TLS), and, between two reads, bitrate and loss.

/** selectedPair returns {pair, local, remote} of the selected ICE candidate pair, or null. */
export function selectedPair(report) {
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  if (!pair) {
    // Some browsers expose no transport stats: fall back to the nominated, succeeded pair.
    report.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  if (!pair) return null;
  return { pair, local: report.get(pair.localCandidateId), remote: report.get(pair.remoteCandidateId) };
}

/**
 * pathName names the transport of a selected pair from this browser's side: a relayed local
 * candidate is TURN over whatever reached the TURN server (relayProtocol), otherwise the pair's
 * own protocol (tcp: ICE-TCP straight to the server).
 */
export function pathName(sel) {
  if (!sel?.local) return '';
  const l = sel.local;
  if (l.candidateType === 'relay') return `TURN-${(l.relayProtocol || 'udp').toUpperCase()}`;
  return (l.protocol || sel.remote?.protocol || 'udp').toUpperCase();
}

/**
 * InboundMeter turns successive getStats reports of a receiving PeerConnection into the numbers a
 * tile shows. Call sample() every second or two.
 */
export class InboundMeter {
  constructor(pc) {
    this.pc = pc;
    this.prev = null;
    this.samples = 0;
  }

  async sample() {
    if (!this.pc || this.pc.connectionState === 'closed') return null;
    const report = await this.pc.getStats();
    let bytes = 0, received = 0, lost = 0, framesDecoded = 0, width = 0, height = 0, fps = 0;
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      bytes += s.bytesReceived || 0;
      received += s.packetsReceived || 0;
      lost += Math.max(0, s.packetsLost || 0);
      if (s.kind === 'video') {
        framesDecoded += s.framesDecoded || 0;
        width = s.frameWidth || width;
        height = s.frameHeight || height;
        fps = s.framesPerSecond || fps;
      }
    });
    const now = performance.now();
    const out = { path: pathName(selectedPair(report)), framesDecoded, width, height, fps, kbps: 0, loss: 0 };
    if (this.prev) {
      const dt = (now - this.prev.now) / 1000;
      out.kbps = dt > 0 ? Math.max(0, ((bytes - this.prev.bytes) * 8) / 1000 / dt) : 0;
      const dr = received - this.prev.received, dl = lost - this.prev.lost;
      out.loss = dr + dl > 0 ? (100 * dl) / (dr + dl) : 0;
    }
    this.prev = { now, bytes, received, lost };
    this.samples++;
    return out;
  }
}

/** formatKbps: "820 kbps", "1.4 Mbps". */
export function formatKbps(k) {
  return k >= 1000 ? `${(k / 1000).toFixed(1)} Mbps` : `${Math.round(k)} kbps`;
}
