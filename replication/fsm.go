package replication

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// fsm adapts a StateMachine to raft.BatchingFSM. It adds a snapshot header
// recording the snapshot's position in the log, makes the log contiguous up
// to that position before the state machine restores (see restore.go), and
// tracks the applied index for linearizable reads.
type fsm struct {
	sm       StateMachine
	catchUp  func(index, term uint64) error
	onConfig func(raft.Configuration)

	applied atomic.Uint64
	mu      sync.Mutex
	wake    chan struct{} // closed and replaced after every apply
}

func newFSM(sm StateMachine, catchUp func(index, term uint64) error) *fsm {
	return &fsm{sm: sm, catchUp: catchUp, wake: make(chan struct{})}
}

var (
	_ raft.BatchingFSM        = (*fsm)(nil)
	_ raft.ConfigurationStore = (*fsm)(nil)
)

// StoreConfiguration implements raft.ConfigurationStore: the node keeps the
// newest membership for restore sources and status, without asking raft's
// main loop (which may be waiting on this goroutine).
func (f *fsm) StoreConfiguration(_ uint64, c raft.Configuration) {
	if f.onConfig != nil {
		f.onConfig(c)
	}
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM. raft passes command and
// configuration entries; configuration entries yield a nil result.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	cmds := make([]Command, 0, len(logs))
	slots := make([]int, 0, len(logs))
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			cmds = append(cmds, Command{Index: l.Index, Term: l.Term, Data: l.Data})
			slots = append(slots, i)
		}
	}
	if len(cmds) > 0 {
		res := f.sm.Apply(cmds)
		for k, i := range slots {
			if k < len(res) {
				out[i] = res[k]
			}
		}
	}
	f.setApplied(logs[len(logs)-1].Index)
	return out
}

func (f *fsm) setApplied(index uint64) {
	f.applied.Store(index)
	f.mu.Lock()
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

// appliedCh returns the applied index and a channel closed at the next
// change.
func (f *fsm) appliedCh() (uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied.Load(), f.wake
}

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.sm.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{s: s}, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	index, term, err := readSnapshotHeader(br)
	if err != nil {
		return err
	}
	if err := f.catchUp(index, term); err != nil {
		return fmt.Errorf("replication: restore snapshot at %d: %w", index, err)
	}
	if err := f.sm.Restore(br, RestoreInfo{Index: index, Term: term}); err != nil {
		return fmt.Errorf("replication: state machine restore at %d: %w", index, err)
	}
	f.setApplied(index)
	return nil
}

// Snapshot header: magic, format version, index, term, CRC32C of the
// preceding 24 bytes.
const (
	snapshotMagic      = "LMQSNAP\x00"
	snapshotHeaderSize = 8 + 8 + 8 + 4 + 4
	snapshotVersion    = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func writeSnapshotHeader(w io.Writer, index, term uint64) error {
	b := make([]byte, snapshotHeaderSize)
	copy(b, snapshotMagic)
	binary.LittleEndian.PutUint64(b[8:], index)
	binary.LittleEndian.PutUint64(b[16:], term)
	binary.LittleEndian.PutUint32(b[24:], snapshotVersion)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], crcTable))
	_, err := w.Write(b)
	return err
}

func readSnapshotHeader(r io.Reader) (uint64, uint64, error) {
	b := make([]byte, snapshotHeaderSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, 0, fmt.Errorf("%w: header: %w", ErrBadSnapshot, err)
	}
	if string(b[:8]) != snapshotMagic {
		return 0, 0, fmt.Errorf("%w: bad magic", ErrBadSnapshot)
	}
	if crc32.Checksum(b[:28], crcTable) != binary.LittleEndian.Uint32(b[28:]) {
		return 0, 0, fmt.Errorf("%w: header CRC mismatch", ErrBadSnapshot)
	}
	if v := binary.LittleEndian.Uint32(b[24:]); v != snapshotVersion {
		return 0, 0, fmt.Errorf("%w: version %d, this build reads %d", ErrBadSnapshot, v, snapshotVersion)
	}
	return binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[16:]), nil
}

type fsmSnapshot struct{ s Snapshot }

// positioned is implemented by the sinks of snapshotStore: it tells
// Persist the log position raft assigned to the snapshot, which the FSM
// cannot know itself (raft does not pass no-op and barrier entries to it).
type positioned interface {
	position() (index, term uint64)
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	p, ok := sink.(positioned)
	if !ok {
		sink.Cancel()
		return errors.New("replication: snapshot sink does not carry its log position")
	}
	index, term := p.position()
	bw := bufio.NewWriterSize(sink, 64<<10)
	err := writeSnapshotHeader(bw, index, term)
	if err == nil {
		err = s.s.Persist(bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("replication: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() { s.s.Release() }

// snapshotStore wraps a raft.SnapshotStore so sinks carry their position
// and the newest snapshot's index is known (retention may not delete log
// entries a lagging follower could not get from a snapshot).
type snapshotStore struct {
	raft.SnapshotStore
	last atomic.Uint64 // index of the newest completed snapshot
}

func newSnapshotStore(inner raft.SnapshotStore) (*snapshotStore, error) {
	s := &snapshotStore{SnapshotStore: inner}
	metas, err := inner.List()
	if err != nil {
		return nil, fmt.Errorf("replication: list snapshots: %w", err)
	}
	for _, m := range metas {
		if m.Index > s.last.Load() {
			s.last.Store(m.Index)
		}
	}
	return s, nil
}

// Create implements raft.SnapshotStore.
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, conf raft.Configuration,
	confIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, conf, confIndex, trans)
	if err != nil {
		return nil, err
	}
	return &positionedSink{SnapshotSink: sink, store: s, index: index, term: term}, nil
}

type positionedSink struct {
	raft.SnapshotSink
	store       *snapshotStore
	index, term uint64
}

func (p *positionedSink) position() (uint64, uint64) { return p.index, p.term }

func (p *positionedSink) Close() error {
	if err := p.SnapshotSink.Close(); err != nil {
		return err
	}
	for {
		cur := p.store.last.Load()
		if p.index <= cur || p.store.last.CompareAndSwap(cur, p.index) {
			return nil
		}
	}
}
