package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// setupTLS builds the clients' TLS configuration from Options.TLS.
func (g *Group) setupTLS() error {
	b := g.opts.TLS
	if b == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(b.CA.Cert)
	g.tlsCfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if g.opts.Netns {
		// The nodes' lab addresses are in no certificate (devcerts names
		// 127.0.0.1 and localhost): verify the name every node carries.
		g.tlsCfg.ServerName = "localhost"
	}
	if f, ok := b.Users["admin"]; ok {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		g.tlsCfg.Certificates = []tls.Certificate{c}
	}
	for i := range g.opts.Nodes {
		if _, ok := b.Nodes[fmt.Sprintf("n%d", i+1)]; !ok {
			return fmt.Errorf("cluster: the TLS bundle has no certificate for n%d", i+1)
		}
	}
	return nil
}

// tlsArgs are node id's TLS flags: its bundle certificate on the API and
// (by default) the Raft port.
func (g *Group) tlsArgs(id string) []string {
	if g.opts.TLS == nil {
		return nil
	}
	f := g.opts.TLS.Nodes[id]
	return []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
}

// TLSConfig is the client TLS configuration for the nodes' APIs (a clone;
// nil without Options.TLS).
func (g *Group) TLSConfig() *tls.Config {
	if g.tlsCfg == nil {
		return nil
	}
	return g.tlsCfg.Clone()
}

// URL is node id's API base URL: https:// with Options.TLS.
func (g *Group) URL(id string) string {
	if g.tlsCfg != nil {
		return "https://" + g.API(id)
	}
	return "http://" + g.API(id)
}
