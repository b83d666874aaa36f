package auth

import (
	"fmt"
	"maps"
	"slices"

	"github.com/ledgermq/ledgermq/internal/enc"
	"github.com/ledgermq/ledgermq/wire"
)

// Snap is a point-in-time copy of the auth state.
type Snap struct {
	tokens []Token
	groups []SetGroupsCmd
	acls   []wire.ACL
}

// Snapshot copies the state (it is small: bounded by the quotas).
func (s *State) Snapshot() *Snap {
	sn := &Snap{tokens: s.Tokens(), acls: s.ACLs("", "", "")}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range slices.Sorted(maps.Keys(s.groups)) {
		sn.groups = append(sn.groups, SetGroupsCmd{Principal: p, Groups: slices.Clone(s.groups[p])})
	}
	return sn
}

// snapVersion is the auth section's own format version.
const snapVersion = 1

// Encode writes the snapshot, all in a fixed order (byte-identical on
// every node):
//
//	version u8
//	tokens: count, then id, principal, description, created ms (varint),
//	        salt, key, time u32, memory KiB u32, threads u8
//	groups: count, then principal, count, group names
//	acls:   count, then principal, resource type, resource, pattern,
//	        operation, effect
func (sn *Snap) Encode(w *enc.Writer) {
	w.U8(snapVersion)
	w.Uvarint(uint64(len(sn.tokens)))
	for _, t := range sn.tokens {
		w.String(t.ID)
		w.String(t.Principal)
		w.String(t.Description)
		w.Varint(t.CreatedMs)
		w.Bytes(t.Hash.Salt)
		w.Bytes(t.Hash.Key)
		w.U32(t.Hash.Time)
		w.U32(t.Hash.MemoryKiB)
		w.U8(t.Hash.Threads)
	}
	w.Uvarint(uint64(len(sn.groups)))
	for _, g := range sn.groups {
		w.String(g.Principal)
		w.Uvarint(uint64(len(g.Groups)))
		for _, name := range g.Groups {
			w.String(name)
		}
	}
	w.Uvarint(uint64(len(sn.acls)))
	for _, a := range sn.acls {
		for _, f := range []string{a.Principal, a.ResourceType, a.Resource, a.Pattern, a.Operation, a.Effect} {
			w.String(f)
		}
	}
}

// Decode replaces the state with an encoded snapshot. Every entry is
// checked as its command would be (a hostile or corrupt section cannot
// install what no command could); on any error the state is unchanged.
func (s *State) Decode(r *enc.Reader) error {
	if v := r.U8(); r.Err() == nil && v != snapVersion {
		return fmt.Errorf("auth: snapshot section version %d, this build reads %d", v, snapVersion)
	}
	next := New()
	for range r.Count(16) {
		t := Token{ID: r.String(), Principal: r.String(), Description: r.String(), CreatedMs: r.Varint()}
		t.Hash = HashParams{Salt: slices.Clone(r.Bytes()), Key: slices.Clone(r.Bytes()), Time: r.U32(), MemoryKiB: r.U32(), Threads: r.U8()}
		if r.Err() != nil {
			break
		}
		if err := next.CreateToken(CreateTokenCmd{Token: t}); err != nil {
			return fmt.Errorf("auth: snapshot token: %w", err)
		}
	}
	for range r.Count(2) {
		c := SetGroupsCmd{Principal: r.String()}
		for range r.Count(1) {
			c.Groups = append(c.Groups, r.String())
		}
		if r.Err() != nil {
			break
		}
		if gs, err := NormalizeGroups(c.Principal, c.Groups); err != nil || len(gs) == 0 || !slices.Equal(gs, c.Groups) {
			return fmt.Errorf("auth: snapshot groups of %q are not a set of valid groups (%v)", c.Principal, err)
		}
		if _, dup := next.groups[c.Principal]; dup {
			return fmt.Errorf("auth: snapshot lists the groups of %q twice", c.Principal)
		}
		if err := next.SetGroups(c); err != nil {
			return fmt.Errorf("auth: snapshot groups: %w", err)
		}
	}
	for range r.Count(6) {
		a := wire.ACL{Principal: r.String(), ResourceType: r.String(), Resource: r.String(), Pattern: r.String(), Operation: r.String(), Effect: r.String()}
		if r.Err() != nil {
			break
		}
		if n, err := NormalizeACL(a); err != nil || n != a {
			return fmt.Errorf("auth: snapshot ACL %+v is not valid (%v)", a, err)
		}
		added, err := next.AddACL(ACLCmd{ACL: a})
		if err != nil {
			return fmt.Errorf("auth: snapshot ACL: %w", err)
		}
		if !added {
			return fmt.Errorf("auth: snapshot lists ACL %+v twice", a)
		}
	}
	if err := r.End(); err != nil {
		return fmt.Errorf("auth: snapshot section: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens, s.groups, s.acls = next.tokens, next.groups, next.acls
	return nil
}
