package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// header returns a snapshot header for index and term, with change applied
// to its bytes and, if recrc, its CRC recomputed afterwards.
func header(index, term uint64, recrc bool, change func([]byte)) []byte {
	var buf bytes.Buffer
	writeSnapshotHeader(&buf, index, term)
	b := buf.Bytes()
	if change != nil {
		change(b)
	}
	if recrc {
		binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], crcTable))
	}
	return b
}

func TestSnapshotHeaderRoundTrip(t *testing.T) {
	for _, pos := range [][2]uint64{{0, 0}, {1, 1}, {42, 7}, {math.MaxUint64, math.MaxUint64 - 1}} {
		b := header(pos[0], pos[1], false, nil)
		if len(b) != snapshotHeaderSize || string(b[:8]) != snapshotMagic {
			t.Fatalf("header is %d bytes starting %q", len(b), b[:8])
		}
		// The state machine's bytes follow the header untouched.
		r := bytes.NewReader(append(b, "state"...))
		idx, term, err := readSnapshotHeader(r)
		rest, _ := io.ReadAll(r)
		if err != nil || idx != pos[0] || term != pos[1] || string(rest) != "state" {
			t.Fatalf("read %v back as %d %d %v, rest %q", pos, idx, term, err, rest)
		}
	}
}

func TestSnapshotHeaderRefuses(t *testing.T) {
	good := header(42, 7, false, nil)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "header: EOF"},
		{"one byte", good[:1], "header: unexpected EOF"},
		{"no CRC", good[:28], "header: unexpected EOF"},
		{"one byte short", good[:snapshotHeaderSize-1], "header: unexpected EOF"},
		{"bad magic", header(42, 7, true, func(b []byte) { copy(b, "LMQSNAP\x01") }), "bad magic"},
		{"gob instead", []byte(strings.Repeat("\xff", snapshotHeaderSize)), "bad magic"},
		{"index changed", header(42, 7, false, func(b []byte) { b[8]++ }), "header CRC mismatch"},
		{"term changed", header(42, 7, false, func(b []byte) { b[16]++ }), "header CRC mismatch"},
		{"CRC changed", header(42, 7, false, func(b []byte) { b[31] ^= 1 }), "header CRC mismatch"},
		{"version 0", header(42, 7, true, func(b []byte) { binary.LittleEndian.PutUint32(b[24:], 0) }), "version 0, this build reads 1"},
		{"version 2", header(42, 7, true, func(b []byte) { binary.LittleEndian.PutUint32(b[24:], 2) }), "version 2, this build reads 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx, term, err := readSnapshotHeader(bytes.NewReader(tc.b))
			if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("readSnapshotHeader: %v, want ErrBadSnapshot with %q", err, tc.want)
			}
			if idx != 0 || term != 0 {
				t.Fatalf("returned position %d %d with an error", idx, term)
			}
		})
	}
}

// memSink is a raft.SnapshotSink in memory; with a position it is what
// snapshotStore hands out.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

type memPositionedSink struct {
	*memSink
	index, term uint64
}

func (s memPositionedSink) position() (uint64, uint64) { return s.index, s.term }

// failingSnap fails to persist after writing a little.
type failingSnap struct{ released bool }

func (s *failingSnap) Persist(w io.Writer) error {
	w.Write([]byte("half"))
	return errors.New("disk full")
}
func (s *failingSnap) Release() { s.released = true }

func TestFSMSnapshotPersist(t *testing.T) {
	sm := &testSM{}
	f := newFSM(sm, nil)
	f.ApplyBatch([]*raft.Log{{Index: 5, Term: 2, Type: raft.LogCommand, Data: []byte("a")}})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// A sink that does not know its log position is refused.
	plain := &memSink{}
	if err := snap.Persist(plain); err == nil || !plain.cancelled || plain.closed {
		t.Fatalf("unpositioned sink: %v, cancelled %v closed %v", err, plain.cancelled, plain.closed)
	}
	sink := memPositionedSink{memSink: &memSink{}, index: 9, term: 3}
	if err := snap.Persist(sink); err != nil || !sink.closed || sink.cancelled {
		t.Fatalf("Persist: %v, closed %v cancelled %v", err, sink.closed, sink.cancelled)
	}
	snap.Release()
	// The header carries the sink's position, not the last command's.
	idx, term, err := readSnapshotHeader(bytes.NewReader(sink.Bytes()))
	if err != nil || idx != 9 || term != 3 {
		t.Fatalf("persisted header: %d %d %v", idx, term, err)
	}

	bad := &fsmSnapshot{s: &failingSnap{}}
	failing := memPositionedSink{memSink: &memSink{}, index: 9, term: 3}
	if err := bad.Persist(failing); err == nil || !strings.Contains(err.Error(), "disk full") || !failing.cancelled || failing.closed {
		t.Fatalf("failing Persist: %v, cancelled %v closed %v", err, failing.cancelled, failing.closed)
	}
	bad.Release()
	if !bad.s.(*failingSnap).released {
		t.Fatal("Release did not reach the state machine's snapshot")
	}
}

func TestFSMRestore(t *testing.T) {
	src := &testSM{}
	f := newFSM(src, nil)
	f.ApplyBatch([]*raft.Log{
		{Index: 3, Term: 1, Type: raft.LogCommand, Data: []byte("x")},
		{Index: 4, Term: 1, Type: raft.LogCommand, Data: []byte("y")},
	})
	snap, _ := f.Snapshot()
	sink := memPositionedSink{memSink: &memSink{}, index: 4, term: 1}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	persisted := sink.Bytes()

	type call struct{ index, term uint64 }
	tests := []struct {
		name      string
		stream    []byte
		catchUp   error
		wantErr   error
		wantCalls int
	}{
		{"good", persisted, nil, nil, 1},
		{"bad header", append([]byte("garbage!"), persisted[8:]...), nil, ErrBadSnapshot, 0},
		{"truncated header", persisted[:10], nil, ErrBadSnapshot, 0},
		{"no source", persisted, ErrNoSource, ErrNoSource, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []call
			dst := &testSM{}
			g := newFSM(dst, func(index, term uint64) error {
				calls = append(calls, call{index, term})
				return tc.catchUp
			})
			rc := &closeRecorder{Reader: bytes.NewReader(tc.stream)}
			err := g.Restore(rc)
			if !rc.closed {
				t.Fatal("Restore did not close the snapshot reader")
			}
			if len(calls) != tc.wantCalls || (len(calls) == 1 && calls[0] != call{4, 1}) {
				t.Fatalf("catchUp calls %v, want %d at {4 1}", calls, tc.wantCalls)
			}
			indexes, data := dst.state()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Restore: %v, want %v", err, tc.wantErr)
				}
				// The state machine must not restore over a log with a hole.
				if len(data) != 0 || g.applied.Load() != 0 {
					t.Fatalf("failed restore changed state: %v, applied %d", data, g.applied.Load())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(indexes) != 2 || data[0] != "x" || data[1] != "y" || dst.restore != (RestoreInfo{Index: 4, Term: 1}) {
				t.Fatalf("restored %v %v info %+v", indexes, data, dst.restore)
			}
			if g.applied.Load() != 4 {
				t.Fatalf("applied index after restore %d, want 4", g.applied.Load())
			}
		})
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestFSMApplyBatch(t *testing.T) {
	sm := &testSM{}
	f := newFSM(sm, nil)
	before, wake := f.appliedCh()
	if before != 0 {
		t.Fatalf("fresh applied index %d", before)
	}
	res := f.ApplyBatch([]*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte("conf")},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: []byte("a")},
		{Index: 3, Term: 1, Type: raft.LogCommand, Data: []byte("b")},
		{Index: 4, Term: 2, Type: raft.LogConfiguration},
	})
	select {
	case <-wake:
	default:
		t.Fatal("applying did not wake waiters")
	}
	if len(res) != 4 || res[0] != nil || res[1] != 1 || res[2] != 2 || res[3] != nil {
		t.Fatalf("results %v: want nil for configurations, the state machine's for commands in their slots", res)
	}
	if indexes, _ := sm.state(); len(indexes) != 2 || indexes[0] != 2 || indexes[1] != 3 {
		t.Fatalf("state machine saw indexes %v", indexes)
	}
	if got := f.applied.Load(); got != 4 {
		t.Fatalf("applied %d, want 4 (the batch's last entry)", got)
	}
	if r := f.Apply(&raft.Log{Index: 5, Term: 2, Type: raft.LogCommand, Data: []byte("c")}); r != 3 {
		t.Fatalf("Apply = %v", r)
	}
	if got, _ := f.appliedCh(); got != 5 {
		t.Fatalf("applied %d after Apply, want 5", got)
	}
}

func TestSnapshotStoreTracksNewest(t *testing.T) {
	inner := raft.NewInmemSnapshotStore()
	_, tr := raft.NewInmemTransport("n1")
	cfg := raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: "n1"}}}
	sink, _ := inner.Create(raft.SnapshotVersionMax, 10, 1, cfg, 1, tr)
	sink.Close()
	s, err := newSnapshotStore(inner)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.last.Load(); got != 10 {
		t.Fatalf("newest snapshot found at open: %d, want 10", got)
	}
	for _, step := range []struct {
		index  uint64
		cancel bool
		want   uint64
	}{
		{20, false, 20},
		{30, true, 20}, // a cancelled snapshot does not count
		{15, false, 20},
		{25, false, 25},
	} {
		sink, err := s.Create(raft.SnapshotVersionMax, step.index, 2, cfg, 1, tr)
		if err != nil {
			t.Fatal(err)
		}
		if idx, term := sink.(positioned).position(); idx != step.index || term != 2 {
			t.Fatalf("sink position %d %d, want %d 2", idx, term, step.index)
		}
		if step.cancel {
			sink.Cancel()
		} else if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		if got := s.last.Load(); got != step.want {
			t.Fatalf("after snapshot %d (cancel %v): newest %d, want %d", step.index, step.cancel, got, step.want)
		}
	}
}
