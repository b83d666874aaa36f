package service

import (
	"context"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// Disk watermark defaults (docs/api.md, "Admission and disk").
const (
	DefaultMinFreeBytes   = 256 << 20 // 256 MiB
	DefaultMinFreePercent = 1.0       // of the file system's size
	diskCheckInterval     = 100 * time.Millisecond
)

// FreeSpace reports the bytes available to the broker and the file
// system's size for dir (syscall.Statfs).
func FreeSpace(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// diskGuard refuses writes that grow the log while the data directory's
// free space is below max(minBytes, minPercent of its size), so that Raft
// and the commit log never meet ENOSPC mid-write. It re-reads the free
// space at most every diskCheckInterval, so the node recovers by itself
// once space returns.
type diskGuard struct {
	dir      string
	minBytes uint64
	minPct   float64
	free     func(string) (uint64, uint64, error)
	clock    func() time.Time
	logger   *slog.Logger

	mu          sync.Mutex
	checked     time.Time
	steppedDown time.Time      // the last hand-over for want of space
	last        *wire.APIError // nil: enough space at the last check
}

func newDiskGuard(c Config) *diskGuard {
	if c.DataDir == "" || (c.MinFreeBytes < 0 && c.MinFreePercent < 0) {
		return nil
	}
	g := &diskGuard{dir: c.DataDir, free: c.freeSpace(), clock: c.Clock, logger: c.Logger}
	if c.MinFreeBytes > 0 {
		g.minBytes = uint64(c.MinFreeBytes)
	}
	if c.MinFreePercent > 0 {
		g.minPct = c.MinFreePercent
	}
	return g
}

// freeSpace is Config.FreeSpace, FreeSpace when unset.
func (c Config) freeSpace() func(string) (uint64, uint64, error) {
	if c.FreeSpace != nil {
		return c.FreeSpace
	}
	return FreeSpace
}

// threshold is the free space below which writes are refused.
func (g *diskGuard) threshold(total uint64) uint64 {
	return max(g.minBytes, uint64(float64(total)*g.minPct/100))
}

func (g *diskGuard) check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock()
	if !g.checked.IsZero() && now.Sub(g.checked) >= 0 && now.Sub(g.checked) < diskCheckInterval {
		if g.last == nil {
			return nil
		}
		return g.last
	}
	g.checked = now
	free, total, err := g.free(g.dir)
	if err != nil {
		// Free space unknown: do not refuse writes on that alone; the
		// commit log reports real write failures itself.
		g.logger.Warn("cannot read the data directory's free space", "dir", g.dir, "err", err)
		g.last = nil
		return nil
	}
	need := g.threshold(total)
	if free >= need {
		if g.last != nil {
			g.logger.Info("disk space recovered: writes accepted again", "dir", g.dir, "free", free, "watermark", need)
		}
		g.last = nil
		return nil
	}
	if g.last == nil {
		g.logger.Warn("disk space below the watermark: refusing writes that grow the log", "dir", g.dir, "free", free, "watermark", need)
	}
	e := Errorf(wire.CodeDiskFull, "free space in the data directory (%d bytes) is below the watermark of %d bytes; the request was not applied", free, need)
	e.Retriable = true
	g.last = e
	return e
}

// RequireDiskSpace is nil when the data directory has room for writes
// that grow the log, DISK_FULL (retriable, not applied) otherwise. The
// HTTP front-end calls it on the leader before a produce, a topic
// creation, a producer id or an offset commit is proposed.
func (s *Service) RequireDiskSpace() error {
	if s.disk == nil {
		return nil
	}
	err := s.disk.check()
	if err != nil && s.node.IsLeader() {
		s.stepDownForDisk()
	}
	return err
}

// diskStepDownEvery spaces the leadership hand-overs of a leader short of
// disk space (when every node is short, leadership would otherwise move
// round and round).
const diskStepDownEvery = 5 * time.Second

// stepDownForDisk hands leadership to a follower, at most once every
// diskStepDownEvery: a leader below its watermark refuses writes, while a
// follower with room can take them, so the group stays writable (as it
// does when a leader's disk fails outright, docs/design.md 2.8).
func (s *Service) stepDownForDisk() {
	now := s.cfg.Clock()
	s.disk.mu.Lock()
	due := s.disk.steppedDown.IsZero() || now.Sub(s.disk.steppedDown) >= diskStepDownEvery
	if due {
		s.disk.steppedDown = now
	}
	s.disk.mu.Unlock()
	if !due {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		go func() { // the service's stop ends the hand-over too; ends with ctx
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		l, err := s.TransferLeadership(ctx, "")
		s.logger.Warn("disk space below the watermark: handed leadership over", "to", l.ID, "err", err)
	}()
}

// DiskUsage is the data directory's file system as the disk watermark sees
// it: free bytes (available to the broker), size, and the free-space
// watermark below which writes are refused (0: no watermark).
type DiskUsage struct {
	Free, Total, Watermark uint64
}

// DiskUsage reads the data directory's free space now; ok is false when
// the service has no data directory or the file system cannot be read.
func (s *Service) DiskUsage() (DiskUsage, bool) {
	if s.cfg.DataDir == "" {
		return DiskUsage{}, false
	}
	free, total, err := s.cfg.freeSpace()(s.cfg.DataDir)
	if err != nil {
		return DiskUsage{}, false
	}
	u := DiskUsage{Free: free, Total: total}
	if s.disk != nil {
		u.Watermark = s.disk.threshold(total)
	}
	return u, true
}
