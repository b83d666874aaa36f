package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/auth"
	"github.com/ledgermq/ledgermq/wire"
)

// syncBuffer is a log sink shared by the nodes of a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// authCall sends a request with a bearer token ("" for none).
func authCall(t *testing.T, method, url, token string, body any) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, b, r.Header}
}

func expectStatus(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %d %s, want %d", r.status, r.body, status)
	}
}

// bootstrapToken writes a fresh bootstrap token file and returns its path
// and the token.
func bootstrapToken(t *testing.T) (string, string) {
	t.Helper()
	tok, _, err := auth.NewToken("User:admin", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bootstrap.token")
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tok
}

// TestAuthEndToEnd: a 3-node group with --auth: 401 without or with bad
// credentials, 403 naming the missing permission, 200 once granted; ACLs
// and groups replicate to every node; lists are filtered; a revoked token
// is refused on every node within a second; the audit log records a
// refusal and an ACL change.
func TestAuthEndToEnd(t *testing.T) {
	path, admin := bootstrapToken(t)
	logs := &syncBuffer{}
	bs := startGroup(t, 3, func(c *Config) {
		c.Auth.Enabled, c.Auth.Superusers, c.BootstrapTokenFile = true, []string{"User:admin"}, path
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	l := leaderOf(t, bs)
	base := "http://" + l.Addr()
	produce := map[string]any{"messages": []map[string]string{{"value": "v"}}}

	r := authCall(t, "POST", base+"/v1/topics/orders/messages", "", produce)
	expectCode(t, r, http.StatusUnauthorized, wire.CodeUnauthenticated)
	if r.hdr.Get("WWW-Authenticate") != wire.AuthRealm {
		t.Fatalf("401 without the challenge: %v", r.hdr)
	}
	expectCode(t, authCall(t, "GET", base+"/v1/topics", "lmq_0123456789abcdef_nope", nil), http.StatusUnauthorized, wire.CodeUnauthenticated)
	expectCode(t, authCall(t, "GET", base+"/v1/cluster", "", nil), http.StatusUnauthorized, wire.CodeUnauthenticated)
	expectStatus(t, authCall(t, "GET", base+"/healthz", "", nil), http.StatusOK)

	expectStatus(t, authCall(t, "POST", base+"/v1/topics", admin, map[string]any{"name": "orders", "queues": 1}), http.StatusCreated)
	expectStatus(t, authCall(t, "POST", base+"/v1/topics", admin, map[string]any{"name": "secret", "queues": 1}), http.StatusCreated)
	r = authCall(t, "POST", base+"/v1/auth/tokens", admin, wire.TokenRequest{Principal: "User:alice", Description: "ci"})
	expectStatus(t, r, http.StatusCreated)
	var ti wire.TokenInfo
	if err := json.Unmarshal(r.body, &ti); err != nil || !strings.HasPrefix(ti.Token, wire.TokenPrefix+ti.ID+"_") || ti.Principal != "User:alice" {
		t.Fatalf("token answer %s: %v", r.body, err)
	}
	alice := ti.Token

	e := expectCode(t, authCall(t, "POST", base+"/v1/topics/orders/messages", alice, produce), http.StatusForbidden, wire.CodeForbidden)
	if e.Message != "User:alice may not produce on topic orders" {
		t.Fatalf("403 message %q", e.Message)
	}
	expectCode(t, authCall(t, "POST", base+"/v1/auth/tokens", alice, wire.TokenRequest{Principal: "User:alice"}), http.StatusForbidden, wire.CodeForbidden)

	grant := wire.ACL{Principal: "User:alice", ResourceType: "topic", Resource: "orders", Operation: "produce"}
	expectStatus(t, authCall(t, "POST", base+"/v1/acls", admin, grant), http.StatusCreated)
	expectStatus(t, authCall(t, "POST", base+"/v1/acls", admin, grant), http.StatusOK) // idempotent
	expectStatus(t, authCall(t, "POST", base+"/v1/topics/orders/messages", alice, produce), http.StatusOK)

	// Groups: alice in Group:readers, which may consume orders.
	expectStatus(t, authCall(t, "PUT", base+"/v1/auth/principals/User:alice/groups", admin, wire.PrincipalGroups{Groups: []string{"Group:readers"}}), http.StatusOK)
	expectStatus(t, authCall(t, "POST", base+"/v1/acls", admin, wire.ACL{Principal: "Group:readers", ResourceType: "topic", Resource: "ord", Pattern: "prefixed", Operation: "consume"}), http.StatusCreated)

	// Everything replicates: every node lets alice fetch, lists only the
	// topic she may describe, and knows her groups.
	for _, b := range bs {
		url := "http://" + b.Addr()
		waitFor(t, 5*time.Second, "the grants on "+b.cfg.ID, func() bool {
			return authCall(t, "GET", url+"/v1/topics/orders/queues/0/messages?offset=0", alice, nil).status == http.StatusOK
		})
		var tl wire.TopicList
		json.Unmarshal(authCall(t, "GET", url+"/v1/topics", alice, nil).body, &tl)
		if len(tl.Topics) != 1 || tl.Topics[0].Name != "orders" {
			t.Fatalf("%s lists %+v to alice", b.cfg.ID, tl.Topics)
		}
		var who wire.WhoAmI
		json.Unmarshal(authCall(t, "GET", url+"/v1/auth/whoami", alice, nil).body, &who)
		if who.Principal != "User:alice" || fmt.Sprint(who.Groups) != "[Group:readers]" || who.Superuser {
			t.Fatalf("%s: whoami %+v", b.cfg.ID, who)
		}
		expectCode(t, authCall(t, "GET", url+"/v1/topics/secret", alice, nil), http.StatusForbidden, wire.CodeForbidden)
	}
	var al wire.ACLList
	json.Unmarshal(authCall(t, "GET", base+"/v1/acls?principal=User:alice", admin, nil).body, &al)
	if len(al.ACLs) != 1 || al.ACLs[0].Pattern != "literal" || al.ACLs[0].Effect != "allow" {
		t.Fatalf("ACLs of alice: %+v", al.ACLs)
	}

	// Revocation: warm every node's cache, revoke on the leader, and
	// measure until every node refuses the token.
	for _, b := range bs {
		expectStatus(t, authCall(t, "GET", "http://"+b.Addr()+"/v1/auth/whoami", alice, nil), http.StatusOK)
	}
	start := time.Now()
	expectStatus(t, authCall(t, "DELETE", base+"/v1/auth/tokens/"+ti.ID, admin, nil), http.StatusOK)
	for _, b := range bs {
		waitFor(t, time.Second, "revocation on "+b.cfg.ID, func() bool {
			return authCall(t, "GET", "http://"+b.Addr()+"/v1/auth/whoami", alice, nil).status == http.StatusUnauthorized
		})
	}
	t.Logf("revocation effective on all 3 nodes %v after the request was sent", time.Since(start))
	expectCode(t, authCall(t, "DELETE", base+"/v1/auth/tokens/"+ti.ID, admin, nil), http.StatusNotFound, wire.CodeNotFound)

	out := logs.String()
	for _, want := range []string{"logger=audit principal=User:alice operation=produce resource=\"topic orders\" result=denied",
		"logger=audit principal=User:admin operation=acl_add", "operation=token_revoke", "operation=authenticate"} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit log lacks %q", want)
		}
	}
}

// TestAuthOffIsAnonymous: without --auth every request is User:ANONYMOUS
// and allowed, admin endpoints included.
func TestAuthOffIsAnonymous(t *testing.T) {
	bs := startGroup(t, 1, nil)
	base := "http://" + bs[0].Addr()
	var who wire.WhoAmI
	r := authCall(t, "GET", base+"/v1/auth/whoami", "", nil)
	json.Unmarshal(r.body, &who)
	if who.Principal != wire.Anonymous || !who.Superuser {
		t.Fatalf("whoami %s", r.body)
	}
	expectStatus(t, authCall(t, "POST", base+"/v1/acls", "", wire.ACL{Principal: "User:x", ResourceType: "topic", Resource: "t", Operation: "produce"}), http.StatusCreated)
	var d wire.ACLDeleted
	r = authCall(t, "DELETE", base+"/v1/acls", "", wire.ACL{Principal: "User:x", ResourceType: "topic", Resource: "t", Operation: "produce"})
	if json.Unmarshal(r.body, &d); d.Deleted != 1 {
		t.Fatalf("delete: %s", r.body)
	}
}

// TestNewTokenUsableOnFollowers: a token is usable on every node as soon
// as its creation is answered — a follower that has not applied it yet
// catches up with the leader before refusing an unknown token (a client
// that creates a token and at once uses it against another node got 401).
func TestNewTokenUsableOnFollowers(t *testing.T) {
	path, admin := bootstrapToken(t)
	bs := startGroup(t, 3, func(c *Config) {
		c.Auth.Enabled, c.Auth.Superusers, c.BootstrapTokenFile = true, []string{"User:admin"}, path
	})
	l := leaderOf(t, bs)
	for round := range 15 {
		r := authCall(t, "POST", "http://"+l.Addr()+"/v1/auth/tokens", admin, wire.TokenRequest{Principal: "User:carol"})
		expectStatus(t, r, http.StatusCreated)
		var ti wire.TokenInfo
		if err := json.Unmarshal(r.body, &ti); err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			if b == l {
				continue
			}
			r := authCall(t, "GET", "http://"+b.Addr()+"/v1/auth/whoami", ti.Token, nil)
			if r.status != http.StatusOK {
				t.Fatalf("round %d: the new token on follower %s: %d %s", round, b.cfg.ID, r.status, r.body)
			}
		}
	}
}
