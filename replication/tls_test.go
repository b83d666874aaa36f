package replication

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/internal/devcerts"
	"github.com/ledgermq/ledgermq/internal/tlsfiles"
)

// tlsCluster is a 3-node group over real TCP with mutual TLS on the Raft
// port: each node's certificate comes from one dev CA. The bundle also
// holds a certificate for n4 (never a member) and a user certificate.
func tlsCluster(t *testing.T) (*cluster, *devcerts.Bundle, map[string]*tlsfiles.Reloader) {
	t.Helper()
	b, err := devcerts.WriteBundle(t.TempDir(), []string{"n1", "n2", "n3", "n4"}, []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	rl := map[string]*tlsfiles.Reloader{}
	for _, id := range []string{"n1", "n2", "n3"} {
		r, err := tlsfiles.New(b.Nodes[id], testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		rl[id] = r
	}
	c := newCluster(t, 3, clusterOpts{tweak: func(cfg *Config) { cfg.TLS = rl[cfg.ID] }})
	return c, b, rl
}

// clientTLS is a client config from files that accepts any node of the
// CA (the tests dial as impostors, not as careful nodes).
func clientTLS(t *testing.T, f tlsfiles.Files) *tls.Config {
	t.Helper()
	r, err := tlsfiles.New(f, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.ClientConfig(func(*x509.Certificate) error { return nil })
}

// peerStatusOver asks addr for its status over the peer protocol through
// a TLS connection made with cfg.
func peerStatusOver(addr string, cfg *tls.Config) (PeerStatus, error) {
	raw, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return PeerStatus{}, err
	}
	raw.SetDeadline(time.Now().Add(3 * time.Second))
	c := tls.Client(raw, cfg)
	defer c.Close()
	if _, err := c.Write([]byte{connPeer}); err != nil {
		return PeerStatus{}, err
	}
	pc := &peerConn{c: c, r: bufio.NewReader(c), maxEntry: 1 << 20}
	return pc.status()
}

func TestTLSGroupReplicatesAndServesPeers(t *testing.T) {
	c, b, _ := tlsCluster(t)
	l := c.leader(10 * time.Second)
	for i := range 20 {
		if _, ok := c.propose(context.Background(), "m"+string(rune('a'+i))); !ok {
			t.Fatal("proposal over a TLS group failed")
		}
	}
	c.waitConverged(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, p := range l.Stats(ctx).Peers {
		if p.Status == nil {
			t.Fatalf("peer %s did not answer its status over TLS: %s", p.ID, p.Err)
		}
	}
	// A member's certificate gets answers on the peer protocol.
	if _, err := peerStatusOver(l.RaftAddr(), clientTLS(t, b.Nodes["n2"])); err != nil {
		t.Fatalf("member n2 was refused the peer protocol: %v", err)
	}
}

func TestTLSRaftPortRefusesStrangers(t *testing.T) {
	c, b, _ := tlsCluster(t)
	l := c.leader(10 * time.Second)
	term, leader := l.Leader().Term, l.ID()
	other, err := devcerts.WriteBundle(t.TempDir(), []string{"n2"}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Plain TCP speaking raft: an AppendEntries type byte and garbage.
	raw, err := net.Dial("tcp", l.RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte{0x00, 0x85, 0xa4, 'T', 'e', 'r', 'm', 0xcd, 0xff, 0xff})
	raw.SetReadDeadline(time.Now().Add(handshakeTimeout + 2*time.Second))
	got, _ := io.ReadAll(raw)
	raw.Close()
	if len(got) > 0 && got[0] != 0x15 { // at most a TLS alert record
		t.Fatalf("a plain-TCP client got %d bytes that are not a TLS alert: %x", len(got), got)
	}
	// A connection that stalls in the handshake is closed.
	raw, _ = net.Dial("tcp", l.RaftAddr())
	raw.SetReadDeadline(time.Now().Add(handshakeTimeout + 2*time.Second))
	if _, err := raw.Read(make([]byte, 1)); err != nil {
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a stalled handshake was not closed")
		}
	}
	raw.Close()

	refused := map[string]*tls.Config{
		"another CA's n2":  clientTLS(t, other.Nodes["n2"]),
		"a user of the CA": clientTLS(t, b.Users["alice"]),
		"non-member n4":    clientTLS(t, b.Nodes["n4"]),
	}
	for name, cfg := range refused {
		if st, err := peerStatusOver(l.RaftAddr(), cfg); err == nil {
			t.Fatalf("%s got a peer-protocol answer: %+v", name, st)
		}
	}
	if now := l.Leader(); now.Term != term || now.ID != leader || !l.IsLeader() {
		t.Fatalf("leader or term changed: %+v, was %s in term %d", now, leader, term)
	}
	if _, ok := c.propose(context.Background(), "still-serving"); !ok {
		t.Fatal("the group stopped serving")
	}
}

// impostor sends raft RPCs as a NetworkTransport would, over TLS with the
// given certificate.
type impostor struct {
	cfg  *tls.Config
	stop chan struct{}
}

func (s *impostor) Accept() (net.Conn, error) { <-s.stop; return nil, net.ErrClosed }
func (s *impostor) Close() error              { return nil }
func (s *impostor) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (s *impostor) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(a), s.cfg)
}

func TestTLSNodeCannotSpeakForAnother(t *testing.T) {
	c, b, _ := tlsCluster(t)
	l := c.leader(10 * time.Second)
	term, leader := l.Leader().Term, l.ID()
	n3 := c.cfgs["n3"]
	s := &impostor{cfg: clientTLS(t, b.Nodes["n2"]), stop: make(chan struct{})}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: s, MaxPool: 1, Timeout: 3 * time.Second,
		Logger: newHCLog(testLogger(t))})
	defer func() { close(s.stop); tr.Close() }()
	target := raft.ServerAddress(l.RaftAddr())
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n3"), Addr: []byte(n3.RaftAddr)}

	var vr raft.RequestVoteResponse
	err := tr.RequestVote(raft.ServerID(leader), target, &raft.RequestVoteRequest{RPCHeader: hdr, Term: term + 100,
		LastLogIndex: 1 << 40, LastLogTerm: term + 50, LeadershipTransfer: true}, &vr)
	if err == nil || vr.Granted {
		t.Fatalf("a RequestVote claiming n3 on n2's connection was not refused: err %v granted %v", err, vr.Granted)
	}
	var ar raft.AppendEntriesResponse
	err = tr.AppendEntries(raft.ServerID(leader), target, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: term + 100,
		Leader: []byte(n3.RaftAddr)}, &ar)
	if err == nil {
		t.Fatal("an AppendEntries (heartbeat) claiming n3 on n2's connection was not refused")
	}
	err = tr.AppendEntries(raft.ServerID(leader), target, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: term + 100,
		PrevLogEntry: 1, PrevLogTerm: 1, LeaderCommitIndex: 1}, &ar)
	if err == nil {
		t.Fatal("an AppendEntries claiming n3 on n2's connection was not refused")
	}
	time.Sleep(300 * time.Millisecond)
	if now := l.Leader(); now.Term != term || now.ID != leader || !l.IsLeader() {
		t.Fatalf("a false claim moved the leader or term: %+v, was %s in term %d", now, leader, term)
	}

	// The same connection telling the truth reaches raft: a vote request
	// from n2 in a later term makes the leader step down to that term. The
	// address it claims (n3's here) is replaced by n2's in the
	// configuration (TestClaimedAddressNormalized), so it cannot point
	// raft at another node.
	hdr.ID, hdr.Addr = []byte("n2"), []byte(n3.RaftAddr)
	tr.RequestVote(raft.ServerID(leader), target, &raft.RequestVoteRequest{RPCHeader: hdr, Term: term + 100,
		LastLogIndex: 1 << 40, LastLogTerm: term + 50, LeadershipTransfer: true}, &vr)
	if now := l.raft.Load().CurrentTerm(); now < term+100 {
		t.Fatalf("n2's own vote request did not reach raft (term %d, sent %d): the check refuses everything", now, term+100)
	}
}

// TestClaimedAddressNormalized: an RPC from an authenticated node carries,
// when raft sees it, that node's address from the receiver's configuration,
// whatever address the sender claimed; a claim of another id is refused.
func TestClaimedAddressNormalized(t *testing.T) {
	tr := &authTransport{addrOf: func(id string) (string, bool) { return map[string]string{"n2": "10.0.0.2:8001"}[id], id == "n2" }}
	ae := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("n2"), Addr: []byte("10.0.0.3:8001")}, Leader: []byte("10.0.0.3:8001")}
	if err := tr.checkClaim("n2", ae); err != nil || string(ae.Addr) != "10.0.0.2:8001" || string(ae.Leader) != "10.0.0.2:8001" {
		t.Fatalf("AppendEntries: %v, addr %s leader %s", err, ae.Addr, ae.Leader)
	}
	rv := &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("n2"), Addr: []byte("elsewhere:1")}, Candidate: []byte("elsewhere:1")}
	if err := tr.checkClaim("n2", rv); err != nil || string(rv.Addr) != "10.0.0.2:8001" || string(rv.Candidate) != "10.0.0.2:8001" {
		t.Fatalf("RequestVote: %v, addr %s candidate %s", err, rv.Addr, rv.Candidate)
	}
	if err := tr.checkClaim("n2", &raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ID: []byte("n3")}}); err == nil {
		t.Fatal("n2 claiming n3 was accepted")
	}
}

func TestTLSRemovedMemberCannotConnect(t *testing.T) {
	c, b, _ := tlsCluster(t)
	l := c.leader(10 * time.Second)
	victim := "n3"
	if l.ID() == victim {
		victim = "n2"
	}
	cfg := clientTLS(t, b.Nodes[victim])
	if _, err := peerStatusOver(l.RaftAddr(), cfg); err != nil {
		t.Fatalf("member %s refused before its removal: %v", victim, err)
	}
	// A connection of the member, open across its removal, is closed.
	raw, err := net.Dial("tcp", l.RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	open := tls.Client(raw, cfg)
	defer open.Close()
	open.Write([]byte{connPeer})
	pc := &peerConn{c: open, r: bufio.NewReader(open), maxEntry: 1 << 20}
	if _, err := pc.status(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.RemoveServer(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if _, err := peerStatusOver(l.RaftAddr(), cfg); err == nil {
		t.Fatalf("removed member %s still gets answers", victim)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := pc.status(); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the open connection of removed member %s was not closed", victim)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTLSRaftPortRotation(t *testing.T) {
	c, b, rl := tlsCluster(t)
	l := c.leader(10 * time.Second)
	cfg := clientTLS(t, b.Nodes["n4"]) // any node of the CA may complete a handshake
	serial := func() string {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", l.RaftAddr(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	if err := b.RenewNode(l.ID()); err != nil {
		t.Fatal(err)
	}
	if err := rl[l.ID()].Reload(); err != nil {
		t.Fatal(err)
	}
	if after := serial(); after == before {
		t.Fatal("the Raft port still presents the old certificate after a reload")
	}
	// The group goes on over the renewed certificate.
	for _, id := range c.ids {
		if id != l.ID() {
			c.kill(id)
			c.start(id)
			break
		}
	}
	if _, ok := c.propose(context.Background(), "after-rotation"); !ok {
		t.Fatal("the group stopped after the rotation")
	}
	c.waitConverged(10 * time.Second)
}

// TestTLSStalledStrangersDoNotLockOutMembers: connections that stall
// before the handshake (no credentials needed) must not hold the Raft
// port's handshake slots against the members: a member connecting after
// maxHandshakes of them is served.
func TestTLSStalledStrangersDoNotLockOutMembers(t *testing.T) {
	c, b, _ := tlsCluster(t)
	l := c.leader(10 * time.Second)
	for range maxHandshakes + 8 {
		raw, err := net.Dial("tcp", l.RaftAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
	}
	time.Sleep(300 * time.Millisecond) // accepted, handshakes under way
	if _, err := peerStatusOver(l.RaftAddr(), clientTLS(t, b.Nodes["n2"])); err != nil {
		t.Fatalf("member n2 was locked out by %d stalled connections: %v", maxHandshakes+8, err)
	}
}
