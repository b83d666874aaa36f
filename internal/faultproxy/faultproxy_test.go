package faultproxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// echo is a real TCP echo server on 127.0.0.1 that counts what it sees.
type echo struct {
	ln       net.Listener
	accepts  atomic.Int32
	received atomic.Int64
	ends     atomic.Int32 // connections that ended with EOF or an error
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func newEcho(t *testing.T) *echo {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.accepts.Add(1)
			e.mu.Lock()
			e.conns = append(e.conns, c)
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						e.received.Add(int64(n))
						if _, werr := c.Write(buf[:n]); werr != nil {
							e.ends.Add(1)
							return
						}
					}
					if err != nil {
						e.ends.Add(1)
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		e.mu.Lock()
		for _, c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	lv := slog.LevelWarn
	if testing.Verbose() {
		lv = slog.LevelDebug
	}
	p, err := New(Config{Target: target, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads it back within d.
func roundTrip(c net.Conn, msg string, d time.Duration) error {
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo mismatch: " + string(buf))
	}
	return nil
}

// silent checks that a read on c sees neither data, nor EOF, nor a reset
// within d: the read must time out.
func silent(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	var ne net.Error
	if n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read = %d bytes %q, %v; want a timeout with nothing", n, buf[:n], err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPassForwardsDataAndHalfClose(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	if err := roundTrip(c, "hello", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The FIN reaches the echo server, which closes; its FIN comes back.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read after half-close = %d, %v; want EOF", n, err)
	}
	waitFor(t, "the link to go", func() bool { return p.Conns() == 0 })
	if e.received.Load() != 5 {
		t.Fatalf("server received %d bytes", e.received.Load())
	}
}

func TestDelay(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	p.Delay(Both, 150*time.Millisecond)
	start := time.Now()
	if err := roundTrip(c, "slow", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("round trip with 150ms each way took %s", took)
	}
	// Latency, not a rate limit: ten chunks queued at once arrive about one
	// delay later, not ten.
	p.Delay(Up, 200*time.Millisecond)
	p.Delay(Down, 0)
	start = time.Now()
	for range 10 {
		if _, err := c.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // separate chunks
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 900*time.Millisecond {
		t.Fatalf("ten delayed chunks took %s; want about 200ms", took)
	}
	p.Pass()
	start = time.Now()
	if err := roundTrip(c, "fast", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("round trip after Pass took %s", took)
	}
}

func TestBlackhole(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	old := dial(t, p.Addr())
	if err := roundTrip(old, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Blackhole(Both)

	// An open connection: writes succeed, nothing reaches the server,
	// nothing comes back, no reset.
	if _, err := old.Write([]byte("lost")); err != nil {
		t.Fatalf("write into a blackhole: %v", err)
	}
	silent(t, old, 300*time.Millisecond)
	if got := e.received.Load(); got != int64(len("before")) {
		t.Fatalf("server received %d bytes, want only the %d sent before", got, len("before"))
	}

	// A new connection is accepted, but the server never sees it.
	nc := dial(t, p.Addr())
	if _, err := nc.Write([]byte("hello?")); err != nil {
		t.Fatal(err)
	}
	silent(t, nc, 300*time.Millisecond)
	if e.accepts.Load() != 1 {
		t.Fatalf("server accepted %d connections during the blackhole", e.accepts.Load())
	}

	// A close vanishes too: the server sees no FIN.
	closer := dial(t, p.Addr())
	closer.Close()
	time.Sleep(100 * time.Millisecond) // nothing to poll for: absence
	if e.ends.Load() != 0 {
		t.Fatalf("server saw %d connection ends during the blackhole", e.ends.Load())
	}
	waitFor(t, "dropped bytes counted", func() bool { return p.Dropped() >= int64(len("lost")+len("hello?")) })

	// Pass: new connections flow; the ones that lost bytes stay dead.
	p.Pass()
	fresh := dial(t, p.Addr())
	if err := roundTrip(fresh, "after", 2*time.Second); err != nil {
		t.Fatalf("new connection after Pass: %v", err)
	}
	if _, err := old.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	silent(t, old, 200*time.Millisecond)
	silent(t, nc, 100*time.Millisecond)
}

func TestBlackholeNewConnFlowsAfterPassIfNothingLost(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	p.Blackhole(Both)
	c := dial(t, p.Addr()) // the "SYN" is held, no bytes sent
	time.Sleep(50 * time.Millisecond)
	if e.accepts.Load() != 0 {
		t.Fatal("server saw a connection during the blackhole")
	}
	p.Pass()
	if err := roundTrip(c, "late", 2*time.Second); err != nil {
		t.Fatalf("a connection that lost nothing should flow after Pass: %v", err)
	}
}

func TestOneWayCut(t *testing.T) {
	t.Run("up", func(t *testing.T) {
		e := newEcho(t)
		p := newProxy(t, e.ln.Addr().String())
		c := dial(t, p.Addr())
		if err := roundTrip(c, "x", 2*time.Second); err != nil {
			t.Fatal(err)
		}
		p.Blackhole(Up)
		if _, err := c.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
		silent(t, c, 300*time.Millisecond)
		if e.received.Load() != 1 {
			t.Fatalf("server received %d bytes through a cut up direction", e.received.Load())
		}
	})
	t.Run("down", func(t *testing.T) {
		e := newEcho(t)
		p := newProxy(t, e.ln.Addr().String())
		c := dial(t, p.Addr())
		if err := roundTrip(c, "x", 2*time.Second); err != nil {
			t.Fatal(err)
		}
		p.Blackhole(Down)
		if _, err := c.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
		// The server gets the request and answers; the answer vanishes.
		waitFor(t, "the server to receive the request", func() bool { return e.received.Load() == 8 })
		silent(t, c, 300*time.Millisecond)
		if fault, _, _ := p.Fault(Up); fault != Pass {
			t.Fatalf("up is %s, want pass", fault)
		}
	})
}

func TestStallHoldsAndResumes(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	if err := roundTrip(c, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Stall(Both)
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	silent(t, c, 300*time.Millisecond)
	if e.received.Load() != 1 {
		t.Fatal("the server received bytes during a stall")
	}
	p.Pass()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after the stall read %q, %v; want the held bytes", buf, err)
	}
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func TestReset(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	if err := roundTrip(c, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(make([]byte, 8)); n != 0 || !isReset(err) {
		t.Fatalf("read on a reset connection = %d, %v; want ECONNRESET", n, err)
	}
	waitFor(t, "the server to see the reset", func() bool { return e.ends.Load() == 1 })

	// New connections are reset while the mode lasts.
	expectReset(t, p.Addr())
	p.Pass()
	fresh := dial(t, p.Addr())
	if err := roundTrip(fresh, "back", 2*time.Second); err != nil {
		t.Fatalf("after Pass: %v", err)
	}
}

func TestDeadTargetResetsClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newProxy(t, addr)
	expectReset(t, p.Addr())
}

// expectReset dials addr and wants the connect or the first read to fail
// with ECONNRESET (which one depends on when the RST arrives).
func expectReset(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if !isReset(err) {
			t.Fatalf("dial %s: %v; want ECONNRESET", addr, err)
		}
		return
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(make([]byte, 8)); n != 0 || !isReset(err) {
		t.Fatalf("read from %s = %d, %v; want ECONNRESET", addr, n, err)
	}
}

// Close stops every goroutine, whatever state the links are in.
func TestCloseStopsEverything(t *testing.T) {
	e := newEcho(t)
	before := runtime.NumGoroutine()
	p, err := New(Config{Target: e.ln.Addr().String(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a := dial(t, p.Addr())
	if err := roundTrip(a, "a", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Blackhole(Both)
	b := dial(t, p.Addr())
	b.Write([]byte("b"))
	b.Close() // swallowed: its link holds until Close
	p.Stall(Up)
	dial(t, p.Addr())
	p.Delay(Down, time.Hour)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if p.Conns() != 0 {
		t.Fatalf("%d links after Close", p.Conns())
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("the listener still accepts after Close")
	}
	// The echo server's own goroutines for a's link end once it sees the
	// reset; give them a moment.
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}
