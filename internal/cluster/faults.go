package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ledgermq/ledgermq/internal/faultproxy"
	"github.com/ledgermq/ledgermq/internal/netlab"
)

// The fault lab. With Options.Proxies every byte between a client and a
// node, and between two nodes, goes through a faultproxy.Proxy:
//
//   - one proxy in front of each node's API: Node.API is the proxy, the
//     node listens on Node.ListenAPI;
//   - one proxy per directed pair of nodes (i, j), which node i dials to
//     reach node j (Raft RPCs and the peer protocol alike). Node i's
//     --peers names itself by its own Raft address and every other node j
//     by the proxy (i, j). Replies travel back on the same connection, so
//     "packets from i to j" are the Up direction of proxy (i, j) and the
//     Down direction of proxy (j, i).
//
// The nodes therefore bootstrap with different addresses for the same
// server ids. hashicorp/raft (v1.8.0) accepts that: it identifies servers
// by id (votes, pre-votes, the quorum, "is the candidate in my
// configuration" all compare ids); it dials the address in its own latest
// configuration; the address a sender puts in an RPC header is its own
// listener's address, compared only with other header addresses (the
// known leader against a candidate), which every node sees alike. The
// bootstrap entry is index 1, term 1 on every node, so AppendEntries'
// consistency check never replaces it and each node keeps its own view.
// What would break the layout: a membership change (AddVoter,
// RemoveServer) or an InstallSnapshot replicates the leader's view of the
// addresses to every node, after which nodes dial the leader's proxies.
// Neither happens in these tests (TrailingLogs keeps the whole log, so
// the leader never sends a snapshot).
//
// Two leaks around the proxies, which need broker changes to close:
//   - a node advertises its listen address as its API address, so
//     GET /v1/cluster's leader_api and api_addr (and NOT_LEADER hints)
//     name Node.ListenAPI: an SDK that follows them bypasses the proxy.
//     Clients should use Group.HTTPClient, which dials the proxy for
//     either address.
//   - replication's snapshot restore asks the leader first at the address
//     from raft's RPC header (its real Raft listener), not through a
//     proxy.

// faults holds the proxies of a Group.
type faults struct {
	logFile *os.File                     // nil when proxies log to Options.Output
	api     map[string]*faultproxy.Proxy // by node id
	links   map[[2]string]*faultproxy.Proxy
}

// addProxies starts the proxies and points every node's --peers at them.
func (g *Group) addProxies() (err error) {
	f := &faults{api: map[string]*faultproxy.Proxy{}, links: map[[2]string]*faultproxy.Proxy{}}
	g.faults = f
	defer func() {
		if err != nil {
			g.closeProxies()
		}
	}()
	out := g.opts.Output
	if out == nil {
		if f.logFile, err = os.OpenFile(filepath.Join(g.opts.Dir, "faults.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			return fmt.Errorf("cluster: fault proxy log: %w", err)
		}
		out = f.logFile
	}
	logger := slog.New(slog.NewTextHandler(out, nil))
	newProxy := func(name, target string) (*faultproxy.Proxy, error) {
		p, err := faultproxy.New(faultproxy.Config{Target: target, Name: name, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		return p, nil
	}
	for i := range g.nodes {
		n := &g.nodes[i]
		p, err := newProxy(n.ID+"-api", n.ListenAPI)
		if err != nil {
			return err
		}
		f.api[n.ID] = p
		n.API = p.Addr()
	}
	for i := range g.nodes {
		from := &g.nodes[i]
		var peers []string
		for _, to := range g.nodes {
			if to.ID == from.ID {
				peers = append(peers, to.ID+"="+to.Raft)
				continue
			}
			p, err := newProxy(from.ID+"->"+to.ID, to.Raft)
			if err != nil {
				return err
			}
			f.links[[2]string{from.ID, to.ID}] = p
			peers = append(peers, to.ID+"="+p.Addr())
		}
		for k := range from.Args {
			if from.Args[k] == "--peers" && k+1 < len(from.Args) {
				from.Args[k+1] = strings.Join(peers, ",")
				break
			}
		}
	}
	return nil
}

func (g *Group) closeProxies() {
	f := g.faults
	if f == nil {
		return
	}
	for _, p := range f.api {
		p.Close()
	}
	for _, p := range f.links {
		p.Close()
	}
	if f.logFile != nil {
		f.logFile.Close()
	}
}

var errNoProxies = errors.New("cluster: the group has no fault proxies (Options.Proxies) or namespaces (Options.Netns)")

// withLab calls f for a known node id of the namespace lab.
func (g *Group) withLab(id string, f func(string) error) error {
	if _, ok := g.node(id); !ok {
		return fmt.Errorf("cluster: unknown node %q", id)
	}
	return f(id)
}

// APIProxy returns the proxy in front of node id's API.
func (g *Group) APIProxy(id string) (*faultproxy.Proxy, error) {
	if g.faults == nil {
		return nil, errNoProxies
	}
	p := g.faults.api[id]
	if p == nil {
		return nil, fmt.Errorf("cluster: unknown node %q", id)
	}
	return p, nil
}

// Link returns the proxy node from dials to reach node to: its Up
// direction carries from's packets to to, its Down direction to's replies.
func (g *Group) Link(from, to string) (*faultproxy.Proxy, error) {
	if g.faults == nil {
		return nil, errNoProxies
	}
	p := g.faults.links[[2]string{from, to}]
	if p == nil {
		return nil, fmt.Errorf("cluster: no link from %q to %q", from, to)
	}
	return p, nil
}

// Flow is a direction of packets relative to one node.
type Flow = netlab.Flow

// The flows.
const (
	Outbound = netlab.Outbound // packets the node sends
	Inbound  = netlab.Inbound  // packets the node receives
)

// peerLinks calls f for every link between id and another node with the
// proxy directions that carry flow (Outbound, Inbound, or both for 0).
func (g *Group) peerLinks(id string, flow Flow, f func(*faultproxy.Proxy, faultproxy.Direction)) error {
	if _, ok := g.node(id); !ok {
		return fmt.Errorf("cluster: unknown node %q", id)
	}
	if g.faults == nil {
		return errNoProxies
	}
	for _, n := range g.nodes {
		if n.ID == id {
			continue
		}
		out, in := g.faults.links[[2]string{id, n.ID}], g.faults.links[[2]string{n.ID, id}]
		switch flow {
		case Outbound:
			f(out, faultproxy.Up)
			f(in, faultproxy.Down)
		case Inbound:
			f(out, faultproxy.Down)
			f(in, faultproxy.Up)
		default:
			f(out, faultproxy.Both)
			f(in, faultproxy.Both)
		}
	}
	return nil
}

// Blackhole makes every packet to and from node id vanish, its API's and
// its peers', as a powered-off host or a dropped route would: no data, no
// FIN, no RST. The process keeps running.
func (g *Group) Blackhole(id string) error {
	if g.lab != nil {
		return g.withLab(id, g.lab.Blackhole)
	}
	p, err := g.APIProxy(id)
	if err != nil {
		return err
	}
	p.Blackhole(faultproxy.Both)
	return g.Partition(id)
}

// Partition blackholes node id's peer links in both directions; clients
// still reach its API.
func (g *Group) Partition(id string) error {
	if g.lab != nil {
		return g.withLab(id, func(id string) error { return g.lab.Isolate(id, 0) })
	}
	return g.peerLinks(id, 0, (*faultproxy.Proxy).Blackhole)
}

// Isolate blackholes one flow of node id's peer traffic: Outbound drops
// every packet it sends to a peer (requests and replies), Inbound every
// packet a peer sends it. Its API is untouched.
func (g *Group) Isolate(id string, flow Flow) error {
	if flow != Outbound && flow != Inbound {
		return fmt.Errorf("cluster: isolate: unknown flow %d", flow)
	}
	if g.lab != nil {
		return g.withLab(id, func(id string) error { return g.lab.Isolate(id, flow) })
	}
	return g.peerLinks(id, flow, (*faultproxy.Proxy).Blackhole)
}

// Cut blackholes the links between nodes a and b in both directions.
func (g *Group) Cut(a, b string) error {
	if g.lab != nil {
		return g.withLab(a, func(a string) error { return g.withLab(b, func(b string) error { return g.lab.Cut(a, b) }) })
	}
	ab, err := g.Link(a, b)
	if err != nil {
		return err
	}
	ba, err := g.Link(b, a)
	if err != nil {
		return err
	}
	ab.Blackhole(faultproxy.Both)
	ba.Blackhole(faultproxy.Both)
	return nil
}

// Heal lets every proxy pass again. Connections that lost bytes to a
// blackhole stay dead (see faultproxy); the nodes notice through their own
// timeouts and reconnect.
func (g *Group) Heal() error {
	if g.lab != nil {
		return g.lab.Heal()
	}
	if g.faults == nil {
		return errNoProxies
	}
	for _, p := range g.faults.api {
		p.Pass()
	}
	for _, p := range g.faults.links {
		p.Pass()
	}
	return nil
}

// DialContext dials addr, through the node's API proxy when addr is a
// node's own API address (what the brokers advertise), so that clients
// following leader hints stay behind the fault proxies.
func (g *Group) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	for _, n := range g.nodes {
		if addr == n.ListenAPI {
			addr = n.API
			break
		}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// HTTPClient returns an HTTP client that reaches the nodes only through
// their API proxies (see DialContext), with the given overall timeout (0:
// none), for client.WithHTTPClient.
func (g *Group) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: g.DialContext, MaxIdleConnsPerHost: 16,
		TLSClientConfig: g.tlsCfg}}
}

// LeaderSeenBy asks node id, through its API proxy, which node it follows
// (its own id when it leads, "" when it knows no leader): GET /v1/leader,
// answered from the node's local state without asking its peers.
func (g *Group) LeaderSeenBy(ctx context.Context, id string) (string, error) {
	lv, err := g.LeaderView(ctx, id)
	if err != nil {
		return "", err
	}
	if lv.Leader == "" {
		return "", nil
	}
	if _, ok := g.node(lv.Leader); !ok {
		return "", fmt.Errorf("cluster: %s names an unknown leader %q", id, lv.Leader)
	}
	return lv.Leader, nil
}
