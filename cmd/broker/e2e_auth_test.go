package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/auth"
	"github.com/ledgermq/ledgermq/internal/cluster"
	"github.com/ledgermq/ledgermq/wire"
)

// authGroup is a 3-node group of real broker processes with --auth, a
// superuser User:admin and its bootstrap token.
type authGroup struct {
	t     *testing.T
	c     *cluster.Group
	admin string
	hc    *http.Client
}

func (g *authGroup) do(id, method, path, token string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+g.c.API(id)+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := g.hc.Do(req)
	if err != nil {
		return 0, nil
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}

// write sends a write to whichever running node is the leader, retrying
// until one answers with a status below 300 or the timeout passes.
func (g *authGroup) write(method, path, token string, body any, timeout time.Duration) []byte {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, id := range g.c.Running() {
			if st, b := g.do(id, method, path, token, body); st >= 200 && st < 300 {
				return b
			} else if st == http.StatusForbidden || st == http.StatusUnauthorized || st == http.StatusBadRequest {
				g.t.Fatalf("%s %s on %s: %d %s", method, path, id, st, b)
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s %s: no leader accepted it within %v", method, path, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectACLs waits until every running node lists exactly n ACLs.
func (g *authGroup) expectACLs(n int, timeout time.Duration) {
	g.t.Helper()
	for _, id := range g.c.Running() {
		waitUntil(g.t, timeout, "the ACLs on "+id, func() bool {
			st, b := g.do(id, "GET", "/v1/acls", g.admin, nil)
			var l wire.ACLList
			return st == http.StatusOK && json.Unmarshal(b, &l) == nil && len(l.ACLs) == n
		})
	}
}

// TestAuthStateSurvivesFailures: ACLs and tokens are replicated state:
// they survive SIGKILL of the leader (the new leader enforces them and
// accepts changes) and a SIGKILL of every node followed by a restart
// (recovered from snapshot and log); a revoked token stays revoked.
func TestAuthStateSurvivesFailures(t *testing.T) {
	tok, path := bootstrapToken(t)
	o := cluster.Options{Bin: binary(t, "broker"), Nodes: 3, Dir: t.TempDir(), LogLevel: logLevel(),
		Args: []string{"--auth", "--superusers", "User:admin", "--bootstrap-token-file", path,
			"--snapshot-threshold", "4", "--snapshot-interval", "200ms"}}
	c, err := cluster.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	g := &authGroup{t: t, c: c, admin: tok, hc: &http.Client{Timeout: 3 * time.Second}}

	g.write("POST", "/v1/topics", g.admin, wire.CreateTopicRequest{Name: "orders", Queues: 1}, 20*time.Second)
	var alice, bob wire.TokenInfo
	json.Unmarshal(g.write("POST", "/v1/auth/tokens", g.admin, wire.TokenRequest{Principal: "User:alice"}, 5*time.Second), &alice)
	json.Unmarshal(g.write("POST", "/v1/auth/tokens", g.admin, wire.TokenRequest{Principal: "User:bob"}, 5*time.Second), &bob)
	produce := map[string]any{"messages": []map[string]string{{"value": "v"}}}
	g.write("POST", "/v1/acls", g.admin, wire.ACL{Principal: "User:alice", ResourceType: "topic", Resource: "orders", Operation: "produce"}, 5*time.Second)
	g.write("POST", "/v1/topics/orders/messages", alice.Token, produce, 5*time.Second)
	g.expectACLs(1, 5*time.Second)

	// SIGKILL the leader: the new one still enforces and accepts changes.
	leader := ""
	for _, id := range c.IDs() {
		if st, b := g.do(id, "GET", "/v1/leader", g.admin, nil); st == http.StatusOK {
			var lv wire.LeaderView
			json.Unmarshal(b, &lv)
			leader = lv.Leader
			break
		}
	}
	if leader == "" {
		t.Fatal("no leader known")
	}
	c.Kill(leader)
	g.write("POST", "/v1/topics/orders/messages", alice.Token, produce, 20*time.Second)
	g.write("POST", "/v1/acls", g.admin, wire.ACL{Principal: "User:bob", ResourceType: "topic", Resource: "orders", Operation: "consume"}, 10*time.Second)
	g.write("DELETE", "/v1/auth/tokens/"+bob.ID, g.admin, nil, 10*time.Second)
	for _, id := range c.Running() { // applied on every node within a second
		waitUntil(t, time.Second, "the revocation on "+id, func() bool {
			st, _ := g.do(id, "POST", "/v1/topics/orders/messages", bob.Token, produce)
			return st == http.StatusUnauthorized
		})
	}
	g.expectACLs(2, 5*time.Second)
	if err := c.StartNode(leader); err != nil {
		t.Fatal(err)
	}
	g.expectACLs(2, 20*time.Second) // the killed leader caught up

	// SIGKILL every node, then start them all: the state comes back.
	for _, id := range c.IDs() {
		c.Kill(id)
	}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	g.write("POST", "/v1/topics/orders/messages", alice.Token, produce, 30*time.Second)
	g.expectACLs(2, 20*time.Second)
	for _, id := range c.IDs() {
		st, b := g.do(id, "GET", "/v1/topics/orders/queues/0/messages?offset=0", alice.Token, nil)
		if st != http.StatusForbidden {
			t.Fatalf("alice fetched without consume on %s after the restart: %d %s", id, st, b)
		}
		if st, b := g.do(id, "GET", "/v1/auth/whoami", bob.Token, nil); st != http.StatusUnauthorized {
			t.Fatalf("bob's revoked token came back on %s: %d %s", id, st, b)
		}
		var tl wire.TokenList
		_, b = g.do(id, "GET", "/v1/auth/tokens", g.admin, nil)
		if json.Unmarshal(b, &tl); len(tl.Tokens) != 1 || tl.Tokens[0].ID != alice.ID {
			t.Fatalf("tokens on %s after the restart: %s", id, b)
		}
	}
}

// bootstrapToken makes an admin token (User:admin) and writes it to a file
// for --bootstrap-token-file.
func bootstrapToken(t *testing.T) (token, path string) {
	t.Helper()
	tok, _, err := auth.NewToken("User:admin", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "bootstrap.token")
	if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	return tok, path
}
