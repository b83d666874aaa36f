package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ledgermq/ledgermq/wire"
)

// Authentication and authorization (docs/security.md): who the caller is,
// API tokens, ACLs and the groups of principals. Every call but WhoAmI
// needs alter (or admin) on the cluster; a principal without it gets an
// *Error with code FORBIDDEN, and bad credentials UNAUTHENTICATED.

// WhoAmI returns the principal the brokers take the caller for (from the
// token, else the client certificate's CN; User:ANONYMOUS when the brokers
// run without --auth), its groups and whether it is a superuser
// (GET /v1/auth/whoami).
func (a *Admin) WhoAmI(ctx context.Context) (*wire.WhoAmI, error) {
	return read[wire.WhoAmI](ctx, a, "whoami", "/v1/auth/whoami")
}

// CreateToken makes an API token for principal (User:name)
// (POST /v1/auth/tokens). The answer's Token is the credential, shown
// this once: the brokers keep only a hash of its secret. It is not
// resent after an attempt whose outcome is unknown (that attempt may
// have made a token, which ListTokens shows and RevokeToken removes).
func (a *Admin) CreateToken(ctx context.Context, principal, description string) (*wire.TokenInfo, error) {
	return write[wire.TokenInfo](ctx, a, "create token for "+principal, http.MethodPost, "/v1/auth/tokens",
		wire.TokenRequest{Principal: principal, Description: description}, retryUnapplied)
}

// ListTokens returns every token's id, principal, description and
// creation time, never a secret (GET /v1/auth/tokens).
func (a *Admin) ListTokens(ctx context.Context) ([]wire.TokenInfo, error) {
	l, err := read[wire.TokenList](ctx, a, "list tokens", "/v1/auth/tokens")
	if err != nil {
		return nil, err
	}
	return l.Tokens, nil
}

// RevokeToken revokes the token with id (DELETE /v1/auth/tokens/{id}):
// every broker refuses it once it has applied the revocation, well within
// a second.
func (a *Admin) RevokeToken(ctx context.Context, id string) error {
	_, err := write[wire.TokenRevoked](ctx, a, "revoke token "+id, http.MethodDelete,
		"/v1/auth/tokens/"+url.PathEscape(id), nil, retryUnapplied)
	return err
}

// ACLFilter selects ACLs: each field left "" matches every value.
type ACLFilter struct {
	Principal    string // User:name, Group:name or User:*
	ResourceType string // wire.ResourceTopic, ResourceGroup or ResourceCluster
	Resource     string
}

// ListACLs returns the ACLs f selects (GET /v1/acls).
func (a *Admin) ListACLs(ctx context.Context, f ACLFilter) ([]wire.ACL, error) {
	q := url.Values{}
	for k, v := range map[string]string{"principal": f.Principal, "resource_type": f.ResourceType, "resource": f.Resource} {
		if v != "" {
			q.Set(k, v)
		}
	}
	l, err := readQuery[wire.ACLList](ctx, a, "list ACLs", "/v1/acls", q)
	if err != nil {
		return nil, err
	}
	return l.ACLs, nil
}

// AddACL adds an ACL (POST /v1/acls); a Pattern left "" is literal, an
// Effect left "" allow. Adding is idempotent, so a failed attempt is
// resent until ctx ends; created is false when the ACL existed already
// (or an attempt whose answer was lost added it).
func (a *Admin) AddACL(ctx context.Context, acl wire.ACL) (created bool, err error) {
	resp, err := send(ctx, a, "add ACL", http.MethodPost, "/v1/acls", acl, retryAll)
	if err != nil {
		return false, err
	}
	return resp.status == http.StatusCreated, nil
}

// RemoveACLs removes the ACL equal to acl (DELETE /v1/acls, the same
// defaults as AddACL) and returns how many were removed: 0 when there was
// none. A failed attempt is resent until ctx ends, so after a lost answer
// the count may be 0 although an earlier attempt removed it.
func (a *Admin) RemoveACLs(ctx context.Context, acl wire.ACL) (int, error) {
	d, err := write[wire.ACLDeleted](ctx, a, "remove ACL", http.MethodDelete, "/v1/acls", acl, retryAll)
	if err != nil {
		return 0, err
	}
	return d.Deleted, nil
}

// PrincipalGroups returns the groups (Group:name) principal (User:name)
// is a member of (GET /v1/auth/principals/{principal}/groups).
func (a *Admin) PrincipalGroups(ctx context.Context, principal string) ([]string, error) {
	pg, err := read[wire.PrincipalGroups](ctx, a, "groups of "+principal, principalGroupsPath(principal))
	if err != nil {
		return nil, err
	}
	return pg.Groups, nil
}

// SetPrincipalGroups makes principal (User:name) a member of exactly
// groups (Group:name; none: of no group)
// (PUT /v1/auth/principals/{principal}/groups). It is idempotent: a
// failed attempt is resent until ctx ends.
func (a *Admin) SetPrincipalGroups(ctx context.Context, principal string, groups []string) error {
	if groups == nil {
		groups = []string{}
	}
	_, err := write[wire.PrincipalGroups](ctx, a, "set groups of "+principal, http.MethodPut, principalGroupsPath(principal),
		wire.PrincipalGroups{Groups: groups}, retryAll)
	return err
}

func principalGroupsPath(p string) string {
	return "/v1/auth/principals/" + url.PathEscape(p) + "/groups"
}
