package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ledgermq/ledgermq/wire"
)

// Errors of auth commands; the service maps them to stable codes.
var (
	ErrInvalid        = errors.New("auth: invalid argument")
	ErrTokenNotFound  = errors.New("auth: no such token")
	ErrTokenExists    = errors.New("auth: token id exists")
	ErrTooManyTokens  = errors.New("auth: too many tokens")
	ErrTooManyACLs    = errors.New("auth: too many ACLs")
	ErrTooManyMembers = errors.New("auth: too many principal groups")
)

// Bounds on the replicated auth state, applied deterministically (a
// command over them is refused on every node alike).
const (
	MaxTokens             = 10_000
	MaxACLs               = 10_000
	MaxGroupsPerPrincipal = 100
	MaxPrincipals         = 10_000 // principals with groups
	maxNameLen            = 256
	maxDescriptionLen     = 1024
)

// Token is a stored API token: never its secret, only the argon2id hash.
type Token struct {
	ID          string     `json:"id"`
	Principal   string     `json:"principal"`
	Description string     `json:"description,omitempty"`
	CreatedMs   int64      `json:"created_ms"`
	Hash        HashParams `json:"hash"`
}

// CreateTokenCmd stores a token whose secret the leader has hashed.
type CreateTokenCmd struct{ Token Token }

// RevokeTokenCmd deletes a token.
type RevokeTokenCmd struct {
	ID string `json:"id"`
}

// ACLCmd adds or deletes one ACL.
type ACLCmd struct {
	ACL wire.ACL `json:"acl"`
}

// SetGroupsCmd replaces the groups of a principal (none: it has none).
type SetGroupsCmd struct {
	Principal string   `json:"principal"`
	Groups    []string `json:"groups"`
}

// AppendPayload appends a command payload (JSON); the fsm registry frames
// it behind the command's code.
func AppendPayload[C CreateTokenCmd | RevokeTokenCmd | ACLCmd | SetGroupsCmd](dst []byte, c C) []byte {
	b, _ := json.Marshal(c)
	return append(dst, b...)
}

// DecodePayload decodes a command payload.
func DecodePayload[C CreateTokenCmd | RevokeTokenCmd | ACLCmd | SetGroupsCmd](b []byte) (C, error) {
	var c C
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return c, nil
}

// State is the replicated auth state. Apply methods run on one goroutine;
// read methods are safe alongside them.
type State struct {
	mu     sync.RWMutex
	tokens map[string]Token      // by id
	groups map[string][]string   // principal -> sorted groups
	acls   map[wire.ACL]struct{} // normalized
}

// New returns an empty state.
func New() *State {
	return &State{tokens: map[string]Token{}, groups: map[string][]string{}, acls: map[wire.ACL]struct{}{}}
}

// CreateToken applies CreateTokenCmd.
func (s *State) CreateToken(c CreateTokenCmd) error {
	if err := checkToken(c.Token); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[c.Token.ID]; ok {
		return fmt.Errorf("%w: %s", ErrTokenExists, c.Token.ID)
	}
	if len(s.tokens) >= MaxTokens {
		return fmt.Errorf("%w: the group has the maximum of %d tokens; revoke unused ones first", ErrTooManyTokens, MaxTokens)
	}
	s.tokens[c.Token.ID] = c.Token
	return nil
}

// RevokeToken applies RevokeTokenCmd. Every node's Verifier stops
// accepting the token as soon as this returns.
func (s *State) RevokeToken(c RevokeTokenCmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[c.ID]; !ok {
		return fmt.Errorf("%w: %q", ErrTokenNotFound, c.ID)
	}
	delete(s.tokens, c.ID)
	return nil
}

// AddACL applies an add: true if the ACL is new, false if it was there.
func (s *State) AddACL(c ACLCmd) (bool, error) {
	a, err := NormalizeACL(c.ACL)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.acls[a]; ok {
		return false, nil
	}
	if len(s.acls) >= MaxACLs {
		return false, fmt.Errorf("%w: the group has the maximum of %d ACLs; remove unused ones first", ErrTooManyACLs, MaxACLs)
	}
	s.acls[a] = struct{}{}
	return true, nil
}

// DeleteACL applies a delete: the number of ACLs removed (0 or 1).
func (s *State) DeleteACL(c ACLCmd) (int, error) {
	a, err := NormalizeACL(c.ACL)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.acls[a]; !ok {
		return 0, nil
	}
	delete(s.acls, a)
	return 1, nil
}

// SetGroups applies SetGroupsCmd.
func (s *State) SetGroups(c SetGroupsCmd) error {
	gs, err := NormalizeGroups(c.Principal, c.Groups)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(gs) == 0 {
		delete(s.groups, c.Principal)
		return nil
	}
	if _, ok := s.groups[c.Principal]; !ok && len(s.groups) >= MaxPrincipals {
		return fmt.Errorf("%w: %d principals have groups already", ErrTooManyMembers, MaxPrincipals)
	}
	s.groups[c.Principal] = gs
	return nil
}

// Token returns a stored token.
func (s *State) Token(id string) (Token, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tokens[id]
	return t, ok
}

// Tokens returns every token by id.
func (s *State) Tokens() []Token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Token, 0, len(s.tokens))
	for _, t := range s.tokens {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Token) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// TokenCount returns the number of tokens.
func (s *State) TokenCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tokens)
}

// ACLCount returns the number of ACLs.
func (s *State) ACLCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.acls)
}

// HasACL reports whether a (normalized) ACL is stored.
func (s *State) HasACL(a wire.ACL) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.acls[a]
	return ok
}

// GroupsOf returns the groups principal belongs to (sorted; a copy).
func (s *State) GroupsOf(principal string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]string{}, s.groups[principal]...)
}

// ACLs returns the ACLs that match the filter's non-empty fields, sorted.
func (s *State) ACLs(principal, resourceType, resource string) []wire.ACL {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []wire.ACL{}
	for a := range s.acls {
		if (principal == "" || a.Principal == principal) && (resourceType == "" || a.ResourceType == resourceType) &&
			(resource == "" || a.Resource == resource) {
			out = append(out, a)
		}
	}
	sortACLs(out)
	return out
}

// acls calls f with every ACL, under the read lock.
func (s *State) eachACL(f func(wire.ACL)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for a := range s.acls {
		f(a)
	}
}

func sortACLs(as []wire.ACL) {
	slices.SortFunc(as, func(a, b wire.ACL) int {
		return strings.Compare(aclKey(a), aclKey(b))
	})
}

func aclKey(a wire.ACL) string {
	return strings.Join([]string{a.Principal, a.ResourceType, a.Resource, a.Pattern, a.Operation, a.Effect}, "\x00")
}

// ValidatePrincipal checks a principal: User:<name> or Group:<name>, the
// name printable, without spaces or commas; User:* only where wildcard
// is true.
func ValidatePrincipal(p string, wildcard bool) error {
	typ, name, ok := strings.Cut(p, ":")
	if !ok || (typ != "User" && typ != "Group") {
		return fmt.Errorf("%w: principal %q must be User:<name> or Group:<name>", ErrInvalid, p)
	}
	if name == "*" {
		if typ == "User" && wildcard {
			return nil
		}
		return fmt.Errorf("%w: principal %q: * is only allowed as User:* in ACLs", ErrInvalid, p)
	}
	if err := checkName("principal name", name); err != nil {
		return err
	}
	return nil
}

func checkName(what, name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: %s must be 1..%d bytes", ErrInvalid, what, maxNameLen)
	}
	for _, r := range name {
		if r <= ' ' || r == ',' || r == 0x7f || r == '*' {
			return fmt.Errorf("%w: %s %q has a space, control character, comma or *", ErrInvalid, what, name)
		}
	}
	return nil
}

var (
	resourceTypes = []string{wire.ResourceTopic, wire.ResourceGroup, wire.ResourceCluster}
	operations    = []string{wire.OpProduce, wire.OpConsume, wire.OpDescribe, wire.OpCreate, wire.OpDelete, wire.OpAlter, wire.OpAdmin, wire.OpAll}
)

// NormalizeACL fills an ACL's defaults (pattern literal, effect allow; a
// cluster's resource is "*") and checks it.
func NormalizeACL(a wire.ACL) (wire.ACL, error) {
	if a.Pattern == "" {
		a.Pattern = wire.PatternLiteral
	}
	if a.Effect == "" {
		a.Effect = wire.EffectAllow
	}
	if a.ResourceType == wire.ResourceCluster && a.Resource == "" {
		a.Resource = "*"
	}
	if err := ValidatePrincipal(a.Principal, true); err != nil {
		return a, err
	}
	switch {
	case !slices.Contains(resourceTypes, a.ResourceType):
		return a, fmt.Errorf("%w: resource_type must be one of %s, got %q", ErrInvalid, strings.Join(resourceTypes, ", "), a.ResourceType)
	case !slices.Contains(operations, a.Operation):
		return a, fmt.Errorf("%w: operation must be one of %s, got %q", ErrInvalid, strings.Join(operations, ", "), a.Operation)
	case a.Pattern != wire.PatternLiteral && a.Pattern != wire.PatternPrefixed:
		return a, fmt.Errorf("%w: pattern must be literal or prefixed, got %q", ErrInvalid, a.Pattern)
	case a.Effect != wire.EffectAllow && a.Effect != wire.EffectDeny:
		return a, fmt.Errorf("%w: effect must be allow or deny, got %q", ErrInvalid, a.Effect)
	case a.ResourceType == wire.ResourceCluster && (a.Resource != "*" || a.Pattern != wire.PatternLiteral):
		return a, fmt.Errorf("%w: a cluster ACL's resource is * (literal), got %q (%s)", ErrInvalid, a.Resource, a.Pattern)
	case a.Resource == "" || len(a.Resource) > maxNameLen:
		return a, fmt.Errorf("%w: resource must be 1..%d bytes", ErrInvalid, maxNameLen)
	case a.Pattern == wire.PatternPrefixed && strings.Contains(a.Resource, "*"):
		return a, fmt.Errorf("%w: a prefixed resource has no *: %q", ErrInvalid, a.Resource)
	}
	return a, nil
}

// NormalizeGroups checks a principal's groups and returns them sorted
// without duplicates.
func NormalizeGroups(principal string, groups []string) ([]string, error) {
	if err := ValidatePrincipal(principal, false); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(principal, "User:") {
		return nil, fmt.Errorf("%w: only users belong to groups, not %q", ErrInvalid, principal)
	}
	if len(groups) > MaxGroupsPerPrincipal {
		return nil, fmt.Errorf("%w: %d groups, at most %d per principal", ErrInvalid, len(groups), MaxGroupsPerPrincipal)
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if err := ValidatePrincipal(g, false); err != nil || !strings.HasPrefix(g, "Group:") {
			return nil, fmt.Errorf("%w: %q is not a group (Group:<name>)", ErrInvalid, g)
		}
		out = append(out, g)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func checkToken(t Token) error {
	if err := checkTokenID(t.ID); err != nil {
		return err
	}
	if err := ValidatePrincipal(t.Principal, false); err != nil || !strings.HasPrefix(t.Principal, "User:") {
		return fmt.Errorf("%w: a token's principal is a user (User:<name>), got %q", ErrInvalid, t.Principal)
	}
	if len(t.Description) > maxDescriptionLen {
		return fmt.Errorf("%w: description over %d bytes", ErrInvalid, maxDescriptionLen)
	}
	return t.Hash.check()
}
