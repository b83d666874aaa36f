package fsm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ledgermq/ledgermq/internal/enc"
	"github.com/ledgermq/ledgermq/replication"
)

// topicsSection encodes a topics section with one topic as
// topics.Snap.Encode lays it out, with its queues empty.
func topicsSection(name string, queues, storedQueues int, maxMessage uint64) []byte {
	var w enc.Writer
	w.Varint(0)  // clock
	w.Uvarint(0) // producer counter
	w.Uvarint(1)
	w.String(name)
	w.Uvarint(uint64(queues))
	w.Varint(1000)
	w.Varint(0)
	w.Uvarint(maxMessage)
	w.Uvarint(1)
	w.Uvarint(uint64(storedQueues))
	for range storedQueues {
		w.Uvarint(0) // next
		w.Uvarint(0) // batches
	}
	w.Uvarint(0) // producers
	return w.B
}

// groupsSection encodes a groups section with one group whose members
// are ids (session timeout ms each).
func groupsSection(ids []string, timeoutMs int64, key string) []byte {
	var w enc.Writer
	w.Uvarint(1)
	w.String("g")
	w.Uvarint(1) // generation
	w.Uvarint(uint64(len(ids)))
	w.Uvarint(2) // protocol
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		w.String(id)
		w.String("")
		w.Varint(timeoutMs)
		w.Uvarint(1)
		w.String("t")
	}
	w.Uvarint(0) // queues
	w.Uvarint(1) // offsets
	w.String(key)
	w.Uvarint(5)
	return w.B
}

// TestRestoreValidates: a snapshot whose content no command could have
// made is refused with ErrBadSnapshot and changes nothing (issue 11).
func TestRestoreValidates(t *testing.T) {
	okGroups := groupsSection([]string{"m1"}, 10000, "t/0")
	okTopics := topicsSection("t", 2, 2, 1<<20)
	cases := map[string][2][]byte{
		"zero queues":         {topicsSection("t", 0, 0, 1<<20), okGroups},
		"absurd queues":       {topicsSection("t", 1<<20, 0, 1<<20), okGroups},
		"max message 0":       {topicsSection("t", 2, 2, 0), okGroups},
		"bad topic name":      {topicsSection("a b", 2, 2, 1<<20), okGroups},
		"member twice":        {okTopics, groupsSection([]string{"m1", "m1"}, 10000, "t/0")},
		"member without id":   {okTopics, groupsSection([]string{""}, 10000, "t/0")},
		"zero session":        {okTopics, groupsSection([]string{"m1"}, 0, "t/0")},
		"bad offset key":      {okTopics, groupsSection([]string{"m1"}, 10000, "t/x")},
		"offset key no topic": {okTopics, groupsSection([]string{"m1"}, 10000, "/1")},
	}
	var good bytes.Buffer
	if err := writeContainer(&good, []section{{sectionTopics, okTopics}, {sectionGroups, okGroups}, {sectionAuth, emptyAuth()}}); err != nil {
		t.Fatal(err)
	}
	if err := New().Restore(bytes.NewReader(good.Bytes()), replication.RestoreInfo{}); err != nil {
		t.Fatalf("the valid snapshot: %v", err)
	}
	for name, secs := range cases {
		var b bytes.Buffer
		writeContainer(&b, []section{{sectionTopics, secs[0]}, {sectionGroups, secs[1]}, {sectionAuth, emptyAuth()}})
		m := New()
		before := persist(t, m)
		if err := m.Restore(bytes.NewReader(b.Bytes()), replication.RestoreInfo{}); !errors.Is(err, replication.ErrBadSnapshot) {
			t.Fatalf("%s: %v, want ErrBadSnapshot", name, err)
		}
		if !bytes.Equal(persist(t, m), before) {
			t.Fatalf("%s: a refused restore changed the state", name)
		}
	}
	// issue 12: an auth section no command could have made (an ACL with
	// an invalid principal), or none at all, is refused too.
	var bad enc.Writer
	bad.U8(1)      // auth section version
	bad.Uvarint(0) // tokens
	bad.Uvarint(0) // principal groups
	bad.Uvarint(1) // one ACL
	for _, f := range []string{"alice", "topic", "t", "literal", "produce", "allow"} {
		bad.String(f)
	}
	for name, secs := range map[string][]section{
		"bad ACL":      {{sectionTopics, okTopics}, {sectionGroups, okGroups}, {sectionAuth, bad.B}},
		"auth missing": {{sectionTopics, okTopics}, {sectionGroups, okGroups}},
	} {
		var b bytes.Buffer
		writeContainer(&b, secs)
		if err := New().Restore(bytes.NewReader(b.Bytes()), replication.RestoreInfo{}); !errors.Is(err, replication.ErrBadSnapshot) {
			t.Fatalf("%s: %v, want ErrBadSnapshot", name, err)
		}
	}
}
