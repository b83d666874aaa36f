package commitlog

import (
	"fmt"
)

// Append writes entries, which must have consecutive indexes starting at
// LastIndex()+1, at the end of the log. Under SyncEveryAppend it returns
// once they are durable. It writes the whole batch with one write per
// segment it touches. On error nothing of the batch remains in the log.
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

// maxRetainedBuffer bounds the encode buffer kept between appends.
const maxRetainedBuffer = 4 << 20

func (l *Log) appendLocked(entries []Entry) (uint64, error) {
	if l.closed {
		return 0, ErrClosed
	}
	if err := l.syncer.failure(); err != nil {
		return 0, err
	}
	next := l.last.Load() + 1
	for i := range entries {
		e := &entries[i]
		if e.Index != next+uint64(i) {
			return 0, fmt.Errorf("%w: entry %d of the batch has index %d, want %d", ErrNonContiguous, i, e.Index, next+uint64(i))
		}
		if n := len(e.Data) + len(e.Extensions); n > l.opts.MaxEntrySize {
			return 0, fmt.Errorf("%w: entry %d is %d bytes, the maximum is %d", ErrEntryTooLarge, e.Index, n, l.opts.MaxEntrySize)
		}
	}
	act := l.active()
	buf := l.buf[:0]
	var pos []int64
	var newest int64
	var seq uint64
	for i := range entries {
		e := &entries[i]
		fsz := frameSize(e)
		if act.count+uint64(len(pos)) > 0 && act.size+int64(len(buf))+fsz > l.opts.SegmentSize {
			var err error
			if seq, err = l.writeOut(act, buf, pos, newest); err != nil {
				return 0, l.undo(next, err)
			}
			buf, pos, newest = buf[:0], pos[:0], 0
			if act, err = l.roll(); err != nil {
				return 0, l.undo(next, err)
			}
		}
		pos = append(pos, act.size+int64(len(buf)))
		buf = appendFrame(buf, e)
		if ns := nanos(e.AppendedAt); ns > newest {
			newest = ns
		}
	}
	seq, err := l.writeOut(act, buf, pos, newest)
	if err != nil {
		return 0, l.undo(next, err)
	}
	if cap(buf) <= maxRetainedBuffer {
		l.buf = buf[:0]
	} else {
		l.buf = nil
	}
	return seq, nil
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

// writeOut writes encoded frames at the end of s and publishes them to
// readers. It returns the write's sequence number for group commit.
func (l *Log) writeOut(s *segment, buf []byte, pos []int64, newest int64) (uint64, error) {
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		werr := fmt.Errorf("commitlog: write %s: %w", s.path, err)
		// The file may hold part of the write past s.size; cut it so the
		// next write lands after the last complete frame.
		if terr := s.f.Truncate(s.size); terr != nil {
			return 0, l.syncer.fail(fmt.Errorf("%w (and cutting it back: %w)", werr, terr))
		}
		return 0, werr
	}
	l.mu.Lock()
	s.pos = append(s.pos, pos...)
	s.count += uint64(len(pos))
	s.size += int64(len(buf))
	if newest > s.newest {
		s.newest = newest
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
	if err := old.f.Sync(); err != nil {
		return nil, l.syncer.fail(fmt.Errorf("fsync %s before sealing: %w", old.path, err))
	}
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
	return s, nil
}
