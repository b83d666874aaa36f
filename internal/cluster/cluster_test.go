package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/proc"
	"github.com/ledgermq/ledgermq/wire"
)

// brokerBin is the broker built once for every test of the package.
var brokerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cluster-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	brokerBin, err = proc.Build(ctx, dir, proc.Broker)
	cancel()
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// start starts an n-node group of the real broker, closed with the test;
// on a failure the nodes' last log lines are printed.
func start(t *testing.T, n int, args ...string) *Group {
	t.Helper()
	g, err := Start(Options{Bin: brokerBin, Nodes: n, Dir: t.TempDir(), Args: args})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Close()
		if t.Failed() {
			var b bytes.Buffer
			g.Tail(&b, 20)
			t.Log(b.String())
		}
	})
	return g
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Options
	}{
		{"no binary", Options{Nodes: 1, Dir: t.TempDir()}},
		{"no directory", Options{Bin: "/bin/true", Nodes: 1}},
		{"no nodes", Options{Bin: "/bin/true", Dir: t.TempDir()}},
		{"negative nodes", Options{Bin: "/bin/true", Nodes: -1, Dir: t.TempDir()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if g, err := New(c.o); err == nil || g != nil {
				t.Fatalf("New = %v, %v; want an error", g, err)
			}
		})
	}
}

// New lays out the nodes without starting anything: ids n1..nN, distinct
// ports, one data directory each, every Raft address in --peers.
func TestNewLayout(t *testing.T) {
	for _, c := range []struct {
		name      string
		nodes     int
		output    bool
		wantPeers bool
	}{
		{"one node, log files", 1, false, false},
		{"three nodes, log files", 3, false, true},
		{"three nodes, shared output", 3, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Bin: "/bin/true", Nodes: c.nodes, Dir: t.TempDir(), Args: []string{"--extra", "x"}}
			if c.output {
				o.Output = &bytes.Buffer{}
			}
			g, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			nodes := g.Nodes()
			if len(nodes) != c.nodes || len(g.IDs()) != c.nodes || len(g.APIs()) != c.nodes {
				t.Fatalf("%d nodes, ids %v, apis %v", len(nodes), g.IDs(), g.APIs())
			}
			seen := map[string]bool{}
			var peers []string
			for i, n := range nodes {
				if want := fmt.Sprintf("n%d", i+1); n.ID != want || g.IDs()[i] != want {
					t.Fatalf("node %d is %q, want %q", i, n.ID, want)
				}
				for _, a := range []string{n.API, n.Raft} {
					if seen[a] || !strings.HasPrefix(a, "127.0.0.1:") {
						t.Fatalf("address %q reused or not loopback", a)
					}
					seen[a] = true
				}
				if g.API(n.ID) != n.API || g.ByAPI(n.API) != n.ID || g.APIs()[i] != n.API {
					t.Fatalf("lookups of %s disagree", n.ID)
				}
				if st, err := os.Stat(n.Dir); err != nil || !st.IsDir() || n.Dir != filepath.Join(o.Dir, n.ID) {
					t.Fatalf("data directory %q: %v", n.Dir, err)
				}
				if (n.LogPath == "") != c.output {
					t.Fatalf("log path %q with shared output %v", n.LogPath, c.output)
				}
				if !slices.Equal(n.Args[len(n.Args)-2:], []string{"--extra", "x"}) || flagValue(n.Args, "--id") != n.ID ||
					flagValue(n.Args, "--listen") != n.API || flagValue(n.Args, "--raft-listen") != n.Raft || flagValue(n.Args, "--data-dir") != n.Dir ||
					flagValue(n.Args, "--log-level") != "warn" {
					t.Fatalf("args %q", n.Args)
				}
				peers = append(peers, n.ID+"="+n.Raft)
			}
			for _, n := range nodes {
				if got := flagValue(n.Args, "--peers"); (got != "") != c.wantPeers || (c.wantPeers && got != strings.Join(peers, ",")) {
					t.Fatalf("--peers %q, want %q", got, strings.Join(peers, ","))
				}
			}
			if g.API("n9") != "" || g.ByAPI("127.0.0.1:1") != "" || len(g.Running()) != 0 {
				t.Fatal("unknown node found, or nodes running before any start")
			}
			if err := g.StartNode("n9"); err == nil {
				t.Fatal("started an unknown node")
			}
			if g.Pause("n1") == nil || g.Resume("n1") == nil {
				t.Fatal("paused or resumed a node that is not running")
			}
			g.Kill("n1") // a node that is down is left alone
			g.Terminate("n1")
		})
	}
}

func flagValue(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// A node that exits on its own is reported by Check, and the wait for a
// leader gives up at once instead of at its timeout; its log is kept.
func TestWaitLeaderNoticesExit(t *testing.T) {
	g, err := Start(Options{Bin: brokerBin, Nodes: 1, Dir: t.TempDir(), Args: []string{"--no-such-flag"}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	_, err = g.WaitLeader(ctx, "", time.Minute)
	if err == nil || !strings.Contains(err.Error(), "broker n1 exited") {
		t.Fatalf("WaitLeader = %v, want the exit reported", err)
	}
	if g.Check() == nil || !slices.Equal(g.Running(), []string{"n1"}) {
		t.Fatalf("Check %v, running %v", g.Check(), g.Running())
	}
	var tail bytes.Buffer
	g.Tail(&tail, 5)
	if !strings.Contains(tail.String(), "no-such-flag") || !strings.Contains(tail.String(), "n1's log") {
		t.Fatalf("tail of the logs: %q", tail.String())
	}
}

func createTopic(ctx context.Context, t *testing.T, g *Group, name string) {
	t.Helper()
	body, _ := json.Marshal(wire.CreateTopicRequest{Name: name})
	_, err := poll(ctx, 10*time.Second, "topic "+name+" created", func() (struct{}, bool, error) {
		l := g.Leader(ctx)
		if l == "" {
			return struct{}{}, false, nil
		}
		resp, err := http.Post("http://"+g.API(l)+"/v1/topics", "application/json", bytes.NewReader(body))
		if err != nil {
			return struct{}{}, false, nil
		}
		resp.Body.Close()
		return struct{}{}, resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitTopic waits until node id serves topic name from its own state.
func waitTopic(ctx context.Context, t *testing.T, g *Group, id, name string) {
	t.Helper()
	_, err := poll(ctx, 10*time.Second, id+" to know topic "+name, func() (struct{}, bool, error) {
		resp, err := http.Get("http://" + g.API(id) + "/v1/topics/" + name)
		if err != nil {
			return struct{}{}, false, nil
		}
		resp.Body.Close()
		return struct{}{}, resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOneNodeGroup(t *testing.T) {
	ctx := context.Background()
	g := start(t, 1)
	l, err := g.WaitLeader(ctx, "", 15*time.Second)
	if err != nil || l != "n1" {
		t.Fatalf("WaitLeader = %q, %v", l, err)
	}
	if err := g.WaitReachable(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cs, err := g.Status(ctx, "n1")
	if err != nil || cs.Leader != "n1" || cs.LeaderAPI != g.API("n1") || cs.AnsweredBy != "n1" || len(cs.Nodes) != 1 || cs.Nodes[0].Role != "leader" {
		t.Fatalf("status %+v, %v", cs, err)
	}
	if reachable, ok := g.CaughtUp(ctx, "n1", 0); reachable || ok {
		t.Fatal("the leader reported catching up with itself")
	}
	createTopic(ctx, t, g, "kept")

	// A stopped node is down; started again it keeps its data.
	g.Terminate("n1")
	if len(g.Running()) != 0 || g.Leader(ctx) != "" {
		t.Fatalf("after SIGTERM: running %v, leader %q", g.Running(), g.Leader(ctx))
	}
	if _, err := g.Status(ctx, "n1"); err == nil {
		t.Fatal("a stopped node answered")
	}
	if err := g.StartNode("n1"); err != nil {
		t.Fatal(err)
	}
	if l, err := g.WaitLeader(ctx, "", 15*time.Second); err != nil || l != "n1" {
		t.Fatalf("after restart: WaitLeader = %q, %v", l, err)
	}
	waitTopic(ctx, t, g, "n1", "kept")
}

// A three-node group fails over: the leader is killed, another takes
// over and takes writes, and the killed node restarted catches up with
// them.
func TestThreeNodeFailover(t *testing.T) {
	ctx := context.Background()
	g := start(t, 3)
	if err := g.WaitReachable(ctx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	old, err := g.KillLeader(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(g.Running(), old) || len(g.Running()) != 2 {
		t.Fatalf("killed %s, running %v", old, g.Running())
	}
	l, err := g.WaitLeader(ctx, old, 15*time.Second)
	if err != nil || l == old || l == "" {
		t.Fatalf("new leader %q (old %s): %v", l, old, err)
	}
	if err := g.WaitReachable(ctx, 200*time.Millisecond); err == nil {
		t.Fatal("every node reachable with one killed")
	}
	createTopic(ctx, t, g, "after-failover")

	if err := g.StartNode(old); err != nil {
		t.Fatal(err)
	}
	if err := g.StartNode(old); err != nil { // already running: left alone
		t.Fatal(err)
	}
	if err := g.WaitCaughtUp(ctx, old, 0, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if reachable, ok := g.CaughtUp(ctx, old, 0); !reachable || !ok {
		t.Fatalf("CaughtUp(%s) = %v, %v after waiting for it", old, reachable, ok)
	}
	waitTopic(ctx, t, g, old, "after-failover")
	if err := g.WaitReachable(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(); err != nil {
		t.Fatal(err)
	}
}
