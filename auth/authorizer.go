package auth

import (
	"slices"
	"strings"

	"github.com/ledgermq/ledgermq/wire"
)

// AnyUser is the ACL principal that matches every authenticated user.
const AnyUser = "User:*"

// Authorizer decides from the ACLs in the state.
type Authorizer struct {
	state      *State
	superusers []string
}

// NewAuthorizer returns an authorizer over state; superusers (Kafka's
// super.users, e.g. User:admin) are allowed everything.
func NewAuthorizer(state *State, superusers []string) *Authorizer {
	return &Authorizer{state: state, superusers: slices.Clone(superusers)}
}

// Superuser reports whether principal is a superuser.
func (a *Authorizer) Superuser(principal string) bool {
	return slices.Contains(a.superusers, principal)
}

// Allowed reports whether principal, a member of groups, may perform op
// on the resource of type rtype named name (cluster: any name). Rules:
// superusers may do everything; otherwise a matching deny refuses, and
// a matching allow is needed. An ACL matches when its principal is the
// principal, one of its groups, or User:* (for users); its resource
// type is rtype; its resource is name (literal), "*" (literal), or a
// prefix of name (prefixed); and its operation is op or all. describe is
// implied by an allow of any operation on the resource (only a deny of
// describe or all refuses it).
func (a *Authorizer) Allowed(principal string, groups []string, op, rtype, name string) bool {
	if a.Superuser(principal) {
		return true
	}
	allowed, denied := false, false
	a.state.eachACL(func(acl wire.ACL) {
		if denied || acl.ResourceType != rtype || !principalMatches(acl.Principal, principal, groups) || !resourceMatches(acl, name) {
			return
		}
		opMatches := acl.Operation == op || acl.Operation == wire.OpAll
		switch {
		case acl.Effect == wire.EffectDeny && opMatches:
			denied = true
		case acl.Effect == wire.EffectAllow && (opMatches || op == wire.OpDescribe):
			allowed = true
		}
	})
	return allowed && !denied
}

func principalMatches(aclPrincipal, principal string, groups []string) bool {
	switch {
	case aclPrincipal == principal:
		return true
	case aclPrincipal == AnyUser:
		return strings.HasPrefix(principal, "User:")
	}
	return slices.Contains(groups, aclPrincipal)
}

func resourceMatches(acl wire.ACL, name string) bool {
	if acl.ResourceType == wire.ResourceCluster {
		return true
	}
	if acl.Pattern == wire.PatternPrefixed {
		return strings.HasPrefix(name, acl.Resource)
	}
	return acl.Resource == "*" || acl.Resource == name
}
