package replication

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/commitlog"
)

const testMaxEntry = 1 << 20

// peerSource is a node's side of the peer protocol without the node: a
// commit log holding [first, last] served by peerServer on a Mux.
type peerSource struct {
	log  *commitlog.Log
	mux  *Mux
	addr string
}

func newPeerSource(t *testing.T, first, last uint64) *peerSource {
	t.Helper()
	l := newTestStore(t).log
	if err := l.Reset(first); err != nil {
		t.Fatal(err)
	}
	var ents []commitlog.Entry
	for i := first; i <= last; i++ {
		e := commitlog.Entry{Index: i, Term: 1 + i/40, Type: uint8(i % 3), Data: []byte(strings.Repeat(fmt.Sprint(i%10), int(i%50)))}
		if i%4 == 0 {
			e.Extensions, e.AppendedAt = []byte{byte(i)}, time.Unix(int64(i), 5).UTC()
		}
		ents = append(ents, e)
	}
	if err := l.Append(ents); err != nil {
		t.Fatal(err)
	}
	m, err := NewMux("127.0.0.1:0", nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ps := &peerServer{log: l, status: func() PeerStatus {
		return PeerStatus{ID: "src", Role: "follower", Term: 3, FirstIndex: l.FirstIndex(), LastIndex: l.LastIndex(), APIAddr: "api:1"}
	}}
	m.setPeerHandler(ps.serve)
	return &peerSource{log: l, mux: m, addr: m.Addr().String()}
}

// dial opens a peer-protocol connection to the source through a client
// Mux with dialer d (nil: TCP).
func (s *peerSource) dial(t *testing.T, d Dialer) *peerConn {
	t.Helper()
	if d == nil {
		d = DefaultDialer
	}
	pc, err := dialPeerConn(context.Background(), &Mux{dial: d}, s.addr, testMaxEntry)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func TestPeerFetchRanges(t *testing.T) {
	src := newPeerSource(t, 50, 150)
	pc := src.dial(t, nil) // every request on one connection
	tests := []struct {
		name     string
		from, to uint64
		maxBytes int
		want     [2]uint64 // first and last index returned; {0, 0}: none
	}{
		{"all", 50, 150, 1 << 20, [2]uint64{50, 150}},
		{"to caps the range", 60, 69, 1 << 20, [2]uint64{60, 69}},
		{"one entry", 150, 150, 1 << 20, [2]uint64{150, 150}},
		{"tiny budget still one", 60, 100, 1, [2]uint64{60, 60}},
		{"zero budget still one", 61, 100, 0, [2]uint64{61, 61}},
		// Frames of 70, 71, 72 are 40+20, 40+21 and 40+22+1 bytes.
		{"budget of three frames", 70, 150, 184, [2]uint64{70, 72}},
		{"budget a byte short of three", 70, 150, 183, [2]uint64{70, 71}},
		{"to beyond the log", 140, 1 << 40, 1 << 20, [2]uint64{140, 150}},
		{"before the first", 10, 60, 1 << 20, [2]uint64{}},
		{"first minus one", 49, 49, 1 << 20, [2]uint64{}},
		{"after the last", 151, 200, 1 << 20, [2]uint64{}},
		{"reversed", 100, 90, 1 << 20, [2]uint64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := pc.fetch(tc.from, tc.to, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			// The source always says what it holds, so a caller can tell
			// "not there" from "not yet".
			if res.First != 50 || res.Last != 150 {
				t.Fatalf("source bounds [%d, %d], want [50, 150]", res.First, res.Last)
			}
			var got [2]uint64
			if n := len(res.Entries); n > 0 {
				got = [2]uint64{res.Entries[0].Index, res.Entries[n-1].Index}
			}
			if got != tc.want {
				t.Fatalf("entries %v, want %v", got, tc.want)
			}
			for _, e := range res.Entries {
				local, err := src.log.Read(e.Index)
				if err != nil {
					t.Fatal(err)
				}
				if e.Term != local.Term || e.Type != local.Type || !bytes.Equal(e.Data, local.Data) ||
					!bytes.Equal(e.Extensions, local.Extensions) || !e.AppendedAt.Equal(local.AppendedAt) {
					t.Fatalf("entry %d copied as %+v, stored %+v", e.Index, e, local)
				}
			}
		})
	}
}

func TestPeerFetchEmptySource(t *testing.T) {
	src := newPeerSource(t, 7, 6)
	res, err := src.dial(t, nil).fetch(7, 10, 1<<20)
	if err != nil || len(res.Entries) != 0 || res.Last >= res.First {
		t.Fatalf("fetch from an empty log: %+v %v", res, err)
	}
}

func TestPeerStatusAndUnknownOp(t *testing.T) {
	src := newPeerSource(t, 1, 10)
	pc := src.dial(t, nil)
	st, err := pc.status()
	want := PeerStatus{ID: "src", Role: "follower", Term: 3, FirstIndex: 1, LastIndex: 10, APIAddr: "api:1"}
	if err != nil || st != want {
		t.Fatalf("status = %+v, %v; want %+v", st, err, want)
	}
	if err := pc.request(9, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	var status [1]byte
	if _, err := io.ReadFull(pc.r, status[:]); err != nil || status[0] != statusError {
		t.Fatalf("status of an unknown op: %v %v", status, err)
	}
	if _, err := pc.readBlob(status[0]); err == nil || err.Error() != "peer error: unknown op 9" {
		t.Fatalf("unknown op: %v", err)
	}
	// The connection still serves.
	if res, err := pc.fetch(3, 3, 1); err != nil || len(res.Entries) != 1 {
		t.Fatalf("fetch after an unknown op: %+v %v", res, err)
	}
}

// flipConn flips bits of one byte of what it reads, counted from the first
// byte read.
type flipConn struct {
	net.Conn
	mu  sync.Mutex
	pos int
	at  int
}

func (c *flipConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if i := c.at - c.pos; i >= 0 && i < n {
		p[i] ^= 0x10
	}
	c.pos += n
	c.mu.Unlock()
	return n, err
}

// TestPeerFetchVerifiesCRC: a byte damaged on the way from the source is
// caught by the frame's CRC; nothing of the damaged frame is returned.
func TestPeerFetchVerifiesCRC(t *testing.T) {
	src := newPeerSource(t, 1, 30)
	const resp = 1 + 20 // status and fetch header before the frames
	tests := []struct {
		name string
		at   int // offset in the response
	}{
		{"first frame's crc", resp},
		{"first frame's index", resp + 12},
		{"first frame's term", resp + 20},
		{"first frame's type", resp + 36},
		{"first frame's data", resp + 40},
		{"second frame's data", resp + 40 + 1 + 40}, // entry 1 holds one byte
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flip := func(ctx context.Context, addr string) (net.Conn, error) {
				c, err := DefaultDialer(ctx, addr)
				return &flipConn{Conn: c, at: tc.at}, err
			}
			res, err := src.dial(t, flip).fetch(1, 30, 1<<20)
			if !errors.Is(err, commitlog.ErrCorrupt) || len(res.Entries) != 0 {
				t.Fatalf("fetch through a damaging link: %d entries, %v; want ErrCorrupt", len(res.Entries), err)
			}
		})
	}
}

// TestPeerFetchHostileSource: the client refuses a response that does not
// answer its request, from a source that is buggy or not a LedgerMQ node.
func TestPeerFetchHostileSource(t *testing.T) {
	frame := func(index uint64, data string) []byte {
		return commitlog.EncodeEntry(nil, &commitlog.Entry{Index: index, Term: 1, Data: []byte(data)})
	}
	fetchHdr := func(count uint32) []byte {
		b := make([]byte, 21)
		binary.LittleEndian.PutUint64(b[1:], 1)
		binary.LittleEndian.PutUint64(b[9:], 100)
		binary.LittleEndian.PutUint32(b[17:], count)
		return b
	}
	blob := func(status byte, n uint32, msg string) []byte {
		b := []byte{status, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(b[1:], n)
		return append(b, msg...)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name     string
		from, to uint64
		resp     []byte
		want     string
	}{
		{"more entries than asked", 5, 6, fetchHdr(3), "peer sent 3 entries for 5..6"},
		{"wrong index", 5, 6, cat(fetchHdr(1), frame(7, "x")), "peer sent entry 7, expected 5"},
		{"second index repeats", 5, 6, cat(fetchHdr(2), frame(5, "x"), frame(5, "y")), "peer sent entry 5, expected 6"},
		{"frame over the entry limit", 5, 5, cat(fetchHdr(1), frame(5, strings.Repeat("z", 100))), "exceeds the maximum entry size"},
		{"cut inside a frame", 5, 5, cat(fetchHdr(1), frame(5, "abcdef")[:43]), "unexpected EOF"},
		{"cut after the status", 5, 5, []byte{statusOK}, "EOF"},
		{"error status", 5, 5, blob(statusError, 4, "boom"), "peer error: boom"},
		{"oversized error", 5, 5, blob(statusError, 2<<20, ""), "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			go func() {
				defer server.Close()
				req := make([]byte, peerReqSize)
				if _, err := io.ReadFull(server, req); err != nil {
					return
				}
				server.Write(tc.resp)
			}()
			pc := &peerConn{c: client, r: bufio.NewReader(client), maxEntry: 64}
			res, err := pc.fetch(tc.from, tc.to, 1<<20)
			if err == nil || !strings.Contains(err.Error(), tc.want) || len(res.Entries) != 0 {
				t.Fatalf("fetch = %d entries, %v; want an error with %q", len(res.Entries), err, tc.want)
			}
		})
	}
}

// acceptOne accepts one raft connection from m within a deadline.
func acceptOne(t *testing.T, m *Mux) net.Conn {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := m.Accept()
		if err == nil {
			got <- c
		}
		close(got)
	}()
	select {
	case c, ok := <-got:
		if !ok {
			t.Fatal("Accept failed")
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection handed to raft")
		return nil
	}
}

// TestMuxHandsOtherFirstBytesToRaft: every first byte but the peer
// protocol's goes to raft, and raft reads it back as sent.
func TestMuxHandsOtherFirstBytesToRaft(t *testing.T) {
	m, err := NewMux("127.0.0.1:0", nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var peerCalls atomic.Int32
	m.setPeerHandler(func(net.Conn) { peerCalls.Add(1) })
	for _, first := range []byte{0, 1, 4, 5, 0x42, connPeer - 1, connPeer + 1, 0xFF} {
		t.Run(fmt.Sprintf("0x%02x", first), func(t *testing.T) {
			c, err := net.Dial("tcp", m.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sent := []byte{first, 'r', 'p', 'c'}
			c.Write(sent)
			rc := acceptOne(t, m)
			defer rc.Close()
			// A one-byte read gets the replayed byte alone.
			one := make([]byte, 1)
			if n, err := rc.Read(one); n != 1 || err != nil || one[0] != first {
				t.Fatalf("first read: %d %v %x", n, err, one)
			}
			rest := make([]byte, 3)
			if _, err := io.ReadFull(rc, rest); err != nil || string(rest) != "rpc" {
				t.Fatalf("rest %q %v", rest, err)
			}
			// Raft answers on the same connection.
			rc.Write([]byte("ok"))
			reply := make([]byte, 2)
			if _, err := io.ReadFull(c, reply); err != nil || string(reply) != "ok" {
				t.Fatalf("reply %q %v", reply, err)
			}
		})
	}
	if n := peerCalls.Load(); n != 0 {
		t.Fatalf("the peer handler got %d raft connections", n)
	}
	// A whole message read at once starts with the replayed byte too.
	c, _ := net.Dial("tcp", m.Addr().String())
	defer c.Close()
	c.Write([]byte{3, 'a', 'b'})
	rc := acceptOne(t, m)
	defer rc.Close()
	buf, err := io.ReadAll(io.LimitReader(rc, 3))
	if err != nil || !bytes.Equal(buf, []byte{3, 'a', 'b'}) {
		t.Fatalf("read %v %v", buf, err)
	}
}

func TestMuxDropsWhatIsNotRaft(t *testing.T) {
	m, err := NewMux("127.0.0.1:0", nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// A connection that closes before its first byte, and a peer-protocol
	// connection before a handler is installed, are closed, not handed to
	// raft: the next raft connection is the first Accept returns.
	silent, _ := net.Dial("tcp", m.Addr().String())
	silent.Close()
	early, _ := net.Dial("tcp", m.Addr().String())
	defer early.Close()
	early.Write([]byte{connPeer, opStatus})
	early.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := early.Read(make([]byte, 8)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("peer connection without a handler: read %d, %v; want it closed", n, err)
	}
	rpc, _ := net.Dial("tcp", m.Addr().String())
	defer rpc.Close()
	rpc.Write([]byte{1})
	rc := acceptOne(t, m)
	defer rc.Close()
	if b, _ := io.ReadAll(io.LimitReader(rc, 1)); !bytes.Equal(b, []byte{1}) {
		t.Fatalf("Accept returned a connection starting %v", b)
	}
}

// TestMuxClose: Close ends Accept, closes connections raft has not taken
// and peer exchanges in progress, and may be called again.
func TestMuxClose(t *testing.T) {
	m, err := NewMux("127.0.0.1:0", nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	inPeer := make(chan struct{})
	m.setPeerHandler(func(c net.Conn) {
		close(inPeer)
		io.Copy(io.Discard, c) // until Close closes c
	})
	peer, _ := net.Dial("tcp", m.Addr().String())
	defer peer.Close()
	peer.Write([]byte{connPeer})
	<-inPeer
	pending, _ := net.Dial("tcp", m.Addr().String())
	defer pending.Close()
	pending.Write([]byte{2}) // raft's, never accepted
	waiting, _ := net.Dial("tcp", m.Addr().String())
	defer waiting.Close() // no first byte yet

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	for name, c := range map[string]net.Conn{"peer": peer, "pending raft": pending, "waiting": waiting} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s connection after Close: %v; want it closed", name, err)
		}
	}
	if c, err := m.Accept(); !errors.Is(err, net.ErrClosed) || c != nil {
		t.Fatalf("Accept after Close: %v %v", c, err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.Dial("tcp", m.Addr().String()); err == nil {
		t.Fatal("the listener still accepts after Close")
	}
}
