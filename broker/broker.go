package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// Broker is one broker node: a replication.Node driving the topic state,
// and the HTTP API in front of it.
type Broker struct {
	cfg    Config
	logger *slog.Logger
	node   *replication.Node
	topics *topics.State
	groups *consumer.State
	srv    *fasthttp.Server
	// sessions tracks group members' heartbeats on the leader.
	sessions *sessions
	ln       net.Listener
	m        *metrics

	apiMu    sync.RWMutex
	apiAddrs map[string]string // node id -> API address, learned from peers
	peers    []replication.PeerStats

	rr       sync.Map // topic -> *atomic.Uint64 round-robin counter
	draining atomic.Bool
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Open starts a broker node and its HTTP listener.
func Open(cfg Config) (*Broker, error) {
	rc, err := cfg.replicationConfig()
	if err != nil {
		return nil, err
	}
	sm := newStateMachine()
	b := &Broker{cfg: cfg, logger: cfg.Logger.With("node", cfg.ID), topics: sm.topics, groups: sm.groups, sessions: newSessions(),
		apiAddrs: map[string]string{cfg.ID: cfg.Listen}, stop: make(chan struct{}), m: newMetrics()}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", cfg.Listen, err)
	}
	b.ln = ln
	b.node, err = replication.Open(rc, sm)
	if err != nil {
		ln.Close()
		return nil, err
	}
	b.srv = &fasthttp.Server{
		Handler:               b.handle,
		Name:                  "ledgermq",
		MaxRequestBodySize:    cfg.MaxRequestBytes,
		ReadTimeout:           cfg.MaxWait + 30*time.Second,
		WriteTimeout:          cfg.MaxWait + 30*time.Second,
		IdleTimeout:           2 * time.Minute,
		NoDefaultServerHeader: true,
		Logger:                fasthttpLogger{b.logger},
		ErrorHandler:          b.requestError,
	}
	b.wg.Add(4)
	go b.serve()
	go b.refreshPeers()
	go b.countLeaderChanges()
	go b.expireMembers()
	b.logger.Info("broker started", "api", cfg.Listen, "raft", cfg.RaftListen, "data_dir", cfg.DataDir)
	return b, nil
}

func (b *Broker) serve() {
	defer b.wg.Done()
	if err := b.srv.Serve(b.ln); err != nil {
		b.logger.Error("http server stopped", "err", err)
	}
}

// Node returns the replication node (for tests and tools).
func (b *Broker) Node() *replication.Node { return b.node }

// Addr returns the API listener's address.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// Close shuts down cleanly: new writes are refused with a retriable error,
// in-flight requests finish (bounded), a leader hands leadership over, and
// the files are synced and closed.
func (b *Broker) Close() error {
	b.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	herr := b.srv.ShutdownWithContext(ctx)
	close(b.stop)
	b.wg.Wait()
	nerr := b.node.Close()
	if errors.Is(nerr, replication.ErrClosed) {
		nerr = nil
	}
	return errors.Join(herr, nerr)
}

// refreshPeers learns the members' API addresses and progress from their
// status reports, once a second.
func (b *Broker) refreshPeers() {
	defer b.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
		st := b.node.Stats(ctx)
		cancel()
		b.apiMu.Lock()
		for _, p := range st.Peers {
			if p.Status != nil && p.Status.APIAddr != "" {
				b.apiAddrs[p.ID] = p.Status.APIAddr
			}
		}
		b.peers = st.Peers
		b.apiMu.Unlock()
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
	}
}

func (b *Broker) countLeaderChanges() {
	defer b.wg.Done()
	ch, cancel := b.node.WatchLeader()
	defer cancel()
	last := ""
	for {
		select {
		case <-b.stop:
			return
		case info := <-ch:
			if info.ID != "" && info.ID != last {
				b.m.leaderChanges.Add(1)
				last = info.ID
			}
		}
	}
}

// apiAddrOf returns a node's API address, "" if not known yet.
func (b *Broker) apiAddrOf(id string) string {
	b.apiMu.RLock()
	defer b.apiMu.RUnlock()
	return b.apiAddrs[id]
}

// peerProgress returns the last known peer reports.
func (b *Broker) peerProgress() []replication.PeerStats {
	b.apiMu.RLock()
	defer b.apiMu.RUnlock()
	return b.peers
}

// requestError answers requests fasthttp could not read, above all bodies
// over MaxRequestBytes, which are refused from their Content-Length before
// being read.
func (b *Broker) requestError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		b.writeError(ctx, newAPIError(http.StatusRequestEntityTooLarge, wire.CodeRequestTooLarge,
			"request body exceeds the limit of %d bytes", b.cfg.MaxRequestBytes))
	} else {
		b.writeError(ctx, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "malformed request: %v", err))
	}
	b.m.observeRequest("unreadable", ctx.Response.StatusCode(), string(ctx.Response.Header.Peek("X-Error-Code")), 0)
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn(fmt.Sprintf(format, args...), "component", "http")
}
