package commitlog

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Log is a segmented, append-only log of entries addressed by a dense
// index. It is safe for concurrent use: mutations are serialized, reads run
// concurrently with them and with each other.
type Log struct {
	dir    string
	opts   Options
	fs     FS
	logger *slog.Logger
	unlock func() error

	// wmu serializes mutations. Lock order: wmu, zero.mu, syncer.mu, mu,
	// smu.
	wmu   sync.Mutex
	batch writeBatch // Append's encode state, guarded by wmu

	// mu guards segs, the segments' index state, closed and written.
	mu      sync.RWMutex
	segs    []*segment
	closed  bool
	written uint64 // sequence number of the last published write

	first atomic.Uint64 // index of the first entry (LastIndex+1 if empty)
	last  atomic.Uint64 // index of the last entry (FirstIndex-1 if empty)
	// gen counts the mutations that replace entries (TruncateAfter,
	// Reset); appends and head deletions leave it alone. Caches of entries
	// compare it (Generation).
	gen atomic.Uint64

	syncer syncer

	zero zeroer // fills the active segment with zeros ahead of appends (prealloc.go)

	stopSync chan struct{}
	syncDone chan struct{}
}

// Open opens the log in dir, creating it if needed, and recovers it: see
// the package documentation for the rules. A new log's first entry must have
// index 1 (see Reset for another start).
func Open(dir string, opts Options) (*Log, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, opts: opts, fs: opts.FS, logger: opts.Logger}
	l.syncer.init(l)
	if err := l.fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("commitlog: create %s: %w", dir, err)
	}
	unlock, err := l.fs.Lock(filepath.Join(dir, lockFileName))
	if err != nil {
		return nil, fmt.Errorf("commitlog: open %s: %w", dir, err)
	}
	l.unlock = unlock
	if err := l.load(); err != nil {
		for _, s := range l.segs {
			s.close()
		}
		unlock()
		return nil, fmt.Errorf("commitlog: open %s: %w", dir, err)
	}
	l.zero.start(l)
	if opts.Sync == SyncInterval {
		l.stopSync = make(chan struct{})
		l.syncDone = make(chan struct{})
		go l.intervalSync()
	}
	return l, nil
}

// load reads the directory, finishes an interrupted Reset, and opens every
// segment.
func (l *Log) load() error {
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	next, resetPending, err := l.readResetMarker()
	if err != nil {
		return err
	}
	var bases []uint64
	for _, name := range names {
		base, ok := parseSegmentName(name, segmentFileSuffix)
		if ok {
			bases = append(bases, base)
		} else if base, ok := parseSegmentName(name, indexFileSuffix); ok {
			logPath, _ := segmentPaths(l.dir, base)
			if !contains(names, filepath.Base(logPath)) {
				// An index whose segment was deleted before it was.
				if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
					return err
				}
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	if resetPending {
		return l.finishReset(bases, next)
	}
	if len(bases) == 0 {
		s, err := createSegment(l.fs, l.dir, 1)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
		l.first.Store(1)
		l.last.Store(0)
		return nil
	}
	for i, base := range bases {
		s, err := openSegment(l, base, i == len(bases)-1)
		if err != nil {
			return err
		}
		if i > 0 {
			prev := l.segs[i-1]
			if prev.lastIndex()+1 != base {
				s.close()
				return &CorruptError{File: s.path, Reason: fmt.Sprintf("segment starts at %d but the previous one ends at %d", base, prev.lastIndex())}
			}
			if prev.count == 0 {
				s.close()
				return &CorruptError{File: prev.path, Reason: "empty segment is not the last one"}
			}
		}
		l.segs = append(l.segs, s)
	}
	l.first.Store(l.segs[0].base)
	l.last.Store(l.segs[len(l.segs)-1].lastIndex())
	return nil
}

func parseSegmentName(name, suffix string) (uint64, bool) {
	stem, ok := strings.CutSuffix(name, suffix)
	if !ok || len(stem) != segmentNameDigits {
		return 0, false
	}
	base, err := strconv.ParseUint(stem, 10, 64)
	if err != nil || base == 0 {
		return 0, false
	}
	return base, true
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// Dir returns the directory the log lives in.
func (l *Log) Dir() string { return l.dir }

// FirstIndex returns the index of the first entry. If the log is empty it
// is LastIndex()+1, the index the next Append must start at.
func (l *Log) FirstIndex() uint64 { return l.first.Load() }

// Generation changes whenever entries may have been replaced (a
// TruncateAfter or Reset began), never on Append or DeleteBefore: an entry
// read or cached under one generation is still the log's entry at that
// index while the generation is the same.
func (l *Log) Generation() uint64 { return l.gen.Load() }

// LastIndex returns the index of the last entry, FirstIndex()-1 if empty.
func (l *Log) LastIndex() uint64 { return l.last.Load() }

// Failure returns the error that makes the log refuse writes (it wraps
// ErrFailed), nil while the log is healthy. See Options.OnFail.
func (l *Log) Failure() error { return l.syncer.failure() }

// Stats describe the log's files.
type Stats struct {
	Segments   int
	Bytes      int64
	FirstIndex uint64
	LastIndex  uint64
}

// Stats returns a snapshot of the log's size.
func (l *Log) Stats() Stats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	st := Stats{Segments: len(l.segs), FirstIndex: l.FirstIndex(), LastIndex: l.LastIndex()}
	for _, s := range l.segs {
		st.Bytes += s.size
	}
	return st
}

// Close syncs and closes the log. Further calls return ErrClosed.
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if l.stopSync != nil {
		close(l.stopSync)
		<-l.syncDone
	}
	l.zero.halt()
	var err error
	if l.syncer.failure() == nil {
		err = l.syncer.syncNow()
		if act := l.active(); err == nil && act != nil && act.alloc.Load() > act.size {
			// A log closed cleanly ends at its last frame: the
			// preallocated tail goes (prealloc.go). Should the cut fail,
			// the zeros stay and the next Open cuts them.
			if terr := act.f.Truncate(act.size); terr == nil {
				err = act.f.Sync()
			} else {
				l.logger.Warn("commitlog: cutting the zeros after the last frame at close failed; the next Open cuts them", "file", act.path, "err", terr)
			}
		}
	}
	l.syncer.mu.Lock() // wait out a sync in flight
	defer l.syncer.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, s := range l.segs {
		err = errors.Join(err, s.close())
	}
	l.segs = nil
	err = errors.Join(err, l.unlock())
	if err != nil {
		return fmt.Errorf("commitlog: close %s: %w", l.dir, err)
	}
	return nil
}

// errIfClosed must be called with mu held.
func (l *Log) errIfClosed() error {
	if l.closed {
		return ErrClosed
	}
	return nil
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// findSegment returns the segment holding index, which must be within
// [FirstIndex, LastIndex]. mu must be held.
func (l *Log) findSegment(index uint64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > index })
	return l.segs[i-1]
}

// removeFiles deletes a segment's files; the caller syncs the directory.
func (l *Log) removeFiles(s *segment) error {
	if err := s.close(); err != nil {
		l.logger.Warn("commitlog: closing removed segment", "file", s.path, "err", err)
	}
	if err := l.fs.Remove(s.path); err != nil {
		return fmt.Errorf("remove %s: %w", s.path, err)
	}
	if err := l.fs.Remove(s.idxPath); err != nil {
		return fmt.Errorf("remove %s: %w", s.idxPath, err)
	}
	return nil
}
