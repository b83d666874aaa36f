package commitlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
)

// Crash-recovery tests. Each builds a log with the package's own writer,
// closes it, damages the files the way a crash or bad media would, and
// checks what Open makes of them. The layout of the frames is computed
// independently of the log's index (crashScan decodes the files with
// DecodeEntry).
//
// With testOptions (4 KiB segments) and entry(i), crashN entries make four
// segments, based at 1, 14, 25 and 34; the last (active) one holds
// entries 34..42. TestCrashLayout pins that down so that a change to the
// helpers shows up there rather than as puzzling failures elsewhere.
const crashN = 42

var crashBases = []uint64{1, 14, 25, 34}

// crashFrame is where one entry's frame lies.
type crashFrame struct {
	path       string
	start, end int64
}

type crashLayout struct {
	bases  []uint64              // segment bases, ascending
	sizes  map[uint64]int64      // segment file size by base
	frames map[uint64]crashFrame // by entry index
}

func (c *crashLayout) segPath(dir string, base uint64) string {
	p, _ := segmentPaths(dir, base)
	return p
}

func (c *crashLayout) idxPath(dir string, base uint64) string {
	_, p := segmentPaths(dir, base)
	return p
}

// crashScan decodes every segment file in dir frame by frame.
func crashScan(t testing.TB, dir string) *crashLayout {
	t.Helper()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &crashLayout{sizes: map[uint64]int64{}, frames: map[uint64]crashFrame{}}
	for _, n := range names {
		if base, ok := parseSegmentName(n.Name(), segmentFileSuffix); ok {
			c.bases = append(c.bases, base)
		}
	}
	sort.Slice(c.bases, func(i, j int) bool { return c.bases[i] < c.bases[j] })
	for _, base := range c.bases {
		path := c.segPath(dir, base)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c.sizes[base] = int64(len(b))
		if len(b) < segmentHeaderSize {
			continue
		}
		for p, want := segmentHeaderSize, base; p < len(b); want++ {
			e, n, err := DecodeEntry(b[p:], testOptions().MaxEntrySize)
			if err != nil || e.Index != want {
				break
			}
			c.frames[want] = crashFrame{path: path, start: int64(p), end: int64(p + n)}
			p += n
		}
	}
	return c
}

// crashBuild writes entries 1..n in small batches and closes the log.
func crashBuild(t testing.TB, dir string, n uint64) {
	t.Helper()
	l := mustOpen(t, dir, testOptions())
	for i := uint64(1); i <= n; i += 5 {
		if err := l.Append(entries(i, min(i+4, n))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// crashPristine builds the standard crashN-entry log once per test and
// returns its directory and layout.
func crashPristine(t testing.TB) (string, *crashLayout) {
	t.Helper()
	dir := t.TempDir()
	crashBuild(t, dir, crashN)
	return dir, crashScan(t, dir)
}

// crashRestore makes dst an exact copy of the (flat) directory src. It
// rewrites only files that differ: creating files is the slowest part of
// these tests.
func crashRestore(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	names, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		want[n.Name()] = true
		b, err := os.ReadFile(filepath.Join(src, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, n.Name())
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, b) {
			continue
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names, err = os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !want[n.Name()] {
			if err := os.Remove(filepath.Join(dst, n.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func crashRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func crashWrite(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func crashTruncate(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// crashXor xors the byte at off in path with mask.
func crashXor(t testing.TB, path string, off int64, mask byte) {
	t.Helper()
	b := crashRead(t, path)
	b[off] ^= mask
	crashWrite(t, path, b)
}

// crashZero overwrites [from, to) of path with zeros, extending the file if
// to is past its end.
func crashZero(t testing.TB, path string, from, to int64) {
	t.Helper()
	b := crashRead(t, path)
	if int64(len(b)) < to {
		b = append(b, make([]byte, to-int64(len(b)))...)
	}
	clear(b[from:to])
	crashWrite(t, path, b)
}

func crashSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// crashOptions are the options the damaged logs are opened with: those of
// testOptions (with which crashBuild wrote them) on a file system without
// fsync. The crashes are simulated by editing closed files, so fsync adds
// nothing but time to the hundreds of reopens below.
func crashOptions() Options {
	o := testOptions()
	o.FS = fuzzNoSyncFS{}
	return o
}

// crashOpen is Open that turns a panic into a test failure, so that one
// bad case does not take the rest of the package's tests down with it.
func crashOpen(t testing.TB, dir string) (l *Log, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Open panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return Open(dir, crashOptions())
}

// crashRecovered checks that dir opens with exactly entries 1..last, and
// then that the log takes entry last+1 and keeps it across a reopen.
func crashRecovered(t testing.TB, dir string, last uint64) {
	t.Helper()
	crashOpensWith(t, dir, last)
	crashAppendReopen(t, dir, last)
}

// crashOpensWith checks that dir opens with exactly entries 1..last.
func crashOpensWith(t testing.TB, dir string, last uint64) {
	t.Helper()
	l, err := crashOpen(t, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer l.Close()
	checkContents(t, l, 1, last)
	if _, err := l.Read(last + 1); !errors.Is(err, ErrAfterLast) {
		t.Fatalf("Read(%d) after recovery: %v, want ErrAfterLast", last+1, err)
	}
}

// crashAppendReopen appends entry last+1 to the recovered log in dir and
// checks that it, and the entries before it, survive a reopen.
func crashAppendReopen(t testing.TB, dir string, last uint64) {
	t.Helper()
	l, err := crashOpen(t, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if l.LastIndex() != last {
		l.Close()
		t.Fatalf("LastIndex %d, want %d", l.LastIndex(), last)
	}
	if err := l.Append(entries(last+1, last+1)); err != nil {
		l.Close()
		t.Fatalf("Append(%d) after recovery: %v", last+1, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = crashOpen(t, dir)
	if err != nil {
		t.Fatalf("Open after appending %d: %v", last+1, err)
	}
	defer l.Close()
	if l.FirstIndex() != 1 || l.LastIndex() != last+1 {
		t.Fatalf("after appending %d and reopening the log is %d..%d", last+1, l.FirstIndex(), l.LastIndex())
	}
	// The entries next to the recovered tail; the earlier ones were checked
	// by crashOpensWith and nothing since touched their segments.
	from := uint64(1)
	if last > 10 {
		from = last - 10
	}
	for i := from; i <= last+1; i++ {
		e, err := l.Read(i)
		if err != nil || !equalEntry(e, entry(i)) {
			t.Fatalf("Read(%d) after appending %d and reopening: %+v, %v", i, last+1, e, err)
		}
	}
}

// crashWantCorrupt checks that err is a *CorruptError (and ErrCorrupt)
// naming file and offset, and, if index is non-zero, that its Index is
// index or unknown (0).
func crashWantCorrupt(t testing.TB, err error, file string, off int64, index uint64) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a *CorruptError for %s at byte %d", file, off)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v; want ErrCorrupt for %s at byte %d", err, file, off)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v; want a *CorruptError for %s at byte %d", err, file, off)
	}
	if ce.File != file || ce.Offset != off {
		t.Fatalf("CorruptError names %s at byte %d, want %s at byte %d (%v)", ce.File, ce.Offset, file, off, err)
	}
	if index != 0 && ce.Index != 0 && ce.Index != index {
		t.Fatalf("CorruptError names entry %d, want %d (%v)", ce.Index, index, err)
	}
}

// crashCorruptAt returns a description of why err is not the expected
// *CorruptError, or "" if it is. It is for loops that collect failures.
func crashCorruptAt(err error, file string, off int64) string {
	var ce *CorruptError
	switch {
	case err == nil:
		return "Open succeeded"
	case !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce):
		return err.Error()
	case ce.File != file || ce.Offset != off:
		return fmt.Sprintf("CorruptError names %s at %d, want %s at %d", ce.File, ce.Offset, file, off)
	}
	return ""
}

func TestCrashLayout(t *testing.T) {
	_, c := crashPristine(t)
	if fmt.Sprint(c.bases) != fmt.Sprint(crashBases) {
		t.Fatalf("segment bases %v, want %v", c.bases, crashBases)
	}
	for i := uint64(1); i <= crashN; i++ {
		fr, ok := c.frames[i]
		if !ok {
			t.Fatalf("entry %d not found in the segment files", i)
		}
		e := entry(i)
		if fr.end-fr.start != frameSize(&e) {
			t.Fatalf("entry %d: frame is %d bytes, want %d", i, fr.end-fr.start, frameSize(&e))
		}
	}
	// Every segment ends exactly after its last frame.
	for k, base := range c.bases {
		lastIdx := uint64(crashN)
		if k+1 < len(c.bases) {
			lastIdx = c.bases[k+1] - 1
		}
		if c.frames[lastIdx].end != c.sizes[base] {
			t.Fatalf("segment %d is %d bytes, its last frame ends at %d", base, c.sizes[base], c.frames[lastIdx].end)
		}
	}
	// The last entry has data, extensions and a time, so the torn-tail
	// tests cut through every kind of field.
	last := entry(crashN)
	if len(last.Data) == 0 || len(last.Extensions) == 0 || last.AppendedAt.IsZero() {
		t.Fatalf("entry %d lacks a field: %+v", crashN, last)
	}
}

// TestCrashTornTailEveryOffset cuts the last segment at every byte offset
// inside the last entry's frame, as a crash in the middle of its write
// would (and as a crash between the write and an fsync that never came may,
// on any file system).
func TestCrashTornTailEveryOffset(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	last := c.frames[crashN]
	for cut := last.start; cut < last.end; cut++ {
		crashRestore(t, src, work)
		path := filepath.Join(work, filepath.Base(last.path))
		crashTruncate(t, path, cut)
		t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
			crashOpensWith(t, work, crashN-1)
			// The torn bytes are gone from the file, not just ignored.
			if got := crashSize(t, path); got != last.start {
				t.Fatalf("segment is %d bytes after recovery, want %d (end of entry %d)", got, last.start, crashN-1)
			}
			crashAppendReopen(t, work, crashN-1)
		})
		if t.Failed() {
			return // one report is enough; the rest would repeat it
		}
	}
}

// TestCrashTornSegmentHeader covers a crash while a new segment was being
// created: the last segment file holds only part of its header (or a
// zero-filled one). Entries in the lost segment never made it to disk.
func TestCrashTornSegmentHeader(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	base := c.bases[len(c.bases)-1]
	for size := int64(0); size <= segmentHeaderSize; size++ {
		for _, dropIdx := range []bool{false, true} {
			t.Run(fmt.Sprintf("size=%d/dropPrevIdx=%v", size, dropIdx), func(t *testing.T) {
				crashRestore(t, src, work)
				path := c.segPath(work, base)
				if size == segmentHeaderSize {
					crashWrite(t, path, make([]byte, segmentHeaderSize)) // header allocated, never written
				} else {
					crashTruncate(t, path, size)
				}
				if dropIdx {
					// The previous segment's index had not reached disk either.
					if err := os.Remove(c.idxPath(work, c.bases[len(c.bases)-2])); err != nil {
						t.Fatal(err)
					}
				}
				crashRecovered(t, work, base-1)
				// The rebuilt segment must have a valid header.
				hdr := crashRead(t, path)[:segmentHeaderSize]
				if !bytes.Equal(hdr, fileHeader(segmentMagic, base)) {
					t.Fatalf("segment header after recovery %x, want %x", hdr, fileHeader(segmentMagic, base))
				}
			})
		}
	}
	// A log whose only segment was torn while being created is empty.
	for size := int64(0); size < segmentHeaderSize; size++ {
		dir := t.TempDir()
		crashWrite(t, c.segPath(dir, 1), fileHeader(segmentMagic, 1)[:size])
		crashRecovered(t, dir, 0)
	}
}

// TestCrashZeroFilledTail covers blocks that were allocated (the file size
// reached disk) but whose data was not written before the crash.
func TestCrashZeroFilledTail(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	last := c.frames[crashN]
	prev := c.frames[crashN-1]
	cases := []struct {
		name     string
		from, to int64 // zeroed range of the last segment
		want     uint64
	}{
		{"zeros after the last frame/1", last.end, last.end + 1, crashN},
		{"zeros after the last frame/39", last.end, last.end + 39, crashN},
		{"zeros after the last frame/40", last.end, last.end + 40, crashN},
		{"zeros after the last frame/41", last.end, last.end + 41, crashN},
		{"zeros after the last frame/page", last.end, last.end + 4096, crashN},
		{"zeros after the last frame/3 pages", last.end, last.end + 3*4096, crashN},
		{"last frame zeroed", last.start, last.end, crashN - 1},
		{"last frame header zeroed", last.start, last.start + frameHeaderSize, crashN - 1},
		{"last frame zeroed to the next page", last.start, (last.end/4096 + 1) * 4096, crashN - 1},
		{"last frame zeroed from its middle", (last.start + last.end) / 2, last.end + 100, crashN - 1},
		{"last two frames zeroed", prev.start, last.end, crashN - 2},
		{"last two frames zeroed and more", prev.start, last.end + 4096, crashN - 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			crashRestore(t, src, work)
			path := filepath.Join(work, filepath.Base(last.path))
			crashZero(t, path, tc.from, tc.to)
			crashRecovered(t, work, tc.want)
			cutAt := c.frames[tc.want+1].start
			if tc.want == crashN {
				cutAt = last.end
			}
			// crashRecovered appended one entry after the cut.
			e := entry(tc.want + 1)
			if got, want := crashSize(t, path), cutAt+frameSize(&e); got != want {
				t.Fatalf("segment is %d bytes, want %d: the zero tail was not cut", got, want)
			}
		})
	}
}

// TestCrashBitFlipLastEntry damages every byte of the last entry's frame
// in turn: a failed frame at the very end of the log is a torn write and is
// cut off, together with nothing else.
func TestCrashBitFlipLastEntry(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	last := c.frames[crashN]
	for off := last.start; off < last.end; off++ {
		masks := []byte{0xFF}
		if off-last.start < frameHeaderSize {
			// In the header a single bit differs from a whole byte: a
			// length that changes a little rather than a lot.
			masks = append(masks, 1<<(off%8))
		}
		for _, mask := range masks {
			crashRestore(t, src, work)
			path := filepath.Join(work, filepath.Base(last.path))
			crashXor(t, path, off, mask)
			t.Run(fmt.Sprintf("byte=%d/mask=%#02x", off-last.start, mask), func(t *testing.T) {
				crashOpensWith(t, work, crashN-1)
				if got := crashSize(t, path); got != last.start {
					t.Fatalf("segment is %d bytes after recovery, want %d", got, last.start)
				}
				if mask == 0xFF { // the torn-tail test appends after every cut already
					crashAppendReopen(t, work, crashN-1)
				}
			})
			if t.Failed() {
				return
			}
		}
	}
}

// TestCrashMidActiveDamageIsCorrupt damages an entry of the active segment
// that is followed by valid frames. That is not a torn write: the entries
// after it were complete (and maybe acknowledged), so Open must fail with a
// *CorruptError naming the place instead of cutting them off silently, and
// must leave the file as it found it.
func TestCrashMidActiveDamageIsCorrupt(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	const victim = 39 // entries 40..42 follow it in the active segment
	fr := c.frames[victim]
	// open opens work and returns the active segment's bytes before and
	// after, and Open's error; if Open succeeds, the error says what it
	// kept.
	open := func(t *testing.T) (before, after []byte, err error) {
		path := filepath.Join(work, filepath.Base(fr.path))
		before = crashRead(t, path)
		l, err := crashOpen(t, work)
		if err == nil {
			err = fmt.Errorf("Open succeeded with LastIndex %d: entries %d..%d were dropped silently", l.LastIndex(), l.LastIndex()+1, crashN)
			l.Close()
			if !bytes.Equal(before, crashRead(t, path)) {
				err = fmt.Errorf("%w (and cut from the file)", err)
			}
		}
		return before, crashRead(t, path), err
	}

	t.Run("every byte", func(t *testing.T) {
		var bad []string
		for off := fr.start; off < fr.end; off++ {
			for _, mask := range []byte{0xFF, 1 << (off % 8)} {
				crashRestore(t, src, work)
				crashXor(t, filepath.Join(work, filepath.Base(fr.path)), off, mask)
				before, after, err := open(t)
				why := crashCorruptAt(err, filepath.Join(work, filepath.Base(fr.path)), fr.start)
				if why == "" && !bytes.Equal(before, after) {
					why = "Open failed but changed the segment file"
				}
				if why != "" {
					bad = append(bad, fmt.Sprintf("frame byte %d ^ %#02x: %s", off-fr.start, mask, why))
				}
			}
		}
		if len(bad) > 0 {
			t.Errorf("entry %d damaged in the middle of the active segment, entries %d..%d intact after it; "+
				"%d of %d damaged variants were not reported as corruption at byte %d:\n  %s",
				victim, victim+1, crashN, len(bad), 2*(fr.end-fr.start), fr.start, strings.Join(bad, "\n  "))
		}
	})

	zeroCases := []struct {
		name     string
		index    uint64
		from, to int64
	}{
		{"frame zeroed", victim, fr.start, fr.end},
		{"frame header zeroed", victim, fr.start, fr.start + frameHeaderSize},
		{"two frames zeroed", victim, fr.start, c.frames[victim+1].end},
		{"first frame of the segment zeroed", 34, c.frames[34].start, c.frames[34].end},
	}
	for _, zc := range zeroCases {
		t.Run(zc.name, func(t *testing.T) {
			crashRestore(t, src, work)
			path := filepath.Join(work, filepath.Base(fr.path))
			crashZero(t, path, zc.from, zc.to)
			before, after, err := open(t)
			crashWantCorrupt(t, err, path, zc.from, zc.index)
			if !bytes.Equal(before, after) {
				t.Fatal("failed Open changed the segment file")
			}
		})
	}

	// The segment header was fsynced before the first frame was written, so
	// a bad header in front of valid frames is corruption too, zeroed or not.
	for _, hc := range []struct {
		name string
		hdr  []byte
	}{
		{"segment header zeroed", make([]byte, segmentHeaderSize)},
		{"segment header garbage", []byte("garbage!garbage!")},
	} {
		t.Run(hc.name, func(t *testing.T) {
			crashRestore(t, src, work)
			path := filepath.Join(work, filepath.Base(fr.path))
			b := crashRead(t, path)
			copy(b, hc.hdr)
			crashWrite(t, path, b)
			before, after, err := open(t)
			crashWantCorrupt(t, err, path, 0, 0)
			if !bytes.Equal(before, after) {
				t.Fatal("failed Open changed the segment file")
			}
		})
	}
}

// TestCrashSealedDamage damages an entry in the middle of a sealed segment.
// With a consistent index file the segment is trusted and the damage shows
// up when the entry is read; without one, the rebuild scan finds it and Open
// fails.
func TestCrashSealedDamage(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	const victim = 21 // in the sealed segment 14..24, neither first nor last
	fr := c.frames[victim]
	if b := c.frames[victim-1].path; b != fr.path || c.frames[victim+1].path != fr.path {
		t.Fatalf("entry %d is not in the middle of its segment", victim)
	}
	const base = 14
	path := c.segPath(work, base)
	damage := func(t *testing.T, off int64) {
		crashRestore(t, src, work)
		crashXor(t, path, off, 0xFF)
	}
	for off := fr.start; off < fr.end; off++ {
		t.Run(fmt.Sprintf("byte=%d/read", off-fr.start), func(t *testing.T) {
			damage(t, off)
			l, err := crashOpen(t, work)
			if err != nil {
				t.Fatalf("Open with a consistent index: %v", err)
			}
			defer l.Close()
			if l.FirstIndex() != 1 || l.LastIndex() != crashN {
				t.Fatalf("log is %d..%d, want 1..%d", l.FirstIndex(), l.LastIndex(), crashN)
			}
			_, err = l.Read(victim)
			crashWantCorrupt(t, err, path, fr.start, victim)
			for i := uint64(1); i <= crashN; i++ {
				if i == victim {
					continue
				}
				e, err := l.Read(i)
				if err != nil || !equalEntry(e, entry(i)) {
					t.Fatalf("Read(%d) next to the damage: %+v, %v", i, e, err)
				}
			}
			_, err = l.ReadRange(base, 1<<20)
			crashWantCorrupt(t, err, path, fr.start, victim)
			got, err := l.ReadRange(victim+1, 1<<20)
			if err != nil || len(got) == 0 || got[0].Index != victim+1 {
				t.Fatalf("ReadRange(%d) after the damage: %d entries, %v", victim+1, len(got), err)
			}
		})

		// The same damage with the index gone (or torn): the rebuild scan
		// must refuse the segment, and leave it as it is.
		for _, idx := range []string{"deleted", "truncated"} {
			t.Run(fmt.Sprintf("byte=%d/index %s", off-fr.start, idx), func(t *testing.T) {
				damage(t, off)
				idxPath := c.idxPath(work, base)
				if idx == "deleted" {
					if err := os.Remove(idxPath); err != nil {
						t.Fatal(err)
					}
				} else {
					crashTruncate(t, idxPath, indexHeaderSize+3*indexEntrySize+5)
				}
				before := crashRead(t, path)
				_, err := crashOpen(t, work)
				crashWantCorrupt(t, err, path, fr.start, victim)
				if !bytes.Equal(before, crashRead(t, path)) {
					t.Fatal("failed Open changed the segment file")
				}
			})
		}
		if t.Failed() {
			return
		}
	}
}

// TestCrashSealedSegmentMustBeWhole: only the last segment may have a torn
// tail. A sealed segment that is short, long or bad at its end fails Open
// whatever its index says.
func TestCrashSealedSegmentMustBeWhole(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	const base = 14
	lastFr := c.frames[24]
	cases := []struct {
		name   string
		damage func(path string)
		off    int64 // expected CorruptError offset, -1 for any
	}{
		{"last frame torn", func(p string) { crashTruncate(t, p, lastFr.end-1) }, lastFr.start},
		{"last frame missing", func(p string) { crashTruncate(t, p, lastFr.start) }, -1},
		{"last frame bit flip", func(p string) { crashXor(t, p, lastFr.end-1, 0x10) }, lastFr.start},
		{"zeros appended", func(p string) { crashZero(t, p, lastFr.end, lastFr.end+4096) }, lastFr.end},
		{"header only", func(p string) { crashTruncate(t, p, segmentHeaderSize) }, -1},
		{"partial header", func(p string) { crashTruncate(t, p, 7) }, 0},
	}
	for _, tc := range cases {
		for _, dropIdx := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dropIdx=%v", tc.name, dropIdx), func(t *testing.T) {
				crashRestore(t, src, work)
				path := c.segPath(work, base)
				tc.damage(path)
				if dropIdx {
					if err := os.Remove(c.idxPath(work, base)); err != nil {
						t.Fatal(err)
					}
				}
				_, err := crashOpen(t, work)
				if tc.off >= 0 {
					crashWantCorrupt(t, err, path, tc.off, 0)
				} else if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open: %v, want ErrCorrupt", err)
				}
			})
		}
	}
}

// TestCrashIndexRebuild: a sealed segment's index file that is missing,
// short or garbage is rebuilt from the segment, byte for byte as it was.
func TestCrashIndexRebuild(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	sealed := c.bases[:len(c.bases)-1]
	orig := map[uint64][]byte{}
	for _, base := range sealed {
		orig[base] = crashRead(t, c.idxPath(src, base))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	type mut func(base uint64, b []byte) []byte // nil result: delete the file
	cases := []struct {
		name string
		mut  mut
	}{
		{"missing", func(uint64, []byte) []byte { return nil }},
		{"empty", func(uint64, []byte) []byte { return []byte{} }},
		{"1 byte", func(_ uint64, b []byte) []byte { return b[:1] }},
		{"partial header", func(_ uint64, b []byte) []byte { return b[:indexHeaderSize-1] }},
		{"header only", func(_ uint64, b []byte) []byte { return b[:indexHeaderSize] }},
		{"header and partial position", func(_ uint64, b []byte) []byte { return b[:indexHeaderSize+3] }},
		{"one position", func(_ uint64, b []byte) []byte { return b[:indexHeaderSize+indexEntrySize] }},
		{"last position missing", func(_ uint64, b []byte) []byte { return b[:len(b)-indexEntrySize] }},
		{"last byte missing", func(_ uint64, b []byte) []byte { return b[:len(b)-1] }},
		{"extra position", func(_ uint64, b []byte) []byte {
			return binary.LittleEndian.AppendUint64(append([]byte(nil), b...), 1<<40)
		}},
		{"extra zero position", func(_ uint64, b []byte) []byte { return append(append([]byte(nil), b...), make([]byte, 8)...) }},
		{"random garbage", func(_ uint64, b []byte) []byte { return garbage(len(b)) }},
		{"random garbage after the header", func(_ uint64, b []byte) []byte {
			return append(append([]byte(nil), b[:indexHeaderSize]...), garbage(len(b)-indexHeaderSize)...)
		}},
		{"zeros", func(_ uint64, b []byte) []byte { return make([]byte, len(b)) }},
		{"zero positions", func(_ uint64, b []byte) []byte {
			return append(append([]byte(nil), b[:indexHeaderSize]...), make([]byte, len(b)-indexHeaderSize)...)
		}},
		{"wrong magic", func(_ uint64, b []byte) []byte { b = append([]byte(nil), b...); copy(b, "LMQS"); return b }},
		{"wrong base", func(base uint64, b []byte) []byte {
			b = append([]byte(nil), b...)
			binary.LittleEndian.PutUint64(b[8:], base+1)
			return b
		}},
		{"positions reversed", func(_ uint64, b []byte) []byte {
			b = append([]byte(nil), b...)
			n := (len(b) - indexHeaderSize) / indexEntrySize
			for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
				pi := b[indexHeaderSize+i*8 : indexHeaderSize+i*8+8]
				pj := b[indexHeaderSize+j*8 : indexHeaderSize+j*8+8]
				var tmp [8]byte
				copy(tmp[:], pi)
				copy(pi, pj)
				copy(pj, tmp[:])
			}
			return b
		}},
		{"last position off by one", func(_ uint64, b []byte) []byte {
			b = append([]byte(nil), b...)
			p := b[len(b)-8:]
			binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)+1)
			return b
		}},
		{"positions shifted by one frame", func(_ uint64, b []byte) []byte {
			// Drop the first position: count and last frame disagree.
			out := append([]byte(nil), b[:indexHeaderSize]...)
			return append(out, b[indexHeaderSize+8:]...)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			crashRestore(t, src, work)
			for _, base := range sealed {
				p := c.idxPath(work, base)
				if b := tc.mut(base, orig[base]); b == nil {
					if err := os.Remove(p); err != nil {
						t.Fatal(err)
					}
				} else {
					crashWrite(t, p, b)
				}
			}
			l, err := crashOpen(t, work)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			checkContents(t, l, 1, crashN)
			got, err := l.ReadRange(1, 1<<20)
			if err != nil || len(got) != crashN {
				t.Fatalf("ReadRange(1): %d entries, %v", len(got), err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for _, base := range sealed {
				if b := crashRead(t, c.idxPath(work, base)); !bytes.Equal(b, orig[base]) {
					t.Fatalf("index of segment %d after Open:\n%x\nwant\n%x", base, b, orig[base])
				}
			}
			crashRecovered(t, work, crashN)
		})
	}
}

// TestCrashIndexPerturbed changes one position of a sealed index at a time.
// The segment is intact, so Open must succeed; whether it trusts the index
// or rebuilds it, a read must return the right entry or a *CorruptError,
// never another entry or bytes that are not a frame.
func TestCrashIndexPerturbed(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	for k, base := range c.bases[:len(c.bases)-1] {
		orig := crashRead(t, c.idxPath(src, base))
		n := (len(orig) - indexHeaderSize) / indexEntrySize
		if uint64(n) != c.bases[k+1]-base {
			t.Fatalf("index of %d has %d positions, want %d", base, n, c.bases[k+1]-base)
		}
		for i := 0; i < n; i++ {
			at := indexHeaderSize + i*indexEntrySize
			p := binary.LittleEndian.Uint64(orig[at:])
			for _, np := range []uint64{p + 1, p - 1, p + frameHeaderSize, 0, uint64(c.sizes[base]), math.MaxUint64} {
				if np == p {
					continue
				}
				b := append([]byte(nil), orig...)
				binary.LittleEndian.PutUint64(b[at:], np)
				crashRestore(t, src, work)
				crashWrite(t, c.idxPath(work, base), b)
				l, err := crashOpen(t, work)
				if err != nil {
					t.Fatalf("segment %d position %d = %d: Open: %v", base, i, np, err)
				}
				if l.FirstIndex() != 1 || l.LastIndex() != crashN {
					t.Fatalf("segment %d position %d = %d: log is %d..%d", base, i, np, l.FirstIndex(), l.LastIndex())
				}
				for j := uint64(1); j <= crashN; j++ {
					e, err := l.Read(j)
					if err != nil {
						var ce *CorruptError
						if !errors.As(err, &ce) || ce.File != c.segPath(work, base) {
							t.Fatalf("segment %d position %d = %d: Read(%d): %v", base, i, np, j, err)
						}
						continue
					}
					if !equalEntry(e, entry(j)) {
						t.Fatalf("segment %d position %d = %d: Read(%d) returned %+v", base, i, np, j, e)
					}
				}
				l.Close()
			}
		}
	}
}

// TestCrashIndexPositionOverflow: an index whose last position is so large
// that adding the frame header size overflows int64 must be rejected (and
// rebuilt) like any other position past the end of the segment, not make
// Open panic.
func TestCrashIndexPositionOverflow(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	const base = 14
	for _, np := range []uint64{math.MaxInt64, math.MaxInt64 - frameHeaderSize + 1, math.MaxInt64 - 8} {
		t.Run(fmt.Sprintf("%#x", np), func(t *testing.T) {
			crashRestore(t, src, work)
			p := c.idxPath(work, base)
			b := crashRead(t, p)
			binary.LittleEndian.PutUint64(b[len(b)-indexEntrySize:], np)
			crashWrite(t, p, b)
			crashRecovered(t, work, crashN)
		})
	}
}

// TestCrashWrongIndexAtTail: a frame that verifies but holds the wrong
// entry (a stale copy of an earlier one, or one from further ahead) is not
// the next entry. At the tail it is cut off like a torn write.
func TestCrashWrongIndexAtTail(t *testing.T) {
	src, c := crashPristine(t)
	work := t.TempDir()
	last := c.frames[crashN]
	for _, index := range []uint64{crashN - 1, crashN, crashN + 2, 1} {
		t.Run(fmt.Sprintf("index=%d", index), func(t *testing.T) {
			crashRestore(t, src, work)
			path := filepath.Join(work, filepath.Base(last.path))
			e := entry(index)
			crashWrite(t, path, EncodeEntry(crashRead(t, path), &e))
			crashOpensWith(t, work, crashN)
			if got := crashSize(t, path); got != last.end {
				t.Fatalf("segment is %d bytes after recovery, want %d", got, last.end)
			}
			crashAppendReopen(t, work, crashN)
		})
	}
}
