package commitlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"runtime/debug"
	"testing"
	"time"
)

// Fuzz targets. Seed corpora are in testdata/fuzz/<FuzzName>; run one with
//
//	go test -run XXX -fuzz FuzzOpenDir -fuzztime 45s ./commitlog

// FuzzDecodeEntry: DecodeEntry never panics, fails only with ErrCorrupt, and
// whatever it accepts re-encodes to exactly the bytes it consumed.
func FuzzDecodeEntry(f *testing.F) {
	for _, i := range []uint64{1, 3, 5, 42, 700} {
		e := entry(i)
		fr := EncodeEntry(nil, &e)
		f.Add(fr)
		f.Add(fr[:len(fr)-1])
		f.Add(append(fr, 0xAB, 0xCD))
	}
	f.Add([]byte{})
	f.Add(make([]byte, frameHeaderSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, max := range []int{0, 64, 8 << 10, maxEntrySizeLimit} {
			e, n, err := DecodeEntry(data, max)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("DecodeEntry(max %d) failed with %v, which is not ErrCorrupt", max, err)
				}
				if n != 0 {
					t.Fatalf("DecodeEntry(max %d) failed but consumed %d bytes", max, n)
				}
				continue
			}
			if n < frameHeaderSize || n > len(data) {
				t.Fatalf("DecodeEntry(max %d) consumed %d of %d bytes", max, n, len(data))
			}
			if size := len(e.Data) + len(e.Extensions); size > max {
				t.Fatalf("DecodeEntry(max %d) accepted an entry of %d bytes", max, size)
			}
			if fs := frameSize(&e); fs != int64(n) {
				t.Fatalf("DecodeEntry consumed %d bytes, the entry's frame is %d", n, fs)
			}
			enc := EncodeEntry(nil, &e)
			if !bytes.Equal(enc, data[:n]) {
				t.Fatalf("re-encoding does not reproduce the frame:\n got %x\nwant %x", enc, data[:n])
			}
			prefix := []byte("prefix")
			if enc := EncodeEntry(append([]byte(nil), prefix...), &e); !bytes.Equal(enc, append(prefix, data[:n]...)) {
				t.Fatalf("EncodeEntry onto a non-empty buffer: %x", enc)
			}
			// The frame alone decodes the same, and any prefix of it is short.
			e2, n2, err := DecodeEntry(data[:n:n], max)
			if err != nil || n2 != n || !equalEntry(e, e2) {
				t.Fatalf("decoding the frame alone: %+v, %d, %v", e2, n2, err)
			}
			if _, _, err := DecodeEntry(data[:n-1], max); err == nil {
				t.Fatalf("a frame missing its last byte decoded")
			}
		}
	})
}

// FuzzEntryRoundTrip: every entry that fits MaxEntrySize encodes and decodes
// back to itself.
func FuzzEntryRoundTrip(f *testing.F) {
	f.Add(uint64(1), uint64(1), byte(0), []byte(nil), []byte(nil), int64(0))
	f.Add(uint64(42), uint64(5), byte(2), []byte("payload"), []byte("ext-42"), int64(1700000000000000042))
	f.Add(uint64(1<<64-1), uint64(1<<64-1), byte(255), []byte{0}, []byte{}, int64(-1))
	f.Add(uint64(0), uint64(0), byte(1), bytes.Repeat([]byte{7}, 1000), []byte(nil), int64(-1<<63))
	f.Add(uint64(7), uint64(3), byte(3), []byte(nil), []byte("only ext"), int64(1<<63-1))
	f.Fuzz(func(t *testing.T, index, term uint64, typ byte, data, ext []byte, nanos int64) {
		e := Entry{Index: index, Term: term, Type: typ, Data: data, Extensions: ext}
		if nanos != 0 {
			e.AppendedAt = time.Unix(0, nanos).In(time.FixedZone("fuzz", 3600))
		}
		prefix := []byte{1, 2, 3}
		buf := EncodeEntry(append([]byte(nil), prefix...), &e)
		if !bytes.Equal(buf[:len(prefix)], prefix) {
			t.Fatalf("EncodeEntry changed the buffer's existing bytes")
		}
		frame := buf[len(prefix):]
		if int64(len(frame)) != frameSize(&e) {
			t.Fatalf("frame is %d bytes, frameSize says %d", len(frame), frameSize(&e))
		}
		size := len(data) + len(ext)
		trailing := append(append([]byte(nil), frame...), 0xFF, 0, 0x42)
		got, n, err := DecodeEntry(trailing, size)
		if err != nil {
			t.Fatalf("DecodeEntry: %v", err)
		}
		if n != len(frame) {
			t.Fatalf("DecodeEntry consumed %d bytes, the frame is %d", n, len(frame))
		}
		if !equalEntry(got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
		}
		if !e.AppendedAt.IsZero() && got.AppendedAt.UnixNano() != nanos {
			t.Fatalf("AppendedAt %d, want %d", got.AppendedAt.UnixNano(), nanos)
		}
		if size > 0 {
			if _, _, err := DecodeEntry(frame, size-1); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeEntry with a maximum below the entry's size: %v", err)
			}
		}
		for cut := 0; cut < len(frame); cut += 1 + cut/4 {
			if _, _, err := DecodeEntry(frame[:cut], size); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeEntry of %d of %d bytes: %v", cut, len(frame), err)
			}
		}
	})
}

// fuzzNoSyncFS is the OS file system without fsync, for the fuzz targets
// and the crash tests: durability is not what they test (their crashes are
// edits of closed files), and fsync is the slowest part of Open. Files keep
// their descriptor so sealed indexes are still memory-mapped.
type fuzzNoSyncFS struct{ OSFS }

type fuzzNoSyncFile struct{ File }

func (fuzzNoSyncFS) OpenFile(path string, flag int, perm os.FileMode) (File, error) {
	f, err := OSFS{}.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return fuzzNoSyncFile{f}, nil
}

func (fuzzNoSyncFS) SyncDir(string) error { return nil }

func (fuzzNoSyncFile) Sync() error { return nil }

func (f fuzzNoSyncFile) Fd() uintptr { return f.File.(interface{ Fd() uintptr }).Fd() }

func fuzzOptions() Options {
	o := testOptions()
	o.Sync = SyncNever
	o.FS = fuzzNoSyncFS{}
	return o
}

// fuzzFrames decodes the valid frames for indexes base, base+1, ... at the
// start of a segment file's bytes, the way recovery reads them.
func fuzzFrames(seg []byte, base uint64, max int) [][]byte {
	if len(seg) < segmentHeaderSize {
		return nil
	}
	var out [][]byte
	for p := segmentHeaderSize; p < len(seg); {
		e, n, err := DecodeEntry(seg[p:], max)
		if err != nil || e.Index != base+uint64(len(out)) {
			break
		}
		out = append(out, seg[p:p+n])
		p += n
	}
	return out
}

// fuzzOpen is Open that reports a panic as a test failure, so that a
// crasher kept in testdata fails its own subtest and not the whole run.
func fuzzOpen(t *testing.T, dir string, o Options) (l *Log, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Open panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return Open(dir, o)
}

// FuzzOpenDir writes seg as segment 1 and opens the directory. With a
// non-empty idx, seg is sealed: idx is its index file and a valid second
// segment follows it, based after the frames a scan of seg finds. Open
// must not panic and must fail only with ErrCorrupt or ErrVersion; if it
// succeeds, every entry must be readable (entries of the active segment
// without error, those of a sealed segment trusted through its index
// possibly with a *CorruptError, never with bytes that are not a frame of
// the file), and the log must take the next entry and keep it across a
// reopen.
func FuzzOpenDir(f *testing.F) {
	f.Add(fuzzSegment(1, entries(1, 3)), []byte(nil))
	f.Add(fuzzSegment(1, entries(1, 3)), fuzzIndex(1, entries(1, 3)))
	f.Fuzz(func(t *testing.T, seg, idx []byte) {
		o := fuzzOptions()
		dir := t.TempDir()
		segPath, idxPath := segmentPaths(dir, 1)
		if err := os.WriteFile(segPath, seg, 0o644); err != nil {
			t.Fatal(err)
		}
		valid := fuzzFrames(seg, 1, o.MaxEntrySize)
		sealed := len(idx) > 0
		base2 := uint64(0)
		if sealed {
			if err := os.WriteFile(idxPath, idx, 0o644); err != nil {
				t.Fatal(err)
			}
			base2 = uint64(len(valid)) + 1
			if base2 == 1 {
				base2 = 2 // Open must then refuse the empty sealed segment
			}
			p2, _ := segmentPaths(dir, base2)
			if err := os.WriteFile(p2, fuzzSegment(base2, entries(base2, base2)), 0o644); err != nil {
				t.Fatal(err)
			}
		}

		l, err := fuzzOpen(t, dir, o)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("Open failed with %v, neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		defer func() { l.Close() }()
		first, last := l.FirstIndex(), l.LastIndex()
		if first != 1 {
			t.Fatalf("FirstIndex %d, want 1", first)
		}
		if sealed {
			if last != base2 {
				t.Fatalf("LastIndex %d, want %d (the one entry of the second segment)", last, base2)
			}
		} else if hdr := seg[:min(len(seg), segmentHeaderSize)]; len(seg) >= segmentHeaderSize && !allZero(hdr) {
			// Recovery cuts the active segment at its first bad frame. (A
			// zeroed header is left out: see TestCrashMidActiveDamageIsCorrupt.)
			if last != uint64(len(valid)) {
				t.Fatalf("LastIndex %d, but the segment starts with %d valid frames", last, len(valid))
			}
		} else if last != 0 {
			t.Fatalf("LastIndex %d after recovering a segment with a torn header", last)
		}
		for i := first; i <= last; i++ {
			e, err := l.Read(i)
			if err != nil {
				if !sealed || i >= base2 || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Read(%d): %v", i, err)
				}
				continue
			}
			if e.Index != i {
				t.Fatalf("Read(%d) returned entry %d", i, e.Index)
			}
			if sealed && i >= base2 {
				if !equalEntry(e, entry(i)) {
					t.Fatalf("Read(%d) of the second segment: %+v", i, e)
				}
			} else if fr := EncodeEntry(nil, &e); !bytes.Contains(seg, fr) {
				t.Fatalf("Read(%d) returned %+v, which is not a frame of the segment", i, e)
			}
			if !sealed && !bytes.Equal(EncodeEntry(nil, &e), valid[i-1]) {
				t.Fatalf("Read(%d) returned %+v, not frame %d of the segment", i, e, i)
			}
		}
		for _, budget := range []int{0, 1 << 20} {
			if first <= last {
				got, err := l.ReadRange(first, budget)
				if err != nil && (!sealed || !errors.Is(err, ErrCorrupt)) {
					t.Fatalf("ReadRange(%d, %d): %v", first, budget, err)
				}
				for k, e := range got {
					if e.Index != first+uint64(k) {
						t.Fatalf("ReadRange(%d, %d)[%d] is entry %d", first, budget, k, e.Index)
					}
				}
			}
		}
		next := entry(last + 1)
		if err := l.Append([]Entry{next}); err != nil {
			t.Fatalf("Append(%d): %v", last+1, err)
		}
		if e, err := l.Read(last + 1); err != nil || !equalEntry(e, next) {
			t.Fatalf("Read(%d) after Append: %+v, %v", last+1, e, err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		l, err = fuzzOpen(t, dir, o)
		if err != nil {
			t.Fatalf("reopen after Append: %v", err)
		}
		if l.FirstIndex() != first || l.LastIndex() != last+1 {
			t.Fatalf("after reopen the log is %d..%d, want %d..%d", l.FirstIndex(), l.LastIndex(), first, last+1)
		}
		if e, err := l.Read(last + 1); err != nil || !equalEntry(e, next) {
			t.Fatalf("Read(%d) after reopen: %+v, %v", last+1, e, err)
		}
	})
}

// fuzzSegment returns the bytes of a segment file holding es.
func fuzzSegment(base uint64, es []Entry) []byte {
	b := fileHeader(segmentMagic, base)
	for i := range es {
		b = EncodeEntry(b, &es[i])
	}
	return b
}

// fuzzIndex returns the bytes of the index file of fuzzSegment(base, es).
func fuzzIndex(base uint64, es []Entry) []byte {
	b := fileHeader(indexMagic, base)
	p := int64(segmentHeaderSize)
	for i := range es {
		b = binary.LittleEndian.AppendUint64(b, uint64(p))
		p += frameSize(&es[i])
	}
	return b
}
