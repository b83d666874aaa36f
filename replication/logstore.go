package replication

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/commitlog"
)

// LogStore is hashicorp/raft's LogStore over a commitlog.Log: one Raft
// entry is one commit-log entry, so each message batch is written to disk
// once per node. It is safe for concurrent use.
//
// Contract details raft relies on:
//   - GetLog outside [FirstIndex, LastIndex] returns raft.ErrLogNotFound
//     itself, unwrapped (raft compares with ==).
//   - StoreLogs is durable on return under the durable (every-append) sync
//     policy, and refuses to leave a gap: ErrLogGap when the batch does
//     not continue the log, commitlog.ErrNonContiguous for a hole inside
//     the batch; nothing is written either way.
//   - DeleteRange that reaches the last index is a tail truncation and is
//     durable. DeleteRange of a head range is compaction, which LedgerMQ
//     does not do: messages are deleted by retention, not by snapshots. It
//     is ignored (the Node also configures raft so that it never asks).
//
// A disk failure is sticky here even where the commit log would go on:
// the first StoreLogs or truncation that fails for a reason other than the
// contract errors above (an fsync EIO, a write ENOSPC, any I/O error)
// latches the store, and every later mutation fails with ErrDiskFailed
// without touching the log. After a failed fsync nothing written since the
// last good one can be trusted, and a node that kept retrying a full or
// dying disk would keep winning elections it cannot serve. Failure reports
// the latched error; the Node stops raft on it (see Node.DiskError).
type LogStore struct {
	log    *commitlog.Log
	logger *slog.Logger
	pool   sync.Pool // *[]commitlog.Entry scratch for StoreLogs

	failed atomic.Pointer[error] // the latched disk failure
	onFail func(error)           // set by the Node before raft starts

	cache *entryCache // the entries stored last (entrycache.go)
}

// NewLogStore wraps an open commit log. The caller keeps ownership of log
// and closes it after raft has shut down.
func NewLogStore(log *commitlog.Log, logger *slog.Logger) *LogStore {
	if logger == nil {
		logger = slog.Default()
	}
	return &LogStore{log: log, logger: logger, cache: newEntryCache()}
}

// Failure returns the disk failure that latched the store (it wraps
// ErrDiskFailed), nil while it is healthy.
func (s *LogStore) Failure() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail latches err if it is a disk failure and returns the error to hand
// to raft.
func (s *LogStore) fail(err error) error {
	switch {
	case errors.Is(err, ErrLogGap), errors.Is(err, commitlog.ErrNonContiguous),
		errors.Is(err, commitlog.ErrEntryTooLarge), errors.Is(err, commitlog.ErrBeforeFirst),
		errors.Is(err, commitlog.ErrClosed), errors.Is(err, ErrDiskFailed):
		return err
	}
	werr := fmt.Errorf("%w: %w", ErrDiskFailed, err)
	if s.failed.CompareAndSwap(nil, &werr) {
		s.logger.Error("commit log failed; this node refuses log writes until it is restarted", "err", err)
		if s.onFail != nil {
			s.onFail(werr)
		}
	}
	return werr
}

// FirstIndex implements raft.LogStore: 0 when the log holds no entries.
func (s *LogStore) FirstIndex() (uint64, error) {
	first, last := s.log.FirstIndex(), s.log.LastIndex()
	if last < first {
		return 0, nil
	}
	return first, nil
}

// LastIndex implements raft.LogStore: 0 when the log holds no entries.
func (s *LogStore) LastIndex() (uint64, error) {
	first, last := s.log.FirstIndex(), s.log.LastIndex()
	if last < first {
		return 0, nil
	}
	return last, nil
}

// GetLog implements raft.LogStore.
func (s *LogStore) GetLog(index uint64, out *raft.Log) error {
	// The range first: an entry retention deleted is not found, cached or
	// not.
	if index < s.log.FirstIndex() || index > s.log.LastIndex() {
		return raft.ErrLogNotFound
	}
	if s.cache.get(index, s.log.Generation(), out) {
		return nil
	}
	e, err := s.log.Read(index)
	if err != nil {
		if errors.Is(err, commitlog.ErrBeforeFirst) || errors.Is(err, commitlog.ErrAfterLast) {
			return raft.ErrLogNotFound
		}
		return fmt.Errorf("replication: get log %d: %w", index, err)
	}
	entryToLog(&e, out)
	return nil
}

// StoreLog implements raft.LogStore.
func (s *LogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	if err := s.Failure(); err != nil {
		return fmt.Errorf("replication: store logs %d..%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
	}
	if next := s.log.LastIndex() + 1; logs[0].Index != next {
		return fmt.Errorf("%w: storing entries from %d but the log continues at %d", ErrLogGap, logs[0].Index, next)
	}
	bp, _ := s.pool.Get().(*[]commitlog.Entry)
	if bp == nil {
		bp = new([]commitlog.Entry)
	}
	batch := (*bp)[:0]
	for _, l := range logs {
		batch = append(batch, commitlog.Entry{
			Index:      l.Index,
			Term:       l.Term,
			Type:       uint8(l.Type),
			Data:       l.Data,
			Extensions: l.Extensions,
			AppendedAt: l.AppendedAt,
		})
	}
	gen := s.log.Generation()
	err := s.log.Append(batch)
	clear(batch) // drop references to raft's buffers
	*bp = batch[:0]
	s.pool.Put(bp)
	if err != nil {
		return fmt.Errorf("replication: store logs %d..%d: %w", logs[0].Index, logs[len(logs)-1].Index, s.fail(err))
	}
	s.cache.add(logs, gen)
	return nil
}

// DeleteRange implements raft.LogStore; see the type's comment.
func (s *LogStore) DeleteRange(min, max uint64) error {
	first, last := s.log.FirstIndex(), s.log.LastIndex()
	switch {
	case min > max || last < first:
		return nil
	case max >= last && min > first:
		if err := s.Failure(); err != nil {
			return fmt.Errorf("replication: truncate log after %d: %w", min-1, err)
		}
		if err := s.log.TruncateAfter(min - 1); err != nil {
			return fmt.Errorf("replication: truncate log after %d: %w", min-1, s.fail(err))
		}
		return nil
	case min <= first && max < last:
		s.logger.Debug("ignoring log compaction; retention deletes entries", "from", min, "to", max)
		return nil
	case min <= first && max >= last:
		// Raft deletes the whole log only after restoring a user snapshot
		// into a monotonic store, which this store does not claim to be;
		// or a follower's entire log conflicts with the leader's. Both
		// mean the log starts over after the current first index.
		if err := s.Failure(); err != nil {
			return fmt.Errorf("replication: truncate whole log: %w", err)
		}
		if err := s.log.TruncateAfter(first - 1); err != nil {
			return fmt.Errorf("replication: truncate whole log: %w", s.fail(err))
		}
		return nil
	}
	return fmt.Errorf("replication: delete range %d..%d is inside the log [%d, %d]: %w", min, max, first, last, ErrLogGap)
}

func entryToLog(e *commitlog.Entry, out *raft.Log) {
	out.Index = e.Index
	out.Term = e.Term
	out.Type = raft.LogType(e.Type)
	out.Data = e.Data
	out.Extensions = e.Extensions
	out.AppendedAt = e.AppendedAt
}
