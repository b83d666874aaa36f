package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/broker/httpapi"
	"github.com/ledgermq/ledgermq/broker/kafka"
	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/internal/tlsfiles"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/wire"
)

// Broker is one broker node: a replication node driving the state
// machine, the service core over them, and the HTTP front-end.
type Broker struct {
	cfg     Config
	logger  *slog.Logger
	node    *replication.Node
	svc     *service.Service
	http    *httpapi.Server
	ln      net.Listener
	kafka   *kafka.Server // nil without --kafka-listen
	kln     net.Listener
	tls     []*tlsfiles.Reloader // API and Raft port material (tls.go)
	wg      sync.WaitGroup
	closed  atomic.Bool
	stop    chan struct{} // closed by Close: background loops end
	exposed []string      // listeners reachable without protection (--insecure)
}

// Open starts a broker node and its HTTP listener.
func Open(cfg Config) (*Broker, error) {
	rc, err := cfg.replicationConfig()
	if err != nil {
		return nil, err
	}
	authCfg, err := cfg.authConfig() // issue 12
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, logger: cfg.Logger.With("node", cfg.ID), stop: make(chan struct{})}
	if err := b.openTLS(&rc); err != nil {
		b.closeTLS()
		return nil, err
	}
	if err := b.checkExposure(rc.TLS != nil); err != nil {
		b.closeTLS()
		return nil, err
	}
	if b.ln, err = b.listen(); err != nil {
		b.closeTLS()
		return nil, err
	}
	if cfg.KafkaListen != "" {
		if b.kln, err = b.listenOn(cfg.KafkaListen); err != nil {
			b.ln.Close()
			b.closeTLS()
			return nil, err
		}
		if cfg.KafkaAdvertise == "" {
			rc.KafkaAddr = advertised(b.kln.Addr().String(), cfg.AdvertiseAPI)
		}
	}
	m := fsm.New()
	if b.node, err = replication.Open(rc, m); err != nil {
		if b.kln != nil {
			b.kln.Close()
		}
		b.ln.Close()
		b.closeTLS()
		return nil, err
	}
	b.svc = service.New(service.Config{ID: cfg.ID, GroupID: cfg.GroupID, ProposeTimeout: cfg.ProposeTimeout,
		MaxWait: cfg.MaxWait, MaxRequestBytes: cfg.MaxRequestBytes, Logger: b.logger, Quotas: cfg.Quotas,
		DataDir: cfg.DataDir, MinFreeBytes: cfg.Admission.MinFreeBytes, MinFreePercent: cfg.Admission.MinFreePercent,
		FreeSpace: cfg.freeSpace, Auth: authCfg}, b.node, m)
	var fwdTLS *tls.Config
	if cfg.TLS.API.Cert != "" {
		if r, err := b.reloader(cfg.TLS.API); err == nil { // opened by openTLS
			fwdTLS = r.ClientConfig(nil)
		}
	}
	b.http = httpapi.New(httpapi.Config{MaxRequestBytes: cfg.MaxRequestBytes, MaxWait: cfg.MaxWait, ForwardTLS: fwdTLS,
		ReadTimeout: cfg.requestReadTimeout, Logger: b.logger,
		MaxInflightBytes: cfg.Admission.MaxInflightBytes, MaxInflightBytesPerClient: cfg.Admission.MaxInflightBytesPerClient,
		Concurrency: cfg.Admission.MaxConns, MaxConnsPerIP: cfg.Admission.MaxConnsPerIP}, b.svc)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.http.Serve(b.ln); err != nil && !b.closed.Load() {
			b.logger.Error("http server stopped", "err", err)
		}
	}()
	if b.kln != nil {
		b.kafka = kafka.New(kafka.Config{MaxRequestBytes: cfg.MaxRequestBytes + 1<<20, Logger: b.logger,
			MaxConns: cfg.Admission.MaxConns, MaxConnsPerIP: cfg.Admission.MaxConnsPerIP, TLS: cfg.TLS.API.Cert != "",
			ClusterID: fmt.Sprintf("ledgermq-%d", cfg.GroupID)}, b.svc)
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := b.kafka.Serve(b.kln); err != nil && !b.closed.Load() {
				b.logger.Error("kafka listener stopped", "err", err)
			}
		}()
	}
	b.logger.Info("broker started", "api", cfg.Listen, "kafka", cfg.KafkaListen, "raft", cfg.RaftListen, "data_dir", cfg.DataDir,
		"api_tls", cfg.TLS.API.Cert != "", "raft_tls", rc.TLS != nil, "auth", cfg.Auth.Enabled)
	b.warnInsecure()
	return b, nil
}

// Node returns the replication node (for tests and tools).
func (b *Broker) Node() *replication.Node { return b.node }

// Service returns the protocol-neutral core, for other front-ends.
func (b *Broker) Service() *service.Service { return b.svc }

// Addr returns the API listener's address.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// Close shuts down cleanly: new writes are refused with a retriable error,
// in-flight requests finish (bounded), a leader hands leadership over, and
// the files are synced and closed. Later calls do nothing.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil // closed already
	}
	close(b.stop)
	b.svc.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b.kafka != nil {
		b.kafka.Close()
	} else if b.kln != nil {
		b.kln.Close()
	}
	herr := b.http.Shutdown(ctx)
	// Shutdown closes only listeners Serve has registered; one Close right
	// after Open may come first, so close ours too, which ends Serve.
	b.ln.Close()
	b.svc.Close()
	b.wg.Wait()
	nerr := b.node.Close()
	if errors.Is(nerr, replication.ErrClosed) {
		nerr = nil
	}
	b.closeTLS()
	return errors.Join(herr, nerr)
}

// advertised is what a listener on addr reports to clients when no
// address was given: addr itself, with an unspecified host replaced by the
// advertised API's host (or 127.0.0.1).
func advertised(addr, api string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return addr
	}
	host = "127.0.0.1"
	if h, _, err := net.SplitHostPort(api); err == nil && h != "" {
		host = h
	}
	return net.JoinHostPort(host, port)
}

// KeyQueue is wire.KeyQueue, the documented key-to-queue hash.
func KeyQueue(key []byte, queues int) int { return wire.KeyQueue(key, queues) }
