package commitlog

// Tests of the write and read paths' performance features: page-aligned
// encode runs, vectored writes of large entries, and ReadRangeInto.

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func perfOptions() Options {
	o := DefaultOptions()
	o.Sync = SyncNever
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return o
}

// perfEntries returns n entries from index 1 whose payloads mix small
// entries with large ones (written from the caller's memory), some of the
// large ones all Extensions or with no Extensions.
func perfEntries(n int, seed uint64) []Entry {
	rng := rand.New(rand.NewPCG(seed, 7))
	payload := func(size int) []byte {
		p := make([]byte, size)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}
	es := make([]Entry, n)
	for i := range es {
		e := Entry{Index: uint64(i + 1), Term: uint64(i/5 + 1), Type: uint8(i % 3), AppendedAt: time.Unix(1700000000, int64(i)).UTC()}
		switch i % 4 {
		case 0:
			e.Data = payload(rng.IntN(3000))
		case 1:
			e.Data = payload(largePayload + rng.IntN(100<<10))
			e.Extensions = payload(rng.IntN(100))
		case 2:
			e.Data = payload(rng.IntN(200))
			e.Extensions = payload(rng.IntN(50))
		case 3:
			e.Extensions = payload(largePayload) // exactly the threshold
		}
		es[i] = e
	}
	return es
}

func sameEntry(a, b Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

// copyingFS hides the OS files' WriteVAt, so Append copies every entry.
type copyingFS struct{ OSFS }

type copyingFile struct{ File }

func (copyingFS) OpenFile(path string, flag int, perm os.FileMode) (File, error) {
	f, err := OSFS{}.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return copyingFile{f}, nil
}

func (f copyingFile) Fd() uintptr { return f.File.(interface{ Fd() uintptr }).Fd() }

// TestAppendLargeEntries appends a mix of small and large entries across
// segment rolls, in batches of several sizes, once with vectored writes and
// once with copies: both must write the same bytes, read back, and reopen.
func TestAppendLargeEntries(t *testing.T) {
	if _, ok := File(osFile{}).(vectorWriter); !ok {
		t.Log("no vectored writes on this platform; both logs copy")
	}
	es := perfEntries(40, 1)
	var dirs []string
	for _, fsys := range []FS{OSFS{}, copyingFS{}} {
		dir := t.TempDir()
		dirs = append(dirs, dir)
		o := perfOptions()
		o.FS = fsys
		o.SegmentSize = 400 << 10
		l, err := Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := 0, 1; i < len(es); i, n = i+n, n%7+1 {
			if err := l.Append(es[i:min(i+n, len(es))]); err != nil {
				t.Fatalf("Append(%d..): %v", i+1, err)
			}
		}
		checkEntries(t, l, es)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if l, err = Open(dir, o); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		checkEntries(t, l, es)
		if st := l.Stats(); st.Segments < 3 {
			t.Errorf("%d segments, want a few rolls", st.Segments)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	names, err := os.ReadDir(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if filepath.Ext(n.Name()) != segmentFileSuffix {
			continue
		}
		a, errA := os.ReadFile(filepath.Join(dirs[0], n.Name()))
		b, errB := os.ReadFile(filepath.Join(dirs[1], n.Name()))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between vectored and copying writes (%v, %v)", n.Name(), errA, errB)
		}
	}
}

func checkEntries(t *testing.T, l *Log, want []Entry) {
	t.Helper()
	for _, w := range want {
		got, err := l.Read(w.Index)
		if err != nil {
			t.Fatalf("Read(%d): %v", w.Index, err)
		}
		if !sameEntry(got, w) {
			t.Fatalf("Read(%d) = %d data, %d ext bytes; want %d, %d", w.Index, len(got.Data), len(got.Extensions), len(w.Data), len(w.Extensions))
		}
	}
}

// TestWriteBatchAlignment checks that every run of encoded frames starts at
// an address aligned like its file offset: at a segment's first frame, after
// a large entry written from the caller's memory, and from other offsets.
func TestWriteBatchAlignment(t *testing.T) {
	small := Entry{Data: make([]byte, 1000)}
	large := Entry{Data: make([]byte, largePayload+3)}
	es := []Entry{small, small, large, small, large, large, small, small}
	for _, off := range []int64{segmentHeaderSize, 4095, 1 << 20, 12345} {
		var b writeBatch
		b.prepare(es, osFile{}, off)
		for i := range es {
			b.add(&es[i])
		}
		inBuf := func(p []byte) bool {
			base := uintptr(unsafe.Pointer(unsafe.SliceData(b.buf[:cap(b.buf)])))
			addr := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
			return addr >= base && addr < base+uintptr(cap(b.buf))
		}
		p, runs := off, 0
		for _, v := range b.buffers() {
			if len(v) > 0 && inBuf(v) {
				runs++
				if addr := int64(uintptr(unsafe.Pointer(&v[0]))); addr%pageSize != p%pageSize {
					t.Errorf("off %d: run at file offset %d has address %#x, not aligned like it", off, p, addr)
				}
			}
			p += int64(len(v))
		}
		if p != off+b.size {
			t.Errorf("off %d: buffers add up to %d bytes, the batch has %d", off, p-off, b.size)
		}
		if _, vectored := File(osFile{}).(vectorWriter); vectored && runs != 3 {
			t.Errorf("off %d: %d runs of encoded frames, want 3", off, runs)
		}
		b.release()
	}
}

// failingFS's files write only part of a vectored write and then fail,
// while armed.
type failingFS struct {
	OSFS
	armed *atomic.Bool
}

type failingFile struct {
	File
	armed *atomic.Bool
}

func (fs failingFS) OpenFile(path string, flag int, perm os.FileMode) (File, error) {
	f, err := OSFS{}.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return failingFile{f, fs.armed}, nil
}

func (f failingFile) Fd() uintptr { return f.File.(interface{ Fd() uintptr }).Fd() }

// WriteVAt writes through WriteAt, so it runs on every platform; armed, it
// writes half the bytes and fails.
func (f failingFile) WriteVAt(bufs [][]byte, off int64) (int, error) {
	var all []byte
	for _, b := range bufs {
		all = append(all, b...)
	}
	if f.armed.Load() {
		n, _ := f.WriteAt(all[:len(all)/2], off)
		return n, errors.New("injected short write")
	}
	return f.WriteAt(all, off)
}

// TestFailedVectoredWriteIsCutBack checks that a vectored write that fails
// part way leaves nothing of the batch in the file or the log, and that the
// log goes on.
func TestFailedVectoredWriteIsCutBack(t *testing.T) {
	dir := t.TempDir()
	var armed atomic.Bool
	o := perfOptions()
	o.FS = failingFS{armed: &armed}
	l, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	es := perfEntries(8, 2)
	if err := l.Append(es[:4]); err != nil {
		t.Fatal(err)
	}
	seg, _ := segmentPaths(dir, 1)
	l.mu.RLock()
	frames := l.active().size // the file may be longer: zeros written ahead (prealloc.go)
	l.mu.RUnlock()
	armed.Store(true)
	if err := l.Append(es[4:]); err == nil {
		t.Fatal("Append succeeded through a failing write")
	}
	armed.Store(false)
	if after, err := os.Stat(seg); err != nil || after.Size() != frames {
		t.Fatalf("segment is %d bytes after the failed write (%v), want it cut back to its last frame, %d", after.Size(), err, frames)
	}
	if got := l.LastIndex(); got != 4 {
		t.Fatalf("LastIndex = %d after the failed Append, want 4", got)
	}
	if err := l.Append(es[4:]); err != nil {
		t.Fatalf("Append after the failure: %v", err)
	}
	checkEntries(t, l, es)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err = Open(dir, perfOptions()); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	checkEntries(t, l, es)
	l.Close()
}

// TestWriteVAt writes more buffers than one pwritev takes, empty ones
// among them, and checks the file.
func TestWriteVAt(t *testing.T) {
	f, err := OSFS{}.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vw, ok := f.(vectorWriter)
	if !ok {
		t.Skip("no vectored writes on this platform")
	}
	var bufs [][]byte
	var want []byte
	for i := range 3000 {
		b := bytes.Repeat([]byte{byte(i)}, i%5)
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	kept := append([][]byte(nil), bufs...)
	n, err := vw.WriteVAt(bufs, 10)
	if err != nil || n != len(want) {
		t.Fatalf("WriteVAt = %d, %v; want %d, nil", n, err, len(want))
	}
	for i := range bufs {
		if len(bufs[i]) != len(kept[i]) {
			t.Fatalf("WriteVAt changed the caller's buffer %d", i)
		}
	}
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, 10); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file holds other bytes than written (%v)", err)
	}
	if n, err := vw.WriteVAt([][]byte{nil, {}}, 0); n != 0 || err != nil {
		t.Fatalf("WriteVAt of nothing = %d, %v", n, err)
	}
}

// TestConsumeBufs checks what is left to write: empty buffers inside the
// list stay (pwritev takes them), leading ones go.
func TestConsumeBufs(t *testing.T) {
	mk := func() [][]byte { return [][]byte{{}, []byte("ab"), {}, []byte("cde"), []byte("f")} }
	for _, c := range []struct {
		n    int
		want string
	}{
		{0, "ab||cde|f"}, {1, "b||cde|f"}, {2, "cde|f"}, {4, "e|f"}, {5, "f"}, {6, ""},
	} {
		var parts []string
		for _, b := range consumeBufs(mk(), c.n) {
			parts = append(parts, string(b))
		}
		if got := strings.Join(parts, "|"); got != c.want {
			t.Errorf("consumeBufs(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

// TestReadRangeInto reads a multi-segment log with ReadRangeInto, reusing
// the buffers, under several budgets, against ReadRange, and checks that
// reads in the steady state allocate nothing.
func TestReadRangeInto(t *testing.T) {
	o := perfOptions()
	o.SegmentSize = 300 << 10
	l, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es := perfEntries(60, 3)
	if err := l.Append(es); err != nil {
		t.Fatal(err)
	}
	var dst []Entry
	var buf []byte
	for _, budget := range []int{0, 1, 5000, 200 << 10, 1 << 20, 64 << 20} {
		for from := uint64(1); from <= l.LastIndex(); {
			want, err := l.ReadRange(from, budget)
			if err != nil {
				t.Fatalf("ReadRange(%d, %d): %v", from, budget, err)
			}
			if dst, buf, err = l.ReadRangeInto(dst, buf, from, budget); err != nil {
				t.Fatalf("ReadRangeInto(%d, %d): %v", from, budget, err)
			}
			if len(dst) != len(want) || len(dst) == 0 {
				t.Fatalf("ReadRangeInto(%d, %d) returned %d entries, ReadRange %d", from, budget, len(dst), len(want))
			}
			for i := range dst {
				if !sameEntry(dst[i], want[i]) || !sameEntry(dst[i], es[from-1+uint64(i)]) {
					t.Fatalf("ReadRangeInto(%d, %d): entry %d differs", from, budget, dst[i].Index)
				}
			}
			checkReadAligned(t, l, dst)
			from += uint64(len(dst))
		}
	}
	if dst, buf, err = l.ReadRangeInto(dst, buf, l.LastIndex()+1, 1<<20); !errors.Is(err, ErrAfterLast) || len(dst) != 0 {
		t.Fatalf("ReadRangeInto past the end = %d entries, %v; want none, ErrAfterLast", len(dst), err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		dst, buf, err = l.ReadRangeInto(dst, buf, 1, 64<<20)
	})
	if err != nil || allocs != 0 {
		t.Fatalf("ReadRangeInto of the whole log with warm buffers: %v allocations per call (%v), want 0", allocs, err)
	}
}

// checkReadAligned checks that a read of at least minAlignedRead bytes put
// its first frame at an address aligned like the frame's file offset.
func checkReadAligned(t *testing.T, l *Log, es []Entry) {
	t.Helper()
	var size int64
	for i := range es {
		size += frameSize(&es[i])
	}
	e := es[0]
	payload := e.Data
	if len(payload) == 0 {
		payload = e.Extensions
	}
	if size < minAlignedRead || len(payload) == 0 {
		return
	}
	l.mu.RLock()
	s := l.findSegment(e.Index)
	off, _ := s.bounds(e.Index - s.base)
	l.mu.RUnlock()
	if addr := int64(uintptr(unsafe.Pointer(&payload[0]))) - frameHeaderSize; addr%pageSize != off%pageSize {
		t.Fatalf("entry %d at file offset %d was read to address %#x, not aligned like it", e.Index, off, addr)
	}
}
