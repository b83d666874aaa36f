package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Dialer opens a connection to a peer's Raft address. It is the seam for
// TLS and for fault injection: tests wrap it to partition nodes.
type Dialer func(ctx context.Context, addr string) (net.Conn, error)

// DefaultDialer dials TCP.
func DefaultDialer(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// Connection kinds: the first byte a dialer sends. hashicorp/raft's
// NetworkTransport starts every connection with its RPC type (0-4), so any
// value above those is free for LedgerMQ's own peer protocol.
const (
	connPeer byte = 0xA7 // log fetch and status requests (peer.go)
)

// Mux is the Raft stream layer: one listener shared by hashicorp/raft's
// NetworkTransport and LedgerMQ's peer protocol, told apart by the first
// byte of each connection. It implements raft.StreamLayer.
type Mux struct {
	ln     net.Listener
	dial   Dialer
	logger *slog.Logger
	peer   func(net.Conn) // handler for peer-protocol connections

	raftConns chan net.Conn
	done      chan struct{}
	raftDone  chan struct{} // closed when raft's side stops (closeRaft)
	raftOnce  sync.Once
	wg        sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // accepted, not yet handed to raft
	shut  bool

	auth *muxAuth // nil: plain TCP, no identities (tlsmux.go)
}

// NewMux listens on addr. dial may be nil for DefaultDialer.
func NewMux(addr string, dial Dialer, logger *slog.Logger) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("replication: listen on %s: %w", addr, err)
	}
	return newMux(ln, dial, logger, nil), nil
}

// newMux serves ln; with auth set, every connection is mutual TLS from a
// member (tlsmux.go).
func newMux(ln net.Listener, dial Dialer, logger *slog.Logger, auth *muxAuth) *Mux {
	if dial == nil {
		dial = DefaultDialer
	}
	if logger == nil {
		logger = slog.Default()
	}
	m := &Mux{
		ln: ln, dial: dial, logger: logger,
		raftConns: make(chan net.Conn),
		done:      make(chan struct{}),
		raftDone:  make(chan struct{}),
		conns:     make(map[net.Conn]struct{}),
		auth:      auth,
	}
	if auth != nil {
		auth.init()
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

// setPeerHandler installs the handler for peer-protocol connections before
// the node starts serving.
func (m *Mux) setPeerHandler(h func(net.Conn)) {
	m.mu.Lock()
	m.peer = h
	m.mu.Unlock()
}

func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Error("raft listener failed", "err", err)
			return
		}
		if !m.track(c) {
			c.Close()
			return
		}
		if m.auth != nil {
			// Bounded: too many handshakes under way evict the oldest, so
			// that strangers neither pin goroutines nor lock members out.
			m.auth.startHandshake(c)
		}
		m.wg.Add(1)
		go m.route(c)
	}
}

func (m *Mux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shut {
		return false
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *Mux) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

// route reads the first byte and hands the connection on. With TLS the
// handshake and the identity check come first (authenticate): nothing of
// a connection that fails them is read past the handshake.
func (m *Mux) route(raw net.Conn) {
	defer m.wg.Done()
	c, id := raw, ""
	if m.auth != nil {
		var ok bool
		c, id, ok = m.authenticate(raw)
		if !ok {
			m.untrack(raw)
			raw.Close()
			return
		}
		c = m.auth.hold(c, id)
	}
	var b [1]byte
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		m.untrack(raw)
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	if b[0] == connPeer {
		m.mu.Lock()
		h := m.peer
		m.mu.Unlock()
		if h != nil {
			h(c) // returns when the exchange ends; Close closes c to end it early
		}
		m.untrack(raw)
		c.Close()
		return
	}
	m.untrack(raw) // raft owns it from here and closes it on shutdown
	if m.auth != nil {
		m.auth.raft(id, &prefixConn{Conn: c, first: b[0], has: true})
		return
	}
	select {
	case m.raftConns <- &prefixConn{Conn: c, first: b[0], has: true}:
	case <-m.done:
		c.Close()
	case <-m.raftDone: // refused at once, as by a crashed node
		c.Close()
	}
}

// Accept implements net.Listener for hashicorp/raft.
func (m *Mux) Accept() (net.Conn, error) {
	select {
	case c := <-m.raftConns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	case <-m.raftDone:
		return nil, net.ErrClosed
	}
}

// closeRaft stops raft's side only: Accept fails and raft connections are
// closed on arrival, while the peer protocol goes on serving.
func (m *Mux) closeRaft() { m.raftOnce.Do(func() { close(m.raftDone) }) }

// raftStream is the Mux as the stream layer of a node's NetworkTransport:
// raft closes its transport when it shuts down, and a node whose raft
// stopped (a disk failure) still answers status and log fetches.
type raftStream struct{ *Mux }

// Close implements raft.StreamLayer: it stops raft's side of the Mux.
func (s raftStream) Close() error {
	s.closeRaft()
	return nil
}

// Close stops accepting, closes connections not yet handed to raft, and
// waits for the routing goroutines.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.shut {
		m.mu.Unlock()
		return nil
	}
	m.shut = true
	close(m.done)
	for c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	if m.auth != nil {
		m.auth.closeAll()
	}
	err := m.ln.Close()
	m.wg.Wait()
	return err
}

// Addr implements net.Listener.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Dial implements raft.StreamLayer.
func (m *Mux) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return m.dialConn(ctx, string(address))
}

// dialConn connects to a peer's Raft port: over mutual TLS, verifying the
// node at addr, when the Mux has identities.
func (m *Mux) dialConn(ctx context.Context, addr string) (net.Conn, error) {
	if m.auth != nil {
		return m.dialTLS(ctx, addr)
	}
	return m.dial(ctx, addr)
}

// dialPeer opens a peer-protocol connection.
func (m *Mux) dialPeer(ctx context.Context, addr string) (net.Conn, error) {
	c, err := m.dialConn(ctx, addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte{connPeer}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// prefixConn replays the byte the mux consumed.
type prefixConn struct {
	net.Conn
	first byte
	has   bool
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.has && len(p) > 0 {
		p[0] = c.first
		c.has = false
		if len(p) == 1 {
			return 1, nil
		}
		n, err := c.Conn.Read(p[1:])
		return n + 1, err
	}
	return c.Conn.Read(p)
}
