package report

import (
	"os"
	"path/filepath"
	"slices"
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
	for i, sys := range []string{"ledgermq", "ledgermq-tls"} {
		r := &runner.Result{System: sys, Workload: w, StartedAt: time.Now(), PublishRate: float64(1000 * (i + 1)),
			CPU:            &runner.CPU{ServerUsPerMsg: float64(10 + i), ClientUsPerMsg: 5},
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
	if !strings.Contains(string(md), "| metric | ledgermq | ledgermq-tls |") || !strings.Contains(string(md), "500, 700") ||
		!strings.Contains(string(md), "| CPU µs/msg: servers / clients | 10.0 / 5.0 | 11.0 / 5.0 |") {
		t.Errorf("README:\n%s", md)
	}
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestWriteFaults renders two systems under two faults: the side-by-side
// table and the strip chart.
func TestWriteFaults(t *testing.T) {
	var rs []*runner.Result
	for _, f := range []string{"stall", "kill"} {
		for i, sys := range []string{"ledgermq", "nats"} {
			w := workload.Workload{Name: "faults-1kb", Topics: 1, QueuesPerTopic: 2, MessageSize: 1024, Test: workload.Duration{Duration: 10 * time.Second}}
			if err := w.SetFault(f, 0); err != nil {
				t.Fatal(err)
			}
			r := &runner.Result{System: sys, Workload: w, StartedAt: time.Now(), Acked: 100,
				Kills: []runner.Kill{{Fault: f, Node: "n1", FirstAckMs: float64(300 * (i + 1)), MaxGapMs: 400}, {Fault: f, Node: "n2", FirstAckMs: -1}}}
			rs = append(rs, r)
		}
	}
	dir := t.TempDir()
	files, err := Write(dir, rs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, "faults-outage.png") || !slices.Contains(files, "faults-1kb-stall-failover.png") {
		t.Errorf("files %v: want faults-outage.png and per-fault charts", files)
	}
	md, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Leader faults side by side", "**kill** (1s)", "**stall** (3s)", "300 / 300 (1 without an ack)", "600, -1"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("README lacks %q:\n%s", want, md)
		}
	}
	if strings.Index(string(md), "**kill**") > strings.Index(string(md), "**stall**") {
		t.Error("faults not in the documented order (kill first)")
	}
}

// TestWriteCurves renders the curves of two systems: a table row per run
// and a publish and an end-to-end chart.
func TestWriteCurves(t *testing.T) {
	var cs []*runner.Curve
	for i, sys := range []string{"ledgermq", "nats"} {
		c := &runner.Curve{Kind: runner.CurveKind, System: sys, Workload: "wl", LingerMs: 1, MaxRate: float64(1000 * (i + 1)),
			Max: runner.CurvePoint{PublishRate: float64(1000 * (i + 1)), Result: "max.json"}}
		for _, pct := range runner.CurvePercents {
			rate := c.MaxRate * pct / 100
			c.Points = append(c.Points, runner.CurvePoint{Percent: pct, TargetRate: int(rate), PublishRate: rate, Result: "r.json",
				PublishLatency: runner.Latency{P50: pct / 10, P99: pct / 5, P999: pct / 2}, E2ELatency: runner.Latency{P50: pct / 5, P99: pct / 2, P999: pct},
				CPU: &runner.CPU{ServerUsPerMsg: 12.5}})
		}
		cs = append(cs, c)
	}
	dir := t.TempDir()
	files, err := WriteCurves(dir, cs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"curves.md", "wl-curve-publish.png", "wl-curve-e2e.png"}; !slices.Equal(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
	md, err := os.ReadFile(filepath.Join(dir, "curves.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## wl — nats (max 2000 msgs/s, linger 1.0 ms)", "| 50 | 1000 | 1000 | 5.00 / 10.00 / 25.00 | 10.00 / 25.00 / 50.00 | 12.5 |", "| max run | max | 2000 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("curves.md lacks %q:\n%s", want, md)
		}
	}
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
