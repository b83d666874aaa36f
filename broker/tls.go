package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/ledgermq/ledgermq/internal/tlsfiles"
	"github.com/ledgermq/ledgermq/replication"
)

// openTLS loads the TLS files of Config.TLS and puts the Raft port's in
// rc. Each file set gets one Reloader (the API and the Raft port share
// one when they use the same files).
func (b *Broker) openTLS(rc *replication.Config) error {
	t := &b.cfg.TLS
	if _, err := t.clientAuth(); err != nil {
		return err
	}
	rf, raftOn, err := t.raftFiles()
	if err != nil {
		return err
	}
	if t.API.Cert != "" {
		if _, err := b.reloader(t.API); err != nil {
			return err
		}
	} else if t.API.CA != "" || t.API.Key != "" {
		return fmt.Errorf("broker: --tls-ca and --tls-key need --tls-cert")
	}
	if raftOn {
		r, err := b.reloader(rf)
		if err != nil {
			return err
		}
		rc.TLS = r
	}
	return nil
}

// reloader returns the Reloader of f, creating it once.
func (b *Broker) reloader(f tlsfiles.Files) (*tlsfiles.Reloader, error) {
	for _, r := range b.tls {
		if r.Files() == f {
			return r, nil
		}
	}
	r, err := tlsfiles.New(f, b.logger)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.tls = append(b.tls, r)
	return r, nil
}

// listen opens the API listener: TLS when Config.TLS.API has a
// certificate. It yields *tls.Conn, so the HTTP layer sees the client's
// verified certificate (fasthttp's RequestCtx.TLSConnectionState).
func (b *Broker) listen() (net.Listener, error) {
	return b.listenOn(b.cfg.Listen)
}

// listenOn listens on addr with the API's TLS settings (the HTTP API and
// the Kafka listener share them).
func (b *Broker) listenOn(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	t := &b.cfg.TLS
	if t.API.Cert == "" {
		return ln, nil
	}
	auth, _ := t.clientAuth() // checked in openTLS
	r, err := b.reloader(t.API)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return tls.NewListener(ln, r.ServerConfig(auth)), nil
}

// ReloadTLS re-reads every TLS file now (the broker calls it on SIGHUP).
// A file that fails to load keeps its previous material; the errors are
// returned joined.
func (b *Broker) ReloadTLS() error {
	var errs []error
	for _, r := range b.tls {
		errs = append(errs, r.Reload())
	}
	return errors.Join(errs...)
}

func (b *Broker) closeTLS() {
	for _, r := range b.tls {
		r.Close()
	}
}
