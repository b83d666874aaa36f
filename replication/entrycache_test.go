package replication

import (
	"testing"

	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/commitlog"
)

func TestEntryCacheBounds(t *testing.T) {
	c := &entryCache{maxEntries: 4, maxBytes: 1 << 20}
	c.add(raftLogs(1, 6, 1), 0)
	var l raft.Log
	for i := uint64(1); i <= 6; i++ {
		if got, want := c.get(i, 0, &l), i >= 3; got != want || got && l.Index != i {
			t.Fatalf("entry %d: cached %v (index %d), want %v", i, got, l.Index, want)
		}
	}
	// Bytes bound: entries of 2+1 bytes, at most 7 bytes: two stay.
	c = &entryCache{maxEntries: 100, maxBytes: 7}
	c.add(raftLogs(1, 5, 1), 0)
	if c.get(3, 0, &l) || !c.get(4, 0, &l) || !c.get(5, 0, &l) || c.bytes != 6 {
		t.Fatalf("byte bound: bytes %d", c.bytes)
	}
	// An entry over the byte bound is not cached; the run restarts after it.
	big := &raft.Log{Index: 6, Term: 1, Data: make([]byte, 8)}
	c.add([]*raft.Log{big}, 0)
	if c.get(6, 0, &l) || c.get(5, 0, &l) {
		t.Fatal("an oversize entry or the run before it is still cached")
	}
	c.add(raftLogs(7, 7, 1), 0)
	if !c.get(7, 0, &l) {
		t.Fatal("the run after an oversize entry is not cached")
	}
	// A new generation or a batch that does not continue the run starts over.
	if c.get(7, 1, &l) {
		t.Fatal("an entry of another generation was returned")
	}
	c.add(raftLogs(9, 9, 1), 0)
	if c.get(7, 0, &l) || !c.get(9, 0, &l) {
		t.Fatal("a gap did not restart the run")
	}
	// Long runs compact their trimmed front and stay correct.
	c = &entryCache{maxEntries: 100, maxBytes: 1 << 20}
	for i := uint64(1); i <= 5000; i += 10 {
		c.add(raftLogs(i, i+9, 1), 0)
	}
	if len(c.ents) > 300 || !c.get(5000, 0, &l) || l.Index != 5000 || c.get(4900, 0, &l) || !c.get(4901, 0, &l) {
		t.Fatalf("after 5000 entries: %d slots, head %d", len(c.ents), c.head)
	}
}

// TestLogStoreCacheCoherent: GetLog never answers from the cache what the
// log no longer holds: a truncation (a follower's conflicting tail) and a
// reset replace entries, and GetLog returns the new ones; an entry
// retention deleted is not found.
func TestLogStoreCacheCoherent(t *testing.T) {
	s := newTestStore(t)
	if err := s.StoreLogs(raftLogs(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := s.GetLog(8, &l); err != nil || l.Term != 1 {
		t.Fatalf("GetLog(8): %v term %d", err, l.Term)
	}
	if err := s.DeleteRange(6, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(8, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog(8) after truncating from 6: %v (term %d), want ErrLogNotFound", err, l.Term)
	}
	if err := s.StoreLogs(raftLogs(6, 10, 2)); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		want := uint64(1)
		if i >= 6 {
			want = 2
		}
		if err := s.GetLog(i, &l); err != nil || l.Term != want || l.Index != i {
			t.Fatalf("GetLog(%d): %v, index %d term %d, want term %d", i, err, l.Index, l.Term, want)
		}
	}
	// A truncation and appends behind the store's back (a snapshot restore
	// copies a log from a peer into the commit log itself) are seen too.
	if err := s.log.TruncateAfter(7); err != nil {
		t.Fatal(err)
	}
	if err := s.log.Append([]commitlog.Entry{{Index: 8, Term: 5}, {Index: 9, Term: 5}, {Index: 10, Term: 5}}); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(9, &l); err != nil || l.Term != 5 {
		t.Fatalf("GetLog(9) after a truncation and copy behind the store: %v term %d, want 5", err, l.Term)
	}
	// So is a reset.
	if err := s.log.Reset(20); err != nil {
		t.Fatal(err)
	}
	if err := s.log.Append([]commitlog.Entry{{Index: 20, Term: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(8, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog(8) after a reset to 20: %v", err)
	}
	if err := s.GetLog(20, &l); err != nil || l.Term != 3 {
		t.Fatalf("GetLog(20) after the reset: %v term %d", err, l.Term)
	}
}
