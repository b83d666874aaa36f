package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ledgermq/ledgermq/internal/stats"
)

const (
	fsyncChunk  = 100 << 10 // bytes per write of the raw baseline
	maxBaseline = 10 * time.Second
)

// Fsync is the raw disk baseline: one goroutine appends 100 KiB with
// write(2) and calls fsync after every write, to a file in the cluster's
// directory (the same file system as the nodes' data), while the cluster
// is idle. Every payload byte a 3-node group acknowledges is on that disk
// three times, so publishMBps ÷ MBps shows how close the system gets.
type Fsync struct {
	Seconds float64       `json:"seconds"`
	Writes  int64         `json:"writes"`
	MBps    float64       `json:"mbps"`    // MB = 10^6 bytes
	Latency stats.Summary `json:"latency"` // one write+fsync
}

// fsyncBaseline appends fsyncChunk bytes to a new file in dir, each write
// followed by fsync, for d.
func fsyncBaseline(ctx context.Context, dir string, d time.Duration) (res *Fsync, err error) {
	path := filepath.Join(dir, "fsync-baseline.dat")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("fsync baseline: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close(), os.Remove(path)) }()
	chunk := bytes.Repeat([]byte{0x5a}, fsyncChunk)
	h := stats.New()
	start := time.Now()
	var writes int64
	for now := start; now.Before(start.Add(d)); writes++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := f.Write(chunk); err != nil {
			return nil, fmt.Errorf("fsync baseline: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("fsync baseline: %w", err)
		}
		t := time.Now()
		h.Record(t.Sub(now))
		now = t
	}
	secs := time.Since(start).Seconds()
	return &Fsync{Seconds: secs, Writes: writes, MBps: float64(writes*fsyncChunk) / secs / 1e6, Latency: h.Summary()}, nil
}
