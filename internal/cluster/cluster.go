// Package cluster runs a development group of N broker processes on
// 127.0.0.1 for end-to-end tests and benchmarks: it reserves the ports,
// starts, kills, pauses and restarts nodes, and finds the leader through
// GET /v1/cluster.
package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/internal/devcerts"
	"github.com/ledgermq/ledgermq/internal/netlab"
	"github.com/ledgermq/ledgermq/internal/proc"
	"github.com/ledgermq/ledgermq/internal/testnet"
	"github.com/ledgermq/ledgermq/wire"
)

// Options configures a Group.
type Options struct {
	Bin      string   // the broker binary, e.g. from proc.Build(ctx, dir, proc.Broker)
	Nodes    int      // group size, at least 1
	Dir      string   // parent of every node's data directory <Dir>/<id>
	LogLevel string   // --log-level of every node; "" means warn
	Args     []string // more flags for every node
	// Output receives every node's output; nil appends each node's output
	// to <Dir>/<id>.log.
	Output io.Writer
	// Proxies puts a fault proxy in front of every node's API and one on
	// every directed peer link (see faults.go); fault proxies log to
	// Output, or to <Dir>/faults.log.
	Proxies bool
	// Netns runs every node in its own network namespace with its own
	// address (API port 7001, Raft port 8001), and makes the faults
	// nftables drop rules (internal/netlab); it needs root, ip and nft.
	// Not with Proxies.
	Netns bool
	// TLS runs every node with the bundle's certificate of its id
	// (devcerts.WriteBundle with the ids n1..nN) on the API (HTTPS, client
	// certificates verified) and the Raft port (mutual TLS). The Group's
	// HTTP clients then speak HTTPS, trust the bundle's CA and present
	// its user "admin" certificate if it has one (tls.go).
	TLS *devcerts.Bundle
	// Kafka gives every node a Kafka-protocol listener (--kafka-listen):
	// a free 127.0.0.1 port, or port 9092 on its own address with Netns.
	Kafka bool
}

// Node is one member's fixed settings.
type Node struct {
	ID   string
	API  string // host:port of the HTTP API (its fault proxy with Options.Proxies)
	Raft string // host:port of the replication listener
	// Kafka is the host:port of its Kafka listener ("" without
	// Options.Kafka).
	Kafka string
	// ListenAPI is the address the node's API listens on and advertises:
	// API, unless a fault proxy stands in front of it.
	ListenAPI string
	Dir       string
	LogPath   string // "" when Options.Output is set
	Args      []string
}

// Group is a set of broker processes; a node is down until started and
// after it is killed. Its methods are safe for concurrent use.
type Group struct {
	opts  Options
	nodes []Node
	hc    *http.Client
	// tlsCfg is the clients' TLS configuration with Options.TLS, else nil.
	tlsCfg *tls.Config

	mu    sync.Mutex
	procs map[string]*proc.Process // running nodes by id

	faults *faults     // nil without Options.Proxies
	lab    *netlab.Lab // nil without Options.Netns
}

// pollEvery is how often the Wait methods ask again.
const pollEvery = 25 * time.Millisecond

// New reserves ports and makes the data directories of an n-node group
// (ids n1..nN); it starts nothing.
func New(o Options) (*Group, error) {
	if o.Nodes < 1 || o.Bin == "" || o.Dir == "" {
		return nil, errors.New("cluster: Bin, Dir and Nodes >= 1 are required")
	}
	if o.Proxies && o.Netns {
		return nil, errors.New("cluster: Proxies and Netns exclude each other")
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	g := &Group{opts: o, procs: map[string]*proc.Process{}}
	if err := g.setupTLS(); err != nil {
		return nil, err
	}
	g.hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: g.tlsCfg}}
	addrs, err := g.addresses()
	if err != nil {
		return nil, err
	}
	var peers []string
	for i := range o.Nodes {
		peers = append(peers, fmt.Sprintf("n%d=%s", i+1, addrs[o.Nodes+i]))
	}
	for i := range o.Nodes {
		n := Node{ID: fmt.Sprintf("n%d", i+1), API: addrs[i], ListenAPI: addrs[i], Raft: addrs[o.Nodes+i]}
		if o.Kafka {
			n.Kafka = addrs[2*o.Nodes+i]
		}
		n.Dir = filepath.Join(o.Dir, n.ID)
		if o.Output == nil {
			n.LogPath = filepath.Join(o.Dir, n.ID+".log")
		}
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			g.Close()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		n.Args = []string{"--id", n.ID, "--data-dir", n.Dir, "--listen", n.API, "--raft-listen", n.Raft, "--log-level", o.LogLevel}
		if o.Nodes > 1 {
			n.Args = append(n.Args, "--peers", strings.Join(peers, ","))
		}
		if n.Kafka != "" {
			n.Args = append(n.Args, "--kafka-listen", n.Kafka)
		}
		n.Args = append(n.Args, g.tlsArgs(n.ID)...)
		if o.Netns {
			// The lab's addresses are not loopback, but reachable from this
			// host only: the broker's secure-by-default check would refuse
			// them without TLS and --auth.
			n.Args = append(n.Args, "--insecure")
		}
		n.Args = append(n.Args, o.Args...)
		g.nodes = append(g.nodes, n)
	}
	if o.Proxies {
		if err := g.addProxies(); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// addresses returns the API addresses of nodes 1..N, then their Raft
// addresses, then (Options.Kafka) their Kafka addresses: free 127.0.0.1
// ports, or each node's own address in the namespace lab.
func (g *Group) addresses() ([]string, error) {
	if !g.opts.Netns {
		addrs, err := testnet.Reserve(3 * g.opts.Nodes)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		return addrs, nil
	}
	var ids []string
	for i := range g.opts.Nodes {
		ids = append(ids, fmt.Sprintf("n%d", i+1))
	}
	lab, err := netlab.New(ids)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	g.lab = lab
	addrs := make([]string, 3*len(ids))
	for i, id := range ids { // every node on its own address, the same ports
		addrs[i] = lab.IP(id) + ":7001"
		addrs[len(ids)+i] = lab.IP(id) + ":8001"
		addrs[2*len(ids)+i] = lab.IP(id) + ":9092"
	}
	return addrs, nil
}

// Start is New followed by StartAll; on an error it kills what it started.
func Start(o Options) (*Group, error) {
	g, err := New(o)
	if err != nil {
		return nil, err
	}
	if err := g.StartAll(); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// Nodes returns every node's settings, in id order.
func (g *Group) Nodes() []Node { return append([]Node(nil), g.nodes...) }

// IDs returns the node ids, n1 first.
func (g *Group) IDs() []string {
	out := make([]string, len(g.nodes))
	for i, n := range g.nodes {
		out[i] = n.ID
	}
	return out
}

// APIs returns every node's API address, in id order.
func (g *Group) APIs() []string {
	out := make([]string, len(g.nodes))
	for i, n := range g.nodes {
		out[i] = n.API
	}
	return out
}

// API returns node id's API address, "" for an unknown id.
func (g *Group) API(id string) string {
	n, _ := g.node(id)
	return n.API
}

// KafkaAddrs returns every node's Kafka listener address (Options.Kafka),
// n1 first: the seed brokers of a Kafka client.
func (g *Group) KafkaAddrs() []string {
	var out []string
	for _, n := range g.nodes {
		if n.Kafka != "" {
			out = append(out, n.Kafka)
		}
	}
	return out
}

// ByAPI returns the id of the node serving the API address addr (its
// proxy's or its own), or "".
func (g *Group) ByAPI(addr string) string {
	for _, n := range g.nodes {
		if n.API == addr || n.ListenAPI == addr {
			return n.ID
		}
	}
	return ""
}

func (g *Group) node(id string) (Node, bool) {
	for _, n := range g.nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// StartAll starts every node that is down.
func (g *Group) StartAll() error {
	for _, n := range g.nodes {
		if err := g.StartNode(n.ID); err != nil {
			return err
		}
	}
	return nil
}

// StartNode starts node id with its fixed flags; a running node is left
// alone.
func (g *Group) StartNode(id string) error {
	n, ok := g.node(id)
	if !ok {
		return fmt.Errorf("cluster: unknown node %q", id)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.procs[id]; p != nil && p.Running() {
		return nil
	}
	spec := proc.Spec{Path: g.opts.Bin, Args: n.Args, Output: g.opts.Output, LogPath: n.LogPath}
	if g.lab != nil {
		spec.Path, spec.Args = g.lab.Command(id, g.opts.Bin, n.Args...)
	}
	p, err := proc.Start(spec)
	if err != nil {
		return fmt.Errorf("cluster: node %s: %w", id, err)
	}
	g.procs[id] = p
	return nil
}

// take removes node id's process from the running set.
func (g *Group) take(id string) *proc.Process {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.procs[id]
	delete(g.procs, id)
	return p
}

// Kill sends SIGKILL to node id and waits for its exit; a node that is
// down is left alone.
func (g *Group) Kill(id string) {
	if p := g.take(id); p != nil {
		p.Kill()
	}
}

// Terminate sends SIGTERM to node id and waits for its exit.
func (g *Group) Terminate(id string) {
	if p := g.take(id); p != nil {
		p.Terminate()
	}
}

// Pause stops node id with SIGSTOP; it stays in the running set.
func (g *Group) Pause(id string) error { return g.withProc(id, (*proc.Process).Pause) }

// Resume continues a paused node with SIGCONT.
func (g *Group) Resume(id string) error { return g.withProc(id, (*proc.Process).Resume) }

// Pid returns the process id of running node id, 0 if it is down.
func (g *Group) Pid(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.procs[id]; p != nil {
		return p.Pid()
	}
	return 0
}

func (g *Group) withProc(id string, f func(*proc.Process) error) error {
	g.mu.Lock()
	p := g.procs[id]
	g.mu.Unlock()
	if p == nil {
		return fmt.Errorf("cluster: node %q is not running", id)
	}
	return f(p)
}

// Close kills every node and closes the fault proxies or removes the
// namespaces.
func (g *Group) Close() {
	for _, n := range g.nodes {
		g.Kill(n.ID)
	}
	g.closeProxies()
	if g.lab != nil {
		g.lab.Close()
	}
}

// Running returns the ids of the nodes started and not killed, in id
// order.
func (g *Group) Running() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, n := range g.nodes {
		if g.procs[n.ID] != nil {
			out = append(out, n.ID)
		}
	}
	return out
}

// Check returns an error naming a started node that has exited on its
// own.
func (g *Group) Check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.nodes {
		if p := g.procs[n.ID]; p != nil && !p.Running() {
			return fmt.Errorf("cluster: broker %s exited: %v (log: %s)", n.ID, p.State(), n.LogPath)
		}
	}
	return nil
}

// Tail writes the last lines of every node's log file.
func (g *Group) Tail(w io.Writer, lines int) {
	for _, n := range g.nodes {
		data, err := os.ReadFile(n.LogPath)
		if n.LogPath == "" || err != nil || len(data) == 0 {
			continue
		}
		ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(w, "--- last lines of %s's log ---\n%s\n", n.ID, strings.Join(ls[max(0, len(ls)-lines):], "\n"))
	}
}

// Status asks node id for GET /v1/cluster.
func (g *Group) Status(ctx context.Context, id string) (wire.ClusterStatus, error) {
	var cs wire.ClusterStatus
	return cs, g.getJSON(ctx, id, "/v1/cluster", "cluster status", &cs)
}

// getJSON sends GET path to node id's API and decodes the JSON answer into
// out; what names the request in errors.
func (g *Group) getJSON(ctx context.Context, id, path, what string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", g.URL(id)+path, nil)
	if err != nil {
		return fmt.Errorf("%s of %s: %w", what, id, err)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s of %s: %w", what, id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s of %s: %s", what, id, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s of %s: %w", what, id, err)
	}
	return nil
}
