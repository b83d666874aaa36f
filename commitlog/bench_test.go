package commitlog_test

// Benchmarks of the commitlog's write and read paths.
//
// Batch shapes (the same as bench/logbench):
//
//   - size=1KiB:  1024 entries of 1 KiB per Append, so one Append writes
//     1 MiB of payload (1,064,960 bytes on disk with the 40-byte frame
//     headers).
//   - size=64KiB: one 64 KiB entry per Append.
//   - size=1MiB:  one 1 MiB entry per Append.
//
// One op is one Append (or one Read / ReadRange), and b.SetBytes counts the
// payload bytes of an op, excluding frame headers, so MB/s is payload
// throughput. Setup (Open, pre-filling) and teardown (Close, which fsyncs)
// are outside the timer.
//
// `go test -run XXX -bench . -benchtime 1x ./commitlog` is a quick smoke run.
// With a time-based -benchtime the interval and never policies write
// gigabytes, run into the kernel's dirty-page limits and end up measuring
// the disk's write-back rate; use e.g. -benchtime 100x to measure writes into
// the page cache. bench/logbench compares these paths with the raw file
// system in the same run.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/commitlog"
)

// benchShape is one payload size and the number of entries per Append.
type benchShape struct {
	name      string
	entrySize int
	perBatch  int
}

var benchShapes = []benchShape{
	{name: "1KiB", entrySize: 1 << 10, perBatch: 1024},
	{name: "64KiB", entrySize: 64 << 10, perBatch: 1},
	{name: "1MiB", entrySize: 1 << 20, perBatch: 1},
}

var benchPolicies = []commitlog.SyncPolicy{commitlog.SyncEveryAppend, commitlog.SyncInterval, commitlog.SyncNever}

func benchOptions(p commitlog.SyncPolicy) commitlog.Options {
	o := commitlog.DefaultOptions()
	o.Sync = p
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return o
}

func benchOpen(b *testing.B, dir string, o commitlog.Options) *commitlog.Log {
	b.Helper()
	l, err := commitlog.Open(dir, o)
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	return l
}

func benchClose(b *testing.B, l *commitlog.Log) {
	b.Helper()
	if err := l.Close(); err != nil {
		b.Fatalf("Close: %v", err)
	}
}

// benchPayload returns n pseudo-random (incompressible) bytes.
func benchPayload(n int, seed uint64) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	p := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(p) // never fails
	return p
}

// benchBatch returns perBatch entries of entrySize bytes each; the caller
// sets the indexes before each Append.
func benchBatch(entrySize, perBatch int) []commitlog.Entry {
	data := benchPayload(entrySize*perBatch, uint64(entrySize))
	at := time.Unix(1700000000, 0)
	batch := make([]commitlog.Entry, perBatch)
	for i := range batch {
		batch[i] = commitlog.Entry{Term: 1, Data: data[i*entrySize : (i+1)*entrySize], AppendedAt: at}
	}
	return batch
}

func setIndexes(batch []commitlog.Entry, first uint64) {
	for i := range batch {
		batch[i].Index = first + uint64(i)
	}
}

// BenchmarkAppend measures single-writer Append under each sync policy.
// Under every-append each op includes one fsync.
func BenchmarkAppend(b *testing.B) {
	for _, p := range benchPolicies {
		for _, sh := range benchShapes {
			b.Run(fmt.Sprintf("policy=%s/size=%s", p, sh.name), func(b *testing.B) {
				l := benchOpen(b, b.TempDir(), benchOptions(p))
				defer benchClose(b, l)
				batch := benchBatch(sh.entrySize, sh.perBatch)
				b.ReportAllocs()
				b.SetBytes(int64(sh.entrySize * sh.perBatch))
				next := l.LastIndex() + 1
				b.ResetTimer()
				for range b.N {
					setIndexes(batch, next)
					if err := l.Append(batch); err != nil {
						b.Fatalf("Append: %v", err)
					}
					next += uint64(len(batch))
				}
				b.StopTimer()
			})
		}
	}
}

// countingFS counts File.Sync calls on the files the log opens.
type countingFS struct {
	commitlog.FS
	syncs *atomic.Int64
}

func (c countingFS) OpenFile(path string, flag int, perm os.FileMode) (commitlog.File, error) {
	f, err := c.FS.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return countingFile{File: f, syncs: c.syncs}, nil
}

type countingFile struct {
	commitlog.File
	syncs *atomic.Int64
}

func (f countingFile) Sync() error {
	f.syncs.Add(1)
	return f.File.Sync()
}

// Fd keeps sealed index files memory-mapped through the wrapper.
func (f countingFile) Fd() uintptr {
	if fd, ok := f.File.(interface{ Fd() uintptr }); ok {
		return fd.Fd()
	}
	return ^uintptr(0)
}

// BenchmarkGroupCommit measures 1 KiB single-entry Appends under
// SyncEveryAppend from one goroutine and from many (b.RunParallel). It
// reports fsyncs/op: 1 for a single appender, well below 1 when concurrent
// appenders share fsyncs.
//
// Append needs the caller to assign consecutive indexes, so concurrent
// appenders claim LastIndex()+1 and retry on ErrNonContiguous when another
// appender got there first; retries/op reports how often that happens.
func BenchmarkGroupCommit(b *testing.B) {
	const size = 1 << 10
	for _, par := range []int{0, 4, 16} { // 0: one goroutine, no RunParallel
		appenders := 1
		if par > 0 {
			appenders = par * runtime.GOMAXPROCS(0)
		}
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			var syncs, retries atomic.Int64
			o := benchOptions(commitlog.SyncEveryAppend)
			o.FS = countingFS{FS: commitlog.OSFS{}, syncs: &syncs}
			l := benchOpen(b, b.TempDir(), o)
			defer benchClose(b, l)
			b.ReportAllocs()
			b.SetBytes(size)
			syncs.Store(0)
			b.ResetTimer()
			if par == 0 {
				batch := benchBatch(size, 1)
				for range b.N {
					setIndexes(batch, l.LastIndex()+1)
					if err := l.Append(batch); err != nil {
						b.Fatalf("Append: %v", err)
					}
				}
			} else {
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) {
					batch := benchBatch(size, 1)
					for pb.Next() {
						for {
							setIndexes(batch, l.LastIndex()+1)
							err := l.Append(batch)
							if err == nil {
								break
							}
							if !errors.Is(err, commitlog.ErrNonContiguous) {
								b.Errorf("Append: %v", err)
								return
							}
							retries.Add(1)
							runtime.Gosched()
						}
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(syncs.Load())/float64(b.N), "fsyncs/op")
			b.ReportMetric(float64(retries.Load())/float64(b.N), "retries/op")
		})
	}
}

// readLogBytes is the payload written to the log the read benchmarks use:
// 32 MiB of 1 KiB entries in 8 MiB segments, so reads cross sealed
// (memory-mapped index) segments and the active one. It is written without
// fsync and read from the page cache.
const (
	readLogBytes   = 32 << 20
	readEntrySize  = 1 << 10
	readSegment    = 8 << 20
	readRangeBytes = 1 << 20
)

func fillReadLog(b *testing.B) *commitlog.Log {
	b.Helper()
	o := benchOptions(commitlog.SyncNever)
	o.SegmentSize = readSegment
	l := benchOpen(b, b.TempDir(), o)
	batch := benchBatch(readEntrySize, 1024)
	for next := uint64(1); next <= readLogBytes/readEntrySize; next += uint64(len(batch)) {
		setIndexes(batch, next)
		if err := l.Append(batch); err != nil {
			b.Fatalf("Append: %v", err)
		}
	}
	return l
}

// BenchmarkRead measures reads of a pre-filled log from the page cache:
// Read of consecutive indexes (wrapping at the end), ReadRange and
// ReadRangeInto with a 1 MiB budget from consecutive positions, and Read at
// uniformly random indexes.
func BenchmarkRead(b *testing.B) {
	l := fillReadLog(b)
	defer benchClose(b, l)
	first, last := l.FirstIndex(), l.LastIndex()

	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(readEntrySize)
		i := first
		for range b.N {
			if _, err := l.Read(i); err != nil {
				b.Fatalf("Read(%d): %v", i, err)
			}
			if i++; i > last {
				i = first
			}
		}
	})

	b.Run("range=1MiB", func(b *testing.B) {
		// Every full-budget call returns the same number of 1 KiB entries;
		// only the call that reaches the end of the log returns fewer.
		es, err := l.ReadRange(first, readRangeBytes)
		if err != nil {
			b.Fatalf("ReadRange: %v", err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(es) * readEntrySize))
		b.ResetTimer()
		i := first
		var entries int
		for range b.N {
			es, err := l.ReadRange(i, readRangeBytes)
			if err != nil {
				b.Fatalf("ReadRange(%d): %v", i, err)
			}
			entries += len(es)
			if i += uint64(len(es)); i > last {
				i = first
			}
		}
		b.ReportMetric(float64(entries)/float64(b.N), "entries/op")
	})

	b.Run("rangeInto=1MiB", func(b *testing.B) {
		// ReadRangeInto reuses the entries and the frame buffer, so after
		// the first call it allocates nothing.
		es, buf, err := l.ReadRangeInto(nil, nil, first, readRangeBytes)
		if err != nil {
			b.Fatalf("ReadRangeInto: %v", err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(es) * readEntrySize))
		b.ResetTimer()
		i := first
		for range b.N {
			if es, buf, err = l.ReadRangeInto(es, buf, i, readRangeBytes); err != nil {
				b.Fatalf("ReadRangeInto(%d): %v", i, err)
			}
			if i += uint64(len(es)); i > last {
				i = first
			}
		}
	})

	b.Run("random", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		b.SetBytes(readEntrySize)
		for range b.N {
			i := first + rng.Uint64N(last-first+1)
			if _, err := l.Read(i); err != nil {
				b.Fatalf("Read(%d): %v", i, err)
			}
		}
	})
}

// BenchmarkDurableAppendPrealloc: one small durable append at a time (a
// Raft round of a lightly loaded group), with the segment preallocated
// (fdatasync) and without (every sync an fsync). It reports the process
// CPU per append too: what the sync costs the other brokers on the box.
func BenchmarkDurableAppendPrealloc(b *testing.B) {
	for _, pre := range []int64{0, 16 << 20} {
		for _, size := range []int{1 << 10, 16 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("prealloc=%d/size=%d", pre, size), func(b *testing.B) {
				o := benchOptions(commitlog.SyncEveryAppend)
				o.PreallocBytes = pre
				l := benchOpen(b, b.TempDir(), o)
				defer benchClose(b, l)
				batch := benchBatch(size, 1)
				b.SetBytes(int64(size))
				next := l.LastIndex() + 1
				cpu0 := processCPU()
				b.ResetTimer()
				for range b.N {
					setIndexes(batch, next)
					if err := l.Append(batch); err != nil {
						b.Fatalf("Append: %v", err)
					}
					next++
				}
				b.StopTimer()
				b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
