package replication

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/internal/testnet"
)

// validConfig is a one-node config that passes validation and starts.
func validConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ID = "n1"
	cfg.Dir = t.TempDir()
	cfg.RaftAddr = testnet.FreeAddrs(t, 1)[0]
	cfg.Peers = []Peer{{ID: "n1", RaftAddr: cfg.RaftAddr}}
	cfg.Logger = testLogger(t)
	cfg.RetentionInterval = 0
	return cfg
}

func TestConfigValidateRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"empty id", func(c *Config) { c.ID = "" }, "empty node id"},
		{"empty dir", func(c *Config) { c.Dir = "" }, "empty data directory"},
		{"empty raft address", func(c *Config) { c.RaftAddr = "" }, "empty raft address"},
		{"peer without id", func(c *Config) { c.Peers = append(c.Peers, Peer{RaftAddr: "h:1"}) }, "peer with empty id or address"},
		{"peer without address", func(c *Config) { c.Peers = append(c.Peers, Peer{ID: "n2"}) }, "peer with empty id or address"},
		{"peer twice", func(c *Config) { c.Peers = append(c.Peers, Peer{ID: "n1", RaftAddr: "h:2"}) }, "peer n1 listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig(t)
			tc.change(&cfg)
			err := cfg.validate()
			if err == nil || !strings.HasPrefix(err.Error(), "replication: config: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate: %v, want %q", err, tc.want)
			}
			if n, err := Open(cfg, &testSM{}); err == nil {
				n.Stop()
				t.Fatalf("Open accepted the config")
			}
		})
	}
}

func TestConfigValidateDefaults(t *testing.T) {
	cfg := validConfig(t)
	cfg.Logger = nil
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Logger != slog.Default() || cfg.Log.Logger != cfg.Logger {
		t.Fatalf("default loggers: %p %p, want slog.Default %p", cfg.Logger, cfg.Log.Logger, slog.Default())
	}
	if cfg.Dialer == nil {
		t.Fatal("no default dialer")
	}
	if got := cfg.PeerAddr("n2", "10.0.0.2:7000"); got != "10.0.0.2:7000" {
		t.Fatalf("default PeerAddr = %q, want the raft address", got)
	}

	// What the caller set stays.
	own, logOwn := testLogger(t), testLogger(t)
	dialed := false
	cfg = validConfig(t)
	cfg.Logger, cfg.Log.Logger = own, logOwn
	cfg.Dialer = func(context.Context, string) (net.Conn, error) { dialed = true; return nil, errors.New("no") }
	cfg.PeerAddr = func(id raft.ServerID, _ raft.ServerAddress) string { return "peer-" + string(id) }
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Dialer(context.Background(), "x")
	if cfg.Logger != own || cfg.Log.Logger != logOwn || !dialed || cfg.PeerAddr("n2", "a") != "peer-n2" {
		t.Fatal("validate replaced a field the caller set")
	}
}

func TestDefaultConfigRaftConfig(t *testing.T) {
	cfg := validConfig(t)
	rc := cfg.raftConfig()
	if err := raft.ValidateConfig(rc); err != nil {
		t.Fatalf("the defaults are not a valid raft config: %v", err)
	}
	if rc.LocalID != "n1" || rc.HeartbeatTimeout != 400*time.Millisecond || rc.ElectionTimeout != 400*time.Millisecond ||
		rc.LeaderLeaseTimeout != 400*time.Millisecond || rc.CommitTimeout != 10*time.Millisecond ||
		rc.MaxAppendEntries != 64 || rc.SnapshotInterval != 2*time.Second || rc.SnapshotThreshold != 512 {
		t.Fatalf("raft config does not carry the defaults: %+v", rc)
	}
	// The log is the message store: raft must never compact it.
	if rc.TrailingLogs != ^uint64(0) || !rc.BatchApplyCh || rc.Logger == nil {
		t.Fatalf("TrailingLogs %d BatchApplyCh %v Logger %v", rc.TrailingLogs, rc.BatchApplyCh, rc.Logger)
	}
	if cfg.RetainSnapshots != 2 || cfg.RestoreTimeout != 60*time.Second || DefaultConfig().RetentionInterval != 30*time.Second {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// TestAppendEntriesBound: hashicorp/raft bounds an AppendEntries RPC by
// entry count only; the count in effect is chosen so that that many
// entries of the largest size Propose accepts stay within MaxAppendBytes,
// and Propose refuses anything larger.
func TestAppendEntriesBound(t *testing.T) {
	for _, tc := range []struct {
		entries, entryBytes int
		appendBytes         int64
		want                int
	}{
		{512, 4 << 20, 256 << 20, 64},
		{512, 16<<20 + 256<<10, 256 << 20, 15},
		{512, 1 << 10, 256 << 20, 512},
		{512, 64 << 20, 32 << 20, 1},
		{512, 0, 256 << 20, 512},
	} {
		c := Config{MaxAppendEntries: tc.entries, MaxEntryBytes: tc.entryBytes, MaxAppendBytes: tc.appendBytes}
		if got := c.AppendEntriesBound(); got != tc.want {
			t.Errorf("%+v: bound %d, want %d", tc, got, tc.want)
		}
	}
	cfg := validConfig(t)
	cfg.MaxEntryBytes = 1 << 20
	cfg.Log.MaxEntrySize = 64 << 20
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.raftConfig().MaxAppendEntries; got != 256 {
		t.Fatalf("raft's MaxAppendEntries %d, want 256 (256 MiB / 1 MiB)", got)
	}
	cfg.MaxEntryBytes = 65 << 20
	if err := cfg.validate(); err == nil {
		t.Fatal("an entry bound over the commit log's limit was accepted")
	}
}

// TestOpenRefusesBadTiming: timing fields raft cannot run with are refused
// by Open, and a refused Open leaves nothing behind: the same directory and
// address open afterwards.
func TestOpenRefusesBadTiming(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"zero heartbeat", func(c *Config) { c.HeartbeatTimeout = 0 }, "HeartbeatTimeout is too low"},
		{"zero election", func(c *Config) { c.ElectionTimeout = 0 }, "ElectionTimeout is too low"},
		{"election below heartbeat", func(c *Config) { c.ElectionTimeout = 200 * time.Millisecond }, "ElectionTimeout"},
		{"zero lease", func(c *Config) { c.LeaderLeaseTimeout = 0 }, "LeaderLeaseTimeout is too low"},
		{"failover watch within heartbeat gaps", func(c *Config) { c.FailoverAfter = 100 * time.Millisecond }, "FailoverAfter"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = time.Second }, "LeaderLeaseTimeout"},
		{"zero commit", func(c *Config) { c.CommitTimeout = 0 }, "CommitTimeout is too low"},
		{"zero append entries", func(c *Config) { c.MaxAppendEntries = 0 }, "MaxAppendEntries must be positive"},
		{"too many append entries", func(c *Config) { c.MaxAppendEntries = 4096 }, "MaxAppendEntries is too large"},
		{"zero snapshot interval", func(c *Config) { c.SnapshotInterval = 0 }, "SnapshotInterval is too low"},
		{"bad log options", func(c *Config) { c.Log.SegmentSize = -1 }, "invalid options"},
	}
	cfg := validConfig(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := cfg
			tc.change(&bad)
			n, err := Open(bad, &testSM{})
			if err == nil {
				n.Stop()
				t.Fatal("Open accepted the config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want %q", err, tc.want)
			}
		})
	}
	n, err := Open(cfg, &testSM{})
	if err != nil {
		t.Fatalf("Open after refused attempts on the same dir and address: %v", err)
	}
	defer n.Stop()
	waitFor(t, 10*time.Second, n.IsLeader)
}
