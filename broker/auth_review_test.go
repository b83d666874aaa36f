package broker

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ledgermq/ledgermq/wire"
)

// newUserToken creates a token for principal with admin's credential.
func newUserToken(t *testing.T, base, admin, principal string) string {
	t.Helper()
	r := authCall(t, "POST", base+"/v1/auth/tokens", admin, wire.TokenRequest{Principal: principal})
	expectStatus(t, r, http.StatusCreated)
	var ti wire.TokenInfo
	if err := json.Unmarshal(r.body, &ti); err != nil {
		t.Fatal(err)
	}
	return ti.Token
}

// TestAuthGroupOffsetsNeedTopic: alter on a group is not a window on
// topics the principal may not describe. Resetting the group's offsets
// on such a topic is refused the same way whether the topic exists or not
// (no existence, offsets or timestamps learned), and describing the group
// shows no queues of such topics.
func TestAuthGroupOffsetsNeedTopic(t *testing.T) {
	path, admin := bootstrapToken(t)
	bs := startGroup(t, 1, func(c *Config) {
		c.Auth.Enabled, c.Auth.Superusers, c.BootstrapTokenFile = true, []string{"User:admin"}, path
	})
	base := "http://" + leaderOf(t, bs).Addr()
	expectStatus(t, authCall(t, "POST", base+"/v1/topics", admin, map[string]any{"name": "secret", "queues": 1}), http.StatusCreated)
	expectStatus(t, authCall(t, "POST", base+"/v1/topics/secret/messages", admin,
		map[string]any{"messages": []map[string]string{{"value": "v"}}}), http.StatusOK)
	bob := newUserToken(t, base, admin, "User:bob")
	expectStatus(t, authCall(t, "POST", base+"/v1/acls", admin,
		wire.ACL{Principal: "User:bob", ResourceType: "group", Resource: "g1", Operation: "alter"}), http.StatusCreated)

	// The admin's reset gives g1 offsets on secret.
	expectStatus(t, authCall(t, "POST", base+"/v1/groups/g1/reset-offsets", admin, wire.ResetOffsetsRequest{Topic: "secret", To: "latest"}), http.StatusOK)

	for _, topic := range []string{"secret", "nosuchtopic"} {
		r := authCall(t, "POST", base+"/v1/groups/g1/reset-offsets", bob, wire.ResetOffsetsRequest{Topic: topic, To: "latest"})
		e := expectCode(t, r, http.StatusForbidden, wire.CodeForbidden)
		if e.Message != "User:bob may not describe on topic "+topic {
			t.Fatalf("reset on %s: 403 message %q", topic, e.Message)
		}
	}
	var gi wire.GroupInfo
	r := authCall(t, "GET", base+"/v1/groups/g1", bob, nil)
	expectStatus(t, r, http.StatusOK)
	if err := json.Unmarshal(r.body, &gi); err != nil {
		t.Fatal(err)
	}
	if len(gi.Queues) != 0 {
		t.Fatalf("bob, who may not describe topic secret, sees its queues in g1: %+v", gi.Queues)
	}
	var gl wire.GroupList
	json.Unmarshal(authCall(t, "GET", base+"/v1/groups", bob, nil).body, &gl)
	if len(gl.Groups) != 1 || len(gl.Groups[0].Queues) != 0 {
		t.Fatalf("bob lists %+v", gl.Groups)
	}

	// Once bob may describe the topic, both work.
	expectStatus(t, authCall(t, "POST", base+"/v1/acls", admin,
		wire.ACL{Principal: "User:bob", ResourceType: "topic", Resource: "secret", Operation: "describe"}), http.StatusCreated)
	expectStatus(t, authCall(t, "POST", base+"/v1/groups/g1/reset-offsets", bob, wire.ResetOffsetsRequest{Topic: "secret", To: "earliest"}), http.StatusOK)
	r = authCall(t, "GET", base+"/v1/groups/g1", bob, nil)
	if err := json.Unmarshal(r.body, &gi); err != nil || len(gi.Queues) != 1 {
		t.Fatalf("bob describes g1: %s", r.body)
	}
}

// TestAuthAuditAdminFailures: an admin operation that fails before it
// is proposed (bad input, unknown token) is in the audit log too.
func TestAuthAuditAdminFailures(t *testing.T) {
	path, admin := bootstrapToken(t)
	logs := &syncBuffer{}
	bs := startGroup(t, 1, func(c *Config) {
		c.Auth.Enabled, c.Auth.Superusers, c.BootstrapTokenFile = true, []string{"User:admin"}, path
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	base := "http://" + leaderOf(t, bs).Addr()
	expectCode(t, authCall(t, "POST", base+"/v1/auth/tokens", admin, wire.TokenRequest{Principal: "Group:ops"}), http.StatusBadRequest, wire.CodeInvalidArgument)
	expectCode(t, authCall(t, "DELETE", base+"/v1/auth/tokens/0123456789abcdef", admin, nil), http.StatusNotFound, wire.CodeNotFound)
	expectCode(t, authCall(t, "POST", base+"/v1/acls", admin, wire.ACL{Principal: "User:bob", ResourceType: "queue", Resource: "q", Operation: "produce"}), http.StatusBadRequest, wire.CodeInvalidArgument)
	expectCode(t, authCall(t, "DELETE", base+"/v1/acls", admin, wire.ACL{Principal: "bob", ResourceType: "topic", Resource: "q", Operation: "produce"}), http.StatusBadRequest, wire.CodeInvalidArgument)
	expectCode(t, authCall(t, "PUT", base+"/v1/auth/principals/User:bob/groups", admin, wire.PrincipalGroups{Groups: []string{"ops"}}), http.StatusBadRequest, wire.CodeInvalidArgument)
	out := logs.String()
	for _, op := range []string{"token_create", "token_revoke", "acl_add", "acl_delete", "principal_groups_set"} {
		if !strings.Contains(out, "logger=audit principal=User:admin operation="+op+" resource=cluster result=failed") &&
			!regexp.MustCompile(`logger=audit principal=User:admin operation=`+op+` resource="[^"]*" result=failed`).MatchString(out) {
			t.Errorf("the audit log lacks the failed %s:\n%s", op, out)
		}
	}
}
