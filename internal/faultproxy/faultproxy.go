// Package faultproxy is a TCP proxy for fault tests: one listener, one
// target address, and a fault that can be switched at run time, per
// direction where that matters. Up is the direction client → target, Down
// is target → client. What each fault does to TCP, as the two peers see
// it:
//
//   - Pass: bytes, half-closes (FIN) and resets (RST) are forwarded as they
//     come.
//   - Delay(d): every chunk read is written d after it arrived; order is
//     kept and throughput is not capped by the delay (a queue per
//     direction, not a sleep per chunk).
//   - Blackhole: packets vanish, as with a powered-off host or a dropped
//     route. The proxy keeps every connection open, reads and discards
//     what arrives in the cut direction and sends nothing: no data, no FIN,
//     no RST. A peer's read times out; its writes succeed (the proxy's
//     kernel acknowledges them). New connections are accepted but nothing
//     flows; a connection accepted while Up is cut does not reach the
//     target until Up passes again (a SYN that is retried), unless bytes
//     of it were discarded first. Both directions blackholed is a full
//     blackhole; one is a one-way cut.
//   - Stall: the proxy stops reading in that direction (the sender's socket
//     buffers fill and its writes block) and resumes where it stopped when
//     the fault ends: a short outage that TCP's retransmissions survive.
//   - Reset: every connection is closed with RST (SO_LINGER 0) on both
//     sides, and new connections are accepted and reset at once (the
//     client's connect, or its first read or write, fails with ECONNRESET)
//     until another fault is set.
//
// After a blackhole, a connection on which bytes (or a FIN) were discarded
// stays dead in that direction for good: the proxy goes on discarding, so a
// peer never sees a stream with a hole in it. This is what real TCP looks
// like after an outage longer than its retransmissions (minutes); after a
// short real outage the connection would survive, which is what Stall
// models. Applications notice a dead connection only through their own
// timeouts (hashicorp/raft's NetworkTransport: its IO timeout), exactly as
// with a real dead peer. Connections opened after the fault ends flow.
//
// A Proxy owns all its goroutines; Close stops them and closes every
// connection. Its methods are safe for concurrent use.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction names one or both directions of the proxied connections.
type Direction uint8

// The directions.
const (
	Up   Direction = 1 << iota // client → target
	Down                       // target → client
	Both = Up | Down
)

func (d Direction) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Fault is what happens to one direction.
type Fault uint8

// The faults of one direction; see the package comment.
const (
	Pass Fault = iota
	Delay
	Stall
	Blackhole
)

func (f Fault) String() string {
	switch f {
	case Pass:
		return "pass"
	case Delay:
		return "delay"
	case Stall:
		return "stall"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("Fault(%d)", uint8(f))
}

// Config configures a Proxy.
type Config struct {
	Listen string // address to listen on; "" means 127.0.0.1:0
	Target string // address every connection is forwarded to
	Name   string // for logs; "" means the listen address
	// DialTimeout bounds the dial of the target. Default 5s.
	DialTimeout time.Duration
	Logger      *slog.Logger // default slog.Default()
}

// dirState is the fault of one direction.
type dirState struct {
	fault Fault
	delay time.Duration
}

// Proxy forwards the connections accepted on its listener to its target.
type Proxy struct {
	cfg  Config
	ln   net.Listener
	log  *slog.Logger
	done chan struct{}
	wg   sync.WaitGroup

	dropped atomic.Int64 // bytes discarded by blackholes

	mu      sync.Mutex
	dirs    [2]dirState // indexed by dirIndex
	reset   bool
	changed chan struct{} // closed and replaced at every change of fault
	links   map[*link]struct{}
	nextID  uint64
	closed  bool
}

// New listens and starts forwarding, every direction passing.
func New(cfg Config) (*Proxy, error) {
	if cfg.Target == "" {
		return nil, errors.New("faultproxy: empty target address")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen on %s: %w", cfg.Listen, err)
	}
	if cfg.Name == "" {
		cfg.Name = ln.Addr().String()
	}
	p := &Proxy{
		cfg: cfg, ln: ln, done: make(chan struct{}),
		log:     cfg.Logger.With("proxy", cfg.Name, "target", cfg.Target),
		changed: make(chan struct{}),
		links:   map[*link]struct{}{},
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address connections are forwarded to.
func (p *Proxy) Target() string { return p.cfg.Target }

// Name returns the proxy's name in logs.
func (p *Proxy) Name() string { return p.cfg.Name }

// Dropped returns how many bytes blackholes have discarded so far.
func (p *Proxy) Dropped() int64 { return p.dropped.Load() }

// Conns returns the number of open proxied connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Pass lets both directions flow again and ends a Reset. Connections dead
// from a blackhole stay dead (see the package comment).
func (p *Proxy) Pass() { p.set(Both, dirState{fault: Pass}) }

// Delay adds latency d to every chunk in the given directions; d <= 0 is
// Pass.
func (p *Proxy) Delay(dir Direction, d time.Duration) {
	if d <= 0 {
		p.set(dir, dirState{fault: Pass})
		return
	}
	p.set(dir, dirState{fault: Delay, delay: d})
}

// Blackhole makes the given directions discard everything silently.
func (p *Proxy) Blackhole(dir Direction) { p.set(dir, dirState{fault: Blackhole}) }

// Stall stops reading in the given directions until another fault is set.
func (p *Proxy) Stall(dir Direction) { p.set(dir, dirState{fault: Stall}) }

// Reset closes every connection with RST and resets new ones until another
// fault is set.
func (p *Proxy) Reset() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.reset = true
	p.dirs = [2]dirState{}
	p.notifyLocked()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	p.log.Info("fault proxy: reset", "conns", len(links))
	for _, l := range links {
		l.abort()
	}
}

// Fault returns the current fault of one direction (Up or Down) and
// whether the proxy is resetting.
func (p *Proxy) Fault(dir Direction) (f Fault, delay time.Duration, resetting bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.dirs[dirIndex(dir)]
	return s.fault, s.delay, p.reset
}

func (p *Proxy) set(dir Direction, s dirState) {
	p.mu.Lock()
	if dir&Up != 0 {
		p.dirs[0] = s
	}
	if dir&Down != 0 {
		p.dirs[1] = s
	}
	p.reset = false
	p.notifyLocked()
	p.mu.Unlock()
	p.log.Info("fault proxy: set", "dir", dir.String(), "fault", s.fault.String(), "delay", s.delay)
}

func (p *Proxy) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// state returns direction dir's fault and a channel closed at the next
// change.
func (p *Proxy) state(dir Direction) (dirState, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dirs[dirIndex(dir)], p.changed
}

func dirIndex(dir Direction) int {
	if dir == Down {
		return 1
	}
	return 0
}

// Close stops the listener, closes every connection and waits for every
// goroutine of the proxy.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range links {
		l.abort()
	}
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("faultproxy %s: close: %w", p.cfg.Name, err)
	}
	return nil
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			p.log.Warn("fault proxy: accept", "err", err)
			select {
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		tc := c.(*net.TCPConn)
		p.mu.Lock()
		if p.closed || p.reset {
			resetting := p.reset
			p.mu.Unlock()
			if resetting {
				p.log.Debug("fault proxy: reset a new connection", "from", c.RemoteAddr().String())
			}
			rst(tc)
			continue
		}
		p.nextID++
		l := &link{p: p, id: p.nextID, client: tc, kill: make(chan struct{})}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go l.run()
	}
}

// rst closes c with an RST instead of a FIN.
func rst(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// chunk is what one read returned: bytes, or the error that ended the
// direction (io.EOF for a FIN).
type chunk struct {
	data []byte
	err  error
	at   time.Time
}

// link is one proxied connection.
type link struct {
	p      *Proxy
	id     uint64
	client *net.TCPConn

	kill     chan struct{} // closed by abort
	killOnce sync.Once

	mu        sync.Mutex
	server    *net.TCPConn   // nil until dialed
	dead      [2]bool        // bytes were discarded: the direction stays dropped
	swallowed bool           // a FIN or RST was discarded: never close quietly
	pumps     sync.WaitGroup // the three goroutines besides run
}

// abort closes both sockets with RST and stops the link's goroutines.
func (l *link) abort() {
	l.killOnce.Do(func() {
		close(l.kill)
		l.mu.Lock()
		s := l.server
		l.mu.Unlock()
		rst(l.client)
		if s != nil {
			rst(s)
		}
	})
}

func (l *link) run() {
	p := l.p
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	log := p.log.With("conn", l.id)
	log.Debug("fault proxy: accepted", "from", l.client.RemoteAddr().String())
	up := make(chan chunk, 16)
	l.pumps.Add(2)
	go l.read(Up, l.client, up)
	go l.writeUp(up, log)
	l.pumps.Wait()
	l.mu.Lock()
	swallowed := l.swallowed
	l.mu.Unlock()
	if swallowed {
		// A peer's FIN or RST vanished: the other peer must not learn of
		// the close from us. Hold the sockets until the proxy closes or
		// resets.
		<-l.kill
	}
	l.killOnce.Do(func() {
		close(l.kill)
		l.mu.Lock()
		s := l.server
		l.mu.Unlock()
		_ = l.client.Close()
		if s != nil {
			_ = s.Close()
		}
	})
	log.Debug("fault proxy: closed")
}

// read reads src into out until an error, not reading while dir stalls.
func (l *link) read(dir Direction, src *net.TCPConn, out chan<- chunk) {
	defer l.pumps.Done()
	buf := make([]byte, 32<<10)
	for {
		for {
			s, changed := l.p.state(dir)
			if s.fault != Stall || l.isDead(dir) {
				break
			}
			select {
			case <-changed:
			case <-l.kill:
				return
			}
		}
		n, err := src.Read(buf)
		var c chunk
		if n > 0 {
			c = chunk{data: append([]byte(nil), buf[:n]...), at: time.Now()}
			select {
			case out <- c:
			case <-l.kill:
				return
			}
		}
		if err != nil {
			select {
			case out <- chunk{err: err, at: time.Now()}:
			case <-l.kill:
			}
			return
		}
	}
}

func (l *link) isDead(dir Direction) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dead[dirIndex(dir)]
}

// action is what to do with a chunk.
type action int

const (
	deliver action = iota
	drop
	stop // the link is being killed
)

// decide waits as long as dir's fault says for a chunk that arrived at at
// and tells whether to deliver it. A drop marks the direction dead.
func (l *link) decide(dir Direction, at time.Time) action {
	for {
		s, changed := l.p.state(dir)
		if l.isDead(dir) || s.fault == Blackhole {
			l.mu.Lock()
			l.dead[dirIndex(dir)] = true
			l.mu.Unlock()
			return drop
		}
		var t *time.Timer
		var wait <-chan time.Time
		switch s.fault {
		case Pass:
			return deliver
		case Delay:
			d := time.Until(at.Add(s.delay))
			if d <= 0 {
				return deliver
			}
			t = time.NewTimer(d)
			wait = t.C
		}
		select { // Stall: wait for a change; Delay: for the time or a change
		case <-wait:
			return deliver
		case <-changed:
		case <-l.kill:
			if t != nil {
				t.Stop()
			}
			return stop
		}
		if t != nil {
			t.Stop()
		}
	}
}

// writeUp forwards the client's chunks to the target. It dials the target
// as soon as Up passes (at once, unless the connection arrived during a
// blackhole or stall of Up), discarding what a blackhole eats meanwhile,
// and then starts the Down direction.
func (l *link) writeUp(in <-chan chunk, log *slog.Logger) {
	defer l.pumps.Done()
	for dialed := false; !dialed; {
		s, changed := l.p.state(Up)
		if !l.isDead(Up) && (s.fault == Pass || s.fault == Delay) {
			if !l.dial(log) {
				return
			}
			break
		}
		select {
		case c := <-in:
			ok, end := l.admit(Up, c)
			if end {
				return
			}
			if !ok {
				continue
			}
			// Up passes now.
			if !l.dial(log) || !l.forward(c, l.server) {
				return
			}
			dialed = true
		case <-changed:
		case <-l.kill:
			return
		}
	}
	l.write(Up, in, l.server)
}

// dial connects to the target and starts the Down direction; on a failure
// it resets the client, as a refused connection would.
func (l *link) dial(log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), l.p.cfg.DialTimeout)
	defer cancel()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() { // ends when dial returns
		select {
		case <-l.kill:
			cancel()
		case <-stopped:
		}
	}()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", l.p.cfg.Target)
	if err != nil {
		log.Debug("fault proxy: dial target failed; resetting the client", "err", err)
		l.abort()
		return false
	}
	s := c.(*net.TCPConn)
	l.mu.Lock()
	l.server = s
	l.mu.Unlock()
	select {
	case <-l.kill: // aborted while dialing, before abort could see s
		rst(s)
		return false
	default:
	}
	down := make(chan chunk, 16)
	l.pumps.Add(2)
	go l.read(Down, s, down)
	go func() {
		defer l.pumps.Done()
		l.write(Down, down, l.client)
	}()
	return true
}

// admit applies dir's fault to chunk c: ok means deliver it now, end that
// the direction is over (the link is killed, or its end was discarded).
func (l *link) admit(dir Direction, c chunk) (ok, end bool) {
	switch l.decide(dir, c.at) {
	case stop:
		return false, true
	case drop:
		l.p.dropped.Add(int64(len(c.data)))
		if c.err != nil {
			l.mu.Lock()
			l.swallowed = true
			l.mu.Unlock()
		}
		return false, c.err != nil
	}
	return true, false
}

// write forwards the chunks of one direction to dst.
func (l *link) write(dir Direction, in <-chan chunk, dst *net.TCPConn) {
	for {
		select {
		case c := <-in:
			ok, end := l.admit(dir, c)
			if end {
				return
			}
			if ok && !l.forward(c, dst) {
				return
			}
		case <-l.kill:
			return
		}
	}
}

// forward delivers one chunk that decide allowed; false ends the
// direction.
func (l *link) forward(c chunk, dst *net.TCPConn) bool {
	if c.err == nil {
		if _, err := dst.Write(c.data); err != nil {
			l.abort() // the receiving peer is gone: reset the sender too
			return false
		}
		return true
	}
	if errors.Is(c.err, net.ErrClosed) {
		return false // our own close
	}
	var ne net.Error
	if errors.Is(c.err, io.EOF) {
		_ = dst.CloseWrite() // pass the FIN on
		return false
	}
	if errors.As(c.err, &ne) && ne.Timeout() {
		return false
	}
	l.abort() // RST or another failure: pass it on as RST
	return false
}
