package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker/httpapi"
	"github.com/ledgermq/ledgermq/wire"
)

// issue signs a certificate for cn with parent (self-signed when nil).
func issue(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: ca, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestClientCertificatePrincipal: over TLS, a client certificate signed by
// the API CA authenticates as User:<CN>; one from another CA is refused
// in the handshake; a token beats the certificate.
func TestClientCertificatePrincipal(t *testing.T) {
	bs := startGroup(t, 1, func(c *Config) { c.Auth.Enabled, c.Auth.Superusers = true, []string{"User:admin"} })
	ca, caKey := issue(t, "api-ca", nil, nil, true)
	srvCert, srvKey := issue(t, "localhost", ca, caKey, false)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}}})
	srv := httpapi.New(httpapi.Config{}, bs[0].Service())
	go srv.Serve(tln)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })

	get := func(cert *x509.Certificate, key *ecdsa.PrivateKey, token string) (int, wire.WhoAmI, error) {
		cfg := &tls.Config{RootCAs: pool}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
		defer hc.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+"/v1/auth/whoami", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := hc.Do(req)
		if err != nil {
			return 0, wire.WhoAmI{}, err
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		var w wire.WhoAmI
		json.Unmarshal(b, &w)
		return r.StatusCode, w, nil
	}
	admin, adminKey := issue(t, "admin", ca, caKey, false)
	if st, w, err := get(admin, adminKey, ""); err != nil || st != http.StatusOK || w.Principal != "User:admin" || !w.Superuser {
		t.Fatalf("with the admin certificate: %d %+v %v", st, w, err)
	}
	if st, _, err := get(nil, nil, ""); err != nil || st != http.StatusUnauthorized {
		t.Fatalf("without a certificate: %d %v", st, err)
	}
	otherCA, otherKey := issue(t, "other-ca", nil, nil, true)
	forged, forgedKey := issue(t, "admin", otherCA, otherKey, false)
	// Go's client sends no certificate the server's CA list does not
	// name (then: 401); any other client fails the handshake.
	if st, _, err := get(forged, forgedKey, ""); err == nil && st != http.StatusUnauthorized {
		t.Fatalf("a certificate of another CA was accepted: %d", st)
	}
	if st, _, err := get(admin, adminKey, "lmq_0123456789abcdef_bad"); err != nil || st != http.StatusUnauthorized {
		t.Fatalf("a bad token with a good certificate: %d %v (the token wins)", st, err)
	}
}
