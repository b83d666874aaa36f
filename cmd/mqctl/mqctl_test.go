package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  string
		n    int
		v    bool
	}{
		{[]string{"orders", "--n", "3", "-v"}, "orders", 3, true},
		{[]string{"--n=3", "orders"}, "orders", 3, false},
		{[]string{"a", "-v", "b"}, "a b", 0, true},
		{[]string{"-v", "--", "-x", "--n"}, "-x --n", 0, true},
		{nil, "", 0, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		n := fs.Int("n", 0, "")
		v := fs.Bool("v", false, "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || strings.Join(pos, " ") != tc.pos || *n != tc.n || *v != tc.v {
			t.Errorf("%q: pos %q n %d v %v err %v", tc.args, pos, *n, *v, err)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterspersed(fs, []string{"a", "--nope"}); err == nil {
		t.Error("unknown flag after an argument: no error")
	}
}

func TestParseHeader(t *testing.T) {
	for in, want := range map[string][2]string{"k=v": {"k", "v"}, "k=": {"k", ""}, "k=a=b": {"k", "a=b"}, "x-id= 1 ": {"x-id", " 1 "}} {
		k, v, err := parseHeader(in)
		if err != nil || k != want[0] || v != want[1] {
			t.Errorf("parseHeader(%q) = %q, %q, %v", in, k, v, err)
		}
	}
	for _, bad := range []string{"kv", "=v", ""} {
		if _, _, err := parseHeader(bad); err == nil {
			t.Errorf("parseHeader(%q): no error", bad)
		}
	}
	var m map[string]string
	h := headerFlag{&m}
	if err := h.Set("a=1"); err != nil {
		t.Fatal(err)
	}
	if err := h.Set("b=2"); err != nil {
		t.Fatal(err)
	}
	if err := h.Set("a=3"); err == nil {
		t.Error("duplicate header: no error")
	}
	if h.String() != "a=1,b=2" || (headerFlag{}).String() != "" {
		t.Errorf("String() = %q", h.String())
	}
}

func TestRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour,
		"1d12h": 36 * time.Hour, "90m": 90 * time.Minute, "1.5h": 90 * time.Minute} {
		if got, err := parseRetention(in); err != nil || got != want {
			t.Errorf("parseRetention(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "d", "x", "-1h", "1d-2h", "7days", "0s", "999999999999d"} {
		if _, err := parseRetention(bad); err == nil {
			t.Errorf("parseRetention(%q): no error", bad)
		}
	}
	for ms, want := range map[int64]string{0: "0", 604800000: "7d", 129600000: "1d12h", 5400000: "1h30m",
		3600000: "1h", 90000: "1m30s", 1500: "1.5s", 86400000 + 1000: "1d1s"} {
		if got := formatMs(ms); got != want {
			t.Errorf("formatMs(%d) = %q, want %q", ms, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 1 << 20: "1 MiB", 5 << 30: "5 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := mqctl(t, ctx, "", "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Examples:") {
			t.Fatalf("%q: code %d, stdout %q", args, r.code, r.stdout)
		}
		for _, cmd := range []string{"topic create", "topic list", "topic describe", "topic delete", "produce TOPIC",
			"consume TOPIC", "cluster status", "cluster transfer-leadership"} {
			if !strings.Contains(r.stdout, "\n  "+cmd) {
				t.Errorf("usage lacks %q", cmd)
			}
		}
	}
	r := mqctl(t, ctx, "", "", "produce", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: mqctl produce TOPIC") || !strings.Contains(r.stdout, "--batch-size N") ||
		!strings.Contains(r.stdout, "(default 500)") || strings.Contains(r.stdout, "--brokers host") {
		t.Fatalf("produce -h: code %d, stdout:\n%s", r.code, r.stdout)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"topic"}, "topic: missing subcommand"},
		{[]string{"topic", "create"}, "topic create: missing topic NAME"},
		{[]string{"topic", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"--format", "yaml", "topic", "list"}, "--format must be text or json"},
		{[]string{"topic", "list", "--brokers", "nohost"}, `"nohost" is not host:port`},
		{[]string{"produce", "t", "--header", "novalue"}, `header "novalue" is not k=v`},
		{[]string{"produce", "t", "--queue", "-1"}, "queue must be a non-negative integer"},
		{[]string{"consume", "t", "--offset", "3", "--from-beginning"}, "at most one of"},
		{[]string{"consume", "t", "--from-time", "yesterday"}, "--from-time must be RFC3339"},
		{[]string{"consume", "t", "--values-only", "--format", "json"}, "--values-only is for --format text"},
		{[]string{"topic", "create", "x", "--retention", "forever"}, "--retention: invalid duration"},
	} {
		r := mqctl(t, ctx, "127.0.0.1:1", "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.msg) || !strings.Contains(r.stderr, "-h' for usage") {
			t.Errorf("%q: code %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.msg)
		}
	}
}

func TestTopicCommands(t *testing.T) {
	ctx := context.Background()
	g := newFakeGroup(t, 3)
	g.setLeader(2)
	r := mqctl(t, ctx, g.brokers(), "", "topic", "create", "orders", "--queues", "2", "--retention", "1d",
		"--retention-bytes", "1048576", "--max-message-bytes", "2048")
	if r.code != 0 || !strings.Contains(r.stdout, "Created topic orders.") || !strings.Contains(r.stdout, "Retention:          1d\n") {
		t.Fatalf("create: %+v", r)
	}
	// Tried broker 0, sent to the leader it named.
	if log := g.log(); !slices.Equal(log, []string{"0 POST /v1/topics", "2 POST /v1/topics"}) {
		t.Fatalf("requests %q", log)
	}
	r = mqctl(t, ctx, g.brokers(), "", "topic", "create", "orders")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "mqctl: TOPIC_EXISTS: topic orders already exists") {
		t.Fatalf("create again: %+v", r)
	}
	mqctl(t, ctx, g.brokers(), "", "topic", "create", "a-first")
	r = mqctl(t, ctx, "", "", "--brokers", g.brokers(), "topic", "list")
	want := "NAME     QUEUES  RETENTION  RETENTION BYTES  MAX MESSAGE BYTES\n" +
		"a-first  4       7d         unlimited        1 MiB\n" +
		"orders   2       1d         1 MiB            2 KiB\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("list: code %d\n%s\nwant\n%s", r.code, r.stdout, want)
	}
	// --format json, before or after the command, prints the API's JSON.
	for _, args := range [][]string{{"--format", "json", "topic", "describe", "orders"}, {"topic", "describe", "orders", "--format=json"}} {
		r = mqctl(t, ctx, g.brokers(), "", args...)
		var info wire.TopicInfo
		if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.Name != "orders" || len(info.QueueInfo) != 2 {
			t.Fatalf("%q: %+v (%v)", args, r, err)
		}
	}
	r = mqctl(t, ctx, g.brokers(), "", "topic", "delete", "orders")
	if r.code != 0 || r.stdout != "Deleted topic orders.\n" {
		t.Fatalf("delete: %+v", r)
	}
	r = mqctl(t, ctx, g.brokers(), "", "topic", "describe", "orders")
	if r.code != 1 || r.stderr != "mqctl: TOPIC_NOT_FOUND: topic orders not found\n" {
		t.Fatalf("describe deleted: %+v", r)
	}
}

func TestProduceConsume(t *testing.T) {
	ctx := context.Background()
	addr := startBroker(t)
	run := func(stdin string, args ...string) runResult {
		t.Helper()
		return runLeader(t, ctx, addr, stdin, args...)
	}
	if r := run("", "topic", "create", "t", "--queues", "3"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	in := "one\ntwo\r\n\nthree\nfour\nfive\nsix\nseven"
	r := run(in, "produce", "t", "--queue", "0", "--batch-size", "3")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Produced 8 messages (27 B) to t in ") ||
		!strings.HasSuffix(r.stdout, "\n  queue 0: 8 messages, offsets 0-7\n") {
		t.Fatalf("produce: %+v", r)
	}
	if r = run("q1\n", "produce", "t", "--queue", "1", "--compression", "zstd"); r.code != 0 ||
		!strings.HasSuffix(r.stdout, "\n  queue 1: 1 message, offset 0\n") {
		t.Fatalf("produce zstd: %+v", r)
	}
	r = run("\xff\xfe\n", "produce", "t", "--key", "k 1", "--header", "b=x=y", "--header", "a=1",
		"--queue", "2", "--format", "json")
	var sum produceSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 || sum.Messages != 1 || sum.Bytes != 2 ||
		len(sum.Queues) != 1 || sum.Queues[0] != (queueRange{Queue: 2, Messages: 1, FirstOffset: 0, LastOffset: 0}) {
		t.Fatalf("produce json: %+v (%v)", r, err)
	}

	// All queues in turn.
	r = run("", "consume", "t")
	want := "0/0 - one\n0/1 - two\n0/2 - \n0/3 - three\n0/4 - four\n0/5 - five\n0/6 - six\n0/7 - seven\n" +
		"1/0 - q1\n" +
		"2/0 \"k 1\" base64://4=\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("consume: %+v\nwant\n%s", r, want)
	}
	r = run("", "consume", "t", "--queue", "0", "--offset", "6", "--values-only")
	if r.code != 0 || r.stdout != "six\nseven\n" {
		t.Fatalf("consume values: %+v", r)
	}
	r = run("", "consume", "t", "--queue", "2", "--values-only")
	if r.code != 0 || r.stdout != "\xff\xfe\n" {
		t.Fatalf("consume binary value: %+v", r)
	}
	r = run("", "consume", "t", "--count", "10", "--format", "json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 10 {
		t.Fatalf("consume count: %+v", r)
	}
	var m consumedMessage
	if err := json.Unmarshal([]byte(lines[8]), &m); err != nil || m.Queue != 1 || m.Offset != 0 || *m.Value != "q1" {
		t.Fatalf("json line %s: %+v %v", lines[8], m, err)
	}
	if err := json.Unmarshal([]byte(lines[9]), &m); err != nil || m.Queue != 2 || *m.Key != "k 1" || *m.ValueBase64 != "//4=" ||
		len(m.Headers) != 2 || m.Headers["a"] != "1" || m.Headers["b"] != "x=y" {
		t.Fatalf("json line %s: %+v %v", lines[9], m, err)
	}
	r = run("", "consume", "t", "--queue", "2", "--offset", "9")
	if r.code != 1 || r.stderr != "mqctl: OFFSET_OUT_OF_RANGE: offset 9 is outside the stored range [0, 1] of t/2\n" {
		t.Fatalf("consume out of range: %+v", r)
	}
	r = run("", "consume", "t", "--queue", "3")
	if r.code != 1 || r.stderr != "mqctl: QUEUE_NOT_FOUND: topic t has queues 0..2, not 3\n" {
		t.Fatalf("consume bad queue: %+v", r)
	}
	r = run("x\n", "produce", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, "TOPIC_NOT_FOUND: topic not found: nope") ||
		!strings.Contains(r.stdout, "Not stored: 1 message of the failed request.") {
		t.Fatalf("produce to a missing topic: %+v", r)
	}
	if r = run("x\n", "produce", "t", "--compression", "lz4"); r.code != 2 || !strings.Contains(r.stderr, "want none, gzip, snappy, s2 or zstd") {
		t.Fatalf("bad --compression: %+v", r)
	}

	// Unkeyed messages without --queue go round-robin: every one is
	// stored once, and the summary says where.
	run("", "topic", "create", "rr", "--queues", "4")
	var lines2 []string
	for i := range 50 {
		lines2 = append(lines2, strconv.Itoa(i))
	}
	r = run(strings.Join(lines2, "\n"), "produce", "rr", "--batch-size", "7", "--format", "json")
	sum = produceSummary{}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 || sum.Messages != 50 {
		t.Fatalf("produce round-robin: %+v (%v)", r, err)
	}
	var n int64
	for _, q := range sum.Queues {
		n += q.Messages
	}
	r = run("", "consume", "rr", "--values-only")
	got := strings.Split(strings.TrimSpace(r.stdout), "\n")
	slices.SortFunc(got, func(x, y string) int { a, _ := strconv.Atoi(x); b, _ := strconv.Atoi(y); return a - b })
	if n != 50 || r.code != 0 || !slices.Equal(got, lines2) {
		t.Fatalf("round-robin: %+v, consumed %q", sum, r.stdout)
	}
}

// runLeader is mqctl against a broker that may not have taken up its
// leadership yet: it retries what NOT_LEADER refused.
func runLeader(t *testing.T, ctx context.Context, addr, stdin string, args ...string) runResult {
	t.Helper()
	var r runResult
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r = mqctl(t, ctx, addr, stdin, args...); !strings.Contains(r.stderr, "NOT_LEADER") || time.Now().After(deadline) {
			return r
		}
	}
}

// notifyBuffer is a stdout that tests read while mqctl writes.
type notifyBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (n *notifyBuffer) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.Write(p)
}

func (n *notifyBuffer) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.String()
}

func TestConsumeFollow(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runLeader(t, ctx, addr, "", "topic", "create", "t", "--queues", "4")
	runLeader(t, ctx, addr, "old\n", "produce", "t", "--queue", "0")
	out := &notifyBuffer{}
	done := make(chan runResult)
	go func() { done <- mqctlTo(t, ctx, out, addr, "", "consume", "t", "--follow", "--from-end") }()
	time.Sleep(100 * time.Millisecond) // the consumer is long-polling all queues now
	start := time.Now()
	mqctl(t, context.Background(), addr, "new\n", "produce", "t", "--queue", "3")
	for out.String() == "" && time.Since(start) < 2*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	// The message shows up well before queue 0's 1s long poll ends.
	if el := time.Since(start); el > 700*time.Millisecond {
		t.Errorf("the message took %v to show", el)
	}
	cancel()
	r := <-done
	if r.code != 0 || out.String() != "3/0 - new\n" || r.stderr != "" {
		t.Fatalf("follow: %+v, stdout %q", r, out.String())
	}
	// Stopping at --count.
	r = mqctl(t, context.Background(), addr, "", "consume", "t", "--follow", "--count", "2")
	if r.code != 0 || r.stdout != "0/0 - old\n3/0 - new\n" {
		t.Fatalf("follow --count: %+v", r)
	}
}

func TestClusterCommands(t *testing.T) {
	ctx := context.Background()
	g := newFakeGroup(t, 3)
	g.setLeader(1)
	r := mqctl(t, ctx, g.brokers(), "", "cluster", "status")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Group 1, term 3, leader n2 ("+g.addr(1)+"); answered by n1.\n\n") ||
		!strings.Contains(r.stdout, "n3    follower  3     98    98      98       1    -    "+g.addr(2)+"  yes\n") {
		t.Fatalf("status: %+v", r)
	}
	r = mqctl(t, ctx, g.brokers(), "", "cluster", "transfer-leadership", "--to", "n3")
	if r.code != 0 || r.stdout != "Leadership transferred: the leader is now n3 ("+g.addr(2)+").\n" {
		t.Fatalf("transfer: %+v", r)
	}
	r = mqctl(t, ctx, g.brokers(), "", "cluster", "status", "--format", "json")
	var st wire.ClusterStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Leader != "n3" || len(st.Nodes) != 3 {
		t.Fatalf("status json: %+v (%v)", r, err)
	}
}

func TestWriteClusterStatus(t *testing.T) {
	st := wire.ClusterStatus{Leader: "n1", LeaderAPI: "127.0.0.1:7001", Term: 7, GroupID: 1, AnsweredBy: "n2",
		Nodes: []wire.ClusterNode{
			{ID: "n1", Role: "leader", APIAddr: "127.0.0.1:7001", Term: 7, LastIndex: 1200, CommitIndex: 1200, AppliedIndex: 1199, Reachable: true, StatusAgeMs: new(int64(320))},
			{ID: "n2", Role: "follower", APIAddr: "127.0.0.1:7002", Term: 7, LastIndex: 1150, CommitIndex: 1150, AppliedIndex: 1150, Reachable: true, StatusAgeMs: new(int64(0))},
			{ID: "n3", Role: "unreachable", RaftAddr: "127.0.0.1:8003", Error: "dial tcp: connection refused"},
		}}
	var b bytes.Buffer
	if err := writeClusterStatus(&b, &st); err != nil {
		t.Fatal(err)
	}
	want := `Group 1, term 7, leader n1 (127.0.0.1:7001); answered by n2.

NODE  ROLE         TERM  LAST  COMMIT  APPLIED  LAG  AGE    API ADDR        REACHABLE  ERROR
n1    leader       7     1200  1200    1199     0    320ms  127.0.0.1:7001  yes        -
n2    follower     7     1150  1150    1150     50   0s     127.0.0.1:7002  yes        -
n3    unreachable  -     -     -       -        -    -      -               no         dial tcp: connection refused
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	// Nodes with a Kafka listener (issue 14) show its address.
	st.Nodes[0].KafkaAddr, st.Nodes[1].KafkaAddr = "127.0.0.1:9092", "127.0.0.1:9093"
	b.Reset()
	if err := writeClusterStatus(&b, &st); err != nil {
		t.Fatal(err)
	}
	want = `Group 1, term 7, leader n1 (127.0.0.1:7001); answered by n2.

NODE  ROLE         TERM  LAST  COMMIT  APPLIED  LAG  AGE    API ADDR        KAFKA ADDR      REACHABLE  ERROR
n1    leader       7     1200  1200    1199     0    320ms  127.0.0.1:7001  127.0.0.1:9092  yes        -
n2    follower     7     1150  1150    1150     50   0s     127.0.0.1:7002  127.0.0.1:9093  yes        -
n3    unreachable  -     -     -       -        -    -      -               -               no         dial tcp: connection refused
`
	if b.String() != want {
		t.Fatalf("with Kafka: got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteTopic(t *testing.T) {
	info := wire.TopicInfo{Name: "orders", Queues: 2, RetentionMs: 86400000, MaxMessageBytes: 1 << 20,
		QueueInfo: []wire.QueueInfo{{Queue: 0, Earliest: 10, Next: 1200}, {Queue: 1, Earliest: 0, Next: 5}}}
	var b bytes.Buffer
	writeTopic(&b, &info)
	writeQueues(&b, info.QueueInfo)
	want := `Topic:              orders
Queues:             2
Retention:          1d
Retention bytes:    unlimited
Max message bytes:  1 MiB
Messages:           1195
QUEUE  EARLIEST  NEXT  MESSAGES
0      10        1200  1190
1      0         5     5
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	writeTopicList(&b, nil)
	if b.String() != "No topics.\n" {
		t.Fatalf("empty list: %q", b.String())
	}
}

func TestWriteMessage(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		m          wire.FetchedMessage
		valuesOnly bool
		format     string
		want       string
	}{
		{wire.FetchedMessage{Offset: 5, Value: s("hello world")}, false, "text", "2/5 - hello world\n"},
		{wire.FetchedMessage{Offset: 5, Key: s("user-1"), Value: s("v")}, false, "text", "2/5 user-1 v\n"},
		{wire.FetchedMessage{Offset: 5, Key: s("a b"), Value: s("v")}, false, "text", "2/5 \"a b\" v\n"},
		{wire.FetchedMessage{Offset: 5, Key: s(""), Value: s("")}, false, "text", "2/5 \"\" \n"},
		{wire.FetchedMessage{Offset: 5, Key: s("-"), ValueBase64: s("/w==")}, false, "text", "2/5 \"-\" base64:/w==\n"},
		{wire.FetchedMessage{Offset: 5, Key: s("k"), Value: s("v")}, true, "text", "v\n"},
		{wire.FetchedMessage{Offset: 5, ValueBase64: s("/w==")}, true, "text", "\xff\n"},
		{wire.FetchedMessage{Offset: 5, Key: s("k"), Value: s("v"), Headers: map[string]string{"h": "1"}, Timestamp: "2025-01-02T03:04:05Z"},
			false, "json", `{"queue":2,"offset":5,"key":"k","value":"v","headers":{"h":"1"},"timestamp":"2025-01-02T03:04:05Z"}` + "\n"},
	} {
		var b bytes.Buffer
		if err := writeMessage(&b, tc.format, tc.valuesOnly, 2, &tc.m); err != nil || b.String() != tc.want {
			t.Errorf("got %q (%v), want %q", b.String(), err, tc.want)
		}
	}
}

func TestProduceSummaryText(t *testing.T) {
	s := produceSummary{Topic: "t", Messages: 1, Bytes: 5, ElapsedMs: 1500, MessagesPerSec: 0.7, BytesPerSec: 3.3,
		Queues: []queueRange{{Queue: 0, Messages: 1, FirstOffset: 4, LastOffset: 4}}, InDoubt: 500}
	var b bytes.Buffer
	writeProduceSummary(&b, &s)
	want := "Produced 1 message (5 B) to t in 1.5s: 1 msg/s, 3 B/s.\n  queue 0: 1 message, offset 4\n" +
		"In doubt: 500 messages of the failed request (they may or may not be stored).\n"
	if b.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	s.Index, s.InDoubt = 1234, 0
	writeProduceSummary(&b, &s)
	if want := "Produced 1 message (5 B) to t in 1.5s: 1 msg/s, 3 B/s (index 1234).\n  queue 0: 1 message, offset 4\n"; b.String() != want {
		t.Fatalf("with an index: got\n%q\nwant\n%q", b.String(), want)
	}
}
