// Command raftbench compares Raft log stores under the same hashicorp/raft
// cluster: LedgerMQ's replication.LogStore over a commitlog.Log ("ours"),
// github.com/hashicorp/raft-wal ("wal") and github.com/hashicorp/raft-boltdb/v2
// ("bolt"), each with its default, durable policy: every StoreLogs is on
// stable storage before it returns (commitlog's SyncEveryAppend, raft-wal's
// fsync per append, bbolt's fsync per transaction with NoSync=false).
//
// Each case (one store, one payload size) starts a fresh group of three
// hashicorp/raft nodes in this process, each with its own data directory,
// talking over loopback TCP through raft.NetworkTransport on
// replication.Mux (the stream layer replication.Node uses). Everything but
// the LogStore is the same for all stores: raft.Config with the timings of
// replication.DefaultConfig() (heartbeat and election 300ms, leader lease
// 150ms, CommitTimeout 10ms, MaxAppendEntries 512, BatchApplyCh), a log that
// is never compacted and snapshots that never trigger, raft-boltdb as the
// StableStore, raft.FileSnapshotStore, and an FSM that counts bytes.
//
// After the group has a leader, -proposers goroutines call
// raft.Apply(payload).Error() on the leader in a closed loop: -warmup of
// load that is not measured, then -duration that is. A proposal counts if
// its Error() returned nil inside the measured window; its latency is the
// time from Apply to Error() returning (committed by a majority and applied
// on the leader), recorded in microseconds in an HDR histogram. Throughput
// is counted proposals (and their payload bytes, MB = 10^6) per second of
// the window.
//
// Every LogStore is wrapped in a counter of StoreLogs calls (each one is at
// least one fsync for every store), entries and time spent, and of GetLog
// calls, split into the leader's and the followers' stores, to show where
// the time goes. The process's CPU time (user and system, from getrusage)
// over the window is reported per proposal: all three nodes share the
// machine's cores, and kernel time in write and fsync counts.
//
// Cases run interleaved so a noisy machine affects all stores alike: for
// each size, -rounds times, every store (in -stores order in the first
// round, rotated by one store in each later round). With -rounds > 1 the
// table aggregates the rounds (total proposals over total time, merged
// histograms) and the ratios are also given round by round. At the end of
// each case the leader runs a barrier and every follower must have applied
// the same number of bytes as the leader.
//
// Two diagnostics: -logcache N wraps every store in raft.NewLogCache (the
// leader then replicates fresh entries from memory instead of GetLog), and
// -store-only times the stores without raft: StoreLogs of -batch entries
// from one goroutine, as raft calls it, the stores taking turns write by
// write.
//
// Usage:
//
//	cd bench/storebench && go run ./cmd/raftbench [-duration 10s] [-warmup 2s] [-proposers 64]
//		[-sizes 1024,65536] [-stores ours,wal,bolt] [-rounds 1]
//		[-json FILE] [-dir DIR] [-cpuprofile FILE] [-v] [-logcache N]
//		[-store-only [-batch 16]]
package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/bench/storebench/internal/workdir"
	"github.com/ledgermq/ledgermq/internal/command"
	"github.com/ledgermq/ledgermq/internal/stats"
)

func main() { command.Main("raftbench", run) }

// allStores are the LogStores this benchmark knows, in the default order.
var allStores = []string{"ours", "wal", "bolt"}

type config struct {
	duration   time.Duration
	warmup     time.Duration
	proposers  int
	sizes      []int
	stores     []string
	rounds     int
	jsonOut    string
	dir        string
	cpuProfile string
	verbose    bool
	storeOnly  bool
	batch      int
	logCache   int
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("raftbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per case")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	fs.IntVar(&c.proposers, "proposers", 64, "concurrent proposers on the leader")
	sizeList := fs.String("sizes", "1024,65536", "comma-separated payload sizes in bytes")
	storeList := fs.String("stores", strings.Join(allStores, ","), "comma-separated log stores to compare (ours, wal, bolt)")
	fs.IntVar(&c.rounds, "rounds", 1, "times each size's cases are repeated (interleaved); the table aggregates them")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&c.dir, "dir", "", "parent of the temporary data directory (default: os.TempDir())")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.BoolVar(&c.verbose, "v", false, "show raft's warnings and errors on stderr")
	fs.BoolVar(&c.storeOnly, "store-only", false, "diagnostic: no raft; time StoreLogs of -batch entries on each store directly, alternating store by store, for -duration per size")
	fs.IntVar(&c.batch, "batch", 16, "entries per StoreLogs with -store-only")
	fs.IntVar(&c.logCache, "logcache", 0, "diagnostic: wrap every store in raft.NewLogCache of this many entries (0: none, as replication.Node)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range strings.Split(*sizeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 16 {
			return c, fmt.Errorf("bad size %q in -sizes (want a byte count >= 16)", s)
		}
		c.sizes = append(c.sizes, n)
	}
	for _, s := range strings.Split(*storeList, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allStores, s) {
			return c, fmt.Errorf("unknown store %q in -stores (want ours, wal or bolt)", s)
		}
		if slices.Contains(c.stores, s) {
			return c, fmt.Errorf("store %q listed twice in -stores", s)
		}
		c.stores = append(c.stores, s)
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.duration <= 0 || c.warmup < 0:
		return c, errors.New("-duration must be positive and -warmup non-negative")
	case c.proposers < 1:
		return c, errors.New("-proposers must be at least 1")
	case c.rounds < 1:
		return c, errors.New("-rounds must be at least 1")
	case c.logCache < 0:
		return c, errors.New("-logcache must be non-negative")
	case c.batch < 1:
		return c, errors.New("-batch must be at least 1")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if cfg.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	raftLog := hclog.NewNullLogger()
	if cfg.verbose {
		raftLog = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: stderr})
	}
	root, done, err := workdir.Open(cfg.dir, "raftbench-", cfg.cpuProfile)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, done()) }()

	if cfg.storeOnly {
		return storeOnly(ctx, cfg, root, logger, stdout)
	}
	cache := "no log cache"
	if cfg.logCache > 0 {
		cache = fmt.Sprintf("raft.LogCache of %d entries over every store", cfg.logCache)
	}
	fmt.Fprintf(stdout, "raftbench: 3 hashicorp/raft nodes on loopback TCP, %d proposers on the leader, warmup %s, measured %s per case, %d round(s), durable stores, %s, GOMAXPROCS=%d, %s\n",
		cfg.proposers, cfg.warmup, cfg.duration, cfg.rounds, cache, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(stdout, "data under %s\n\n", root)

	b := &bench{cfg: cfg, root: root, logger: logger, raftLog: raftLog}
	var results []*result
	for _, size := range cfg.sizes {
		agg := map[string]*result{}
		for round := range cfg.rounds {
			// Round r starts with the r-th store, so no store is always
			// first; round 0 runs them in -stores order.
			k := round % len(cfg.stores)
			for _, store := range append(cfg.stores[k:len(cfg.stores):len(cfg.stores)], cfg.stores[:k]...) {
				if err := ctx.Err(); err != nil {
					return err
				}
				fmt.Fprintf(stderr, "running %s %s round %d/%d ...\n", sizeName(size), store, round+1, cfg.rounds)
				cr, err := b.runCase(ctx, store, size)
				if err != nil {
					return fmt.Errorf("%s %s: %w", store, sizeName(size), err)
				}
				fmt.Fprintf(stderr, "  %.0f proposals/s, p99 %.2f ms\n", cr.opsPerSec(), stats.Millis(cr.hist.Percentile(99)))
				r := agg[store]
				if r == nil {
					r = &result{Size: size, Store: store, hist: stats.New()}
					agg[store] = r
				}
				r.add(cr)
			}
		}
		for _, store := range cfg.stores {
			results = append(results, agg[store].finish())
		}
	}

	report(stdout, cfg, results)
	if cfg.jsonOut != "" {
		data, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// bench holds what every case shares.
type bench struct {
	cfg     config
	root    string
	logger  *slog.Logger
	raftLog hclog.Logger
	seq     int // names case directories
}

// caseResult is one measured case.
type caseResult struct {
	ops       int64         // proposals committed inside the window
	errs      int64         // proposals that failed inside the window
	elapsed   time.Duration // the window
	hist      *stats.Histogram
	leader    storeStats    // the leader's store over the window
	followers []storeStats  // each follower's, the one that stored most first
	cpu       time.Duration // CPU time of the whole process over the window
	size      int
}

func (c *caseResult) opsPerSec() float64 { return float64(c.ops) / c.elapsed.Seconds() }

func (b *bench) runCase(ctx context.Context, store string, size int) (*caseResult, error) {
	b.seq++
	dir := filepath.Join(b.root, fmt.Sprintf("%02d-%s-%d", b.seq, store, size))
	c, err := startCluster(dir, store, b.cfg.logCache, b.logger, b.raftLog)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := c.shutdown(); err != nil {
			b.logger.Warn("shutdown", "store", store, "err", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.logger.Warn("remove case directory", "dir", dir, "err", err)
		}
	}()
	if _, err := c.waitLeader(ctx, 10*time.Second); err != nil {
		return nil, err
	}
	res, err := c.load(ctx, b.cfg, size)
	if err != nil {
		return nil, err
	}
	if err := c.verifyReplicas(10 * time.Second); err != nil {
		return nil, err
	}
	return res, nil
}

// payload returns size random bytes (random so that nothing on the way can
// compress them).
func payload(size int) []byte {
	p := make([]byte, size)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(size))
	r := rand.NewChaCha8(seed)
	r.Read(p)
	return p
}

// load runs the proposers: warmup, then the measured window.
func (c *cluster) load(ctx context.Context, cfg config, size int) (*caseResult, error) {
	data := payload(size)
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	measureTo := measureFrom.Add(cfg.duration)

	var stop atomic.Bool
	type proposerResult struct {
		ops, errs int64
		hist      *stats.Histogram
	}
	out := make([]proposerResult, cfg.proposers)
	var wg sync.WaitGroup
	for p := range cfg.proposers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := proposerResult{hist: stats.New()}
			defer func() { out[p] = res }()
			n := c.leaderNode()
			for !stop.Load() {
				if n == nil {
					time.Sleep(time.Millisecond)
					n = c.leaderNode()
					continue
				}
				t0 := time.Now()
				err := n.raft.Apply(data, 0).Error()
				t1 := time.Now()
				inWindow := !t1.Before(measureFrom) && t1.Before(measureTo)
				if err != nil {
					if inWindow {
						res.errs++
					}
					n = c.leaderNode() // leadership moved, or shutdown
					continue
				}
				if inWindow {
					res.ops++
					res.hist.Record(t1.Sub(t0))
				}
			}
		}()
	}

	// Snapshot the store counters at the window's edges.
	sleepUntil(ctx, measureFrom)
	leader := c.leaderNode()
	ldr0, fol0 := c.storeStats(leader)
	cpu0 := processCPU()
	sleepUntil(ctx, measureTo)
	cpu1 := processCPU()
	ldr1, fol1 := c.storeStats(leader)
	stop.Store(true)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &caseResult{elapsed: cfg.duration, hist: stats.New(), size: size, leader: ldr1.sub(ldr0), cpu: cpu1 - cpu0}
	for i := range fol1 {
		res.followers = append(res.followers, fol1[i].sub(fol0[i]))
	}
	slices.SortFunc(res.followers, func(a, b storeStats) int { return cmp.Compare(b.Entries, a.Entries) })
	for _, pr := range out {
		res.ops += pr.ops
		res.errs += pr.errs
		res.hist.Merge(pr.hist)
	}
	if leader != c.leaderNode() {
		c.logger.Warn("leadership changed during the measurement; store counters are the first leader's")
	}
	return res, nil
}

func sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// result is one table row: one store and size, over all rounds.
type result struct {
	Size           int          `json:"payload_bytes"`
	Store          string       `json:"store"`
	Rounds         int          `json:"rounds"`
	Proposals      int64        `json:"proposals"`
	Errors         int64        `json:"errors"`
	Seconds        float64      `json:"seconds"`
	OpsPerSec      float64      `json:"proposals_per_sec"`
	MBPerSec       float64      `json:"mb_per_sec"`
	P50Ms          float64      `json:"p50_ms"`
	P99Ms          float64      `json:"p99_ms"`
	P999Ms         float64      `json:"p999_ms"`
	MaxMs          float64      `json:"max_ms"`
	CPUSeconds     float64      `json:"cpu_seconds"` // user+system CPU of the process (3 nodes and proposers) in the windows
	RoundOpsPerSec []float64    `json:"round_proposals_per_sec"`
	Leader         storeStats   `json:"leader_store"`
	Followers      []storeStats `json:"follower_stores"` // the follower that stored most first, in each round

	hist *stats.Histogram
}

func (r *result) add(c *caseResult) {
	r.Rounds++
	r.Proposals += c.ops
	r.Errors += c.errs
	r.Seconds += c.elapsed.Seconds()
	r.CPUSeconds += c.cpu.Seconds()
	r.RoundOpsPerSec = append(r.RoundOpsPerSec, c.opsPerSec())
	r.hist.Merge(c.hist)
	r.Leader = r.Leader.plus(c.leader)
	for i, f := range c.followers {
		if i == len(r.Followers) {
			r.Followers = append(r.Followers, storeStats{})
		}
		r.Followers[i] = r.Followers[i].plus(f)
	}
}

func (r *result) finish() *result {
	r.OpsPerSec = float64(r.Proposals) / r.Seconds
	r.MBPerSec = r.OpsPerSec * float64(r.Size) / 1e6
	r.P50Ms = stats.Millis(r.hist.Percentile(50))
	r.P99Ms = stats.Millis(r.hist.Percentile(99))
	r.P999Ms = stats.Millis(r.hist.Percentile(99.9))
	r.MaxMs = stats.Millis(r.hist.Max())
	return r
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// report prints the results table, the store-call table and the ratios
// against the targets.
func report(w io.Writer, cfg config, results []*result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tstore\tproposals/s\tMB/s\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\terrors\tCPU cores\tCPU µs/proposal\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%.2f\t%.0f\t\n",
			sizeName(r.Size), r.Store, r.OpsPerSec, r.MBPerSec, r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs, r.Errors,
			r.CPUSeconds/r.Seconds, r.CPUSeconds*1e6/float64(max(r.Proposals, 1)))
	}
	tw.Flush()
	fmt.Fprintln(w, "(CPU: user+system time of this process, all three nodes and the proposers, over the measured window; kernel time in write and fsync counts)")

	// Where the time goes: the leader writes its own log in raft's main
	// loop before it replicates, and each follower writes what it receives
	// before it acknowledges, so a commit waits for at least two durable
	// writes in sequence. Batching is what amortises them.
	// A "write" is one StoreLogs call: one durable write, at least one
	// fsync, for every store. Follower columns show the two followers as
	// "ahead/behind" (the one that stored more entries in the window first).
	fmt.Fprintln(w, "\nLog store calls in the measured window (a write is one StoreLogs call; followers shown as ahead/behind):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tstore\tldr writes/s\tldr entries/write\tldr ms/write\tldr busy%\tfol writes/s\tfol entries/write\tfol ms/write\tfol busy%\tldr GetLog/commit\tldr µs/GetLog\t")
	for _, r := range results {
		secs := r.Seconds
		busy := func(s storeStats) float64 { return float64(s.WriteNanos) / 1e9 / secs * 100 }
		fol := func(f func(storeStats) string) string {
			var parts []string
			for _, s := range r.Followers {
				parts = append(parts, f(s))
			}
			return strings.Join(parts, "/")
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%.2f\t%.0f\t%s\t%s\t%s\t%s\t%.2f\t%.1f\t\n",
			sizeName(r.Size), r.Store,
			float64(r.Leader.Writes)/secs, div(r.Leader.Entries, r.Leader.Writes), div(r.Leader.WriteNanos, r.Leader.Writes)/1e6, busy(r.Leader),
			fol(func(s storeStats) string { return fmt.Sprintf("%.0f", float64(s.Writes)/secs) }),
			fol(func(s storeStats) string { return fmt.Sprintf("%.1f", div(s.Entries, s.Writes)) }),
			fol(func(s storeStats) string { return fmt.Sprintf("%.2f", div(s.WriteNanos, s.Writes)/1e6) }),
			fol(func(s storeStats) string { return fmt.Sprintf("%.0f", busy(s)) }),
			div(r.Leader.Reads, r.Proposals), div(r.Leader.ReadNanos, r.Leader.Reads)/1e3)
	}
	tw.Flush()
	fmt.Fprintln(w, "(busy% is the share of the window the node's raft goroutine spent inside StoreLogs; raft calls StoreLogs only from its main loop, one call at a time)")
	reportTargets(w, cfg, results)
}

// reportTargets compares ours with each other store against its target.
func reportTargets(w io.Writer, cfg config, results []*result) {
	fmt.Fprintln(w, "\nTargets: ours >= 2x bolt and >= 1x wal in proposals/s, with a lower p99 than both.")
	for _, size := range cfg.sizes {
		find := func(store string) *result {
			for _, r := range results {
				if r.Size == size && r.Store == store {
					return r
				}
			}
			return nil
		}
		ours := find("ours")
		if ours == nil {
			continue
		}
		for _, other := range []struct {
			name     string
			minRatio float64
		}{{"bolt", 2}, {"wal", 1}} {
			o := find(other.name)
			if o == nil {
				continue
			}
			ratio := ours.OpsPerSec / o.OpsPerSec
			fmt.Fprintf(w, "%-6s ours/%-4s throughput %.2fx (target >= %.0fx: %s); p99 ours %.2f ms vs %s %.2f ms (%.2fx, target lower: %s)\n",
				sizeName(size), other.name, ratio, other.minRatio, met(ratio >= other.minRatio),
				ours.P99Ms, other.name, o.P99Ms, ours.P99Ms/o.P99Ms, met(ours.P99Ms < o.P99Ms))
			if cfg.rounds > 1 {
				// Cases of one round ran back to back, so their ratio
				// is less exposed to a noisy neighbour than the totals.
				var rs []float64
				for i := range ours.RoundOpsPerSec {
					rs = append(rs, ours.RoundOpsPerSec[i]/o.RoundOpsPerSec[i])
				}
				slices.Sort(rs)
				fmt.Fprintf(w, "%-6s ours/%-4s per-round throughput ratios %s, median %.2fx\n", "", other.name, fmtRatios(rs), stats.Median(rs))
			}
		}
	}
}

func fmtRatios(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(parts, " ")
}

func div(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func met(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

// storeOnly is the -store-only diagnostic: the stores without raft, to
// compare the cost of one durable write (and of reading it back) on this
// file system. For each size, one fresh store of each kind is written by
// one goroutine, as raft does: StoreLogs of -batch entries, then GetLog of
// each of them; the stores take turns write by write (so a noisy neighbour
// hits all alike) until -duration has passed.
func storeOnly(ctx context.Context, cfg config, root string, logger *slog.Logger, stdout io.Writer) error {
	fmt.Fprintf(stdout, "store-only: StoreLogs of %d entries then GetLog of each, stores taking turns, %s per size\n\n", cfg.batch, cfg.duration)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tstore\twrites\tMB/s of write time\tmean ms/write\tp50 ms\tp99 ms\tmax ms\tµs/GetLog\t")
	for _, size := range cfg.sizes {
		data := payload(size)
		type side struct {
			name      string
			store     raft.LogStore
			close     func() error
			next      uint64
			writeTime time.Duration
			readTime  time.Duration
			writes    int64
			hist      *stats.Histogram
		}
		var sides []*side
		closeAll := func() error {
			var errs []error
			for _, sd := range sides {
				errs = append(errs, sd.close())
			}
			return errors.Join(errs...)
		}
		for _, name := range cfg.stores {
			dir := filepath.Join(root, fmt.Sprintf("store-only-%s-%d", name, size))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return errors.Join(err, closeAll())
			}
			st, cl, err := openLogStore(name, dir, logger)
			if err != nil {
				return errors.Join(err, closeAll())
			}
			sides = append(sides, &side{name: name, store: st, close: cl, next: 1, hist: stats.New()})
		}
		logs := make([]*raft.Log, cfg.batch)
		var got raft.Log
		deadline := time.Now().Add(cfg.duration)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			for _, sd := range sides {
				for i := range logs {
					logs[i] = &raft.Log{Index: sd.next + uint64(i), Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
				}
				t0 := time.Now()
				if err := sd.store.StoreLogs(logs); err != nil {
					return errors.Join(fmt.Errorf("%s: %w", sd.name, err), closeAll())
				}
				t1 := time.Now()
				for i := range logs {
					if err := sd.store.GetLog(sd.next+uint64(i), &got); err != nil {
						return errors.Join(fmt.Errorf("%s: %w", sd.name, err), closeAll())
					}
				}
				sd.readTime += time.Since(t1)
				sd.writeTime += t1.Sub(t0)
				sd.hist.Record(t1.Sub(t0))
				sd.writes++
				sd.next += uint64(len(logs))
			}
		}
		for _, sd := range sides {
			bytes := float64(sd.writes) * float64(cfg.batch) * float64(size)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t\n", sizeName(size), sd.name, sd.writes,
				bytes/sd.writeTime.Seconds()/1e6, ms(sd.writeTime)/float64(sd.writes),
				stats.Millis(sd.hist.Percentile(50)), stats.Millis(sd.hist.Percentile(99)), stats.Millis(sd.hist.Max()),
				float64(sd.readTime.Microseconds())/float64(sd.writes*int64(cfg.batch)))
		}
		if err := closeAll(); err != nil {
			return err
		}
	}
	tw.Flush()
	return ctx.Err()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
