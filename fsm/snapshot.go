package fsm

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ledgermq/ledgermq/auth"
	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/internal/enc"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
)

// Snapshot container, all integers little-endian:
//
//	header:  magic "LMQSTATE" | version u16 | section count u16
//	section: kind u16 | length u64 | CRC-32C of the payload u32 | payload
//
// Versions 1 and 2 have two sections, each written once and in this
// order: topics (kind 1, topics.Snap.Encode) and consumer groups (kind 2,
// consumer.Snap.Encode). Version 2 changed the groups section (every
// queue's owner and target, members' instance ids); version 1 is still
// read (consumer.State.DecodeV1). Version 3 adds a third section, auth
// (kind 3, auth.Snap.Encode: tokens, principal groups, ACLs); versions 1
// and 2 restore with an empty auth state. A later version may add kinds;
// a reader refuses versions it does not know.
const (
	snapMagic       = "LMQSTATE"
	SnapshotVersion = 3
	sectionTopics   = 1
	sectionGroups   = 2
	sectionAuth     = 3       // issue 12
	maxSection      = 1 << 36 // refuse absurd lengths before allocating
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapshot is a captured state, encoded by Persist.
type snapshot struct {
	topics *topics.Snap
	groups *consumer.Snap
	auth   *auth.Snap
}

// Snapshot implements replication.StateMachine: a cheap capture; the
// encoding happens in Persist.
func (m *Machine) Snapshot() (replication.Snapshot, error) {
	return &snapshot{topics: m.topics.Snapshot(), groups: m.groups.Snapshot(), auth: m.auth.Snapshot()}, nil
}

// Persist implements replication.Snapshot.
func (s *snapshot) Persist(w io.Writer) error {
	var tw, gw, aw enc.Writer
	s.topics.Encode(&tw)
	s.groups.Encode(&gw)
	s.auth.Encode(&aw)
	return writeContainer(w, []section{{sectionTopics, tw.B}, {sectionGroups, gw.B}, {sectionAuth, aw.B}})
}

// Release implements replication.Snapshot.
func (s *snapshot) Release() {}

type section struct {
	kind    uint16
	payload []byte
}

func writeContainer(w io.Writer, secs []section) error {
	hdr := append([]byte(snapMagic), 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(hdr[8:], SnapshotVersion)
	binary.LittleEndian.PutUint16(hdr[10:], uint16(len(secs)))
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("fsm: write snapshot header: %w", err)
	}
	for _, sec := range secs {
		var h [14]byte
		binary.LittleEndian.PutUint16(h[0:], sec.kind)
		binary.LittleEndian.PutUint64(h[2:], uint64(len(sec.payload)))
		binary.LittleEndian.PutUint32(h[10:], crc32.Checksum(sec.payload, castagnoli))
		if _, err := w.Write(h[:]); err != nil {
			return fmt.Errorf("fsm: write snapshot section %d: %w", sec.kind, err)
		}
		if _, err := w.Write(sec.payload); err != nil {
			return fmt.Errorf("fsm: write snapshot section %d: %w", sec.kind, err)
		}
	}
	return nil
}

// Restore implements replication.StateMachine. On error the state is
// unchanged: the groups section is checked before either is applied, and
// each Decode replaces its state only when it decoded whole.
func (m *Machine) Restore(r io.Reader, _ replication.RestoreInfo) error {
	br := bufio.NewReader(r)
	if head, err := br.Peek(len(snapMagic)); err == nil && string(head) != snapMagic {
		return m.restoreLegacy(br)
	}
	version, secs, err := readContainer(br)
	if err != nil {
		return err
	}
	if version < 3 && (len(secs) != 2 || secs[0].kind != sectionTopics || secs[1].kind != sectionGroups) {
		return fmt.Errorf("%w: version %d wants sections topics, groups", replication.ErrBadSnapshot, version)
	}
	if version == 3 && (len(secs) != 3 || secs[0].kind != sectionTopics || secs[1].kind != sectionGroups || secs[2].kind != sectionAuth) {
		return fmt.Errorf("%w: version %d wants sections topics, groups, auth", replication.ErrBadSnapshot, version)
	}
	authSection := emptyAuth()
	if version == 3 {
		authSection = secs[2].payload
	}
	if err := auth.New().Decode(enc.NewReader(authSection)); err != nil {
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	decodeGroups := (*consumer.State).Decode
	if version == 1 {
		decodeGroups = (*consumer.State).DecodeV1
	}
	if err := decodeGroups(consumer.New(nil), enc.NewReader(secs[1].payload)); err != nil {
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	scratch := topics.New() // checked whole before the state is replaced
	if err := scratch.Decode(enc.NewReader(secs[0].payload)); err != nil {
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	if err := checkTopics(scratch); err != nil {
		return err
	}
	if err := m.topics.Decode(enc.NewReader(secs[0].payload)); err != nil {
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	if err := decodeGroups(m.groups, enc.NewReader(secs[1].payload)); err != nil {
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	if err := m.auth.Decode(enc.NewReader(authSection)); err != nil {
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	return nil
}

// emptyAuth is the auth section of an empty state: what snapshots written
// before issue 12 (versions 0 to 2) restore.
func emptyAuth() []byte {
	var w enc.Writer
	auth.New().Snapshot().Encode(&w)
	return w.B
}

// restoreLegacy reads format version 0, written before the container:
// u64 length | topics (gob) | u64 length | groups (JSON). Its first eight
// bytes are a length, never the container's magic.
func (m *Machine) restoreLegacy(r io.Reader) error {
	var secs [2][]byte
	for i := range secs {
		var n [8]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return fmt.Errorf("%w: version-0 section %d: %w", replication.ErrBadSnapshot, i, err)
		}
		size := binary.LittleEndian.Uint64(n[:])
		if size > maxSection {
			return fmt.Errorf("%w: version-0 section of %d bytes", replication.ErrBadSnapshot, size)
		}
		b, err := readN(r, int64(size))
		if err != nil {
			return fmt.Errorf("%w: version-0 section %d: %w", replication.ErrBadSnapshot, i, err)
		}
		secs[i] = b
	}
	if err := consumer.New(nil).DecodeLegacy(secs[1]); err != nil { // check before changing anything
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	scratch := topics.New()
	if err := scratch.DecodeLegacy(secs[0]); err != nil {
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	if err := checkTopics(scratch); err != nil {
		return err
	}
	if err := m.topics.DecodeLegacy(secs[0]); err != nil {
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	if err := m.groups.DecodeLegacy(secs[1]); err != nil {
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	if err := m.auth.Decode(enc.NewReader(emptyAuth())); err != nil {
		return fmt.Errorf("%w: %w", replication.ErrBadSnapshot, err)
	}
	return nil
}

// checkTopics refuses restored topics that no create command could have
// made (issue 11): a queue count outside 1..topics.MaxQueues (0 would
// divide by zero when a key picks a queue), queues missing, a bad name
// (by the rules of the version that created it: ValidateName), retention
// below 0, a message size bound outside 1..64 MiB.
func checkTopics(s *topics.State) error {
	for _, t := range s.List() {
		bad := ""
		switch {
		case topics.ValidateName(t.Name) != nil:
			bad = "an invalid name"
		case t.Queues < 1 || t.Queues > topics.MaxQueues:
			bad = fmt.Sprintf("%d queues", t.Queues)
		case len(t.NextOffsets()) != t.Queues:
			bad = fmt.Sprintf("%d queues stored, %d configured", len(t.NextOffsets()), t.Queues)
		case t.RetentionMs < 0 || t.RetentionBytes < 0:
			bad = "a negative retention"
		case t.MaxMessageBytes < 1 || t.MaxMessageBytes > 64<<20:
			bad = fmt.Sprintf("max message bytes %d", t.MaxMessageBytes)
		}
		if bad != "" {
			return fmt.Errorf("%w: topic %q has %s", replication.ErrBadSnapshot, t.Name, bad)
		}
	}
	return nil
}

func readContainer(r io.Reader) (uint16, []section, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("%w: header: %w", replication.ErrBadSnapshot, err)
	}
	if string(hdr[:8]) != snapMagic {
		return 0, nil, fmt.Errorf("%w: not a LedgerMQ state snapshot", replication.ErrBadSnapshot)
	}
	version := binary.LittleEndian.Uint16(hdr[8:])
	if version < 1 || version > SnapshotVersion {
		return 0, nil, fmt.Errorf("%w: format version %d, this build reads 1 to %d", replication.ErrBadSnapshot, version, SnapshotVersion)
	}
	n := int(binary.LittleEndian.Uint16(hdr[10:]))
	secs := make([]section, 0, min(n, 16))
	for i := 0; i < n; i++ {
		var h [14]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return 0, nil, fmt.Errorf("%w: section %d header: %w", replication.ErrBadSnapshot, i, err)
		}
		sec := section{kind: binary.LittleEndian.Uint16(h[0:])}
		size := binary.LittleEndian.Uint64(h[2:])
		if size > maxSection {
			return 0, nil, fmt.Errorf("%w: section %d of %d bytes", replication.ErrBadSnapshot, sec.kind, size)
		}
		payload, err := readN(r, int64(size))
		if err != nil {
			return 0, nil, fmt.Errorf("%w: section %d: %w", replication.ErrBadSnapshot, sec.kind, err)
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(h[10:]) {
			return 0, nil, fmt.Errorf("%w: section %d: CRC mismatch", replication.ErrBadSnapshot, sec.kind)
		}
		sec.payload = payload
		secs = append(secs, sec)
	}
	if _, err := r.Read(make([]byte, 1)); err != io.EOF {
		return 0, nil, fmt.Errorf("%w: data after the last section", replication.ErrBadSnapshot)
	}
	return version, secs, nil
}

// readN reads exactly n bytes, growing its buffer as data arrives so a
// lying length cannot allocate more than the input holds.
func readN(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != n {
		return nil, io.ErrUnexpectedEOF
	}
	return b, nil
}

// ProduceLog reads produce payloads from node's log for topics.Reader.
func ProduceLog(node *replication.Node) topics.ProduceLog { return produceLog{node} }

type produceLog struct{ node *replication.Node }

func (p produceLog) FirstIndex() uint64 { return p.node.FirstIndex() }

func (p produceLog) ProducePayload(index uint64) ([]byte, error) {
	data, err := p.node.ReadEntry(index)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 || Code(data[0]) != CodeProduce {
		return nil, fmt.Errorf("%w: log entry %d is not a produce command", ErrBadCommand, index)
	}
	return data[1:], nil
}
