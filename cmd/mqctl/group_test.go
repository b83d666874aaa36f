package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/brokertest"
	"github.com/ledgermq/ledgermq/wire"
)

func TestWriteGroup(t *testing.T) {
	c := func(n uint64) *uint64 { return &n }
	g := wire.GroupInfo{Group: "billing", Generation: 3,
		Members: []wire.GroupMember{
			{MemberID: "m1", Topics: []string{"orders"}, SessionTimeoutMs: 10000,
				Assignment: []wire.TopicQueue{{Topic: "orders", Queue: 2}, {Topic: "orders", Queue: 0}, {Topic: "audit", Queue: 0}}},
			{MemberID: "m2", Topics: []string{"audit", "orders"}, SessionTimeoutMs: 90000},
			{MemberID: "m3", InstanceID: "web-1", Topics: []string{"orders"}, SessionTimeoutMs: 10000,
				Assignment: []wire.TopicQueue{{Topic: "orders", Queue: 3}}, Revoking: []wire.TopicQueue{{Topic: "orders", Queue: 4}}},
		},
		Queues: []wire.GroupQueue{
			{Topic: "orders", Queue: 1, Next: 7, Lag: 7},
			{Topic: "orders", Queue: 4, Owner: "m3", Target: "m2", Next: 3, Lag: 3},
			{Topic: "orders", Queue: 0, Owner: "m1", Committed: c(10), Next: 12, Lag: 2},
			{Topic: "audit", Queue: 0, Owner: "m1", Committed: c(0), Next: 0},
		}}
	var b bytes.Buffer
	if err := writeGroup(&b, &g); err != nil {
		t.Fatal(err)
	}
	want := `Group billing, generation 3, 3 members.

TOPIC   QUEUE  OWNER   COMMITTED  NEXT  LAG
audit   0      m1      0          0     0
orders  0      m1      10         12    2
orders  1      -       -          7     7
orders  4      m3->m2  -          3     3

MEMBER      TOPICS        SESSION TIMEOUT  QUEUES
m1          orders        10s              audit/0 orders/0,2
m2          audit,orders  1m30s            -
m3 (web-1)  orders        10s              orders/3, releasing orders/4
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	writeGroup(&b, &wire.GroupInfo{Group: "idle", Generation: 4})
	if b.String() != "Group idle, generation 4, no members.\n" {
		t.Fatalf("empty group: %q", b.String())
	}

	b.Reset()
	writeGroupList(&b, []wire.GroupInfo{g, {Group: "aaa", Generation: 1, Members: g.Members[:1]}})
	want = `GROUP    GENERATION  MEMBERS  TOPICS        LAG
aaa      1           1        -             0
billing  3           3        audit,orders  12
`
	if b.String() != want {
		t.Fatalf("list: got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	writeGroupList(&b, nil)
	if b.String() != "No groups.\n" {
		t.Fatalf("no groups: %q", b.String())
	}
}

// startBroker starts a one-node broker group in this process.
func startBroker(t *testing.T) string {
	t.Helper()
	return brokertest.Group(t, 1, nil)[0].Addr()
}

func TestGroupCommands(t *testing.T) {
	ctx := context.Background()
	addr := startBroker(t)
	run := func(stdin string, args ...string) runResult {
		t.Helper()
		var r runResult
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			// The broker may not have taken up its leadership yet.
			if r = mqctl(t, ctx, addr, stdin, args...); !strings.Contains(r.stderr, "NOT_LEADER") || time.Now().After(deadline) {
				return r
			}
		}
	}
	if r := run("", "topic", "create", "t", "--queues", "2"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	if r := run("a\nb\nc\nd\n", "produce", "t", "--key", "k", "--queue", "0"); r.code != 0 {
		t.Fatalf("produce: %+v", r)
	}
	if r := run("e\n", "produce", "t", "--queue", "1"); r.code != 0 {
		t.Fatalf("produce: %+v", r)
	}

	// --count stops early and commits only what was printed.
	r := run("", "consume", "t", "--group", "g", "--count", "2")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("consume --count: %+v", r)
	}
	var gi wire.GroupInfo
	r = run("", "group", "describe", "g", "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &gi); err != nil || len(gi.Members) != 0 {
		t.Fatalf("describe json: %+v (%v)", r, err)
	}
	var lag uint64
	for _, q := range gi.Queues {
		lag += q.Lag
	}
	if lag != 3 {
		t.Fatalf("lag %d after printing 2 of 5: %+v", lag, gi.Queues)
	}

	// The rest, then nothing: the group remembers.
	r = run("", "consume", "t", "--group", "g")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || r.stderr != "" {
		t.Fatalf("consume the rest: %+v", r)
	}
	if r = run("", "consume", "t", "--group", "g"); r.code != 0 || r.stdout != "" {
		t.Fatalf("consume when caught up: %+v", r)
	}
	r = run("", "group", "describe", "g")
	want := "Group g, generation 6, no members.\n\n" +
		"TOPIC  QUEUE  OWNER  COMMITTED  NEXT  LAG\n" +
		"t      0      -      4          4     0\n" +
		"t      1      -      1          1     0\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("describe: %+v\nwant\n%s", r, want)
	}
	if r = run("", "group", "list"); r.code != 0 || !strings.HasPrefix(r.stdout, "GROUP  GENERATION") || !strings.Contains(r.stdout, "\ng      6           0        t       0\n") {
		t.Fatalf("list: %+v", r)
	}

	// Reset, and the group reads again from there.
	r = run("", "group", "reset-offsets", "g", "--topic", "t", "--to-offset", "2")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Reset the offsets of group g in topic t.\n\nGroup g") ||
		!strings.Contains(r.stdout, "t      0      -      2          4     2\n") || !strings.Contains(r.stdout, "t      1      -      1          1     0\n") {
		t.Fatalf("reset: %+v", r)
	}
	if r = run("", "consume", "t", "--group", "g", "--format", "json"); r.code != 0 || strings.Count(r.stdout, "\n") != 2 ||
		!strings.HasPrefix(r.stdout, `{"queue":0,"offset":2,"key":"k","value":"c"`) {
		t.Fatalf("consume after reset: %+v", r)
	}
	if r = run("", "group", "reset-offsets", "g", "--topic", "t", "--to-earliest"); r.code != 0 {
		t.Fatalf("reset to earliest: %+v", r)
	}
	if r = run("", "consume", "t", "--group", "g", "--values-only"); r.code != 0 || len(r.stdout) != 10 {
		t.Fatalf("consume after reset to earliest: %+v", r)
	}

	// --follow prints new records as they come, until interrupted; what it
	// printed is committed.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &notifyBuffer{}
	done := make(chan runResult)
	go func() { done <- mqctlTo(t, fctx, out, addr, "", "consume", "t", "--group", "f", "--follow") }()
	waitOut := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); strings.Count(out.String(), "\n") < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("--follow printed %q", out.String())
			}
		}
	}
	waitOut(5)
	run("new\n", "produce", "t", "--queue", "1")
	waitOut(6)
	cancel()
	if r = <-done; r.code != 0 || !strings.HasSuffix(out.String(), "\n1/1 - new\n") || r.stderr != "" {
		t.Fatalf("follow: %+v, stdout %q", r, out.String())
	}
	if r = run("", "group", "describe", "f"); !strings.Contains(r.stdout, "t      1      -      2          2     0\n") {
		t.Fatalf("after follow: %+v", r)
	}

	// Errors.
	if r = run("", "group", "describe", "nope"); r.code != 1 || !strings.HasPrefix(r.stderr, "mqctl: GROUP_NOT_FOUND") {
		t.Fatalf("describe a missing group: %+v", r)
	}
	if r = run("", "group", "reset-offsets", "g", "--topic", "nope", "--to-latest"); r.code != 1 || !strings.HasPrefix(r.stderr, "mqctl: TOPIC_NOT_FOUND") {
		t.Fatalf("reset a missing topic: %+v", r)
	}
	if r = run("", "consume", "nope", "--group", "g"); r.code != 1 || !strings.Contains(r.stderr, "TOPIC_NOT_FOUND") {
		t.Fatalf("consume a missing topic: %+v", r)
	}
}

func TestGroupUsage(t *testing.T) {
	ctx := context.Background()
	r := mqctl(t, ctx, "", "", "help")
	for _, cmd := range []string{"group list", "group describe GROUP", "group reset-offsets GROUP", "consume TOPIC --group G"} {
		if !strings.Contains(r.stdout, "\n  "+cmd) {
			t.Errorf("usage lacks %q", cmd)
		}
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"group"}, "group: missing subcommand"},
		{[]string{"group", "frob"}, `group: unknown subcommand "frob"`},
		{[]string{"group", "describe"}, "group describe: missing GROUP"},
		{[]string{"group", "reset-offsets", "g", "--to-latest"}, "--topic is required"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t"}, "exactly one of --to-earliest"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t", "--to-latest", "--to-offset", "3"}, "exactly one of --to-earliest"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t", "--to-time", "noon"}, "--to-time must be RFC3339"},
		{[]string{"consume", "t", "--group", "g", "--queue", "1"}, "do not go with --group"},
	} {
		r := mqctl(t, ctx, "127.0.0.1:1", "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%q: code %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.msg)
		}
	}
}
