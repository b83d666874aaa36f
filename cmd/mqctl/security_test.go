package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// authStandIn answers the security endpoints of docs/security.md from
// memory, enough to check what the commands send and print. (The SDK's
// TestAuthE2E runs the same calls against a real broker.)
type authStandIn struct {
	mu     sync.Mutex
	acls   []wire.ACL
	groups map[string][]string
	calls  []string
}

func newAuthStandIn(t *testing.T) (*authStandIn, string) {
	s := &authStandIn{groups: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	return s, strings.TrimPrefix(srv.URL, "http://")
}

func (s *authStandIn) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	s.calls = append(s.calls, strings.TrimSpace(r.Method+" "+r.URL.EscapedPath()+" "+r.URL.RawQuery))
	var acl wire.ACL
	json.Unmarshal(body, &acl)
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	switch p := r.URL.Path; r.Method + " " + p {
	case "GET /v1/auth/whoami":
		writeFake(w, 200, wire.WhoAmI{Principal: "User:alice", Groups: []string{"Group:ops"}})
	case "POST /v1/auth/tokens":
		var tr wire.TokenRequest
		json.Unmarshal(body, &tr)
		writeFake(w, 201, wire.TokenInfo{ID: "t1", Token: "lmq_t1_secret", Principal: tr.Principal, Description: tr.Description, Created: created})
	case "GET /v1/auth/tokens":
		writeFake(w, 200, wire.TokenList{Tokens: []wire.TokenInfo{{ID: "t1", Principal: "User:ci", Description: "CI", Created: created}}})
	case "DELETE /v1/auth/tokens/t1":
		writeFake(w, 200, wire.TokenRevoked{ID: "t1", Revoked: true})
	case "GET /v1/acls":
		writeFake(w, 200, wire.ACLList{ACLs: s.acls})
	case "POST /v1/acls":
		if slices.Contains(s.acls, acl) {
			writeFake(w, 200, struct{}{})
			return
		}
		s.acls = append(s.acls, acl)
		writeFake(w, 201, struct{}{})
	case "DELETE /v1/acls":
		n := len(s.acls)
		s.acls = slices.DeleteFunc(s.acls, func(x wire.ACL) bool { return x == acl })
		writeFake(w, 200, wire.ACLDeleted{Deleted: n - len(s.acls)})
	case "GET /v1/auth/principals/User:alice/groups":
		writeFake(w, 200, wire.PrincipalGroups{Principal: "User:alice", Groups: s.groups["User:alice"]})
	case "PUT /v1/auth/principals/User:alice/groups":
		var pg wire.PrincipalGroups
		json.Unmarshal(body, &pg)
		s.groups["User:alice"] = pg.Groups
		writeFake(w, 200, pg)
	default:
		writeFake(w, 403, wire.ErrorBody{Error: wire.APIError{Code: wire.CodeForbidden,
			Message: "User:alice may not alter on cluster *", NotApplied: true}})
	}
}

// TestSecurityCommands: what whoami, token, acl and principal send and
// print.
func TestSecurityCommands(t *testing.T) {
	s, addr := newAuthStandIn(t)
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		out  string // the whole text output, or its start when it ends in "..."
		call string // the request, "" when not checked
	}{
		{[]string{"whoami"}, "User:alice\nGroups: Group:ops\n", "GET /v1/auth/whoami"},
		{[]string{"token", "create", "--principal", "User:ci", "--description", "CI"},
			"Created token t1 for User:ci. It is shown this once; keep it secret:\nlmq_t1_secret\n", "POST /v1/auth/tokens"},
		{[]string{"token", "list"}, "ID  PRINCIPAL  CREATED               DESCRIPTION\nt1  User:ci    2025-01-02T03:04:05Z  CI\n", "GET /v1/auth/tokens"},
		{[]string{"token", "revoke", "t1"}, "Revoked token t1.\n", "DELETE /v1/auth/tokens/t1"},
		{[]string{"acl", "list"}, "No ACLs.\n", "GET /v1/acls"},
		{[]string{"acl", "add", "--principal", "User:ci", "--topic", "orders", "--operation", "produce"},
			"Added ACL: allow User:ci produce on topic orders.\n", "POST /v1/acls"},
		{[]string{"acl", "add", "--principal", "User:ci", "--topic", "orders", "--operation", "produce"},
			"The ACL exists already: allow User:ci produce on topic orders.\n", ""},
		{[]string{"acl", "add", "--principal", "Group:ops", "--group", "bill", "--prefixed", "--operation", "all", "--deny"},
			"Added ACL: deny Group:ops all on group bill*.\n", ""},
		{[]string{"acl", "add", "--principal", "User:admin", "--cluster", "--operation", "alter"}, "Added ACL: allow User:admin alter on cluster *.\n", ""},
		{[]string{"acl", "list", "--principal", "User:ci", "--topic", "orders"},
			"PRINCIPAL   RESOURCE      PATTERN   OPERATION  EFFECT\nUser:ci     topic orders  literal   produce    allow\n...",
			"GET /v1/acls principal=User%3Aci&resource=orders&resource_type=topic"},
		{[]string{"acl", "remove", "--principal", "User:ci", "--topic", "orders", "--operation", "produce"},
			"Removed ACL: allow User:ci produce on topic orders.\n", "DELETE /v1/acls"},
		{[]string{"acl", "rm", "--principal", "User:ci", "--topic", "orders", "--operation", "produce"},
			"No such ACL: allow User:ci produce on topic orders.\n", ""},
		{[]string{"principal", "groups", "set", "User:alice", "Group:ops", "Group:dev"}, "User:alice is in Group:ops, Group:dev.\n",
			"PUT /v1/auth/principals/User:alice/groups"},
		{[]string{"principal", "groups", "get", "User:alice"}, "User:alice is in Group:ops, Group:dev.\n", ""},
		{[]string{"principal", "groups", "set", "User:alice"}, "User:alice is in no group.\n", ""},
	} {
		r := mqctl(t, ctx, addr, "", tc.args...)
		ok := r.stdout == tc.out
		if prefix, cut := strings.CutSuffix(tc.out, "..."); cut {
			ok = strings.HasPrefix(r.stdout, prefix)
		}
		if r.code != 0 || !ok {
			t.Errorf("%q: code %d, stderr %q, stdout:\n%s", tc.args, r.code, r.stderr, r.stdout)
		}
		s.mu.Lock()
		if last := s.calls[len(s.calls)-1]; tc.call != "" && last != tc.call {
			t.Errorf("%q: sent %q, want %q", tc.args, last, tc.call)
		}
		s.mu.Unlock()
	}
	// A refusal names its code; JSON prints the API's shapes.
	r := mqctl(t, ctx, addr, "", "principal", "groups", "get", "User:bob")
	if r.code != 1 || r.stderr != "mqctl: FORBIDDEN: User:alice may not alter on cluster *\n" {
		t.Errorf("forbidden: %+v", r)
	}
	r = mqctl(t, ctx, addr, "", "--format", "json", "token", "create", "--principal", "User:ci")
	var ti wire.TokenInfo
	if err := json.Unmarshal([]byte(r.stdout), &ti); err != nil || ti.Token != "lmq_t1_secret" {
		t.Errorf("json: %v %q", err, r.stdout)
	}
}

// TestSecurityUsageErrors: the security commands' usage errors exit 2
// before any request.
func TestSecurityUsageErrors(t *testing.T) {
	s, addr := newAuthStandIn(t)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"token"}, "token: missing subcommand"},
		{[]string{"token", "create"}, `--principal must be User:NAME, not ""`},
		{[]string{"token", "create", "--principal", "Group:ops"}, "--principal must be User:NAME"},
		{[]string{"token", "revoke"}, "token revoke: missing token ID"},
		{[]string{"acl", "add", "--principal", "User:x", "--operation", "produce"}, "give one of --topic, --group and --cluster"},
		{[]string{"acl", "add", "--principal", "User:x", "--topic", "t", "--cluster", "--operation", "produce"}, "give one of"},
		{[]string{"acl", "add", "--topic", "t", "--operation", "produce"}, "--principal is required"},
		{[]string{"acl", "remove", "--principal", "User:x", "--topic", "t", "--operation", "write"}, `--operation must be one of produce, consume`},
		{[]string{"acl", "grant"}, `acl: unknown subcommand "grant"`},
		{[]string{"principal", "groups"}, "principal: want"},
		{[]string{"principal", "groups", "set"}, "missing principal User:NAME"},
		{[]string{"principal", "groups", "set", "User:a", "ops"}, `"ops" is not Group:NAME`},
		{[]string{"principal", "groups", "get", "User:a", "User:b"}, `unexpected argument "User:b"`},
		{[]string{"config", "use-context"}, "missing context NAME"},
	} {
		r := mqctl(t, context.Background(), addr, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%q: code %d, stderr %q", tc.args, r.code, r.stderr)
		}
	}
	if len(s.calls) != 0 {
		t.Errorf("requests made: %q", s.calls)
	}
}
