package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ledgermq/ledgermq/internal/testcerts"
	"github.com/ledgermq/ledgermq/wire"
)

// envApp is an app whose environment is env and whose stdout and stderr
// are buffers.
func envApp(env map[string]string) (*app, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(k string) string { return env[k] }}, &out, &errb
}

func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "mqctl.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const twoContexts = `# my groups
current-context: dev
contexts:
  - name: dev
    brokers: d1:1,d2:2
    token: lmq_dev_secret1
  - name: prod
    brokers: [p1:1, p2:2]   # a list works too
    ca: certs/ca.crt
    token: lmq_prod_secret2
`

// TestConnectionPrecedence: each setting comes from its flag, else its
// environment variable, else the context (--context, else
// current-context), else the default; the config file is --config, else
// MQ_CONFIG, else ~/.config/ledgermq/mqctl.yaml.
func TestConnectionPrecedence(t *testing.T) {
	home := t.TempDir()
	def := filepath.Join(home, ".config", "ledgermq")
	if err := os.MkdirAll(def, 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, def, twoContexts)
	other := writeConfig(t, t.TempDir(), "contexts: [{name: x, brokers: 'x1:1', token: lmq_x_s}]\ncurrent-context: x\n")

	for _, tc := range []struct {
		name                string
		env                 map[string]string
		flags               func(*app)
		brokers, token, ca  string
		contextName, errMsg string
	}{
		{name: "current context", brokers: "d1:1,d2:2", token: "lmq_dev_secret1", contextName: "dev"},
		{name: "--context", flags: func(a *app) { a.contextName = "prod" },
			brokers: "p1:1,p2:2", token: "lmq_prod_secret2", ca: filepath.Join(def, "certs/ca.crt"), contextName: "prod"},
		{name: "env beats context", env: map[string]string{"MQ_TOKEN": "lmq_env_s", "MQ_BROKERS": "e:1"},
			brokers: "e:1", token: "lmq_env_s", contextName: "dev"},
		{name: "flag beats env", env: map[string]string{"MQ_TOKEN": "lmq_env_s"}, flags: func(a *app) { a.token, a.brokers = "lmq_flag_s", "f:1" },
			brokers: "f:1", token: "lmq_flag_s", contextName: "dev"},
		{name: "MQ_CONFIG", env: map[string]string{"MQ_CONFIG": other}, brokers: "x1:1", token: "lmq_x_s", contextName: "x"},
		{name: "--config beats MQ_CONFIG", env: map[string]string{"MQ_CONFIG": "/nonexistent"}, flags: func(a *app) { a.configFile = other },
			brokers: "x1:1", token: "lmq_x_s", contextName: "x"},
		{name: "no file: defaults", env: map[string]string{"HOME": t.TempDir()}, brokers: defaultBrokers},
		{name: "XDG_CONFIG_HOME", env: map[string]string{"HOME": t.TempDir(), "XDG_CONFIG_HOME": filepath.Join(home, ".config")},
			brokers: "d1:1,d2:2", token: "lmq_dev_secret1", contextName: "dev"},
		{name: "unknown context", flags: func(a *app) { a.contextName = "staging" }, errMsg: `context "staging" is not in`},
		{name: "named file missing", env: map[string]string{"MQ_CONFIG": "/nonexistent/mqctl.yaml"}, errMsg: "no such file"},
		{name: "cert without key", flags: func(a *app) { a.cert = "c.pem" }, errMsg: "--cert and --key go together"},
	} {
		env := map[string]string{"HOME": home}
		for k, v := range tc.env {
			env[k] = v
		}
		a, _, _ := envApp(env)
		if tc.flags != nil {
			tc.flags(a)
		}
		c, err := a.resolve()
		switch {
		case tc.errMsg != "":
			if err == nil || !strings.Contains(err.Error(), tc.errMsg) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.errMsg)
			}
		case err != nil && tc.ca != "" && strings.Contains(err.Error(), tc.ca):
			// The CA file does not exist: the path was resolved as wanted.
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case strings.Join(c.brokers, ",") != tc.brokers || c.token != tc.token || c.contextName != tc.contextName:
			t.Errorf("%s: brokers %q token %q context %q", tc.name, c.brokers, c.token, c.contextName)
		}
	}
}

// TestConfigViewAndUseContext: view lists the contexts with tokens
// redacted; use-context switches the current one, keeping the rest of the
// file (comments included) and its mode.
func TestConfigViewAndUseContext(t *testing.T) {
	path := writeConfig(t, t.TempDir(), twoContexts)
	env := map[string]string{"MQ_CONFIG": path}
	a, out, errb := envApp(env)
	if code := a.run(context.Background(), []string{"config", "view"}); code != 0 {
		t.Fatalf("view: %d %s", code, errb)
	}
	if s := out.String(); strings.Contains(s, "secret") || !strings.Contains(s, "lmq_dev_REDACTED") ||
		!strings.Contains(s, "*        dev ") || !strings.Contains(s, "p1:1,p2:2") {
		t.Fatalf("view:\n%s", s)
	}
	a, out, _ = envApp(env)
	if code := a.run(context.Background(), []string{"config", "view", "--format", "json"}); code != 0 {
		t.Fatal(code)
	}
	var fc fileConfig
	if err := json.Unmarshal(out.Bytes(), &fc); err != nil || len(fc.Contexts) != 2 || fc.Contexts[1].Token != "lmq_prod_REDACTED" {
		t.Fatalf("view json: %v %s", err, out)
	}

	a, out, errb = envApp(env)
	if code := a.run(context.Background(), []string{"config", "use-context", "prod"}); code != 0 || out.String() != "Switched to context \"prod\".\n" {
		t.Fatalf("use-context: %d %q %q", code, out, errb)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "current-context: prod") || !strings.Contains(string(b), "# my groups") ||
		!strings.Contains(string(b), "# a list works too") || !strings.Contains(string(b), "lmq_prod_secret2") {
		t.Fatalf("file after use-context:\n%s", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	a, _, _ = envApp(env)
	if fc, _, err := a.loadConfig(); err != nil || fc.CurrentContext != "prod" || len(fc.Contexts) != 2 {
		t.Fatalf("after use-context: %+v %v", fc, err)
	}
	a, _, errb = envApp(env)
	if code := a.run(context.Background(), []string{"config", "use-context", "nope"}); code != 1 || !strings.Contains(errb.String(), `context "nope" is not in`) {
		t.Fatalf("unknown context: %d %q", code, errb)
	}
}

// TestTLSFlags: with --ca, --cert and --key (or their variables, or a
// context) mqctl speaks TLS, presents the client certificate and sends
// the token, to a real TLS server requiring a client certificate; the
// leader it names (host:port) is reached the same way.
func TestTLSFlags(t *testing.T) {
	ca := testcerts.NewCA(t, "test CA")
	dir := t.TempDir()
	caFile := ca.WriteCA(t, dir, "ca")
	certFile, keyFile := testcerts.WriteFiles(t, dir, "alice", ca.Client(t, "alice"))
	var mu sync.Mutex
	var calls []string
	start := func(h http.HandlerFunc) *httptest.Server {
		s := httptest.NewUnstartedServer(h)
		s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
		s.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t)}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	record := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r.TLS.PeerCertificates[0].Subject.CommonName+" "+r.Header.Get("Authorization")+" "+r.Method+" "+r.URL.Path)
	}
	leader := start(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		writeFake(w, http.StatusCreated, wire.TopicInfo{Name: "t", Queues: 1})
	})
	follower := start(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		writeFake(w, http.StatusMisdirectedRequest, wire.ErrorBody{Error: wire.APIError{Code: wire.CodeNotLeader,
			Message: "not the leader", Leader: strings.TrimPrefix(leader.URL, "https://"), Retriable: true, NotApplied: true}})
	})
	addr := strings.TrimPrefix(follower.URL, "https://")
	want := []string{"alice Bearer lmq_t_s POST /v1/topics", "alice Bearer lmq_t_s POST /v1/topics"}
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"flags": {nil, []string{"--brokers", addr, "--ca", caFile, "--cert", certFile, "--key", keyFile, "--token", "lmq_t_s"}},
		"env":   {map[string]string{"MQ_BROKERS": addr, "MQ_CA": caFile, "MQ_CERT": certFile, "MQ_KEY": keyFile, "MQ_TOKEN": "lmq_t_s"}, nil},
		"context": {map[string]string{"MQ_CONFIG": writeConfig(t, dir, "current-context: c\ncontexts:\n  - name: c\n    brokers: "+addr+
			"\n    ca: ca.crt\n    cert: alice.crt\n    key: alice.key\n    token: lmq_t_s\n")}, nil},
	} {
		calls = nil
		a, out, errb := envApp(tc.env)
		if code := a.run(context.Background(), append([]string{"topic", "create", "t"}, tc.args...)); code != 0 {
			t.Fatalf("%s: %d %s", name, code, errb)
		}
		mu.Lock()
		if strings.Join(calls, "\n") != strings.Join(want, "\n") || !strings.HasPrefix(out.String(), "Created topic t.") {
			t.Errorf("%s: calls %q, out %q", name, calls, out)
		}
		mu.Unlock()
	}
	// Without the client certificate the handshake fails.
	a, _, errb := envApp(nil)
	if code := a.run(context.Background(), []string{"topic", "list", "--brokers", addr, "--ca", caFile, "--timeout", "300ms"}); code != 1 ||
		!strings.Contains(errb.String(), "tls") {
		t.Errorf("no client certificate: %d %s", code, errb)
	}
}

// TestProduceKeyFlag: after `produce`, --key is the messages' key; the
// client key goes before the command.
func TestProduceKeyFlag(t *testing.T) {
	a, out, _ := envApp(nil)
	if code := a.run(context.Background(), []string{"produce", "-h"}); code != 0 || !strings.Contains(out.String(), "--key K") {
		t.Fatalf("produce -h: %d\n%s", code, out)
	}
	a, _, errb := envApp(nil)
	a.run(context.Background(), []string{"--key", "/nonexistent.key", "--cert", "/nonexistent.crt", "produce", "t", "--key", "k"})
	if !strings.Contains(errb.String(), "--cert/--key: open /nonexistent.crt") {
		t.Fatalf("client key before the command: %s", errb)
	}
}
