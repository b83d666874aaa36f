package broker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/testnet"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/wire"
)

// startGroup starts n brokers in this process and waits for a leader.
func startGroup(t *testing.T, n int, tweak func(*Config)) []*Broker {
	t.Helper()
	addrs := testnet.FreeAddrs(t, 2*n)
	var peers []replication.Peer
	for i := 0; i < n; i++ {
		peers = append(peers, replication.Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: addrs[n+i]})
	}
	var out []*Broker
	for i, p := range peers {
		cfg := DefaultConfig()
		cfg.ID, cfg.Peers, cfg.RaftListen, cfg.Listen = p.ID, peers, p.RaftAddr, addrs[i]
		cfg.DataDir = t.TempDir()
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg.MaxRequestBytes = 1 << 20
		// These tests are about the API, not failover (replication/ and the
		// e2e fault lab test that): slow detection keeps a starved test
		// process (race detector, parallel packages on 2 cores) from
		// changing leaders under a test that talks to the leader.
		cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout, cfg.Raft.FailoverAfter = time.Second, time.Second, time.Second
		if tweak != nil {
			tweak(&cfg)
		}
		b, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		t.Cleanup(func() { b.Close() })
	}
	waitFor(t, 10*time.Second, "a leader", func() bool {
		for _, b := range out {
			if b.node.IsLeader() {
				return true
			}
		}
		return false
	})
	return out
}

// waitFor polls cond every 10 ms until it holds, failing the test after
// timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("no %s within %v", what, timeout)
		case <-tick.C:
		}
	}
}

func leaderOf(t *testing.T, bs []*Broker) *Broker {
	t.Helper()
	for _, b := range bs {
		if b.node.IsLeader() {
			return b
		}
	}
	t.Fatal("no leader")
	return nil
}

type resp struct {
	status int
	body   []byte
	hdr    http.Header
}

func call(t *testing.T, method, url, ctype string, body []byte) resp {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, b, r.Header}
}

// oversize announces a 64 MiB body and sends none of it: the broker must
// refuse it from the headers alone.
func oversize(t *testing.T, addr string) resp {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/topics/orders/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 64<<20)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response to an oversize request: %v", err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, b, r.Header}
}

func expectCode(t *testing.T, r resp, status int, code string) wire.APIError {
	t.Helper()
	var e wire.ErrorBody
	if err := json.Unmarshal(r.body, &e); err != nil || r.status != status || e.Error.Code != code {
		t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
	}
	return e.Error
}

func TestAPIErrorsAndRoundTrip(t *testing.T) {
	bs := startGroup(t, 3, nil)
	l := leaderOf(t, bs)
	base := "http://" + l.Addr()
	var follower *Broker
	for _, b := range bs {
		if b != l {
			follower = b
		}
	}
	fbase := "http://" + follower.Addr()

	r := call(t, "POST", base+"/v1/topics", "", []byte(`{"name":"orders","queues":3}`))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	expectCode(t, call(t, "POST", base+"/v1/topics", "", []byte(`{"name":"orders"}`)), 409, wire.CodeTopicExists)
	expectCode(t, call(t, "POST", base+"/v1/topics", "", []byte(`{"name":"a/b"}`)), 400, wire.CodeInvalidArgument)
	expectCode(t, call(t, "POST", base+"/v1/topics", "", []byte(`{"name":"x","queues":0,"extra":1}`)), 400, wire.CodeInvalidArgument)
	expectCode(t, call(t, "POST", base+"/v1/topics", "", []byte(`{"name":`)), 400, wire.CodeInvalidArgument)

	// A write on a follower is refused and names the leader's API address
	// (once the follower has learned it from its peers).
	var nl wire.APIError
	waitFor(t, 5*time.Second, "leader address in NOT_LEADER", func() bool {
		nl = expectCode(t, call(t, "POST", fbase+"/v1/topics/orders/messages", "", []byte(`{"messages":[{"value":"x"}]}`)), 421, wire.CodeNotLeader)
		return nl.Leader != ""
	})
	if nl.Leader != l.Addr() || !nl.Retriable {
		t.Fatalf("NOT_LEADER names %q (retriable %v), leader is %s", nl.Leader, nl.Retriable, l.Addr())
	}

	expectCode(t, call(t, "POST", base+"/v1/topics/nope/messages", "", []byte(`{"messages":[{"value":"x"}]}`)), 404, wire.CodeTopicNotFound)
	expectCode(t, call(t, "POST", base+"/v1/topics/orders/messages", "", []byte(`{"messages":[]}`)), 400, wire.CodeInvalidArgument)
	expectCode(t, call(t, "POST", base+"/v1/topics/orders/messages", "", []byte(`{"messages":[{"value":"x","queue":9}]}`)), 404, wire.CodeQueueNotFound)
	expectCode(t, call(t, "POST", base+"/v1/topics/orders/messages", "", []byte(`{"messages":[{"value":"x","value_base64":"eA=="}]}`)), 400, wire.CodeInvalidArgument)
	big := strings.Repeat("x", 1<<20+1)
	expectCode(t, call(t, "POST", base+"/v1/topics/orders/messages", "", []byte(`{"messages":[{"value":"`+big[:600000]+`"}]}`)), 200, "")
	expectCode(t, oversize(t, l.Addr()), 413, wire.CodeRequestTooLarge)
	expectCode(t, call(t, "GET", base+"/v1/topics/orders/queues/x/messages", "", nil), 400, wire.CodeInvalidArgument)
	expectCode(t, call(t, "GET", base+"/v1/topics/orders/queues/7/messages", "", nil), 404, wire.CodeQueueNotFound)
	expectCode(t, call(t, "GET", base+"/v1/topics/orders/queues/0/messages?offset=-1", "", nil), 400, wire.CodeInvalidArgument)
	expectCode(t, call(t, "GET", base+"/v1/topics/orders/queues/0/messages?offset=99", "", nil), 416, wire.CodeOffsetOutOfRange)
	// Only the leader says an offset is beyond the end: a follower may lag
	// a reader who read there elsewhere. It waits like a long poll, then
	// sends the reader on.
	waitFor(t, 5*time.Second, "follower caught up", func() bool {
		return call(t, "GET", fbase+"/v1/topics/orders/queues/0/messages?offset=0", "", nil).status == 200
	})
	start := time.Now()
	e := expectCode(t, call(t, "GET", fbase+"/v1/topics/orders/queues/0/messages?offset=99&wait_ms=300", "", nil), 503, wire.CodeUnavailable)
	if !e.Retriable || !e.NotApplied || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("a follower beyond its end: %+v after %v", e, time.Since(start))
	}
	expectCode(t, call(t, "GET", base+"/v1/nowhere", "", nil), 404, wire.CodeNotFound)
	expectCode(t, call(t, "PUT", base+"/v1/topics", "", nil), 405, wire.CodeMethodNotAllowed)
	expectCode(t, call(t, "POST", base+"/v1/topics/orders/queues/0/batches", "text/plain", []byte("x")), 415, wire.CodeUnsupportedMedia)
	expectCode(t, call(t, "POST", base+"/v1/topics/orders/queues/0/batches", wire.ContentType, []byte("garbage")), 400, wire.CodeMalformedBatch)
	tooBig, _ := wire.Encode([]wire.Message{{Value: make([]byte, 1<<20+10)}}, wire.CodecZstd, wire.Producer{}, 1, time.Now())
	expectCode(t, call(t, "POST", base+"/v1/topics/orders/queues/0/batches", wire.ContentType, tooBig), 413, wire.CodeMessageTooLarge)

	// JSON produce and fetch, read from a follower.
	r = call(t, "POST", base+"/v1/topics/orders/messages", "", []byte(`{"messages":[{"key":"k","value":"a","headers":{"h":"1"}},{"key":"k","value":"b"},{"value_base64":"AP8=","queue":1}]}`))
	var pr wire.ProduceResponse
	if r.status != 200 || json.Unmarshal(r.body, &pr) != nil || len(pr.Results) != 3 {
		t.Fatalf("produce: %d %s", r.status, r.body)
	}
	kq := KeyQueue([]byte("k"), 3)
	if pr.Results[0].Queue != kq || pr.Results[1].Queue != kq || pr.Results[1].Offset != pr.Results[0].Offset+1 || pr.Results[2].Queue != 1 {
		t.Fatalf("results %+v", pr.Results)
	}
	var fr wire.FetchResponse
	for i := 0; i < 50; i++ { // the follower applies shortly after the leader
		r = call(t, "GET", fmt.Sprintf("%s/v1/topics/orders/queues/%d/messages?offset=%d&wait_ms=200", fbase, kq, pr.Results[0].Offset), "", nil)
		if json.Unmarshal(r.body, &fr) == nil && len(fr.Messages) == 2 {
			break
		}
	}
	if len(fr.Messages) != 2 || *fr.Messages[0].Value != "a" || fr.Messages[0].Headers["h"] != "1" || *fr.Messages[1].Key != "k" || fr.NextOffset != pr.Results[1].Offset+1 {
		t.Fatalf("fetch: %s", r.body)
	}

	// Binary batch produce and fetch: served back byte for byte.
	raw, _ := wire.Encode([]wire.Message{{Value: []byte("z1")}, {Value: []byte("z2")}}, wire.CodecS2, wire.Producer{}, 1, time.Now())
	r = call(t, "POST", base+"/v1/topics/orders/queues/2/batches", wire.ContentType, raw)
	var br wire.BatchProduceResponse
	if r.status != 200 || json.Unmarshal(r.body, &br) != nil || br.Count != 2 {
		t.Fatalf("batch produce: %d %s", r.status, r.body)
	}
	r = call(t, "GET", fmt.Sprintf("%s/v1/topics/orders/queues/2/batches?offset=%d", base, br.BaseOffset), "", nil)
	if r.status != 200 || len(r.body) != wire.FetchFrameHeader+len(raw) || binary.LittleEndian.Uint64(r.body) != br.BaseOffset || !bytes.Equal(r.body[wire.FetchFrameHeader:], raw) {
		t.Fatalf("batch fetch: %d, %d bytes", r.status, len(r.body))
	}

	// Idempotent produce: a resent batch is answered with its original
	// offsets and stored once.
	var ip wire.InitProducerResponse
	if r = call(t, "POST", base+"/v1/producers", "", nil); r.status != 200 || json.Unmarshal(r.body, &ip) != nil || ip.ProducerID == 0 {
		t.Fatalf("init producer: %d %s", r.status, r.body)
	}
	idem, _ := wire.Encode([]wire.Message{{Value: []byte("once")}}, wire.CodecNone, wire.Producer{ID: ip.ProducerID}, 1, time.Now())
	var first, again wire.BatchProduceResponse
	json.Unmarshal(call(t, "POST", base+"/v1/topics/orders/queues/2/batches", wire.ContentType, idem).body, &first)
	json.Unmarshal(call(t, "POST", base+"/v1/topics/orders/queues/2/batches", wire.ContentType, idem).body, &again)
	if first.Duplicate || !again.Duplicate || again.BaseOffset != first.BaseOffset {
		t.Fatalf("idempotent resend: first %+v again %+v", first, again)
	}
	gap, _ := wire.Encode([]wire.Message{{Value: []byte("gap")}}, wire.CodecNone, wire.Producer{ID: ip.ProducerID, Sequence: 5}, 1, time.Now())
	expectCode(t, call(t, "POST", base+"/v1/topics/orders/queues/2/batches", wire.ContentType, gap), 409, wire.CodeOutOfOrderSequence)
	unknown, _ := wire.Encode([]wire.Message{{Value: []byte("u")}}, wire.CodecNone, wire.Producer{ID: 424242}, 1, time.Now())
	expectCode(t, call(t, "POST", base+"/v1/topics/orders/queues/2/batches", wire.ContentType, unknown), 400, wire.CodeUnknownProducer)

	// A key that is not UTF-8 comes back as key_base64.
	bk, _ := wire.Encode([]wire.Message{{Key: []byte{0xff, 0x00}, Value: []byte("v")}}, wire.CodecNone, wire.Producer{}, 1, time.Now())
	json.Unmarshal(call(t, "POST", base+"/v1/topics/orders/queues/1/batches", wire.ContentType, bk).body, &br)
	var kr wire.FetchResponse
	json.Unmarshal(call(t, "GET", fmt.Sprintf("%s/v1/topics/orders/queues/1/messages?offset=%d", base, br.BaseOffset), "", nil).body, &kr)
	if len(kr.Messages) != 1 || kr.Messages[0].Key != nil || kr.Messages[0].KeyBase64 == nil || *kr.Messages[0].KeyBase64 != "/wA=" {
		t.Fatalf("binary key: %+v", kr.Messages)
	}

	// Long poll wakes when data arrives.
	var ti wire.TopicInfo
	json.Unmarshal(call(t, "GET", base+"/v1/topics/orders", "", nil).body, &ti)
	next0 := ti.QueueInfo[0].Next
	done := make(chan resp, 1)
	go func() {
		done <- call(t, "GET", fmt.Sprintf("%s/v1/topics/orders/queues/0/messages?offset=%d&wait_ms=5000", base, next0), "", nil)
	}()
	time.Sleep(100 * time.Millisecond)
	call(t, "POST", base+"/v1/topics/orders/messages", "", []byte(`{"messages":[{"value":"late","queue":0}]}`))
	select {
	case r = <-done:
		if !strings.Contains(string(r.body), "late") {
			t.Fatalf("long poll: %s", r.body)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("long poll did not wake")
	}

	// Cluster, health, metrics, delete.
	var cs wire.ClusterStatus
	r = call(t, "GET", fbase+"/v1/cluster", "", nil)
	if json.Unmarshal(r.body, &cs) != nil || cs.Leader != l.cfg.ID || len(cs.Nodes) != 3 {
		t.Fatalf("cluster: %s", r.body)
	}
	if r = call(t, "GET", base+"/readyz", "", nil); r.status != 200 {
		t.Fatalf("readyz %d", r.status)
	}
	r = call(t, "GET", base+"/metrics", "", nil)
	for _, want := range []string{"ledgermq_produced_messages_total", "ledgermq_commit_latency_seconds_bucket", `ledgermq_raft_role{role="leader"} 1`, "ledgermq_follower_lag_entries", "ledgermq_log_segments", "ledgermq_index_batches ", "go_goroutines ", `code="TOPIC_NOT_FOUND"`} {
		if !strings.Contains(string(r.body), want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	if r = call(t, "DELETE", base+"/v1/topics/orders", "", nil); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	expectCode(t, call(t, "GET", base+"/v1/topics/orders", "", nil), 404, wire.CodeTopicNotFound)
}

// TestIdleConnectionTimesOutSilently: a connection that sends nothing
// within the read timeout is closed without an answer (an answer there
// reaches a client that holds it for idle: "unsolicited response").
func TestIdleConnectionTimesOutSilently(t *testing.T) {
	bs := startGroup(t, 1, func(c *Config) { c.requestReadTimeout = 200 * time.Millisecond })
	for _, partial := range []string{"", "GET /v1/leader HTTP/1.1\r\nHost: x\r\n"} {
		c, err := net.Dial("tcp", bs[0].Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(partial)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if len(got) != 0 || err != nil {
			t.Fatalf("after %q: read %q, %v; want the connection closed without an answer", partial, got, err)
		}
	}
	// A request that arrives in time is answered as usual.
	if r := call(t, "GET", "http://"+bs[0].Addr()+"/v1/leader", "", nil); r.status != 200 {
		t.Fatalf("leader: %d %s", r.status, r.body)
	}
}
