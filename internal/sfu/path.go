package sfu

import (
	"net"
	"strconv"

	"github.com/pion/webrtc/v4"
)

// Path is the ICE candidate pair that carries a connection, as seen from the server: what a person
// debugging "I only see myself" needs (host/srflx/prflx/relay, UDP or TCP, and from where).
type Path struct {
	// LocalType and RemoteType are ICE candidate types: host, srflx, prflx or relay.
	LocalType  string
	RemoteType string
	// Protocol is udp or tcp (ICE-TCP, or a TURN relay reaching us over our own UDP port: udp).
	Protocol string
	// Local and Remote are ip:port.
	Local  string
	Remote string
	// ViaTURN is set when Remote is a relayed address of our own embedded TURN server: the browser
	// reaches us over TURN/TCP or TURN/TLS on the shared TCP port.
	ViaTURN bool
}

// String is the compact form used in logs, e.g. "udp host→prflx 10.0.0.5:50000".
func (p Path) String() string {
	if p.Protocol == "" {
		return "none"
	}
	s := p.Protocol + " " + p.LocalType + "→" + p.RemoteType + " " + p.Remote
	if p.ViaTURN {
		s += " (via embedded TURN)"
	}
	return s
}

// selectedPath reads the pair pion's ICE agent selected; zero Path before connection.
func selectedPath(pc *webrtc.PeerConnection) Path {
	ice := iceTransport(pc)
	if ice == nil {
		return Path{}
	}
	pair, err := ice.GetSelectedCandidatePair()
	if err != nil {
		return Path{}
	}
	return pathOf(pair)
}

// watchPath calls f (if set) with every pair ICE selects for pc: the first at connection, then
// each switch, e.g. when Chromium moves from a TURN relay to ICE-TCP after connecting. pion calls
// it from its notifier goroutine, never from the agent's loop.
func watchPath(pc *webrtc.PeerConnection, f func(Path)) {
	ice := iceTransport(pc)
	if f == nil || ice == nil {
		return
	}
	ice.OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
		if p := pathOf(pair); p.Protocol != "" {
			f(p)
		}
	})
}

func iceTransport(pc *webrtc.PeerConnection) *webrtc.ICETransport {
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil {
		return nil
	}
	return sctp.Transport().ICETransport()
}

func pathOf(pair *webrtc.ICECandidatePair) Path {
	if pair == nil || pair.Local == nil || pair.Remote == nil {
		return Path{}
	}
	return Path{
		LocalType: pair.Local.Typ.String(), RemoteType: pair.Remote.Typ.String(),
		Protocol: pair.Local.Protocol.String(),
		Local:    net.JoinHostPort(pair.Local.Address, strconv.Itoa(int(pair.Local.Port))),
		Remote:   net.JoinHostPort(pair.Remote.Address, strconv.Itoa(int(pair.Remote.Port))),
	}
}

// Path reports the candidate pair carrying the publisher's media.
func (p *Publisher) Path() Path {
	p.mu.Lock()
	pc := p.pc
	p.mu.Unlock()
	if pc == nil {
		return Path{}
	}
	return selectedPath(pc)
}

// Path reports the candidate pair carrying the subscription.
func (sub *Subscriber) Path() Path { return selectedPath(sub.pc) }
