package replication

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/commitlog"
)

func newTestStore(t *testing.T) *LogStore {
	t.Helper()
	o := commitlog.DefaultOptions()
	o.SegmentSize = 8 << 10
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := commitlog.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return NewLogStore(l, o.Logger)
}

func raftLogs(from, to uint64, term uint64) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, &raft.Log{Index: i, Term: term, Type: raft.LogCommand,
			Data: []byte{byte(i), byte(i >> 8)}, Extensions: []byte("x"), AppendedAt: time.Unix(100, int64(i)).UTC()})
	}
	return out
}

func TestLogStoreContract(t *testing.T) {
	s := newTestStore(t)
	if f, _ := s.FirstIndex(); f != 0 {
		t.Fatalf("empty FirstIndex = %d, want 0", f)
	}
	if l, _ := s.LastIndex(); l != 0 {
		t.Fatalf("empty LastIndex = %d, want 0", l)
	}
	var out raft.Log
	if err := s.GetLog(1, &out); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog on empty store: %v (must be raft.ErrLogNotFound itself)", err)
	}
	if err := s.StoreLogs(raftLogs(1, 500, 1)); err != nil {
		t.Fatal(err)
	}
	for _, want := range raftLogs(1, 500, 1) {
		if err := s.GetLog(want.Index, &out); err != nil {
			t.Fatal(err)
		}
		if out.Index != want.Index || out.Term != want.Term || out.Type != want.Type || string(out.Data) != string(want.Data) ||
			string(out.Extensions) != string(want.Extensions) || !out.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", want.Index, out, *want)
		}
	}
	if err := s.GetLog(501, &out); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog past end: %v", err)
	}
	// A gap is refused.
	if err := s.StoreLogs(raftLogs(600, 601, 1)); !errors.Is(err, ErrLogGap) {
		t.Fatalf("StoreLogs with a gap: %v", err)
	}
	// Tail truncation (a conflicting follower) is honoured and durable.
	if err := s.DeleteRange(400, 500); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.LastIndex(); l != 399 {
		t.Fatalf("LastIndex after tail truncation = %d", l)
	}
	if err := s.StoreLogs(raftLogs(400, 410, 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(405, &out); err != nil || out.Term != 2 {
		t.Fatalf("entry after re-append: %+v %v", out, err)
	}
	// Head deletion (compaction) is ignored: retention deletes messages.
	if err := s.DeleteRange(1, 300); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.FirstIndex(); f != 1 {
		t.Fatalf("compaction deleted entries: FirstIndex = %d", f)
	}
	// Retention below FirstIndex makes GetLog report ErrLogNotFound.
	if _, err := s.log.DeleteBefore(200); err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	if first <= 1 {
		t.Fatalf("retention deleted nothing")
	}
	if err := s.GetLog(first-1, &out); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog below first: %v", err)
	}
	// A whole-log conflict empties the log from its first index.
	last, _ := s.LastIndex()
	if err := s.DeleteRange(first, last); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.LastIndex(); l != 0 {
		t.Fatalf("whole-range delete left LastIndex %d", l)
	}
	if err := s.StoreLogs(raftLogs(first, first+1, 3)); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotHeader(t *testing.T) {
	var buf writerBuf
	if err := writeSnapshotHeader(&buf, 42, 7); err != nil {
		t.Fatal(err)
	}
	idx, term, err := readSnapshotHeader(&buf)
	if err != nil || idx != 42 || term != 7 {
		t.Fatalf("round trip: %d %d %v", idx, term, err)
	}
	b := make([]byte, snapshotHeaderSize)
	writeSnapshotHeader(&writerBuf{b: b[:0]}, 1, 1)
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x40
		if _, _, err := readSnapshotHeader(&writerBuf{b: bad}); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
}

type writerBuf struct{ b []byte }

func (w *writerBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *writerBuf) Read(p []byte) (int, error) {
	if len(w.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, w.b)
	w.b = w.b[n:]
	return n, nil
}
