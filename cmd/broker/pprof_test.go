package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPprofLoopbackOnly: profiles are served on a loopback address and
// refused on any other; the server stops with its context.
func TestPprofLoopbackOnly(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "10.0.0.1:0", "nonsense"} {
		if _, err := startPprof(context.Background(), addr, "", logger); err == nil {
			t.Errorf("--pprof-listen %q accepted", addr)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrFile := filepath.Join(t.TempDir(), "pprof.addr")
	wait, err := startPprof(ctx, "127.0.0.1:0", addrFile, logger)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(addrFile)
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.Get("http://" + strings.TrimSpace(string(b)) + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("profiles at the written address: %s", r.Status)
	}
	cancel()
	wait()
}
