package service

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
)

// Config tunes the service. Zero fields take the defaults in brackets.
type Config struct {
	ID              string        // this node's id
	GroupID         uint32        // broker group stamped in batches [1]
	ProposeTimeout  time.Duration // how long a write waits for commit [10s]
	MaxWait         time.Duration // longest fetch long poll [30s]
	MaxRequestBytes int           // bound of one request; batches decode to at most 4× [16 MiB]
	Logger          *slog.Logger  // [slog.Default()]
	// Clock is the wall clock (retention by time, message timestamps,
	// session expiry) [time.Now].
	Clock func() time.Time
	// issue 11: quotas (zero fields take the defaults, see Quotas)
	Quotas Quotas

	// issue 11: admission and disk
	// DataDir is the directory whose free space RequireDiskSpace checks
	// ("": no check). Writes that grow the log are refused while its free
	// space is below max(MinFreeBytes, MinFreePercent of its size).
	DataDir        string
	MinFreeBytes   int64   // [DefaultMinFreeBytes]; negative: no byte floor
	MinFreePercent float64 // [DefaultMinFreePercent]; negative: no percent floor
	// FreeSpace reports free and total bytes of a directory [FreeSpace].
	FreeSpace func(dir string) (free, total uint64, err error)

	// issue 12: authentication and authorization
	Auth AuthConfig
}

func (c *Config) fill() {
	if c.GroupID == 0 {
		c.GroupID = 1
	}
	if c.ProposeTimeout <= 0 {
		c.ProposeTimeout = 10 * time.Second
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 30 * time.Second
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 16 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.MinFreePercent == 0 {
		c.MinFreePercent = DefaultMinFreePercent
	}
}

// Service is one node's broker core over its replication node and state
// machine.
type Service struct {
	cfg     Config
	logger  *slog.Logger
	node    *replication.Node
	topics  *topics.State
	groups  *consumer.State
	reader  *topics.Reader
	peers   *peerBook
	sess    *sessions
	Metrics *Metrics

	rr       sync.Map  // topic -> *atomic.Uint64 round-robin counter
	admit    admission // issue 11: quota reservations of writes not yet applied
	draining atomic.Bool
	disk     *diskGuard  // nil: no free-space check
	auth     *authn      // issue 12
	claims   groupClaims // groups another front-end's members hold (issue 14)
	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

// New starts the service over node, which drives m. Close stops it; the
// caller closes node afterwards.
func New(cfg Config, node *replication.Node, m *fsm.Machine) *Service {
	cfg.fill()
	s := &Service{cfg: cfg, logger: cfg.Logger, node: node, topics: m.Topics(), groups: m.Groups(),
		reader: topics.NewReader(m.Topics(), fsm.ProduceLog(node), cfg.Clock),
		peers:  newPeerBook(cfg.ID, node, cfg.Clock), sess: newSessions(), Metrics: newMetrics(), stop: make(chan struct{})}
	s.disk = newDiskGuard(cfg)
	s.auth = newAuthn(cfg.Auth, m.Auth(), s)
	s.wg.Add(4)
	go s.peers.refresh(s.stop, &s.wg)
	go s.countLeaderChanges()
	go s.expireMembers()
	go s.pruneIndexes()
	return s
}

// Drain makes the service refuse new writes (UNAVAILABLE, not applied),
// before a shutdown.
func (s *Service) Drain() { s.draining.Store(true) }

// Close stops the service's goroutines and wakes its long polls. Later
// calls do nothing.
func (s *Service) Close() {
	s.Drain()
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
}

// NodeID is this node's id within its group.
func (s *Service) NodeID() string { return s.cfg.ID }

// Node returns the replication node (for tests and tools).
func (s *Service) Node() *replication.Node { return s.node }

// RequireLeader is the one place that decides whether this node may
// accept a write: nil on the leader, NOT_LEADER naming the leader on any
// other node (so clients go there at once), UNAVAILABLE on a leader that
// is shutting down (it is handing leadership over: retry).
func (s *Service) RequireLeader() error {
	if err := s.requireLeaderRole(); err != nil {
		return err
	}
	if s.draining.Load() {
		return errShuttingDown()
	}
	return nil
}

// requireLeaderRole is RequireLeader for requests that change nothing a
// draining leader must refuse (heartbeats).
func (s *Service) requireLeaderRole() error {
	if !s.node.IsLeader() {
		return s.notLeaderError(s.node.Leader().ID)
	}
	return nil
}

// propose replicates req as op's command and returns its typed result.
func propose[Req, Res any](s *Service, ctx context.Context, op fsm.Op[Req, Res], req Req) (Res, error) {
	if err := s.RequireLeader(); err != nil {
		var zero Res
		return zero, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProposeTimeout)
	defer cancel()
	return fsm.Propose(ctx, s.node, op, req)
}

func (s *Service) countLeaderChanges() {
	defer s.wg.Done()
	ch, cancel := s.node.WatchLeader()
	defer cancel()
	var last replication.LeaderInfo
	for {
		select {
		case <-s.stop:
			return
		case info := <-ch:
			// A new leader, or the same node elected again in a new term
			// (a step-down and re-election is an outage too).
			if info.ID != "" && (info.ID != last.ID || info.Term != last.Term) {
				s.Metrics.LeaderChanges.Add(1)
				last = info
			}
		}
	}
}
