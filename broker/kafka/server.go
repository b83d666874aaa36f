// Package kafka is the Kafka-protocol front-end of a broker: a TCP
// listener that decodes Kafka requests (with franz-go's kmsg) and answers
// them through the same service core as the HTTP API. Topics' queues are
// Kafka partitions, every partition's leader is the group's Raft leader,
// offsets are the queue offsets and the leader epoch is the Raft term.
// docs/kafka.md lists the keys, versions and what is not supported.
package kafka

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ledgermq/ledgermq/broker/service"
)

// Config configures a Server.
type Config struct {
	// MaxRequestBytes bounds one request frame (Kafka's
	// socket.request.max.bytes); a larger frame closes the connection.
	MaxRequestBytes int
	// ClusterID is what Metadata and DescribeCluster report.
	ClusterID string
	// IdleTimeout closes a connection that sends nothing for this long
	// (Kafka's connections.max.idle.ms); default 10 minutes.
	IdleTimeout time.Duration
	// MaxConns and MaxConnsPerIP bound the connections served at once, in
	// all and per client address; a connection over either is closed at
	// once (0: no bound).
	MaxConns, MaxConnsPerIP int
	// TLS tells that the listener speaks TLS (followers then do not
	// forward InitProducerId to the leader: forward.go).
	TLS    bool
	Logger *slog.Logger
}

// Server serves the Kafka protocol over a service core.
type Server struct {
	cfg    Config
	svc    *service.Service
	logger *slog.Logger
	groups *coordinator
	bufs   bufPool

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	perIP  map[string]int
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}
}

// New returns a server over svc; Serve starts it, Close stops it.
func New(cfg Config, svc *service.Service) *Server {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 100 << 20
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = "ledgermq"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, svc: svc, logger: cfg.Logger.With("listener", "kafka"), conns: map[net.Conn]struct{}{}, perIP: map[string]int{},
		stop: make(chan struct{})}
	s.groups = newCoordinator(svc, s.logger, s.stop)
	return s
}

// Serve accepts connections on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.groups.run()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-s.stop:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("kafka: accept: %w", err)
		}
		delay = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		ip := remoteIP(c)
		if (s.cfg.MaxConns > 0 && len(s.conns) >= s.cfg.MaxConns) || (s.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnsPerIP) {
			n := len(s.conns)
			s.mu.Unlock()
			s.logger.Warn("kafka connection refused: too many connections", "remote", c.RemoteAddr().String(),
				"conns", n, "max_conns", s.cfg.MaxConns, "max_conns_per_ip", s.cfg.MaxConnsPerIP)
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.perIP[ip]++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}()
	}
}

func remoteIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// Close stops accepting, closes every connection and waits for their
// goroutines and the group coordinator's.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// conn is one client connection's state.
type conn struct {
	s        *Server
	c        net.Conn
	remote   string
	ctx      context.Context // carries the identity once authenticated
	authed   bool
	saslMech string
	token    string // the SASL/PLAIN token it authenticated with, for forwarding
	buf      []byte
	arena    []byte // a Fetch's records, from the server's pool until written
}

// bufPool recycles answer buffers: on a VM, memory freshly taken from the
// host costs more than the bytes copied into it (docs/benchmarks.md).
type bufPool struct{ p sync.Pool }

const maxPooled = 64 << 20

// get returns an empty buffer of at least n bytes' capacity.
func (b *bufPool) get(n int) []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		if cap(*v) >= n {
			return (*v)[:0]
		}
	}
	return make([]byte, 0, max(n, 4096))
}

func (b *bufPool) put(buf []byte) {
	if cap(buf) > 0 && cap(buf) <= maxPooled {
		b.p.Put(&buf)
	}
}

func (s *Server) serveConn(nc net.Conn) {
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // a closing server ends long polls at once
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	c := &conn{s: s, c: nc, remote: nc.RemoteAddr().String(), ctx: ctx}
	if tc, ok := nc.(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.HandshakeContext(ctx); err != nil {
			s.logger.Debug("kafka TLS handshake failed", "remote", c.remote, "err", err)
			return
		}
		tc.SetDeadline(time.Time{})
	}
	if !s.svc.AuthEnabled() {
		id, _ := s.svc.Authenticate("", "", c.remote)
		c.ctx, c.authed = service.WithIdentity(ctx, id), true
	} else if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		if len(st.VerifiedChains) > 0 && len(st.VerifiedChains[0]) > 0 {
			id, err := s.svc.Authenticate("", st.VerifiedChains[0][0].Subject.CommonName, c.remote)
			if err == nil {
				c.ctx, c.authed = service.WithIdentity(ctx, id), true
			}
		}
	}
	for {
		if err := c.serveOne(); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logger.Debug("kafka connection closed", "remote", c.remote, "err", err)
			}
			return
		}
	}
}

// request is one decoded request.
type request struct {
	key, version int16
	correlation  int32
	clientID     string
	body         kmsg.Request
}

// serveOne reads one request, answers it and writes the answer. Requests
// of one connection are answered in order, one at a time, as Kafka
// requires; clients pipeline over several connections.
func (c *conn) serveOne() error {
	var size [4]byte
	c.c.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
	if _, err := io.ReadFull(c.c, size[:]); err != nil {
		return err
	}
	n := int(int32(binary.BigEndian.Uint32(size[:])))
	if n < 8 || n > c.s.cfg.MaxRequestBytes {
		return fmt.Errorf("request frame of %d bytes (limit %d)", n, c.s.cfg.MaxRequestBytes)
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	frame := c.buf[:n]
	c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c.c, frame); err != nil {
		return err
	}
	req, err := parseRequest(frame)
	if err != nil {
		return err
	}
	if n > 1<<20 {
		c.buf = nil // a large frame's buffer is not kept for the connection's life
	}
	c.arena = c.s.bufs.get(0)
	defer func() {
		c.s.bufs.put(c.arena)
		c.arena = nil
	}()
	resp, err := c.handle(req)
	if err != nil {
		return err
	}
	if resp == nil { // nothing to answer (Produce with acks=0)
		return nil
	}
	return c.write(req, resp, len(c.arena))
}

// parseRequest decodes a request header (v1, or v2 for flexible versions)
// and body.
func parseRequest(b []byte) (*request, error) {
	r := &request{key: int16(binary.BigEndian.Uint16(b)), version: int16(binary.BigEndian.Uint16(b[2:])),
		correlation: int32(binary.BigEndian.Uint32(b[4:]))}
	b = b[8:]
	if len(b) < 2 {
		return nil, errors.New("short request header")
	}
	idLen := int(int16(binary.BigEndian.Uint16(b)))
	b = b[2:]
	if idLen > 0 {
		if idLen > len(b) {
			return nil, errors.New("client id beyond the request")
		}
		r.clientID = string(b[:idLen])
		b = b[idLen:]
	}
	if r.key == apiVersionsKey && r.version > supported[apiVersionsKey][1] {
		// Newer than ours: answered in v0 with UNSUPPORTED_VERSION and
		// our versions, whatever the body holds, so the client downgrades.
		return r, nil
	}
	body := kmsg.RequestForKey(r.key)
	if body == nil {
		return r, nil // unknown key: answered by closing (see handle)
	}
	body.SetVersion(r.version)
	if body.IsFlexible() { // request header v2: tagged fields after the client id
		var err error
		if b, err = skipTags(b); err != nil {
			return nil, err
		}
	}
	if err := body.ReadFrom(b); err != nil {
		if r.key == apiVersionsKey {
			// An ApiVersions of a version we cannot parse is answered
			// with v0 and UNSUPPORTED_VERSION, so the client downgrades.
			r.body = nil
			return r, nil
		}
		return nil, fmt.Errorf("decoding %s v%d: %w", kmsg.NameForKey(r.key), r.version, err)
	}
	r.body = body
	return r, nil
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[l:]
	for i := uint64(0); i < n; i++ {
		if _, l = binary.Uvarint(b); l <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[l:]
		size, l := binary.Uvarint(b)
		if l <= 0 || size > uint64(len(b)-l) {
			return nil, errors.New("bad tag size")
		}
		b = b[l+int(size):]
	}
	return b, nil
}

// write sends a response: header v0 (correlation id) or v1 (plus tagged
// fields) for flexible versions other than ApiVersions.
func (c *conn) write(req *request, resp kmsg.Response, records int) error {
	out := c.s.bufs.get(records + 64<<10)[:8]
	defer func() { c.s.bufs.put(out) }()
	binary.BigEndian.PutUint32(out[4:], uint32(req.correlation))
	if resp.IsFlexible() && req.key != apiVersionsKey {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	c.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := c.c.Write(out)
	return err
}
