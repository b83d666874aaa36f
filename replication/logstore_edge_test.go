package replication

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/commitlog"
)

// storeWith returns a store holding entries 1..last of term 1.
func storeWith(t *testing.T, last uint64) *LogStore {
	t.Helper()
	s := newTestStore(t)
	if err := s.StoreLogs(raftLogs(1, last, 1)); err != nil {
		t.Fatal(err)
	}
	return s
}

func bounds(t *testing.T, s *LogStore) (uint64, uint64) {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return first, last
}

func TestLogStoreGetLogNotFound(t *testing.T) {
	s := storeWith(t, 50)
	if err := s.DeleteRange(41, 50); err != nil {
		t.Fatal(err)
	}
	var out raft.Log
	for _, idx := range []uint64{0, 41, 50, 51, 1 << 40, ^uint64(0)} {
		// raft compares with ==: a wrapped error would read as a failure.
		if err := s.GetLog(idx, &out); err != raft.ErrLogNotFound {
			t.Errorf("GetLog(%d) = %v, want raft.ErrLogNotFound itself", idx, err)
		}
	}
	for _, idx := range []uint64{1, 40} {
		if err := s.GetLog(idx, &out); err != nil || out.Index != idx {
			t.Errorf("GetLog(%d) = %+v, %v", idx, out, err)
		}
	}
}

func TestLogStoreStoreLogsRefusesHoles(t *testing.T) {
	tests := []struct {
		name string
		logs []*raft.Log
		want error
	}{
		{"overlaps the last entry", raftLogs(20, 22, 2), ErrLogGap},
		{"rewrites the first entry", raftLogs(1, 1, 2), ErrLogGap},
		{"skips one index", raftLogs(22, 23, 1), ErrLogGap},
		{"index zero", raftLogs(0, 0, 1), ErrLogGap},
		// The store checks where a batch starts; the log checks the rest.
		{"hole inside the batch", append(raftLogs(21, 21, 1), raftLogs(23, 23, 1)...), commitlog.ErrNonContiguous},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := storeWith(t, 20)
			err := s.StoreLogs(tc.logs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("StoreLogs: %v, want %v", err, tc.want)
			}
			if first, last := bounds(t, s); first != 1 || last != 20 {
				t.Fatalf("refused batch changed the log to [%d, %d]", first, last)
			}
			var out raft.Log
			if err := s.GetLog(20, &out); err != nil || out.Term != 1 {
				t.Fatalf("entry 20 after a refused batch: %+v %v", out, err)
			}
		})
	}
	s := storeWith(t, 3)
	if err := s.StoreLogs(nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	if err := s.StoreLog(raftLogs(4, 4, 1)[0]); err != nil {
		t.Fatalf("StoreLog continuing the log: %v", err)
	}
}

// TestLogStoreCopiesRaftBuffers: what is written to disk does not change
// with raft's buffers after StoreLogs returns. (The store's cache of
// recent entries shares them, as hashicorp/raft's own LogCache does: raft
// never changes an entry once stored.)
func TestLogStoreCopiesRaftBuffers(t *testing.T) {
	s := newTestStore(t)
	logs := raftLogs(1, 3, 1)
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		l.Data[0], l.Extensions[0] = 0xEE, 'y'
	}
	e, err := s.log.Read(2)
	if err != nil || e.Data[0] != 2 || string(e.Extensions) != "x" {
		t.Fatalf("stored entry 2 changed with raft's buffer: %+v %v", e, err)
	}
}

func TestLogStoreDeleteRange(t *testing.T) {
	tests := []struct {
		name            string
		min, max        uint64
		first, last     uint64 // bounds afterwards
		wantErr         error
		storeNext, term uint64 // an entry that must then append
	}{
		{name: "tail from the middle", min: 61, max: 100, first: 1, last: 60, storeNext: 61, term: 2},
		{name: "tail past the end", min: 91, max: 1 << 40, first: 1, last: 90, storeNext: 91, term: 2},
		{name: "only the last entry", min: 100, max: 100, first: 1, last: 99, storeNext: 100, term: 2},
		{name: "after the end", min: 150, max: 200, first: 1, last: 100, storeNext: 101, term: 1},
		{name: "reversed range", min: 80, max: 70, first: 1, last: 100, storeNext: 101, term: 1},
		{name: "head compaction ignored", min: 1, max: 99, first: 1, last: 100, storeNext: 101, term: 1},
		{name: "before the log ignored", min: 0, max: 0, first: 1, last: 100, storeNext: 101, term: 1},
		{name: "whole log", min: 1, max: 100, first: 0, last: 0, storeNext: 1, term: 2},
		{name: "middle is a hole", min: 10, max: 20, first: 1, last: 100, wantErr: ErrLogGap, storeNext: 101, term: 1},
		{name: "middle up to one before last", min: 2, max: 99, first: 1, last: 100, wantErr: ErrLogGap, storeNext: 101, term: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := storeWith(t, 100)
			err := s.DeleteRange(tc.min, tc.max)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("DeleteRange(%d, %d) = %v, want %v", tc.min, tc.max, err, tc.wantErr)
			}
			if first, last := bounds(t, s); first != tc.first || last != tc.last {
				t.Fatalf("bounds [%d, %d], want [%d, %d]", first, last, tc.first, tc.last)
			}
			if err := s.StoreLogs(raftLogs(tc.storeNext, tc.storeNext, tc.term)); err != nil {
				t.Fatalf("store %d after DeleteRange: %v", tc.storeNext, err)
			}
		})
	}
	empty := newTestStore(t)
	if err := empty.DeleteRange(1, 10); err != nil {
		t.Fatalf("DeleteRange on an empty store: %v", err)
	}
}

// TestLogStoreTailTruncationDurable: a conflicting tail raft deleted must
// stay deleted after a restart, or the old entries come back under the new
// ones' indexes.
func TestLogStoreTailTruncationDurable(t *testing.T) {
	dir := t.TempDir()
	o := commitlog.DefaultOptions()
	o.SegmentSize = 4 << 10 // several segments, so truncation removes whole files too
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func() (*commitlog.Log, *LogStore) {
		l, err := commitlog.Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		return l, NewLogStore(l, nil)
	}
	l, s := open()
	if err := s.StoreLogs(raftLogs(1, 400, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(101, 400); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(raftLogs(101, 120, 2)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, s = open()
	defer l.Close()
	if first, last := bounds(t, s); first != 1 || last != 120 {
		t.Fatalf("after reopen the log is [%d, %d], want [1, 120]", first, last)
	}
	var out raft.Log
	for _, c := range []struct{ index, term uint64 }{{100, 1}, {101, 2}, {120, 2}} {
		if err := s.GetLog(c.index, &out); err != nil || out.Term != c.term {
			t.Fatalf("entry %d after reopen: term %d, %v; want term %d", c.index, out.Term, err, c.term)
		}
	}
	if err := s.GetLog(121, &out); err != raft.ErrLogNotFound {
		t.Fatalf("a truncated entry came back: %+v %v", out, err)
	}
}
