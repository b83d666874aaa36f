package tlsfiles_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/devcerts"
	"github.com/ledgermq/ledgermq/internal/tlsfiles"
)

// serve accepts TLS connections on a real listener until the test ends,
// completing each handshake and closing.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// serverCert dials addr and returns the certificate the server presented.
func serverCert(t *testing.T, addr string, cfg *tls.Config) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	io.ReadAll(c)
	return c.ConnectionState().PeerCertificates[0]
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestRotationReachesLiveListener(t *testing.T) {
	b, err := devcerts.WriteBundle(t.TempDir(), []string{"n1"}, []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tlsfiles.New(b.Nodes["n1"], quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := tlsfiles.New(b.Users["alice"], quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	addr := serve(t, srv.ServerConfig(tls.RequireAndVerifyClientCert))
	nodeIs := func(want string) func(*x509.Certificate) error {
		return func(c *x509.Certificate) error {
			id, err := tlsfiles.NodeID(c)
			if err != nil || id != want {
				return errors.New("wrong node")
			}
			return nil
		}
	}
	first := serverCert(t, addr, cli.ClientConfig(nodeIs("n1")))

	if err := b.RenewNode("n1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * tlsfiles.PollInterval)
	for srv.Reloads() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not picked up by polling")
		}
		time.Sleep(50 * time.Millisecond)
	}
	second := serverCert(t, addr, cli.ClientConfig(nodeIs("n1")))
	if first.SerialNumber.Cmp(second.SerialNumber) == 0 {
		t.Fatal("a new connection still got the old certificate after the reload")
	}

	// A half-written certificate file: the reload fails and the last good
	// certificate is still served.
	pem, _ := os.ReadFile(b.Nodes["n1"].Cert)
	if err := os.WriteFile(b.Nodes["n1"].Cert, pem[:len(pem)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(); err == nil {
		t.Fatal("Reload of a half-written certificate succeeded")
	}
	time.Sleep(tlsfiles.PollInterval + 200*time.Millisecond) // the poller sees the change too
	third := serverCert(t, addr, cli.ClientConfig(nodeIs("n1")))
	if third.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Fatal("a bad certificate file replaced the good one")
	}
}

func TestClientVerification(t *testing.T) {
	b, err := devcerts.WriteBundle(t.TempDir(), []string{"n1"}, []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := devcerts.WriteBundle(t.TempDir(), []string{"n1"}, []string{"mallory"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tlsfiles.New(b.Nodes["n1"], quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := serve(t, srv.ServerConfig(tls.RequireAndVerifyClientCert))

	good, _ := tlsfiles.New(b.Users["alice"], quiet())
	defer good.Close()
	cfg := good.ClientConfig(nil)
	cfg.ServerName = "localhost"
	serverCert(t, addr, cfg) // host name and chain verify

	cfg = good.ClientConfig(nil)
	cfg.ServerName = "example.com"
	if c, err := tls.Dial("tcp", addr, cfg); err == nil {
		c.Close()
		t.Fatal("a server certificate for another host name was accepted")
	}

	stranger, _ := tlsfiles.New(other.Users["mallory"], quiet())
	defer stranger.Close()
	if c, err := tls.Dial("tcp", addr, stranger.ClientConfig(func(*x509.Certificate) error { return nil })); err == nil {
		// TLS 1.3: the client learns of the server's refusal on its first read.
		_, err = io.ReadAll(c)
		c.Close()
		if err == nil {
			t.Fatal("a client of another CA was accepted")
		}
	}
	if _, err := tlsfiles.NodeID(serverCertOf(t, b.Users["alice"].Cert)); err == nil {
		t.Fatal("a user certificate carries a node identity")
	}
}

func serverCertOf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(path, path[:len(path)-4]+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}
