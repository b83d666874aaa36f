package client

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/brokertest"
	"github.com/ledgermq/ledgermq/wire"
)

// ---- Against in-process brokers ----

func TestAdminTopics(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	adm := newAdmin(t, brokertest.Addrs(bs))
	ctx := testCtx(t)
	info, err := adm.CreateTopic(ctx, wire.CreateTopicRequest{Name: "orders", Queues: 3, RetentionMs: 3600000})
	if err != nil || info.Name != "orders" || info.Queues != 3 || info.RetentionMs != 3600000 || info.MaxMessageBytes == 0 {
		t.Fatalf("create: %+v %v", info, err)
	}
	_, err = adm.CreateTopic(ctx, wire.CreateTopicRequest{Name: "orders"})
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != wire.CodeTopicExists || !ae.NotApplied || ae.Status != http.StatusConflict ||
		!IsNotApplied(err) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("create again: %#v", err)
	}
	if _, err := adm.CreateTopic(ctx, wire.CreateTopicRequest{Name: "b", Queues: 1}); err != nil {
		t.Fatal(err)
	}
	ts, err := adm.ListTopics(ctx)
	if err != nil || len(ts) != 2 {
		t.Fatalf("list: %+v %v", ts, err)
	}
	info, err = adm.DescribeTopic(ctx, "orders")
	if err != nil || len(info.QueueInfo) != 3 || info.QueueInfo[2].Queue != 2 {
		t.Fatalf("describe: %+v %v", info, err)
	}
	if err := adm.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DescribeTopic(ctx, "orders"); ErrorCode(err) != wire.CodeTopicNotFound {
		t.Fatalf("describe deleted: %v", err)
	}
	if err := adm.DeleteTopic(ctx, "orders"); ErrorCode(err) != wire.CodeTopicNotFound || !IsNotApplied(err) {
		t.Fatalf("delete deleted: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, wire.CreateTopicRequest{Name: "bad name!"}); ErrorCode(err) != wire.CodeInvalidArgument {
		t.Fatalf("create a bad name: %v", err)
	}
}

func TestAdminGroups(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	ctx := testCtx(t)
	p := newProducer(t, brokertest.Addrs(bs), WithLinger(0))
	adm := p.Admin() // shares the producer's transport
	if _, err := adm.CreateTopic(ctx, wire.CreateTopicRequest{Name: "t", Queues: 2}); err != nil {
		t.Fatal(err)
	}
	q := 0
	for range 4 {
		if _, err := p.Produce(ctx, &Message{Topic: "t", Value: []byte("v"), Queue: &q}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adm.DescribeGroup(ctx, "g"); ErrorCode(err) != wire.CodeGroupNotFound {
		t.Fatalf("describe before the group exists: %v", err)
	}
	c, err := NewConsumer(brokertest.Addrs(bs), WithGroup("g", "t"), WithAutoCommit(0), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitOffsets(ctx, map[TopicQueue]uint64{{Topic: "t", Queue: 0}: 3}); err != nil {
		t.Fatal(err)
	}
	g, err := c.Admin().DescribeGroup(ctx, "g")
	if err != nil || len(g.Members) != 1 || len(g.Queues) != 2 {
		t.Fatalf("describe with a member: %+v %v", g, err)
	}
	_, err = adm.ResetOffsets(ctx, "g", wire.ResetOffsetsRequest{Topic: "t", To: "earliest"})
	if ErrorCode(err) != wire.CodeGroupActive || !IsNotApplied(err) {
		t.Fatalf("reset with a member: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	g, err = adm.ResetOffsets(ctx, "g", wire.ResetOffsetsRequest{Topic: "t", To: "offset", Offset: 1})
	if err != nil || len(g.Members) != 0 || committedAt(g, 0) != 1 || committedAt(g, 1) != 0 {
		t.Fatalf("reset: %+v %v", g, err)
	}
	gs, err := adm.ListGroups(ctx)
	if err != nil || len(gs) != 1 || gs[0].Group != "g" {
		t.Fatalf("list: %+v %v", gs, err)
	}
}

func committedAt(g *wire.GroupInfo, queue int) uint64 {
	for _, q := range g.Queues {
		if q.Queue == queue && q.Committed != nil {
			return *q.Committed
		}
	}
	return 0
}

func TestAdminClusterAndTransfer(t *testing.T) {
	bs := brokertest.Group(t, 3, noSync)
	ctx := testCtx(t)
	leader := brokertest.Leader(t, bs)
	var followers []string
	for _, b := range bs {
		if b != leader {
			followers = append(followers, b.Addr())
		}
	}
	// The admin knows only the followers: writes find the leader through
	// NOT_LEADER hints.
	adm := newAdmin(t, followers)
	if _, err := createRetrying(ctx, adm, "x"); err != nil {
		t.Fatal(err)
	}
	st, err := adm.ClusterStatus(ctx)
	if err != nil || len(st.Nodes) != 3 || st.LeaderAPI != leader.Addr() || st.GroupID == 0 {
		t.Fatalf("status: %+v %v", st, err)
	}
	to := ""
	for _, n := range st.Nodes {
		if n.ID != st.Leader && to == "" {
			to = n.ID
		}
	}
	tr, err := adm.TransferLeadership(ctx, to)
	if err != nil || tr.Leader != to {
		t.Fatalf("transfer to %s: %+v %v", to, tr, err)
	}
	// The next write goes to the new leader.
	if _, err := createRetrying(ctx, adm, "y"); err != nil {
		t.Fatal(err)
	}
	if tr.LeaderAPI != "" && adm.conn.target(true) != "http://"+tr.LeaderAPI {
		t.Fatalf("the admin writes to %s, the leader is %s", adm.conn.target(true), tr.LeaderAPI)
	}
	if _, err := adm.TransferLeadership(ctx, "n9"); ErrorCode(err) != wire.CodeInvalidArgument {
		t.Fatalf("transfer to an unknown node: %v", err)
	}
}

// createRetrying creates a topic, resending while a new leader is not yet
// ready (a NOT_LEADER naming itself, which the admin resends) or its first
// attempt left TOPIC_EXISTS behind.
func createRetrying(ctx context.Context, adm *Admin, name string) (*wire.TopicInfo, error) {
	info, err := adm.CreateTopic(ctx, wire.CreateTopicRequest{Name: name, Queues: 1})
	if ErrorCode(err) == wire.CodeTopicExists {
		return adm.DescribeTopic(ctx, name)
	}
	return info, err
}

func newAdmin(t testing.TB, brokers []string, opts ...Opt) *Admin {
	t.Helper()
	opts = append([]Opt{WithLogger(testLogger(t)), WithRetryBackoff(5*time.Millisecond, 20*time.Millisecond)}, opts...)
	a, err := NewAdmin(brokers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ---- Against fake brokers: failures a real one gives only by chance ----

// fakeNode answers with h and counts requests.
type fakeNode struct {
	*httptest.Server
	n      atomic.Int32 // API requests
	probes atomic.Int32 // GET /v1/leader
}

func newFakeNode(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int32)) *fakeNode {
	s := &fakeNode{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/leader" { // the SDK's stall probe: a read, counted apart
			s.probes.Add(1)
			writeAPIError(w, http.StatusNotFound, wire.APIError{Code: wire.CodeNotFound, Message: "no leader view here", NotApplied: true})
			return
		}
		h(w, r, s.n.Add(1))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *fakeNode) addr() string { return strings.TrimPrefix(s.URL, "http://") }

// okNode answers every request with a topic.
func okNode(t *testing.T) *fakeNode {
	return newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		writeJSONAnswer(w, http.StatusOK, wire.TopicInfo{Name: "t", Queues: 1})
	})
}

// errorNode answers every request with e.
func errorNode(t *testing.T, status int, e wire.APIError) *fakeNode {
	return newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int32) { writeAPIError(w, status, e) })
}

// redirectNode is a follower: 421 NOT_LEADER naming leader() (may be "").
func redirectNode(t *testing.T, leader func() string) *fakeNode {
	return newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		writeAPIError(w, http.StatusMisdirectedRequest, wire.APIError{Code: wire.CodeNotLeader, Message: "not the leader",
			Leader: leader(), Retriable: true, NotApplied: true})
	})
}

func writeJSONAnswer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
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

func shortCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestAdminFollowsNotLeader(t *testing.T) {
	leader := okNode(t)
	follower := redirectNode(t, leader.addr)
	adm := newAdmin(t, []string{follower.addr()})
	if _, err := adm.CreateTopic(shortCtx(t, time.Second), wire.CreateTopicRequest{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	if follower.n.Load() != 1 || leader.n.Load() != 1 {
		t.Fatalf("follower got %d requests, leader %d; want 1 and 1", follower.n.Load(), leader.n.Load())
	}
	// The leader is remembered: the next call goes straight to it.
	if err := adm.DeleteTopic(shortCtx(t, time.Second), "t"); err != nil {
		t.Fatal(err)
	}
	if follower.n.Load() != 1 || leader.n.Load() != 2 {
		t.Fatalf("second call: follower got %d requests, leader %d; want 1 and 2", follower.n.Load(), leader.n.Load())
	}
}

func TestAdminSkipsUnreachableBroker(t *testing.T) {
	leader := okNode(t)
	adm := newAdmin(t, []string{refusedAddr(t), leader.addr()})
	// A write may be resent: the refused connection never carried it.
	if _, err := adm.CreateTopic(shortCtx(t, time.Second), wire.CreateTopicRequest{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	if leader.n.Load() != 1 {
		t.Fatalf("leader got %d requests, want 1", leader.n.Load())
	}
}

func TestAdminFollowsFailover(t *testing.T) {
	var newLeader atomic.Value
	newLeader.Store("")
	old := okNode(t)
	follower := redirectNode(t, func() string { return newLeader.Load().(string) })
	adm := newAdmin(t, []string{old.addr(), follower.addr()})
	if _, err := adm.CreateTopic(shortCtx(t, time.Second), wire.CreateTopicRequest{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	// The leader dies; for a while the follower knows no leader, then
	// names the new one.
	old.Close()
	adm.conn.hc.CloseIdleConnections() // else the write is in doubt (TestAdminDoesNotResendWriteAfterConnectionLoss)
	next := okNode(t)
	time.AfterFunc(50*time.Millisecond, func() { newLeader.Store(next.addr()) })
	if _, err := adm.CreateTopic(shortCtx(t, 2*time.Second), wire.CreateTopicRequest{Name: "u"}); err != nil {
		t.Fatal(err)
	}
	if next.n.Load() != 1 || follower.n.Load() < 2 {
		t.Fatalf("new leader got %d requests (want 1), follower %d (want >= 2)", next.n.Load(), follower.n.Load())
	}
}

// TestAdminNotApplied: a write is resent after a retriable answer only
// when the broker says it applied nothing; otherwise its outcome is
// unknown and it is reported, not resent.
func TestAdminNotApplied(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		e          wire.APIError
		wantSent   int32
		wantErr    bool
		notApplied bool
	}{
		{"unavailable, outcome unknown", 503, wire.APIError{Code: wire.CodeUnavailable, Retriable: true,
			Message: "the write's outcome is unknown: leadership lost"}, 1, true, false},
		{"internal", 500, wire.APIError{Code: wire.CodeInternal, Message: "boom"}, 1, true, false},
		{"shutting down, not applied", 503, wire.APIError{Code: wire.CodeUnavailable, Retriable: true, NotApplied: true,
			Message: "the broker is shutting down; the request was not applied"}, 3, false, true},
		{"refused", 409, wire.APIError{Code: wire.CodeTopicExists, NotApplied: true, Message: "exists"}, 1, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int32) {
				if n < 3 {
					writeAPIError(w, tc.status, tc.e)
					return
				}
				writeJSONAnswer(w, http.StatusCreated, wire.TopicInfo{Name: "t"})
			})
			other := okNode(t)
			adm := newAdmin(t, []string{s.addr(), other.addr()})
			_, err := adm.CreateTopic(shortCtx(t, 2*time.Second), wire.CreateTopicRequest{Name: "t"})
			if s.n.Load() != tc.wantSent || other.n.Load() != 0 || (err != nil) != tc.wantErr {
				t.Fatalf("%d and %d requests, err %v", s.n.Load(), other.n.Load(), err)
			}
			if err == nil {
				return
			}
			if ErrorCode(err) != tc.e.Code || IsNotApplied(err) != tc.notApplied || errors.Is(err, ErrUnknownOutcome) == tc.notApplied {
				t.Fatalf("err %v: not applied %v, unknown outcome %v", err, IsNotApplied(err), errors.Is(err, ErrUnknownOutcome))
			}
		})
	}
}

func TestAdminRetriesReadOnUnavailable(t *testing.T) {
	s := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		if n < 3 {
			writeAPIError(w, http.StatusServiceUnavailable, wire.APIError{Code: wire.CodeUnavailable, Retriable: true})
			return
		}
		writeJSONAnswer(w, http.StatusOK, wire.TopicList{Topics: []wire.TopicInfo{{Name: "t"}}})
	})
	adm := newAdmin(t, []string{s.addr()})
	if ts, err := adm.ListTopics(shortCtx(t, time.Second)); err != nil || len(ts) != 1 {
		t.Fatalf("%+v %v", ts, err)
	}
	if s.n.Load() != 3 {
		t.Fatalf("%d requests, want 3", s.n.Load())
	}
}

func TestAdminDoesNotResendWriteAfterConnectionLoss(t *testing.T) {
	s := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close() // read the request, die before answering
		}
	})
	other := okNode(t)
	adm := newAdmin(t, []string{s.addr(), other.addr()})
	err := adm.DeleteTopic(shortCtx(t, time.Second), "t")
	if !errors.Is(err, ErrUnknownOutcome) || IsNotApplied(err) || ErrorCode(err) != "" ||
		!strings.Contains(err.Error(), "delete topic t: the outcome is unknown") {
		t.Fatalf("err = %v; want an unknown outcome", err)
	}
	if s.n.Load() != 1 || other.n.Load() != 0 {
		t.Fatalf("requests: %d and %d; want 1 and 0", s.n.Load(), other.n.Load())
	}
	if other.probes.Load() != 1 { // the lost answer made the client ask who leads now
		t.Fatalf("%d leader probes on the other broker, want 1", other.probes.Load())
	}
	// A read is simply sent to the next broker.
	if _, err := adm.DescribeTopic(shortCtx(t, time.Second), "t"); err != nil {
		t.Fatal(err)
	}
}

func TestAdminGivesUp(t *testing.T) {
	var a, b *fakeNode
	a = redirectNode(t, func() string { return b.addr() })
	b = redirectNode(t, func() string { return a.addr() })
	adm := newAdmin(t, []string{a.addr()})
	start := time.Now()
	_, err := adm.CreateTopic(shortCtx(t, 200*time.Millisecond), wire.CreateTopicRequest{Name: "t"})
	// The deadline ends the loop: usually between two NOT_LEADER answers
	// (not applied); on a loaded machine it may cut a request in flight,
	// whose outcome the client then cannot know.
	notLeader := ErrorCode(err) == wire.CodeNotLeader && IsNotApplied(err)
	cutShort := errors.Is(err, ErrUnknownOutcome) && !IsNotApplied(err)
	if !errors.Is(err, context.DeadlineExceeded) || !notLeader && !cutShort {
		t.Fatalf("redirect loop: %v", err)
	}
	if el := time.Since(start); el > 10*time.Second { // a bound on looping, not a timing figure
		t.Fatalf("still redirecting %v after a 200ms deadline", el)
	}
	adm = newAdmin(t, []string{refusedAddr(t), refusedAddr(t)})
	_, err = adm.ClusterStatus(shortCtx(t, 100*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "refused") ||
		!strings.HasPrefix(err.Error(), "ledgermq: cluster status: ") {
		t.Fatalf("no broker reachable: %v", err)
	}
}

func TestAdminPermanentErrors(t *testing.T) {
	s := errorNode(t, http.StatusNotFound, wire.APIError{Code: wire.CodeTopicNotFound, Message: "topic x not found", NotApplied: true})
	adm := newAdmin(t, []string{s.addr()})
	_, err := adm.DescribeTopic(shortCtx(t, time.Second), "x")
	if err == nil || err.Error() != "ledgermq: TOPIC_NOT_FOUND: topic x not found" || s.n.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, s.n.Load())
	}
	// A body that is not the API's error shape still gives a code.
	p := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		http.Error(w, "upstream gone", http.StatusBadGateway)
	})
	adm = newAdmin(t, []string{p.addr()})
	err = adm.DeleteTopic(shortCtx(t, time.Second), "x")
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != "HTTP_502" || ae.Message != "upstream gone" || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("err = %v", err)
	}
}

func TestAdminSendsJSON(t *testing.T) {
	s := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		var req wire.ResetOffsetsRequest
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil ||
			r.URL.EscapedPath() != "/v1/groups/a%2Fb/reset-offsets" || req.To != "latest" || req.Topic != "t" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		writeJSONAnswer(w, http.StatusOK, wire.GroupInfo{Group: "a/b"})
	})
	adm := newAdmin(t, []string{"http://" + s.addr() + "/"})
	g, err := adm.ResetOffsets(shortCtx(t, time.Second), "a/b", wire.ResetOffsetsRequest{Topic: "t", To: "latest"})
	if err != nil || g.Group != "a/b" {
		t.Fatalf("%+v %v", g, err)
	}
}

func TestNewAdminBrokers(t *testing.T) {
	for _, bad := range [][]string{nil, {"localhost"}, {"h:"}, {"a:1", "b"}, {"ftp://h:1"}} {
		if _, err := NewAdmin(bad); err == nil {
			t.Errorf("NewAdmin(%q): no error", bad)
		}
	}
	a, err := NewAdmin([]string{"127.0.0.1:7001", "http://h:1/"})
	if err != nil || a.conn.brokers[1] != "http://h:1" {
		t.Fatalf("%v", err)
	}
	a.Close()
}

// TestDecodeErrorNotApplied: not_applied comes from the body's field, never
// from its message; without the API's body only a 421 is known not applied.
func TestDecodeErrorNotApplied(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   bool
	}{
		{503, `{"error":{"code":"UNAVAILABLE","message":"the request was not applied","retriable":true,"not_applied":false}}`, false},
		{503, `{"error":{"code":"UNAVAILABLE","message":"shutting down","retriable":true,"not_applied":true}}`, true},
		{409, `{"error":{"code":"TOPIC_EXISTS","message":"x","not_applied":true}}`, true},
		{421, `not the leader`, true},
		{503, `not applied`, false},
		{502, `bad gateway`, false},
	} {
		e := decodeError(tc.status, []byte(tc.body))
		if e.NotApplied != tc.want || IsNotApplied(e) != tc.want {
			t.Errorf("%d %s: not applied %v, want %v", tc.status, tc.body, e.NotApplied, tc.want)
		}
	}
	if !IsNotApplied(clientError(wire.CodeInvalidArgument, "x")) || IsNotApplied(errors.New("x")) ||
		IsNotApplied(&transportError{sent: true, err: errors.New("reset")}) || !IsNotApplied(&transportError{err: errors.New("refused")}) {
		t.Error("IsNotApplied")
	}
}
