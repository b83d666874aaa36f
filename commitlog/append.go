package commitlog

import (
	"fmt"
)

// Append writes entries, which must have consecutive indexes starting at
// LastIndex()+1, at the end of the log. Under SyncEveryAppend it returns
// once they are durable. It writes the whole batch with one write per
// segment it touches (see writeBatch). On error nothing of the batch
// remains in the log.
//
// The log does not retain entries: the caller may reuse them once Append
// returns.
func (l *Log) Append(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	l.wmu.Lock()
	seq, err := l.appendLocked(entries)
	l.wmu.Unlock()
	if err != nil {
		return err
	}
	if l.opts.Sync == SyncEveryAppend {
		return l.syncer.waitDurable(seq)
	}
	return nil
}

func (l *Log) appendLocked(entries []Entry) (uint64, error) {
	if err := l.checkAppend(entries); err != nil {
		return 0, err
	}
	next := l.last.Load() + 1
	act := l.active()
	b := &l.batch
	b.prepare(entries, act.f, act.size)
	defer b.release()
	for i := range entries {
		e := &entries[i]
		if act.count+uint64(len(b.pos)) > 0 && act.size+b.size+frameSize(e) > l.opts.SegmentSize {
			var err error
			if _, err = l.writeOut(act, b); err != nil {
				return 0, l.undo(next, err)
			}
			if act, err = l.roll(); err != nil {
				return 0, l.undo(next, err)
			}
			b.begin(act.size)
		}
		b.add(e)
	}
	seq, err := l.writeOut(act, b)
	if err != nil {
		return 0, l.undo(next, err)
	}
	return seq, nil
}

// checkAppend checks that the log takes writes and that entries continue it.
func (l *Log) checkAppend(entries []Entry) error {
	if l.closed {
		return ErrClosed
	}
	if err := l.syncer.failure(); err != nil {
		return err
	}
	next := l.last.Load() + 1
	for i := range entries {
		e := &entries[i]
		if e.Index != next+uint64(i) {
			return fmt.Errorf("%w: entry %d of the batch has index %d, want %d", ErrNonContiguous, i, e.Index, next+uint64(i))
		}
		if n := len(e.Data) + len(e.Extensions); n > l.opts.MaxEntrySize {
			return fmt.Errorf("%w: entry %d is %d bytes, the maximum is %d", ErrEntryTooLarge, e.Index, n, l.opts.MaxEntrySize)
		}
	}
	return nil
}

// undo removes the part of a failed batch that was already written, so a
// failed Append leaves nothing behind. If that fails too, the log fails.
func (l *Log) undo(next uint64, cause error) error {
	if l.last.Load() >= next {
		if err := l.truncateAfterLocked(next - 1); err != nil {
			return l.syncer.fail(fmt.Errorf("%w (and undoing the partial batch: %w)", cause, err))
		}
	}
	return cause
}

// writeOut writes b at the end of s and publishes its frames to readers.
// It returns the write's sequence number for group commit.
func (l *Log) writeOut(s *segment, b *writeBatch) (uint64, error) {
	end := s.size + b.size
	// A write past the zeroed length must not meet the zeroer's zeros
	// (prealloc.go); one below it runs beside the zeroer.
	crossing := end > s.alloc.Load()
	if crossing {
		l.zero.mu.Lock()
	}
	if err := writeBuffers(s.f, b.buffers(), s.size); err != nil {
		if !crossing {
			l.zero.mu.Lock()
		}
		defer l.zero.mu.Unlock()
		// The syncer must not publish a durable length read before the
		// cut (syncFile).
		l.syncer.mu.Lock()
		defer l.syncer.mu.Unlock()
		werr := fmt.Errorf("commitlog: write %s: %w", s.path, err)
		// The file may hold part of the write past s.size; cut it so the
		// next write lands after the last complete frame.
		if terr := s.f.Truncate(s.size); terr != nil {
			return 0, l.syncer.fail(fmt.Errorf("%w (and cutting it back: %w)", werr, terr))
		}
		// The cut is not durable yet: the next sync is an fsync.
		s.alloc.Store(s.size)
		s.allocDurable.Store(min(s.allocDurable.Load(), s.size))
		l.zero.replaceLocked(s)
		return 0, werr
	}
	if crossing {
		if end > s.alloc.Load() {
			s.alloc.Store(end)
		}
		l.zero.mu.Unlock()
	}
	if l.zero.due(s, end) {
		l.zero.signal()
	}
	l.mu.Lock()
	s.pos = append(s.pos, b.pos...)
	s.count += uint64(len(b.pos))
	s.size += b.size
	if b.newest > s.newest {
		s.newest = b.newest
	}
	l.written++
	seq := l.written
	l.last.Store(s.lastIndex())
	l.mu.Unlock()
	return seq, nil
}

// roll seals the active segment (fsync, index file) and starts a new one.
func (l *Log) roll() (*segment, error) {
	old := l.active()
	l.zero.mu.Lock()
	defer l.zero.mu.Unlock()
	l.zero.replaceLocked(nil)
	if old.alloc.Load() > old.size {
		// A sealed segment ends at its last frame.
		if err := old.f.Truncate(old.size); err != nil {
			return nil, l.syncer.fail(fmt.Errorf("cut the preallocated tail of %s before sealing: %w", old.path, err))
		}
	}
	if err := old.f.Sync(); err != nil {
		return nil, l.syncer.fail(fmt.Errorf("fsync %s before sealing: %w", old.path, err))
	}
	old.setLength(old.size)
	l.mu.RLock()
	sealedSeq := l.written
	l.mu.RUnlock()
	l.syncer.markSynced(sealedSeq)
	mapped, err := writeIndexFile(l.fs, old)
	if err != nil {
		return nil, fmt.Errorf("commitlog: seal %s: %w", old.path, err)
	}
	s, err := createSegment(l.fs, l.dir, old.lastIndex()+1)
	if err != nil {
		munmap(mapped)
		return nil, fmt.Errorf("commitlog: roll: %w", err)
	}
	l.mu.Lock()
	old.sealed = true
	if mapped != nil {
		old.mapped, old.pos = mapped, nil
	}
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.zero.replaceLocked(s)
	l.zero.signal()
	return s, nil
}
