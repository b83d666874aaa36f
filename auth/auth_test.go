package auth

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/enc"
	"github.com/ledgermq/ledgermq/wire"
)

func acl(principal, rtype, resource, pattern, op, effect string) wire.ACL {
	return wire.ACL{Principal: principal, ResourceType: rtype, Resource: resource, Pattern: pattern, Operation: op, Effect: effect}
}

func mustAdd(t *testing.T, s *State, as ...wire.ACL) {
	t.Helper()
	for _, a := range as {
		if _, err := s.AddACL(ACLCmd{ACL: a}); err != nil {
			t.Fatalf("add %+v: %v", a, err)
		}
	}
}

func TestAuthorizer(t *testing.T) {
	s := New()
	mustAdd(t, s,
		acl("User:alice", "topic", "orders", "", "produce", ""),
		acl("User:alice", "topic", "orders.", "prefixed", "consume", "allow"),
		acl("User:alice", "topic", "orders.secret", "", "all", "deny"),
		acl("Group:ops", "topic", "*", "", "describe", "allow"),
		acl("Group:ops", "group", "ops-", "prefixed", "all", "allow"),
		acl("User:*", "topic", "public", "", "consume", "allow"),
		acl("User:mallory", "topic", "public", "", "consume", "deny"),
		acl("Group:ops", "cluster", "*", "", "alter", "allow"),
		acl("User:carol", "topic", "logs", "", "produce", "allow"),
		acl("User:carol", "topic", "logs", "", "describe", "deny"),
	)
	if err := s.SetGroups(SetGroupsCmd{Principal: "User:bob", Groups: []string{"Group:ops"}}); err != nil {
		t.Fatal(err)
	}
	a := NewAuthorizer(s, []string{"User:admin"})
	for _, c := range []struct {
		principal, op, rtype, name string
		want                       bool
	}{
		{"User:alice", "produce", "topic", "orders", true},
		{"User:alice", "consume", "topic", "orders", false},        // literal ACL is produce only
		{"User:alice", "describe", "topic", "orders", true},        // implied by produce
		{"User:alice", "produce", "topic", "orders2", false},       // literal: no prefix match
		{"User:alice", "consume", "topic", "orders.eu", true},      // prefixed
		{"User:alice", "consume", "topic", "orders.secret", false}, // deny beats the prefixed allow
		{"User:alice", "describe", "topic", "orders.secret", false},
		{"User:alice", "consume", "topic", "order", false}, // shorter than the prefix
		{"User:alice", "describe", "cluster", "", false},
		{"User:bob", "describe", "topic", "anything", true}, // via Group:ops and *
		{"User:bob", "produce", "topic", "anything", false},
		{"User:bob", "consume", "group", "ops-etl", true},
		{"User:bob", "delete", "group", "ops-etl", true}, // all
		{"User:bob", "consume", "group", "dev-etl", false},
		{"User:bob", "alter", "cluster", "", true},
		{"User:bob", "admin", "cluster", "", false},
		{"User:bob", "describe", "cluster", "", true},      // implied by alter
		{"User:alice", "consume", "topic", "public", true}, // User:*
		{"User:mallory", "consume", "topic", "public", false},
		{"Group:ops", "consume", "topic", "public", false}, // User:* matches users only
		{"User:carol", "produce", "topic", "logs", true},
		{"User:carol", "describe", "topic", "logs", false}, // explicit deny of describe beats the implied allow
		{"User:admin", "delete", "topic", "orders", true},  // superuser, no ACL
		{"User:nobody", "describe", "topic", "orders", false},
	} {
		groups := s.GroupsOf(c.principal)
		if got := a.Allowed(c.principal, groups, c.op, c.rtype, c.name); got != c.want {
			t.Errorf("%s %s on %s %q: got %v, want %v", c.principal, c.op, c.rtype, c.name, got, c.want)
		}
	}
}

func TestACLValidation(t *testing.T) {
	s := New()
	for _, a := range []wire.ACL{
		acl("alice", "topic", "x", "", "produce", ""),
		acl("User:", "topic", "x", "", "produce", ""),
		acl("Group:*", "topic", "x", "", "produce", ""),
		acl("Node:n1", "topic", "x", "", "produce", ""),
		acl("User:a", "queue", "x", "", "produce", ""),
		acl("User:a", "topic", "x", "", "write", ""),
		acl("User:a", "topic", "x", "glob", "produce", ""),
		acl("User:a", "topic", "x", "", "produce", "maybe"),
		acl("User:a", "topic", "", "", "produce", ""),
		acl("User:a", "cluster", "prod", "", "alter", ""),
		acl("User:a", "topic", "a*", "prefixed", "produce", ""),
	} {
		if _, err := s.AddACL(ACLCmd{ACL: a}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", a, err)
		}
	}
	a := acl("User:a", "topic", "x", "", "produce", "")
	if added, err := s.AddACL(ACLCmd{ACL: a}); !added || err != nil {
		t.Fatal(added, err)
	}
	full := a
	full.Pattern, full.Effect = "literal", "allow"
	if added, err := s.AddACL(ACLCmd{ACL: full}); added || err != nil {
		t.Fatalf("adding the same ACL with its defaults spelled out: added %v, %v", added, err)
	}
	if n, _ := s.DeleteACL(ACLCmd{ACL: full}); n != 1 || s.ACLCount() != 0 {
		t.Fatalf("deleted %d, %d left", n, s.ACLCount())
	}
}

func TestQuotas(t *testing.T) {
	s := New()
	for i := range MaxACLs {
		mustAdd(t, s, acl("User:a", "topic", fmt.Sprint("t", i), "", "produce", ""))
	}
	if _, err := s.AddACL(ACLCmd{ACL: acl("User:a", "topic", "one-more", "", "produce", "")}); !errors.Is(err, ErrTooManyACLs) {
		t.Fatalf("ACL over the quota: %v", err)
	}
	h := HashParams{Salt: make([]byte, 16), Key: make([]byte, 32), Time: 1, MemoryKiB: 64, Threads: 1}
	for i := range MaxTokens {
		if err := s.CreateToken(CreateTokenCmd{Token: Token{ID: fmt.Sprintf("%016x", i), Principal: "User:a", Hash: h}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateToken(CreateTokenCmd{Token: Token{ID: fmt.Sprintf("%016x", MaxTokens), Principal: "User:a", Hash: h}}); !errors.Is(err, ErrTooManyTokens) {
		t.Fatalf("token over the quota: %v", err)
	}
}

func TestTokenVerify(t *testing.T) {
	s := New()
	tok, rec, err := NewToken("User:alice", "ci", 1)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprintf("%+v", rec), strings.TrimPrefix(tok, wire.TokenPrefix+rec.ID+"_")) {
		t.Fatal("the stored token record holds the secret")
	}
	if err := s.CreateToken(CreateTokenCmd{Token: rec}); err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(s)
	if p, err := v.Verify(tok); err != nil || p != "User:alice" {
		t.Fatalf("verify: %q, %v", p, err)
	}
	if v.Cached() != 1 {
		t.Fatalf("%d cached", v.Cached())
	}
	// Second verification comes from the cache.
	if p, err := v.Verify(tok); err != nil || p != "User:alice" {
		t.Fatalf("cached verify: %q, %v", p, err)
	}
	wrong := tok[:len(tok)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", tok[len(tok)-1])+1)%16])
	for _, bad := range []string{"", "lmq_", "Bearer x", wrong, "lmq_" + rec.ID, "lmq_zzzzzzzzzzzzzzzz_abc", "xyz_" + rec.ID + "_abc"} {
		if _, err := v.Verify(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("token %q: %v, want ErrBadToken", bad, err)
		}
	}
	// A wrong secret resent costs no further hash (a flood of one bad
	// token must not make the node compute 19 MiB argon2 hashes).
	before := v.Hashes()
	for range 50 {
		if _, err := v.Verify(wrong); !errors.Is(err, ErrBadToken) {
			t.Fatalf("wrong secret: %v", err)
		}
	}
	if n := v.Hashes() - before; n != 0 {
		t.Fatalf("a wrong secret resent 50 times cost %d hashes, want 0 (it was hashed once above)", n)
	}
	if err := s.RevokeToken(RevokeTokenCmd{ID: rec.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("revoked token verified from the cache: %v", err)
	}
	if v.Cached() != 0 {
		t.Fatal("revoked token still cached")
	}
	if err := s.RevokeToken(RevokeTokenCmd{ID: rec.ID}); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
}

func TestSameToken(t *testing.T) {
	if !SameToken("lmq_a_b", "lmq_a_b") || SameToken("lmq_a_b", "lmq_a_c") || SameToken("", "x") {
		t.Fatal("SameToken")
	}
}

func filled(t *testing.T) *State {
	s := New()
	_, rec, err := NewToken("User:alice", "ci", 1700000000000)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(CreateTokenCmd{Token: rec}); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, s, acl("User:alice", "topic", "orders", "", "produce", ""), acl("Group:ops", "cluster", "", "", "alter", "deny"))
	if err := s.SetGroups(SetGroupsCmd{Principal: "User:bob", Groups: []string{"Group:ops", "Group:dev", "Group:ops"}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func encode(s *State) []byte {
	var w enc.Writer
	s.Snapshot().Encode(&w)
	return w.B
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := filled(t)
	b := encode(s)
	r := New()
	if err := r.Decode(enc.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encode(r), b) {
		t.Fatal("restored state encodes differently")
	}
	if g := r.GroupsOf("User:bob"); fmt.Sprint(g) != "[Group:dev Group:ops]" {
		t.Fatalf("groups %v", g)
	}
	if r.TokenCount() != 1 || r.ACLCount() != 2 {
		t.Fatalf("%d tokens, %d ACLs", r.TokenCount(), r.ACLCount())
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	good := filled(t)
	want := encode(good)
	bad := map[string]func(*Snap){
		"bad principal":   func(sn *Snap) { sn.acls[0].Principal = "alice" },
		"unsorted groups": func(sn *Snap) { sn.groups[0].Groups = []string{"Group:z", "Group:a"} },
		"empty groups":    func(sn *Snap) { sn.groups[0].Groups = nil },
		"duplicate ACL":   func(sn *Snap) { sn.acls = append(sn.acls, sn.acls[0]) },
		"token id":        func(sn *Snap) { sn.tokens[0].ID = "short" },
		"empty salt":      func(sn *Snap) { sn.tokens[0].Hash.Salt = nil },
		"group principal": func(sn *Snap) { sn.tokens[0].Principal = "Group:ops" },
	}
	for name, corrupt := range bad {
		t.Run(name, func(t *testing.T) {
			sn := good.Snapshot()
			corrupt(sn)
			var w enc.Writer
			sn.Encode(&w)
			if err := good.Decode(enc.NewReader(w.B)); err == nil {
				t.Fatal("decoded")
			}
			if !bytes.Equal(encode(good), want) {
				t.Fatal("a refused snapshot changed the state")
			}
		})
	}
	for i := range want {
		if err := New().Decode(enc.NewReader(want[:i])); err == nil {
			t.Fatalf("truncated at %d of %d bytes: decoded", i, len(want))
		}
	}
}

func TestAuditRateLimit(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	a := NewAudit(slog.New(slog.NewJSONHandler(&buf, nil)), 50, 100, func() time.Time { return now })
	for range 10_000 {
		a.Record(Event{Principal: "User:x", Operation: "produce", Resource: "topic t", Result: "denied", Remote: "127.0.0.1"})
	}
	if n := strings.Count(buf.String(), "\n"); n != 100 {
		t.Fatalf("%d lines written from a flood of 10,000 at once, want the burst of 100", n)
	}
	now = now.Add(time.Second) // refills 50
	buf.Reset()
	a.Record(Event{Principal: "User:x", Operation: "produce", Resource: "topic t", Result: "denied"})
	line := buf.String()
	for _, want := range []string{`"logger":"audit"`, `"suppressed":9900`, `"operation":"produce"`, `"principal":"User:x"`} {
		if !strings.Contains(line, want) {
			t.Fatalf("line %s lacks %s", line, want)
		}
	}
	buf.Reset()
	a.Record(Event{Principal: "User:x", Operation: "produce", Resource: "topic t", Result: "denied"})
	if strings.Contains(buf.String(), "suppressed") {
		t.Fatal("the suppressed count was reported twice")
	}
}

// TestAuditFloodHidesNoAdminOperation: a stranger's flood of refused
// requests (no credentials needed) must not empty the bucket the admin
// operations are written from: they have a bucket of their own.
func TestAuditFloodHidesNoAdminOperation(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	a := NewAudit(slog.New(slog.NewJSONHandler(&buf, nil)), 50, 100, func() time.Time { return now })
	for range 10_000 {
		a.Record(Event{Principal: "User:ANONYMOUS", Operation: "authenticate", Resource: "cluster", Result: "unauthenticated"})
	}
	buf.Reset()
	a.Record(Event{Principal: "User:mallory", Operation: "acl_add", Resource: "topic t", Result: "ok"})
	a.Record(Event{Principal: "User:mallory", Operation: "topic_delete", Resource: "topic t", Result: "failed"})
	out := buf.String()
	if !strings.Contains(out, `"operation":"acl_add"`) || !strings.Contains(out, `"operation":"topic_delete"`) || strings.Contains(out, "suppressed") {
		t.Fatalf("admin operations after a flood of refusals: %q", out)
	}
}

// TestVerifierHashBounds: one argon2 check per token id at a time (a
// flood of made-up secrets for one id holds one slot, the others fail
// fast with ErrBusy), at most maxHashing at once, and a check that waits
// longer than busyWait for a slot gives up with ErrBusy instead of
// queueing without bound.
func TestVerifierHashBounds(t *testing.T) {
	v := NewVerifier(New())
	release := make(chan struct{})
	blocked := func() bool { <-release; return false }
	started := func(id string) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			v.mu.Lock()
			ok := v.hashingID[id]
			v.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the check of %s did not start", id)
			}
			time.Sleep(time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { v.hash("a", blocked) })
	started("a")
	if _, err := v.hash("a", func() bool { return true }); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second check of the same id: %v, want ErrBusy", err)
	}
	if ok, err := v.hash("b", func() bool { return true }); err != nil || !ok {
		t.Fatalf("another id while one is hashed: %v %v", ok, err)
	}
	wg.Go(func() { v.hash("c", blocked) })
	started("c")
	begin := time.Now()
	if _, err := v.hash("d", func() bool { return true }); !errors.Is(err, ErrBusy) {
		t.Fatalf("a check with every slot taken: %v, want ErrBusy", err)
	}
	if waited := time.Since(begin); waited < busyWait/2 {
		t.Fatalf("gave up after %v; it should wait for a slot about %v", waited, busyWait)
	}
	close(release)
	wg.Wait()
	if ok, err := v.hash("a", func() bool { return true }); err != nil || !ok {
		t.Fatalf("after the flood: %v %v", ok, err)
	}
}
