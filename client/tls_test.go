package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker"
	"github.com/ledgermq/ledgermq/internal/brokertest"
	"github.com/ledgermq/ledgermq/internal/testcerts"
	"github.com/ledgermq/ledgermq/wire"
)

// tlsGate is a TLS-terminating gateway in front of one real broker: it
// requires a client certificate signed by the test CA and the bearer
// token, answers 401 UNAUTHENTICATED without it, and records who called.
// The brokers advertise the gateways' addresses, so leader hints name
// them.
type tlsGate struct {
	srv   *httptest.Server
	token string

	mu    sync.Mutex
	calls []string // "CN METHOD path"
}

func (g *tlsGate) addr() string { return g.srv.Listener.Addr().String() }

func (g *tlsGate) log() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

// tlsGroup starts n real brokers, each behind a tlsGate requiring token,
// and returns the gates with the leader's first.
func tlsGroup(t *testing.T, n int, ca *testcerts.CA, token string) (gates []*tlsGate, leader int) {
	t.Helper()
	ids := map[string]int{}
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g := &tlsGate{srv: httptest.NewUnstartedServer(nil), token: token}
		g.srv.Listener = ln
		g.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what the tests provoke
		gates = append(gates, g)
		ids[fmt.Sprintf("n%d", i+1)] = i
	}
	bs := brokertest.Group(t, n, func(c *broker.Config) {
		noSync(c)
		c.AdvertiseAPI = gates[ids[c.ID]].addr()
	})
	lead := brokertest.Leader(t, bs)
	for i, b := range bs {
		if b == lead {
			leader = i
		}
		g := gates[i]
		rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: b.Addr()})
		g.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cn := "-"
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				cn = r.TLS.PeerCertificates[0].Subject.CommonName
			}
			g.mu.Lock()
			g.calls = append(g.calls, cn+" "+r.Method+" "+r.URL.Path)
			g.mu.Unlock()
			if r.Header.Get("Authorization") != "Bearer "+g.token {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ledgermq"`)
				writeAPIError(w, http.StatusUnauthorized, wire.APIError{Code: wire.CodeUnauthenticated,
					Message: "missing or unknown credentials", NotApplied: true})
				return
			}
			rp.ServeHTTP(w, r)
		})
		g.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t)}, ClientCAs: ca.Pool(),
			ClientAuth: tls.RequireAndVerifyClientCert}
		g.srv.StartTLS()
		t.Cleanup(g.srv.Close)
	}
	return gates, leader
}

// clientTLS is the configuration of a client trusting ca, presenting a
// certificate for user ("" for none).
func clientTLS(t *testing.T, ca *testcerts.CA, user string) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.Pool()}
	if user != "" {
		cfg.Certificates = []tls.Certificate{ca.Client(t, user)}
	}
	return cfg
}

// TestTLSAndToken: producer, admin and group consumer reach a real group
// over TLS with a client certificate and a token on every request; given
// host:port addresses starting with a follower, they follow the leader
// hint (host:port) with https and the same certificate.
func TestTLSAndToken(t *testing.T) {
	ca := testcerts.NewCA(t, "test CA")
	const token = "lmq_abc_s3cret"
	gates, leader := tlsGroup(t, 3, ca, token)
	follower := (leader + 1) % 3
	brokers := []string{gates[follower].addr(), gates[(leader+2)%3].addr(), gates[leader].addr()}
	opts := []Opt{WithTLS(clientTLS(t, ca, "alice")), WithToken(token)}
	ctx := testCtx(t)

	adm := newAdmin(t, brokers, opts...)
	if _, err := adm.CreateTopic(ctx, wire.CreateTopicRequest{Name: "orders", Queues: 1}); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, brokers, append([]ProducerOpt{WithLinger(0)}, producerOpts(opts)...)...)
	res, err := p.Produce(ctx, &Message{Topic: "orders", Value: []byte("over tls")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConsumer(brokers, append([]ConsumerOpt{WithGroup("billing", "orders"), WithLogger(testLogger(t)),
		WithRetryBackoff(5*time.Millisecond, 20*time.Millisecond)}, consumerOpts(opts)...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []Record
	for len(got) == 0 && ctx.Err() == nil {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recs...)
	}
	if len(got) != 1 || string(got[0].Value) != "over tls" || got[0].Offset != res.Offset {
		t.Fatalf("consumed %+v, produced at %d", got, res.Offset)
	}
	// Every request, on every gate, came with alice's certificate (and the
	// token, else the gate refused it and the calls above failed); the
	// writes reached the leader's gate by its hint.
	for i, g := range gates {
		for _, call := range g.log() {
			if !strings.HasPrefix(call, "alice ") {
				t.Errorf("gate %d: %q", i, call)
			}
		}
	}
	if !contains(gates[leader].log(), "alice POST /v1/topics") || !contains(gates[leader].log(), "alice POST /v1/topics/orders/queues/0/batches") {
		t.Errorf("the leader's gate saw %q", gates[leader].log())
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func producerOpts(o []Opt) []ProducerOpt {
	out := make([]ProducerOpt, len(o))
	for i, x := range o {
		out[i] = x
	}
	return out
}

func consumerOpts(o []Opt) []ConsumerOpt {
	out := make([]ConsumerOpt, len(o))
	for i, x := range o {
		out[i] = x
	}
	return out
}

// TestTLSRefusals: without the token a call fails at once with
// UNAUTHENTICATED (not resent, although a read is resent on every
// retriable failure), a produced message too; without a client
// certificate or with an unknown CA the handshake fails.
func TestTLSRefusals(t *testing.T) {
	ca := testcerts.NewCA(t, "test CA")
	gates, leader := tlsGroup(t, 1, ca, "lmq_abc_s3cret")
	brokers := []string{gates[leader].addr()}
	ctx := testCtx(t)

	adm := newAdmin(t, brokers, WithTLS(clientTLS(t, ca, "alice")), WithToken("lmq_abc_wrong"))
	_, err := adm.ListTopics(ctx)
	if ErrorCode(err) != wire.CodeUnauthenticated || !IsNotApplied(err) || IsRetriable(err) {
		t.Fatalf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error repeats the token: %v", err)
	}
	if n := len(gates[leader].log()); n != 1 {
		t.Fatalf("%d requests, want 1 (not resent): %q", n, gates[leader].log())
	}

	p := newProducer(t, brokers, WithTLS(clientTLS(t, ca, "alice")), WithLinger(0))
	start := time.Now()
	if _, err := p.Produce(ctx, &Message{Topic: "orders", Value: []byte("x")}); ErrorCode(err) != wire.CodeUnauthenticated {
		t.Fatalf("produce without a token: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the refusal took %v: resent?", d)
	}

	for name, cfg := range map[string]*tls.Config{
		"no client certificate": clientTLS(t, ca, ""),
		"another CA":            clientTLS(t, testcerts.NewCA(t, "other"), "alice"),
	} {
		adm := newAdmin(t, brokers, WithTLS(cfg), WithToken("lmq_abc_s3cret"))
		_, err := adm.ListTopics(shortCtx(t, 300*time.Millisecond))
		var te *transportError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "tls") && !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Plain HTTP to a TLS listener is not TLS: host:port without WithTLS.
	_, err = newAdmin(t, brokers, WithToken("lmq_abc_s3cret")).ListTopics(shortCtx(t, 300*time.Millisecond))
	if err == nil {
		t.Error("plain HTTP to a TLS gate succeeded")
	}
}

// TestAuthErrorsNotResent: 401 and 403 answers, the API's or a proxy's
// plain ones, are final: a read (resent on every retriable failure) and
// a write are sent once, and the error carries the code.
func TestAuthErrorsNotResent(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		code   string
	}{
		{401, `{"error":{"code":"UNAUTHENTICATED","message":"unknown token","not_applied":true}}`, wire.CodeUnauthenticated},
		{403, `{"error":{"code":"FORBIDDEN","message":"User:bob may not describe on cluster","not_applied":true}}`, wire.CodeForbidden},
		{401, "Unauthorized", wire.CodeUnauthenticated},
		{403, "<html>denied</html>", wire.CodeForbidden},
	} {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int32) {
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		})
		adm := newAdmin(t, []string{node.addr()})
		_, rerr := adm.ClusterStatus(shortCtx(t, 2*time.Second))
		_, werr := adm.CreateTopic(shortCtx(t, 2*time.Second), wire.CreateTopicRequest{Name: "t"})
		for _, err := range []error{rerr, werr} {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != tc.code || ae.Status != tc.status || !ae.NotApplied || ae.Retriable ||
				errors.Is(err, ErrUnknownOutcome) {
				t.Errorf("%d %q: %v (%+v)", tc.status, tc.body, err, ae)
			}
		}
		if n := node.n.Load(); n != 2 {
			t.Errorf("%d %q: %d requests, want 2", tc.status, tc.body, n)
		}
	}
}

// TestTokenHeader: the token travels as a bearer token on every request,
// the stall probe (GET /v1/leader) included.
func TestTokenHeader(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = r.Header.Get("Authorization")
		mu.Unlock()
		writeJSONAnswer(w, http.StatusOK, wire.ClusterStatus{})
	}))
	t.Cleanup(node.Close)
	adm := newAdmin(t, []string{strings.TrimPrefix(node.URL, "http://")}, WithToken("lmq_x_y"))
	if _, err := adm.ClusterStatus(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.conn.askLeader(testCtx(t), adm.conn.brokers[0]); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range []string{"/v1/cluster", "/v1/leader"} {
		if seen[p] != "Bearer lmq_x_y" {
			t.Errorf("%s: Authorization %q", p, seen[p])
		}
	}
}

// TestTLSOptions: which addresses and options go together.
func TestTLSOptions(t *testing.T) {
	for _, tc := range []struct {
		brokers []string
		opts    []Opt
		want    string // the scheme, or a part of the error
	}{
		{[]string{"h:1"}, nil, "http"},
		{[]string{"h:1"}, []Opt{WithTLS(nil)}, "https"},
		{[]string{"https://h:1", "h:2"}, nil, "https"},
		{[]string{"https://h:1", "HTTPS://h:2"}, []Opt{WithTLS(&tls.Config{})}, "https"},
		{[]string{"http://h:1"}, []Opt{WithTLS(nil)}, "WithTLS needs https://"},
		{[]string{"http://h:1", "https://h:2"}, nil, "one scheme"},
		{[]string{"h:1"}, []Opt{WithTLS(nil), WithHTTPClient(http.DefaultClient)}, "exclude each other"},
		{[]string{"h:1"}, []Opt{WithToken("lmq_a b")}, "WithToken: the token has a space"},
		{[]string{"h:1"}, []Opt{WithToken("lmq_a\r\nX: y")}, "WithToken"},
	} {
		a, err := NewAdmin(tc.brokers, tc.opts...)
		switch {
		case err != nil && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%q: %v, want %q", tc.brokers, err, tc.want)
		case err == nil && a.conn.scheme != tc.want:
			t.Errorf("%q: scheme %q, want %q", tc.brokers, a.conn.scheme, tc.want)
		case err == nil:
			for _, b := range a.conn.brokers {
				if !strings.HasPrefix(b, tc.want+"://") {
					t.Errorf("%q: broker %q", tc.brokers, b)
				}
			}
			a.Close()
		}
		if err != nil && strings.Contains(err.Error(), "lmq_a") {
			t.Errorf("the error repeats the token: %v", err)
		}
	}
}
