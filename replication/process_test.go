package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/commitlog"
	"github.com/ledgermq/ledgermq/internal/proc"
	"github.com/ledgermq/ledgermq/internal/testnet"
)

// The SIGKILL test runs each node as a separate OS process: this test
// binary re-executed with LEDGERMQ_NODE_PROCESS set. A node process serves
// POST /propose (body: the payload; reply: the index) and GET /leader on
// a small HTTP port, until it gets SIGTERM or SIGKILL.

func TestMain(m *testing.M) {
	if os.Getenv("LEDGERMQ_NODE_PROCESS") != "" {
		os.Exit(runNodeProcess())
	}
	os.Exit(m.Run())
}

type procSpec struct {
	ID       string
	Dir      string
	RaftAddr string
	HTTPAddr string
	Peers    []Peer
}

func runNodeProcess() int {
	var spec procSpec
	if err := json.Unmarshal([]byte(os.Getenv("LEDGERMQ_NODE_PROCESS")), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := DefaultConfig()
	cfg.ID, cfg.Dir, cfg.RaftAddr, cfg.Peers = spec.ID, spec.Dir, spec.RaftAddr, spec.Peers
	cfg.Log.SegmentSize = 256 << 10
	cfg.RetentionInterval = 0
	cfg.Logger = testLogger(nil)
	n, err := Open(cfg, &testSM{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /propose", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		res, err := n.Propose(ctx, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, res.Index)
	})
	mux.HandleFunc("GET /leader", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, n.IsLeader())
	})
	mux.HandleFunc("GET /last", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, n.LogStats().LastIndex, " ", n.AppliedIndex())
	})
	srv := &http.Server{Addr: spec.HTTPAddr, Handler: mux}
	go srv.ListenAndServe()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	srv.Close()
	if err := n.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type procCluster struct {
	t     *testing.T
	specs map[string]procSpec
	ids   []string
	mu    sync.Mutex
	procs map[string]*proc.Process
}

func (pc *procCluster) start(id string) {
	pc.t.Helper()
	b, _ := json.Marshal(pc.specs[id])
	p, err := proc.Start(proc.Spec{Path: os.Args[0], Args: []string{"-test.run=^$"},
		Env: []string{"LEDGERMQ_NODE_PROCESS=" + string(b)}, Output: os.Stderr})
	if err != nil {
		pc.t.Fatal(err)
	}
	pc.mu.Lock()
	pc.procs[id] = p
	pc.mu.Unlock()
}

// signal sends SIGKILL or SIGTERM to a node and waits for its exit.
func (pc *procCluster) signal(id string, sig syscall.Signal) {
	pc.mu.Lock()
	p := pc.procs[id]
	delete(pc.procs, id)
	pc.mu.Unlock()
	switch {
	case p == nil:
	case sig == syscall.SIGKILL:
		p.Kill()
	default:
		p.Terminate()
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func (pc *procCluster) leader() string {
	for _, id := range pc.ids {
		resp, err := httpClient.Get("http://" + pc.specs[id].HTTPAddr + "/leader")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) == "true" {
			return id
		}
	}
	return ""
}

// propose posts data to the leader; true means acknowledged.
func (pc *procCluster) propose(ctx context.Context, data string) (uint64, bool) {
	for ctx.Err() == nil {
		id := pc.leader()
		if id == "" {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		resp, err := httpClient.Post("http://"+pc.specs[id].HTTPAddr+"/propose", "text/plain", strings.NewReader(data))
		if err != nil {
			return 0, false // the leader may have died mid-request: outcome unknown
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			if bytes.Contains(b, []byte("not the leader")) {
				continue // refused before proposing: safe to retry
			}
			return 0, false
		}
		var idx uint64
		fmt.Sscan(string(b), &idx)
		return idx, true
	}
	return 0, false
}

// TestSIGKILLLeaderProcesses runs a 3-node group as OS processes, kills the
// leader with SIGKILL three times under load, restarts it each time, and
// then checks every node's files: every acknowledged proposal present once,
// at its index, and all logs agreeing.
func TestSIGKILLLeaderProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts OS processes; skipped in -short")
	}
	addrs := testnet.FreeAddrs(t, 6)
	pc := &procCluster{t: t, specs: map[string]procSpec{}, procs: map[string]*proc.Process{}}
	var peers []Peer
	for i := 0; i < 3; i++ {
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: addrs[i]})
	}
	for i, p := range peers {
		pc.ids = append(pc.ids, p.ID)
		pc.specs[p.ID] = procSpec{ID: p.ID, Dir: t.TempDir(), RaftAddr: p.RaftAddr, HTTPAddr: addrs[3+i], Peers: peers}
		pc.start(p.ID)
	}
	defer func() {
		for _, id := range pc.ids {
			pc.signal(id, syscall.SIGKILL)
		}
	}()
	waitFor(t, 15*time.Second, func() bool { return pc.leader() != "" })

	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	acked := map[string]uint64{}
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				data := fmt.Sprintf("k%d-%d", p, i)
				if idx, ok := pc.propose(ctx, data); ok {
					mu.Lock()
					acked[data] = idx
					mu.Unlock()
				}
			}
		}()
	}
	for kill := 0; kill < 3; kill++ {
		time.Sleep(1500 * time.Millisecond)
		var victim string
		waitFor(t, 15*time.Second, func() bool { victim = pc.leader(); return victim != "" })
		pc.signal(victim, syscall.SIGKILL)
		waitFor(t, 15*time.Second, func() bool { return pc.leader() != "" })
		pc.start(victim)
	}
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	// Let every node catch up (same last index, all applied), then stop
	// everything cleanly so the files can be opened here.
	waitFor(t, 30*time.Second, func() bool {
		var seen []string
		for _, id := range pc.ids {
			resp, err := httpClient.Get("http://" + pc.specs[id].HTTPAddr + "/last")
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var last, applied uint64
			fmt.Sscan(string(b), &last, &applied)
			if applied+2 < last { // trailing no-op and barrier entries are not applied
				return false
			}
			seen = append(seen, fmt.Sprint(last))
		}
		return seen[0] == seen[1] && seen[1] == seen[2]
	})
	for _, id := range pc.ids {
		pc.signal(id, syscall.SIGTERM)
	}
	logs := map[string]map[uint64]commitlog.Entry{}
	for _, id := range pc.ids {
		l, err := commitlog.Open(filepath.Join(pc.specs[id].Dir, "log"), commitlog.DefaultOptions())
		if err != nil {
			t.Fatalf("open %s's log: %v", id, err)
		}
		logs[id] = commands(t, l)
		l.Close()
	}
	for data, idx := range acked {
		present := 0
		for _, id := range pc.ids {
			if e, ok := logs[id][idx]; ok && string(e.Data) == data {
				present++
			}
		}
		if present != len(pc.ids) {
			t.Fatalf("acknowledged %q at %d is on %d of %d nodes", data, idx, present, len(pc.ids))
		}
	}
	for _, a := range pc.ids {
		for _, b := range pc.ids {
			for idx, ea := range logs[a] {
				if eb, ok := logs[b][idx]; ok && (ea.Term != eb.Term || string(ea.Data) != string(eb.Data)) {
					t.Fatalf("index %d differs between %s and %s", idx, a, b)
				}
			}
		}
	}
	seen := map[string]int{}
	for _, e := range logs["n1"] {
		if e.Type == 0 { // raft.LogCommand
			seen[string(e.Data)]++
		}
	}
	for data := range acked {
		if seen[data] > 1 {
			t.Fatalf("%q stored %d times", data, seen[data])
		}
	}
	t.Logf("%d proposals acknowledged across 3 SIGKILLs of the leader", len(acked))
	if len(acked) < 100 {
		t.Fatalf("only %d proposals acknowledged", len(acked))
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
