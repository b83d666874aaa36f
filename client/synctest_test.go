package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// memBroker is a one-node broker in memory behind an http.RoundTripper:
// no sockets, so the SDK runs inside a synctest bubble and its timers
// (linger, delivery timeout, backoff) are tested in fake time, exactly.
type memBroker struct {
	mu      sync.Mutex
	batches []wire.BatchHeader // received batches, in order
	next    [2]uint64          // next offset of queues 0 and 1
	// hold, when not nil, keeps batch requests waiting until it closes or
	// the request is cancelled: an answer that never comes.
	hold     chan struct{}
	attempts int // batch requests received
	// leader is what GET /v1/leader answers (zero: this broker at term 1).
	leader wire.LeaderView
	id     string // sent as the LedgerMQ-Node header when set
}

const memAddr = "mem.broker:1"

func (m *memBroker) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := m.serve(r)
	if err == nil && m.id != "" {
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		resp.Header.Set(wire.NodeHeader, m.id)
	}
	return resp, err
}

func (m *memBroker) serve(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	// Tell the client its request is out, as http.Transport does: from
	// here on its outcome is unknown to the client until an answer comes.
	if tr := httptrace.ContextClientTrace(r.Context()); tr != nil && tr.WroteRequest != nil {
		tr.WroteRequest(httptrace.WroteRequestInfo{})
	}
	switch p := r.URL.Path; {
	case p == "/v1/cluster":
		return memJSON(wire.ClusterStatus{Leader: "n1", LeaderAPI: memAddr, Nodes: []wire.ClusterNode{{ID: "n1", APIAddr: memAddr, Role: "leader", Reachable: true}}})
	case p == "/v1/leader":
		m.mu.Lock()
		lv := m.leader
		m.mu.Unlock()
		if lv.Leader == "" {
			lv = wire.LeaderView{Leader: "n1", LeaderAPI: memAddr, Term: 1}
		}
		return memJSON(lv)
	case p == "/test/poll": // a long poll: held like a batch
		if err := m.await(r); err != nil {
			return nil, err
		}
		return memJSON(map[string]string{"from": m.id})
	case p == "/v1/producers":
		return memJSON(wire.InitProducerResponse{ProducerID: 1})
	case p == "/v1/topics/t":
		return memJSON(wire.TopicInfo{Name: "t", Queues: 2, MaxMessageBytes: 1 << 20})
	case strings.HasPrefix(p, "/v1/topics/t/queues/") && strings.HasSuffix(p, "/batches"):
		return m.produce(r, strings.TrimSuffix(strings.TrimPrefix(p, "/v1/topics/t/queues/"), "/batches"), body)
	}
	return &http.Response{StatusCode: 404, Body: io.NopCloser(strings.NewReader(`{"error":{"code":"NOT_FOUND","not_applied":true}}`)), Request: r}, nil
}

// await counts an attempt and holds it while hold is set: until hold
// closes or the request is cancelled.
func (m *memBroker) await(r *http.Request) error {
	m.mu.Lock()
	hold := m.hold
	m.attempts++
	m.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
	return nil
}

func (m *memBroker) produce(r *http.Request, queue string, body []byte) (*http.Response, error) {
	if err := m.await(r); err != nil {
		return nil, err
	}
	h, err := wire.ParseHeader(body)
	if err != nil {
		return nil, err
	}
	q := int(queue[0] - '0')
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches = append(m.batches, h)
	base := m.next[q]
	m.next[q] += uint64(h.Count)
	return memJSON(wire.BatchProduceResponse{Queue: q, BaseOffset: base, Count: h.Count})
}

func memJSON(v any) (*http.Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func (m *memBroker) received() []wire.BatchHeader {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]wire.BatchHeader(nil), m.batches...)
}

func memProducer(t *testing.T, m *memBroker, opts ...ProducerOpt) *Producer {
	t.Helper()
	opts = append([]ProducerOpt{WithHTTPClient(&http.Client{Transport: m}), WithLogger(testLogger(t))}, opts...)
	p, err := NewProducer([]string{memAddr}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLingerInFakeTime: a batch that is not full leaves exactly when its
// linger ends; a full one leaves at once.
func TestLingerInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &memBroker{}
		p := memProducer(t, m, WithLinger(50*time.Millisecond), WithBatchBytes(4096))
		defer p.Close()
		one := new(0)
		done := make(chan error, 3)
		p.ProduceAsync(&Message{Topic: "t", Queue: one, Value: []byte("a")}, func(_ Result, err error) { done <- err })
		synctest.Wait()
		start := time.Now()
		p.ProduceAsync(&Message{Topic: "t", Queue: one, Value: []byte("b")}, func(_ Result, err error) { done <- err })
		time.Sleep(40 * time.Millisecond)
		synctest.Wait()
		if n := len(m.received()); n != 0 {
			t.Fatalf("%d batches sent %v into a 50ms linger", n, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		got := m.received()
		if len(got) != 1 || got[0].Count != 2 {
			t.Fatalf("after the linger: %+v, want one batch of 2", got)
		}
		// A batch that fills up does not wait for the linger.
		big := make([]byte, 5000)
		p.ProduceAsync(&Message{Topic: "t", Queue: one, Value: big}, func(_ Result, err error) { done <- err })
		synctest.Wait()
		if n := len(m.received()); n != 2 {
			t.Fatalf("a full batch waited: %d batches", n)
		}
		for range 3 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestDeliveryTimeoutInFakeTime: a batch whose answers never come is
// resent (same producer id and sequence) each time a request times out,
// and fails with ErrDeliveryTimeout once its delivery timeout has passed
// and the request then in flight has timed out too (see
// WithDeliveryTimeout): here between 30 s and 30 s plus one request
// timeout, exactly, in fake time.
func TestDeliveryTimeoutInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &memBroker{hold: make(chan struct{})}
		p := memProducer(t, m, WithLinger(0), WithDeliveryTimeout(30*time.Second), WithRequestTimeout(5*time.Second))
		defer p.Close()
		defer close(m.hold) // before Close: let a held request end
		start := time.Now()
		_, err := p.Produce(context.Background(), &Message{Topic: "t", Queue: new(1), Value: []byte("lost")})
		el := time.Since(start) // fake time: exact
		if !errors.Is(err, ErrDeliveryTimeout) || !errors.Is(err, ErrUnknownOutcome) {
			t.Fatalf("err = %v, want ErrDeliveryTimeout with an unknown outcome", err)
		}
		if el < 30*time.Second || el > 35*time.Second {
			t.Fatalf("failed after %v; delivery timeout 30s, request timeout 5s", el)
		}
		m.mu.Lock()
		attempts := m.attempts
		m.mu.Unlock()
		if attempts < 5 || attempts > 7 { // one per request timeout, plus short backoffs
			t.Fatalf("%d attempts in %v", attempts, el)
		}
		if n := len(m.received()); n != 0 {
			t.Fatalf("%d batches stored", n)
		}
	})
}

// memGroup routes requests to in-memory brokers by host.
type memGroup map[string]*memBroker

func (g memGroup) RoundTrip(r *http.Request) (*http.Response, error) {
	if b := g[r.URL.Host]; b != nil {
		return b.RoundTrip(r)
	}
	return nil, errors.New("no such host")
}

// TestStalledLeaderAbandoned: a leader that goes silent (its requests
// hang, no connection resets) is left as soon as another broker names a
// newer leader: the idempotent batch is resent there with the same
// producer id and sequence, well before any request timeout, in fake time.
func TestStalledLeaderAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stalled := &memBroker{hold: make(chan struct{})}
		next := &memBroker{leader: wire.LeaderView{Leader: "n2", LeaderAPI: "mem.broker:2", Term: 2}}
		group := memGroup{memAddr: stalled, "mem.broker:2": next}
		opts := []ProducerOpt{WithHTTPClient(&http.Client{Transport: group}), WithLogger(testLogger(t)), WithLinger(0),
			WithRequestTimeout(time.Hour)}
		p, err := NewProducer([]string{memAddr, "mem.broker:2"}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		defer close(stalled.hold)
		start := time.Now()
		res, err := p.Produce(context.Background(), &Message{Topic: "t", Queue: new(0), Value: []byte("v")})
		el := time.Since(start)
		if err != nil || res.Offset != 0 {
			t.Fatalf("produce: %+v, %v", res, err)
		}
		got := next.received()
		if len(got) != 1 || got[0].ProducerID != 1 || got[0].Sequence != 0 {
			t.Fatalf("new leader got %+v; want the batch with producer 1, sequence 0", got)
		}
		if el < defaultStallAfter || el > defaultStallAfter+time.Second {
			t.Fatalf("acknowledged after %v; the stall bound is %v", el, defaultStallAfter)
		}
		t.Logf("acknowledged by the new leader %v after the first attempt (fake time)", el)
	})
}

// TestStalledLeaderReadMoves: a long poll to the believed leader that
// goes silent moves to the new leader once another broker names it,
// without waiting out the poll's wait; a long poll to a leader the others
// still name stays.
func TestStalledLeaderReadMoves(t *testing.T) {
	for _, moved := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			stalled := &memBroker{id: "n1", hold: make(chan struct{})}
			next := &memBroker{id: "n2", leader: wire.LeaderView{Leader: "n1", LeaderAPI: memAddr, Term: 1}}
			if moved {
				next.leader = wire.LeaderView{Leader: "n2", LeaderAPI: "mem.broker:2", Term: 2}
			}
			cfg := defaultConnConfig()
			cfg.httpClient = &http.Client{Transport: memGroup{memAddr: stalled, "mem.broker:2": next}}
			c, err := newConn([]string{memAddr, "mem.broker:2"}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.leader = "http://" + memAddr
			const wait = 30 * time.Second
			start := time.Now()
			done := make(chan *response, 1)
			go func() {
				resp, err := c.do(context.Background(), &request{method: http.MethodGet, path: "/test/poll", retry: retryAll, expect: wait, timeout: time.Hour})
				if err != nil {
					t.Error(err)
				}
				done <- resp
			}()
			if !moved {
				time.Sleep(wait / 2) // half the wait: still on the leader the others name
				synctest.Wait()
				stalled.mu.Lock()
				attempts := stalled.attempts
				stalled.mu.Unlock()
				if len(done) != 0 || attempts != 1 {
					t.Fatalf("a long poll to the leader everyone names was abandoned (%d attempts)", attempts)
				}
				close(stalled.hold)
				<-done
				return
			}
			defer close(stalled.hold)
			resp := <-done
			el := time.Since(start)
			if resp == nil || resp.addr != "http://mem.broker:2" || el > 2*defaultStallAfter {
				t.Fatalf("answered by %+v after %v; want the new leader within two stall bounds (%v)", resp, el, 2*defaultStallAfter)
			}
			t.Logf("long poll moved to the new leader after %v (fake time; the poll's wait is %v)", el, wait)
		})
	}
}

// TestSlowLeaderKept: a leader that is slow but still leads (every other
// broker names it) keeps its attempt: no resend, however long the commit.
func TestSlowLeaderKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &memBroker{hold: make(chan struct{})}
		other := &memBroker{} // names mem.broker:1, term 1
		group := memGroup{memAddr: slow, "mem.broker:2": other}
		p, done := produceOneAsync(t, []string{memAddr, "mem.broker:2"}, group)
		defer p.Close()
		time.Sleep(10 * time.Second) // a 10 s commit, in fake time
		synctest.Wait()
		keptOnSlowLeader(t, slow, other, done)
	})
}

// TestLeaderMovedFromTerms: the newest term decides, and a view older than
// one already seen never moves the client.
func TestLeaderMovedFromTerms(t *testing.T) {
	view := func(id, api string, term uint64) *memBroker {
		return &memBroker{leader: wire.LeaderView{Leader: id, LeaderAPI: api, Term: term}}
	}
	for _, tc := range []struct {
		name     string
		known    uint64 // newest term seen before
		b2, b3   *memBroker
		moved    bool
		leader   string
		newTerms uint64
	}{
		{"a newer leader named", 0, view("n2", "mem.broker:2", 3), view("n1", memAddr, 2), true, "http://mem.broker:2", 3},
		{"everyone names the stalled one", 2, view("n1", memAddr, 2), view("n1", memAddr, 2), false, "", 2},
		{"only an older view disagrees", 5, view("n2", "mem.broker:2", 4), view("n1", memAddr, 5), false, "", 5},
		{"newest names a leader without an address yet", 0, view("n3", "", 7), view("n1", memAddr, 2), false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConnConfig()
			cfg.httpClient = &http.Client{Transport: memGroup{memAddr: {}, "mem.broker:2": tc.b2, "mem.broker:3": tc.b3}}
			c, err := newConn([]string{memAddr, "mem.broker:2", "mem.broker:3"}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.leaderTerm = tc.known
			moved, _ := c.leaderMovedFrom(context.Background(), "http://"+memAddr)
			if moved != tc.moved || moved && c.leader != tc.leader || c.leaderTerm < tc.newTerms {
				t.Fatalf("moved %v, leader %q, term %d; want %v, %q, >= %d", moved, c.leader, c.leaderTerm, tc.moved, tc.leader, tc.newTerms)
			}
		})
	}
}

// TestStallProbeKnowsNodesByID: a client that reaches the leader by
// another name than it advertises (a proxy, NAT, DNS) recognises it in the
// others' answers by node id, so a slow leader is not abandoned.
func TestStallProbeKnowsNodesByID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &memBroker{id: "n1", hold: make(chan struct{})} // advertises mem.broker:1, reached as alias:1
		other := &memBroker{id: "n2", leader: wire.LeaderView{Leader: "n1", LeaderAPI: memAddr, Term: 4}}
		group := memGroup{"alias:1": slow, "mem.broker:2": other}
		p, done := produceOneAsync(t, []string{"alias:1", "mem.broker:2"}, group)
		defer p.Close()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		keptOnSlowLeader(t, slow, other, done)
	})
}

// keptOnSlowLeader checks that the slow leader got the one attempt and no
// other broker a batch, then lets the attempt finish and waits for it.
func keptOnSlowLeader(t *testing.T, slow, other *memBroker, done <-chan error) {
	t.Helper()
	slow.mu.Lock()
	attempts := slow.attempts
	slow.mu.Unlock()
	if attempts != 1 || len(other.received()) != 0 {
		t.Fatalf("%d attempts on the slow leader, %d batches elsewhere; want 1 and 0", attempts, len(other.received()))
	}
	close(slow.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// produceOneAsync starts a producer over group (no linger, an hour's
// request timeout) and produces one message in the background; done gets
// its outcome.
func produceOneAsync(t *testing.T, brokers []string, group memGroup) (*Producer, <-chan error) {
	t.Helper()
	p, err := NewProducer(brokers, WithHTTPClient(&http.Client{Transport: group}), WithLogger(testLogger(t)),
		WithLinger(0), WithRequestTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Produce(context.Background(), &Message{Topic: "t", Queue: new(0), Value: []byte("v")})
		done <- err
	}()
	return p, done
}
