package commitlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// segment is one .log file and its index. The active (last) segment keeps
// its index in memory (pos); a sealed segment's index is its .idx file,
// memory-mapped (mapped) or, where mapping is unavailable, read into pos.
//
// Fields other than f are guarded by Log.mu; f's ReadAt is called under
// Log.mu read-locked, writes under Log.wmu.
type segment struct {
	base    uint64
	path    string
	idxPath string
	f       File
	size    int64 // end of the last complete frame
	count   uint64
	newest  int64 // newest AppendedAt in Unix nanoseconds, 0 if unknown
	pos     []int64
	mapped  []byte
	sealed  bool

	// alloc and allocDurable: the file's length as last set, and as made
	// durable by an fsync (prealloc.go). alloc is written under zero.mu
	// (by the zeroer, by appends that pass it, by cuts); allocDurable by
	// the zeroer under zero.mu and by the syncer under syncer.mu.
	alloc, allocDurable atomic.Int64
}

func segmentPaths(dir string, base uint64) (string, string) {
	name := fmt.Sprintf(segmentNameFormat, base)
	return filepath.Join(dir, name+segmentFileSuffix), filepath.Join(dir, name+indexFileSuffix)
}

// lastIndex is the index of the segment's last entry, base-1 if empty.
func (s *segment) lastIndex() uint64 { return s.base + s.count - 1 }

// position returns the frame offset of the entry rel entries past base.
func (s *segment) position(rel uint64) int64 {
	if s.mapped != nil {
		off := indexHeaderSize + rel*indexEntrySize
		return int64(binary.LittleEndian.Uint64(s.mapped[off:]))
	}
	return s.pos[rel]
}

// bounds returns the byte range [start, end) of the entry rel past base.
func (s *segment) bounds(rel uint64) (int64, int64) {
	start := s.position(rel)
	if rel+1 < s.count {
		return start, s.position(rel + 1)
	}
	return start, s.size
}

func (s *segment) close() error {
	err := munmap(s.mapped)
	s.mapped = nil
	if s.f != nil {
		err = errors.Join(err, s.f.Close())
		s.f = nil
	}
	return err
}

// createSegment creates an empty segment file holding only its header and
// makes it durable.
func createSegment(fsys FS, dir string, base uint64) (*segment, error) {
	path, idxPath := segmentPaths(dir, base)
	if err := fsys.Remove(idxPath); err != nil {
		return nil, fmt.Errorf("remove stale index %s: %w", idxPath, err)
	}
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.WriteAt(fileHeader(segmentMagic, base), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write segment header %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync new segment %s: %w", path, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	s := &segment{base: base, path: path, idxPath: idxPath, f: f, size: segmentHeaderSize}
	s.setLength(segmentHeaderSize)
	return s, nil
}

// openSegment opens an existing segment. A sealed segment uses its index
// file when that is consistent with the segment, and is rebuilt by a scan
// otherwise; any damage in a sealed segment is a *CorruptError. The last
// segment is always scanned: a torn or failing frame at its tail is cut off
// (and logged), damage followed by a valid frame is a *CorruptError.
func openSegment(l *Log, base uint64, last bool) (*segment, error) {
	path, idxPath := segmentPaths(l.dir, base)
	f, err := l.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	s := &segment{base: base, path: path, idxPath: idxPath, f: f, sealed: !last}
	if err := s.recover(l, last); err != nil {
		s.close()
		return nil, err
	}
	// Recovery cut any tail past the last frame and synced the cut.
	s.setLength(s.size)
	return s, nil
}

func (s *segment) recover(l *Log, last bool) error {
	size, err := s.f.Size()
	if err != nil {
		return fmt.Errorf("stat %s: %w", s.path, err)
	}
	hdr := make([]byte, segmentHeaderSize)
	if size >= segmentHeaderSize {
		if _, err := s.f.ReadAt(hdr, 0); err != nil {
			return fmt.Errorf("read header of %s: %w", s.path, err)
		}
	}
	torn := size < segmentHeaderSize || allZero(hdr)
	if last && torn && (size < segmentHeaderSize || l.opts.RepairTail || !s.anyFrameAfter(l, 0, size, s.base-1)) {
		// The crash hit while the segment was being created.
		l.logger.Warn("commitlog: rewriting torn segment header", "file", s.path, "bytes", size)
		if err := s.f.Truncate(0); err != nil {
			return fmt.Errorf("truncate %s: %w", s.path, err)
		}
		if _, err := s.f.WriteAt(fileHeader(segmentMagic, s.base), 0); err != nil {
			return fmt.Errorf("rewrite header of %s: %w", s.path, err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", s.path, err)
		}
		s.size = segmentHeaderSize
		return nil
	}
	if size < segmentHeaderSize {
		return &CorruptError{File: s.path, Reason: fmt.Sprintf("sealed segment is %d bytes, shorter than its header", size)}
	}
	if err := checkFileHeader(s.path, hdr, segmentMagic, s.base); err != nil {
		return err
	}
	if !last {
		ok, err := s.loadIndex(l, size)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		l.logger.Warn("commitlog: rebuilding index from segment", "file", s.idxPath)
	} else if err := l.fs.Remove(s.idxPath); err != nil {
		// The active segment's index lives in memory; a file left by an
		// earlier life may be stale.
		return fmt.Errorf("remove stale index %s: %w", s.idxPath, err)
	}
	if err := s.scan(l, size, last); err != nil {
		return err
	}
	if !last {
		m, err := writeIndexFile(l.fs, s)
		if err != nil {
			return err
		}
		if m != nil {
			s.mapped, s.pos = m, nil
		}
	}
	return nil
}

// scan reads every frame, filling pos, count, size and newest.
func (s *segment) scan(l *Log, fileSize int64, last bool) error {
	s.pos = s.pos[:0]
	s.count, s.newest = 0, 0
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, segmentHeaderSize, fileSize-segmentHeaderSize), 1<<20)
	p := int64(segmentHeaderSize)
	var frame []byte
	var e Entry
	for p < fileSize {
		want := s.base + s.count
		if cap(frame) < frameHeaderSize {
			frame = make([]byte, 0, 64<<10)
		}
		frame = frame[:frameHeaderSize]
		n, err := io.ReadFull(r, frame)
		var ferr *frameError
		var flen int
		switch {
		case err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
			return fmt.Errorf("read %s: %w", s.path, err)
		case err != nil:
			ferr = &frameError{short: true, reason: fmt.Sprintf("frame header truncated: %d of %d bytes", n, frameHeaderSize)}
		default:
			flen, ferr = frameLen(frame, l.opts.MaxEntrySize)
		}
		if ferr == nil {
			if cap(frame) < flen {
				nf := make([]byte, flen)
				copy(nf, frame)
				frame = nf
			}
			frame = frame[:flen]
			if m, err := io.ReadFull(r, frame[frameHeaderSize:]); err != nil {
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read %s: %w", s.path, err)
				}
				ferr = &frameError{short: true, reason: fmt.Sprintf("frame truncated: %d of %d bytes", frameHeaderSize+m, flen)}
			} else if _, ferr = decodeFrame(frame, l.opts.MaxEntrySize, &e); ferr == nil && e.Index != want {
				ferr = &frameError{reason: fmt.Sprintf("frame holds entry %d, expected %d", e.Index, want)}
			}
		}
		if ferr != nil {
			return s.damaged(l, p, fileSize, want, ferr, last)
		}
		s.pos = append(s.pos, p)
		s.count++
		if ns := nanos(e.AppendedAt); ns > s.newest {
			s.newest = ns
		}
		p += int64(flen)
	}
	s.size = p
	return nil
}

// damaged decides what a bad frame at p means. In a sealed segment it is
// corruption. At the tail of the last segment it is a torn write, cut off,
// unless a valid frame for a later entry follows it anywhere in the file:
// then the damage is in the middle of data that was once complete, and
// cutting would silently drop entries that may have been acknowledged.
// Options.RepairTail overrides that and cuts anyway.
func (s *segment) damaged(l *Log, p, fileSize int64, want uint64, ferr *frameError, last bool) error {
	cerr := &CorruptError{File: s.path, Offset: p, Index: want, Reason: ferr.reason}
	if !last {
		return cerr
	}
	if s.anyFrameAfter(l, p, fileSize, want) {
		if !l.opts.RepairTail {
			return cerr
		}
		l.logger.Warn("commitlog: RepairTail set; cutting valid entries after damage", "file", s.path, "offset", p, "index", want)
	}
	if s.zerosFrom(p, fileSize) {
		// A preallocated tail (prealloc.go), or zeros a crash left: the
		// log ends at p.
		l.logger.Debug("commitlog: cutting the zeroed tail of the last segment", "file", s.path, "offset", p, "bytes", fileSize-p)
	} else {
		l.logger.Warn("commitlog: cutting torn tail of the last segment",
			"file", s.path, "index", want, "offset", p, "bytes", fileSize-p, "reason", ferr.reason)
	}
	if err := s.f.Truncate(p); err != nil {
		return fmt.Errorf("truncate torn tail of %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync %s after cutting its tail: %w", s.path, err)
	}
	s.size = p
	return nil
}

// zerosFrom reports whether [p, fileSize) of the file holds only zeros.
func (s *segment) zerosFrom(p, fileSize int64) bool {
	buf := make([]byte, min(1<<20, max(fileSize-p, 0)))
	for p < fileSize {
		n, err := s.f.ReadAt(buf[:min(int64(len(buf)), fileSize-p)], p)
		if !allZero(buf[:n]) || (err != nil && n == 0) {
			return false
		}
		p += int64(n)
	}
	return true
}

// anyFrameAfter reports whether a frame that verifies and holds an entry
// after want starts anywhere in (p, fileSize). Damage can corrupt the
// length fields, so it cannot just look where the bad frame says it ends.
func (s *segment) anyFrameAfter(l *Log, p, fileSize int64, want uint64) bool {
	const window = 4 << 20
	maxIndex := want + uint64(fileSize-p)/frameHeaderSize
	buf := make([]byte, window+frameHeaderSize)
	for start := p + 1; start+frameHeaderSize <= fileSize; start += window {
		n, err := s.f.ReadAt(buf[:min(int64(len(buf)), fileSize-start)], start)
		if err != nil && n == 0 {
			return false
		}
		for q := 0; q+frameHeaderSize <= n && q < window; q++ {
			idx := binary.LittleEndian.Uint64(buf[q+12:])
			if idx <= want || idx > maxIndex {
				continue
			}
			if s.validFrameAt(l, start+int64(q), fileSize, idx) {
				return true
			}
		}
	}
	return false
}

func (s *segment) validFrameAt(l *Log, p, fileSize int64, want uint64) bool {
	if p+frameHeaderSize > fileSize {
		return false
	}
	hdr := make([]byte, frameHeaderSize)
	if _, err := s.f.ReadAt(hdr, p); err != nil {
		return false
	}
	n, ferr := frameLen(hdr, l.opts.MaxEntrySize)
	if ferr != nil || p+int64(n) > fileSize {
		return false
	}
	frame := make([]byte, n)
	if _, err := s.f.ReadAt(frame, p); err != nil {
		return false
	}
	var e Entry
	_, ferr = decodeFrame(frame, l.opts.MaxEntrySize, &e)
	return ferr == nil && e.Index == want
}

// loadIndex maps the .idx file and checks it against the segment: header,
// positions strictly increasing from the first frame, and the last frame
// decoding as the expected entry and ending exactly at the end of the file.
// It reports false (and no error) if the index must be rebuilt.
func (s *segment) loadIndex(l *Log, size int64) (bool, error) {
	f, err := l.fs.OpenFile(s.idxPath, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open index: %w", err)
	}
	defer f.Close()
	isize, err := f.Size()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", s.idxPath, err)
	}
	if isize < indexHeaderSize || (isize-indexHeaderSize)%indexEntrySize != 0 || isize == indexHeaderSize {
		return false, nil
	}
	b, err := mmapFile(f, isize)
	if err != nil {
		return false, fmt.Errorf("map %s: %w", s.idxPath, err)
	}
	mapped := b != nil
	if !mapped {
		b = make([]byte, isize)
		if _, err := f.ReadAt(b, 0); err != nil {
			return false, fmt.Errorf("read %s: %w", s.idxPath, err)
		}
	}
	release := func() {
		if mapped {
			munmap(b)
		}
	}
	if herr := checkFileHeader(s.idxPath, b[:indexHeaderSize], indexMagic, s.base); herr != nil {
		release()
		if errors.Is(herr, ErrVersion) {
			return false, herr
		}
		return false, nil
	}
	count := uint64(isize-indexHeaderSize) / indexEntrySize
	prev := int64(0)
	for i := uint64(0); i < count; i++ {
		u := binary.LittleEndian.Uint64(b[indexHeaderSize+i*indexEntrySize:])
		p := int64(u)
		if u > uint64(size) || p > size-frameHeaderSize || (i == 0 && p != segmentHeaderSize) || (i > 0 && p <= prev) {
			release()
			return false, nil
		}
		prev = p
	}
	last := prev
	frame := make([]byte, size-last)
	if _, err := s.f.ReadAt(frame, last); err != nil {
		release()
		return false, fmt.Errorf("read %s: %w", s.path, err)
	}
	var e Entry
	n, ferr := decodeFrame(frame, l.opts.MaxEntrySize, &e)
	if ferr != nil || int64(n) != size-last || e.Index != s.base+count-1 {
		release()
		return false, nil
	}
	s.count, s.size, s.newest = count, size, nanos(e.AppendedAt)
	if mapped {
		s.mapped = b
	} else {
		s.pos = make([]int64, count)
		for i := range s.pos {
			s.pos[i] = int64(binary.LittleEndian.Uint64(b[indexHeaderSize+i*indexEntrySize:]))
		}
	}
	return true, nil
}

// writeIndexFile writes s's .idx file from s.pos and makes it durable. It
// returns a read-only mapping of the file, or nil where mapping is not
// available; the caller installs it in place of pos.
func writeIndexFile(fsys FS, s *segment) ([]byte, error) {
	buf := make([]byte, indexHeaderSize+len(s.pos)*indexEntrySize)
	copy(buf, fileHeader(indexMagic, s.base))
	for i, p := range s.pos {
		binary.LittleEndian.PutUint64(buf[indexHeaderSize+i*indexEntrySize:], uint64(p))
	}
	f, err := fsys.OpenFile(s.idxPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create index: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt(buf, 0); err != nil {
		return nil, fmt.Errorf("write %s: %w", s.idxPath, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync %s: %w", s.idxPath, err)
	}
	if len(s.pos) == 0 {
		return nil, nil
	}
	m, err := mmapFile(f, int64(len(buf)))
	if err != nil {
		return nil, nil // keep the in-memory index
	}
	return m, nil
}

// unseal turns a sealed segment back into the active one (after a tail
// truncation reached into it): its index moves into memory and the file is
// removed.
func (s *segment) unseal(fsys FS) error {
	if s.mapped != nil {
		s.pos = make([]int64, s.count)
		for i := range s.pos {
			s.pos[i] = s.position(uint64(i))
		}
		munmap(s.mapped)
		s.mapped = nil
	}
	s.sealed = false
	if err := fsys.Remove(s.idxPath); err != nil {
		return fmt.Errorf("remove index of reopened segment: %w", err)
	}
	return nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
