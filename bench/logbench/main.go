// Command logbench compares commitlog's throughput with the raw file system
// it runs on, measured in the same run and in the same directory, so the
// ratio is meaningful on a noisy, shared machine.
//
// It measures three modes, each for 1 KiB entries in 1 MiB batches (1024
// entries per Append) and for single-entry batches of 64 KiB and of 1 MiB:
//
//   - fsync: commitlog Append with SyncEveryAppend against the same encoded
//     batch bytes written to a plain file with os.File.Write followed by
//     File.Sync after every batch. Target: commitlog >= 85% of raw.
//   - buffered: commitlog Append with SyncNever against the same bytes
//     written with os.File.Write and no fsync. Target: commitlog >= 70% of
//     raw.
//   - read: sequential ReadRange with a 1 MiB budget over a pre-filled,
//     page-cache-resident log against reading the same segment files with
//     os.File.Read in 1 MiB chunks. Target: commitlog >= 1 GB/s.
//
// Raw and commitlog trials alternate for -rounds rounds (which goes first
// alternates too) and the table shows the median of each. Throughput counts
// the bytes on disk (frames including their 40-byte headers) in MB/s of
// 10^6 bytes; the raw trial writes exactly the bytes commitlog writes, so the
// ratio is a ratio of times. Files are created fresh for every write trial,
// the untimed end of a trial syncs and deletes them, and everything is
// written under a temporary directory (inside -dir if given) that is
// removed at the end.
//
// Usage:
//
//	go run ./bench/logbench [-dir DIR] [-bytes N] [-duration D] [-rounds N] [-read-bytes N] [-json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ledgermq/ledgermq/commitlog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "logbench:", err)
		}
		os.Exit(1)
	}
}

type config struct {
	dir       string
	bytes     int64
	duration  time.Duration
	rounds    int
	readBytes int64
	json      bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("logbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.dir, "dir", "", "directory on the file system to measure; a temporary directory is created inside it and removed at the end (default: os.TempDir())")
	fs.Int64Var(&c.bytes, "bytes", 64<<20, "bytes written per write trial (0: no limit, use -duration)")
	fs.DurationVar(&c.duration, "duration", 2*time.Second, "time limit per write trial; a trial ends at whichever of -bytes and -duration comes first (0: no limit)")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds of interleaved raw and commitlog trials; the table shows medians")
	fs.Int64Var(&c.readBytes, "read-bytes", 128<<20, "payload bytes of the log pre-filled for the read trials (kept in the page cache)")
	fs.BoolVar(&c.json, "json", false, "print the results as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.bytes < 0 || c.duration < 0 || (c.bytes == 0 && c.duration == 0):
		return c, errors.New("-bytes and -duration must be non-negative and not both 0")
	case c.rounds < 1:
		return c, errors.New("-rounds must be at least 1")
	case c.readBytes < 1<<20:
		return c, errors.New("-read-bytes must be at least 1 MiB")
	}
	return c, nil
}

// shape is a payload size and the number of entries per Append.
type shape struct {
	name      string
	entrySize int
	perBatch  int
}

var shapes = []shape{
	{name: "1KiB", entrySize: 1 << 10, perBatch: 1024},
	{name: "64KiB", entrySize: 64 << 10, perBatch: 1},
	{name: "1MiB", entrySize: 1 << 20, perBatch: 1},
}

// mode is one row group of the table.
type mode struct {
	name   string
	policy commitlog.SyncPolicy // for write modes
	read   bool
	// Target: commitlog/raw >= minRatio, or commitlog >= minMBps.
	minRatio float64
	minMBps  float64
	target   string
}

var modes = []mode{
	{name: "fsync", policy: commitlog.SyncEveryAppend, minRatio: 0.85, target: ">= 85% of raw write+fsync"},
	{name: "buffered", policy: commitlog.SyncNever, minRatio: 0.70, target: ">= 70% of raw write"},
	{name: "read", read: true, minMBps: 1000, target: ">= 1 GB/s (ReadRange 1 MiB)"},
}

// result is one row: a mode and shape, with every trial's throughput.
type result struct {
	Mode      string    `json:"mode"`
	Size      string    `json:"size"`
	Batch     string    `json:"batch"`
	RawMBps   []float64 `json:"raw_mbps"`
	LogMBps   []float64 `json:"commitlog_mbps"`
	RawMedian float64   `json:"raw_median_mbps"`
	LogMedian float64   `json:"commitlog_median_mbps"`
	Ratio     float64   `json:"ratio"`
	Target    string    `json:"target"`
	Met       bool      `json:"met"`
}

// trial is one timed measurement: bytes moved in elapsed.
type trial struct {
	bytes   int64
	elapsed time.Duration
}

func (t trial) mbps() float64 { return float64(t.bytes) / t.elapsed.Seconds() / 1e6 }

// bench holds the state of one run.
type bench struct {
	cfg    config
	root   string
	logger *slog.Logger
	seq    int // names trial directories and files
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	parent := cfg.dir
	if parent == "" {
		parent = os.TempDir()
	}
	root, err := os.MkdirTemp(parent, "logbench-")
	if err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(root); err != nil {
			logger.Error("removing work directory", "dir", root, "err", err)
		}
	}()
	logger.Info("logbench starting", "dir", root, "bytes", cfg.bytes, "duration", cfg.duration,
		"rounds", cfg.rounds, "read_bytes", cfg.readBytes, "gomaxprocs", runtime.GOMAXPROCS(0), "go", runtime.Version())
	b := &bench{cfg: cfg, root: root, logger: logger}

	var results []result
	for _, m := range modes {
		for _, sh := range shapes {
			r, err := b.measure(ctx, m, sh)
			if err != nil {
				return fmt.Errorf("%s %s: %w", m.name, sh.name, err)
			}
			results = append(results, r)
		}
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	return printTable(stdout, results)
}

// measure runs the interleaved rounds of one mode and shape.
func (b *bench) measure(ctx context.Context, m mode, sh shape) (result, error) {
	batchDesc := fmt.Sprintf("%d x %s", sh.perBatch, sh.name)
	r := result{Mode: m.name, Size: sh.name, Batch: batchDesc, Target: m.target}
	var rawTrial, logTrial func(context.Context) (trial, error)
	if m.read {
		rs, err := b.prepareRead(sh)
		if err != nil {
			return r, err
		}
		defer rs.close(b.logger)
		rawTrial, logTrial = rs.rawTrial, rs.logTrial
	} else {
		batch := makeBatch(sh)
		rawTrial = func(ctx context.Context) (trial, error) { return b.rawWrite(ctx, m, batch) }
		logTrial = func(ctx context.Context) (trial, error) { return b.logWrite(ctx, m, batch) }
	}
	for round := range b.cfg.rounds {
		order := []string{"raw", "commitlog"}
		if round%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, which := range order {
			if err := ctx.Err(); err != nil {
				return r, err
			}
			f := rawTrial
			if which == "commitlog" {
				f = logTrial
			}
			t, err := f(ctx)
			if err != nil {
				return r, fmt.Errorf("%s trial, round %d: %w", which, round+1, err)
			}
			b.logger.Info("trial", "mode", m.name, "size", sh.name, "round", round+1, "impl", which,
				"bytes", t.bytes, "elapsed", t.elapsed.Round(time.Microsecond), "mbps", fmt.Sprintf("%.1f", t.mbps()))
			if which == "raw" {
				r.RawMBps = append(r.RawMBps, t.mbps())
			} else {
				r.LogMBps = append(r.LogMBps, t.mbps())
			}
		}
	}
	r.RawMedian, r.LogMedian = median(r.RawMBps), median(r.LogMBps)
	r.Ratio = r.LogMedian / r.RawMedian
	if m.read {
		r.Met = r.LogMedian >= m.minMBps
	} else {
		r.Met = r.Ratio >= m.minRatio
	}
	return r, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// batch is one Append's entries and their encoding, which is exactly what
// commitlog writes for them.
type batch struct {
	entries []commitlog.Entry
	encoded []byte
}

func makeBatch(sh shape) batch {
	var key [32]byte
	key[0] = byte(sh.entrySize >> 10)
	data := make([]byte, sh.entrySize*sh.perBatch)
	_, _ = rand.NewChaCha8(key).Read(data) // never fails; incompressible payload
	at := time.Now()
	b := batch{entries: make([]commitlog.Entry, sh.perBatch)}
	for i := range b.entries {
		b.entries[i] = commitlog.Entry{Index: uint64(i + 1), Term: 1, Data: data[i*sh.entrySize : (i+1)*sh.entrySize], AppendedAt: at}
		b.encoded = commitlog.EncodeEntry(b.encoded, &b.entries[i])
	}
	return b
}

// done reports whether a write trial that has moved n bytes since start
// should stop.
func (b *bench) done(n int64, start time.Time) bool {
	return (b.cfg.bytes > 0 && n >= b.cfg.bytes) || (b.cfg.duration > 0 && time.Since(start) >= b.cfg.duration)
}

func (b *bench) next(prefix string) string {
	b.seq++
	return filepath.Join(b.root, fmt.Sprintf("%s-%03d", prefix, b.seq))
}

// rawWrite writes the encoded batch to a new plain file until the trial
// limit, fsyncing after every batch in the fsync mode.
func (b *bench) rawWrite(ctx context.Context, m mode, bt batch) (t trial, err error) {
	path := b.next("raw") + ".dat"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return t, fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		// Untimed: flush what the buffered mode left dirty, as Close does
		// for commitlog, then delete the file.
		err = errors.Join(err, wrap("sync", path, f.Sync()), wrap("close", path, f.Close()), wrap("remove", path, os.Remove(path)))
	}()
	fsync := m.policy == commitlog.SyncEveryAppend
	start := time.Now()
	var n int64
	for !b.done(n, start) && ctx.Err() == nil {
		if _, err := f.Write(bt.encoded); err != nil {
			return t, fmt.Errorf("write %s: %w", path, err)
		}
		if fsync {
			if err := f.Sync(); err != nil {
				return t, fmt.Errorf("fsync %s: %w", path, err)
			}
		}
		n += int64(len(bt.encoded))
	}
	return trial{bytes: n, elapsed: time.Since(start)}, ctx.Err()
}

// logWrite appends the batch to a new log until the trial limit.
func (b *bench) logWrite(ctx context.Context, m mode, bt batch) (t trial, err error) {
	dir := b.next("log")
	opts := commitlog.DefaultOptions()
	opts.Sync = m.policy
	opts.Logger = b.logger
	l, err := commitlog.Open(dir, opts)
	if err != nil {
		return t, err
	}
	defer func() {
		// Untimed: Close syncs.
		err = errors.Join(err, l.Close(), wrap("remove", dir, os.RemoveAll(dir)))
	}()
	entries := bt.entries
	next := l.LastIndex() + 1
	start := time.Now()
	var n int64
	for !b.done(n, start) && ctx.Err() == nil {
		for i := range entries {
			entries[i].Index = next + uint64(i)
		}
		if err := l.Append(entries); err != nil {
			return t, err
		}
		next += uint64(len(entries))
		n += int64(len(bt.encoded))
	}
	return trial{bytes: n, elapsed: time.Since(start)}, ctx.Err()
}

// readSetup is a pre-filled log, open for reading, and its segment files.
type readSetup struct {
	log   *commitlog.Log
	dir   string
	files []string
	bytes int64 // frame bytes in the log
}

// readPasses is how many times a read trial reads the whole log.
const readPasses = 3

func (b *bench) prepareRead(sh shape) (*readSetup, error) {
	dir := b.next("read")
	opts := commitlog.DefaultOptions()
	opts.Sync = commitlog.SyncNever
	opts.Logger = b.logger
	l, err := commitlog.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	bt := makeBatch(sh)
	var written int64
	for next := uint64(1); written < b.cfg.readBytes; next += uint64(len(bt.entries)) {
		for i := range bt.entries {
			bt.entries[i].Index = next + uint64(i)
		}
		if err := l.Append(bt.entries); err != nil {
			return nil, errors.Join(err, l.Close())
		}
		written += int64(sh.entrySize * sh.perBatch)
	}
	// Close (which fsyncs) and reopen: reads then see a log as after a
	// restart, and the written pages are clean but still cached.
	if err := l.Close(); err != nil {
		return nil, err
	}
	if l, err = commitlog.Open(dir, opts); err != nil {
		return nil, err
	}
	rs := &readSetup{log: l, dir: dir}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("list %s: %w", dir, err), rs.close(b.logger))
	}
	for _, e := range names {
		if strings.HasSuffix(e.Name(), ".log") { // names sort by first index
			rs.files = append(rs.files, filepath.Join(dir, e.Name()))
		}
	}
	st := l.Stats()
	rs.bytes = st.Bytes
	b.logger.Info("read log filled", "dir", dir, "segments", st.Segments, "bytes", st.Bytes, "entries", st.LastIndex-st.FirstIndex+1)
	// Warm the page cache with one untimed pass of each.
	if _, err := rs.rawTrial(context.Background()); err != nil {
		return nil, errors.Join(err, rs.close(b.logger))
	}
	if _, err := rs.logTrial(context.Background()); err != nil {
		return nil, errors.Join(err, rs.close(b.logger))
	}
	return rs, nil
}

func (rs *readSetup) close(logger *slog.Logger) error {
	err := errors.Join(rs.log.Close(), wrap("remove", rs.dir, os.RemoveAll(rs.dir)))
	if err != nil {
		logger.Error("closing read log", "dir", rs.dir, "err", err)
	}
	return err
}

// rawTrial reads the segment files sequentially in 1 MiB chunks.
func (rs *readSetup) rawTrial(ctx context.Context) (trial, error) {
	buf := make([]byte, 1<<20)
	start := time.Now()
	var n int64
	for range readPasses {
		for _, path := range rs.files {
			if err := ctx.Err(); err != nil {
				return trial{}, err
			}
			m, err := readFile(path, buf)
			n += m
			if err != nil {
				return trial{}, err
			}
		}
	}
	return trial{bytes: n, elapsed: time.Since(start)}, nil
}

func readFile(path string, buf []byte) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	for {
		m, err := f.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// logTrial reads the whole log with ReadRange and a 1 MiB budget. It counts
// frame bytes (payload, extensions and the 40-byte header), like the raw
// trial counts file bytes.
func (rs *readSetup) logTrial(ctx context.Context) (trial, error) {
	const frameHeader = 40
	first, last := rs.log.FirstIndex(), rs.log.LastIndex()
	start := time.Now()
	var n int64
	for range readPasses {
		for i := first; i <= last; {
			if err := ctx.Err(); err != nil {
				return trial{}, err
			}
			es, err := rs.log.ReadRange(i, 1<<20)
			if err != nil {
				return trial{}, fmt.Errorf("ReadRange(%d): %w", i, err)
			}
			for _, e := range es {
				n += int64(frameHeader + len(e.Data) + len(e.Extensions))
			}
			i += uint64(len(es))
		}
	}
	return trial{bytes: n, elapsed: time.Since(start)}, nil
}

func wrap(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

func printTable(w io.Writer, results []result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tsize\tbatch\traw MB/s\tcommitlog MB/s\tratio\ttarget\tmet\t")
	for _, r := range results {
		met := "yes"
		if !r.Met {
			met = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%.1f\t%.1f%%\t%s\t%s\t\n", r.Mode, r.Size, r.Batch, r.RawMedian, r.LogMedian, 100*r.Ratio, r.Target, met)
	}
	return tw.Flush()
}
