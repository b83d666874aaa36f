package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/internal/brokertest"
	"github.com/ledgermq/ledgermq/wire"
)

// testApp is an mqctl invocation's state kept across commands, as one
// process running several commands would keep it.
type testApp struct {
	a      *app
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func newTestApp(brokers string) *testApp {
	ta := &testApp{}
	ta.a = &app{stdout: &ta.stdout, stderr: &ta.stderr,
		getenv: func(k string) string {
			if k == "MQ_BROKERS" {
				return brokers
			}
			return ""
		},
		sdkOpts: []sdk.Opt{sdk.WithRetryBackoff(5*time.Millisecond, 20*time.Millisecond)},
	}
	return ta
}

// run runs one command of the invocation with stdin.
func (ta *testApp) run(ctx context.Context, stdin string, args ...string) runResult {
	ta.stdout.Reset()
	ta.stderr.Reset()
	ta.a.stdin = strings.NewReader(stdin)
	code := ta.a.run(ctx, args)
	return runResult{code: code, stdout: ta.stdout.String(), stderr: ta.stderr.String()}
}

var rywRounds = flag.Int("ryw.rounds", 20, "rounds of TestProduceThenConsumeFromFollower")

var indexRE = regexp.MustCompile(`\(index (\d+)\)\.\n`)

// checkAll checks that out, consume's text output, is values 1..n, each
// once.
func checkAll(t *testing.T, what, out string, n int) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || seen[f[2]] {
			t.Fatalf("%s: line %q (of %d lines)", what, line, len(seen))
		}
		seen[f[2]] = true
	}
	for i := 1; i <= n; i++ {
		if !seen[strconv.Itoa(i)] {
			t.Fatalf("%s: %d of %d messages; %d missing", what, len(seen), n, i)
		}
	}
}

// TestProduceThenConsumeFromFollower reproduces the field report:
// `mqctl produce` of 1000 messages over 4 queues, then at once `mqctl
// consume --count 1000` against a follower only, while an SDK producer
// keeps writing to another topic. Every time (-ryw.rounds, default 20),
// all 1000 arrive: with the index produce printed (--min-index), within
// the same invocation (the token carried over), and with no token at all
// (consume polls until it has its count).
func TestProduceThenConsumeFromFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("rounds of 1000 messages")
	}
	ctx := context.Background()
	bs := brokertest.Group(t, 3, nil)
	all := strings.Join(brokertest.Addrs(bs), ",")
	stopLoad := backgroundLoad(t, brokertest.Addrs(bs))
	defer stopLoad()
	leader := brokertest.Leader(t, bs)
	follower := ""
	for _, b := range bs {
		if b != leader {
			follower = b.Addr()
			break
		}
	}
	var in strings.Builder
	const n = 1000
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "%d\n", i)
	}
	for round := range *rywRounds {
		topic := fmt.Sprintf("field%d", round)
		inv := newTestApp(all)
		if r := inv.run(ctx, "", "topic", "create", topic, "--queues", "4"); r.code != 0 {
			t.Fatalf("round %d: create: %+v", round, r)
		}
		r := inv.run(ctx, in.String(), "produce", topic, "--batch-size", "250")
		m := indexRE.FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil || !strings.Contains(r.stdout, fmt.Sprintf("Produced %d messages", n)) {
			t.Fatalf("round %d: produce: %+v", round, r)
		}
		if queues := strings.Count(r.stdout, "  queue "); round == 0 && queues < 2 {
			t.Fatalf("round %d: the messages went to %d queue(s):\n%s", round, queues, r.stdout)
		}
		count := strconv.Itoa(n)
		// The same invocation: consume waits for what produce wrote.
		r = inv.run(ctx, "", "consume", topic, "--count", count, "--brokers", follower)
		if r.code != 0 {
			t.Fatalf("round %d: consume in the same invocation: %+v", round, r)
		}
		checkAll(t, fmt.Sprintf("round %d, same invocation", round), r.stdout, n)
		// A script passing the index on.
		r = mqctl(t, ctx, follower, "", "consume", topic, "--count", count, "--min-index", m[1])
		if r.code != 0 {
			t.Fatalf("round %d: consume --min-index %s: %+v", round, m[1], r)
		}
		checkAll(t, fmt.Sprintf("round %d, --min-index", round), r.stdout, n)
		// No token: --count keeps polling until all have arrived.
		r = mqctl(t, ctx, follower, "", "consume", topic, "--count", count)
		if r.code != 0 {
			t.Fatalf("round %d: consume without a token: %+v", round, r)
		}
		checkAll(t, fmt.Sprintf("round %d, no token", round), r.stdout, n)
	}
}

// backgroundLoad keeps an SDK producer writing to its own topic until the
// returned stop is called, which reports how much it wrote.
func backgroundLoad(t *testing.T, brokers []string) (stop func()) {
	t.Helper()
	admin, err := sdk.NewAdmin(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.CreateTopic(ctx, wire.CreateTopicRequest{Name: "background", Queues: 4}); err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(brokers)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var acked, failed atomic.Int64
	wg.Go(func() {
		val := make([]byte, 1024)
		for {
			select {
			case <-done:
				return
			default:
			}
			p.ProduceAsync(&sdk.Message{Topic: "background", Value: val}, func(_ sdk.Result, err error) {
				if err != nil {
					failed.Add(1)
				} else {
					acked.Add(1)
				}
			})
		}
	})
	return func() {
		close(done)
		wg.Wait()
		fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Flush(fctx); err != nil {
			t.Errorf("background load: flush: %v", err)
		}
		p.Close()
		t.Logf("background load: %d messages of 1 KiB acknowledged, %d failed", acked.Load(), failed.Load())
	}
}

// TestConsumeMinIndexFlag: --min-index is parsed, refused when it is not
// an index, and a token no broker has reached makes consume fail rather
// than print a stale view.
func TestConsumeMinIndexFlag(t *testing.T) {
	ctx := context.Background()
	addr := startBroker(t)
	if r := runLeader(t, ctx, addr, "", "topic", "create", "m", "--queues", "1"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	r := runLeader(t, ctx, addr, "x\ny\n", "produce", "m")
	idx := indexRE.FindStringSubmatch(r.stdout)
	if r.code != 0 || idx == nil {
		t.Fatalf("produce: %+v", r)
	}
	r = mqctl(t, ctx, addr, "", "--format", "json", "produce", "m", "--file", "/dev/null")
	if r.code != 0 || !strings.Contains(r.stdout, `"index":0`) {
		t.Fatalf("produce nothing, json: %+v", r)
	}
	for _, bad := range []string{"-1", "x", "18446744073709551615"} {
		if r := mqctl(t, ctx, addr, "", "consume", "m", "--min-index", bad); r.code != 2 || !strings.Contains(r.stderr, "min-index") {
			t.Errorf("--min-index %s: %+v", bad, r)
		}
	}
	if r := mqctl(t, ctx, addr, "", "consume", "m", "--min-index", idx[1], "--values-only"); r.code != 0 || r.stdout != "x\ny\n" {
		t.Fatalf("--min-index %s: %+v", idx[1], r)
	}
	if r := mqctl(t, ctx, addr, "", "consume", "m", "--min-index", "999999999", "--timeout", "300ms"); r.code != 1 || r.stdout != "" {
		t.Fatalf("--min-index beyond the log: %+v", r)
	}
}
