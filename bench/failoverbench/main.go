// Command failoverbench measures how long a LedgerMQ replication group
// stops acknowledging proposals when its leader crashes, and checks that
// no acknowledged proposal is lost or duplicated across the crashes.
//
// It starts three replication.Node members with replication.Open, each
// with its own data directory and a Raft listener on a 127.0.0.1 port
// reserved up front, with replication.DefaultConfig() (heartbeat and
// election timeouts 300ms, leader lease 150ms) and a trivial state machine
// that counts commands.
//
// -proposers goroutines keep a steady load of -size byte proposals: each
// one, in a closed loop, looks for the node whose IsLeader() is true and
// calls Propose on it (with a -propose-timeout deadline); when no node is
// leader it polls again after a millisecond. Every proposal carries a
// unique id; a proposal is acknowledged when Propose returns nil, and the
// time and node of every acknowledgement are recorded. Failed proposals are
// not retried (their outcome may be unknown), the proposer moves on to a
// new id.
//
// Then, -kills times:
//
//  1. -load-min to -load-max (uniformly drawn) of load on a healthy group;
//  2. the leader is killed: Stop(), which shuts raft down without handing
//     leadership over, so to the others it is a crash. The kill time is
//     taken just before Stop is called;
//  3. measured from the kill time: "ready", when another node first
//     reports IsLeader() (elected and past its barrier; polled every
//     millisecond); "outage", when the first proposal sent to another node
//     is acknowledged; and "max gap", the longest interval between two
//     consecutive acknowledgements (from any node) from 1 s before the
//     kill to that first acknowledgement;
//  4. after 1 s more of load on the remaining two nodes, the killed node is
//     reopened with replication.Open on the same directory, address and
//     config; "catch-up" is the time until it has applied what the leader
//     had applied when it was reopened. "later gap" is the longest interval
//     between acknowledgements from the first one after the kill until the
//     catch-up: a second stall while the group runs on two nodes and takes
//     the killed one back shows there.
//
// Over the whole run, the acknowledgements in time order also give the
// leader changes (consecutive acknowledgements from different nodes):
// those beyond one per kill are unplanned elections, and the longest gap
// outside the kills' failover windows is reported too.
//
// At the end the load stops, the leader runs a read barrier, every node
// waits until it has applied the leader's last index, and each node's
// whole log (Node.Log().ReadRange) is scanned: every acknowledged id must
// be there exactly once (lost=0, duplicates=0), and every replica must hold
// the same commands as the leader. Ids in the log that were never
// acknowledged are proposals whose outcome was unknown to the client (in
// flight at a kill) and are reported, not counted as errors.
//
// Target: p99 outage under 1 s with the default timings.
//
// Usage:
//
//	go run ./bench/failoverbench [-kills 20] [-proposers 16] [-size 1024]
//		[-load-min 2s] [-load-max 3s] [-propose-timeout 2s] [-seed 1]
//		[-log FILE] [-json FILE] [-dir DIR]
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"


	"github.com/ledgermq/ledgermq/replication"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "failoverbench:", err)
		os.Exit(1)
	}
}

type config struct {
	kills          int
	proposers      int
	size           int
	loadMin        time.Duration
	loadMax        time.Duration
	proposeTimeout time.Duration
	recoverTimeout time.Duration
	seed           uint64
	logFile        string
	jsonOut        string
	dir            string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("failoverbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.kills, "kills", 20, "leader kills")
	fs.IntVar(&c.proposers, "proposers", 16, "concurrent proposers")
	fs.IntVar(&c.size, "size", 1024, "payload bytes per proposal (at least 16)")
	fs.DurationVar(&c.loadMin, "load-min", 2*time.Second, "least load on a healthy group before each kill")
	fs.DurationVar(&c.loadMax, "load-max", 3*time.Second, "most load on a healthy group before each kill")
	fs.DurationVar(&c.proposeTimeout, "propose-timeout", 2*time.Second, "deadline of one Propose call")
	fs.DurationVar(&c.recoverTimeout, "recover-timeout", 60*time.Second, "give up if a new leader or a catch-up takes longer than this")
	fs.Uint64Var(&c.seed, "seed", 1, "seed for the load durations")
	fs.StringVar(&c.logFile, "log", "", "write the nodes' logs (info and above, raft's included) to this file (default: discard)")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&c.dir, "dir", "", "parent of the temporary data directory (default: os.TempDir())")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.kills < 0 || c.proposers < 1:
		return c, errors.New("-kills must be non-negative and -proposers positive")
	case c.size < payloadHeader:
		return c, fmt.Errorf("-size must be at least %d", payloadHeader)
	case c.loadMin <= 0 || c.loadMax < c.loadMin:
		return c, errors.New("want 0 < -load-min <= -load-max")
	case c.proposeTimeout <= 0 || c.recoverTimeout <= 0:
		return c, errors.New("-propose-timeout and -recover-timeout must be positive")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	nodeLog := io.Discard
	if cfg.logFile != "" {
		f, err := os.Create(cfg.logFile)
		if err != nil {
			return err
		}
		defer f.Close()
		nodeLog = f
	}
	logger := slog.New(slog.NewTextHandler(nodeLog, &slog.HandlerOptions{Level: slog.LevelInfo}))
	parent := cfg.dir
	if parent == "" {
		parent = os.TempDir()
	}
	root, err := os.MkdirTemp(parent, "failoverbench-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(root)) }()

	d := replication.DefaultConfig()
	fmt.Fprintf(stdout, "failoverbench: 3 replication.Node members on 127.0.0.1, default config (heartbeat %s, election %s, lease %s), %d proposers x %d B, %d kills, GOMAXPROCS=%d, %s\n",
		d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout, cfg.proposers, cfg.size, cfg.kills, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(stdout, "data under %s\n\n", root)

	c, err := startCluster(root, logger)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.close()) }()
	if _, _, err := c.waitLeader(ctx, -1, cfg.recoverTimeout); err != nil {
		return err
	}

	l := newLoad(c, cfg)
	l.start()
	loadStart := time.Now()
	rng := rand.New(rand.NewPCG(cfg.seed, 0))
	var kills []killResult
	for k := range cfg.kills {
		wait := cfg.loadMin + time.Duration(rng.Int64N(int64(cfg.loadMax-cfg.loadMin)+1))
		if err := sleepCtx(ctx, wait); err != nil {
			l.stop()
			return err
		}
		kr, err := killLeader(ctx, c, l.acks, cfg)
		if err != nil {
			l.stop()
			return fmt.Errorf("kill %d: %w", k+1, err)
		}
		kr.N = k + 1
		kills = append(kills, kr)
		fmt.Fprintf(stderr, "kill %2d: %s killed, %s ready after %.0f ms, first ack after %.0f ms, max gap %.0f ms, caught up in %.0f ms, later gap %.0f ms\n",
			kr.N, kr.Killed, kr.NewLeader, kr.ReadyMs, kr.OutageMs, kr.MaxGapMs, kr.CatchUpMs, kr.LaterGapMs)
	}
	if len(kills) == 0 { // still measure something: a few seconds of load
		if err := sleepCtx(ctx, cfg.loadMax); err != nil {
			l.stop()
			return err
		}
	}
	l.stop()
	loadTime := time.Since(loadStart)

	v, err := verify(ctx, c, l, cfg.recoverTimeout)
	if err != nil {
		return err
	}
	res := summarize(cfg, kills, l, v, loadTime)
	report(stdout, res)
	if cfg.jsonOut != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// --- state machine -------------------------------------------------------

// countingSM is the trivial state machine: it counts commands.
type countingSM struct{ commands atomic.Uint64 }

func (s *countingSM) Apply(cmds []replication.Command) []any {
	s.commands.Add(uint64(len(cmds)))
	return make([]any, len(cmds))
}

func (s *countingSM) Snapshot() (replication.Snapshot, error) {
	return countSnapshot(s.commands.Load()), nil
}

func (s *countingSM) Restore(r io.Reader, _ replication.RestoreInfo) error {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	s.commands.Store(binary.LittleEndian.Uint64(b[:]))
	return nil
}

type countSnapshot uint64

func (s countSnapshot) Persist(w io.Writer) error {
	_, err := w.Write(binary.LittleEndian.AppendUint64(nil, uint64(s)))
	return err
}

func (countSnapshot) Release() {}

// --- cluster -------------------------------------------------------------

// cluster is the three members. A slot is nil while its node is down.
type cluster struct {
	cfgs []replication.Config

	mu    sync.RWMutex
	nodes []*replication.Node
}

// reservePorts picks n free loopback ports by listening on port 0, and
// releases them for the nodes to bind.
func reservePorts(n int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

func startCluster(root string, logger *slog.Logger) (*cluster, error) {
	const size = 3
	addrs, err := reservePorts(size)
	if err != nil {
		return nil, err
	}
	var peers []replication.Peer
	for i, a := range addrs {
		peers = append(peers, replication.Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: a})
	}
	c := &cluster{nodes: make([]*replication.Node, size)}
	for i, p := range peers {
		cfg := replication.DefaultConfig()
		cfg.ID = p.ID
		cfg.Dir = filepath.Join(root, p.ID)
		cfg.RaftAddr = p.RaftAddr
		cfg.Peers = peers
		cfg.Logger = logger
		c.cfgs = append(c.cfgs, cfg)
		if err := c.open(i); err != nil {
			return nil, errors.Join(err, c.close())
		}
	}
	return c, nil
}

// open starts node i from its directory and puts it in its slot.
func (c *cluster) open(i int) error {
	n, err := replication.Open(c.cfgs[i], &countingSM{})
	if err != nil {
		return fmt.Errorf("open %s: %w", c.cfgs[i].ID, err)
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
	return nil
}

// take empties slot i and returns its node.
func (c *cluster) take(i int) *replication.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	c.nodes[i] = nil
	return n
}

// leader returns the node that is leader and ready for proposals, or -1.
func (c *cluster) leader() (int, *replication.Node) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, n := range c.nodes {
		if n != nil && n.IsLeader() {
			return i, n
		}
	}
	return -1, nil
}

// waitLeader polls every millisecond for a ready leader other than
// exclude.
func (c *cluster) waitLeader(ctx context.Context, exclude int, timeout time.Duration) (int, *replication.Node, error) {
	deadline := time.Now().Add(timeout)
	for {
		if i, n := c.leader(); n != nil && i != exclude {
			return i, n, nil
		}
		if time.Now().After(deadline) {
			return -1, nil, fmt.Errorf("no leader within %s", timeout)
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return -1, nil, err
		}
	}
}

func (c *cluster) close() error {
	var errs []error
	for i := range c.nodes {
		if n := c.take(i); n != nil {
			if err := n.Close(); err != nil && !errors.Is(err, replication.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// --- load ----------------------------------------------------------------

// payloadHeader is the start of every proposal: a magic and the id.
const payloadHeader = 16

var payloadMagic = [8]byte{'F', 'O', 'B', 'E', 'N', 'C', 'H', 1}

// newPayload returns a fresh size-byte proposal carrying id. Each proposal
// gets its own buffer: raft may still hold it after a failed Propose.
func newPayload(id uint64, size int) []byte {
	p := make([]byte, size)
	copy(p, payloadMagic[:])
	binary.LittleEndian.PutUint64(p[8:], id)
	for i := payloadHeader; i < size; i++ {
		p[i] = byte(i)
	}
	return p
}

// payloadID returns the id of a proposal made by this program.
func payloadID(data []byte) (uint64, bool) {
	if len(data) < payloadHeader || !bytes.Equal(data[:8], payloadMagic[:]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(data[8:]), true
}

// ack is one acknowledged proposal.
type ack struct {
	at   time.Time
	node int
	id   uint64
}

// ackLog records acknowledgements in the order they are added (the order
// of their timestamps up to scheduling noise; readers sort).
type ackLog struct {
	mu   sync.Mutex
	acks []ack
	wake chan struct{} // closed and replaced on every add
}

func newAckLog() *ackLog { return &ackLog{wake: make(chan struct{})} }

func (a *ackLog) add(x ack) {
	a.mu.Lock()
	a.acks = append(a.acks, x)
	close(a.wake)
	a.wake = make(chan struct{})
	a.mu.Unlock()
}

// between returns the acks with from <= at <= to, sorted by time.
func (a *ackLog) between(from, to time.Time) []ack {
	a.mu.Lock()
	var out []ack
	for i := len(a.acks) - 1; i >= 0; i-- {
		x := a.acks[i]
		if x.at.Before(from.Add(-time.Second)) {
			break // appended roughly in time order; a second of slack
		}
		if !x.at.Before(from) && !x.at.After(to) {
			out = append(out, x)
		}
	}
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y ack) int { return x.at.Compare(y.at) })
	return out
}

// sorted returns every ack, sorted by time.
func (a *ackLog) sorted() []ack {
	a.mu.Lock()
	out := slices.Clone(a.acks)
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y ack) int { return x.at.Compare(y.at) })
	return out
}

// ids returns the set of acknowledged ids.
func (a *ackLog) ids() map[uint64]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[uint64]bool, len(a.acks))
	for _, x := range a.acks {
		out[x.id] = true
	}
	return out
}

// firstAfter waits for the first ack at or after t from a node other than
// exclude.
func (a *ackLog) firstAfter(ctx context.Context, t time.Time, exclude int, timeout time.Duration) (ack, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		a.mu.Lock()
		for ; seen < len(a.acks); seen++ {
			if x := a.acks[seen]; x.node != exclude && !x.at.Before(t) {
				a.mu.Unlock()
				return x, nil
			}
		}
		wake := a.wake
		a.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			return ack{}, fmt.Errorf("no acknowledgement from a new leader within %s", timeout)
		case <-ctx.Done():
			return ack{}, ctx.Err()
		}
	}
}

// errCounts counts failed proposals by kind.
type errCounts struct {
	NotLeader, LeadershipLost, Timeout, Closed, Other atomic.Int64
}

func (e *errCounts) count(err error) {
	switch {
	case errors.Is(err, replication.ErrNotLeader):
		e.NotLeader.Add(1)
	case errors.Is(err, replication.ErrLeadershipLost):
		e.LeadershipLost.Add(1)
	case errors.Is(err, replication.ErrTimeout):
		e.Timeout.Add(1)
	case errors.Is(err, replication.ErrClosed):
		e.Closed.Add(1)
	default:
		e.Other.Add(1)
	}
}

// load is the set of proposers.
type load struct {
	c    *cluster
	cfg  config
	acks *ackLog
	errs errCounts
	sent atomic.Int64

	done chan struct{}
	wg   sync.WaitGroup
}

func newLoad(c *cluster, cfg config) *load {
	return &load{c: c, cfg: cfg, acks: newAckLog(), done: make(chan struct{})}
}

func (l *load) start() {
	for p := range l.cfg.proposers {
		l.wg.Add(1)
		go l.propose(uint64(p))
	}
}

// stop ends the load and waits for the proposals in flight.
func (l *load) stop() {
	close(l.done)
	l.wg.Wait()
}

func (l *load) propose(p uint64) {
	defer l.wg.Done()
	for seq := uint64(0); ; {
		select {
		case <-l.done:
			return
		default:
		}
		i, n := l.c.leader()
		if n == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		id := p<<40 | seq
		seq++
		data := newPayload(id, l.cfg.size)
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.proposeTimeout)
		l.sent.Add(1)
		_, err := n.Propose(ctx, data)
		cancel()
		if err != nil {
			l.errs.count(err)
			continue
		}
		l.acks.add(ack{at: time.Now(), node: i, id: id})
	}
}

// --- kills ---------------------------------------------------------------

// killResult is one kill's figures, in milliseconds from the kill.
type killResult struct {
	N         int     `json:"n"`
	Killed    string  `json:"killed"`
	NewLeader string  `json:"new_leader"`
	StopMs    float64 `json:"stop_ms"`     // how long Stop() took
	ReadyMs   float64 `json:"ready_ms"`    // another node reports IsLeader()
	OutageMs  float64 `json:"outage_ms"`   // first acknowledgement from another node
	MaxGapMs  float64 `json:"max_gap_ms"`  // longest interval between acknowledgements, 1 s before the kill to the first new one
	ReopenMs  float64 `json:"reopen_ms"`   // replication.Open of the killed node
	CatchUpMs float64 `json:"catch_up_ms"` // from reopening until it applied the leader's applied index
	// LaterGapMs: longest interval between acknowledgements from the first
	// new one until the catch-up.
	LaterGapMs float64 `json:"later_gap_ms"`

	killAt, firstAck time.Time
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// killLeader kills the current leader and measures the failover; then
// reopens the killed node and waits for it to catch up.
func killLeader(ctx context.Context, c *cluster, acks *ackLog, cfg config) (killResult, error) {
	var kr killResult
	li, _, err := c.waitLeader(ctx, -1, cfg.recoverTimeout)
	if err != nil {
		return kr, err
	}
	kr.Killed = c.cfgs[li].ID

	killAt := time.Now()
	victim := c.take(li) // proposers stop choosing it; proposals in flight fail with ErrClosed
	if err := victim.Stop(); err != nil {
		return kr, fmt.Errorf("stop %s: %w", kr.Killed, err)
	}
	kr.StopMs = ms(time.Since(killAt))

	ni, _, err := c.waitLeader(ctx, li, cfg.recoverTimeout)
	if err != nil {
		return kr, err
	}
	kr.ReadyMs = ms(time.Since(killAt))
	kr.NewLeader = c.cfgs[ni].ID

	first, err := acks.firstAfter(ctx, killAt, li, cfg.recoverTimeout)
	if err != nil {
		return kr, err
	}
	kr.OutageMs = ms(first.at.Sub(killAt))

	kr.killAt, kr.firstAck = killAt, first.at
	kr.MaxGapMs = ms(maxGap(acks.between(killAt.Add(-time.Second), first.at)))

	// The group runs on two nodes for a second (a restart takes at least
	// that long), then the killed node is reopened; wait until it has
	// applied what the leader had applied at that time.
	if err := sleepCtx(ctx, time.Until(first.at.Add(time.Second))); err != nil {
		return kr, err
	}
	_, leader, err := c.waitLeader(ctx, li, cfg.recoverTimeout)
	if err != nil {
		return kr, err
	}
	target := leader.AppliedIndex()
	t0 := time.Now()
	if err := c.open(li); err != nil {
		return kr, err
	}
	kr.ReopenMs = ms(time.Since(t0))
	c.mu.RLock()
	reopened := c.nodes[li]
	c.mu.RUnlock()
	wctx, cancel := context.WithTimeout(ctx, cfg.recoverTimeout)
	defer cancel()
	if err := reopened.WaitApplied(wctx, target); err != nil {
		return kr, fmt.Errorf("%s catching up: %w", kr.Killed, err)
	}
	kr.CatchUpMs = ms(time.Since(t0))
	kr.LaterGapMs = ms(maxGap(acks.between(first.at, time.Now())))
	return kr, nil
}

// maxGap returns the longest interval between consecutive acks (sorted by
// time).
func maxGap(acks []ack) time.Duration {
	var g time.Duration
	for i := 1; i < len(acks); i++ {
		g = max(g, acks[i].at.Sub(acks[i-1].at))
	}
	return g
}

// --- verification --------------------------------------------------------

// nodeCheck is what one node's log holds of the acknowledged proposals.
type nodeCheck struct {
	Node       string `json:"node"`
	Leader     bool   `json:"leader"`
	FirstIndex uint64 `json:"first_index"`
	LastIndex  uint64 `json:"last_index"`
	Commands   int    `json:"commands"`   // entries carrying a proposal of this program
	Lost       int    `json:"lost"`       // acknowledged ids missing
	Duplicates int    `json:"duplicates"` // ids present more than once
	Unacked    int    `json:"unacked"`    // ids present but never acknowledged (outcome was unknown)
	SameAsLdr  bool   `json:"same_as_leader"`
}

type verification struct {
	Acked int         `json:"acked"`
	Nodes []nodeCheck `json:"nodes"` // the final leader first
}

// verify scans every node's log for the acknowledged ids.
func verify(ctx context.Context, c *cluster, l *load, timeout time.Duration) (verification, error) {
	acked := l.acks.ids()
	v := verification{Acked: len(acked)}
	li, leader, err := c.waitLeader(ctx, -1, timeout)
	if err != nil {
		return v, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := leader.ReadBarrier(wctx); err != nil {
		return v, fmt.Errorf("read barrier: %w", err)
	}
	last := leader.LogStats().LastIndex

	order := []int{li}
	for i := range c.nodes {
		if i != li {
			order = append(order, i)
		}
	}
	var leaderIDs []uint64
	for _, i := range order {
		c.mu.RLock()
		n := c.nodes[i]
		c.mu.RUnlock()
		if err := n.WaitApplied(wctx, last); err != nil {
			return v, fmt.Errorf("%s catching up to %d: %w", c.cfgs[i].ID, last, err)
		}
		ids, err := scanLog(n)
		if err != nil {
			return v, fmt.Errorf("scan %s: %w", c.cfgs[i].ID, err)
		}
		nc := nodeCheck{Node: c.cfgs[i].ID, Leader: i == li, FirstIndex: n.LogStats().FirstIndex, LastIndex: n.LogStats().LastIndex, Commands: len(ids)}
		count := make(map[uint64]int, len(ids))
		for _, id := range ids {
			count[id]++
		}
		for id, k := range count {
			if k > 1 {
				nc.Duplicates++
			}
			if !acked[id] {
				nc.Unacked++
			}
		}
		for id := range acked {
			if count[id] == 0 {
				nc.Lost++
			}
		}
		if i == li {
			leaderIDs = ids
		}
		// A follower may hold a little more than the leader scanned (the
		// load has stopped, so only internal entries), so compare the
		// commands up to the leader's.
		nc.SameAsLdr = len(ids) >= len(leaderIDs) && slices.Equal(ids[:len(leaderIDs)], leaderIDs)
		v.Nodes = append(v.Nodes, nc)
	}
	return v, nil
}

// scanLog returns the ids of this program's proposals in n's log, in log
// order.
func scanLog(n *replication.Node) ([]uint64, error) {
	var ids []uint64
	for next, last := n.FirstIndex(), n.LogStats().LastIndex; next <= last; {
		entries, err := n.ReadEntries(next, 4<<20)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.Command {
				continue
			}
			if id, ok := payloadID(e.Data); ok {
				ids = append(ids, id)
			}
		}
		next = entries[len(entries)-1].Index + 1
	}
	return ids, nil
}

// --- report --------------------------------------------------------------

type stat struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// percentiles uses the nearest-rank method: with 20 kills p99 is the
// largest value.
func percentiles(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(float64(len(s))*p/100+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return stat{P50: rank(50), P99: rank(99), Max: s[len(s)-1]}
}

type summary struct {
	Kills    []killResult `json:"kills"`
	Ready    stat         `json:"ready"`
	Outage   stat         `json:"outage"`
	MaxGap   stat         `json:"max_gap"`
	CatchUp  stat         `json:"catch_up"`
	LaterGap stat         `json:"later_gap"`
	// LeaderChanges counts consecutive acknowledgements (in time order)
	// from different nodes; Unplanned is those beyond one per kill.
	LeaderChanges int `json:"leader_changes"`
	Unplanned     int `json:"unplanned_leader_changes"`
	// OtherMaxGapMs is the longest interval between acknowledgements that
	// does not overlap a kill's failover (kill to first new ack).
	OtherMaxGapMs float64          `json:"other_max_gap_ms"`
	Sent          int64            `json:"proposals_sent"`
	Acked         int              `json:"proposals_acked"`
	AckedPerSec   float64          `json:"acked_per_sec"`
	Errors        map[string]int64 `json:"errors"`
	Verification  verification     `json:"verification"`
	OutageMet     bool             `json:"outage_target_met"`
	SafetyMet     bool             `json:"safety_met"`
}

func summarize(cfg config, kills []killResult, l *load, v verification, loadTime time.Duration) summary {
	col := func(f func(killResult) float64) []float64 {
		var out []float64
		for _, k := range kills {
			out = append(out, f(k))
		}
		return out
	}
	s := summary{
		Kills:       kills,
		Ready:       percentiles(col(func(k killResult) float64 { return k.ReadyMs })),
		Outage:      percentiles(col(func(k killResult) float64 { return k.OutageMs })),
		MaxGap:      percentiles(col(func(k killResult) float64 { return k.MaxGapMs })),
		CatchUp:     percentiles(col(func(k killResult) float64 { return k.CatchUpMs })),
		LaterGap:    percentiles(col(func(k killResult) float64 { return k.LaterGapMs })),
		Sent:        l.sent.Load(),
		Acked:       v.Acked,
		AckedPerSec: float64(v.Acked) / loadTime.Seconds(),
		Errors: map[string]int64{
			"not_leader": l.errs.NotLeader.Load(), "leadership_lost": l.errs.LeadershipLost.Load(),
			"timeout": l.errs.Timeout.Load(), "closed": l.errs.Closed.Load(), "other": l.errs.Other.Load(),
		},
		Verification: v,
	}
	all := l.acks.sorted()
	for i := 1; i < len(all); i++ {
		if all[i].node != all[i-1].node {
			s.LeaderChanges++
		}
		from, to := all[i-1].at, all[i].at
		if !slices.ContainsFunc(kills, func(k killResult) bool { return from.Before(k.firstAck) && to.After(k.killAt) }) {
			s.OtherMaxGapMs = max(s.OtherMaxGapMs, ms(to.Sub(from)))
		}
	}
	s.Unplanned = max(s.LeaderChanges-len(kills), 0)
	s.OutageMet = len(kills) > 0 && s.Outage.P99 < 1000
	s.SafetyMet = len(v.Nodes) > 0
	for _, n := range v.Nodes {
		s.SafetyMet = s.SafetyMet && n.Lost == 0 && n.Duplicates == 0 && n.SameAsLdr
	}
	return s
}

func report(w io.Writer, s summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kill\tkilled\tnew leader\tstop ms\tready ms\toutage ms\tmax gap ms\treopen ms\tcatch-up ms\tlater gap ms\t")
	for _, k := range s.Kills {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n",
			k.N, k.Killed, k.NewLeader, k.StopMs, k.ReadyMs, k.OutageMs, k.MaxGapMs, k.ReopenMs, k.CatchUpMs, k.LaterGapMs)
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ms from the kill\tp50\tp99\tmax\t")
	for _, r := range []struct {
		name string
		s    stat
	}{{"ready (new leader)", s.Ready}, {"outage (first ack)", s.Outage}, {"max ack gap", s.MaxGap}, {"catch-up (reopen)", s.CatchUp}, {"later ack gap", s.LaterGap}} {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t\n", r.name, r.s.P50, r.s.P99, r.s.Max)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nleader changes seen by the proposers: %d (%d kills, %d unplanned); longest ack gap outside the failovers: %.1f ms\n",
		s.LeaderChanges, len(s.Kills), s.Unplanned, s.OtherMaxGapMs)
	fmt.Fprintf(w, "proposals: %d sent, %d acknowledged (%.0f/s over the whole run); failed: not-leader %d, leadership-lost %d, timeout %d, closed %d, other %d\n",
		s.Sent, s.Acked, s.AckedPerSec, s.Errors["not_leader"], s.Errors["leadership_lost"], s.Errors["timeout"], s.Errors["closed"], s.Errors["other"])
	for _, n := range s.Verification.Nodes {
		role := "follower"
		if n.Leader {
			role = "final leader"
		}
		fmt.Fprintf(w, "%s (%s): log [%d, %d], %d commands: lost=%d duplicates=%d unacknowledged-but-committed=%d same-as-leader=%v\n",
			n.Node, role, n.FirstIndex, n.LastIndex, n.Commands, n.Lost, n.Duplicates, n.Unacked, n.SameAsLdr)
	}
	fmt.Fprintf(w, "\ntarget p99 outage < 1000 ms: %.1f ms: %s\n", s.Outage.P99, met(s.OutageMet))
	fmt.Fprintf(w, "every acknowledged proposal exactly once on every node: %s\n", met(s.SafetyMet))
}

func met(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}
