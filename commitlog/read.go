package commitlog

import (
	"fmt"
	"sort"
)

// Read returns the entry at index. Its slices are freshly allocated and
// owned by the caller. It fails with ErrBeforeFirst or ErrAfterLast outside
// [FirstIndex, LastIndex], and with a *CorruptError if the stored frame does
// not verify.
func (l *Log) Read(index uint64) (Entry, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.checkRange(index); err != nil {
		return Entry{}, err
	}
	s := l.findSegment(index)
	start, end := s.bounds(index - s.base)
	buf := make([]byte, end-start)
	if _, err := s.f.ReadAt(buf, start); err != nil {
		return Entry{}, fmt.Errorf("commitlog: read entry %d from %s: %w", index, s.path, err)
	}
	var e Entry
	if err := l.decodeAt(s, buf, start, index, &e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// ReadRange returns consecutive entries starting at from whose frames add up
// to at most maxBytes, but always at least one entry. The entries share one
// freshly allocated buffer owned by the caller. Errors are those of Read.
func (l *Log) ReadRange(from uint64, maxBytes int) ([]Entry, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.checkRange(from); err != nil {
		return nil, err
	}
	budget := int64(maxBytes)
	last := l.last.Load()
	var out []Entry
	for index := from; index <= last; {
		s := l.findSegment(index)
		rel := index - s.base
		start, _ := s.bounds(rel)
		// The last entry of s that still fits the budget: the largest k
		// with end(k) - start <= budget, but at least rel.
		n := sort.Search(int(s.count-rel), func(i int) bool {
			_, end := s.bounds(rel + uint64(i))
			return end-start > budget
		})
		if n == 0 {
			if len(out) > 0 {
				break
			}
			n = 1
		}
		_, end := s.bounds(rel + uint64(n) - 1)
		buf := make([]byte, end-start)
		if _, err := s.f.ReadAt(buf, start); err != nil {
			return nil, fmt.Errorf("commitlog: read entries %d.. from %s: %w", index, s.path, err)
		}
		for off := int64(0); off < int64(len(buf)); {
			var e Entry
			fend := int64(len(buf))
			if i := index - s.base + 1; i < s.count {
				fend = s.position(i) - start
			}
			if err := l.decodeAt(s, buf[off:fend], start+off, index, &e); err != nil {
				return nil, err
			}
			out = append(out, e)
			off = fend
			index++
		}
		budget -= end - start
		if budget <= 0 || int(rel)+n < int(s.count) {
			break
		}
	}
	return out, nil
}

// checkRange must be called with mu held.
func (l *Log) checkRange(index uint64) error {
	if l.closed {
		return ErrClosed
	}
	if first := l.first.Load(); index < first {
		return fmt.Errorf("%w: %d < %d", ErrBeforeFirst, index, first)
	}
	if last := l.last.Load(); index > last {
		return fmt.Errorf("%w: %d > %d", ErrAfterLast, index, last)
	}
	return nil
}

func (l *Log) decodeAt(s *segment, frame []byte, off int64, index uint64, e *Entry) error {
	n, ferr := decodeFrame(frame, l.opts.MaxEntrySize, e)
	switch {
	case ferr != nil:
		return &CorruptError{File: s.path, Offset: off, Index: index, Reason: ferr.reason}
	case n != len(frame):
		return &CorruptError{File: s.path, Offset: off, Index: index, Reason: fmt.Sprintf("frame is %d bytes, the index says %d", n, len(frame))}
	case e.Index != index:
		return &CorruptError{File: s.path, Offset: off, Index: index, Reason: fmt.Sprintf("frame holds entry %d", e.Index)}
	}
	return nil
}
