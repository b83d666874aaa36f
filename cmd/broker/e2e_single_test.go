package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mqctl runs the mqctl binary against addr.
func mqctl(t *testing.T, addr string, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t, "mqctl"), append([]string{"--brokers", addr}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("mqctl %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// consumeAll reads the whole topic with mqctl and checks it holds exactly
// want messages m0..m{want-1}, each once, in order within its queue.
func consumeAll(t *testing.T, addr string, want int) {
	t.Helper()
	checkExactly(t, mqctl(t, addr, "", "consume", "single", "--from-beginning", "--values-only"), 0, want)
}

// TestSingleNodeMqctl: produce 10k messages with mqctl, consume them back,
// restart cleanly, consume again, kill -9 and restart, consume again.
func TestSingleNodeMqctl(t *testing.T) {
	if testing.Short() {
		t.Skip("runs OS processes")
	}
	g := newGroup(t, 1)
	addr := g.api["n1"]
	waitUntil(t, 15*time.Second, "the node to lead", func() bool { return g.leader() == "n1" })
	mqctl(t, addr, "", "topic", "create", "single", "--queues", "3")
	var in strings.Builder
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&in, "m%d\n", i)
	}
	mqctl(t, addr, in.String(), "produce", "single", "--batch-size", "1000")
	consumeAll(t, addr, 10000)

	g.signal("n1", syscall.SIGTERM)
	g.start("n1")
	waitUntil(t, 15*time.Second, "the node to lead again", func() bool { return g.leader() == "n1" })
	consumeAll(t, addr, 10000)

	mqctl(t, addr, "m10000\n", "produce", "single")
	g.signal("n1", syscall.SIGKILL)
	g.start("n1")
	waitUntil(t, 15*time.Second, "the node to lead after kill -9", func() bool { return g.leader() == "n1" })
	consumeAll(t, addr, 10001)
	if out := mqctl(t, addr, "", "topic", "describe", "single"); !strings.Contains(out, "single") {
		t.Fatalf("describe: %s", out)
	}
}
