package broker

import (
	"strings"
	"testing"

	"github.com/ledgermq/ledgermq/internal/devcerts"
	"github.com/ledgermq/ledgermq/internal/tlsfiles"
)

func TestOpenRefusesIncompleteTLS(t *testing.T) {
	b, err := devcerts.WriteBundle(t.TempDir(), []string{"n1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := b.Nodes["n1"]
	cases := []struct {
		name string
		tls  TLSConfig
		want string
	}{
		{"client auth without a CA", TLSConfig{API: tlsfiles.Files{Cert: f.Cert, Key: f.Key}, ClientAuth: "require",
			Raft: f}, "needs --tls-ca"},
		{"unknown client auth", TLSConfig{API: f, ClientAuth: "maybe"}, "want none, request or require"},
		{"raft port without the cluster CA", TLSConfig{API: tlsfiles.Files{Cert: f.Cert, Key: f.Key}}, "--raft-tls-ca"},
		{"a CA without a certificate", TLSConfig{API: tlsfiles.Files{CA: f.CA}, Raft: f}, "need --tls-cert"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataDir, cfg.Listen, cfg.RaftListen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
			cfg.TLS = tc.tls
			br, err := Open(cfg)
			if err == nil {
				br.Close()
				t.Fatal("Open accepted the TLS configuration")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want %q", err, tc.want)
			}
		})
	}
}
