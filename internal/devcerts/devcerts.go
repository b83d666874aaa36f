// Package devcerts makes throw-away certificates: a CA, node certificates
// (URI SAN ledgermq://node/<id>) and client certificates (CN = user), for
// tests and `broker dev --secure`. Keys are ECDSA P-256; nothing here is
// meant for production.
package devcerts

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ledgermq/ledgermq/internal/tlsfiles"
)

// Validity is how long generated certificates are valid (from an hour
// ago, so that clocks a little apart agree).
const Validity = 365 * 24 * time.Hour

// CA is a certificate authority that signs node and client certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// NewCA makes a self-signed CA named name.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devcerts: generate CA key: %w", err)
	}
	tmpl, err := template(name)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("devcerts: sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("devcerts: parse CA: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: pemBlock("CERTIFICATE", der)}, nil
}

func template(cn string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("devcerts: serial: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"LedgerMQ dev"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(Validity),
	}, nil
}

// Node makes the certificate of node id: URI SAN ledgermq://node/<id>,
// DNS localhost, IP 127.0.0.1 and ::1, usable as server and client.
func (ca *CA) Node(id string) (certPEM, keyPEM []byte, err error) {
	return ca.issue("node "+id, []*url.URL{tlsfiles.NodeURL(id)})
}

// Client makes a client certificate for user (its CN; the API's
// principal User:<user>). It also carries localhost, so a test may use it
// as a server certificate, but no node identity.
func (ca *CA) Client(user string) (certPEM, keyPEM []byte, err error) {
	return ca.issue(user, nil)
}

func (ca *CA) issue(cn string, uris []*url.URL) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("devcerts: generate key: %w", err)
	}
	tmpl, err := template(cn)
	if err != nil {
		return nil, nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.DNSNames = []string{"localhost"}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	tmpl.URIs = uris
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("devcerts: sign %s: %w", cn, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("devcerts: encode key: %w", err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kder), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// Bundle is a CA and certificates written to a directory:
// ca.pem, node-<id>.pem / node-<id>-key.pem, user-<name>.pem /
// user-<name>-key.pem.
type Bundle struct {
	Dir   string
	CA    *CA
	Nodes map[string]tlsfiles.Files // by node id; CA is ca.pem
	Users map[string]tlsfiles.Files // by user name
}

// CAFile is the path of the bundle's CA certificate.
func (b *Bundle) CAFile() string { return filepath.Join(b.Dir, "ca.pem") }

// WriteBundle makes a new CA and certificates for nodes and users and
// writes them to dir (created if missing; keys 0600).
func WriteBundle(dir string, nodes, users []string) (*Bundle, error) {
	ca, err := NewCA("LedgerMQ dev CA")
	if err != nil {
		return nil, err
	}
	b := &Bundle{Dir: dir, CA: ca, Nodes: map[string]tlsfiles.Files{}, Users: map[string]tlsfiles.Files{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devcerts: create %s: %w", dir, err)
	}
	if err := WriteFile(b.CAFile(), ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	for _, id := range nodes {
		if b.Nodes[id], err = b.write("node-"+id, ca.Node, id); err != nil {
			return nil, err
		}
	}
	for _, u := range users {
		if b.Users[u], err = b.write("user-"+u, ca.Client, u); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *Bundle) write(base string, issue func(string) ([]byte, []byte, error), name string) (tlsfiles.Files, error) {
	cert, key, err := issue(name)
	if err != nil {
		return tlsfiles.Files{}, err
	}
	f := tlsfiles.Files{CA: b.CAFile(), Cert: filepath.Join(b.Dir, base+".pem"), Key: filepath.Join(b.Dir, base+"-key.pem")}
	if err := WriteFile(f.Key, key, 0o600); err != nil {
		return f, err
	}
	return f, WriteFile(f.Cert, cert, 0o644)
}

// WriteFile writes data to path atomically (a temporary file renamed over
// it), so a Reloader never reads half of it.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return fmt.Errorf("devcerts: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("devcerts: rename %s: %w", tmp, err)
	}
	return nil
}

// RenewNode replaces node id's certificate and key in the bundle's files
// with new ones (same CA): a rotation.
func (b *Bundle) RenewNode(id string) error {
	f, err := b.write("node-"+id, b.CA.Node, id)
	b.Nodes[id] = f
	return err
}

// RenewUser replaces user's certificate and key with new ones.
func (b *Bundle) RenewUser(user string) error {
	f, err := b.write("user-"+user, b.CA.Client, user)
	b.Users[user] = f
	return err
}

// OpenBundle returns the bundle in dir when it holds the CA and a
// certificate and key for every node and user, and otherwise writes a new
// one there (WriteBundle). An opened bundle has no CA key (CA is nil): it
// can be used, not extended.
func OpenBundle(dir string, nodes, users []string) (*Bundle, error) {
	b := &Bundle{Dir: dir, Nodes: map[string]tlsfiles.Files{}, Users: map[string]tlsfiles.Files{}}
	complete := fileExists(b.CAFile())
	add := func(m map[string]tlsfiles.Files, base, name string) {
		f := tlsfiles.Files{CA: b.CAFile(), Cert: filepath.Join(dir, base+".pem"), Key: filepath.Join(dir, base+"-key.pem")}
		complete = complete && fileExists(f.Cert) && fileExists(f.Key)
		m[name] = f
	}
	for _, id := range nodes {
		add(b.Nodes, "node-"+id, id)
	}
	for _, u := range users {
		add(b.Users, "user-"+u, u)
	}
	if complete {
		return b, nil
	}
	return WriteBundle(dir, nodes, users)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
