package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// testServer answers with h and counts requests.
type testServer struct {
	*httptest.Server
	n atomic.Int32
}

func newTestServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int32)) *testServer {
	s := &testServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, s.n.Add(1))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) addr() string { return strings.TrimPrefix(s.URL, "http://") }

func okServer(t *testing.T) *testServer {
	return newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		writeFake(w, http.StatusOK, wire.ProduceResponse{Results: []wire.ProduceResult{{Queue: 1, Offset: 7}}})
	})
}

// redirectServer is a follower: 421 NOT_LEADER naming leader (may be "").
func redirectServer(t *testing.T, leader func() string) *testServer {
	return newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		writeFake(w, http.StatusMisdirectedRequest, wire.ErrorBody{Error: wire.APIError{
			Code: wire.CodeNotLeader, Message: "not the leader", Leader: leader(), Retriable: true}})
	})
}

func errorServer(t *testing.T, status int, code string) *testServer {
	return newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		fakeError(w, status, code, "something failed")
	})
}

// refusedAddr is an address nothing listens on.
func refusedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func testClient(timeout time.Duration, brokers ...string) *client {
	c := newClient(brokers, timeout)
	c.backoff, c.maxBackoff = 5*time.Millisecond, 20*time.Millisecond
	return c
}

var produceReq = request{method: http.MethodPost, path: "/v1/topics/t/messages",
	body: wire.ProduceRequest{Messages: []wire.ProduceMessage{{}}}}

func TestClientFollowsNotLeader(t *testing.T) {
	leader := okServer(t)
	follower := redirectServer(t, leader.addr)
	c := testClient(time.Second, follower.addr())
	var resp wire.ProduceResponse
	if _, err := c.do(context.Background(), produceReq, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 1 || resp.Results[0].Offset != 7 {
		t.Fatalf("response %+v", resp)
	}
	if follower.n.Load() != 1 || leader.n.Load() != 1 {
		t.Fatalf("follower got %d requests, leader %d; want 1 and 1", follower.n.Load(), leader.n.Load())
	}
	// The leader is remembered: the next call goes straight to it.
	if _, err := c.do(context.Background(), produceReq, nil); err != nil {
		t.Fatal(err)
	}
	if follower.n.Load() != 1 || leader.n.Load() != 2 {
		t.Fatalf("second call: follower got %d requests, leader %d; want 1 and 2", follower.n.Load(), leader.n.Load())
	}
}

func TestClientSkipsUnreachableBroker(t *testing.T) {
	leader := okServer(t)
	c := testClient(time.Second, refusedAddr(t), leader.addr())
	// A write may be resent: the refused connection never carried it.
	if _, err := c.do(context.Background(), produceReq, nil); err != nil {
		t.Fatal(err)
	}
	if leader.n.Load() != 1 {
		t.Fatalf("leader got %d requests, want 1", leader.n.Load())
	}
}

func TestClientFollowsFailover(t *testing.T) {
	var newLeader atomic.Value
	newLeader.Store("")
	old := okServer(t)
	follower := redirectServer(t, func() string { return newLeader.Load().(string) })
	c := testClient(2*time.Second, old.addr(), follower.addr())
	if _, err := c.do(context.Background(), produceReq, nil); err != nil {
		t.Fatal(err)
	}
	// The leader dies; for a while the follower knows no leader, then
	// names the new one.
	old.Close()
	// Had the client written on its pooled connection to the dead leader,
	// that write would be in doubt (TestClientDoesNotResendWriteAfter-
	// ConnectionLoss); this test is about finding the new leader.
	c.http.CloseIdleConnections()
	next := okServer(t)
	go func() {
		time.Sleep(50 * time.Millisecond)
		newLeader.Store(next.addr())
	}()
	if _, err := c.do(context.Background(), produceReq, nil); err != nil {
		t.Fatal(err)
	}
	if next.n.Load() != 1 || follower.n.Load() < 2 {
		t.Fatalf("new leader got %d requests (want 1), follower %d (want >= 2)", next.n.Load(), follower.n.Load())
	}
}

func TestClientDoesNotResendWriteOnUnavailable(t *testing.T) {
	s := errorServer(t, http.StatusServiceUnavailable, wire.CodeUnavailable)
	other := okServer(t)
	c := testClient(time.Second, s.addr(), other.addr())
	_, err := c.do(context.Background(), produceReq, nil)
	if err == nil || !outcomeUnknown(err) || !strings.HasPrefix(err.Error(), "UNAVAILABLE: ") {
		t.Fatalf("err = %v; want UNAVAILABLE with an unknown outcome", err)
	}
	if s.n.Load() != 1 || other.n.Load() != 0 {
		t.Fatalf("requests: %d and %d; want 1 and 0", s.n.Load(), other.n.Load())
	}
}

func TestClientRetriesReadOnUnavailable(t *testing.T) {
	s := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		if n < 3 {
			writeFake(w, http.StatusServiceUnavailable, wire.ErrorBody{Error: wire.APIError{Code: wire.CodeUnavailable, Retriable: true}})
			return
		}
		writeFake(w, http.StatusOK, wire.TopicList{})
	})
	c := testClient(time.Second, s.addr())
	if _, err := c.do(context.Background(), request{method: http.MethodGet, path: "/v1/topics"}, nil); err != nil {
		t.Fatal(err)
	}
	if s.n.Load() != 3 {
		t.Fatalf("%d requests, want 3", s.n.Load())
	}
}

func TestClientDoesNotResendWriteAfterConnectionLoss(t *testing.T) {
	s := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // read the request, die before answering
		}
	})
	other := okServer(t)
	c := testClient(time.Second, s.addr(), other.addr())
	_, err := c.do(context.Background(), produceReq, nil)
	var ue *unknownOutcomeError
	if !errors.As(err, &ue) || !outcomeUnknown(err) {
		t.Fatalf("err = %v; want an unknown outcome", err)
	}
	if s.n.Load() != 1 || other.n.Load() != 0 {
		t.Fatalf("requests: %d and %d; want 1 and 0", s.n.Load(), other.n.Load())
	}
	// A read is simply sent to the next broker.
	if _, err := c.do(context.Background(), request{method: http.MethodGet, path: "/v1/topics"}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestClientGivesUpOnRedirectLoop(t *testing.T) {
	var a, b *testServer
	a = redirectServer(t, func() string { return b.addr() })
	b = redirectServer(t, func() string { return a.addr() })
	c := testClient(200*time.Millisecond, a.addr())
	start := time.Now()
	// A read: a write in flight when the time is up would be in doubt.
	_, err := c.do(context.Background(), request{method: http.MethodGet, path: "/v1/topics"}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "NOT_LEADER: ") || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("gave up after %v; timeout was 200ms", el)
	}
}

func TestClientNoBrokerReachable(t *testing.T) {
	c := testClient(100*time.Millisecond, refusedAddr(t), refusedAddr(t))
	_, err := c.do(context.Background(), request{method: http.MethodGet, path: "/v1/cluster"}, nil)
	if err == nil || !strings.Contains(err.Error(), "no broker answered") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestClientPermanentErrors(t *testing.T) {
	s := errorServer(t, http.StatusNotFound, wire.CodeTopicNotFound)
	c := testClient(time.Second, s.addr())
	_, err := c.do(context.Background(), request{method: http.MethodGet, path: "/v1/topics/x"}, nil)
	if err == nil || err.Error() != "TOPIC_NOT_FOUND: something failed" || s.n.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, s.n.Load())
	}
	// A body that is not the API's error shape still gives a code.
	p := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		http.Error(w, "upstream gone", http.StatusBadGateway)
	})
	c = testClient(time.Second, p.addr())
	_, err = c.do(context.Background(), request{method: http.MethodGet, path: "/v1/topics"}, nil)
	if err == nil || err.Error() != "HTTP_502: upstream gone" {
		t.Fatalf("err = %v", err)
	}
}

func TestClientSendsJSON(t *testing.T) {
	s := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		var req wire.CreateTopicRequest
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil ||
			req.Name != "orders" || r.URL.RawQuery != "" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		writeFake(w, http.StatusCreated, wire.TopicInfo{Name: req.Name})
	})
	c := testClient(time.Second, "http://"+s.addr()+"/")
	var info wire.TopicInfo
	if _, err := c.do(context.Background(), request{method: http.MethodPost, path: "/v1/topics",
		body: wire.CreateTopicRequest{Name: "orders"}}, &info); err != nil || info.Name != "orders" {
		t.Fatalf("info %+v, err %v", info, err)
	}
}

func TestParseBrokers(t *testing.T) {
	got, err := parseBrokers(" 127.0.0.1:7001, ,localhost:7002,http://h:1/")
	if err != nil || strings.Join(got, "|") != "127.0.0.1:7001|localhost:7002|http://h:1/" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{"", ",", "localhost", "h:", "a:1,b"} {
		if _, err := parseBrokers(bad); err == nil {
			t.Errorf("parseBrokers(%q): no error", bad)
		}
	}
}

func TestClientWriteRefusedBeforeProposing(t *testing.T) {
	s := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		writeFake(w, http.StatusServiceUnavailable, wire.ErrorBody{Error: wire.APIError{Code: wire.CodeUnavailable,
			Message: "the broker is shutting down; the request was not applied", Retriable: true}})
	})
	c := testClient(time.Second, s.addr())
	_, err := c.do(context.Background(), produceReq, nil)
	if err == nil || outcomeUnknown(err) || s.n.Load() != 1 {
		t.Fatalf("err = %v (unknown outcome: %v) after %d requests", err, outcomeUnknown(err), s.n.Load())
	}
}

// TestProduceReportsInDoubt: a batch the broker answers 503 UNAVAILABLE
// for is resent (same producer id and sequence) until --timeout, its
// delivery timeout; its messages are then reported in doubt, and mqctl
// stops reading its input.
func TestProduceReportsInDoubt(t *testing.T) {
	var batches atomic.Int32
	var s *testServer
	s = newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		switch {
		case r.URL.Path == "/v1/cluster":
			writeFake(w, http.StatusOK, wire.ClusterStatus{Leader: "n1", LeaderAPI: s.addr(), GroupID: 1})
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
			writeFake(w, http.StatusServiceUnavailable, wire.ErrorBody{Error: wire.APIError{Code: wire.CodeUnavailable,
				Message: "the write's outcome is unknown: leadership lost", Retriable: true}})
		}
	})
	r := mqctl(t, context.Background(), s.addr(), "a\nb\nc\nd\ne\n", "produce", "t", "--batch-size", "2", "--timeout", "300ms")
	if r.code != 1 || batches.Load() < 3 || !strings.HasPrefix(r.stdout, "Produced 2 messages (2 B) to t in ") ||
		!strings.Contains(r.stdout, "In doubt: 2 messages of the failed request (they may or may not be stored).") ||
		!strings.HasPrefix(r.stderr, "mqctl: ") || !strings.Contains(r.stderr, "UNAVAILABLE: the write's outcome is unknown: leadership lost") {
		t.Fatalf("%+v after %d batches", r, batches.Load())
	}
}

// outcomeUnknown reports whether err leaves a write's outcome unknown.
func outcomeUnknown(err error) bool {
	var ue *unknownOutcomeError
	var ae *apiError
	return errors.As(err, &ue) || errors.As(err, &ae) && ae.unknown
}
