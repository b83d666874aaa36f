package runner_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/bench/omb/runner"
	"github.com/ledgermq/ledgermq/bench/omb/workload"
)

// TestSmoke runs workloads/ci-smoke.yaml against three LedgerMQ broker
// processes, plain and secured (TLS on the API, mutual TLS on the Raft
// port, --auth with the clients' certificate as superuser), and checks the
// JSON result: messages were published and consumed, no acknowledged
// message was lost, the result names the secured system as such and has
// the window's CPU. It builds ./cmd/broker, so it is skipped with -short.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three broker processes")
	}
	for _, tc := range []struct {
		name, system string
		tls, auth    bool
	}{{"plain", "ledgermq", false, false}, {"tls-auth", "ledgermq-tls-auth", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			d := driver.NewLedgerMQ()
			if err := d.SetSecurity(tc.tls, tc.auth); err != nil {
				t.Fatal(err)
			}
			got := smoke(t, d)
			if got.System != tc.system {
				t.Errorf("system %q, want %q", got.System, tc.system)
			}
		})
	}
}

// smoke runs ci-smoke with d and checks its JSON result.
func smoke(t *testing.T, d driver.Driver) runner.Result {
	w, err := workload.Load("../workloads/ci-smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := runner.Run(ctx, d, w, runner.Options{BaseDir: t.TempDir(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	path, err := runner.WriteResult(out, res)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got runner.Result
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: published %d consumed %d acked %d lost %d dups %d pub p99 %.1f ms, CPU %+v",
		got.System, got.Published, got.Consumed, got.Acked, got.Lost, got.Duplicates, got.PublishLatency.P99, got.CPU)
	if got.Published == 0 || got.Consumed == 0 || got.Acked == 0 {
		t.Errorf("published %d, consumed %d, acked %d: want all > 0", got.Published, got.Consumed, got.Acked)
	}
	if got.Lost != 0 {
		t.Errorf("lost %d acknowledged messages", got.Lost)
	}
	if got.PublishLatency.Count == 0 {
		t.Error("no publish latency recorded")
	}
	if got.CPU == nil || got.CPU.ServerSeconds <= 0 || got.CPU.ClientSeconds <= 0 {
		t.Errorf("CPU %+v: want server and client CPU time in the window", got.CPU)
	}
	return got
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// TestFaultSmoke runs ci-smoke with one blackhole of the leader, every node
// in a network namespace of its own; skipped without root, ip and nft
// (internal/netlab) and with -short. No timing assertions: an event was
// recorded and nothing acknowledged was lost or duplicated.
func TestFaultSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three broker processes")
	}
	d := driver.NewLedgerMQ()
	if err := runner.FaultsAvailable(d); err != nil {
		t.Skipf("fault workloads need network namespaces: %v", err)
	}
	w, err := workload.Load("../workloads/ci-smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w.Test.Duration, w.FaultEvery.Duration = 6*time.Second, 2*time.Second
	if err := w.SetFault("blackhole", time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := runner.Run(ctx, d, w, runner.Options{BaseDir: t.TempDir(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("events %+v; acked %d lost %d dups %d", res.Kills, res.Acked, res.Lost, res.Duplicates)
	if len(res.Kills) == 0 || res.Kills[0].Fault != "blackhole" {
		t.Errorf("events %+v: want at least one blackhole", res.Kills)
	}
	if res.Acked == 0 || res.Lost != 0 || res.Duplicates != 0 {
		t.Errorf("acked %d, lost %d, duplicates %d: want > 0, 0, 0", res.Acked, res.Lost, res.Duplicates)
	}
}

// TestBacklogSmoke publishes a 5 MB backlog into three LedgerMQ broker
// processes and drains it with one and with four consumers (four queues
// split between them): each drain must receive every acknowledged message
// exactly once, with a rate. It builds ./cmd/broker, so it is skipped
// with -short.
func TestBacklogSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three broker processes")
	}
	w, err := workload.Parse([]byte("name: backlog-smoke\nqueuesPerTopic: 4\nproducersPerTopic: 2\nconsumerBacklogSizeGB: 0.005\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := runner.Run(ctx, driver.NewLedgerMQ(), w, runner.Options{BaseDir: t.TempDir(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	b := res.Backlog
	if b == nil || b.Messages != 5000000/1024 || b.ProduceRate <= 0 {
		t.Fatalf("backlog %+v: want %d messages produced", b, 5000000/1024)
	}
	if len(b.Drains) != 2 {
		t.Fatalf("drains %+v: want 1 and 4 consumers", b.Drains)
	}
	for i, d := range b.Drains {
		if d.Consumers != []int{1, 4}[i] || d.Skipped != "" || d.Received != b.Messages || d.Lost != 0 || d.Duplicates != 0 || d.MsgsPerSec <= 0 {
			t.Errorf("drain %+v: want every one of %d messages once", d, b.Messages)
		}
	}
}
