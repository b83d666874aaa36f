package replication

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// authTransport is the Raft transport of a node with node identities
// (Config.TLS). hashicorp/raft's NetworkTransport hands each RPC to raft
// with no word of the connection it came on, so one transport cannot tell
// who sent an RPC. authTransport runs one inbound NetworkTransport per
// authenticated identity: its stream layer accepts only the connections
// the Mux authenticated as that node, so every RPC its consumer yields was
// sent by that node. A forwarder checks that the RPC claims to come from
// that node (RPCHeader.ID, RPCHeader.Addr and the legacy leader or
// candidate address) before it reaches raft's consumer channel, and the
// heartbeat fast path is checked the same way; a false claim is answered
// with an error and logged. Outgoing RPCs go through one NetworkTransport
// (out) that dials over the Mux. Identities leave with the configuration:
// revoke closes their transports.
type authTransport struct {
	*raft.NetworkTransport // outgoing RPCs, LocalAddr, EncodePeer/DecodePeer

	addr    net.Addr
	addrOf  func(id string) (string, bool) // a member's Raft address in the configuration
	member  func(id string) bool
	logger  *slog.Logger
	hclog   func() *raft.NetworkTransportConfig // a config for one inbound transport
	consume chan raft.RPC
	done    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	inbound map[string]*inbound
	hb      func(raft.RPC)
	closed  bool
}

// inbound is the inbound transport of one identity.
type inbound struct {
	id    string
	conns chan net.Conn
	stop  chan struct{}
	once  sync.Once
	tr    *raft.NetworkTransport
	addr  net.Addr
}

func newAuthTransport(addr net.Addr, member func(string) bool, addrOf func(string) (string, bool),
	trCfg func() *raft.NetworkTransportConfig, logger *slog.Logger) *authTransport {
	return &authTransport{addr: addr, member: member, addrOf: addrOf, hclog: trCfg, logger: logger,
		consume: make(chan raft.RPC), done: make(chan struct{}), inbound: map[string]*inbound{}}
}

// deliver hands a connection the Mux authenticated as id to id's inbound
// transport.
func (t *authTransport) deliver(id string, c net.Conn) {
	in := t.inboundFor(id)
	if in == nil {
		c.Close()
		return
	}
	select {
	case in.conns <- c:
	case <-in.stop:
		c.Close()
	case <-t.done:
		c.Close()
	}
}

func (t *authTransport) inboundFor(id string) *inbound {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if in := t.inbound[id]; in != nil {
		return in
	}
	in := &inbound{id: id, conns: make(chan net.Conn), stop: make(chan struct{}), addr: t.addr}
	cfg := t.hclog()
	cfg.Stream = in
	in.tr = raft.NewNetworkTransportWithConfig(cfg)
	in.tr.SetHeartbeatHandler(func(rpc raft.RPC) { t.heartbeat(in.id, rpc) })
	t.inbound[id] = in
	t.wg.Add(1)
	go t.forward(in)
	return in
}

// forward passes the RPCs of one identity to raft once their claims check.
func (t *authTransport) forward(in *inbound) {
	defer t.wg.Done()
	for {
		select {
		case rpc := <-in.tr.Consumer():
			if !t.admit(in.id, rpc) {
				continue
			}
			select {
			case t.consume <- rpc:
			case <-t.done:
				rpc.Respond(nil, raft.ErrTransportShutdown)
				return
			}
		case <-in.stop:
			return
		case <-t.done:
			return
		}
	}
}

func (t *authTransport) heartbeat(id string, rpc raft.RPC) {
	if !t.admit(id, rpc) {
		return
	}
	t.mu.Lock()
	hb := t.hb
	t.mu.Unlock()
	if hb != nil {
		hb(rpc)
		return
	}
	select {
	case t.consume <- rpc:
	case <-t.done:
		rpc.Respond(nil, raft.ErrTransportShutdown)
	}
}

// errFalseClaim answers an RPC that claims to come from another node than
// the one whose certificate its connection was authenticated with.
var errFalseClaim = errors.New("replication: RPC refused: it does not come from the node it claims")

// admit checks an RPC's claim against the identity id of its connection,
// and answers it with an error if the claim is false.
func (t *authTransport) admit(id string, rpc raft.RPC) bool {
	err := t.checkClaim(id, rpc.Command)
	if err == nil {
		return true
	}
	t.logger.Warn("raft port: refused an RPC whose claimed sender is not its authenticated node", "peer", id, "rpc", fmt.Sprintf("%T", rpc.Command), "err", err)
	rpc.Respond(nil, fmt.Errorf("%w: %w", errFalseClaim, err))
	return false
}

func (t *authTransport) checkClaim(id string, cmd any) error {
	var hdr *raft.RPCHeader
	var legacy *[]byte // the deprecated leader / candidate address
	switch c := cmd.(type) {
	case *raft.AppendEntriesRequest:
		hdr, legacy = &c.RPCHeader, &c.Leader
	case *raft.RequestVoteRequest:
		hdr, legacy = &c.RPCHeader, &c.Candidate
	case *raft.RequestPreVoteRequest:
		hdr = &c.RPCHeader
	case *raft.InstallSnapshotRequest:
		hdr, legacy = &c.RPCHeader, &c.Leader
	case *raft.TimeoutNowRequest:
		hdr = &c.RPCHeader
	default:
		return fmt.Errorf("unknown RPC %T", cmd)
	}
	if string(hdr.ID) != id {
		return fmt.Errorf("node %s claims to be %q", id, hdr.ID)
	}
	want, ok := t.addrOf(id)
	if !ok {
		return nil // not yet in this node's configuration (it joins): the id alone is checked
	}
	// The address raft will believe (as the leader's, the candidate's) is
	// the one this node's configuration has for the authenticated id, not
	// the one the sender claims: nodes may reach each other at different
	// addresses (NAT, proxies), and a sender cannot point raft elsewhere.
	if string(hdr.Addr) != want {
		hdr.Addr = []byte(want)
	}
	if legacy != nil && len(*legacy) > 0 && string(*legacy) != want {
		*legacy = []byte(want)
	}
	return nil
}

// revoke closes the inbound transports of identities no longer members.
func (t *authTransport) revoke() {
	t.mu.Lock()
	var drop []*inbound
	for id, in := range t.inbound {
		if !t.member(id) {
			delete(t.inbound, id)
			drop = append(drop, in)
		}
	}
	t.mu.Unlock()
	for _, in := range drop {
		in.tr.Close()
	}
}

// Consumer implements raft.Transport: the checked RPCs of every identity.
func (t *authTransport) Consumer() <-chan raft.RPC { return t.consume }

// SetHeartbeatHandler implements raft.Transport.
func (t *authTransport) SetHeartbeatHandler(cb func(raft.RPC)) {
	t.mu.Lock()
	t.hb = cb
	t.mu.Unlock()
}

// Close implements raft.WithClose.
func (t *authTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	all := t.inbound
	t.inbound = nil
	t.mu.Unlock()
	for _, in := range all {
		in.tr.Close()
	}
	err := t.NetworkTransport.Close()
	t.wg.Wait()
	return err
}

// Accept implements raft.StreamLayer for one identity's inbound transport.
func (in *inbound) Accept() (net.Conn, error) {
	select {
	case c := <-in.conns:
		return c, nil
	case <-in.stop:
		return nil, net.ErrClosed
	}
}

// Close implements raft.StreamLayer.
func (in *inbound) Close() error {
	in.once.Do(func() { close(in.stop) })
	return nil
}

// Addr implements raft.StreamLayer.
func (in *inbound) Addr() net.Addr { return in.addr }

// Dial implements raft.StreamLayer: inbound transports never dial.
func (in *inbound) Dial(raft.ServerAddress, time.Duration) (net.Conn, error) {
	return nil, errors.New("replication: an inbound transport does not dial")
}
