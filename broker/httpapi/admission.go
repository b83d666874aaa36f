package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/wire"
)

// Admission defaults (docs/api.md, "Admission and disk").
const (
	// DefaultMaxInflightBytes bounds the request bytes all requests being
	// served hold at once (Kafka's queued.max.request.bytes): 16 requests
	// of the default maximum size.
	DefaultMaxInflightBytes = 256 << 20
	// DefaultMaxInflightBytesPerClient bounds them per client address (all
	// of its connections together), so one client cannot take the whole
	// budget.
	DefaultMaxInflightBytesPerClient = 64 << 20
	// DefaultConcurrency bounds the connections served at once (fasthttp's
	// Concurrency; its own default is 256k).
	DefaultConcurrency = 4096
	// DefaultMaxConnsPerIP bounds the connections of one client address.
	DefaultMaxConnsPerIP = 256
)

// admission is the in-flight bytes budget: a request is charged its
// Content-Length (a chunked body: MaxRequestBytes) from before its body is
// read until its handler returns, and a large response (respond) from
// when it is built until it is written.
type admission struct {
	global, perClient int64
	mu                sync.Mutex
	used              int64
	byClient          map[string]int64
}

func newAdmission(global, perClient int64) *admission {
	return &admission{global: global, perClient: perClient, byClient: map[string]int64{}}
}

// acquire charges n bytes to client, or refuses when the global or the
// client's budget would be exceeded.
func (a *admission) acquire(client string, n int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.used+n > a.global || a.byClient[client]+n > a.perClient {
		return false
	}
	a.used += n
	a.byClient[client] += n
	return true
}

func (a *admission) release(client string, n int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used -= n
	if a.byClient[client] -= n; a.byClient[client] <= 0 {
		delete(a.byClient, client)
	}
}

// force charges n bytes to client even over the budgets: a response that
// is already built. Requests are refused until it is written.
func (a *admission) force(client string, n int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used += n
	a.byClient[client] += n
}

// room reports whether client may start a request that builds a large
// response: neither budget is used up.
func (a *admission) room(client string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used < a.global && a.byClient[client] < a.perClient
}

// minChargedResponse: response bodies from this size on are charged to
// the in-flight budget until written; smaller ones are not worth the
// bookkeeping.
const minChargedResponse = 64 << 10

// chargedBody is a response body charged to the in-flight budget until
// fasthttp has written it or dropped it (it closes a body stream then).
type chargedBody struct {
	*bytes.Reader
	once    sync.Once
	release func()
}

func (b *chargedBody) Close() error {
	b.once.Do(b.release)
	return nil
}

// respond sets body (the handler's own slice, not retained by the caller)
// as the response. A large one is charged to the client's in-flight
// budget until it is written, as Kafka's queued.max.request.bytes counts
// responses too: fetches answered and not yet sent hold memory that new
// requests must not also claim. It is also not copied into fasthttp's
// buffer.
func (s *Server) respond(ctx *fasthttp.RequestCtx, body []byte) {
	if len(body) < minChargedResponse {
		ctx.SetBody(body)
		return
	}
	client, n := ctx.RemoteIP().String(), int64(len(body))
	s.admit.force(client, n)
	ctx.SetBodyStream(&chargedBody{Reader: bytes.NewReader(body), release: func() { s.admit.release(client, n) }}, len(body))
}

// admitResponse refuses, with a retriable OVERLOADED, a request that would
// build a large response while the budget is used up.
func (s *Server) admitResponse(ctx *fasthttp.RequestCtx) error {
	if s.admit.room(ctx.RemoteIP().String()) {
		return nil
	}
	return service.Overloaded("the broker is over its in-flight budget (%d bytes, %d per client) with responses not yet sent: back off and retry",
		s.cfg.MaxInflightBytes, s.cfg.MaxInflightBytesPerClient)
}

// InflightBytes returns the request and response bytes charged to the
// in-flight budget now.
func (s *Server) InflightBytes() int64 { return s.admit.inflight() }

// inflight returns the bytes charged now (tests, metrics).
func (a *admission) inflight() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used
}

// growsLog lists the writes refused below the disk watermark: those that
// add data (produce, topics, producer ids, offsets). Membership changes,
// heartbeats and deletions stay allowed: they are small, and a deletion
// frees space.
var growsLog = map[string]bool{
	"POST produce": true, "POST produce_batch": true, "POST produce_parts": true, "POST topics": true, "POST producers": true,
	"POST group_commit": true, "POST group_reset": true,
}

// oversizeHeader marks, internally, a request whose Content-Length is over
// MaxRequestBytes (a client's own is removed).
const oversizeHeader = "X-Ledgermq-Internal-Oversize"

// headerReceived runs once a request's headers are read, before fasthttp
// pre-reads up to 8 KiB of a streamed body. A body announced over
// MaxRequestBytes is not to be read at all: its Content-Length is set to
// 0 so that fasthttp reads none of it, and serve refuses it.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	h.Del(oversizeHeader)
	if cl := h.ContentLength(); cl > s.cfg.MaxRequestBytes {
		h.Set(oversizeHeader, strconv.Itoa(cl))
		h.SetContentLength(0)
	}
	return fasthttp.RequestConfig{}
}

// serve is the server's handler: it recovers handler panics, sizes the
// request from its headers and admits it against the in-flight budget
// before reading its body (fasthttp streams bodies), checks the disk
// watermark for writes that grow the log, then routes it (handle).
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	var charge int64
	var client string
	defer func() {
		if charge > 0 {
			s.admit.release(client, charge)
		}
		if r := recover(); r != nil {
			s.recovered(ctx, r)
		}
	}()
	name := func() string {
		rt, _, _, label := s.routes.match(string(ctx.Method()), string(ctx.Path()))
		switch {
		case rt != nil:
			return rt.name
		case label != "":
			return label
		}
		return "unknown"
	}
	if ctx.Request.Header.Peek(oversizeHeader) != nil {
		// Refused from its Content-Length (headerReceived); the body is
		// unread, so the connection is closed.
		ctx.SetConnectionClose()
		s.requestError(ctx, fasthttp.ErrBodyTooLarge)
		return
	}
	cl := ctx.Request.Header.ContentLength()
	switch {
	case cl > 0:
		charge = int64(cl)
	case cl == -1: // chunked: its size is unknown until read
		charge = int64(s.cfg.MaxRequestBytes)
	}
	if charge > 0 {
		client = ctx.RemoteIP().String()
		if !s.admit.acquire(client, charge) {
			charge = 0
			ctx.SetConnectionClose() // the body stays unread
			s.writeError(ctx, service.Overloaded("the broker is over its in-flight request budget (%d bytes, %d per client); the request was not read or applied: back off and resend",
				s.cfg.MaxInflightBytes, s.cfg.MaxInflightBytesPerClient))
			s.reqs.observe(name(), ctx.Response.StatusCode(), wire.CodeOverloaded)
			return
		}
	}
	if ctx.Request.IsBodyStream() {
		if err := s.readBody(ctx, cl); err != nil {
			ctx.SetConnectionClose()
			s.requestError(ctx, err)
			return
		}
	}
	if string(ctx.Method()) == fasthttp.MethodPost && s.svc.Node().IsLeader() {
		if n := name(); growsLog["POST "+n] {
			if err := s.svc.RequireDiskSpace(); err != nil {
				ctx.Response.Header.Set(wire.NodeHeader, s.svc.NodeID())
				s.writeError(ctx, err)
				s.reqs.observe(n, ctx.Response.StatusCode(), wire.CodeDiskFull)
				return
			}
		}
	}
	s.handle(ctx)
}

// readBody reads a streamed body whole (at most MaxRequestBytes) into a
// buffer of its announced size, and sets it as the request's body.
func (s *Server) readBody(ctx *fasthttp.RequestCtx, cl int) error {
	buf := bytes.NewBuffer(make([]byte, 0, max(cl, 0)))
	limit := int64(s.cfg.MaxRequestBytes) + 1
	if _, err := io.Copy(buf, io.LimitReader(ctx.RequestBodyStream(), limit)); err != nil {
		return err
	}
	if buf.Len() > s.cfg.MaxRequestBytes {
		return fasthttp.ErrBodyTooLarge
	}
	ctx.Request.SetBodyRaw(buf.Bytes())
	return nil
}

// recovered answers a request whose handler panicked: 500 INTERNAL with
// an unknown outcome, the stack logged; the connection is closed (the
// handler may have left it in any state). The process lives on.
func (s *Server) recovered(ctx *fasthttp.RequestCtx, r any) {
	s.logger.Error("http handler panicked", "panic", fmt.Sprint(r), "method", string(ctx.Method()),
		"path", string(ctx.Path()), "stack", string(debug.Stack()))
	ctx.Response.Reset()
	ctx.SetConnectionClose()
	e := service.Errorf(wire.CodeInternal, "internal error: the request handler failed; the outcome is unknown")
	e.NotApplied = false
	s.writeError(ctx, e)
	s.reqs.observe("unknown", ctx.Response.StatusCode(), wire.CodeInternal)
}
