package commitlog

import (
	"fmt"
	"slices"
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
// to at most maxBytes, but always at least one entry. The entries and their
// slices are freshly allocated and owned by the caller. Errors are those of
// Read.
func (l *Log) ReadRange(from uint64, maxBytes int) ([]Entry, error) {
	out, _, err := l.ReadRangeInto(nil, nil, from, maxBytes)
	return out, err
}

// ReadRangeInto is ReadRange into the caller's memory, for readers that
// stream the log without allocating. It puts the entries in dst[:0] and
// their frames in buf[:0], growing either if it is too small, and returns
// both for the next call. The entries' Data and Extensions alias the
// returned buffer: they are valid until it is passed to ReadRangeInto again
// (or otherwise reused), so an entry kept longer must be copied. On error it
// returns no entries, and the buffers for reuse.
func (l *Log) ReadRangeInto(dst []Entry, buf []byte, from uint64, maxBytes int) ([]Entry, []byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	dst, buf = dst[:0], buf[:0]
	if err := l.checkRange(from); err != nil {
		return dst, buf, err
	}
	budget := int64(maxBytes)
	last := l.last.Load()
	for index := from; index <= last; {
		s := l.findSegment(index)
		rel := index - s.base
		n := s.framesWithin(rel, budget)
		if n == 0 {
			if len(dst) > 0 {
				break
			}
			n = 1
		}
		var err error
		if dst, buf, err = l.readFrames(s, rel, n, dst, buf); err != nil {
			return dst[:0], buf[:0], err
		}
		start, _ := s.bounds(rel)
		_, end := s.bounds(rel + n - 1)
		budget -= end - start
		index += n
		if budget <= 0 || rel+n < s.count {
			break
		}
	}
	return dst, buf, nil
}

// framesWithin returns how many frames of s, from rel on, add up to at most
// budget bytes.
func (s *segment) framesWithin(rel uint64, budget int64) uint64 {
	start, _ := s.bounds(rel)
	return uint64(sort.Search(int(s.count-rel), func(i int) bool {
		_, end := s.bounds(rel + uint64(i))
		return end-start > budget
	}))
}

// readFrames reads n frames of s from rel on with one ReadAt, appending
// their bytes to buf and their entries, which alias buf, to dst.
func (l *Log) readFrames(s *segment, rel, n uint64, dst []Entry, buf []byte) ([]Entry, []byte, error) {
	start, _ := s.bounds(rel)
	_, end := s.bounds(rel + n - 1)
	size := int(end - start)
	slack := 0
	if size >= minAlignedRead {
		slack = pageSize - 1
	}
	// Growing buf moves it, but entries decoded into the old array stay
	// valid: the old array is only read from now on.
	buf = slices.Grow(buf, size+slack)
	at := len(buf)
	if slack > 0 {
		at = alignFor(buf, at, start)
	}
	buf = buf[:at+size]
	frames := buf[at:]
	index := s.base + rel
	if _, err := s.f.ReadAt(frames, start); err != nil {
		return dst, buf, fmt.Errorf("commitlog: read entries %d.. from %s: %w", index, s.path, err)
	}
	dst = slices.Grow(dst, int(n))
	for i := range n {
		fstart, fend := s.bounds(rel + i)
		dst = append(dst, Entry{})
		e := &dst[len(dst)-1]
		if err := l.decodeAt(s, frames[fstart-start:fend-start], fstart, index+i, e); err != nil {
			return dst, buf, err
		}
	}
	return dst, buf, nil
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
