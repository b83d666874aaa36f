package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// TestUsageErrors: every command's and subcommand's usage errors exit 2
// with the message and the command to ask for help, before any request.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
		cmd  string // as the help hint names it
	}{
		{[]string{"--nope"}, "flag provided but not defined: -nope", "mqctl"},
		{[]string{"--timeout", "soon", "topic", "list"}, `invalid value "soon" for flag -timeout`, "mqctl"},
		{[]string{"topic", "frob"}, `topic: unknown subcommand "frob": want create, list, describe or delete`, "mqctl"},
		{[]string{"topics", "describe"}, "topic describe: missing topic NAME", "mqctl topic describe"},
		{[]string{"topic", "delete"}, "topic delete: missing topic NAME", "mqctl topic delete"},
		{[]string{"topic", "rm", "a", "b"}, `topic delete: unexpected argument "b"`, "mqctl topic delete"},
		{[]string{"topic", "ls", "--queues", "2"}, "flag provided but not defined: -queues", "mqctl topic list"},
		{[]string{"topic", "create", "x", "--queues", "-1"}, "must not be negative", "mqctl topic create"},
		{[]string{"topic", "create", "x", "--max-message-bytes", "-5"}, "must not be negative", "mqctl topic create"},
		{[]string{"topic", "create", "x", "--retention-bytes", "1k"}, `invalid value "1k" for flag -retention-bytes`, "mqctl topic create"},
		{[]string{"topic", "create", "x", "--timeout", "0s"}, "--timeout must be positive", "mqctl topic create"},
		{[]string{"topic", "create", "x", "--brokers", " , "}, "--brokers: no broker given", "mqctl topic create"},
		{[]string{"produce"}, "produce: missing TOPIC", "mqctl produce"},
		{[]string{"produce", "t", "u"}, `produce: unexpected argument "u"`, "mqctl produce"},
		{[]string{"produce", "t", "--batch-size", "0"}, "--batch-size must be 1..10000", "mqctl produce"},
		{[]string{"produce", "t", "--batch-size", "10001"}, "--batch-size must be 1..10000", "mqctl produce"},
		{[]string{"produce", "t", "--header", "=v"}, `header "=v" has an empty name`, "mqctl produce"},
		{[]string{"produce", "t", "--header", "a=1", "--header", "a=2"}, `header "a" given twice`, "mqctl produce"},
		{[]string{"produce", "t", "--queue", "x"}, `queue must be a non-negative integer, not "x"`, "mqctl produce"},
		{[]string{"consume"}, "consume: missing TOPIC", "mqctl consume"},
		{[]string{"consume", "t", "--count", "-1"}, "--count must not be negative", "mqctl consume"},
		{[]string{"consume", "t", "--offset", "x"}, `offset must be a non-negative integer, not "x"`, "mqctl consume"},
		{[]string{"consume", "t", "--from-end", "--from-time", "2025-01-02T00:00:00Z"}, "at most one of", "mqctl consume"},
		{[]string{"consume", "t", "--group", "g", "--offset", "1"}, "do not go with --group", "mqctl consume"},
		{[]string{"cluster"}, "cluster: missing subcommand: status or transfer-leadership", "mqctl"},
		{[]string{"cluster", "reboot"}, `cluster: unknown subcommand "reboot"`, "mqctl"},
		{[]string{"cluster", "status", "n1"}, `cluster status: unexpected argument "n1"`, "mqctl cluster status"},
		{[]string{"cluster", "transfer-leadership", "n2"}, `cluster transfer-leadership: unexpected argument "n2"`, "mqctl cluster transfer-leadership"},
		{[]string{"groups", "list", "x"}, `group list: unexpected argument "x"`, "mqctl group list"},
		{[]string{"group", "reset-offsets"}, "group reset-offsets: missing GROUP", "mqctl group reset-offsets"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t", "--to-offset", "-1"}, "offset must be a non-negative integer", "mqctl group reset-offsets"},
	} {
		g := newFakeGroup(t, 1)
		r := mqctl(t, context.Background(), g.brokers(), "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.msg) || !strings.HasSuffix(r.stderr, "\nRun '"+tc.cmd+" -h' for usage.\n") {
			t.Errorf("%q: code %d, stderr %q; want 2, %q and %q", tc.args, r.code, r.stderr, tc.msg, tc.cmd)
		}
		if r.stdout != "" || len(g.log()) != 0 {
			t.Errorf("%q: stdout %q, requests %q", tc.args, r.stdout, g.log())
		}
	}
}

// TestCommandHelp: each command's -h prints its usage and own flags to
// stdout and exits 0 without asking a broker.
func TestCommandHelp(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage string
		flags []string
	}{
		{[]string{"topic", "create", "-h"}, "Usage: mqctl topic create NAME [flags]", []string{"--queues N", "--retention D", "--retention-bytes N", "--max-message-bytes N"}},
		{[]string{"topic", "list", "--help"}, "Usage: mqctl topic list", nil},
		{[]string{"topic", "describe", "-h"}, "Usage: mqctl topic describe NAME", nil},
		{[]string{"topic", "delete", "-h"}, "Usage: mqctl topic delete NAME", nil},
		{[]string{"consume", "-h"}, "Usage: mqctl consume TOPIC [flags]", []string{"--queue Q", "--offset N", "--from-beginning", "--from-end", "--from-time T", "--count N", "--follow", "--values-only", "--group G"}},
		{[]string{"produce", "--help"}, "Usage: mqctl produce TOPIC [flags]", []string{"--file F", "--key K", "--header k=v", "--queue Q", "--compression C"}},
		{[]string{"group", "list", "-h"}, "Usage: mqctl group list", nil},
		{[]string{"group", "describe", "-h"}, "Usage: mqctl group describe GROUP", nil},
		{[]string{"group", "reset-offsets", "-h"}, "Usage: mqctl group reset-offsets GROUP --topic T", []string{"--topic topic", "--to-earliest", "--to-latest", "--to-time T", "--to-offset N"}},
		{[]string{"cluster", "status", "-h"}, "Usage: mqctl cluster status", nil},
		{[]string{"cluster", "transfer-leadership", "-h"}, "Usage: mqctl cluster transfer-leadership [--to ID]", []string{"--to ID"}},
	} {
		r := mqctl(t, context.Background(), "127.0.0.1:1", "", tc.args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, tc.usage) || r.stderr != "" ||
			!strings.HasSuffix(r.stdout, "\nGlobal flags (--brokers, --format, --timeout, --ca, --cert, --key, --token, --context, --config): see 'mqctl help'.\n") {
			t.Errorf("%q: code %d, stdout %q, stderr %q", tc.args, r.code, r.stdout, r.stderr)
		}
		for _, f := range tc.flags {
			if !strings.Contains(r.stdout, "\n  --"+strings.TrimPrefix(f, "--")) {
				t.Errorf("%q lacks flag %q:\n%s", tc.args, f, r.stdout)
			}
		}
		if (len(tc.flags) > 0) != strings.Contains(r.stdout, "\nFlags:\n") {
			t.Errorf("%q: Flags section:\n%s", tc.args, r.stdout)
		}
	}
	// No command: the usage goes to stderr, with exit status 2.
	r := mqctl(t, context.Background(), "", "")
	if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, "mqctl is the command-line client") {
		t.Errorf("no command: %+v", r)
	}
}

// TestBrokersEnv: --brokers beats MQ_BROKERS, which beats the dev group's
// default.
func TestBrokersEnv(t *testing.T) {
	for _, tc := range []struct {
		env  string
		args []string
		want string
	}{
		{"", nil, defaultBrokers},
		{"h1:1,h2:2", nil, "h1:1,h2:2"},
		{"h1:1", []string{"--brokers", "h3:3"}, "h3:3"},
		{"h1:1", []string{"--brokers=h4:4", "--brokers", "h5:5"}, "h5:5"},
	} {
		a := &app{stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &strings.Builder{},
			getenv: func(k string) string {
				if k == "MQ_BROKERS" {
					return tc.env
				}
				return ""
			}}
		// A request that cannot reach a broker, so that setup ran.
		args := append(append([]string{"topic", "list"}, tc.args...), "--timeout", "1ms")
		a.run(context.Background(), args)
		if a.brokers != tc.want || strings.Join(a.brokerList, ",") != tc.want {
			t.Errorf("env %q args %q: brokers %q (%q), want %q", tc.env, tc.args, a.brokers, a.brokerList, tc.want)
		}
	}
	// MQ_BROKERS is what mqctl asks.
	g := newFakeGroup(t, 2)
	g.setLeader(1)
	if r := mqctl(t, context.Background(), g.addr(1), "", "topic", "list"); r.code != 0 || len(g.log()) != 1 || g.log()[0] != "1 GET /v1/topics" {
		t.Fatalf("%+v %q", r, g.log())
	}
}

// TestAPIErrorCodes: an API refusal exits 1 with "mqctl: CODE: message";
// a retriable one, and a read's 5xx, is retried until --timeout.
func TestAPIErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		code      string
		status    int
		retriable bool
	}{
		{wire.CodeTopicNotFound, http.StatusNotFound, false},
		{wire.CodeTopicExists, http.StatusConflict, false},
		{wire.CodeQueueNotFound, http.StatusNotFound, false},
		{wire.CodeInvalidArgument, http.StatusBadRequest, false},
		{wire.CodeMalformedBatch, http.StatusBadRequest, false},
		{wire.CodeMessageTooLarge, http.StatusRequestEntityTooLarge, false},
		{wire.CodeRequestTooLarge, http.StatusRequestEntityTooLarge, false},
		{wire.CodeOffsetOutOfRange, http.StatusRequestedRangeNotSatisfiable, false},
		{wire.CodeNotFound, http.StatusNotFound, false},
		{wire.CodeMethodNotAllowed, http.StatusMethodNotAllowed, false},
		{wire.CodeUnsupportedMedia, http.StatusUnsupportedMediaType, false},
		{wire.CodeInternal, http.StatusInternalServerError, false},
		{wire.CodeGroupNotFound, http.StatusNotFound, false},
		{wire.CodeGroupActive, http.StatusConflict, false},
		{wire.CodeUnavailable, http.StatusServiceUnavailable, true},
	} {
		var n atomic.Int64
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			writeFake(w, tc.status, wire.ErrorBody{Error: wire.APIError{Code: tc.code, Message: "m " + tc.code,
				Retriable: tc.retriable, NotApplied: true}})
		}))
		for i, args := range [][]string{{"topic", "describe", "t"}, {"group", "describe", "g"}, {"cluster", "status"},
			{"topic", "create", "t"}, {"group", "reset-offsets", "g", "--topic", "t", "--to-earliest"}} {
			retried := tc.retriable || i < 3 && tc.status >= 500 // the first three are reads
			// A retried call runs until its timeout; one that is not
			// ends with the first answer, so a long timeout costs nothing
			// and keeps a loaded machine from cutting that answer off.
			timeout := "150ms"
			if !retried {
				timeout = "10s"
			}
			n.Store(0)
			r := mqctl(t, context.Background(), strings.TrimPrefix(s.URL, "http://"), "", append(args, "--timeout", timeout)...)
			want := "mqctl: " + tc.code + ": m " + tc.code
			if retried {
				want += " (gave up after "
			} else {
				want += "\n"
			}
			// A retried write whose last attempt the deadline cut in
			// flight (a loaded machine) ends with an unknown outcome.
			cutShort := retried && i >= 3 && strings.Contains(r.stderr, "the outcome is unknown")
			if r.code != 1 || !strings.HasPrefix(r.stderr, want) && !cutShort || r.stdout != "" {
				t.Errorf("%s %q: %+v, want stderr %q", tc.code, args, r, want)
			}
			if retried != (n.Load() > 1) {
				t.Errorf("%s %q: %d requests", tc.code, args, n.Load())
			}
		}
		s.Close()
	}
}

// TestListJSON: --format json prints the API's list objects, empty lists
// included, and text prints the tables.
func TestListJSON(t *testing.T) {
	ctx := context.Background()
	g := newFakeGroup(t, 1)
	r := mqctl(t, ctx, g.brokers(), "", "topic", "list", "--format", "json")
	if r.code != 0 || r.stdout != "{\n  \"topics\": []\n}\n" {
		t.Fatalf("empty topic list json: %+v", r)
	}
	mqctl(t, ctx, g.brokers(), "", "topic", "create", "b", "--queues", "1")
	r = mqctl(t, ctx, g.brokers(), "", "--format", "json", "topic", "create", "a", "--queues", "3", "--retention", "36h")
	var info wire.TopicInfo
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.Name != "a" || info.Queues != 3 || info.RetentionMs != 36*3600*1000 {
		t.Fatalf("create json: %+v (%v)", r, err)
	}
	r = mqctl(t, ctx, g.brokers(), "", "topic", "list", "--format", "json")
	var list wire.TopicList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Topics) != 2 {
		t.Fatalf("topic list json: %+v (%v)", r, err)
	}
	r = mqctl(t, ctx, g.brokers(), "", "topic", "delete", "a", "--format", "json")
	if r.code != 0 || r.stdout != "{\n  \"deleted\": \"a\"\n}\n" {
		t.Fatalf("delete json: %+v", r)
	}
	r = mqctl(t, ctx, g.brokers(), "", "topic", "describe", "b")
	want := "Topic:              b\nQueues:             1\nRetention:          7d\nRetention bytes:    unlimited\n" +
		"Max message bytes:  1 MiB\nMessages:           0\n\nQUEUE  EARLIEST  NEXT  MESSAGES\n0      0         0     0\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("describe text:\n%s\nwant\n%s", r.stdout, want)
	}
	r = mqctl(t, ctx, g.brokers(), "", "cluster", "transfer-leadership", "--format", "json")
	var tr struct{ Leader, LeaderAPI string }
	if err := json.Unmarshal([]byte(r.stdout), &tr); err != nil || r.code != 0 || !strings.Contains(r.stdout, `"leader_api": "`+g.addr(0)+`"`) {
		t.Fatalf("transfer json: %+v (%v)", r, err)
	}
}

// TestProduceFile: --file reads the messages from a file; a missing file
// fails before anything is sent.
func TestProduceFile(t *testing.T) {
	ctx := context.Background()
	addr := startBroker(t)
	if r := runLeader(t, ctx, addr, "", "topic", "create", "f", "--queues", "2"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	p := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(p, []byte("a\nbb\nccc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Keyed messages all go to the key's queue.
	r := runLeader(t, ctx, addr, "ignored\n", "produce", "f", "--file", p, "--key", "k", "--header", "h=1", "--compression", "gzip")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Produced 3 messages (6 B) to f in ") || !strings.Contains(r.stdout, ": 3 messages, offsets 0-2\n") {
		t.Fatalf("produce --file: %+v", r)
	}
	r = runLeader(t, ctx, addr, "", "consume", "f", "--format", "json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var m consumedMessage
	if r.code != 0 || len(lines) != 3 || json.Unmarshal([]byte(lines[2]), &m) != nil || *m.Key != "k" || *m.Value != "ccc" || m.Headers["h"] != "1" {
		t.Fatalf("consume: %+v", r)
	}
	// --file - is stdin.
	if r = runLeader(t, ctx, addr, "d\n", "produce", "f", "--file", "-", "--queue", "1"); r.code != 0 || !strings.Contains(r.stdout, "Produced 1 message (1 B)") {
		t.Fatalf("produce --file -: %+v", r)
	}
	r = runLeader(t, ctx, addr, "", "produce", "f", "--file", filepath.Join(t.TempDir(), "none"))
	if r.code != 1 || !strings.Contains(r.stderr, "no such file") || r.stdout != "" {
		t.Fatalf("missing file: %+v", r)
	}
	// Empty input: nothing produced, exit 0.
	if r = runLeader(t, ctx, addr, "", "produce", "f", "--format", "json"); r.code != 0 || !strings.Contains(r.stdout, `"messages":0`) || !strings.Contains(r.stdout, `"queues":[]`) {
		t.Fatalf("empty input: %+v", r)
	}
}

// TestConsumeStarts: where consume starts in each mode, and --count.
func TestConsumeStarts(t *testing.T) {
	ctx := context.Background()
	addr := startBroker(t)
	if r := runLeader(t, ctx, addr, "", "topic", "create", "c", "--queues", "2"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	runLeader(t, ctx, addr, "a0\na1\na2\n", "produce", "c", "--queue", "0")
	runLeader(t, ctx, addr, "b0\n", "produce", "c", "--queue", "1")
	// Timestamps are in milliseconds: mid is the next one, and a3 is
	// produced from it on.
	mid := time.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	for time.Now().Before(mid) { // at most 1ms
	}
	runLeader(t, ctx, addr, "a3\n", "produce", "c", "--queue", "0")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from-beginning", "--values-only"}, "a0\na1\na2\na3\nb0\n"},
		{[]string{"--from-end"}, ""},
		{[]string{"--offset", "1", "--queue", "0", "--values-only"}, "a1\na2\na3\n"},
		{[]string{"--offset", "1", "--values-only"}, "a1\na2\na3\n"}, // queue 1 holds only offset 0: it was read
		{[]string{"--from-time", mid.Format(time.RFC3339Nano), "--values-only"}, "a3\n"},
		{[]string{"--count", "2"}, "0/0 - a0\n0/1 - a1\n"},
	} {
		r := runLeader(t, ctx, addr, "", append([]string{"consume", "c"}, tc.args...)...)
		if r.code != 0 || r.stdout != tc.want {
			t.Errorf("%q: %+v, want %q", tc.args, r, tc.want)
		}
	}
	// Fewer messages than --count: what there is is printed, then, once
	// nothing more came within --timeout, an error says how many arrived.
	for _, tc := range []struct {
		args       []string
		want, fail string
	}{
		{[]string{"--count", "5", "--queue", "1"}, "1/0 - b0\n", "1 of the 5 messages"},
		{[]string{"--from-beginning", "--count", "6", "--values-only"}, "a0\na1\na2\na3\nb0\n", "5 of the 6 messages"},
	} {
		start := time.Now()
		r := runLeader(t, ctx, addr, "", append([]string{"consume", "c", "--timeout", "300ms"}, tc.args...)...)
		if r.code != 1 || r.stdout != tc.want || !strings.Contains(r.stderr, tc.fail) || !strings.Contains(r.stderr, "within --timeout 300ms") {
			t.Errorf("%q: %+v, want %q and %q", tc.args, r, tc.want, tc.fail)
		}
		if el := time.Since(start); el < 300*time.Millisecond {
			t.Errorf("%q: gave up after %v, before --timeout", tc.args, el)
		}
	}
}

// TestGroupResetModes: each `to` mode of reset-offsets sets the committed
// offsets where it says, and --format json prints the group.
func TestGroupResetModes(t *testing.T) {
	ctx := context.Background()
	addr := startBroker(t)
	if r := runLeader(t, ctx, addr, "", "topic", "create", "r", "--queues", "1"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	runLeader(t, ctx, addr, "x0\nx1\n", "produce", "r")
	mid := time.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	for time.Now().Before(mid) { // at most 1ms
	}
	runLeader(t, ctx, addr, "x2\nx3\n", "produce", "r")
	r := runLeader(t, ctx, addr, "", "group", "list", "--format", "json")
	if r.code != 0 || r.stdout != "{\n  \"groups\": []\n}\n" {
		t.Fatalf("empty group list json: %+v", r)
	}
	for _, tc := range []struct {
		to        []string
		committed uint64
	}{
		{[]string{"--to-latest"}, 4},
		{[]string{"--to-earliest"}, 0},
		{[]string{"--to-time", mid.Format(time.RFC3339Nano)}, 2},
		{[]string{"--to-offset", "3"}, 3},
		{[]string{"--to-offset", "99"}, 4}, // moved into the stored range
	} {
		r := runLeader(t, ctx, addr, "", append([]string{"group", "reset-offsets", "g", "--topic", "r", "--format", "json"}, tc.to...)...)
		var gi wire.GroupInfo
		if err := json.Unmarshal([]byte(r.stdout), &gi); err != nil || r.code != 0 || gi.Group != "g" || len(gi.Queues) != 1 ||
			gi.Queues[0].Committed == nil || *gi.Queues[0].Committed != tc.committed || gi.Queues[0].Lag != 4-tc.committed {
			t.Errorf("%q: %+v (%v), want committed %d", tc.to, r, err, tc.committed)
		}
	}
	r = runLeader(t, ctx, addr, "", "group", "list", "--format", "json")
	var gl wire.GroupList
	if err := json.Unmarshal([]byte(r.stdout), &gl); err != nil || len(gl.Groups) != 1 || gl.Groups[0].Group != "g" {
		t.Fatalf("group list json: %+v (%v)", r, err)
	}
	// The group reads from the reset offset.
	if r = runLeader(t, ctx, addr, "", "group", "reset-offsets", "g", "--topic", "r", "--to-offset", "3"); r.code != 0 {
		t.Fatalf("reset: %+v", r)
	}
	if r = runLeader(t, ctx, addr, "", "consume", "r", "--group", "g", "--values-only"); r.code != 0 || r.stdout != "x3\n" {
		t.Fatalf("consume after reset: %+v", r)
	}
}

// TestTransferNoLeaderYet: a transfer whose answer names no leader asks
// the group until one is known, and says so when none is.
func TestTransferNoLeaderYet(t *testing.T) {
	var addr string
	statusCalls, leaderAfter := 0, 3
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/cluster/transfer-leadership":
			writeFake(w, http.StatusOK, map[string]string{})
		case "/v1/cluster":
			statusCalls++
			st := wire.ClusterStatus{GroupID: 1, Leader: "n1", LeaderAPI: addr}
			if statusCalls < leaderAfter {
				st.Leader, st.LeaderAPI = "", ""
			}
			writeFake(w, http.StatusOK, st)
		}
	}))
	defer s.Close()
	addr = strings.TrimPrefix(s.URL, "http://")
	r := mqctl(t, context.Background(), addr, "", "cluster", "transfer-leadership")
	if r.code != 0 || r.stdout != "Leadership transferred: the leader is now n1 ("+addr+").\n" || statusCalls < 3 {
		t.Fatalf("%+v after %d status calls", r, statusCalls)
	}
	leaderAfter = 1 << 30
	r = mqctl(t, context.Background(), addr, "", "cluster", "transfer-leadership", "--to", "n2", "--timeout", "300ms")
	if r.code != 0 || r.stdout != "Leadership transfer done; no new leader is known yet.\n" {
		t.Fatalf("no leader: %+v", r)
	}
}
