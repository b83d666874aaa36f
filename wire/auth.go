package wire

import "time"

// Authentication and authorization (issue 12; docs/security.md). JSON
// shapes of the admin API, shared by the broker, the SDK and mqctl.

// Error codes of authentication and authorization.
const (
	// CodeUnauthenticated (401): the request carries no credentials, or
	// ones the broker does not accept (malformed, unknown, revoked).
	CodeUnauthenticated = "UNAUTHENTICATED"
	// CodeForbidden (403): the principal lacks the permission the message
	// names (operation and resource); nothing was applied.
	CodeForbidden = "FORBIDDEN"
)

// TokenPrefix starts every API token: lmq_<id>_<secret>.
const TokenPrefix = "lmq_"

// Resource types of ACLs.
const (
	ResourceTopic   = "topic"
	ResourceGroup   = "group"
	ResourceCluster = "cluster"
)

// Operations an ACL allows or denies.
const (
	OpProduce  = "produce"
	OpConsume  = "consume"
	OpDescribe = "describe"
	OpCreate   = "create"
	OpDelete   = "delete"
	OpAlter    = "alter"
	OpAdmin    = "admin"
	OpAll      = "all"
)

// ACL patterns and effects.
const (
	PatternLiteral  = "literal"  // the resource name as given; "*" is every resource of the type
	PatternPrefixed = "prefixed" // every resource whose name starts with it
	EffectAllow     = "allow"
	EffectDeny      = "deny"
)

// ACL is one access rule: GET/POST/DELETE /v1/acls.
type ACL struct {
	Principal    string `json:"principal"`     // User:name, Group:name or User:*
	ResourceType string `json:"resource_type"` // topic, group or cluster
	Resource     string `json:"resource"`      // a name, a prefix, or * (every one)
	Pattern      string `json:"pattern"`       // literal (default) or prefixed
	Operation    string `json:"operation"`
	Effect       string `json:"effect"` // allow (default) or deny
}

// ACLList answers GET /v1/acls.
type ACLList struct {
	ACLs []ACL `json:"acls"`
}

// ACLDeleted answers DELETE /v1/acls.
type ACLDeleted struct {
	Deleted int `json:"deleted"`
}

// TokenRequest is the body of POST /v1/auth/tokens.
type TokenRequest struct {
	Principal   string `json:"principal"`
	Description string `json:"description,omitempty"`
}

// TokenInfo describes a token; Token (the credential) is only in the
// answer that created it.
type TokenInfo struct {
	ID          string    `json:"id"`
	Token       string    `json:"token,omitempty"`
	Principal   string    `json:"principal"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
}

// TokenList answers GET /v1/auth/tokens.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

// TokenRevoked answers DELETE /v1/auth/tokens/{id}.
type TokenRevoked struct {
	ID      string `json:"id"`
	Revoked bool   `json:"revoked"`
}

// PrincipalGroups is the body and answer of
// PUT/GET /v1/auth/principals/{principal}/groups.
type PrincipalGroups struct {
	Principal string   `json:"principal,omitempty"`
	Groups    []string `json:"groups"`
}

// WhoAmI answers GET /v1/auth/whoami.
type WhoAmI struct {
	Principal string   `json:"principal"`
	Groups    []string `json:"groups"`
	Superuser bool     `json:"superuser"`
}

// Quota codes of the auth state (409, not retriable): the group holds
// the maximum number of tokens, ACLs, or principals with groups.
const (
	CodeTooManyTokens     = "TOO_MANY_TOKENS"
	CodeTooManyACLs       = "TOO_MANY_ACLS"
	CodeTooManyPrincipals = "TOO_MANY_PRINCIPALS"
)

// Anonymous is the principal of every request when authentication is off
// (--auth=false).
const Anonymous = "User:ANONYMOUS"

// AuthRealm is the WWW-Authenticate challenge of a 401.
const AuthRealm = `Bearer realm="ledgermq"`
