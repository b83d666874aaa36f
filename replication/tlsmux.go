package replication

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/internal/tlsfiles"
)

// TLSSource supplies the Raft port's TLS configurations; a
// *tlsfiles.Reloader is one (its certificates and CA are looked up per
// handshake, so rotation needs no restart).
type TLSSource interface {
	// ServerConfig is the listener's side: present this node's
	// certificate, verify the client's against the cluster CA.
	ServerConfig(clientAuth tls.ClientAuthType) *tls.Config
	// ClientConfig is the dialer's side: present this node's certificate,
	// verify the server's chain against the cluster CA and hand its leaf
	// to verifyPeer.
	ClientConfig(verifyPeer func(*x509.Certificate) error) *tls.Config
}

const (
	// handshakeTimeout bounds a TLS handshake on the Raft port: a
	// stranger that connects and stalls holds a goroutine this long.
	handshakeTimeout = 5 * time.Second
	// maxHandshakes bounds the handshakes under way at once; a connection
	// beyond it evicts the oldest (strangers that connect and stall must
	// not lock the members out: a member's handshake takes a round trip,
	// so a stranger would have to open maxHandshakes connections per
	// round trip to keep one out).
	maxHandshakes = 64
)

// muxAuth makes the Mux a mutual-TLS listener whose peers are members:
// each connection completes a TLS handshake with a certificate of the
// cluster CA carrying ledgermq://node/<id>, and <id> must be in the
// node's newest configuration, before its first byte is read. Connections
// of identities that leave the configuration are closed (revoke).
type muxAuth struct {
	tls    TLSSource
	member func(id string) bool             // may id connect now?
	idAt   func(addr string) (string, bool) // the member at a dialed address
	raft   func(id string, c net.Conn)      // takes an authenticated raft connection
	onLog  func(msg string, args ...any)    // refusals (Warn)

	srv *tls.Config

	hmu     sync.Mutex
	pending []net.Conn // handshakes under way, oldest first

	mu   sync.Mutex
	held map[*heldConn]struct{}
}

func (a *muxAuth) init() {
	a.srv = a.tls.ServerConfig(tls.RequireAndVerifyClientCert)
	a.held = map[*heldConn]struct{}{}
}

// startHandshake takes a handshake slot for c, closing the oldest
// handshake under way if every slot is taken (its goroutine then ends).
func (a *muxAuth) startHandshake(c net.Conn) {
	a.hmu.Lock()
	var evict net.Conn
	if len(a.pending) >= maxHandshakes {
		evict = a.pending[0]
		a.pending = a.pending[1:]
	}
	a.pending = append(a.pending, c)
	a.hmu.Unlock()
	if evict != nil {
		evict.Close()
	}
}

// endHandshake releases c's slot (if not evicted).
func (a *muxAuth) endHandshake(c net.Conn) {
	a.hmu.Lock()
	defer a.hmu.Unlock()
	if i := slices.Index(a.pending, c); i >= 0 {
		a.pending = slices.Delete(a.pending, i, i+1)
	}
}

// authenticate runs the server handshake on raw and checks the identity.
// The handshake slot taken by the accept loop is released here.
func (m *Mux) authenticate(raw net.Conn) (net.Conn, string, bool) {
	a := m.auth
	defer a.endHandshake(raw)
	tc := tls.Server(raw, a.srv)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { raw.Close() }) // Close also ends it
	defer stop()
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		a.onLog("raft port: TLS handshake refused", "remote", raw.RemoteAddr().String(), "err", err)
		return nil, "", false
	}
	raw.SetDeadline(time.Time{})
	id, err := tlsfiles.NodeID(tc.ConnectionState().PeerCertificates[0])
	if err != nil {
		a.onLog("raft port: refused a certificate that names no node", "remote", raw.RemoteAddr().String(), "err", err)
		return nil, "", false
	}
	if !a.member(id) {
		a.onLog("raft port: refused a node that is not in the configuration", "remote", raw.RemoteAddr().String(), "peer", id)
		return nil, "", false
	}
	return tc, id, true
}

// dialTLS dials addr and verifies that the server is the member the
// configuration puts at addr.
func (m *Mux) dialTLS(ctx context.Context, addr string) (net.Conn, error) {
	want, ok := m.auth.idAt(addr)
	if !ok {
		return nil, fmt.Errorf("replication: no member of the configuration is at %s", addr)
	}
	raw, err := m.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, m.auth.tls.ClientConfig(func(c *x509.Certificate) error {
		got, err := tlsfiles.NodeID(c)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("replication: %s presented the certificate of node %s, the configuration has %s there", addr, got, want)
		}
		return nil
	}))
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("replication: TLS handshake with %s (%s): %w", want, addr, err)
	}
	return tc, nil
}

// heldConn is an authenticated connection, tracked until it is closed so
// that revoke can close those of removed members.
type heldConn struct {
	net.Conn
	id   string
	a    *muxAuth
	once sync.Once
}

func (c *heldConn) Close() error {
	c.once.Do(func() {
		c.a.mu.Lock()
		delete(c.a.held, c)
		c.a.mu.Unlock()
	})
	return c.Conn.Close()
}

func (a *muxAuth) hold(c net.Conn, id string) net.Conn {
	h := &heldConn{Conn: c, id: id, a: a}
	a.mu.Lock()
	a.held[h] = struct{}{}
	a.mu.Unlock()
	return h
}

// revoke closes the connections of identities that may no longer connect.
func (a *muxAuth) revoke() {
	a.mu.Lock()
	var drop []*heldConn
	for c := range a.held {
		if !a.member(c.id) {
			drop = append(drop, c)
		}
	}
	a.mu.Unlock()
	for _, c := range drop {
		a.onLog("raft port: closing the connection of a node no longer in the configuration", "peer", c.id, "remote", c.RemoteAddr().String())
		c.Close()
	}
}

func (a *muxAuth) closeAll() {
	a.mu.Lock()
	all := make([]*heldConn, 0, len(a.held))
	for c := range a.held {
		all = append(all, c)
	}
	a.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}
