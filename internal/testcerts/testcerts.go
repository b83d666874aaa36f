// Package testcerts adapts internal/devcerts to tests of TLS clients:
// the same throw-away CA and certificates, as tls.Certificate values and
// files, failing the test instead of returning errors.
package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgermq/ledgermq/internal/devcerts"
)

// CA is a certificate authority.
type CA struct {
	*devcerts.CA
}

// NewCA makes a CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := devcerts.NewCA(name)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return &CA{ca}
}

// Pool is a pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// PEM is the CA certificate in PEM.
func (ca *CA) PEM() []byte { return ca.CertPEM }

// Server makes a server certificate for 127.0.0.1 and localhost.
func (ca *CA) Server(t testing.TB) tls.Certificate {
	t.Helper()
	return ca.pair(t, "localhost")
}

// Client makes a client certificate with subject CN user.
func (ca *CA) Client(t testing.TB, user string) tls.Certificate {
	t.Helper()
	return ca.pair(t, user)
}

func (ca *CA) pair(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.CA.Client(cn)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return c
}

// WriteFiles writes c's certificate and key as PEM files dir/name.crt and
// dir/name.key and returns their paths.
func WriteFiles(t testing.TB, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatalf("testcerts: %s key: %v", name, err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return certFile, keyFile
}

// WriteCA writes the CA certificate as dir/name.crt and returns its path.
func (ca *CA) WriteCA(t testing.TB, dir, name string) string {
	t.Helper()
	f := filepath.Join(dir, name+".crt")
	writeFile(t, f, ca.PEM())
	return f
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
}
