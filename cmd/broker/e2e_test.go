package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/cluster"
	"github.com/ledgermq/ledgermq/internal/proc"
	"github.com/ledgermq/ledgermq/internal/stats"
	"github.com/ledgermq/ledgermq/wire"
)

// These tests build the real binaries and run them as OS processes on free
// loopback ports.

// builder builds each binary once per test run.
type builder struct {
	once sync.Once
	path string
	err  error
}

var builds = map[string]*builder{"broker": {}, "mqctl": {}}

// TestMain removes the built binaries after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range builds {
		if b.path != "" {
			os.RemoveAll(filepath.Dir(b.path))
		}
	}
	os.Exit(code)
}

func binary(t *testing.T, name string) string {
	t.Helper()
	b := builds[name]
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "ledgermq-e2e-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path, b.err = proc.Build(context.Background(), dir, "github.com/ledgermq/ledgermq/cmd/"+name)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// group is a set of broker processes (internal/cluster) with the test's
// shorthands: the node ids and their API addresses.
type group struct {
	t   *testing.T
	c   *cluster.Group
	api map[string]string
	ids []string
}

func newGroup(t *testing.T, n int) *group {
	c := startCluster(t, cluster.Options{Bin: binary(t, "broker"), Nodes: n, Dir: t.TempDir(), LogLevel: logLevel(),
		Args: []string{"--segment-bytes", "1048576"}})
	g := &group{t: t, c: c, api: map[string]string{}, ids: c.IDs()}
	for _, id := range g.ids {
		g.api[id] = c.API(id)
	}
	return g
}

// startCluster starts the processes of o (their output to stderr with
// LEDGERMQ_TEST_LOG) and kills them when the test ends.
func startCluster(t *testing.T, o cluster.Options) *cluster.Group {
	t.Helper()
	if os.Getenv("LEDGERMQ_TEST_LOG") != "" {
		o.Output = os.Stderr
	}
	c, err := cluster.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// newGroupWithTopic starts an n-node group, waits for a leader and
// creates the topic.
func newGroupWithTopic(t *testing.T, n int, topic string, queues int) *group {
	g := newGroup(t, n)
	waitUntil(t, 15*time.Second, "a leader", func() bool { return g.leader() != "" })
	if !g.writeLeader("/v1/topics", wire.CreateTopicRequest{Name: topic, Queues: queues}, nil, time.Now().Add(10*time.Second)) {
		t.Fatal("create topic failed")
	}
	return g
}

func (g *group) start(id string) {
	if err := g.c.StartNode(id); err != nil {
		g.t.Fatal(err)
	}
}

// signal sends SIGKILL or SIGTERM to a node and waits for its exit.
func (g *group) signal(id string, sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		g.c.Kill(id)
		return
	}
	g.c.Terminate(id)
}

// leader finds the node that accepts writes.
func (g *group) leader() string { return g.c.Leader(context.Background()) }

var httpc = &http.Client{Timeout: 5 * time.Second}

// do sends a request to one node and decodes a JSON answer.
func do(method, addr, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	r, err := httpc.Do(req)
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode >= 300 {
		var e wire.ErrorBody
		json.Unmarshal(b, &e)
		return r.StatusCode, &e.Error
	}
	if out != nil {
		return r.StatusCode, json.Unmarshal(b, out)
	}
	return r.StatusCode, nil
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// writeLeader sends a write to the leader, following NOT_LEADER. It
// reports whether the write was acknowledged; false means refused or
// outcome unknown.
func (g *group) writeLeader(path string, body, out any, deadline time.Time) bool {
	_, ok := g.writeLeaderAt(path, body, out, deadline)
	return ok
}

// writeLeaderAt is writeLeader that also returns the API address that
// acknowledged the write.
func (g *group) writeLeaderAt(path string, body, out any, deadline time.Time) (string, bool) {
	target := g.api[g.ids[0]]
	for time.Now().Before(deadline) {
		_, err := do("POST", target, path, body, out)
		if err == nil {
			return target, true
		}
		var ae *wire.APIError
		if errors.As(err, &ae) && ae.Code == wire.CodeNotLeader {
			if ae.Leader != "" {
				target = ae.Leader
			} else {
				time.Sleep(20 * time.Millisecond)
			}
			continue
		}
		var ne net.Error
		if errors.As(err, &ae) || (errors.As(err, &ne) && ne.Timeout()) || !isRefused(err) {
			return "", false // the write may have happened: not retried
		}
		// Connection refused: nothing was sent. Try another node.
		target = g.api[g.ids[int(time.Now().UnixNano())%len(g.ids)]]
		time.Sleep(20 * time.Millisecond)
	}
	return "", false
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// readQueue reads a whole queue from one node.
func readQueue(t *testing.T, addr, topic string, q int, next uint64) []wire.FetchedMessage {
	t.Helper()
	var out []wire.FetchedMessage
	for off := uint64(0); off < next; {
		var fr wire.FetchResponse
		if _, err := do("GET", addr, fmt.Sprintf("/v1/topics/%s/queues/%d/messages?offset=%d&max_messages=5000", topic, q, off), nil, &fr); err != nil {
			t.Fatalf("read %s queue %d at %d from %s: %v", topic, q, off, addr, err)
		}
		if len(fr.Messages) == 0 {
			t.Fatalf("read %s queue %d at %d from %s: no messages before %d", topic, q, off, addr, next)
		}
		out = append(out, fr.Messages...)
		off = fr.NextOffset
	}
	return out
}

type ack struct {
	queue  int
	offset uint64
	at     time.Time
	by     string // API address that acknowledged
}

// TestThreeNodeSIGKILLLeader: 8 writers produce while the leader is killed
// with SIGKILL three times. Afterwards every acknowledged message is
// present exactly once at its acknowledged offset, and every node serves
// identical queues. It prints the write outage after each kill.
func TestThreeNodeSIGKILLLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs OS processes for ~20s")
	}
	g := newGroupWithTopic(t, 3, "e2e", 4)
	var mu sync.Mutex
	acked := map[string]ack{}
	var acks []ack
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				val := fmt.Sprintf("w%d-%d", w, i)
				var pr wire.ProduceResponse
				req := wire.ProduceRequest{Messages: []wire.ProduceMessage{{Value: &val}}}
				by, ok := g.writeLeaderAt("/v1/topics/e2e/messages", req, &pr, time.Now().Add(3*time.Second))
				if ok && len(pr.Results) == 1 {
					a := ack{pr.Results[0].Queue, pr.Results[0].Offset, time.Now(), by}
					mu.Lock()
					acked[val] = a
					acks = append(acks, a)
					mu.Unlock()
				}
			}
		}()
	}
	var kills []time.Time
	var victims []string
	for k := 0; k < 3; k++ {
		time.Sleep(2 * time.Second)
		var victim string
		waitUntil(t, 15*time.Second, "a leader", func() bool { victim = g.leader(); return victim != "" })
		kills = append(kills, time.Now())
		victims = append(victims, g.api[victim])
		g.signal(victim, syscall.SIGKILL)
		time.Sleep(1500 * time.Millisecond)
		g.start(victim)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	// Outage per kill: from the kill to the first acknowledgement by
	// another node (replies already in flight from the victim don't count).
	sort.Slice(acks, func(i, j int) bool { return acks[i].at.Before(acks[j].at) })
	var outages []time.Duration
	for i, k := range kills {
		j := sort.Search(len(acks), func(j int) bool { return acks[j].at.After(k) })
		for j < len(acks) && acks[j].by == victims[i] {
			j++
		}
		if j == len(acks) {
			t.Fatalf("no write acknowledged by a new leader after kill %d", i+1)
		}
		outages = append(outages, acks[j].at.Sub(k))
		t.Logf("kill %d: first write acknowledged by the new leader %v after the kill", i+1, acks[j].at.Sub(k).Round(time.Millisecond))
	}
	t.Logf("%d writes acknowledged", len(acked))

	// Converge, then compare every node's queues and the acknowledgements.
	var ti wire.TopicInfo
	waitUntil(t, 30*time.Second, "all nodes to serve the same queues", func() bool {
		var first []wire.QueueInfo
		for _, id := range g.ids {
			var info wire.TopicInfo
			if _, err := do("GET", g.api[id], "/v1/topics/e2e", nil, &info); err != nil {
				return false
			}
			if first == nil {
				first, ti = info.QueueInfo, info
				continue
			}
			for q := range first {
				if info.QueueInfo[q] != first[q] {
					return false
				}
			}
		}
		return true
	})
	seen := map[string]int{}
	for q, qi := range ti.QueueInfo {
		ref := readQueue(t, g.api[g.ids[0]], "e2e", q, qi.Next)
		for _, id := range g.ids[1:] {
			other := readQueue(t, g.api[id], "e2e", q, qi.Next)
			for i := range ref {
				if ref[i].Offset != other[i].Offset || *ref[i].Value != *other[i].Value {
					t.Fatalf("queue %d offset %d differs between n1 and %s", q, ref[i].Offset, id)
				}
			}
		}
		for _, m := range ref {
			seen[*m.Value]++
			if a, ok := acked[*m.Value]; ok && (a.queue != q || a.offset != m.Offset) {
				t.Fatalf("%s acknowledged at %d/%d, stored at %d/%d", *m.Value, a.queue, a.offset, q, m.Offset)
			}
		}
	}
	for val := range acked {
		if seen[val] != 1 {
			t.Fatalf("acknowledged %s is stored %d times", val, seen[val])
		}
	}
	o := stats.Of(outages)
	t.Logf("write outage after a leader kill: median %.0f ms, worst %.0f ms", o.P50, o.Max)
}

func logLevel() string {
	if l := os.Getenv("LEDGERMQ_TEST_LOG"); l != "" {
		return l
	}
	return "warn"
}
