package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// TestPprofLoopbackOnly: profiles are served on a loopback address and
// refused on any other; the server stops with its context.
func TestPprofLoopbackOnly(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "10.0.0.1:0", "nonsense"} {
		if _, err := startPprof(context.Background(), addr, logger); err == nil {
			t.Errorf("--pprof-listen %q accepted", addr)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait, err := startPprof(ctx, "127.0.0.1:0", logger)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	wait()
}
