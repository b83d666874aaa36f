package commitlog

import (
	"fmt"
	"sync"
	"time"
)

// syncer implements group commit. Writes are numbered (Log.written); a
// caller that needs write n durable waits until synced >= n. The first
// waiter to find no fsync running becomes the leader of the next one: it
// reads the newest write number and the active segment, fsyncs it, and wakes
// everyone whose write it covered. Writers keep writing while it runs, so
// one fsync covers every write that arrived during the previous one.
//
// A write's bytes are either in the active segment or in a sealed one, and
// a segment is fsynced when it is sealed, so fsyncing the active segment
// makes every write numbered up to the value read with it durable.
type syncer struct {
	l *Log

	// mu is held for the duration of an fsync, so that operations that
	// close segment files (truncation, deletion, Close) do not close a file
	// under it.
	mu sync.Mutex

	smu     sync.Mutex
	cond    *sync.Cond
	syncing bool
	synced  uint64
	err     error // sticky: the first write or sync failure
}

func (s *syncer) init(l *Log) {
	s.l = l
	s.cond = sync.NewCond(&s.smu)
}

// failure returns the sticky error, nil if none.
func (s *syncer) failure() error {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.err
}

// fail records err as the log's sticky failure and wakes all waiters.
func (s *syncer) fail(err error) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.err == nil {
		s.latch(err, "commitlog: log failed; it refuses writes until reopened")
		s.cond.Broadcast()
	}
	return s.err
}

// latch records err as the sticky failure, logs it and tells
// Options.OnFail. smu must be held and no failure recorded yet.
func (s *syncer) latch(err error, msg string) {
	s.err = fmt.Errorf("%w: %w", ErrFailed, err)
	s.l.logger.Error(msg, "dir", s.l.dir, "err", err)
	if f := s.l.opts.OnFail; f != nil {
		f(s.err)
	}
}

// waitDurable returns once write seq is on stable storage.
func (s *syncer) waitDurable(seq uint64) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	for {
		if s.err != nil {
			return s.err
		}
		if s.synced >= seq {
			return nil
		}
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.syncing = true
		s.smu.Unlock()
		target, err := s.syncActive()
		s.smu.Lock()
		s.syncing = false
		if err != nil && s.err == nil {
			s.latch(err, "commitlog: fsync failed; the log refuses writes until reopened")
		}
		if err == nil && target > s.synced {
			s.synced = target
		}
		s.cond.Broadcast()
	}
}

func (s *syncer) syncActive() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.l.mu.RLock()
	if s.l.closed {
		s.l.mu.RUnlock()
		return 0, ErrClosed
	}
	act := s.l.active()
	target, dataEnd := s.l.written, act.size
	s.l.mu.RUnlock()
	if err := syncFile(act, dataEnd); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", act.path, err)
	}
	s.l.zero.synced(act, dataEnd)
	return target, nil
}

// syncNow makes every write published so far durable.
func (s *syncer) syncNow() error {
	s.l.mu.RLock()
	target := s.l.written
	s.l.mu.RUnlock()
	return s.waitDurable(target)
}

// markSynced records that every write up to seq is durable by other means
// (a sealed segment was fsynced, a truncation synced its file).
func (s *syncer) markSynced(seq uint64) {
	s.smu.Lock()
	defer s.smu.Unlock()
	if seq > s.synced {
		s.synced = seq
		s.cond.Broadcast()
	}
}

// intervalSync runs the SyncInterval policy until Close stops it.
func (l *Log) intervalSync() {
	defer close(l.syncDone)
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stopSync:
			return
		case <-t.C:
			if l.syncer.failure() != nil {
				continue
			}
			_ = l.syncer.syncNow() // a failure is sticky and logged by the syncer
		}
	}
}
