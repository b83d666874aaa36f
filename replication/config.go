package replication

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/commitlog"
)

// Peer names one member of a group.
type Peer struct {
	ID       string // stable node id, e.g. "n1"
	RaftAddr string // host:port of its Raft (and peer-protocol) listener
}

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// ID is this node's id; it must appear in Peers to bootstrap.
	ID string
	// Dir holds the node's files: log/ (the commit log), raft.db (term and
	// vote), snapshots/.
	Dir string
	// RaftAddr is the address to listen on and advertise for Raft.
	RaftAddr string
	// Peers is the initial membership. If the node has no state yet and
	// Peers includes ID, the node bootstraps the group with exactly these
	// peers (every member of a new group is started with the same list).
	// Peers are also the restore sources of last resort.
	Peers []Peer

	// HeartbeatTimeout: a follower that hears nothing from the leader for
	// this long starts an election. Default 400ms: the lowest setting with
	// no spurious election in loaded runs on a 2-core box (docs/design.md
	// 2.7).
	HeartbeatTimeout time.Duration
	// ElectionTimeout: a candidate that does not win within this long
	// starts over. Default 400ms.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout: a leader that cannot reach a majority for this
	// long steps down. Default 400ms (the heartbeat timeout: a shorter
	// lease made loaded leaders step down spuriously, docs/design.md 2.7).
	LeaderLeaseTimeout time.Duration
	// FailoverAfter: a follower whose leader has been silent this long,
	// when a majority of voters agree, starts an election at once instead
	// of waiting for raft's randomized timer (failover.go). Default 300ms;
	// negative disables it (raft's own timer only).
	FailoverAfter time.Duration
	// CommitTimeout: the longest a leader waits before sending a heartbeat
	// that carries a new commit index. Default 10ms.
	CommitTimeout time.Duration
	// MaxAppendEntries bounds the entries per AppendEntries RPC and per
	// batch the leader writes at once. Default 512. The bound in effect is
	// lower when MaxAppendBytes / MaxEntryBytes is (AppendEntriesBound).
	MaxAppendEntries int
	// MaxEntryBytes bounds one proposed entry: Propose refuses larger
	// data with ErrEntryTooLarge before it reaches raft. Default 4 MiB
	// (64 entries per RPC); the broker sets it from its request bound. At
	// most the commit log's MaxEntrySize.
	MaxEntryBytes int
	// MaxAppendBytes bounds the entry bytes of one AppendEntries RPC: what
	// the leader reads from its log for one follower at once and what the
	// follower decodes. hashicorp/raft bounds an RPC by entry count only,
	// so the count is chosen from the bytes: MaxAppendBytes /
	// MaxEntryBytes entries (at least 1, at most MaxAppendEntries).
	// Default 256 MiB.
	MaxAppendBytes int64
	// SnapshotInterval and SnapshotThreshold: how often raft checks, and
	// how many new entries make it take, a state snapshot. Defaults 2s and
	// 512: a restart replays the entries since the last snapshot (twice:
	// raft scans them, then the state machine applies them), about 0.5 ms
	// per 0.5 MB entry, so this keeps a restart under a second.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	// RetainSnapshots is how many snapshot files to keep. Default 2.
	RetainSnapshots int
	// RestoreTimeout bounds how long a snapshot restore keeps trying peers
	// for the log range it needs. Default 60s.
	RestoreTimeout time.Duration
	// RetentionInterval: how often retention runs. 0 disables the
	// background loop (call ApplyRetention). Default 30s.
	RetentionInterval time.Duration

	// Log configures the commit log. Default commitlog.DefaultOptions().
	Log commitlog.Options

	// Dialer opens connections to peers. Default DefaultDialer (TCP).
	Dialer Dialer
	// TLS, if set, makes the Raft port (Raft and the peer protocol) mutual
	// TLS between members: a peer's certificate, signed by the cluster CA,
	// must carry the URI SAN ledgermq://node/<id> of a member of the
	// newest configuration, and every Raft RPC must claim that id
	// (tlsmux.go, authtransport.go). Connections run over Dialer.
	TLS TLSSource
	// Transport, if set, replaces the TCP Raft transport (tests use
	// raft.InmemTransport). The peer protocol still listens on RaftAddr,
	// and PeerAddr maps a server to it.
	Transport raft.Transport
	// PeerAddr maps a Raft server to its peer-protocol address. Default:
	// its Raft address.
	PeerAddr func(id raft.ServerID, addr raft.ServerAddress) string
	// APIAddr is reported to peers in PeerStatus (the broker's HTTP
	// address), so nodes learn each other's API addresses.
	APIAddr string
	// KafkaAddr is the broker's advertised Kafka listener, reported the
	// same way ("" when it has none).
	KafkaAddr string

	// Logger receives all logs, raft's included. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults. The timing defaults were measured on
// loopback with three processes under load: see docs/design.md.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   400 * time.Millisecond,
		ElectionTimeout:    400 * time.Millisecond,
		LeaderLeaseTimeout: 400 * time.Millisecond,
		FailoverAfter:      300 * time.Millisecond,
		CommitTimeout:      10 * time.Millisecond,
		MaxAppendEntries:   512,
		MaxEntryBytes:      4 << 20,
		MaxAppendBytes:     256 << 20,
		SnapshotInterval:   2 * time.Second,
		SnapshotThreshold:  512,
		RetainSnapshots:    2,
		RestoreTimeout:     60 * time.Second,
		RetentionInterval:  30 * time.Second,
		Log:                commitlog.DefaultOptions(),
	}
}

func (c *Config) validate() error {
	if c.ID == "" {
		return fmt.Errorf("replication: config: empty node id")
	}
	if c.Dir == "" {
		return fmt.Errorf("replication: config: empty data directory")
	}
	if c.RaftAddr == "" {
		return fmt.Errorf("replication: config: empty raft address")
	}
	seen := map[string]bool{}
	for _, p := range c.Peers {
		if p.ID == "" || p.RaftAddr == "" {
			return fmt.Errorf("replication: config: peer with empty id or address")
		}
		if seen[p.ID] {
			return fmt.Errorf("replication: config: peer %s listed twice", p.ID)
		}
		seen[p.ID] = true
	}
	if c.RestoreTimeout < 0 || c.RetainSnapshots < 0 {
		return fmt.Errorf("replication: config: negative restore timeout or retained snapshots")
	}
	// raft sends heartbeats every 1/10 to 2/10 of the heartbeat timeout:
	// a silence shorter than two of its longest gaps is no sign of failure.
	if c.FailoverAfter > 0 && c.FailoverAfter < c.HeartbeatTimeout*2/5 {
		return fmt.Errorf("replication: config: FailoverAfter %v is below 2/5 of the heartbeat timeout %v (raft's heartbeat gaps reach 1/5)", c.FailoverAfter, c.HeartbeatTimeout)
	}
	if c.MaxEntryBytes <= 0 {
		c.MaxEntryBytes = DefaultConfig().MaxEntryBytes
	}
	if c.Log.MaxEntrySize > 0 && c.MaxEntryBytes > c.Log.MaxEntrySize {
		return fmt.Errorf("replication: config: MaxEntryBytes %d is over the commit log's entry limit %d", c.MaxEntryBytes, c.Log.MaxEntrySize)
	}
	if c.RestoreTimeout == 0 { // zero would try each peer once: take the default
		c.RestoreTimeout = DefaultConfig().RestoreTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Dialer == nil {
		c.Dialer = DefaultDialer
	}
	if c.PeerAddr == nil {
		c.PeerAddr = func(_ raft.ServerID, addr raft.ServerAddress) string { return string(addr) }
	}
	if c.Log.Logger == nil {
		c.Log.Logger = c.Logger
	}
	return nil
}

func (c *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.MaxAppendEntries = c.AppendEntriesBound()
	rc.BatchApplyCh = true
	rc.SnapshotInterval = c.SnapshotInterval
	rc.SnapshotThreshold = c.SnapshotThreshold
	// Never compact the log after a snapshot: the log is the message
	// store, and retention decides what is deleted. raft skips compaction
	// when the log is not longer than TrailingLogs.
	rc.TrailingLogs = ^uint64(0)
	rc.Logger = newHCLog(c.Logger)
	rc.NoLegacyTelemetry = true
	return rc
}

// AppendEntriesBound is the entries per AppendEntries RPC in effect:
// MaxAppendEntries, lowered so that that many entries of MaxEntryBytes
// stay within MaxAppendBytes (at least 1).
func (c *Config) AppendEntriesBound() int {
	n := c.MaxAppendEntries
	if n <= 0 || n > 1024 { // out of raft's range: raft.ValidateConfig refuses it as given
		return n
	}
	if c.MaxEntryBytes > 0 && c.MaxAppendBytes > 0 {
		n = int(min(int64(n), c.MaxAppendBytes/int64(c.MaxEntryBytes)))
	}
	return max(n, 1)
}

// SyncPolicy is the commit log's durability policy (commitlog.SyncPolicy),
// so that callers configure a node without reaching into its log.
type SyncPolicy = commitlog.SyncPolicy

// The durability policies; commitlog documents what each risks.
const (
	SyncEveryAppend = commitlog.SyncEveryAppend
	SyncInterval    = commitlog.SyncInterval
	SyncNever       = commitlog.SyncNever
)

// ParseSyncPolicy parses "every-append", "interval" or "never".
func ParseSyncPolicy(s string) (SyncPolicy, error) { return commitlog.ParseSyncPolicy(s) }
