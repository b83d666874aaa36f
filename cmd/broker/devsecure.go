package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ledgermq/ledgermq/auth"
	"github.com/ledgermq/ledgermq/broker"
	"github.com/ledgermq/ledgermq/internal/devcerts"
	"github.com/ledgermq/ledgermq/replication"
)

// devSecurity is `broker dev --secure`: a throw-away CA with a
// certificate per node and one for the user admin, an admin token, and an
// mqctl context file using them, all under the dev data directory. They
// are made once and kept, so a restarted dev group keeps its credentials.
type devSecurity struct {
	bundle    *devcerts.Bundle
	tokenFile string
	mqctlFile string
}

const devAdmin = "admin"

func setupDevSecurity(dir string, peers []replication.Peer, apiPort int) (*devSecurity, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	tlsDir := filepath.Join(abs, "tls")
	ids := make([]string, len(peers))
	for i, p := range peers {
		ids[i] = p.ID
	}
	b, err := devcerts.OpenBundle(tlsDir, ids, []string{devAdmin})
	if err != nil {
		return nil, fmt.Errorf("broker dev --secure: %w", err)
	}
	s := &devSecurity{bundle: b, tokenFile: filepath.Join(abs, "admin.token"), mqctlFile: filepath.Join(abs, "mqctl.yaml")}
	token, err := os.ReadFile(s.tokenFile)
	if err != nil {
		tok, _, err := auth.NewToken("User:"+devAdmin, "broker dev --secure", 0)
		if err != nil {
			return nil, err
		}
		if err := devcerts.WriteFile(s.tokenFile, []byte(tok+"\n"), 0o600); err != nil {
			return nil, err
		}
		token = []byte(tok)
	}
	var brokers []string
	for i := range peers {
		brokers = append(brokers, fmt.Sprintf("https://127.0.0.1:%d", apiPort+i))
	}
	u := b.Users[devAdmin]
	ctx := fmt.Sprintf("# written by broker dev --secure: use with MQ_CONFIG=%s\ncurrent-context: ledgermq-dev\ncontexts:\n"+
		"  - name: ledgermq-dev\n    brokers: %s\n    ca: %s\n    cert: %s\n    key: %s\n    token: %s\n",
		s.mqctlFile, strings.Join(brokers, ","), u.CA, u.Cert, u.Key, strings.TrimSpace(string(token)))
	if err := devcerts.WriteFile(s.mqctlFile, []byte(ctx), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// configure turns TLS (API and Raft port, from the node's certificate) and
// authentication on for one dev node; nil leaves it plain.
func (s *devSecurity) configure(cfg *broker.Config) {
	if s == nil {
		return
	}
	cfg.TLS.API = s.bundle.Nodes[cfg.ID]
	cfg.Auth.Enabled = true
	cfg.Auth.Superusers = []string{"User:" + devAdmin}
	cfg.BootstrapTokenFile = s.tokenFile
}

func (s *devSecurity) printUsage(w io.Writer) {
	fmt.Fprintf(w, "TLS and authentication are on (CA %s, admin token in %s).\n", s.bundle.CAFile(), s.tokenFile)
	fmt.Fprintf(w, "mqctl uses them through the context file %s:\n  export MQ_CONFIG=%s\n  mqctl whoami\n", s.mqctlFile, s.mqctlFile)
	fmt.Fprintf(w, "The SDK: client.WithTLS(a tls.Config trusting %s, with %s as client certificate) and client.WithToken(<the token>).\n",
		s.bundle.CAFile(), s.bundle.Users[devAdmin].Cert)
}
