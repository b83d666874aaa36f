package topics

import (
	"testing"

	"github.com/ledgermq/ledgermq/internal/enc"
)

func mustCreate(t testing.TB, s *State, index uint64, c Config) *Topic {
	t.Helper()
	top, err := s.Create(index, c)
	if err != nil {
		t.Fatalf("create %s: %v", c.Name, err)
	}
	return top
}

func mustInit(t testing.TB, s *State, _ uint64, timeMs int64) uint64 {
	t.Helper()
	id, err := s.InitProducer(timeMs)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// roundTrip encodes s's snapshot and decodes it into a new state.
func roundTrip(t testing.TB, s *State) *State {
	t.Helper()
	var w enc.Writer
	s.Snapshot().Encode(&w)
	r := New()
	if err := r.Decode(enc.NewReader(w.B)); err != nil {
		t.Fatal(err)
	}
	return r
}
