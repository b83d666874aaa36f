package commitlog

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Preallocation (issue 13). A durable append that grows its file must also
// commit the new length and the newly allocated blocks to the file
// system's journal; on ext4 that is most of what a small durable append
// costs. Measured on the development VM (write + fsync, one at a time):
// 1 KiB 170–230 µs (100–120 µs CPU), 64 KiB 450–530 µs (350–430 µs CPU);
// the same writes into a range that was written with zeros and made
// durable beforehand: 115–140 µs (60–80 µs CPU) and 135–180 µs (85–115 µs
// CPU). fallocate(2) does not get there: its blocks are "unwritten" and
// every first write to one is again a journalled change (64 KiB: 480–550
// µs).
//
// So the log keeps the active segment's file written with zeros ahead of
// its appends, while its syncs are small (zeroMaxSyncBytes): a goroutine (the zeroer) writes zeros in small pieces,
// pushes each out to the disk as it goes (sync_file_range, where there is
// one, so that an append's fdatasync does not inherit megabytes of dirty
// zeros), and fsyncs once the range is filled; from then on appends inside
// it are made durable with fdatasync, which has no metadata to commit.
//
// Invariants:
//   - A segment's bytes past its last frame (s.size) are zeros or the torn
//     tail of an unfinished write. Recovery reads a run of zeros as no
//     frame, so a zeroed tail is the end of the log and is cut, as a torn
//     tail is (segment.go).
//   - s.alloc is the file's length (>= s.size once a write is done): data
//     is written below it without the zeroer's lock, and only with it held
//     when a write goes past it. The zeroer writes only at s.alloc, with
//     the lock held, so zeros never overwrite data.
//   - s.allocDurable is the length a full fsync has made durable; data
//     below it is made durable by fdatasync alone.
//   - A sealed segment ends exactly at its last frame: roll, a clean Close,
//     truncation and recovery cut the zeros off.
//   - zeroer.epoch changes (under zeroer.mu) whenever the filled segment's
//     file is cut or replaced; the zeroer checks it before trusting what it
//     wrote.

// datasyncer is an optional interface of File: fdatasync(2).
type datasyncer interface{ Datasync() error }

// rangeSyncer is an optional interface of File: start writing back
// [off, off+n) and wait for it (sync_file_range(2)), data only.
type rangeSyncer interface{ SyncRange(off, n int64) error }

// zeroPiece is how much the zeroer writes at once (and pushes to disk
// before the next piece).
const zeroPiece = 256 << 10

// zeroMaxSyncBytes: the zeroer works only while the syncs make, on
// average, at most this many bytes durable each. Zeros cost a second
// write of every byte (about 2.3 ns of CPU per byte here, from the
// profiles); what they save is per sync (the journal commit of a growing
// file: 40–50 µs of CPU and 80–100 µs of waiting), so past ~20 KB per sync
// they cost more CPU than they save, and past 64 KiB the waiting they save
// no longer pays for it either. Measured: at max rate (syncs of hundreds
// of KiB) zeroing cost 6–7 % of the throughput; at 20,000 msgs/s (syncs of
// ~20 KB) it cut the publish p50 by a third for the same CPU.
const zeroMaxSyncBytes = 64 << 10

type zeroer struct {
	l     *Log
	mu    sync.Mutex // held while zeros are written; lock order: wmu, mu, syncer.mu, Log.mu
	seg   *segment   // the segment to fill, nil when stopped
	epoch uint64
	zeros []byte

	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	lastWarn time.Time // owned by the zeroer goroutine

	// avgSync is a moving average of the bytes each sync made durable;
	// lastSeg and lastEnd are where the previous sync ended. Written by
	// the syncer (which holds syncer.mu), read by appends and the zeroer.
	avgSync atomic.Int64
	lastSeg *segment
	lastEnd int64
}

// synced records that a sync made s durable up to dataEnd; called by the
// syncer with syncer.mu held.
func (z *zeroer) synced(s *segment, dataEnd int64) {
	from := int64(segmentHeaderSize)
	if s == z.lastSeg {
		from = z.lastEnd
	}
	z.lastSeg, z.lastEnd = s, dataEnd
	if n := dataEnd - from; n > 0 {
		avg := z.avgSync.Load()
		z.avgSync.Store(avg + (n-avg)/8)
	}
}

// worthIt reports whether the syncs are small enough for zeros to pay.
func (z *zeroer) worthIt() bool { return z.avgSync.Load() <= zeroMaxSyncBytes }

// start runs the zeroer for the active segment, if preallocation is on.
func (z *zeroer) start(l *Log) {
	z.l = l
	if l.opts.PreallocBytes <= 0 {
		return
	}
	z.zeros = make([]byte, zeroPiece)
	z.seg = l.active()
	z.wake, z.stop, z.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go z.run()
	z.signal()
}

// halt stops the zeroer and waits for it.
func (z *zeroer) halt() {
	if z.stop == nil {
		return
	}
	close(z.stop)
	<-z.done
	z.stop = nil
	z.mu.Lock()
	z.seg = nil
	z.epoch++
	z.mu.Unlock()
}

func (z *zeroer) signal() {
	if z.wake == nil {
		return
	}
	select {
	case z.wake <- struct{}{}:
	default:
	}
}

// replace makes s the segment to fill (nil: none): a roll, truncation or
// reset changed the active segment or cut its file. z.mu must be held.
func (z *zeroer) replaceLocked(s *segment) {
	z.epoch++
	if z.stop != nil {
		z.seg = s
	}
}

func (z *zeroer) run() {
	defer close(z.done)
	for {
		select {
		case <-z.stop:
			return
		case <-z.wake:
		}
		z.fill()
	}
}

// due reports whether the zeroer should run: the durable zeroed range
// ends less than half of PreallocBytes past end.
func (z *zeroer) due(s *segment, end int64) bool {
	return z.l.opts.PreallocBytes > 0 && s.allocDurable.Load()-end < z.l.opts.PreallocBytes/2 &&
		s.allocDurable.Load() < z.l.opts.SegmentSize && z.worthIt()
}

// fill writes zeros from the segment's length up to PreallocBytes past its
// last frame (never past the segment size), then fsyncs and publishes the
// new durable length.
//
// It writes and syncs through a descriptor of its own: Linux reports a
// write-back error once per open file, so a sync on the appends'
// descriptor could consume the error of their data and let the next
// fdatasync of an append succeed. A sync error on its own descriptor is a
// failure of the disk under the log, and fails the log as the syncer's
// would.
func (z *zeroer) fill() {
	l := z.l
	z.mu.Lock()
	s, epoch := z.seg, z.epoch
	z.mu.Unlock()
	if s == nil || !z.worthIt() {
		return
	}
	f, err := l.fs.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		z.warnf(s, epoch, "open", err) // removed by a truncation or reset, say
		return
	}
	defer f.Close()
	l.mu.RLock()
	target := min(s.size+l.opts.PreallocBytes, l.opts.SegmentSize)
	l.mu.RUnlock()
	for {
		select {
		case <-z.stop:
			return
		default:
		}
		z.mu.Lock()
		if z.epoch != epoch {
			z.mu.Unlock()
			return
		}
		from := s.alloc.Load()
		if from >= target {
			z.mu.Unlock()
			break
		}
		n := min(int64(zeroPiece), target-from)
		written, err := f.WriteAt(z.zeros[:n], from)
		if written > 0 {
			// Even a short write grew the file: roll, Close and
			// truncation cut what lies past the last frame by alloc.
			s.alloc.Store(from + int64(written))
		}
		z.mu.Unlock()
		if err != nil {
			z.warnf(s, epoch, "write zeros", err) // ENOSPC, say: appends grow the file themselves
			return
		}
		if rs, ok := f.(rangeSyncer); ok {
			if err := rs.SyncRange(from, n); err != nil {
				z.fail(s, err)
				return
			}
		}
	}
	// The fsync makes the new length durable. It runs without z.mu, so
	// appends go on meanwhile; a cut of the file in between changes the
	// epoch and the result is not used.
	if err := f.Sync(); err != nil {
		z.fail(s, err)
		return
	}
	z.mu.Lock()
	if z.epoch == epoch && s.alloc.Load() >= target && target > s.allocDurable.Load() {
		s.allocDurable.Store(target)
	}
	z.mu.Unlock()
}

// fail makes a sync failure of the zeroer's the log's failure.
func (z *zeroer) fail(s *segment, err error) {
	z.l.syncer.fail(fmt.Errorf("sync zeros ahead of %s: %w", s.path, err))
}

// warnf reports a zeroing problem that is not the log's failure (the
// appends' own writes and syncs decide that; without zeros ahead they grow
// the file and fsync), unless the segment was cut or replaced meanwhile.
// Each kind of problem is logged once a minute at most.
func (z *zeroer) warnf(s *segment, epoch uint64, what string, err error) {
	z.mu.Lock()
	stale := z.epoch != epoch
	z.mu.Unlock()
	if stale {
		return
	}
	if now := time.Now(); now.Sub(z.lastWarn) >= time.Minute {
		z.lastWarn = now
		z.l.logger.Warn("commitlog: zeros ahead of the appends: "+what+" failed; appends grow the file and fsync", "file", s.path, "err", err)
	}
}

// syncFile makes the writes to s up to dataEnd durable: fdatasync when they
// lie inside the durable zeroed length, fsync otherwise (which then makes
// the whole current length durable).
func syncFile(s *segment, dataEnd int64) error {
	if ds, ok := s.f.(datasyncer); ok && dataEnd <= s.allocDurable.Load() {
		return ds.Datasync()
	}
	alloc := s.alloc.Load()
	if err := s.f.Sync(); err != nil {
		return err
	}
	if alloc > s.allocDurable.Load() {
		s.allocDurable.Store(alloc)
	}
	return nil
}

// setLength records that s's file is now length bytes long and durable
// (after a cut and fsync, or when created or opened).
func (s *segment) setLength(length int64) {
	s.alloc.Store(length)
	s.allocDurable.Store(length)
}
