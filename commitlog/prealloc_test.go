package commitlog

import (
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// countFS counts the fsyncs and fdatasyncs of the files it opens.
type countFS struct {
	OSFS
	syncs, datasyncs atomic.Int64
}

func (c *countFS) OpenFile(path string, flag int, perm os.FileMode) (File, error) {
	f, err := c.OSFS.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countFile{File: f, c: c}, nil
}

type countFile struct {
	File
	c *countFS
}

func (f *countFile) Sync() error { f.c.syncs.Add(1); return f.File.Sync() }

func (f *countFile) Datasync() error {
	f.c.datasyncs.Add(1)
	return f.File.(datasyncer).Datasync()
}

func (f *countFile) SyncRange(off, n int64) error { return f.File.(rangeSyncer).SyncRange(off, n) }

func activeSegmentFile(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no segment in %s: %v", dir, err)
	}
	return m[len(m)-1]
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestPreallocDatasync: durable appends into the range the zeroer filled
// and made durable are made durable with fdatasync alone; the file is
// longer than its frames while the log is open, exactly as long once it is
// closed.
func TestPreallocDatasync(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("fdatasync is used on Linux only")
	}
	dir := t.TempDir()
	fs := &countFS{}
	o := testOptions()
	o.FS, o.SegmentSize, o.PreallocBytes = fs, 4<<20, 1<<20
	l := mustOpen(t, dir, o)
	// The zeroer fills the first MiB in the background; the appends below
	// (about 120 KB) stay inside it.
	deadline := time.Now().Add(10 * time.Second)
	for l.active().allocDurable.Load() < 1<<20 {
		if time.Now().After(deadline) {
			t.Fatal("the zeroer did not fill the segment ahead within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	before := fs.syncs.Load()
	const n = 300
	for i := uint64(1); i <= n; i++ {
		if err := l.Append([]Entry{entry(i)}); err != nil {
			t.Fatal(err)
		}
	}
	syncs, datasyncs := fs.syncs.Load()-before, fs.datasyncs.Load()
	t.Logf("%d durable appends: %d fsyncs, %d fdatasyncs", n, syncs, datasyncs)
	if datasyncs != n || syncs != 0 {
		t.Fatalf("%d durable appends inside the zeroed range took %d fsyncs and %d fdatasyncs, want 0 and %d", n, syncs, datasyncs, n)
	}
	seg := activeSegmentFile(t, dir)
	end := l.active().size
	if got := fileSize(t, seg); got <= end {
		t.Fatalf("open segment is %d bytes, its frames end at %d: nothing preallocated", got, end)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, seg); got != end {
		t.Fatalf("closed segment is %d bytes, its frames end at %d", got, end)
	}
}

// TestPreallocCrash: a crash leaves the active segment with its
// preallocated zeros; Open reads every entry and cuts the zeros. After a
// truncation, the cut entries do not come back from the preallocated range,
// and a reopened log appends after the recovered end.
func TestPreallocCrash(t *testing.T) {
	dir, work := t.TempDir(), t.TempDir()
	o := testOptions()
	o.SegmentSize, o.PreallocBytes = 1<<20, 64<<10
	l := mustOpen(t, dir, o)
	defer l.Close()
	for i := uint64(1); i <= 120; i++ {
		if err := l.Append([]Entry{entry(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.TruncateAfter(80); err != nil {
		t.Fatal(err)
	}
	replaced := func(i uint64) Entry { e := entry(i); e.Term += 100; return e }
	for i := uint64(81); i <= 100; i++ {
		if err := l.Append([]Entry{replaced(i)}); err != nil {
			t.Fatal(err)
		}
	}
	end := l.active().size
	crashRestore(t, dir, work) // the files as a crash leaves them: the log is still open
	if fileSize(t, activeSegmentFile(t, work)) <= end && runtime.GOOS == "linux" {
		t.Fatal("the crashed copy has no preallocated tail: the test does not test it")
	}
	// Opened without zeroing ahead, so that the file shows the cut.
	noZeros := o
	noZeros.PreallocBytes = 0
	r := mustOpen(t, work, noZeros)
	if got := r.LastIndex(); got != 100 {
		t.Fatalf("recovered up to %d, want 100", got)
	}
	for i := uint64(1); i <= 100; i++ {
		want := entry(i)
		if i > 80 {
			want = replaced(i)
		}
		got, err := r.Read(i)
		if err != nil || !equalEntry(got, want) {
			t.Fatalf("entry %d: %+v, %v", i, got, err)
		}
	}
	if got := fileSize(t, activeSegmentFile(t, work)); got != end {
		t.Fatalf("recovered segment is %d bytes, its frames end at %d: the zero tail was not cut", got, end)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = mustOpen(t, work, o)
	if err := r.Append([]Entry{entry(101)}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = mustOpen(t, work, o)
	defer r.Close()
	if got := r.LastIndex(); got != 101 {
		t.Fatalf("after reopening: last index %d, want 101", got)
	}
}

// TestPreallocIdleWithLargeSyncs: when each sync makes hundreds of KiB
// durable, zeros ahead would cost more than they save: the zeroer stops,
// appends grow the file and syncs are fsyncs. Small syncs start it again.
func TestPreallocIdleWithLargeSyncs(t *testing.T) {
	dir := t.TempDir()
	fs := &countFS{}
	o := testOptions()
	o.FS, o.SegmentSize, o.MaxEntrySize, o.PreallocBytes = fs, 64<<20, 1<<20, 1<<20
	l := mustOpen(t, dir, o)
	defer l.Close()
	big := make([]byte, 300<<10)
	next := uint64(1)
	appendOne := func(data []byte) {
		t.Helper()
		if err := l.Append([]Entry{{Index: next, Term: 1, Data: data}}); err != nil {
			t.Fatal(err)
		}
		next++
	}
	for range 30 {
		appendOne(big)
	}
	if avg := l.zero.avgSync.Load(); avg <= zeroMaxSyncBytes {
		t.Fatalf("average sync %d bytes after 300 KiB syncs", avg)
	}
	syncs := fs.syncs.Load()
	for range 5 {
		appendOne(big)
	}
	if got := fs.syncs.Load() - syncs; got != 5 {
		t.Fatalf("5 durable 300 KiB appends past the zeroed range took %d fsyncs, want 5", got)
	}
	seg := activeSegmentFile(t, dir)
	if got, end := fileSize(t, seg), l.active().size; got != end {
		t.Fatalf("segment is %d bytes, its frames end at %d: zeros were written while syncs were large", got, end)
	}
	// Small syncs bring the average down and the zeros back.
	deadline := time.Now().Add(10 * time.Second)
	for l.active().allocDurable.Load() <= l.active().size+(1<<19) {
		if time.Now().After(deadline) {
			t.Fatalf("no zeros ahead after small syncs (average %d bytes)", l.zero.avgSync.Load())
		}
		appendOne([]byte("small"))
		time.Sleep(time.Millisecond)
	}
}
