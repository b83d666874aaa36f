// Package tlsfiles loads TLS certificates, keys and CA bundles from PEM
// files and keeps them current: a Reloader re-reads the files when they
// change (polled every second) or when told to (SIGHUP), and the
// *tls.Configs it builds look the material up per handshake, so a rotated
// certificate is served to the next connection without a restart.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Files names PEM files. CA is a bundle of certificates that verify the
// other side; Cert and Key are this side's certificate (chain) and key.
// Any may be empty: no CA means no verification of the other side is
// possible, no Cert/Key means no certificate to present.
type Files struct {
	CA, Cert, Key string
}

// PollInterval is how often a Reloader checks its files for changes.
const PollInterval = time.Second

// NodeURIPrefix starts the URI SAN that makes a certificate a node's:
// ledgermq://node/<id>.
const NodeURIPrefix = "ledgermq://node/"

// NodeURI is the URI SAN of node id.
func NodeURI(id string) string { return NodeURIPrefix + id }

// NodeID returns the node id a certificate carries as its URI SAN
// ledgermq://node/<id>. A certificate with none, or more than one, is no
// node's.
func NodeID(cert *x509.Certificate) (string, error) {
	var id string
	for _, u := range cert.URIs {
		s := u.String()
		if !strings.HasPrefix(s, NodeURIPrefix) {
			continue
		}
		if id != "" {
			return "", fmt.Errorf("tlsfiles: certificate %q carries more than one node identity", cert.Subject.CommonName)
		}
		id = strings.TrimPrefix(s, NodeURIPrefix)
		if id == "" || strings.ContainsAny(id, "/?#") {
			return "", fmt.Errorf("tlsfiles: certificate %q carries a malformed node identity %q", cert.Subject.CommonName, s)
		}
	}
	if id == "" {
		return "", fmt.Errorf("tlsfiles: certificate %q carries no node identity (URI SAN %s<id>)", cert.Subject.CommonName, NodeURIPrefix)
	}
	return id, nil
}

// NodeURL is NodeURI as a *url.URL, for certificate templates.
func NodeURL(id string) *url.URL {
	u, _ := url.Parse(NodeURI(id)) // cannot fail for the ids NodeID accepts
	return u
}

// material is one consistent load of the files.
type material struct {
	cert  *tls.Certificate // nil without Cert/Key
	pool  *x509.CertPool   // nil without CA
	stamp string           // the files' sizes and mtimes when read
}

// Reloader holds the current material of Files. Create it with New and
// stop its poller with Close.
type Reloader struct {
	files  Files
	logger *slog.Logger
	cur    atomic.Pointer[material]

	mu        sync.Mutex // serializes reloads
	badStamp  string     // the stamp of files that last failed to load
	reloads   atomic.Uint64
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New loads files (an error if they do not load) and starts polling them
// every PollInterval.
func New(files Files, logger *slog.Logger) (*Reloader, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if files.Cert == "" != (files.Key == "") {
		return nil, fmt.Errorf("tlsfiles: a certificate needs its key and a key its certificate (cert %q, key %q)", files.Cert, files.Key)
	}
	r := &Reloader{files: files, logger: logger.With("tls_cert", files.Cert, "tls_ca", files.CA),
		stop: make(chan struct{}), done: make(chan struct{})}
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	go r.poll()
	return r, nil
}

// Close stops the poller. The configs built keep serving the last
// material.
func (r *Reloader) Close() error {
	r.closeOnce.Do(func() { close(r.stop) })
	<-r.done
	return nil
}

// Files returns the files the Reloader reads.
func (r *Reloader) Files() Files { return r.files }

// Reloads counts the successful reloads since New (tests, metrics).
func (r *Reloader) Reloads() uint64 { return r.reloads.Load() }

// Reload re-reads the files now, whether or not they changed. On failure
// the previous material stays in use and the error is logged and
// returned.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

func (r *Reloader) reloadLocked() error {
	m, err := r.load()
	if err != nil {
		r.badStamp = r.stampOrEmpty()
		r.logger.Error("TLS files failed to load; keeping the previous certificate and CA", "err", err)
		return err
	}
	r.badStamp = ""
	r.cur.Store(m)
	r.reloads.Add(1)
	r.logger.Info("TLS files reloaded", "not_after", notAfter(m))
	return nil
}

func notAfter(m *material) time.Time {
	if m.cert == nil || m.cert.Leaf == nil {
		return time.Time{}
	}
	return m.cert.Leaf.NotAfter
}

func (r *Reloader) poll() {
	defer close(r.done)
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		st, err := r.stampFiles()
		if err != nil {
			continue // a file missing for a moment (replaced by rename): the next poll sees it
		}
		r.mu.Lock()
		if st != r.cur.Load().stamp && st != r.badStamp {
			r.reloadLocked()
		}
		r.mu.Unlock()
	}
}

func (r *Reloader) paths() []string {
	var ps []string
	for _, p := range []string{r.files.CA, r.files.Cert, r.files.Key} {
		if p != "" {
			ps = append(ps, p)
		}
	}
	return ps
}

// stampFiles describes the files' current sizes and mtimes.
func (r *Reloader) stampFiles() (string, error) {
	var b strings.Builder
	for _, p := range r.paths() {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

func (r *Reloader) stampOrEmpty() string {
	s, _ := r.stampFiles()
	return s
}

// load reads every file; the stamp is taken before reading, so a change
// during the read is seen by the next poll.
func (r *Reloader) load() (*material, error) {
	st, err := r.stampFiles()
	if err != nil {
		return nil, fmt.Errorf("tlsfiles: %w", err)
	}
	m := &material{stamp: st}
	if r.files.Cert != "" {
		c, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
		if err != nil {
			return nil, fmt.Errorf("tlsfiles: load certificate %s and key %s: %w", r.files.Cert, r.files.Key, err)
		}
		m.cert = &c
	}
	if r.files.CA != "" {
		b, err := os.ReadFile(r.files.CA)
		if err != nil {
			return nil, fmt.Errorf("tlsfiles: read CA %s: %w", r.files.CA, err)
		}
		m.pool = x509.NewCertPool()
		if !m.pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("tlsfiles: CA file %s holds no PEM certificate", r.files.CA)
		}
	}
	return m, nil
}

// Certificate returns the current certificate (nil without Cert/Key).
func (r *Reloader) Certificate() *tls.Certificate { return r.cur.Load().cert }

// ErrNoCertificate is returned by a handshake that needs this side's
// certificate when none is configured.
var ErrNoCertificate = errors.New("tlsfiles: no certificate configured")

// ServerConfig returns a server config that presents the current
// certificate and, per clientAuth, verifies client certificates against
// the current CA. TLS 1.2 or newer, Go's default cipher suites, no
// session tickets (a resumed session would skip the client certificate
// check against a rotated CA).
func (r *Reloader) ServerConfig(clientAuth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		SessionTicketsDisabled: true,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.cur.Load()
			if m.cert == nil {
				return nil, ErrNoCertificate
			}
			return &tls.Config{
				MinVersion:             tls.VersionTLS12,
				SessionTicketsDisabled: true,
				Certificates:           []tls.Certificate{*m.cert},
				ClientCAs:              m.pool,
				ClientAuth:             clientAuth,
			}, nil
		},
	}
}

// ClientConfig returns a client config that presents the current
// certificate (if any) and verifies the server's chain against the current
// CA. With verifyPeer nil the server's certificate must match the host
// name dialed (ServerName); otherwise verifyPeer decides about the
// verified leaf instead of the host name (node identities are URI SANs).
func (r *Reloader) ClientConfig(verifyPeer func(*x509.Certificate) error) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is verified in VerifyConnection against the CA current
		// at the handshake; Go's own verification would pin RootCAs here.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if m := r.cur.Load(); m.cert != nil {
				return m.cert, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return r.verifyServer(cs, verifyPeer)
		},
	}
}

func (r *Reloader) verifyServer(cs tls.ConnectionState, verifyPeer func(*x509.Certificate) error) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsfiles: the server sent no certificate")
	}
	m := r.cur.Load()
	opts := x509.VerifyOptions{Roots: m.pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if verifyPeer == nil {
		opts.DNSName = cs.ServerName
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("tlsfiles: verify server certificate: %w", err)
	}
	if verifyPeer != nil {
		return verifyPeer(leaf)
	}
	return nil
}
