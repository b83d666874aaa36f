package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"
)

// TruncateAfter removes every entry with an index above index, durably:
// when it returns, a crash cannot bring them back. index may be
// FirstIndex()-1 to empty the log; below that it fails with ErrBeforeFirst.
// Truncating at or past LastIndex does nothing.
func (l *Log) TruncateAfter(index uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.syncer.failure(); err != nil {
		return err
	}
	if index >= l.last.Load() {
		return nil
	}
	if first := l.first.Load(); index+1 < first {
		return fmt.Errorf("%w: cannot truncate after %d, the first index is %d", ErrBeforeFirst, index, first)
	}
	l.gen.Add(1)
	if err := l.truncateAfterLocked(index); err != nil {
		return l.syncer.fail(err)
	}
	return nil
}

// truncateAfterLocked removes later segments newest first, so that a crash
// part way leaves a contiguous log, then cuts the segment holding index.
func (l *Log) truncateAfterLocked(index uint64) error {
	l.zero.mu.Lock()
	defer l.zero.mu.Unlock()
	l.zero.replaceLocked(nil)
	l.syncer.mu.Lock()
	defer l.syncer.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := len(l.segs)
	for keep > 1 && l.segs[keep-1].base > index {
		keep--
	}
	for i := len(l.segs) - 1; i >= keep; i-- {
		if err := l.removeFiles(l.segs[i]); err != nil {
			l.segs = l.segs[:i+1]
			return fmt.Errorf("commitlog: truncate after %d: %w", index, err)
		}
		l.segs = l.segs[:i]
		l.last.Store(l.active().lastIndex())
	}
	s := l.active()
	if s.sealed {
		if err := s.unseal(l.fs); err != nil {
			return fmt.Errorf("commitlog: truncate after %d: %w", index, err)
		}
	}
	count := index + 1 - s.base
	if count < s.count {
		size := s.position(count)
		if err := s.f.Truncate(size); err != nil {
			return fmt.Errorf("commitlog: truncate %s: %w", s.path, err)
		}
		s.pos = s.pos[:count]
		s.count = count
		s.size = size
		s.alloc.Store(size)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("commitlog: sync %s after truncation: %w", s.path, err)
	}
	s.allocDurable.Store(s.alloc.Load())
	l.zero.replaceLocked(s)
	l.zero.signal()
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("commitlog: truncate after %d: %w", index, err)
	}
	l.last.Store(s.lastIndex())
	return nil
}

// DeleteBefore deletes, oldest first, every sealed segment whose entries
// all have indexes below index, and returns how many it deleted. It never
// deletes the active segment, so entries below index may remain:
// FirstIndex says where the log now starts.
func (l *Log) DeleteBefore(index uint64) (int, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	l.syncer.mu.Lock()
	defer l.syncer.mu.Unlock()
	l.mu.Lock()
	n := 0
	for n < len(l.segs)-1 && l.segs[n].lastIndex() < index {
		n++
	}
	victims := append([]*segment(nil), l.segs[:n]...)
	l.segs = append(l.segs[:0:0], l.segs[n:]...)
	l.first.Store(l.segs[0].base)
	l.mu.Unlock()
	for i, s := range victims {
		if err := l.removeFiles(s); err != nil {
			return i, fmt.Errorf("commitlog: delete before %d: %w", index, err)
		}
	}
	if n > 0 {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return n, fmt.Errorf("commitlog: delete before %d: %w", index, err)
		}
	}
	return n, nil
}

// RetentionIndex returns the index below which Options.Retention allows
// deletion as of now: DeleteBefore(RetentionIndex(now)) applies the policy.
// Segments go oldest first while the log exceeds Retention.MaxBytes or the
// segment's newest entry is older than Retention.MaxAge; the first segment
// that is neither stops the walk, and the active segment is never eligible.
// Entries without an AppendedAt time never expire by age.
func (l *Log) RetentionIndex(now time.Time) uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0
	}
	r := l.opts.Retention
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	cut := l.first.Load()
	for _, s := range l.segs[:len(l.segs)-1] {
		over := r.MaxBytes > 0 && total > r.MaxBytes
		old := r.MaxAge > 0 && s.newest != 0 && now.Sub(time.Unix(0, s.newest)) > r.MaxAge
		if !over && !old {
			break
		}
		total -= s.size
		cut = s.lastIndex() + 1
	}
	return cut
}

// Reset deletes every entry and makes next the index of the next Append
// (FirstIndex() == next, LastIndex() == next-1). A replica uses it to start
// over from a snapshot. It is crash-safe: a marker file written first makes
// Open finish an interrupted Reset.
func (l *Log) Reset(next uint64) error {
	if next == 0 {
		return fmt.Errorf("%w: reset to index 0", ErrInvalidOptions)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.syncer.failure(); err != nil {
		return err
	}
	l.gen.Add(1)
	if err := l.writeResetMarker(next); err != nil {
		return fmt.Errorf("commitlog: reset: %w", err)
	}
	failed := false
	defer func() {
		if failed { // the log is closed now: stop the zeroer (after z.mu is released)
			l.zero.halt()
		}
	}()
	l.zero.mu.Lock()
	defer l.zero.mu.Unlock()
	l.zero.replaceLocked(nil)
	l.syncer.mu.Lock()
	defer l.syncer.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	for _, s := range l.segs {
		if rerr := l.removeFiles(s); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	l.segs = nil
	if err == nil {
		var s *segment
		if s, err = createSegment(l.fs, l.dir, next); err == nil {
			l.segs = []*segment{s}
			l.zero.replaceLocked(s)
			l.zero.signal()
			err = l.removeResetMarker()
		}
	}
	if err != nil {
		// The marker stays; Open finishes the reset.
		l.closed = true
		failed = true
		return l.syncer.fail(fmt.Errorf("commitlog: reset: %w", err))
	}
	l.first.Store(next)
	l.last.Store(next - 1)
	return nil
}

func (l *Log) resetMarkerPath() string { return filepath.Join(l.dir, resetMarkerName) }

func (l *Log) writeResetMarker(next uint64) error {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint64(b, next)
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	f, err := l.fs.OpenFile(l.resetMarkerPath(), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.WriteAt(b, 0)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write reset marker: %w", err)
	}
	return l.fs.SyncDir(l.dir)
}

func (l *Log) removeResetMarker() error {
	if err := l.fs.Remove(l.resetMarkerPath()); err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}

// readResetMarker reports a pending reset. A marker that does not verify
// was torn while being written, before any segment was touched: it is
// removed and ignored.
func (l *Log) readResetMarker() (uint64, bool, error) {
	f, err := l.fs.OpenFile(l.resetMarkerPath(), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("open reset marker: %w", err)
	}
	b := make([]byte, 12)
	n, _ := f.ReadAt(b, 0)
	f.Close()
	if n == 12 && binary.LittleEndian.Uint32(b[8:]) == crc32.Checksum(b[:8], castagnoli) {
		if next := binary.LittleEndian.Uint64(b); next > 0 {
			return next, true, nil
		}
	}
	l.logger.Warn("commitlog: ignoring torn reset marker", "file", l.resetMarkerPath())
	return 0, false, l.removeResetMarker()
}

func (l *Log) finishReset(bases []uint64, next uint64) error {
	l.logger.Warn("commitlog: finishing an interrupted reset", "dir", l.dir, "next_index", next)
	for _, base := range bases {
		path, idxPath := segmentPaths(l.dir, base)
		if err := l.fs.Remove(path); err != nil {
			return err
		}
		if err := l.fs.Remove(idxPath); err != nil {
			return err
		}
	}
	s, err := createSegment(l.fs, l.dir, next)
	if err != nil {
		return err
	}
	l.segs = []*segment{s}
	l.first.Store(next)
	l.last.Store(next - 1)
	return l.removeResetMarker()
}
