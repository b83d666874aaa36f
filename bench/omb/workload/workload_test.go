package workload

import (
	"path/filepath"
	"testing"
	"time"
)

// TestShippedWorkloads parses every file in ../workloads.
func TestShippedWorkloads(t *testing.T) {
	files, err := filepath.Glob("../workloads/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("workload files: %v, %v", files, err)
	}
	for _, f := range files {
		w, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if w.Name+".yaml" != filepath.Base(f) {
			t.Errorf("%s: name %q does not match the file", f, w.Name)
		}
	}
}

func TestParse(t *testing.T) {
	w, err := Parse([]byte("name: x\ntestDurationMinutes: 0.5\nwarmupDuration: 2s\nkillLeaderEvery: 15s\nlingerMs: 2.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w.Test.Duration != 30*time.Second || w.Warmup.Duration != 2*time.Second || w.KillLeaderEvery.Duration != 15*time.Second ||
		w.Linger() != 2500*time.Microsecond || w.Topics != 1 || w.MessageSize != 1024 || w.Durability != "fsync" {
		t.Fatalf("got %+v", w)
	}
	if _, err := Parse([]byte("name: x\n")); err == nil {
		t.Error("no duration: want an error")
	}
	if _, err := Parse([]byte("testDuration: banana\n")); err == nil {
		t.Error("bad duration: want an error")
	}
}

func TestFault(t *testing.T) {
	w, err := Parse([]byte("name: f\ntestDuration: 30s\nfault: stall\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w.Fault != "stall" || w.FaultHold.Duration != 3*time.Second || w.FaultEvery.Duration != 12*time.Second || w.ID() != "f-stall" {
		t.Fatalf("got %+v, id %s", w, w.ID())
	}
	// -fault on a killLeaderEvery workload: the period carries over.
	w, err = Parse([]byte("name: k\ntestDuration: 30s\nkillLeaderEvery: 15s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetFault("blackhole", 0); err != nil {
		t.Fatal(err)
	}
	if w.KillLeaderEvery.Duration != 0 || w.FaultEvery.Duration != 15*time.Second || w.FaultHold.Duration != 5*time.Second {
		t.Fatalf("got %+v", w)
	}
	for _, bad := range []string{"fault: crash\n", "fault: kill\nfaultHold: 20s\n", "faultHold: 2s\n"} {
		if _, err := Parse([]byte("name: b\ntestDuration: 30s\n" + bad)); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
