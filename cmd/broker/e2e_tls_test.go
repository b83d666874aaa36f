package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/internal/cluster"
	"github.com/ledgermq/ledgermq/internal/devcerts"
	"github.com/ledgermq/ledgermq/internal/tlsfiles"
	"github.com/ledgermq/ledgermq/wire"
)

// tlsGroup starts n broker processes with TLS on the API and the Raft port
// (certificates from one dev CA) and waits for a leader.
func tlsGroup(t *testing.T, n int) (*cluster.Group, *devcerts.Bundle) {
	t.Helper()
	var ids []string
	for i := range n + 1 { // one more: a node of the CA that is no member
		ids = append(ids, fmt.Sprintf("n%d", i+1))
	}
	b, err := devcerts.WriteBundle(t.TempDir(), ids, []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, cluster.Options{Bin: binary(t, "broker"), Nodes: n, Dir: t.TempDir(), LogLevel: logLevel(), TLS: b})
	waitUntil(t, 15*time.Second, "a leader over TLS", func() bool { return c.Leader(context.Background()) != "" })
	return c, b
}

// httpsEverywhere is an http.Client for the SDK until it has WithTLS: the
// brokers' leader hints are host:port, which the SDK turns into http://
// URLs; this transport sends every request over TLS with cfg.
func httpsEverywhere(cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 16}
	return &http.Client{Timeout: 10 * time.Second, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Scheme = "https"
		return tr.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func status(t *testing.T, c *cluster.Group, id string) wire.ClusterStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cs, err := c.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestTLSGroupFailsOverWithSDK(t *testing.T) {
	c, _ := tlsGroup(t, 3)
	hc := httpsEverywhere(c.TLSConfig())
	leader := c.Leader(context.Background())

	// Plain HTTP to the API gets no API answer.
	if resp, err := http.Get("http://" + c.API(leader) + "/v1/cluster"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP got an API answer: %s", body)
		}
	}
	createTopic(t, c, hc, "tls", 2)
	waitUntil(t, 10*time.Second, "every node to know the topic", func() bool {
		for _, id := range c.IDs() {
			resp, err := hc.Get(c.URL(id) + "/v1/topics/tls")
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	})

	p, err := client.NewProducer(c.APIs(), client.WithHTTPClient(hc), client.WithIdempotence(true), client.WithDeliveryTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 3000
	var failed atomic.Int64
	done := make(chan struct{}, n)
	for i := range n {
		if i == n/3 {
			for range i { // the first third acknowledged, then SIGKILL the leader mid-stream
				<-done
			}
			c.Kill(leader)
		}
		p.ProduceAsync(&client.Message{Topic: "tls", Key: []byte(fmt.Sprintf("k%d", i%8)), Value: []byte(fmt.Sprintf("m%d", i))},
			func(_ client.Result, err error) {
				if err != nil && failed.Add(1) == 1 {
					t.Logf("first failure: %v", err)
				}
				done <- struct{}{}
			})
	}
	for range n - n/3 {
		<-done
	}
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d sends failed across the failover", f, n)
	}
	next := c.Leader(context.Background())
	if next == "" || next == leader {
		t.Fatalf("no new leader after SIGKILL of %s (now %q)", leader, next)
	}
	var total int
	for q := range 2 {
		var fr wire.FetchResponse
		resp, err := hc.Get(fmt.Sprintf("%s/v1/topics/tls/queues/%d/messages?offset=0&max_messages=10000", c.URL(next), q))
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&fr)
		resp.Body.Close()
		total += len(fr.Messages)
	}
	if total != n {
		t.Fatalf("read back %d messages, produced %d", total, n)
	}
}

// impostorStream dials the Raft port over TLS with a given certificate,
// for a raft.NetworkTransport that only sends.
type impostorStream struct {
	cfg  *tls.Config
	stop chan struct{}
}

func (s *impostorStream) Accept() (net.Conn, error) { <-s.stop; return nil, net.ErrClosed }
func (s *impostorStream) Close() error              { return nil }
func (s *impostorStream) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (s *impostorStream) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(a), s.cfg)
}

func nodeTLS(t *testing.T, f tlsfiles.Files) *tls.Config {
	r, err := tlsfiles.New(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.ClientConfig(func(*x509.Certificate) error { return nil })
}

func TestTLSRaftPortRefusesStrangersAndImpostors(t *testing.T) {
	c, b := tlsGroup(t, 3)
	leader := c.Leader(context.Background())
	before := status(t, c, leader)
	var raftAddr, n2Addr, impostor string
	for _, n := range c.Nodes() {
		if n.ID == leader {
			raftAddr = n.Raft
		} else if impostor == "" {
			impostor = n.ID
		} else {
			n2Addr = n.Raft // the node the impostor claims to be
		}
	}
	claimed := ""
	for _, n := range c.Nodes() {
		if n.Raft == n2Addr {
			claimed = n.ID
		}
	}

	// Plain TCP sending what raft would: no byte of Raft comes back.
	raw, err := net.Dial("tcp", raftAddr)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte{0x01, 0x85, 0xa4, 'T', 'e', 'r', 'm', 0xcd, 0xff, 0xff})
	raw.SetReadDeadline(time.Now().Add(7 * time.Second))
	got, _ := io.ReadAll(raw)
	raw.Close()
	if len(got) > 0 && got[0] != 0x15 {
		t.Fatalf("plain TCP got %d bytes that are not a TLS alert: %x", len(got), got)
	}
	// Another CA's certificate for a member id: the handshake fails.
	other, err := devcerts.WriteBundle(t.TempDir(), []string{impostor}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tc, err := tls.Dial("tcp", raftAddr, nodeTLS(t, other.Nodes[impostor])); err == nil {
		tc.Write([]byte{0xA7})
		tc.SetReadDeadline(time.Now().Add(3 * time.Second))
		if n, _ := tc.Read(make([]byte, 64)); n > 0 {
			t.Fatal("a node of another CA got bytes from the Raft port")
		}
		tc.Close()
	}

	// A member's certificate claiming another member in RequestVote and
	// AppendEntries: refused.
	s := &impostorStream{cfg: nodeTLS(t, b.Nodes[impostor]), stop: make(chan struct{})}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: s, MaxPool: 1, Timeout: 3 * time.Second})
	defer func() { close(s.stop); tr.Close() }()
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(claimed), Addr: []byte(n2Addr)}
	var vr raft.RequestVoteResponse
	if err := tr.RequestVote(raft.ServerID(leader), raft.ServerAddress(raftAddr), &raft.RequestVoteRequest{RPCHeader: hdr,
		Term: before.Term + 10, LastLogIndex: 1 << 40, LastLogTerm: before.Term + 5, LeadershipTransfer: true}, &vr); err == nil || vr.Granted {
		t.Fatalf("%s's certificate voting as %s was not refused (err %v)", impostor, claimed, err)
	}
	var ar raft.AppendEntriesResponse
	if err := tr.AppendEntries(raft.ServerID(leader), raft.ServerAddress(raftAddr), &raft.AppendEntriesRequest{RPCHeader: hdr,
		Term: before.Term + 10, Leader: []byte(n2Addr)}, &ar); err == nil {
		t.Fatalf("%s's certificate sending AppendEntries as %s was not refused", impostor, claimed)
	}

	time.Sleep(500 * time.Millisecond)
	after := status(t, c, leader)
	if after.Term != before.Term || after.Leader != before.Leader {
		t.Fatalf("term or leader changed: before %d/%s, after %d/%s", before.Term, before.Leader, after.Term, after.Leader)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}

// serial returns the serial number of the certificate addr presents.
func serial(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	return tc.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestTLSRotationWithoutRestart(t *testing.T) {
	c, b := tlsGroup(t, 3)
	leader := c.Leader(context.Background())
	var raftAddr string
	for _, n := range c.Nodes() {
		if n.ID == leader {
			raftAddr = n.Raft
		}
	}
	api := c.TLSConfig()
	api.ServerName = "127.0.0.1"
	peer := nodeTLS(t, b.Nodes["n4"])
	apiBefore, raftBefore, pid := serial(t, c.API(leader), api), serial(t, raftAddr, peer), c.Pid(leader)

	if err := b.RenewNode(leader); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the renewed certificate on the API and the Raft port", func() bool {
		return serial(t, c.API(leader), api) != apiBefore && serial(t, raftAddr, peer) != raftBefore
	})
	if c.Pid(leader) != pid || c.Check() != nil {
		t.Fatal("the node restarted")
	}
	// The group goes on: followers reconnect to the renewed certificate.
	createTopic(t, c, httpsEverywhere(c.TLSConfig()), "after", 1)
}

// createTopic creates a topic over HTTPS on whichever node leads,
// retrying while a leader settles.
func createTopic(t *testing.T, c *cluster.Group, hc *http.Client, name string, queues int) {
	t.Helper()
	body, _ := json.Marshal(wire.CreateTopicRequest{Name: name, Queues: queues})
	waitUntil(t, 15*time.Second, "topic "+name+" created over HTTPS", func() bool {
		l := c.Leader(context.Background())
		if l == "" {
			return false
		}
		resp, err := hc.Post(c.URL(l)+"/v1/topics", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode/100 == 2
	})
}
