// Command logbench compares commitlog's throughput with the raw file system
// it runs on, measured in the same run and in the same directory, so the
// ratio is meaningful on a noisy, shared machine.
//
// It measures four modes, each for 1 KiB entries in 1 MiB batches (1024
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
//   - read-into: the same with ReadRangeInto, which reuses the caller's
//     entry slice and frame buffer, as a streaming consumer would, instead
//     of allocating them on every call. Target: commitlog >= 1 GB/s.
//
// The machine may be shared and noisy, so raw and commitlog are measured
// side by side: in each round the two alternate one step at a time (one
// batch written, or about 1 MiB read), each step timed on its own, and
// which side goes first alternates too. Each round gives a throughput for
// each side and their ratio; the table shows the medians over -rounds
// rounds. A write round writes -bytes on each side (or stops after
// -duration), a read round reads the whole log 3 times on each side.
//
// Throughput counts the bytes on disk (frames including their 40-byte
// headers) in MB/s of 10^6 bytes; the raw side writes exactly the bytes
// commitlog writes, so the ratio is a ratio of times. Every write round
// creates a fresh file and a fresh log; syncing (commitlog's Close syncs),
// closing and deleting them is untimed. Everything is written under a
// temporary directory (inside -dir if given) that is removed at the end.
//
// Usage:
//
//	cd bench/storebench && go run ./cmd/logbench [-dir DIR] [-bytes N] [-duration D] [-rounds N]
//		[-read-bytes N] [-modes fsync,buffered,read,read-into] [-raw-offset N]
//		[-json] [-cpuprofile FILE]
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
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ledgermq/ledgermq/bench/storebench/internal/workdir"
	"github.com/ledgermq/ledgermq/commitlog"
	"github.com/ledgermq/ledgermq/internal/command"
	"github.com/ledgermq/ledgermq/internal/stats"
)

func main() { command.Main("logbench", run) }

type config struct {
	dir        string
	bytes      int64
	duration   time.Duration
	rounds     int
	readBytes  int64
	json       bool
	modes      []string
	cpuProfile string
	rawOffset  int
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("logbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.dir, "dir", "", "directory on the file system to measure; a temporary directory is created inside it and removed at the end (default: os.TempDir())")
	fs.Int64Var(&c.bytes, "bytes", 128<<20, "bytes written by each side in a write round (0: no limit, use -duration)")
	fs.DurationVar(&c.duration, "duration", 2*time.Second, "time limit of a write round; a round ends at whichever of -bytes and -duration comes first (0: no limit)")
	fs.IntVar(&c.rounds, "rounds", 5, "rounds per mode and size; the table shows medians")
	fs.Int64Var(&c.readBytes, "read-bytes", 128<<20, "payload bytes of the log pre-filled for the read trials (kept in the page cache)")
	fs.BoolVar(&c.json, "json", false, "print the results as JSON instead of a table")
	modeList := fs.String("modes", "fsync,buffered,read,read-into", "comma-separated modes to run")
	fs.IntVar(&c.rawOffset, "raw-offset", 0, "start the raw file's writes at this offset (16 mimics commitlog's segment header, for diagnosing alignment effects)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, name := range strings.Split(*modeList, ",") {
		if !slices.ContainsFunc(modes(), func(m mode) bool { return m.name == name }) {
			return c, fmt.Errorf("unknown mode %q in -modes (want fsync, buffered, read or read-into)", name)
		}
		c.modes = append(c.modes, name)
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.bytes < 0 || c.duration < 0 || (c.bytes == 0 && c.duration == 0):
		return c, errors.New("-bytes and -duration must be non-negative and not both 0")
	case c.rounds < 1:
		return c, errors.New("-rounds must be at least 1")
	case c.rawOffset < 0:
		return c, errors.New("-raw-offset must be non-negative")
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

func shapes() []shape {
	return []shape{
		{name: "1KiB", entrySize: 1 << 10, perBatch: 1024},
		{name: "64KiB", entrySize: 64 << 10, perBatch: 1},
		{name: "1MiB", entrySize: 1 << 20, perBatch: 1},
	}
}

// mode is one row group of the table.
type mode struct {
	name   string
	policy commitlog.SyncPolicy // for write modes
	read   bool
	into   bool // read with ReadRangeInto, reusing buffers, not ReadRange
	// Target: commitlog/raw >= minRatio, or commitlog >= minMBps.
	minRatio float64
	minMBps  float64
	target   string
}

func modes() []mode {
	return []mode{
		{name: "fsync", policy: commitlog.SyncEveryAppend, minRatio: 0.85, target: ">= 85% of raw write+fsync"},
		{name: "buffered", policy: commitlog.SyncNever, minRatio: 0.70, target: ">= 70% of raw write"},
		{name: "read", read: true, minMBps: 1000, target: ">= 1 GB/s"},
		{name: "read-into", read: true, into: true, minMBps: 1000, target: ">= 1 GB/s"},
	}
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
	Ratios    []float64 `json:"ratios"`
	Ratio     float64   `json:"ratio"` // median of the rounds' commitlog/raw
	Target    string    `json:"target"`
	Met       bool      `json:"met"`
}

// trial is one side's measurement in a round: bytes moved in elapsed.
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
	root, done, err := workdir.Open(cfg.dir, "logbench-", cfg.cpuProfile)
	if err != nil {
		return err
	}
	defer func() {
		if err := done(); err != nil {
			logger.Error("removing work directory", "dir", root, "err", err)
		}
	}()
	logger.Info("logbench starting", "dir", root, "bytes", cfg.bytes, "duration", cfg.duration,
		"rounds", cfg.rounds, "read_bytes", cfg.readBytes, "gomaxprocs", runtime.GOMAXPROCS(0), "go", runtime.Version())
	b := &bench{cfg: cfg, root: root, logger: logger}

	var results []result
	for _, m := range modes() {
		if !slices.Contains(cfg.modes, m.name) {
			continue
		}
		for _, sh := range shapes() {
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
		enc.SetEscapeHTML(false)
		return enc.Encode(results)
	}
	return printTable(stdout, results)
}

// measure runs the rounds of one mode and shape.
func (b *bench) measure(ctx context.Context, m mode, sh shape) (result, error) {
	batchDesc := fmt.Sprintf("%d x %s", sh.perBatch, sh.name)
	if m.read {
		batchDesc = "ReadRange 1MiB"
		if m.into {
			batchDesc = "ReadRangeInto 1MiB"
		}
	}
	r := result{Mode: m.name, Size: sh.name, Batch: batchDesc, Target: m.target}
	var round func(context.Context) (raw, log trial, err error)
	if m.read {
		rs, err := b.prepareRead(sh, m.into)
		if err != nil {
			return r, err
		}
		defer rs.close(b.logger)
		round = func(ctx context.Context) (trial, trial, error) { return rs.round(ctx, readPasses) }
	} else {
		bt := makeBatch(sh)
		round = func(ctx context.Context) (trial, trial, error) { return b.writeRound(ctx, m, bt) }
	}
	for i := range b.cfg.rounds {
		raw, log, err := round(ctx)
		if err != nil {
			return r, fmt.Errorf("round %d: %w", i+1, err)
		}
		b.logger.Info("round", "mode", m.name, "size", sh.name, "round", i+1,
			"raw_bytes", raw.bytes, "raw_elapsed", raw.elapsed.Round(time.Microsecond), "raw_mbps", fmt.Sprintf("%.1f", raw.mbps()),
			"log_bytes", log.bytes, "log_elapsed", log.elapsed.Round(time.Microsecond), "log_mbps", fmt.Sprintf("%.1f", log.mbps()))
		r.RawMBps = append(r.RawMBps, raw.mbps())
		r.LogMBps = append(r.LogMBps, log.mbps())
		r.Ratios = append(r.Ratios, log.mbps()/raw.mbps())
	}
	// Both sides of a round ran under the same conditions, so the ratio is
	// the median of the rounds' ratios rather than a ratio of medians.
	r.RawMedian, r.LogMedian, r.Ratio = stats.Median(r.RawMBps), stats.Median(r.LogMBps), stats.Median(r.Ratios)
	if m.read {
		r.Met = r.LogMedian >= m.minMBps
	} else {
		r.Met = r.Ratio >= m.minRatio
	}
	return r, nil
}

// paired alternates raw and commitlog steps, raw first on even steps and
// commitlog first on odd ones, timing every step on its own, until more
// says to stop. A step does one unit of work (write one batch, read about
// 1 MiB) and returns the bytes it moved. Interleaving single steps rather
// than whole trials makes both sides see the same disk and CPU contention
// on a shared machine.
func paired(ctx context.Context, raw, log func() (int64, error), more func(rawN, logN int64, elapsed time.Duration) bool) (rt, lt trial, err error) {
	start := time.Now()
	for i := 0; more(rt.bytes, lt.bytes, time.Since(start)); i++ {
		if err := ctx.Err(); err != nil {
			return rt, lt, err
		}
		for j := range 2 {
			t, step, name := &rt, raw, "raw"
			if (i+j)%2 == 1 {
				t, step, name = &lt, log, "commitlog"
			}
			t0 := time.Now()
			n, err := step()
			t.elapsed += time.Since(t0)
			if err != nil {
				return rt, lt, fmt.Errorf("%s: %w", name, err)
			}
			t.bytes += n
		}
	}
	return rt, lt, nil
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

func (b *bench) next(prefix string) string {
	b.seq++
	return filepath.Join(b.root, fmt.Sprintf("%s-%03d", prefix, b.seq))
}

// writeRound writes the batch to a new plain file and appends it to a new
// log, alternately, until each has -bytes or -duration has passed. In the
// fsync mode the raw side fsyncs after every batch and the log uses
// SyncEveryAppend; in the buffered mode neither syncs and the log uses
// SyncNever. Creating, syncing (Close syncs the log) and deleting the files
// is untimed.
func (b *bench) writeRound(ctx context.Context, m mode, bt batch) (rt, lt trial, err error) {
	path := b.next("raw") + ".dat"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return rt, lt, fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		err = errors.Join(err, wrap("sync", path, f.Sync()), wrap("close", path, f.Close()), wrap("remove", path, os.Remove(path)))
	}()
	if b.cfg.rawOffset > 0 {
		if _, err := f.Write(make([]byte, b.cfg.rawOffset)); err != nil {
			return rt, lt, fmt.Errorf("write %s: %w", path, err)
		}
	}

	dir := b.next("log")
	opts := commitlog.DefaultOptions()
	opts.Sync = m.policy
	opts.Logger = b.logger
	l, err := commitlog.Open(dir, opts)
	if err != nil {
		return rt, lt, err
	}
	defer func() {
		err = errors.Join(err, l.Close(), wrap("remove", dir, os.RemoveAll(dir)))
	}()

	fsync := m.policy == commitlog.SyncEveryAppend
	size := int64(len(bt.encoded))
	raw := func() (int64, error) {
		if _, err := f.Write(bt.encoded); err != nil {
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
		if fsync {
			if err := f.Sync(); err != nil {
				return 0, fmt.Errorf("fsync %s: %w", path, err)
			}
		}
		return size, nil
	}
	entries := bt.entries
	next := l.LastIndex() + 1
	log := func() (int64, error) {
		for i := range entries {
			entries[i].Index = next + uint64(i)
		}
		if err := l.Append(entries); err != nil {
			return 0, err
		}
		next += uint64(len(entries))
		return size, nil
	}
	more := func(rawN, logN int64, elapsed time.Duration) bool {
		if b.cfg.duration > 0 && elapsed >= b.cfg.duration {
			return false
		}
		return b.cfg.bytes == 0 || min(rawN, logN) < b.cfg.bytes
	}
	return paired(ctx, raw, log, more)
}

// readSetup is a pre-filled log, open for reading, and its segment files,
// open for the raw reads.
type readSetup struct {
	log   *commitlog.Log
	dir   string
	files []*os.File
	bytes int64 // file bytes of the log's segments

	// Raw read cursor: the file being read and the buffer.
	file int
	buf  []byte
	// Log read cursor: the next index to read, and with into the buffers
	// ReadRangeInto reuses.
	index       uint64
	frameHeader int
	into        bool
	entries     []commitlog.Entry
	frames      []byte
}

// readPasses is how many times a read round reads the whole log on each
// side.
const readPasses = 3

func (b *bench) prepareRead(sh shape, into bool) (rs *readSetup, err error) {
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
	rs = &readSetup{
		log:         l,
		dir:         dir,
		buf:         make([]byte, 1<<20),
		index:       l.FirstIndex(),
		frameHeader: len(commitlog.EncodeEntry(nil, &commitlog.Entry{})),
		into:        into,
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, rs.close(b.logger))
		}
	}()
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range names { // sorted by name, which sorts segments by first index
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		rs.files = append(rs.files, f)
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		rs.bytes += st.Size()
	}
	st := l.Stats()
	b.logger.Info("read log filled", "dir", dir, "segments", st.Segments, "bytes", st.Bytes, "entries", st.LastIndex-st.FirstIndex+1)
	// Warm the page cache and the code paths with one untimed pass.
	if _, _, err := rs.round(context.Background(), 1); err != nil {
		return nil, fmt.Errorf("warm-up pass: %w", err)
	}
	return rs, nil
}

func (rs *readSetup) close(logger *slog.Logger) error {
	var err error
	for _, f := range rs.files {
		err = errors.Join(err, f.Close())
	}
	err = errors.Join(err, rs.log.Close(), wrap("remove", rs.dir, os.RemoveAll(rs.dir)))
	if err != nil {
		logger.Error("closing read log", "dir", rs.dir, "err", err)
	}
	return err
}

// round reads the log passes times on each side, alternating a 1 MiB
// os.File.Read of the segment files with a ReadRange with a 1 MiB budget.
// Both sides wrap around at the end of the log. The log side counts frame
// bytes (header, payload, extensions), the raw side file bytes.
func (rs *readSetup) round(ctx context.Context, passes int) (trial, trial, error) {
	want := int64(passes) * rs.bytes
	more := func(rawN, logN int64, _ time.Duration) bool { return min(rawN, logN) < want }
	return paired(ctx, rs.rawStep, rs.logStep, more)
}

func (rs *readSetup) rawStep() (int64, error) {
	for range 2 * len(rs.files) {
		f := rs.files[rs.file]
		n, err := f.Read(rs.buf)
		if n > 0 {
			return int64(n), nil
		}
		if err != nil && err != io.EOF {
			return 0, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		// End of this file: go on with the next one, from its start.
		rs.file = (rs.file + 1) % len(rs.files)
		if _, err := rs.files[rs.file].Seek(0, io.SeekStart); err != nil {
			return 0, fmt.Errorf("seek %s: %w", rs.files[rs.file].Name(), err)
		}
	}
	return 0, errors.New("segment files are empty")
}

func (rs *readSetup) logStep() (int64, error) {
	var es []commitlog.Entry
	var err error
	if rs.into {
		rs.entries, rs.frames, err = rs.log.ReadRangeInto(rs.entries, rs.frames, rs.index, 1<<20)
		es = rs.entries
	} else {
		es, err = rs.log.ReadRange(rs.index, 1<<20)
	}
	if err != nil {
		return 0, fmt.Errorf("reading from %d: %w", rs.index, err)
	}
	var n int64
	for _, e := range es {
		n += int64(rs.frameHeader + len(e.Data) + len(e.Extensions))
	}
	if rs.index += uint64(len(es)); rs.index > rs.log.LastIndex() {
		rs.index = rs.log.FirstIndex()
	}
	return n, nil
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
