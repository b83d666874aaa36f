package httpapi

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/wire"
)

// Forwarding a write to the leader (docs/api.md 1.5). A client that
// cannot reach the leader itself (a browser on the console of a follower,
// whose page may only talk to the origin it came from; a tool behind a
// load balancer) asks for it with the header ForwardHeader: leader. A
// follower then sends a request that it would answer 421 NOT_LEADER to the
// leader it names, with the same method, path, query, body and bearer
// token, and answers with the leader's answer. The leader's node id is in
// the answer's LedgerMQ-Node header; ForwardedHeader marks the forwarded
// request, which is never forwarded again (a leader that has lost its
// role meanwhile answers 421 itself). Requests authenticated by a client
// certificate are not forwarded: the certificate cannot travel, and the
// follower's own must not stand in for it.

// ForwardHeader asks a follower to forward a leader's request.
const ForwardHeader = "LedgerMQ-Forward"

// ForwardedHeader marks a forwarded request with the forwarding node's id.
const ForwardedHeader = "LedgerMQ-Forwarded-By"

// forwardTimeout bounds a forwarded request: the slowest leader's request
// (a leadership transfer) waits up to 10 s.
const forwardTimeout = 15 * time.Second

// newForwardClient returns the client forwarding requests: HTTPS with tc
// (verifying the leader's certificate, presenting none), else HTTP.
func newForwardClient(tc *tls.Config) *fasthttp.Client {
	if tc != nil {
		tc = tc.Clone()
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &tls.Certificate{}, nil
		}
	}
	return &fasthttp.Client{
		Name:                "ledgermq-forward",
		TLSConfig:           tc,
		MaxConnsPerHost:     64,
		ReadTimeout:         forwardTimeout,
		WriteTimeout:        forwardTimeout,
		MaxIdleConnDuration: 30 * time.Second,
		Dial: func(addr string) (net.Conn, error) {
			return fasthttp.DialTimeout(addr, 3*time.Second)
		},
	}
}

// maybeForward forwards the request in ctx to the leader when err is a
// NOT_LEADER answer naming one and the client asked for forwarding. It
// reports whether it answered.
func (s *Server) maybeForward(ctx *fasthttp.RequestCtx, err error) bool {
	ae := s.svc.AsError(err)
	if ae.Code != wire.CodeNotLeader || ae.Leader == "" {
		return false
	}
	if string(ctx.Request.Header.Peek(ForwardHeader)) != "leader" || ctx.Request.Header.Peek(ForwardedHeader) != nil {
		return false
	}
	auth := ctx.Request.Header.Peek("Authorization")
	if s.svc.AuthEnabled() && len(auth) == 0 {
		return false
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	scheme := "http"
	if s.cfg.ForwardTLS != nil {
		scheme = "https"
	}
	req.Header.SetMethodBytes(ctx.Method())
	req.SetRequestURI(scheme + "://" + ae.Leader + string(ctx.URI().RequestURI()))
	req.Header.SetContentTypeBytes(ctx.Request.Header.ContentType())
	if len(auth) > 0 {
		req.Header.SetBytesV("Authorization", auth)
	}
	req.Header.Set(ForwardedHeader, s.svc.NodeID())
	req.SetBody(ctx.PostBody())
	if ferr := s.fwd.DoTimeout(req, resp, forwardTimeout); ferr != nil {
		s.logger.Warn("forward to the leader failed", "leader", ae.Leader, "path", string(ctx.Path()), "err", ferr)
		return false // the client gets the 421 and may go itself
	}
	ctx.SetStatusCode(resp.StatusCode())
	ctx.SetContentTypeBytes(resp.Header.ContentType())
	for _, h := range []string{wire.NodeHeader, "X-Error-Code", "WWW-Authenticate", "X-Next-Offset"} {
		if v := resp.Header.Peek(h); v != nil {
			ctx.Response.Header.SetBytesV(h, v)
		}
	}
	ctx.SetBody(resp.Body())
	return true
}
