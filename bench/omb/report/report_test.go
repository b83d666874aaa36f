package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/runner"
	"github.com/ledgermq/ledgermq/bench/omb/workload"
)

// TestWrite renders two systems of one failover workload.
func TestWrite(t *testing.T) {
	w := workload.Workload{Name: "wl", Topics: 1, QueuesPerTopic: 2, MessageSize: 1024}
	var rs []*runner.Result
	for i, sys := range []string{"ledgermq", "nats"} {
		r := &runner.Result{System: sys, Workload: w, StartedAt: time.Now(), PublishRate: float64(1000 * (i + 1)),
			PublishLatency: runner.Latency{P50: 1, P75: 2, P95: 3, P99: 4, P999: 5}, E2ELatency: runner.Latency{P50: 2, P99: 8},
			Kills: []runner.Kill{{Node: "n1", FirstAckMs: 500}, {Node: "n2", FirstAckMs: 700}}}
		for s := range 10 {
			r.Series = append(r.Series, runner.Sample{T: s + 1, PublishRate: float64(900 + 20*s*(i+1))})
		}
		rs = append(rs, r)
	}
	dir := t.TempDir()
	files, err := Write(dir, rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Errorf("files %v: want README and 4 charts", files)
	}
	md, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| metric | ledgermq | nats |") || !strings.Contains(string(md), "500, 700") {
		t.Errorf("README:\n%s", md)
	}
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
