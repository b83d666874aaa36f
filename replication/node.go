package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/ledgermq/ledgermq/commitlog"
)

// Node is one member of a broker group: a commit log, a hashicorp/raft
// instance whose log is that commit log, and the state machine it drives.
type Node struct {
	cfg    Config
	logger *slog.Logger

	log      *commitlog.Log
	store    *LogStore
	stable   *raftboltdb.BoltStore
	snaps    *snapshotStore
	mux      *Mux
	trans    raft.Transport
	netTr    *raft.NetworkTransport // nil with an injected transport
	authTr   *authTransport         // with Config.TLS: netTr plus checked inbound RPCs
	progress *progressTransport     // trans with followers' progress recorded; nil if not wrapped
	fsm      *fsm
	raft     atomic.Pointer[raft.Raft]

	serversMu sync.Mutex
	servers   []raft.Server // newest configuration seen

	readyTerm  atomic.Uint64 // term whose leadership barrier completed
	failovers  atomic.Uint64 // elections started by the failover watch
	caughtUp   atomic.Bool   // see CaughtUp
	caughtUpCh chan struct{} // closed when caughtUp is set

	diskErr  atomic.Pointer[error] // the commit log's failure, once it failed
	diskCh   chan struct{}         // closed when diskErr is set
	diskOnce sync.Once

	watchMu  sync.Mutex
	watchers map[chan LeaderInfo]struct{}
	leader   LeaderInfo

	observer *raft.Observer
	obsCh    chan raft.Observation
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   atomic.Bool
}

// LeaderInfo identifies the leader as seen by this node. ID is empty when
// no leader is known.
type LeaderInfo struct {
	ID   string
	Addr string // Raft address
	Term uint64
}

// Result is the outcome of a committed and applied proposal.
type Result struct {
	Index    uint64 // log index of the entry
	Response any    // what StateMachine.Apply returned for it
}

// Open starts a node: it opens (and recovers) the commit log and Raft's
// stable store, restores the newest snapshot, and joins or bootstraps the
// group. The caller must Close it.
func Open(cfg Config, sm StateMachine) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, logger: cfg.Logger.With("node", cfg.ID), watchers: map[chan LeaderInfo]struct{}{}, stop: make(chan struct{}), diskCh: make(chan struct{}),
		caughtUpCh: make(chan struct{})}
	defer func() {
		if err != nil {
			n.abort()
		}
	}()
	if err := n.openStores(); err != nil {
		return nil, err
	}
	// The state machine wrapper exists before the listener: peers may ask
	// for this node's status as soon as it listens.
	n.fsm = newFSM(sm, n.catchUp)
	n.fsm.onConfig = n.setServers
	if err := n.listen(); err != nil {
		return nil, err
	}
	for _, p := range cfg.Peers {
		n.servers = append(n.servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
	}

	hasState, err := raft.HasExistingState(n.store, n.stable, n.snaps)
	if err != nil {
		return nil, fmt.Errorf("replication: inspect state: %w", err)
	}
	r, err := raft.NewRaft(cfg.raftConfig(), n.fsm, n.store, n.stable, n.snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("replication: start raft: %w", err)
	}
	n.raft.Store(r)
	n.obsCh = make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(n.observer)
	n.wg.Add(2)
	go n.watchLeadership()
	go n.watchDisk()
	if cfg.RetentionInterval > 0 {
		n.wg.Add(1)
		go n.retentionLoop()
	}
	if cfg.FailoverAfter > 0 {
		n.wg.Add(1)
		go n.failoverWatch()
	}
	n.wg.Add(1)
	go n.watchCaughtUp()
	if cfg.TLS != nil {
		n.wg.Add(1)
		go n.watchMembers()
	}

	if !hasState && n.inPeers(cfg.ID) {
		if err := r.BootstrapCluster(raft.Configuration{Servers: n.serversCopy()}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("replication: bootstrap: %w", err)
		}
		n.logger.Info("bootstrapped group", "peers", len(cfg.Peers))
	} else if f := r.GetConfiguration(); f.Error() == nil {
		n.setServers(f.Configuration())
	}
	return n, nil
}

// openStores opens the commit log (recovering it), Raft's stable store and
// the snapshot store.
func (n *Node) openStores() error {
	cfg := n.cfg
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("replication: create %s: %w", cfg.Dir, err)
	}
	var err error
	opts := cfg.Log
	opts.OnFail = func(err error) {
		n.store.fail(err) // latches the store, which tells diskFailed
		if cfg.Log.OnFail != nil {
			cfg.Log.OnFail(err)
		}
	}
	if n.log, err = commitlog.Open(filepath.Join(cfg.Dir, "log"), opts); err != nil {
		return err
	}
	n.store = NewLogStore(n.log, n.logger)
	n.store.onFail = n.diskFailed
	if n.stable, err = raftboltdb.NewBoltStore(filepath.Join(cfg.Dir, "raft.db")); err != nil {
		return fmt.Errorf("replication: open stable store: %w", err)
	}
	fss, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, max(cfg.RetainSnapshots, 1), newHCLog(n.logger))
	if err != nil {
		return fmt.Errorf("replication: open snapshot store: %w", err)
	}
	n.snaps, err = newSnapshotStore(fss)
	return err
}

// listen opens the Raft port (shared with the peer protocol) and the Raft
// transport over it, unless the config injects a transport. With
// Config.TLS the port is mutual TLS between members (tlsmux.go) and the
// transport checks who sends each RPC (authtransport.go).
func (n *Node) listen() error {
	ln, err := net.Listen("tcp", n.cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("replication: listen on %s: %w", n.cfg.RaftAddr, err)
	}
	var auth *muxAuth
	if n.cfg.TLS != nil {
		n.authTr = newAuthTransport(ln.Addr(), n.isMember, n.memberAddr, n.transportConfig, n.logger)
		auth = &muxAuth{tls: n.cfg.TLS, member: n.isMember, idAt: n.memberAt, raft: n.authTr.deliver,
			onLog: n.logger.Warn}
		if n.cfg.Transport != nil {
			auth.raft = func(_ string, c net.Conn) { c.Close() } // raft runs elsewhere
		}
	}
	n.mux = newMux(ln, n.cfg.Dialer, n.logger, auth)
	ps := &peerServer{log: n.log, status: n.peerStatus, suspect: n.suspectView}
	n.mux.setPeerHandler(ps.serve)
	if n.cfg.Transport != nil {
		n.trans = n.cfg.Transport
		n.trackProgress()
		return nil
	}
	cfg := n.transportConfig()
	cfg.Stream = raftStream{n.mux}
	n.netTr = raft.NewNetworkTransportWithConfig(cfg)
	n.trans = n.netTr
	if n.authTr != nil {
		n.authTr.NetworkTransport = n.netTr
		n.trans = n.authTr
	}
	n.trackProgress()
	return nil
}

// trackProgress wraps the Raft transport so that the leader records each
// follower's match index and last contact (progress.go). A transport
// without pre-vote or close (some test transports) is left as it is.
func (n *Node) trackProgress() {
	if ft, ok := n.trans.(fullTransport); ok {
		n.progress = newProgressTransport(ft)
		n.trans = n.progress
	}
}

// Followers returns, on the leader, every other member of the
// configuration with its match index and last contact as this leader's
// AppendEntries exchanges found them: a member that has not answered in
// this term has MatchIndex 0 and a zero LastContact. Nil on a follower.
func (n *Node) Followers() []FollowerProgress {
	r := n.raft.Load()
	if n.progress == nil || r == nil || r.State() != raft.Leader {
		return nil
	}
	known := n.progress.progress(r.CurrentTerm())
	out := []FollowerProgress{}
	for _, s := range n.serversCopy() {
		id := string(s.ID)
		if id == n.cfg.ID {
			continue
		}
		fp, ok := known[id]
		if !ok {
			fp = FollowerProgress{ID: id}
		}
		out = append(out, fp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LeaderLastContact is when this follower last heard from its leader
// (zero on a leader or before any contact).
func (n *Node) LeaderLastContact() time.Time {
	r := n.raft.Load()
	if r == nil || r.State() == raft.Leader {
		return time.Time{}
	}
	return r.LastContact()
}

// transportConfig is the configuration of the node's NetworkTransports,
// without the stream layer.
func (n *Node) transportConfig() *raft.NetworkTransportConfig {
	return &raft.NetworkTransportConfig{
		MaxPool: 4,
		// No pipelining: replicate with one AppendEntries in flight per
		// follower. In raft v1.8.0 a pipeline deadlocks when a follower
		// answers Success=false (as one whose disk failed does): the decoder
		// exits, the sender can park on the unbuffered in-progress channel
		// while the response reader parks on the done channel, and the
		// pipeline is closed only after the sender returns. The replicator
		// to that follower is then stuck for good (it never catches up after
		// a restart) and the leader's Shutdown hangs. raft's own analysis
		// (hashicorp/raft#541) finds pipelining of little benefit with
		// batching.
		MaxRPCsInFlight: 1,
		Timeout:         10 * time.Second,
		Logger:          newHCLog(n.logger),
	}
}

func (n *Node) inPeers(id string) bool {
	for _, p := range n.cfg.Peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

func (n *Node) setServers(c raft.Configuration) {
	n.serversMu.Lock()
	n.servers = append([]raft.Server(nil), c.Servers...)
	n.serversMu.Unlock()
}

func (n *Node) serversCopy() []raft.Server {
	n.serversMu.Lock()
	defer n.serversMu.Unlock()
	return append([]raft.Server(nil), n.servers...)
}

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.ID }

// RaftAddr returns the address the Raft listener is bound to.
func (n *Node) RaftAddr() string { return n.mux.Addr().String() }

// watchLeadership turns raft's leader observations into LeaderInfo
// notifications, and runs the new-leader barrier.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case o := <-n.obsCh:
			lo := o.Data.(raft.LeaderObservation)
			r := n.raft.Load()
			info := LeaderInfo{ID: string(lo.LeaderID), Addr: string(lo.LeaderAddr), Term: r.CurrentTerm()}
			n.publishLeader(info)
			if info.ID == n.cfg.ID {
				n.wg.Add(1)
				go n.leaderBarrier(r, info.Term)
			}
		}
	}
}

// diskFailed records the commit log's failure and wakes watchDisk. It is
// called with the log's locks held (LogStore.fail, commitlog's OnFail), so
// it only records.
func (n *Node) diskFailed(err error) {
	n.diskErr.CompareAndSwap(nil, &err)
	n.diskOnce.Do(func() { close(n.diskCh) })
}

// DiskError returns the failure of this node's commit log (it wraps
// ErrDiskFailed), nil while the disk is healthy. Once it is set, raft is
// stopped on this node: it neither leads nor votes nor takes entries, and
// the rest of the group goes on without it. Only a restart, which
// re-verifies the log, clears it.
func (n *Node) DiskError() error {
	if p := n.diskErr.Load(); p != nil {
		return *p
	}
	return nil
}

// watchDisk stops raft on this node when its commit log fails.
//
// hashicorp/raft alone does not take a failing node out of the group: a
// leader whose StoreLogs fails only turns follower (dispatchLogs), and its
// log is still as long as anyone's, so it may win the next election and
// fail again; a follower whose StoreLogs fails answers AppendEntries with
// failure but keeps voting and campaigning. Stopping raft here makes the
// node look crashed to its peers, which elect a leader among the healthy
// members within an election timeout, while this process keeps answering
// status (peer protocol, Stats, DiskError) so that operators and /readyz
// see why. Demoting the node through the leader instead (RemoveServer)
// would need a reachable leader and an automatic membership change, and a
// raft instance kept running with its RPCs refused would still campaign.
func (n *Node) watchDisk() {
	defer n.wg.Done()
	select {
	case <-n.stop:
		return
	case <-n.diskCh:
	}
	r := n.raft.Load()
	role, term := roleName(r.State()), r.CurrentTerm()
	n.logger.Error("commit log failed: stopping raft on this node; it will not lead, vote or take entries until restarted",
		"role", role, "term", term, "err", n.DiskError())
	start := time.Now()
	r.Shutdown().Error() // always nil
	n.publishLeader(LeaderInfo{Term: term})
	n.logger.Warn("raft stopped after the disk failure", "took", time.Since(start))
}

// leaderBarrier makes a new leader wait until it has applied everything
// committed before its term, then lets it take proposals and reads.
func (n *Node) leaderBarrier(r *raft.Raft, term uint64) {
	defer n.wg.Done()
	start := time.Now()
	for {
		if r.State() != raft.Leader || r.CurrentTerm() != term || n.closed.Load() {
			return
		}
		err := r.Barrier(5 * time.Second).Error()
		if err == nil {
			if r.CurrentTerm() == term {
				n.readyTerm.Store(term)
				n.logger.Info("leader ready", "term", term, "barrier", time.Since(start))
			}
			return
		}
		if errors.Is(err, raft.ErrRaftShutdown) || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return
		}
		n.logger.Warn("leader barrier failed; retrying", "term", term, "err", err)
		select {
		case <-n.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *Node) publishLeader(info LeaderInfo) {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	n.leader = info
	for ch := range n.watchers {
		select { // keep only the newest value
		case <-ch:
		default:
		}
		ch <- info
	}
}

// WatchLeader returns a channel that receives the current leader at once
// and every change after it (only the newest is kept if the reader lags),
// and a function that stops the notifications.
func (n *Node) WatchLeader() (<-chan LeaderInfo, func()) {
	ch := make(chan LeaderInfo, 1)
	n.watchMu.Lock()
	n.watchers[ch] = struct{}{}
	ch <- n.currentLeader()
	n.watchMu.Unlock()
	return ch, func() {
		n.watchMu.Lock()
		delete(n.watchers, ch)
		n.watchMu.Unlock()
	}
}

func (n *Node) currentLeader() LeaderInfo {
	r := n.raft.Load()
	addr, id := r.LeaderWithID()
	return LeaderInfo{ID: string(id), Addr: string(addr), Term: r.CurrentTerm()}
}

// Leader returns the leader as this node knows it.
func (n *Node) Leader() LeaderInfo { return n.currentLeader() }

// IsLeader reports whether this node is the leader and ready for
// proposals (its barrier for the current term has completed).
func (n *Node) IsLeader() bool {
	r := n.raft.Load()
	return r.State() == raft.Leader && n.readyTerm.Load() == r.CurrentTerm() && n.diskErr.Load() == nil
}

// notLeader is the error for a request this node refuses without starting
// it: NotLeaderError (retry elsewhere), ErrClosed once closed.
func (n *Node) notLeader() error {
	if n.closed.Load() {
		return ErrClosed
	}
	if err := n.DiskError(); err != nil {
		return fmt.Errorf("%w: %w", &NotLeaderError{}, err)
	}
	l := n.currentLeader()
	return &NotLeaderError{LeaderID: l.ID, LeaderAddr: l.Addr}
}

// Propose replicates data as one log entry and returns once it is
// committed by a majority and applied here, with the state machine's
// result. If ctx ends first it returns ErrTimeout: the entry may still
// commit. ErrLeadershipLost likewise means the outcome is unknown.
func (n *Node) Propose(ctx context.Context, data []byte) (Result, error) {
	if len(data) > n.cfg.MaxEntryBytes {
		return Result{}, fmt.Errorf("%w: %d bytes, the maximum is %d", ErrEntryTooLarge, len(data), n.cfg.MaxEntryBytes)
	}
	if !n.IsLeader() {
		return Result{}, n.notLeader()
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return Result{}, ErrTimeout
		}
	}
	f := n.raft.Load().Apply(data, timeout)
	if err := n.wait(ctx, f); err != nil {
		return Result{}, err
	}
	resp := f.Response()
	if err, ok := resp.(error); ok {
		return Result{Index: f.Index()}, err
	}
	return Result{Index: f.Index(), Response: resp}, nil
}

// wait waits for a raft future within ctx and maps raft's errors.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	var err error
	if ctx.Done() == nil {
		err = f.Error()
	} else {
		done := make(chan error, 1)
		go func() { done <- f.Error() }() // ends when raft resolves f, which it does by shutdown at the latest
		select {
		case err = <-done:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		}
	}
	return n.mapErr(err)
}

func (n *Node) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before it was appended: not applied.
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrLeadershipLost, err)
	case errors.Is(err, ErrDiskFailed):
		// The leader's own write of the entry failed. It may be on this
		// node's disk after all and come back with it, so the outcome is
		// unknown, as for any leadership lost in flight.
		return fmt.Errorf("%w: %w", ErrLeadershipLost, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		if n.DiskError() != nil && !n.closed.Load() {
			return n.notLeader() // raft stopped for the disk before taking it
		}
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("replication: %w", err)
}

// ReadBarrier makes a following local read linearizable: it confirms this
// node is still the leader (a round of heartbeats to a majority) and waits
// until everything committed at the time of the call is applied.
func (n *Node) ReadBarrier(ctx context.Context) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	r := n.raft.Load()
	commit := r.CommitIndex()
	if err := n.wait(ctx, r.VerifyLeader()); err != nil {
		return err
	}
	return n.WaitApplied(ctx, commit)
}

// CaughtUp reports whether this node has, since it started, applied
// everything its leader had committed when it first asked (a leader: once
// its leadership barrier completed). Until then its state is a restarted
// node's: what the snapshot held plus whatever it replayed so far, and a
// read could miss topics and messages that exist. Once true it stays true:
// later lag is a follower's ordinary lag (see WaitApplied and position
// tokens).
func (n *Node) CaughtUp() bool {
	if n.caughtUp.Load() {
		return true
	}
	if r := n.raft.Load(); r != nil && n.leaderReady(r) {
		n.setCaughtUp()
		return true
	}
	return false
}

// leaderReady reports whether r leads and has applied the barrier of its
// term: everything it inherited is applied.
func (n *Node) leaderReady(r *raft.Raft) bool {
	return r.State() == raft.Leader && n.readyTerm.Load() == r.CurrentTerm()
}

// CaughtUpCh is closed once CaughtUp is true.
func (n *Node) CaughtUpCh() <-chan struct{} { return n.caughtUpCh }

func (n *Node) setCaughtUp() {
	if n.caughtUp.CompareAndSwap(false, true) {
		close(n.caughtUpCh)
	}
}

// watchCaughtUp sets caughtUp (see CaughtUp): a follower asks its leader
// for its commit index over the peer protocol (raft's heartbeats do not
// carry it) and waits until it has applied that far.
func (n *Node) watchCaughtUp() {
	defer n.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var target uint64 // the leader's commit index, once asked
	for !n.CaughtUp() {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if r := n.raft.Load(); r.State() == raft.Follower {
			if target == 0 {
				target = n.leaderCommit(r)
				continue
			}
			if applied := n.fsm.applied.Load(); applied >= target || n.onlyInternalBetween(applied, target) {
				n.setCaughtUp()
			}
		}
	}
	n.logger.Info("caught up since start", "applied", n.fsm.applied.Load(), "leader_commit", target)
}

// CatchUpToLeader waits until this node has applied everything its leader
// had committed when asked (one peer-protocol round trip), so that what a
// client just wrote through the leader is visible here. A leader returns
// once it has applied what it inherited (CaughtUp): it applies a write
// before it answers it.
func (n *Node) CatchUpToLeader(ctx context.Context) error {
	r := n.raft.Load()
	if r == nil {
		return ErrClosed
	}
	if r.State() == raft.Leader {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for !n.leaderReady(r) {
			select {
			case <-t.C:
			case <-ctx.Done():
				return fmt.Errorf("%w: the new leader is still applying its log: %w", ErrTimeout, ctx.Err())
			case <-n.stop:
				return ErrClosed
			}
		}
		return nil
	}
	target := n.leaderCommit(r)
	if target == 0 {
		return fmt.Errorf("%w: no leader answered with its commit index", ErrTimeout)
	}
	return n.WaitApplied(ctx, target)
}

// leaderCommit asks the known leader for its commit index; 0 when there is
// no leader or it does not answer within a second.
func (n *Node) leaderCommit(r *raft.Raft) uint64 {
	addr, id := r.LeaderWithID()
	if id == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pc, err := dialPeerConn(ctx, n.mux, n.cfg.PeerAddr(id, addr), n.cfg.Log.MaxEntrySize)
	if err != nil {
		return 0
	}
	defer pc.Close()
	defer context.AfterFunc(ctx, func() { pc.Close() })()
	st, err := pc.status()
	if err != nil || st.Role != "leader" {
		return 0
	}
	return max(st.CommitIndex, 1)
}

// WaitApplied waits until the state machine has applied index. Raft hands
// the state machine only command and configuration entries; no-op and
// barrier entries count as applied once everything before them is.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		applied, ch := n.fsm.appliedCh()
		if applied >= index || n.onlyInternalBetween(applied, index) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for index %d to apply (applied %d): %w", ErrTimeout, index, applied, ctx.Err())
		case <-n.stop:
			return ErrClosed
		}
	}
}

// onlyInternalBetween reports whether every entry in (applied, index] is
// one raft does not pass to the state machine.
func (n *Node) onlyInternalBetween(applied, index uint64) bool {
	if index-applied > 64 {
		return false // not worth reading; wait for the state machine
	}
	for i := index; i > applied; i-- {
		e, err := n.log.Read(i)
		if err != nil {
			return false
		}
		switch raft.LogType(e.Type) {
		case raft.LogCommand, raft.LogConfiguration:
			return false
		}
	}
	return true
}

// AppliedIndex returns the index of the last entry the state machine
// applied.
func (n *Node) AppliedIndex() uint64 { return n.fsm.applied.Load() }

// TransferLeadership hands leadership to the node named to, or to the
// most up-to-date follower if to is empty.
func (n *Node) TransferLeadership(ctx context.Context, to string) error {
	r := n.raft.Load()
	if r.State() != raft.Leader {
		return n.notLeader()
	}
	if to == "" {
		return n.wait(ctx, r.LeadershipTransfer())
	}
	for _, s := range n.serversCopy() {
		if string(s.ID) == to {
			return n.wait(ctx, r.LeadershipTransferToServer(s.ID, s.Address))
		}
	}
	return fmt.Errorf("%w: %s", ErrUnknownPeer, to)
}

// AddVoter adds a node to the group (or updates its address).
func (n *Node) AddVoter(ctx context.Context, id, raftAddr string) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	return n.wait(ctx, n.raft.Load().AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, 0))
}

// RemoveServer removes a node from the group.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	return n.wait(ctx, n.raft.Load().RemoveServer(raft.ServerID(id), 0, 0))
}

// Snapshot takes a state snapshot now.
func (n *Node) Snapshot(ctx context.Context) error {
	return n.wait(ctx, n.raft.Load().Snapshot())
}

// LastSnapshotIndex returns the index of the newest snapshot, 0 if none.
func (n *Node) LastSnapshotIndex() uint64 { return n.snaps.last.Load() }

// ApplyRetention deletes whole segments the commit log's retention policy
// allows, but never the newest snapshot's own entry or anything after it:
// a follower that needs deleted entries must be able to get a snapshot that
// covers them, and a restart must find the snapshot's entry in the log
// (restore.go). It returns the number of segments deleted.
func (n *Node) ApplyRetention(now time.Time) (int, error) {
	want := n.log.RetentionIndex(now)
	snap := n.snaps.last.Load()
	if want > snap+1 {
		// Retention may delete only what a snapshot covers, and raft
		// snapshots by entry count: with large entries, hundreds of MB
		// arrive between snapshots. A snapshot holds only state (the
		// queue indexes follow retention), so take one now.
		if r := n.raft.Load(); r != nil {
			if err := r.Snapshot().Error(); err == nil {
				snap = n.snaps.last.Load()
			}
		}
	}
	if snap == 0 {
		return 0, nil
	}
	cut := min(want, snap)
	deleted, err := n.log.DeleteBefore(cut)
	if deleted > 0 {
		n.logger.Info("retention deleted segments", "segments", deleted, "first_index", n.log.FirstIndex())
	}
	return deleted, err
}

func (n *Node) retentionLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			if n.DiskError() != nil {
				continue
			}
			if _, err := n.ApplyRetention(now); err != nil {
				n.logger.Error("retention failed", "err", err)
			}
		}
	}
}

// Close leaves gracefully: a leader first hands leadership to a follower
// (bounded by a few election timeouts), then raft stops and every file is
// synced and closed.
func (n *Node) Close() error {
	r := n.raft.Load()
	if r != nil && r.State() == raft.Leader && len(n.serversCopy()) > 1 {
		ctx, cancel := context.WithTimeout(context.Background(), 4*n.cfg.ElectionTimeout+time.Second)
		if err := n.wait(ctx, r.LeadershipTransfer()); err != nil {
			n.logger.Warn("leadership transfer on shutdown failed", "err", err)
		}
		cancel()
	}
	return n.Stop()
}

// Stop stops the node at once, without handing leadership over: to the
// rest of the group it looks like a crash (files are still closed cleanly).
// Benchmarks and tests use it to kill a leader.
func (n *Node) Stop() error {
	if !n.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	// Stop first: a snapshot restore waiting for peers (restore.go) watches
	// n.stop, and raft's shutdown waits for it.
	close(n.stop)
	var err error
	if r := n.raft.Load(); r != nil {
		err = r.Shutdown().Error()
		r.DeregisterObserver(n.observer)
	}
	n.wg.Wait()
	return errors.Join(err, n.closeResources())
}

// abort undoes a failed Open: raft (if started) and the node's goroutines
// stop, then every resource closes.
func (n *Node) abort() {
	n.closed.Store(true)
	close(n.stop)
	if r := n.raft.Load(); r != nil {
		r.Shutdown().Error()
	}
	n.wg.Wait()
	n.closeResources()
}

func (n *Node) closeResources() error {
	var errs []error
	if n.netTr != nil {
		errs = append(errs, n.netTr.Close())
	}
	if n.authTr != nil {
		errs = append(errs, n.authTr.Close())
	}
	if n.mux != nil {
		errs = append(errs, n.mux.Close())
	}
	if n.stable != nil {
		errs = append(errs, n.stable.Close())
	}
	if n.log != nil {
		if err := n.log.Close(); err != nil && !errors.Is(err, commitlog.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
