package sfu

import (
	"errors"
	"log/slog"
	"net"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// IngestRequest asks for a publisher fed with plain RTP on loopback instead of a PeerConnection:
// an RTSP camera pulled by a local process (internal/ipcam) that sends H.264 and Opus there.
type IngestRequest struct {
	Video, Audio bool
	Log          *slog.Logger
	// Stop, optional, is called when the publisher closes: it ends the feeding process.
	Stop func()
	// OnSubscribers, optional, is called whenever a subscriber or a tap comes or goes (the count
	// is Publisher.Subscribers); it must not block.
	OnSubscribers func()
}

// IngestAddrs are where the feeding process sends each kind's RTP (nil for a kind not asked for).
type IngestAddrs struct {
	Video, Audio *net.UDPAddr
}

// h264Ingest is the codec an ingested video is announced with: Constrained Baseline, the profile
// every browser decodes; the feeding process makes sure the stream fits it.
var h264Ingest = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
	SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}

// ingestMaxDatagram bounds what one read takes: RTP from the feeder fits an Ethernet MTU; more
// is not RTP we asked for.
const ingestMaxDatagram = 1500

// Ingest creates a publisher whose tracks arrive as RTP datagrams on loopback sockets it binds, one
// per kind. Subscribers attach to it like to any publisher. Keyframes cannot be requested (there is
// no feedback path): the feeder sends them periodically. The sockets are bound on 127.0.0.1, which
// only processes of this host can reach.
func (s *SFU) Ingest(req IngestRequest) (*Publisher, IngestAddrs, error) {
	if !req.Video && !req.Audio {
		return nil, IngestAddrs{}, errors.New("nothing to ingest")
	}
	log := req.Log
	if log == nil {
		log = s.log
	}
	p := &Publisher{sfu: s, log: log, stop: make(chan struct{})}
	var addrs IngestAddrs
	var conns []*net.UDPConn
	fail := func(err error) (*Publisher, IngestAddrs, error) {
		for _, c := range conns {
			_ = c.Close()
		}
		return nil, IngestAddrs{}, err
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if (kind == webrtc.RTPCodecTypeVideo && !req.Video) || (kind == webrtc.RTPCodecTypeAudio && !req.Audio) {
			continue
		}
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return fail(err)
		}
		conns = append(conns, c)
		if kind == webrtc.RTPCodecTypeVideo {
			p.video, addrs.Video = newForwarder(kind, h264Ingest, log), c.LocalAddr().(*net.UDPAddr)
		} else {
			p.audio, addrs.Audio = newForwarder(kind, opus.RTPCodecCapability, log), c.LocalAddr().(*net.UDPAddr)
		}
	}
	p.ingest, p.stopIngest = conns, req.Stop
	for _, f := range []*forwarder{p.video, p.audio} {
		if f != nil {
			f.onSubs = req.OnSubscribers
		}
	}
	for i, c := range conns {
		f := p.video
		if !req.Video || i == 1 {
			f = p.audio
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			f.readIngest(c)
		}()
	}
	s.track(p, nil)
	return p, addrs, nil
}

// readIngest forwards the RTP arriving on c until it is closed. A new SSRC is a new track (the
// feeder restarted after the camera dropped): its numbering starts over, as after reconnectStream.
func (f *forwarder) readIngest(c *net.UDPConn) {
	buf := make([]byte, ingestMaxDatagram)
	var pkt rtp.Packet
	var loss seqLoss
	for {
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if pkt.SSRC != f.ssrc.Load() {
			f.ssrc.Store(pkt.SSRC)
			f.newTrack()
			loss = seqLoss{}
		}
		f.forward(&pkt, buf[:n], &loss)
	}
}

// Subscribers is how many subscribers and taps receive the stream's tracks, summed over them.
func (p *Publisher) Subscribers() int {
	n := 0
	for _, f := range []*forwarder{p.video, p.audio} {
		if f != nil {
			n += len(*f.subs.Load())
		}
	}
	return n
}
