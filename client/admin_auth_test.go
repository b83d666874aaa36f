package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/cluster"
	"github.com/ledgermq/ledgermq/internal/proc"
	"github.com/ledgermq/ledgermq/internal/testcerts"
	"github.com/ledgermq/ledgermq/wire"
)

// TestAdminAuthRequests: each call sends the method, path, query and body
// docs/security.md gives and decodes its answer. (Against a recording
// stand-in; TestAuthE2E runs them against a real broker.)
func TestAdminAuthRequests(t *testing.T) {
	var mu sync.Mutex
	var got []string
	answers := map[string]struct {
		status int
		body   string
	}{
		"GET /v1/auth/whoami":                       {200, `{"principal":"User:alice","groups":["Group:ops"],"superuser":false}`},
		"POST /v1/auth/tokens":                      {201, `{"id":"t1","token":"lmq_t1_s","principal":"User:alice","description":"ci","created":"2025-01-02T03:04:05Z"}`},
		"GET /v1/auth/tokens":                       {200, `{"tokens":[{"id":"t1","principal":"User:alice","created":"2025-01-02T03:04:05Z"}]}`},
		"DELETE /v1/auth/tokens/t%2F1":              {200, `{"id":"t/1","revoked":true}`},
		"GET /v1/acls":                              {200, `{"acls":[{"principal":"User:alice","resource_type":"topic","resource":"orders","pattern":"literal","operation":"produce","effect":"allow"}]}`},
		"POST /v1/acls":                             {201, `{}`},
		"DELETE /v1/acls":                           {200, `{"deleted":1}`},
		"GET /v1/auth/principals/User:alice/groups": {200, `{"principal":"User:alice","groups":["Group:ops"]}`},
		"PUT /v1/auth/principals/User:alice/groups": {200, `{"principal":"User:alice","groups":[]}`},
	}
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int32) {
		body, _ := io.ReadAll(r.Body)
		key := r.Method + " " + r.URL.EscapedPath()
		mu.Lock()
		got = append(got, strings.TrimSpace(key+" "+r.URL.RawQuery+" "+string(body)))
		mu.Unlock()
		a, ok := answers[key]
		if !ok {
			writeAPIError(w, 404, wire.APIError{Code: wire.CodeNotFound, Message: key})
			return
		}
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	})
	adm := newAdmin(t, []string{node.addr()})
	ctx := testCtx(t)
	acl := wire.ACL{Principal: "User:alice", ResourceType: wire.ResourceTopic, Resource: "orders", Operation: wire.OpProduce}

	who, err := adm.WhoAmI(ctx)
	check(t, err, func() bool { return who.Principal == "User:alice" && slices.Equal(who.Groups, []string{"Group:ops"}) }, "whoami %+v", who)
	tok, err := adm.CreateToken(ctx, "User:alice", "ci")
	check(t, err, func() bool { return tok.Token == "lmq_t1_s" && tok.Created.Year() == 2025 }, "create token %+v", tok)
	toks, err := adm.ListTokens(ctx)
	check(t, err, func() bool { return len(toks) == 1 && toks[0].ID == "t1" && toks[0].Token == "" }, "list tokens %+v", toks)
	check(t, adm.RevokeToken(ctx, "t/1"), nil, "")
	acls, err := adm.ListACLs(ctx, ACLFilter{Principal: "User:alice", ResourceType: wire.ResourceTopic})
	check(t, err, func() bool {
		return len(acls) == 1 && acls[0] == wire.ACL{Principal: "User:alice", ResourceType: "topic", Resource: "orders",
			Pattern: "literal", Operation: "produce", Effect: "allow"}
	}, "acls %+v", acls)
	created, err := adm.AddACL(ctx, acl)
	check(t, err, func() bool { return created }, "add ACL: created %v", created)
	n, err := adm.RemoveACLs(ctx, acl)
	check(t, err, func() bool { return n == 1 }, "remove ACL: %d", n)
	groups, err := adm.PrincipalGroups(ctx, "User:alice")
	check(t, err, func() bool { return slices.Equal(groups, []string{"Group:ops"}) }, "groups %q", groups)
	check(t, adm.SetPrincipalGroups(ctx, "User:alice", nil), nil, "")

	aclJSON := `{"principal":"User:alice","resource_type":"topic","resource":"orders","pattern":"","operation":"produce","effect":""}`
	want := []string{
		"GET /v1/auth/whoami",
		`POST /v1/auth/tokens  {"principal":"User:alice","description":"ci"}`,
		"GET /v1/auth/tokens",
		"DELETE /v1/auth/tokens/t%2F1",
		"GET /v1/acls principal=User%3Aalice&resource_type=topic",
		"POST /v1/acls  " + aclJSON,
		"DELETE /v1/acls  " + aclJSON,
		"GET /v1/auth/principals/User:alice/groups",
		`PUT /v1/auth/principals/User:alice/groups  {"groups":[]}`,
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// check fails the test on err, else when ok (if not nil) is false.
func check(t *testing.T, err error, ok func() bool, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if ok != nil && !ok() {
		t.Fatalf(format, args...)
	}
}

// TestAuthE2E runs the SDK's security calls against a real broker process
// with TLS (a client certificate verified by --tls-ca) and --auth: the
// bootstrap superuser makes a token for alice, who is refused until an
// ACL allows her, and refused again once it is removed and once her token
// is revoked; bob is known by his certificate alone.
func TestAuthE2E(t *testing.T) {
	dir := t.TempDir()
	bin, err := proc.Build(context.Background(), dir, proc.Broker)
	if err != nil {
		t.Fatal(err)
	}
	ca := testcerts.NewCA(t, "test CA")
	certFile, keyFile := testcerts.WriteFiles(t, dir, "server", ca.Server(t))
	id, secret := make([]byte, 8), make([]byte, 16)
	rand.Read(id)
	rand.Read(secret)
	boot := wire.TokenPrefix + hex.EncodeToString(id) + "_" + hex.EncodeToString(secret)
	bootFile := filepath.Join(dir, "bootstrap-token")
	if err := os.WriteFile(bootFile, []byte(boot+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := cluster.Options{Bin: bin, Nodes: 1, Dir: filepath.Join(dir, "data"), Args: []string{
		"--tls-cert", certFile, "--tls-key", keyFile, "--tls-ca", ca.WriteCA(t, dir, "ca"),
		"--auth", "--superusers", "User:admin", "--bootstrap-token-file", bootFile}}
	if testing.Verbose() {
		o.Output = os.Stderr
	}
	g, err := cluster.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			g.Tail(&b, 20)
			t.Logf("broker log:\n%s", b.String())
		}
		g.Close()
	})
	brokers := g.APIs()
	ctx := testCtx(t)
	admin := newAdmin(t, brokers, WithTLS(clientTLS(t, ca, "")), WithToken(boot))

	who, err := admin.WhoAmI(ctx)
	check(t, err, func() bool { return who.Principal == "User:admin" && who.Superuser }, "bootstrap: %+v", who)
	if _, err := createRetrying(ctx, admin, "orders"); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, "User:alice", "ci")
	check(t, err, func() bool {
		return strings.HasPrefix(tok.Token, wire.TokenPrefix+tok.ID+"_") && tok.Principal == "User:alice"
	}, "token %+v", tok)
	toks, err := admin.ListTokens(ctx)
	check(t, err, func() bool {
		return slices.ContainsFunc(toks, func(ti wire.TokenInfo) bool { return ti.ID == tok.ID && ti.Token == "" })
	}, "tokens %+v", toks)

	alice := newAdmin(t, brokers, WithTLS(clientTLS(t, ca, "")), WithToken(tok.Token))
	aliceP := newProducer(t, brokers, WithTLS(clientTLS(t, ca, "")), WithToken(tok.Token), WithLinger(0))
	produce := func() error {
		_, err := aliceP.Produce(ctx, &Message{Topic: "orders", Value: []byte("x")})
		return err
	}
	who, err = alice.WhoAmI(ctx)
	check(t, err, func() bool { return who.Principal == "User:alice" && !who.Superuser }, "alice: %+v", who)
	if err := produce(); ErrorCode(err) != wire.CodeForbidden {
		t.Fatalf("alice without an ACL: %v", err)
	}
	if _, err := alice.ListTokens(ctx); ErrorCode(err) != wire.CodeForbidden {
		t.Fatalf("alice lists tokens: %v", err)
	}

	acl := wire.ACL{Principal: "User:alice", ResourceType: wire.ResourceTopic, Resource: "orders",
		Pattern: wire.PatternLiteral, Operation: wire.OpProduce, Effect: wire.EffectAllow}
	created, err := admin.AddACL(ctx, acl)
	check(t, err, func() bool { return created }, "first AddACL: not created")
	created, err = admin.AddACL(ctx, acl)
	check(t, err, func() bool { return !created }, "second AddACL: created")
	acls, err := admin.ListACLs(ctx, ACLFilter{Principal: "User:alice"})
	check(t, err, func() bool { return slices.Equal(acls, []wire.ACL{acl}) }, "acls %+v", acls)
	// The ACL is applied on the node within its apply latency.
	waitFor(t, "alice may produce", func() bool { return produce() == nil })

	check(t, admin.SetPrincipalGroups(ctx, "User:alice", []string{"Group:ops"}), nil, "")
	groups, err := admin.PrincipalGroups(ctx, "User:alice")
	check(t, err, func() bool { return slices.Equal(groups, []string{"Group:ops"}) }, "groups %q", groups)
	who, err = alice.WhoAmI(ctx)
	check(t, err, func() bool { return slices.Equal(who.Groups, []string{"Group:ops"}) }, "alice: %+v", who)

	bob := newAdmin(t, brokers, WithTLS(clientTLS(t, ca, "bob")))
	who, err = bob.WhoAmI(ctx)
	check(t, err, func() bool { return who.Principal == "User:bob" }, "bob by certificate: %+v", who)
	if _, err := newAdmin(t, brokers, WithTLS(clientTLS(t, ca, ""))).ListTopics(ctx); ErrorCode(err) != wire.CodeUnauthenticated {
		t.Fatalf("no credentials: %v", err)
	}

	n, err := admin.RemoveACLs(ctx, acl)
	check(t, err, func() bool { return n == 1 }, "removed %d", n)
	waitFor(t, "alice refused again", func() bool { return ErrorCode(produce()) == wire.CodeForbidden })
	check(t, admin.RevokeToken(ctx, tok.ID), nil, "")
	waitFor(t, "alice's token refused", func() bool {
		_, err := alice.WhoAmI(ctx)
		return ErrorCode(err) == wire.CodeUnauthenticated
	})
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
