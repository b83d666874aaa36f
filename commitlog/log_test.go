package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testOptions() Options {
	o := DefaultOptions()
	o.SegmentSize = 4 << 10
	o.MaxEntrySize = 8 << 10
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return o
}

func mustOpen(t testing.TB, dir string, o Options) *Log {
	t.Helper()
	l, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// entry builds a deterministic entry for index i.
func entry(i uint64) Entry {
	n := int(i*37) % 700
	data := bytes.Repeat([]byte{byte(i)}, n)
	var ext []byte
	if i%3 == 0 {
		ext = []byte(fmt.Sprintf("ext-%d", i))
	}
	var at time.Time
	if i%5 != 0 {
		at = time.Unix(1700000000, int64(i)).UTC()
	}
	if len(data) == 0 {
		data = nil
	}
	return Entry{Index: i, Term: i/10 + 1, Type: uint8(i % 4), Data: data, Extensions: ext, AppendedAt: at}
}

func entries(from, to uint64) []Entry {
	var out []Entry
	for i := from; i <= to; i++ {
		out = append(out, entry(i))
	}
	return out
}

func equalEntry(a, b Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt) && a.AppendedAt.IsZero() == b.AppendedAt.IsZero()
}

func checkContents(t testing.TB, l *Log, first, last uint64) {
	t.Helper()
	if got := l.FirstIndex(); got != first {
		t.Fatalf("FirstIndex = %d, want %d", got, first)
	}
	if got := l.LastIndex(); got != last {
		t.Fatalf("LastIndex = %d, want %d", got, last)
	}
	for i := first; i <= last; i++ {
		e, err := l.Read(i)
		if err != nil {
			t.Fatalf("Read(%d): %v", i, err)
		}
		if !equalEntry(e, entry(i)) {
			t.Fatalf("Read(%d) = %+v, want %+v", i, e, entry(i))
		}
	}
}

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	if l.FirstIndex() != 1 || l.LastIndex() != 0 {
		t.Fatalf("new log: first %d last %d", l.FirstIndex(), l.LastIndex())
	}
	for i := uint64(1); i <= 200; i += 10 {
		if err := l.Append(entries(i, i+9)); err != nil {
			t.Fatal(err)
		}
	}
	checkContents(t, l, 1, 200)
	if st := l.Stats(); st.Segments < 5 {
		t.Fatalf("expected several segments with 4 KiB segments, got %d", st.Segments)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, testOptions())
	defer l.Close()
	checkContents(t, l, 1, 200)
	if err := l.Append(entries(201, 220)); err != nil {
		t.Fatal(err)
	}
	checkContents(t, l, 1, 220)
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	if err := l.Append(entries(2, 3)); !errors.Is(err, ErrNonContiguous) {
		t.Fatalf("append at 2 on empty log: %v", err)
	}
	bad := entries(1, 3)
	bad[2].Index = 7
	if err := l.Append(bad); !errors.Is(err, ErrNonContiguous) {
		t.Fatalf("gap inside batch: %v", err)
	}
	big := entry(1)
	big.Data = make([]byte, 8<<10+1)
	if err := l.Append([]Entry{big}); !errors.Is(err, ErrEntryTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	if l.LastIndex() != 0 {
		t.Fatalf("failed appends changed the log: last %d", l.LastIndex())
	}
	if err := l.Append(entries(1, 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(6); !errors.Is(err, ErrAfterLast) {
		t.Fatalf("read past end: %v", err)
	}
	if _, err := l.Read(0); !errors.Is(err, ErrBeforeFirst) {
		t.Fatalf("read below first: %v", err)
	}
	if _, err := l.ReadRange(9, 100); !errors.Is(err, ErrAfterLast) {
		t.Fatalf("range past end: %v", err)
	}
	if _, err := Open(dir, testOptions()); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(entries(6, 6)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := l.Read(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("double close: %v", err)
	}
}

func TestVersionMismatch(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	if err := l.Append(entries(1, 3)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	path, _ := segmentPaths(dir, 1)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{9, 0}, 4)
	f.Close()
	_, err = Open(dir, testOptions())
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("open with version 9: %v", err)
	}
	t.Log(err)
}

func TestReadRange(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions())
	defer l.Close()
	if err := l.Append(entries(1, 300)); err != nil {
		t.Fatal(err)
	}
	for _, budget := range []int{0, 1, 100, 1000, 5000, 1 << 20} {
		for from := uint64(1); from <= 300; from += 17 {
			got, err := l.ReadRange(from, budget)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				t.Fatalf("ReadRange(%d, %d) returned nothing", from, budget)
			}
			total := 0
			for k, e := range got {
				if !equalEntry(e, entry(from+uint64(k))) {
					t.Fatalf("ReadRange(%d,%d)[%d] = %+v", from, budget, k, e)
				}
				total += int(frameSize(&e))
			}
			if len(got) > 1 && total > budget {
				t.Fatalf("ReadRange(%d, %d) returned %d bytes", from, budget, total)
			}
			// Maximal: the next entry would not have fit.
			if next := from + uint64(len(got)); next <= 300 {
				ne := entry(next)
				if total+int(frameSize(&ne)) <= budget {
					t.Fatalf("ReadRange(%d, %d) stopped early at %d (%d bytes)", from, budget, next, total)
				}
			}
		}
	}
}

func TestTruncateAfter(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	if err := l.Append(entries(1, 150)); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateAfter(100); err != nil {
		t.Fatal(err)
	}
	checkContents(t, l, 1, 100)
	if err := l.Append(entries(101, 120)); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateAfter(0); err != nil {
		t.Fatal(err)
	}
	checkContents(t, l, 1, 0)
	if err := l.Append(entries(1, 50)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = mustOpen(t, dir, testOptions())
	defer l.Close()
	checkContents(t, l, 1, 50)
}

func TestDeleteBeforeAndReset(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	if err := l.Append(entries(1, 300)); err != nil {
		t.Fatal(err)
	}
	n, err := l.DeleteBefore(150)
	if err != nil {
		t.Fatal(err)
	}
	first := l.FirstIndex()
	if n == 0 || first > 150 || first <= 1 {
		t.Fatalf("DeleteBefore(150) deleted %d segments, first now %d", n, first)
	}
	if _, err := l.Read(first - 1); !errors.Is(err, ErrBeforeFirst) {
		t.Fatalf("read below first after delete: %v", err)
	}
	checkContents(t, l, first, 300)
	if err := l.TruncateAfter(first - 2); !errors.Is(err, ErrBeforeFirst) {
		t.Fatalf("truncate below first: %v", err)
	}
	// Never the active segment.
	if _, err := l.DeleteBefore(10000); err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != 300 || l.Stats().Segments != 1 {
		t.Fatalf("DeleteBefore past the end: last %d segments %d", l.LastIndex(), l.Stats().Segments)
	}
	if err := l.Reset(1000); err != nil {
		t.Fatal(err)
	}
	checkContents(t, l, 1000, 999)
	if err := l.Append(entries(1000, 1010)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = mustOpen(t, dir, testOptions())
	defer l.Close()
	checkContents(t, l, 1000, 1010)
}

func TestInterruptedReset(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	if err := l.Append(entries(1, 100)); err != nil {
		t.Fatal(err)
	}
	if err := l.writeResetMarker(500); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = mustOpen(t, dir, testOptions())
	checkContents(t, l, 500, 499)
	if _, err := os.Stat(filepath.Join(dir, resetMarkerName)); !os.IsNotExist(err) {
		t.Fatalf("reset marker left behind: %v", err)
	}
	l.Close()
}
