package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/auth"
	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

var (
	seedFlag = flag.Uint64("fsm.seed", 0, "replay TestDeterminism with this seed")
	update   = flag.Bool("update", false, "rewrite testdata/golden.snap")
)

func TestRegistry(t *testing.T) {
	m := New()
	seen := map[Code]string{}
	for _, c := range m.commands() {
		if prev, dup := seen[c.code]; dup {
			t.Fatalf("code %d used by %s and %s", c.code, prev, c.name)
		}
		seen[c.code] = c.name
	}
	ops := map[Code]string{CreateTopic.Code(): CreateTopic.Name(), DeleteTopic.Code(): DeleteTopic.Name(),
		Produce.Code(): Produce.Name(), InitProducer.Code(): InitProducer.Name(), JoinGroup.Code(): JoinGroup.Name(),
		LeaveGroup.Code(): LeaveGroup.Name(), CommitOffsets.Code(): CommitOffsets.Name(), ResetOffsets.Code(): ResetOffsets.Name(),
		ReleaseQueues.Code(): ReleaseQueues.Name(), JoinGroupV1.Code(): JoinGroupV1.Name(), LeaveGroupV1.Code(): LeaveGroupV1.Name(),
		CommitOffsetsV1.Code(): CommitOffsetsV1.Name(), DeleteGroup.Code(): DeleteGroup.Name(),
		CreateToken.Code(): CreateToken.Name(), RevokeToken.Code(): RevokeToken.Name(), AddACL.Code(): AddACL.Name(),
		DeleteACL.Code(): DeleteACL.Name(), SetPrincipalGroups.Code(): SetPrincipalGroups.Name()}
	if len(ops) != len(seen) {
		t.Fatalf("%d ops, %d registry rows", len(ops), len(seen))
	}
	for code, name := range ops {
		if seen[code] != name {
			t.Fatalf("op %s (code %d) is registered as %q", name, code, seen[code])
		}
	}
}

func apply(m *Machine, index uint64, cmd []byte) any {
	return m.Apply([]replication.Command{{Index: index, Data: cmd}})[0]
}

func TestBadCommandsChangeNothing(t *testing.T) {
	m := New()
	before := persist(t, m)
	for i, cmd := range [][]byte{nil, {0}, {99, 1, 2}, {byte(CodeCreateTopic), '{'}, {byte(CodeProduce), 1, 2, 3},
		{byte(CodeInitProducer), 1}, {byte(CodeJoinGroup), '['}, {byte(CodeCommitOffsets)}, {byte(CodeAddACL), '{'},
		{byte(CodeCreateToken)}, {byte(CodeSetPrincipalGroups), '"'}} {
		res := apply(m, uint64(i+1), cmd)
		if err, ok := res.(error); !ok || !errors.Is(err, ErrBadCommand) {
			t.Fatalf("command %x: %v, want ErrBadCommand", cmd, res)
		}
	}
	if !bytes.Equal(before, persist(t, m)) {
		t.Fatal("malformed commands changed the state")
	}
}

func TestTypedResults(t *testing.T) {
	m := New()
	if top, ok := apply(m, 1, CreateTopic.Encode(topics.Config{Name: "t", Queues: 2})).(*topics.Topic); !ok || top.Queues != 2 {
		t.Fatal("create did not answer its topic")
	}
	if _, ok := apply(m, 2, InitProducer.Encode(1)).(uint64); !ok {
		t.Fatal("init-producer did not answer an id")
	}
	if res, ok := apply(m, 3, Produce.Encode(topics.ProduceCmd{Parts: []topics.Part{{Topic: "t", Batch: batch(t, 0, 0, 2)}}})).([]topics.ProduceResult); !ok || res[0].Count != 2 {
		t.Fatal("produce did not answer its results")
	}
	if _, ok := apply(m, 4, JoinGroup.Encode(consumer.JoinCmd{Group: "g", Topics: []string{"t"}})).(consumer.Membership); !ok {
		t.Fatal("join did not answer a membership")
	}
	if _, ok := apply(m, 5, DeleteTopic.Encode("t")).(Done); !ok {
		t.Fatal("delete did not answer Done")
	}
	if err, ok := apply(m, 6, DeleteTopic.Encode("t")).(error); !ok || !errors.Is(err, topics.ErrTopicNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	a := auth.ACLCmd{ACL: wire.ACL{Principal: "User:a", ResourceType: "topic", Resource: "t", Operation: "produce"}}
	if added, ok := apply(m, 7, AddACL.Encode(a)).(bool); !ok || !added {
		t.Fatal("add ACL did not answer true")
	}
	if added, ok := apply(m, 8, AddACL.Encode(a)).(bool); !ok || added {
		t.Fatal("adding an ACL again did not answer false")
	}
	if n, ok := apply(m, 9, DeleteACL.Encode(a)).(int); !ok || n != 1 {
		t.Fatal("delete ACL did not answer 1")
	}
	if _, ok := apply(m, 10, CreateToken.Encode(auth.CreateTokenCmd{Token: fixedToken(1)})).(Done); !ok {
		t.Fatal("create token did not answer Done")
	}
	if err, ok := apply(m, 11, RevokeToken.Encode(auth.RevokeTokenCmd{ID: "nope"})).(error); !ok || !errors.Is(err, auth.ErrTokenNotFound) {
		t.Fatalf("revoke of an unknown token: %v", err)
	}
}

// fixedToken is a token record with a fixed (not secret-derived) hash,
// for deterministic command sequences.
func fixedToken(i int) auth.Token {
	return auth.Token{ID: fmt.Sprintf("%016x", i), Principal: fmt.Sprintf("User:u%d", i%3), Description: "test",
		CreatedMs: int64(i) * 1000, Hash: auth.HashParams{Salt: bytes.Repeat([]byte{byte(i)}, 16),
			Key: bytes.Repeat([]byte{byte(i + 1)}, 32), Time: 2, MemoryKiB: 19456, Threads: 1}}
}

// authCommand is the i-th of a fixed cycle of auth commands (issue 12),
// interleaved into randomCommands without drawing from its generator.
func authCommand(i int) []byte {
	acl := wire.ACL{Principal: fmt.Sprintf("User:u%d", i%3), ResourceType: "topic", Resource: fmt.Sprint("t", i%4),
		Operation: "produce", Effect: []string{"allow", "deny"}[i%2]}
	switch i % 5 {
	case 0:
		return CreateToken.Encode(auth.CreateTokenCmd{Token: fixedToken(i)})
	case 1:
		return RevokeToken.Encode(auth.RevokeTokenCmd{ID: fmt.Sprintf("%016x", i-6)})
	case 2:
		return AddACL.Encode(auth.ACLCmd{ACL: acl})
	case 3:
		return DeleteACL.Encode(auth.ACLCmd{ACL: acl})
	}
	return SetPrincipalGroups.Encode(auth.SetGroupsCmd{Principal: fmt.Sprintf("User:u%d", i%3), Groups: []string{fmt.Sprint("Group:g", i%2)}})
}

func batch(t testing.TB, pid, seq uint64, n int) []byte {
	t.Helper()
	msgs := make([]wire.Message, n)
	for i := range msgs {
		msgs[i] = wire.Message{Key: []byte{byte(i)}, Value: []byte("value"), Timestamp: time.UnixMilli(int64(1000 + i))}
	}
	b, err := wire.Encode(msgs, wire.CodecNone, wire.Producer{ID: pid, Sequence: seq}, 1, time.UnixMilli(1000))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func persist(t testing.TB, m *Machine) []byte {
	t.Helper()
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	s.Release()
	return buf.Bytes()
}

func restore(t testing.TB, snap []byte) *Machine {
	t.Helper()
	m := New()
	if err := m.Restore(bytes.NewReader(snap), replication.RestoreInfo{}); err != nil {
		t.Fatal(err)
	}
	return m
}

// randomCommands is a random but valid-looking command sequence over a
// few topics, producers and group members; some commands fail (unknown
// topic, stale generation, sequence gaps), which must be deterministic
// too.
func randomCommands(t testing.TB, rng *rand.Rand, n int) [][]byte {
	t.Helper()
	names := []string{"a", "b", "c"}
	cmds := [][]byte{InitProducer.Encode(0), InitProducer.Encode(0)}
	for _, name := range names {
		cmds = append(cmds, CreateTopic.Encode(topics.Config{Name: name, Queues: 2}))
	}
	seq := map[string]uint64{} // producer/topic/queue -> next sequence
	for i := 0; i < n; i++ {
		if i%7 == 0 {
			cmds = append(cmds, authCommand(i/7))
		}
		topic := names[rng.IntN(len(names))]
		switch k := rng.IntN(100); {
		case k < 8:
			cmds = append(cmds, CreateTopic.Encode(topics.Config{Name: topic, Queues: 1 + rng.IntN(4)}))
		case k < 9:
			cmds = append(cmds, DeleteTopic.Encode(topic))
		case k < 14:
			cmds = append(cmds, InitProducer.Encode(int64(i)*1000))
		case k < 60:
			pid, q, cnt := uint64(rng.IntN(3)), rng.IntN(2), 1+rng.IntN(3)
			key := fmt.Sprint(pid, topic, q)
			b := batch(t, pid, seq[key], cnt)
			if rng.IntN(8) > 0 { // else the next batch resends this one
				seq[key] += uint64(cnt)
			}
			cmds = append(cmds, Produce.Encode(topics.ProduceCmd{TimeMs: int64(i) * 1000,
				Parts: []topics.Part{{Topic: topic, Queue: q, Batch: b}}}))
		case k < 75:
			member := ""
			if rng.IntN(2) == 0 {
				member = fmt.Sprintf("m%d", 1+rng.IntN(3))
			}
			instance := ""
			if rng.IntN(4) == 0 {
				instance = fmt.Sprintf("i%d", rng.IntN(2))
			}
			join := JoinGroup
			if rng.IntN(4) == 0 { // a log of an earlier version, replayed
				join = JoinGroupV1
			}
			cmds = append(cmds, join.Encode(consumer.JoinCmd{Group: "g" + topic, MemberID: member, InstanceID: instance,
				Topics: []string{topic}, SessionTimeoutMs: 1000}))
		case k < 79:
			cmds = append(cmds, ReleaseQueues.Encode(consumer.ReleaseCmd{Group: "g" + topic, MemberID: fmt.Sprintf("m%d", 1+rng.IntN(3)),
				Queues: []consumer.TQ{{Topic: topic, Queue: rng.IntN(3)}}, Offsets: []consumer.Offset{{Topic: topic, Queue: rng.IntN(3), Offset: uint64(rng.IntN(50))}}}))
		case k < 82:
			cmds = append(cmds, LeaveGroup.Encode(consumer.LeaveCmd{Group: "g" + topic, MemberID: fmt.Sprintf("m%d", 1+rng.IntN(3))}))
		case k < 95:
			cmds = append(cmds, CommitOffsets.Encode(consumer.CommitCmd{Group: "g" + topic, MemberID: fmt.Sprintf("m%d", 1+rng.IntN(3)),
				Generation: uint64(rng.IntN(6)), Offsets: []consumer.Offset{{Topic: topic, Queue: rng.IntN(3), Offset: uint64(rng.IntN(50))}}}))
		default:
			cmds = append(cmds, ResetOffsets.Encode(consumer.ResetCmd{Group: "g" + topic, Offsets: []consumer.Offset{{Topic: topic, Queue: 0, Offset: 1}}}))
		}
	}
	return cmds
}

// TestDeterminism: the same command sequence applied to two fresh
// machines gives the same results and byte-identical snapshots, at every
// point; and a snapshot restored and applied onwards ends where the
// original ends.
func TestDeterminism(t *testing.T) {
	seeds := []uint64{1, 2, 3, uint64(time.Now().UnixNano())}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (replay: go test ./fsm -run TestDeterminism -fsm.seed %d)", seed, seed)
			cmds := randomCommands(t, rand.New(rand.NewPCG(seed, seed)), 400)
			a, b := New(), New()
			var mid []byte
			for i, c := range cmds {
				ra, rb := apply(a, uint64(i+1), c), apply(b, uint64(i+1), c)
				if describe(ra) != describe(rb) {
					t.Fatalf("command %d (%s): results %v and %v", i, a.CommandName(c), ra, rb)
				}
				if i%50 == 0 && !bytes.Equal(persist(t, a), persist(t, b)) {
					t.Fatalf("snapshots differ after command %d", i)
				}
				if i == len(cmds)/2 {
					mid = persist(t, a)
				}
			}
			c := restore(t, mid)
			for i := len(cmds)/2 + 1; i < len(cmds); i++ {
				apply(c, uint64(i+1), cmds[i])
			}
			if !bytes.Equal(persist(t, a), persist(t, c)) {
				t.Fatal("restored mid-way snapshot plus the rest differs from applying all")
			}
		})
	}
}

// describe prints a command's result by value (a topic by its config).
func describe(res any) string {
	if t, ok := res.(*topics.Topic); ok {
		return fmt.Sprintf("topic %+v at %d", t.Config, t.CreatedIndex)
	}
	return fmt.Sprintf("%+v", res)
}

// goldenCommands builds the state behind testdata/golden.snap.
func goldenCommands(t testing.TB) [][]byte {
	return randomCommands(t, rand.New(rand.NewPCG(42, 42)), 300)
}

// TestGoldenSnapshot guards the snapshot format: this version writes
// testdata/golden.snap byte for byte from a fixed command sequence, reads
// it back, and writes it again bit-identically. A format change must bump
// SnapshotVersion and keep reading the old golden file.
func TestGoldenSnapshot(t *testing.T) {
	m := New()
	for i, c := range goldenCommands(t) {
		apply(m, uint64(i+1), c)
	}
	got := persist(t, m)
	path := filepath.Join("testdata", "golden.snap")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("snapshot of the golden state (%d bytes) differs from %s (%d bytes): the format changed", len(got), path, len(want))
	}
	if again := persist(t, restore(t, want)); !bytes.Equal(again, want) {
		t.Fatal("golden snapshot restored and written again differs")
	}
	stored := uint64(0)
	for _, top := range m.Topics().List() {
		for _, n := range top.NextOffsets() {
			stored += n
		}
	}
	if m.Auth().TokenCount() < 1 || m.Auth().ACLCount() < 1 || len(m.Auth().GroupsOf("User:u1")) < 1 {
		t.Fatalf("the golden state (%d tokens, %d ACLs) exercises too little of auth", m.Auth().TokenCount(), m.Auth().ACLCount())
	}
	if len(m.Topics().List()) < 2 || len(m.Groups().List()) < 2 || stored < 20 {
		t.Fatalf("the golden state (%d topics, %d groups, %d messages) exercises too little", len(m.Topics().List()), len(m.Groups().List()), stored)
	}
}

// TestGoldenV1Restores: a snapshot of format version 1 (written before
// queues had owners and targets; testdata/golden-v1.snap) still restores,
// each member keeping the queues it had, and is written again as version 2.
func TestGoldenV1Restores(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "golden-v1.snap"))
	if err != nil {
		t.Fatal(err)
	}
	m := restore(t, old)
	if len(m.Groups().List()) < 2 {
		t.Fatalf("%d groups restored", len(m.Groups().List()))
	}
	for _, g := range m.Groups().List() {
		if len(g.Revoking) != 0 {
			t.Fatalf("group %s restored with queues moving: %v", g.Name, g.Revoking)
		}
	}
	again := persist(t, m)
	if binary.LittleEndian.Uint16(again[8:]) != SnapshotVersion {
		t.Fatal("a restored version-1 snapshot was not written as the current version")
	}
	if !bytes.Equal(persist(t, restore(t, again)), again) {
		t.Fatal("round trip after the upgrade changed the state")
	}
}

// TestGoldenV2Restores: a snapshot of format version 2 (before the auth
// section; testdata/golden-v2.snap) restores with an empty auth state and
// is written again as the current version.
func TestGoldenV2Restores(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "golden-v2.snap"))
	if err != nil {
		t.Fatal(err)
	}
	m := restore(t, old)
	if len(m.Topics().List()) < 2 || len(m.Groups().List()) < 2 || m.Auth().TokenCount() != 0 || m.Auth().ACLCount() != 0 {
		t.Fatalf("version 2 restored to %d topics, %d groups, %d tokens, %d ACLs", len(m.Topics().List()), len(m.Groups().List()),
			m.Auth().TokenCount(), m.Auth().ACLCount())
	}
	again := persist(t, m)
	if binary.LittleEndian.Uint16(again[8:]) != SnapshotVersion {
		t.Fatal("a restored version-2 snapshot was not written as the current version")
	}
	if !bytes.Equal(persist(t, restore(t, again)), again) {
		t.Fatal("round trip after the upgrade changed the state")
	}
}

func TestCorruptSnapshotRefused(t *testing.T) {
	m := New()
	for i, c := range goldenCommands(t) {
		apply(m, uint64(i+1), c)
	}
	good := persist(t, m)
	before := persist(t, m)
	cases := map[string][]byte{
		"empty":          nil,
		"bad magic":      append([]byte("XXXXXXXX"), good[8:]...),
		"future version": append(append([]byte{}, good[:8]...), append([]byte{9, 0}, good[10:]...)...),
		"truncated":      good[:len(good)-3],
		"trailing":       append(append([]byte{}, good...), 0),
	}
	for i := 12; i < len(good); i += len(good) / 7 {
		flipped := append([]byte{}, good...)
		flipped[i] ^= 0x40
		cases[fmt.Sprintf("bit flip at %d", i)] = flipped
	}
	for name, b := range cases {
		err := m.Restore(bytes.NewReader(b), replication.RestoreInfo{})
		if !errors.Is(err, replication.ErrBadSnapshot) {
			t.Fatalf("%s: %v, want ErrBadSnapshot", name, err)
		}
	}
	if !bytes.Equal(before, persist(t, m)) {
		t.Fatal("a refused snapshot changed the state")
	}
}

// FuzzRestore: any bytes either restore or are refused; never a panic.
func FuzzRestore(f *testing.F) {
	m := New()
	for i, c := range goldenCommands(f) {
		apply(m, uint64(i+1), c)
	}
	f.Add(persist(f, m))
	f.Add(persist(f, New()))
	var bad bytes.Buffer
	writeContainer(&bad, []section{{sectionTopics, topicsSection("t", 0, 0, 1<<20)}, {sectionGroups, groupsSection([]string{"m1"}, 1, "t/0")}})
	f.Add(bad.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		m := New()
		if m.Restore(bytes.NewReader(b), replication.RestoreInfo{}) != nil {
			return
		}
		// What restores is valid state (issue 11): every topic has queues,
		// and it persists and restores again.
		for _, tp := range m.Topics().List() {
			if tp.Queues < 1 || len(tp.NextOffsets()) != tp.Queues {
				t.Fatalf("restored topic %q with %d queues", tp.Name, tp.Queues)
			}
		}
		if err := New().Restore(bytes.NewReader(persist(t, m)), replication.RestoreInfo{}); err != nil {
			t.Fatalf("a restored state does not restore again: %v", err)
		}
	})
}

// TestRestoreVersion0: a snapshot written by the version before the
// container (testdata/legacy-v0.snap, written by commit e0709e6 from a
// known command sequence) restores to the state those commands made, and
// is written back in the current format.
func TestRestoreVersion0(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "legacy-v0.snap"))
	if err != nil {
		t.Fatal(err)
	}
	m := restore(t, b)
	orders, err := m.Topics().Lookup("orders")
	if err != nil || orders.Queues != 2 || orders.RetentionBytes != 1<<30 || orders.CreatedIndex != 1 {
		t.Fatalf("orders: %+v, %v", orders, err)
	}
	audit, err := m.Topics().Lookup("audit")
	if err != nil || audit.RetentionMs != 3600000 || audit.MaxMessageBytes != 4096 {
		t.Fatalf("audit: %+v, %v", audit, err)
	}
	if got := fmt.Sprint(orders.NextOffsets(), audit.NextOffsets()); got != "[7 2] [1]" {
		t.Fatalf("next offsets %s", got)
	}
	q0, _ := orders.Queue(0)
	refs, _ := q0.Find(0, topics.Horizon{}, 10)
	if len(refs) != 2 || refs[1].BaseOffset != 3 || refs[1].Count != 4 || refs[1].Index != 5 {
		t.Fatalf("orders/0 batches %+v", refs)
	}
	// The idempotent producer's window came along: a resend of its second
	// batch is answered with the original offsets, and the next id is 2.
	res := m.topics.Produce(100, topics.ProduceCmd{TimeMs: 1_700_000_000_100,
		Parts: []topics.Part{{Topic: "orders", Queue: 0, Batch: batch(t, 1, 3, 4)}}})
	if !res[0].Duplicate || res[0].BaseOffset != 3 {
		t.Fatalf("resend after a version-0 restore: %+v", res[0])
	}
	if id, _ := m.topics.InitProducer(1_700_000_000_100); id != 2 {
		t.Fatalf("next producer id %d, want 2", id)
	}
	g, err := m.Groups().Describe("billing")
	if err != nil || g.Generation != 2 || len(g.Members) != 2 || g.Members[1].SessionTimeoutMs != 20000 {
		t.Fatalf("billing: %+v, %v", g, err)
	}
	if fmt.Sprint(g.Offsets) != "map[{audit 0}:1 {orders 0}:1 {orders 1}:2]" {
		t.Fatalf("billing offsets %v", g.Offsets)
	}
	if idle, err := m.Groups().Describe("idle"); err != nil || fmt.Sprint(idle.Offsets) != "map[{audit 0}:1]" {
		t.Fatalf("idle: %+v, %v", idle, err)
	}
	if m3, err := m.groups.Join(consumer.JoinCmd{Group: "billing", Topics: []string{"orders"}}); err != nil || m3.MemberID != "m3" {
		t.Fatalf("member ids after a version-0 restore: %+v, %v", m3, err)
	}
	again := persist(t, m)
	if string(again[:len(snapMagic)]) != snapMagic {
		t.Fatal("a restored version-0 state is not written in the current format")
	}
	// Broken version-0 input is refused and changes nothing.
	before := persist(t, m)
	for _, cut := range []int{4, 8, 100, len(b) - 1} {
		if err := m.Restore(bytes.NewReader(b[:cut]), replication.RestoreInfo{}); !errors.Is(err, replication.ErrBadSnapshot) {
			t.Fatalf("version-0 snapshot cut at %d: %v", cut, err)
		}
	}
	if !bytes.Equal(before, persist(t, m)) {
		t.Fatal("a refused version-0 snapshot changed the state")
	}
}
