package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ledgermq/ledgermq/internal/testnet"
)

// The admin commands' failures, as mqctl reports them. The SDK's own tests
// cover the transport in detail (client/admin_test.go); these check what
// a user sees.

func TestWriteOutcomeUnknown(t *testing.T) {
	ctx := context.Background()
	g := newFakeGroup(t, 2)
	g.setFault("unknown", -1)
	r := mqctl(t, ctx, g.brokers(), "", "topic", "create", "x")
	want := "mqctl: UNAVAILABLE: the commit timed out (the outcome is unknown: the write may or may not have been applied)\n"
	if r.code != 1 || r.stderr != want {
		t.Fatalf("%+v", r)
	}
	// Not resent: it may have been applied.
	if log := g.log(); !slices.Equal(log, []string{"0 POST /v1/topics"}) {
		t.Fatalf("requests %q", log)
	}

	g = newFakeGroup(t, 2)
	g.setFault("hangup", 1)
	r = mqctl(t, ctx, g.brokers(), "", "topic", "delete", "x")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "mqctl: ledgermq: delete topic x: the outcome is unknown") {
		t.Fatalf("no answer: %+v", r)
	}
	if log := g.log(); !slices.Equal(log, []string{"0 DELETE /v1/topics/x"}) {
		t.Fatalf("requests %q", log)
	}
}

func TestWriteNotAppliedIsResent(t *testing.T) {
	ctx := context.Background()
	g := newFakeGroup(t, 2)
	g.setFault("refused", 2)
	r := mqctl(t, ctx, g.brokers(), "", "topic", "create", "x")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Created topic x.") {
		t.Fatalf("%+v", r)
	}
	if n := len(g.log()); n != 3 {
		t.Fatalf("%d requests, want 3: %q", n, g.log())
	}
}

func TestReadRetried(t *testing.T) {
	g := newFakeGroup(t, 2)
	g.setFault("unknown", 3)
	r := mqctl(t, context.Background(), g.brokers(), "", "topic", "list")
	if r.code != 0 || r.stdout != "No topics.\n" || len(g.log()) != 4 {
		t.Fatalf("%+v after %q", r, g.log())
	}
}

func TestGiveUp(t *testing.T) {
	ctx := context.Background()
	g := newFakeGroup(t, 2)
	g.setFault("no-leader", -1)
	r := mqctl(t, ctx, g.brokers(), "", "topic", "create", "x", "--timeout", "200ms")
	// Usually the deadline falls between two NOT_LEADER answers; on a
	// loaded machine it may cut a request in flight, whose outcome mqctl
	// then reports as unknown. Either way it gives up with exit 1.
	notLeader := strings.HasPrefix(r.stderr, "mqctl: NOT_LEADER: this node is not the leader; the request was not applied (no leader known) (gave up after ")
	cutShort := strings.Contains(r.stderr, "the outcome is unknown") && strings.Contains(r.stderr, "context deadline exceeded")
	if r.code != 1 || !notLeader && !cutShort {
		t.Fatalf("no leader: %+v", r)
	}
	r = mqctl(t, ctx, testnet.FreeAddrs(t, 1)[0], "", "cluster", "status", "--timeout", "100ms") // nothing listens there
	if r.code != 1 || !strings.HasPrefix(r.stderr, "mqctl: no broker answered (gave up after ") || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("no broker: %+v", r)
	}
	fctx, cancel := context.WithCancel(ctx)
	cancel()
	if r = mqctl(t, fctx, g.brokers(), "", "topic", "list"); r.code != 130 {
		t.Fatalf("interrupted: %+v", r)
	}
}

func TestBrokersFlag(t *testing.T) {
	a := &app{brokers: " 127.0.0.1:7001, ,localhost:7002,http://h:1/", format: "text", timeout: 1,
		getenv: func(string) string { return "" }}
	if err := a.setup(); err != nil || strings.Join(a.brokerList, "|") != "127.0.0.1:7001|localhost:7002|http://h:1/" {
		t.Fatalf("got %q, %v", a.brokerList, err)
	}
	// ("" is no flag: the environment, the context or the default.)
	for _, bad := range []string{",", "localhost", "h:", "a:1,b"} {
		a.brokers = bad
		if err := a.setup(); err == nil {
			t.Errorf("--brokers %q: no error", bad)
		}
	}
}
