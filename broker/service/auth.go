package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ledgermq/ledgermq/auth"
	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/wire"
)

// AuthConfig is authentication and authorization (issue 12).
type AuthConfig struct {
	// Enabled turns authentication and ACLs on. Off, every request is
	// User:ANONYMOUS and allowed.
	Enabled bool
	// Superusers are allowed everything (e.g. User:admin).
	Superusers []string
	// BootstrapToken (lmq_<id>_<secret>), when set, is accepted as the
	// credential of the first superuser (User:admin if none is named)
	// without being in the replicated state.
	BootstrapToken string
	// AuditRate and AuditBurst bound the audit log's lines per second
	// [auth.DefaultAuditRate, auth.DefaultAuditBurst].
	AuditRate, AuditBurst int
}

// DefaultBootstrapPrincipal is the bootstrap token's principal when no
// superuser is named.
const DefaultBootstrapPrincipal = "User:admin"

// Identity is who makes a request, as the front-end authenticated it.
type Identity struct {
	Principal string // User:name
	Remote    string // client address, for the audit log
}

type identityKey struct{}

// WithIdentity returns ctx carrying id: every front-end authenticates a
// request (Authenticate) and passes its identity to the core this way;
// the core's Authorize reads it.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityOf returns the identity ctx carries.
func IdentityOf(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// authn is the service's authentication and authorization state.
type authn struct {
	cfg       AuthConfig
	state     *auth.State
	authz     *auth.Authorizer
	verifier  *auth.Verifier
	audit     *auth.Audit
	bootstrap string        // the bootstrap token's principal
	syncing   chan struct{} // one catch-up with the leader for an unknown token at a time
}

// catchUpForToken brings this node up to its leader's commit index, one
// caller at a time, within tokenSyncWait.
func (s *Service) catchUpForToken() error {
	ctx, cancel := context.WithTimeout(context.Background(), tokenSyncWait)
	defer cancel()
	select {
	case s.auth.syncing <- struct{}{}:
		defer func() { <-s.auth.syncing }()
	case <-ctx.Done():
		return fmt.Errorf("too many token checks waiting")
	}
	return s.node.CatchUpToLeader(ctx)
}

// tokenSyncWait bounds the catch-up with the leader for a token this node
// does not know (it may have been created a moment ago).
const tokenSyncWait = 500 * time.Millisecond

func newAuthn(cfg AuthConfig, state *auth.State, s *Service) *authn {
	supers := slices.Clone(cfg.Superusers)
	a := &authn{cfg: cfg, state: state, verifier: auth.NewVerifier(state), syncing: make(chan struct{}, 1),
		audit: auth.NewAudit(s.logger, cfg.AuditRate, cfg.AuditBurst, s.cfg.Clock)}
	if cfg.BootstrapToken != "" {
		a.bootstrap = DefaultBootstrapPrincipal
		if len(supers) > 0 {
			a.bootstrap = supers[0]
		} else {
			supers = append(supers, a.bootstrap)
		}
	}
	a.authz = auth.NewAuthorizer(state, supers)
	return a
}

// AuthEnabled reports whether requests must authenticate.
func (s *Service) AuthEnabled() bool { return s.auth.cfg.Enabled }

// Unauthenticated is the UNAUTHENTICATED error (401).
func Unauthenticated(msg string) error { return Errorf(wire.CodeUnauthenticated, "%s", msg) }

// Authenticate turns a request's credentials into its identity: the
// bearer token (lmq_…) if given, else the verified client certificate's
// common name (User:<CN>; "" if none). Unknown, malformed or revoked
// credentials, and none, are UNAUTHENTICATED (audited). With auth off
// every request is User:ANONYMOUS.
func (s *Service) Authenticate(token, certCN, remote string) (Identity, error) {
	if !s.auth.cfg.Enabled {
		return Identity{Principal: wire.Anonymous, Remote: remote}, nil
	}
	fail := func(principal, why string) (Identity, error) {
		s.auth.audit.Record(auth.Event{Principal: principal, Operation: "authenticate", Resource: "cluster", Result: "unauthenticated", Remote: remote, Detail: why})
		return Identity{}, Unauthenticated(why)
	}
	switch {
	case token != "":
		if s.auth.cfg.BootstrapToken != "" && auth.SameToken(token, s.auth.cfg.BootstrapToken) {
			return Identity{Principal: s.auth.bootstrap, Remote: remote}, nil
		}
		p, err := s.auth.verifier.Verify(token)
		if errors.Is(err, auth.ErrUnknownToken) {
			// A token created a moment ago through the leader may not be
			// applied here yet (or this node is still replaying its log
			// after a restart): catch up with the leader once, then look
			// again. One catch-up at a time per node, so unknown tokens
			// cannot flood the leader; a node that cannot tell answers a
			// retriable UNAVAILABLE rather than a wrong 401.
			if serr := s.catchUpForToken(); serr != nil {
				return Identity{}, unavailable(fmt.Sprintf("this node cannot check the token now (%v); retry", serr))
			}
			p, err = s.auth.verifier.Verify(token)
		}
		if errors.Is(err, auth.ErrBusy) {
			return Identity{}, Overloaded("too many token checks at once on this node; retry shortly")
		}
		if err != nil {
			return fail(wire.Anonymous, "the bearer token is malformed, unknown or revoked")
		}
		return Identity{Principal: p, Remote: remote}, nil
	case certCN != "":
		p := "User:" + certCN
		if auth.ValidatePrincipal(p, false) != nil {
			return fail(wire.Anonymous, "the client certificate's common name is not a valid user name")
		}
		return Identity{Principal: p, Remote: remote}, nil
	}
	return fail(wire.Anonymous, "authentication required: send Authorization: Bearer lmq_… or a client certificate")
}

// perm is one permission: an operation on a resource.
type perm struct{ op, rtype, name string }

func (p perm) String() string {
	if p.rtype == wire.ResourceCluster {
		return p.op + " on cluster"
	}
	return fmt.Sprintf("%s on %s %s", p.op, p.rtype, p.name)
}

// Authorize is the one place that decides whether the request in ctx may
// perform op on the resource of type rtype named name (cluster: ""): nil
// if allowed; FORBIDDEN naming principal, operation and resource if not
// (audited); UNAUTHENTICATED if ctx carries no identity. With auth off,
// everything is allowed.
func (s *Service) Authorize(ctx context.Context, op, rtype, name string) error {
	return s.authorizeAny(ctx, perm{op, rtype, name})
}

// authorizeAny allows the request if any of perms is allowed; the error
// names the first.
func (s *Service) authorizeAny(ctx context.Context, perms ...perm) error {
	if !s.auth.cfg.Enabled {
		return nil
	}
	id, ok := IdentityOf(ctx)
	if !ok {
		return Unauthenticated("the request carries no authenticated identity")
	}
	for _, p := range perms {
		if s.allowed(id.Principal, p) {
			return nil
		}
	}
	s.auth.audit.Record(auth.Event{Principal: id.Principal, Operation: perms[0].op, Resource: resourceName(perms[0]), Result: "denied", Remote: id.Remote})
	return Errorf(wire.CodeForbidden, "%s may not %s", id.Principal, perms[0])
}

func (s *Service) allowed(principal string, p perm) bool {
	return s.auth.authz.Allowed(principal, s.auth.state.GroupsOf(principal), p.op, p.rtype, p.name)
}

// mayDescribe filters lists: whether ctx may describe the resource.
func (s *Service) mayDescribe(ctx context.Context, rtype, name string) bool {
	if !s.auth.cfg.Enabled {
		return true
	}
	id, ok := IdentityOf(ctx)
	return ok && s.allowed(id.Principal, perm{wire.OpDescribe, rtype, name})
}

// requireIdentity refuses requests without an authenticated identity
// (when auth is on): POST /v1/producers needs nothing more.
func (s *Service) requireIdentity(ctx context.Context) error {
	if _, ok := IdentityOf(ctx); s.auth.cfg.Enabled && !ok {
		return Unauthenticated("the request carries no authenticated identity")
	}
	return nil
}

func resourceName(p perm) string {
	if p.rtype == wire.ResourceCluster {
		return "cluster"
	}
	return p.rtype + " " + p.name
}

// audited records an admin operation's outcome in the audit log and
// returns err.
func (s *Service) audited(ctx context.Context, op string, p perm, detail string, err error) error {
	id, _ := IdentityOf(ctx)
	e := auth.Event{Principal: id.Principal, Operation: op, Resource: resourceName(p), Result: "ok", Remote: id.Remote, Detail: detail}
	if e.Principal == "" {
		e.Principal = wire.Anonymous
	}
	if err != nil {
		e.Result, e.Detail = "failed", s.AsError(err).Message
	}
	s.auth.audit.Record(e)
	return err
}

// authAdmin is the permission the admin API needs: alter on the cluster
// (admin on the cluster allows it too).
func (s *Service) authAdmin(ctx context.Context) error {
	return s.authorizeAny(ctx, perm{wire.OpAlter, wire.ResourceCluster, ""}, perm{wire.OpAdmin, wire.ResourceCluster, ""})
}

var clusterRes = perm{rtype: wire.ResourceCluster}

// WhoAmI answers who the request's principal is.
func (s *Service) WhoAmI(ctx context.Context) (wire.WhoAmI, error) {
	if err := s.requireIdentity(ctx); err != nil {
		return wire.WhoAmI{}, err
	}
	id, _ := IdentityOf(ctx)
	if id.Principal == "" {
		id.Principal = wire.Anonymous
	}
	return wire.WhoAmI{Principal: id.Principal, Groups: s.auth.state.GroupsOf(id.Principal),
		Superuser: !s.auth.cfg.Enabled || s.auth.authz.Superuser(id.Principal)}, nil
}

// CreateToken makes a token for a user. The leader generates and hashes
// the secret; only the hash is proposed. The answer holds the token, the
// one time it is shown.
func (s *Service) CreateToken(ctx context.Context, req wire.TokenRequest) (_ wire.TokenInfo, err error) {
	if err := s.authAdmin(ctx); err != nil {
		return wire.TokenInfo{}, err
	}
	detail := "for " + req.Principal
	defer func() { s.audited(ctx, "token_create", clusterRes, detail, err) }()
	if err := s.RequireLeader(); err != nil {
		return wire.TokenInfo{}, err
	}
	if s.auth.state.TokenCount() >= auth.MaxTokens {
		return wire.TokenInfo{}, fmt.Errorf("%w: the group has the maximum of %d tokens; revoke unused ones first", auth.ErrTooManyTokens, auth.MaxTokens)
	}
	created := s.cfg.Clock().Truncate(time.Millisecond)
	tok, rec, err := auth.NewToken(req.Principal, req.Description, created.UnixMilli())
	if err != nil {
		return wire.TokenInfo{}, err
	}
	detail = "token " + rec.ID + " for " + req.Principal
	if _, err := propose(s, ctx, fsm.CreateToken, auth.CreateTokenCmd{Token: rec}); err != nil {
		return wire.TokenInfo{}, err
	}
	info := tokenInfo(rec)
	info.Token = tok
	return info, nil
}

func tokenInfo(t auth.Token) wire.TokenInfo {
	return wire.TokenInfo{ID: t.ID, Principal: t.Principal, Description: t.Description, Created: time.UnixMilli(t.CreatedMs).UTC()}
}

// ListTokens lists the tokens, never a secret or hash.
func (s *Service) ListTokens(ctx context.Context) (wire.TokenList, error) {
	if err := s.authAdmin(ctx); err != nil {
		return wire.TokenList{}, err
	}
	out := wire.TokenList{Tokens: []wire.TokenInfo{}}
	for _, t := range s.auth.state.Tokens() {
		out.Tokens = append(out.Tokens, tokenInfo(t))
	}
	return out, nil
}

// RevokeToken deletes a token; every node refuses it once it has applied
// the revocation.
func (s *Service) RevokeToken(ctx context.Context, id string) (err error) {
	if err := s.authAdmin(ctx); err != nil {
		return err
	}
	defer func() { s.audited(ctx, "token_revoke", clusterRes, "token "+id, err) }()
	if err := s.RequireLeader(); err != nil {
		return err
	}
	if _, ok := s.auth.state.Token(id); !ok {
		return fmt.Errorf("%w: %q", auth.ErrTokenNotFound, id)
	}
	_, err = propose(s, ctx, fsm.RevokeToken, auth.RevokeTokenCmd{ID: id})
	return err
}

// ListACLs lists the ACLs matching the filter's non-empty fields.
func (s *Service) ListACLs(ctx context.Context, principal, rtype, resource string) ([]wire.ACL, error) {
	if err := s.authAdmin(ctx); err != nil {
		return nil, err
	}
	return s.auth.state.ACLs(principal, rtype, resource), nil
}

// AddACL adds an ACL: true if it is new, false if it was there already.
func (s *Service) AddACL(ctx context.Context, a wire.ACL) (added bool, err error) {
	if err := s.authAdmin(ctx); err != nil {
		return false, err
	}
	defer func() { s.audited(ctx, "acl_add", perm{rtype: a.ResourceType, name: a.Resource}, aclString(a), err) }()
	a, err = auth.NormalizeACL(a)
	if err != nil {
		return false, err
	}
	if err := s.RequireLeader(); err != nil {
		return false, err
	}
	if s.auth.state.HasACL(a) {
		return false, nil
	}
	if s.auth.state.ACLCount() >= auth.MaxACLs {
		return false, fmt.Errorf("%w: the group has the maximum of %d ACLs; remove unused ones first", auth.ErrTooManyACLs, auth.MaxACLs)
	}
	return propose(s, ctx, fsm.AddACL, auth.ACLCmd{ACL: a})
}

// DeleteACL deletes an ACL: the number deleted (0 or 1).
func (s *Service) DeleteACL(ctx context.Context, a wire.ACL) (_ int, err error) {
	if err := s.authAdmin(ctx); err != nil {
		return 0, err
	}
	defer func() { s.audited(ctx, "acl_delete", perm{rtype: a.ResourceType, name: a.Resource}, aclString(a), err) }()
	a, err = auth.NormalizeACL(a)
	if err != nil {
		return 0, err
	}
	if err := s.RequireLeader(); err != nil {
		return 0, err
	}
	if !s.auth.state.HasACL(a) {
		return 0, nil
	}
	return propose(s, ctx, fsm.DeleteACL, auth.ACLCmd{ACL: a})
}

func aclString(a wire.ACL) string {
	return fmt.Sprintf("%s %s %s on %s %s (%s)", a.Effect, a.Principal, a.Operation, a.ResourceType, a.Resource, a.Pattern)
}

// PrincipalGroups returns the groups of a principal.
func (s *Service) PrincipalGroups(ctx context.Context, principal string) (wire.PrincipalGroups, error) {
	if err := s.authAdmin(ctx); err != nil {
		return wire.PrincipalGroups{}, err
	}
	if err := auth.ValidatePrincipal(principal, false); err != nil {
		return wire.PrincipalGroups{}, err
	}
	return wire.PrincipalGroups{Principal: principal, Groups: s.auth.state.GroupsOf(principal)}, nil
}

// SetPrincipalGroups replaces the groups of a user.
func (s *Service) SetPrincipalGroups(ctx context.Context, principal string, groups []string) (_ wire.PrincipalGroups, err error) {
	if err := s.authAdmin(ctx); err != nil {
		return wire.PrincipalGroups{}, err
	}
	defer func() {
		s.audited(ctx, "principal_groups_set", clusterRes, fmt.Sprintf("%s in %v", principal, groups), err)
	}()
	gs, err := auth.NormalizeGroups(principal, groups)
	if err != nil {
		return wire.PrincipalGroups{}, err
	}
	if _, err := propose(s, ctx, fsm.SetPrincipalGroups, auth.SetGroupsCmd{Principal: principal, Groups: gs}); err != nil {
		return wire.PrincipalGroups{}, err
	}
	return wire.PrincipalGroups{Principal: principal, Groups: gs}, nil
}
