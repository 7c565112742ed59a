package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/app"
	"github.com/parley/parley/internal/cascade"
	"github.com/parley/parley/internal/cluster"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/session"
	"github.com/parley/parley/internal/sfu"
	"github.com/parley/parley/internal/signaling"
)

var (
	_ api.Model       = clusterREST{}
	_ app.Rooms       = clusterApp{}
	_ signaling.Model = clusterJoins{}
)

// newCluster joins the cluster of PARLEY_REDIS_URL as PARLEY_NODE_ID, announcing the public media
// addresses. It fails when Redis cannot be reached, so a node never serves alone by mistake.
func newCluster(cfg *config.Config, announce []netip.Addr, local []netip.AddrPort, m *session.Manager, log *slog.Logger) (*cluster.Node, error) {
	var media []string
	for _, a := range announce {
		media = append(media, net.JoinHostPort(a.String(), strconv.Itoa(cfg.Media.Port)))
	}
	if len(announce) == 0 { // dev mode or no public address known: what is bound
		for _, a := range local {
			media = append(media, a.String())
		}
	}
	return cluster.New(context.Background(), cluster.Config{
		RedisURL: cfg.Cluster.RedisURL, NodeID: cfg.Cluster.NodeID, MediaAddrs: media,
		Load:            func() int { return m.ParticipantCount() },
		GarbageInterval: cfg.Session.GarbageInterval, GarbageThreshold: cfg.Session.GarbageThreshold,
	}, m, log.With("component", "cluster"))
}

// clusterJoins is signaling's Model on the cluster: a token made on any node joins here.
type clusterJoins struct{ n *cluster.Node }

func (c clusterJoins) Join(id session.SessionID, token string, j session.JoinInfo, sink session.Sink) (signaling.Participant, session.JoinResult, error) {
	p, res, err := c.n.Join(id, token, j, sink)
	if err != nil {
		return nil, res, err // not a typed nil inside the interface
	}
	return p, res, nil
}

// Restore takes over a participant of a lost node whose `connect` reached this node.
func (c clusterJoins) Restore(rpc, ip string, sink session.Sink) (signaling.Participant, []session.StreamID, error) {
	p, subs, err := c.n.Restore(rpc, ip, sink)
	if err != nil {
		return nil, nil, err
	}
	return p, subs, nil
}

var _ signaling.Restorer = clusterJoins{}

// clusterREST is the REST API's Model on the cluster: any node answers for every session.
type clusterREST struct{ *cluster.Node }

func (c clusterREST) Room(id session.SessionID) api.Room { return c.Node.Room(id) }

// clusterApp is the app's Rooms on the cluster.
type clusterApp struct{ *cluster.Node }

func (c clusterApp) Room(id session.SessionID) app.Room { return c.Node.Room(id) }

// clusterRemote is the session model's way to other nodes' participants (session.Remote): their
// media through the inter-node links, moderation through the cluster's messages.
type clusterRemote struct {
	*cluster.Node
	links *cascade.Links
}

var _ session.Remote = clusterRemote{}

// Pull brings another node's stream here, once however many subscribe to it.
func (c clusterRemote) Pull(ctx context.Context, node string, _ session.SessionID, sid session.StreamID) (session.PublishedMedia, error) {
	pub, release, err := c.links.Pull(ctx, node, string(sid))
	if err != nil {
		return nil, err
	}
	return pulledMedia{publishedMedia{pub}, release}, nil
}

// linkBus carries the inter-node links' signalling on the cluster's message bus.
type linkBus struct{ n *cluster.Node }

func (b linkBus) Send(ctx context.Context, node string, payload []byte) error {
	return b.n.SendLink(ctx, node, payload)
}

// newLinks makes this node's inter-node media links: they send the streams of this node's
// participants that other nodes pull.
func newLinks(cfg *config.Config, n *cluster.Node, media *sfu.SFU, m *session.Manager, log *slog.Logger) *cascade.Links {
	local := func(id string) (*sfu.Publisher, error) {
		pm, err := m.LocalStream(session.StreamID(id))
		if err != nil {
			return nil, err
		}
		p, ok := pm.(publishedMedia)
		if !ok {
			return nil, fmt.Errorf("stream %s is not the SFU's", id)
		}
		return p.Publisher, nil
	}
	l := cascade.New(cascade.Config{NodeID: n.ID(), Secret: cfg.Secret}, media, linkBus{n}, local, log.With("component", "cascade"))
	n.OnLink(l.Handle)
	return l
}

// clusterConfig is what GET /openvidu/api/config adds in a cluster: this node, the Redis it uses
// and the live nodes with their media addresses and load.
func (s *Server) clusterConfig() map[string]any {
	ctx, cancel := context.WithTimeout(context.Background(), cluster.DefaultTimeout)
	defer cancel()
	c := map[string]any{"node": s.cluster.ID(), "redis": s.cluster.Redis()}
	if nodes, err := s.cluster.Nodes(ctx); err == nil {
		c["nodes"] = nodes
	} else {
		c["nodes"] = nil
		c["error"] = "the cluster's shared state (Redis) is unavailable"
	}
	return map[string]any{"PARLEY_CLUSTER": c}
}
