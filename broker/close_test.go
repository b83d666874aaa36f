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

// TestAdvertisedAPI: a node told to advertise another API address names
// that one as the leader's, not its listener.
func TestAdvertisedAPI(t *testing.T) {
	bs := startGroup(t, 1, func(c *Config) { c.AdvertiseAPI = "broker.example:7001" })
	if lv := bs[0].Service().LeaderView(); lv.LeaderAPI != "broker.example:7001" {
		t.Fatalf("leader view %+v", lv)
	}
}
