package netlab

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestLabFaults: hosts reach each other and the root namespace; a cut
// link, an isolated host and a blackholed host drop packets silently (a
// dial times out rather than being refused); Heal restores everything.
func TestLabFaults(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("network namespaces cannot run here: %v", err)
	}
	l, err := New([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Nothing listens on port 9: a host that gets the SYN answers with a
	// reset at once (reachable); a dropped SYN leaves the dial hanging.
	check := func(what string, from, to string, want bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		dial := "exec 3<>/dev/tcp/" + l.IP(to) + "/9"
		cmd := exec.CommandContext(ctx, "bash", "-c", dial)
		if from != "" {
			cmd = exec.CommandContext(ctx, "ip", "netns", "exec", l.Namespace(from), "bash", "-c", dial)
		}
		out, _ := cmd.CombinedOutput()
		got := ctx.Err() == nil // answered (refused) before the deadline
		if got != want {
			t.Fatalf("%s: %q -> %s answered %v, want %v (%s)", what, from, to, got, want, out)
		}
	}
	check("start", "a", "b", true)
	check("start", "", "a", true)
	if err := l.Cut("a", "b"); err != nil {
		t.Fatal(err)
	}
	check("cut", "a", "b", false)
	check("cut", "", "a", true)
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	check("healed", "a", "b", true)
	if err := l.Blackhole("b"); err != nil {
		t.Fatal(err)
	}
	check("blackhole", "", "b", false)
	check("blackhole", "a", "b", false)
	check("blackhole", "", "a", true)
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	check("healed", "", "b", true)
}
