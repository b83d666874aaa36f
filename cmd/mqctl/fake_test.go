package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/wire"
)

// fakeGroup is an in-memory stand-in for a broker group, enough of the
// HTTP API for mqctl's tests: its nodes share one state, only the leader
// accepts writes, and followers answer writes with 421 NOT_LEADER naming
// the leader, like the real broker.
type fakeGroup struct {
	mu       sync.Mutex
	topics   map[string]*fakeTopic
	leader   int
	requests []string // "node METHOD path"
	nodes    []*httptest.Server
	// fault, unless "", answers the next faults requests (all of them
	// when faults < 0) in place of the API: see faultAnswer.
	fault  string
	faults int
}

type fakeTopic struct {
	info   wire.TopicInfo
	queues []uint64 // each queue's next offset
}

func newFakeGroup(t *testing.T, n int) *fakeGroup {
	g := &fakeGroup{topics: map[string]*fakeTopic{}}
	for i := range n {
		s := httptest.NewServer(g.handler(i))
		t.Cleanup(s.Close)
		g.nodes = append(g.nodes, s)
	}
	return g
}

func (g *fakeGroup) addr(i int) string { return strings.TrimPrefix(g.nodes[i].URL, "http://") }

func (g *fakeGroup) brokers() string {
	var a []string
	for i := range g.nodes {
		a = append(a, g.addr(i))
	}
	return strings.Join(a, ",")
}

func (g *fakeGroup) setLeader(i int) {
	g.mu.Lock()
	g.leader = i
	g.mu.Unlock()
}

// setFault makes the next n requests (every one if n < 0) fail with fault.
func (g *fakeGroup) setFault(fault string, n int) {
	g.mu.Lock()
	g.fault, g.faults = fault, n
	g.mu.Unlock()
}

// faultAnswer answers a request with a failure a real broker gives only by
// chance: "unknown" (503, the write's commit was not confirmed), "refused"
// (503 not applied: shutting down), "hangup" (no answer) or "no-leader"
// (421 naming no leader). It reports whether it answered.
func (g *fakeGroup) faultAnswer(w http.ResponseWriter) bool {
	if g.fault == "" || g.faults == 0 {
		return false
	}
	g.faults--
	switch g.fault {
	case "unknown":
		unavailable(w, "the commit timed out", false)
	case "refused":
		unavailable(w, "the broker is shutting down; the request was not applied", true)
	case "hangup":
		hangUp(w)
	case "no-leader":
		writeFake(w, http.StatusMisdirectedRequest, wire.ErrorBody{Error: wire.APIError{Code: wire.CodeNotLeader,
			Message: "this node is not the leader; the request was not applied", Retriable: true, NotApplied: true}})
	}
	return true
}

// log lists the requests the group got, without the SDK's leader probes
// (GET /v1/leader, reads it makes after a lost answer or a stall).
func (g *fakeGroup) log() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, r := range g.requests {
		if !strings.HasSuffix(r, " GET /v1/leader") {
			out = append(out, r)
		}
	}
	return out
}

func writeFake(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// fakeError is a refusal: like the real broker's, it applied nothing.
func fakeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	writeFake(w, status, wire.ErrorBody{Error: wire.APIError{Code: code, Message: fmt.Sprintf(format, args...), NotApplied: true}})
}

func (g *fakeGroup) handler(node int) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/topics", func(w http.ResponseWriter, r *http.Request) {
		var req wire.CreateTopicRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.Queues == 0 {
			req.Queues = 4
		}
		if req.RetentionMs == 0 {
			req.RetentionMs = 7 * 24 * 3600 * 1000
		}
		if req.MaxMessageBytes == 0 {
			req.MaxMessageBytes = 1 << 20
		}
		if _, ok := g.topics[req.Name]; ok {
			fakeError(w, http.StatusConflict, wire.CodeTopicExists, "topic %s already exists", req.Name)
			return
		}
		t := &fakeTopic{info: wire.TopicInfo{Name: req.Name, Queues: req.Queues, RetentionMs: req.RetentionMs,
			RetentionBytes: req.RetentionBytes, MaxMessageBytes: req.MaxMessageBytes},
			queues: make([]uint64, req.Queues)}
		g.topics[req.Name] = t
		writeFake(w, http.StatusCreated, t.info)
	})
	mux.HandleFunc("GET /v1/topics", func(w http.ResponseWriter, r *http.Request) {
		out := wire.TopicList{Topics: []wire.TopicInfo{}}
		for _, t := range g.topics {
			out.Topics = append(out.Topics, t.info)
		}
		writeFake(w, http.StatusOK, out)
	})
	topic := func(w http.ResponseWriter, r *http.Request) *fakeTopic {
		t := g.topics[r.PathValue("topic")]
		if t == nil {
			fakeError(w, http.StatusNotFound, wire.CodeTopicNotFound, "topic %s not found", r.PathValue("topic"))
		}
		return t
	}
	mux.HandleFunc("GET /v1/topics/{topic}", func(w http.ResponseWriter, r *http.Request) {
		if t := topic(w, r); t != nil {
			info := t.info
			for q, next := range t.queues {
				info.QueueInfo = append(info.QueueInfo, wire.QueueInfo{Queue: q, Next: next})
			}
			writeFake(w, http.StatusOK, info)
		}
	})
	mux.HandleFunc("DELETE /v1/topics/{topic}", func(w http.ResponseWriter, r *http.Request) {
		if t := topic(w, r); t != nil {
			delete(g.topics, t.info.Name)
			writeFake(w, http.StatusOK, map[string]string{"deleted": t.info.Name})
		}
	})
	g.clusterRoutes(mux, node)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.requests = append(g.requests, fmt.Sprintf("%d %s %s", node, r.Method, r.URL.Path))
		if g.faultAnswer(w) {
			return
		}
		if r.Method != http.MethodGet && node != g.leader {
			writeFake(w, http.StatusMisdirectedRequest, wire.ErrorBody{Error: wire.APIError{Code: wire.CodeNotLeader,
				Message: "this node is not the leader; the request was not applied", Leader: g.addr(g.leader), Retriable: true,
				NotApplied: true}})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// clusterRoutes serves GET /v1/cluster and leadership transfers.
func (g *fakeGroup) clusterRoutes(mux *http.ServeMux, node int) {
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		st := wire.ClusterStatus{Leader: fmt.Sprintf("n%d", g.leader+1), LeaderAPI: g.addr(g.leader), Term: 3,
			GroupID: 1, AnsweredBy: fmt.Sprintf("n%d", node+1)}
		for i := range g.nodes {
			role := "follower"
			if i == g.leader {
				role = "leader"
			}
			st.Nodes = append(st.Nodes, wire.ClusterNode{ID: fmt.Sprintf("n%d", i+1), Role: role, APIAddr: g.addr(i),
				Term: 3, LastIndex: uint64(100 - i), CommitIndex: 98, AppliedIndex: 98, Reachable: true})
		}
		writeFake(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /v1/cluster/transfer-leadership", func(w http.ResponseWriter, r *http.Request) {
		var req wire.TransferRequest
		json.NewDecoder(r.Body).Decode(&req)
		g.leader = (g.leader + 1) % len(g.nodes)
		if req.To != "" {
			g.leader, _ = strconv.Atoi(strings.TrimPrefix(req.To, "n"))
			g.leader--
		}
		writeFake(w, http.StatusOK, map[string]string{"leader": fmt.Sprintf("n%d", g.leader+1), "leader_api": g.addr(g.leader)})
	})
}

// runResult is one mqctl run.
type runResult struct {
	code           int
	stdout, stderr string
}

// mqctl runs a command line with MQ_BROKERS=brokers.
func mqctl(t *testing.T, ctx context.Context, brokers, stdin string, args ...string) runResult {
	t.Helper()
	var out bytes.Buffer
	r := mqctlTo(t, ctx, &out, brokers, stdin, args...)
	r.stdout = out.String()
	return r
}

// mqctlTo is mqctl writing its stdout to w.
func mqctlTo(t *testing.T, ctx context.Context, w io.Writer, brokers, stdin string, args ...string) runResult {
	var errb bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: w, stderr: &errb,
		getenv: func(k string) string {
			if k == "MQ_BROKERS" {
				return brokers
			}
			return ""
		},
		sdkOpts: []sdk.Opt{sdk.WithRetryBackoff(5*time.Millisecond, 20*time.Millisecond)},
	}
	code := a.run(ctx, args)
	return runResult{code: code, stderr: errb.String()}
}

// unavailable is a 503 UNAVAILABLE; notApplied says whether the broker
// guarantees it applied nothing.
func unavailable(w http.ResponseWriter, msg string, notApplied bool) {
	writeFake(w, http.StatusServiceUnavailable, wire.ErrorBody{Error: wire.APIError{Code: wire.CodeUnavailable,
		Message: msg, Retriable: true, NotApplied: notApplied}})
}

// hangUp reads the request and closes the connection without answering.
func hangUp(w http.ResponseWriter) {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}

// TestProduceReportsInDoubt: a batch the broker answers 503 UNAVAILABLE
// for is resent (same producer id and sequence) until --timeout, its
// delivery timeout; its messages are then reported in doubt, and mqctl
// stops reading its input.
func TestProduceReportsInDoubt(t *testing.T) {
	var batches atomic.Int32
	var addr string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/cluster":
			writeFake(w, http.StatusOK, wire.ClusterStatus{Leader: "n1", LeaderAPI: addr, GroupID: 1})
		case r.URL.Path == "/v1/topics/t":
			writeFake(w, http.StatusOK, wire.TopicInfo{Name: "t", Queues: 1, MaxMessageBytes: 1 << 20})
		case r.URL.Path == "/v1/producers":
			writeFake(w, http.StatusOK, wire.InitProducerResponse{ProducerID: 7})
		case r.URL.Path == "/v1/topics/t/queues/0/batches" && batches.Add(1) == 1:
			body, _ := io.ReadAll(r.Body)
			h, err := wire.ParseHeader(body)
			if err != nil || h.ProducerID != 7 || h.Sequence != 0 {
				fakeError(w, http.StatusBadRequest, wire.CodeInvalidArgument, "bad batch: %v %+v", err, h)
				return
			}
			writeFake(w, http.StatusOK, wire.BatchProduceResponse{Queue: 0, BaseOffset: 0, Count: h.Count})
		default:
			unavailable(w, "the write's outcome is unknown: leadership lost", false)
		}
	}))
	t.Cleanup(s.Close)
	addr = strings.TrimPrefix(s.URL, "http://")
	r := mqctl(t, context.Background(), addr, "a\nb\nc\nd\ne\n", "produce", "t", "--batch-size", "2", "--timeout", "300ms")
	// The first batch is stored, the next one fails with an unknown
	// outcome. A batch holds up to 2 messages; under load the producer's
	// linger may send the first message alone, so 1 or 2 of each.
	produced := regexp.MustCompile(`^Produced ([12]) messages? \(([12]) B\) to t in `).FindStringSubmatch(r.stdout)
	inDoubt := regexp.MustCompile(`In doubt: ([12]) messages? of the failed request \(they may or may not be stored\)\.`).FindStringSubmatch(r.stdout)
	if r.code != 1 || batches.Load() < 3 || produced == nil || inDoubt == nil ||
		!strings.HasPrefix(r.stderr, "mqctl: ") || !strings.Contains(r.stderr, "UNAVAILABLE: the write's outcome is unknown: leadership lost") {
		t.Fatalf("%+v after %d batches", r, batches.Load())
	}
}
