package broker

import (
	"log/slog"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/testnet"
)

// TestCloseRightAfterOpen: a broker closed before its HTTP server got to
// serve still closes (found when broker dev stopped its first node after
// the second failed to start, and hung), and a second Close does nothing.
func TestCloseRightAfterOpen(t *testing.T) {
	for i := range 10 {
		addrs := testnet.FreeAddrs(t, 2)
		cfg := DefaultConfig()
		cfg.Listen, cfg.RaftListen, cfg.DataDir = addrs[0], addrs[1], t.TempDir()
		cfg.Logger = slog.New(slog.DiscardHandler)
		b, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- b.Close() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: Close right after Open hangs", i)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
}
