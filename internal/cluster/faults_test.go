package cluster

import (
	"bytes"
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/faultproxy"
	"github.com/ledgermq/ledgermq/wire"
)

// With Options.Proxies, clients reach a node through its API proxy, and
// node i reaches node j through the proxy (i, j), which --peers names.
func TestProxiesLayout(t *testing.T) {
	g, err := New(Options{Bin: "/bin/true", Nodes: 3, Dir: t.TempDir(), Proxies: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, n := range g.Nodes() {
		api, err := g.APIProxy(n.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n.API != api.Addr() || api.Target() != n.ListenAPI || n.API == n.ListenAPI {
			t.Fatalf("%s: API %s, listen %s, proxy %s -> %s", n.ID, n.API, n.ListenAPI, api.Addr(), api.Target())
		}
		if g.ByAPI(n.API) != n.ID || g.ByAPI(n.ListenAPI) != n.ID {
			t.Fatalf("ByAPI does not find %s by both addresses", n.ID)
		}
		if !slices.Contains(n.Args, "--listen") || n.Args[slices.Index(n.Args, "--listen")+1] != n.ListenAPI {
			t.Fatalf("%s does not listen on %s: %v", n.ID, n.ListenAPI, n.Args)
		}
		peers := strings.Split(n.Args[slices.Index(n.Args, "--peers")+1], ",")
		if len(peers) != 3 {
			t.Fatalf("%s: --peers %v", n.ID, peers)
		}
		for _, m := range g.Nodes() {
			want := m.Raft
			if m.ID != n.ID {
				l, err := g.Link(n.ID, m.ID)
				if err != nil {
					t.Fatal(err)
				}
				if l.Target() != m.Raft {
					t.Fatalf("link %s->%s targets %s, want %s", n.ID, m.ID, l.Target(), m.Raft)
				}
				want = l.Addr()
			}
			if !slices.Contains(peers, m.ID+"="+want) {
				t.Fatalf("%s's --peers %v lacks %s=%s", n.ID, peers, m.ID, want)
			}
		}
	}
	if _, err := g.Link("n1", "n1"); err == nil {
		t.Fatal("a link from a node to itself")
	}
	if err := g.Isolate("n9", Outbound); err == nil {
		t.Fatal("isolated an unknown node")
	}
	plain, err := New(Options{Bin: "/bin/true", Nodes: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Blackhole("n1"); err == nil || plain.Heal() == nil {
		t.Fatal("faults on a group without proxies")
	}
}

// Isolate(Outbound) cuts exactly the packets a node sends: the Up side of
// its own links and the Down side of the links towards it.
func TestIsolateDirections(t *testing.T) {
	g, err := New(Options{Bin: "/bin/true", Nodes: 3, Dir: t.TempDir(), Proxies: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	want := func(from, to string, dir faultproxy.Direction, f faultproxy.Fault) {
		t.Helper()
		l, err := g.Link(from, to)
		if err != nil {
			t.Fatal(err)
		}
		if got, _, _ := l.Fault(dir); got != f {
			t.Fatalf("link %s->%s %s is %s, want %s", from, to, dir, got, f)
		}
	}
	if err := g.Isolate("n1", Outbound); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"n2", "n3"} {
		want("n1", o, faultproxy.Up, faultproxy.Blackhole)
		want("n1", o, faultproxy.Down, faultproxy.Pass)
		want(o, "n1", faultproxy.Down, faultproxy.Blackhole)
		want(o, "n1", faultproxy.Up, faultproxy.Pass)
	}
	want("n2", "n3", faultproxy.Up, faultproxy.Pass)
	if err := g.Heal(); err != nil {
		t.Fatal(err)
	}
	want("n1", "n2", faultproxy.Up, faultproxy.Pass)
	if err := g.Cut("n2", "n3"); err != nil {
		t.Fatal(err)
	}
	want("n2", "n3", faultproxy.Down, faultproxy.Blackhole)
	want("n3", "n2", faultproxy.Up, faultproxy.Blackhole)
	want("n1", "n2", faultproxy.Up, faultproxy.Pass)
}

// statusWithin asks node id for its cluster status through its API proxy,
// giving up after d.
func statusWithin(g *Group, id string, d time.Duration) (wire.ClusterStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return g.Status(ctx, id)
}

// The leader of three real brokers behind proxies is blackholed for 3 s:
// the other two elect a new leader, which a follower reports through its
// own proxy; after the heal the old leader follows the new one.
func TestBlackholeLeaderEndToEnd(t *testing.T) {
	g, err := Start(Options{Bin: brokerBin, Nodes: 3, Dir: t.TempDir(), Proxies: true, LogLevel: "info"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		g.Close()
		if t.Failed() {
			var b bytes.Buffer
			g.Tail(&b, 40)
			t.Log(b.String())
		}
	}()
	ctx := context.Background()
	if err := g.WaitReachable(ctx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	old, err := g.WaitLeader(ctx, "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	if err := g.Blackhole(old); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	// The blackholed node is silent to clients too.
	if _, err := statusWithin(g, old, 300*time.Millisecond); err == nil {
		t.Fatal("the blackholed leader answered through its proxy")
	}
	var others []string
	for _, id := range g.IDs() {
		if id != old {
			others = append(others, id)
		}
	}
	newLeader, err := poll(ctx, 3*time.Second, "a new leader", func() (string, bool, error) {
		for _, id := range others {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			l, err := g.LeaderSeenBy(sctx, id)
			cancel()
			if err == nil && l != "" && l != old {
				return l, true, nil
			}
		}
		return "", false, g.Check()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("blackholed leader %s; %s leads after %s", old, newLeader, time.Since(cut).Round(time.Millisecond))
	// The blackholed leader does not answer; the newest term names the new
	// leader, which confirms it.
	if l, err := g.WaitNewestLeader(ctx, old, 500*time.Millisecond, 3*time.Second); err != nil || l != newLeader {
		t.Fatalf("newest leader while %s is blackholed: %q, %v; want %s", old, l, err, newLeader)
	}

	time.Sleep(time.Until(cut.Add(3 * time.Second))) // the fault's own duration
	if err := g.Heal(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	_, err = poll(ctx, 15*time.Second, old+" to follow "+newLeader, func() (struct{}, bool, error) {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		l, err := g.LeaderSeenBy(sctx, old)
		cancel()
		return struct{}{}, err == nil && l == newLeader, g.Check()
	})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := g.WaitLeader(ctx, "", 2*time.Second); err != nil || l != newLeader {
		t.Fatalf("leader after the heal: %q, %v; want %s", l, err, newLeader)
	}
	t.Logf("%s follows %s %s after the heal", old, newLeader, time.Since(healed).Round(time.Millisecond))
	if err := g.WaitCaughtUp(ctx, old, 0, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// A client through Group.HTTPClient reaches a node's advertised (own)
// API address through its proxy.
func TestHTTPClientDialsThroughProxies(t *testing.T) {
	g, err := New(Options{Bin: "/bin/true", Nodes: 1, Dir: t.TempDir(), Proxies: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	n := g.Nodes()[0]
	p, _ := g.APIProxy(n.ID)
	ln, err := net.Listen("tcp", n.ListenAPI)
	if err != nil {
		t.Skipf("the reserved port was taken: %v", err)
	}
	defer ln.Close()
	c, err := g.DialContext(context.Background(), "tcp", n.ListenAPI)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != p.Addr() {
		t.Fatalf("dialed %s, want the proxy %s", c.RemoteAddr(), p.Addr())
	}
}
