package replication

import (
	"encoding/json"
	"io"
	"sync"
)

// testSM is a deterministic state machine for tests: it records every
// command's index and payload in order.
type testSM struct {
	mu      sync.Mutex
	indexes []uint64
	data    []string
	restore RestoreInfo
	// answer, if set, replaces the default result (the command count).
	answer func(Command) any
}

// setAnswer makes Apply return answer(cmd) for every later command.
func (s *testSM) setAnswer(answer func(Command) any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = answer
}

func (s *testSM) Apply(cmds []Command) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]any, len(cmds))
	for i, c := range cmds {
		s.indexes = append(s.indexes, c.Index)
		s.data = append(s.data, string(c.Data))
		out[i] = len(s.data)
		if s.answer != nil {
			out[i] = s.answer(c)
		}
	}
	return out
}

type testSnap struct {
	Indexes []uint64
	Data    []string
}

func (s *testSM) Snapshot() (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &testSnap{Indexes: append([]uint64(nil), s.indexes...), Data: append([]string(nil), s.data...)}, nil
}

func (s *testSnap) Persist(w io.Writer) error { return json.NewEncoder(w).Encode(s) }
func (s *testSnap) Release()                  {}

func (s *testSM) Restore(r io.Reader, info RestoreInfo) error {
	var snap testSnap
	if err := json.NewDecoder(r).Decode(&snap); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.indexes, s.data, s.restore = snap.Indexes, snap.Data, info
	return nil
}

func (s *testSM) state() ([]uint64, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.indexes...), append([]string(nil), s.data...)
}
