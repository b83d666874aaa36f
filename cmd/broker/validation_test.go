package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Refusals of bad settings, each found by a failing test first.

// TestValueErrorsQuoteTheValue: a bad LEDGERMQ_* or --config value says
// which value is wrong (it used to say only "LEDGERMQ_SEGMENT_BYTES: parse error").
func TestValueErrorsQuoteTheValue(t *testing.T) {
	t.Setenv("LEDGERMQ_SEGMENT_BYTES", "1MB")
	if _, err := parseNodeFlags(nil, io.Discard); err == nil || !strings.Contains(err.Error(), `"1MB"`) {
		t.Errorf("env: %v", err)
	}
	t.Setenv("LEDGERMQ_SEGMENT_BYTES", "1")
	if _, err := parseNodeFlags([]string{"--config", writeConfig(t, "retention = forever\n")}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), `"forever"`) {
		t.Errorf("file: %v", err)
	}
}

// TestInvalidValuesRefused: values the flag package accepts but the
// broker cannot use are refused, not silently changed.
func TestInvalidValuesRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--log-level", "verbose"},       // silently becomes info
		{"--group-id", "4294967297"},     // silently truncated to group 1
		{"--data-dir", t.TempDir(), "x"}, // positional argument ignored
	} {
		o, err := parseNodeFlags(args, io.Discard)
		if err == nil {
			_, err = o.brokerConfig(nil)
		}
		if err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	for _, extra := range [][]string{{"stray"}, {"--log-level", "loud"}} {
		b := freeRanges(t, 1, 2)
		args := append([]string{"--nodes", "1", "--data-dir", t.TempDir(), "--api-port", strconv.Itoa(b[0]),
			"--raft-port", strconv.Itoa(b[1])}, extra...)
		ctx, cancel := context.WithCancel(context.Background())
		if _, done, _ := startDev(t, ctx, args); done != nil {
			t.Errorf("broker dev %q: accepted", extra)
			cancel()
			<-done
		}
		cancel()
	}
}

// TestDevPortTaken: a node that cannot listen fails runDev, and the nodes
// already started are closed.
func TestDevPortTaken(t *testing.T) {
	bases := freeRanges(t, 3, 2)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", bases[0]+1)) // n2's API port
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		done <- runDev(context.Background(), []string{"--nodes", "3", "--data-dir", t.TempDir(), "--api-port", strconv.Itoa(bases[0]),
			"--raft-port", strconv.Itoa(bases[1]), "--log-level", "error"}, io.Discard, io.Discard)
	}()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		// Broker.Close right after Open: httpapi's Shutdown ran before
		// fasthttp's Serve registered the listener, so Serve never ends
		// and Close waits for it forever.
		t.Fatal("runDev hangs closing n1 after n2 failed to start")
	}
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("listen on 127.0.0.1:%d", bases[0]+1)) {
		t.Fatalf("err %v", err)
	}
	// n1 was closed: its ports are free again.
	for _, p := range []int{bases[0], bases[1]} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d still taken after runDev failed: %v", p, err)
		}
		l.Close()
	}
}
