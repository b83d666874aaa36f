package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/broker/console"
	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/wire"
)

// Config tunes the HTTP front-end.
type Config struct {
	MaxRequestBytes int           // bodies above it are refused from Content-Length [16 MiB]
	MaxWait         time.Duration // longest long poll; the server's timeouts allow for it [30s]
	// ReadTimeout bounds reading a request, from the connection's first
	// byte on [MaxWait + 30s].
	ReadTimeout time.Duration
	Logger      *slog.Logger

	// issue 11: admission and disk (admission.go; zero: the defaults)
	// MaxInflightBytes bounds the request bytes of all requests being
	// served; MaxInflightBytesPerClient those of one client address. Over
	// either, a request is refused with OVERLOADED before its body is
	// read. Each is at least MaxRequestBytes.
	MaxInflightBytes          int64         // [DefaultMaxInflightBytes]
	MaxInflightBytesPerClient int64         // [DefaultMaxInflightBytesPerClient]
	Concurrency               int           // connections served at once [DefaultConcurrency]
	MaxConnsPerIP             int           // connections of one client address [DefaultMaxConnsPerIP]
	IdleTimeout               time.Duration // a keep-alive connection's idle limit [2m]

	// ForwardTLS, when the API speaks HTTPS, verifies the leader's API
	// certificate when a request is forwarded to it (forward.go); nil:
	// forward over HTTP.
	ForwardTLS *tls.Config
}

// Server serves the HTTP API over a service.
type Server struct {
	cfg    Config
	svc    *service.Service
	logger *slog.Logger
	srv    *fasthttp.Server
	routes *router
	reqs   *requestCounter
	admit  *admission
	fwd    *fasthttp.Client // forwards requests to the leader (forward.go)
	con    *console.Console // the web console at /ui
}

// New returns a server; Serve starts it.
func New(cfg Config, svc *service.Service) *Server {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 16 << 20
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = cfg.MaxWait + 30*time.Second
	}
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if cfg.MaxInflightBytesPerClient <= 0 {
		cfg.MaxInflightBytesPerClient = DefaultMaxInflightBytesPerClient
	}
	cfg.MaxInflightBytes = max(cfg.MaxInflightBytes, int64(cfg.MaxRequestBytes))
	cfg.MaxInflightBytesPerClient = max(cfg.MaxInflightBytesPerClient, int64(cfg.MaxRequestBytes))
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxConnsPerIP <= 0 {
		cfg.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	s := &Server{cfg: cfg, svc: svc, logger: cfg.Logger, reqs: newRequestCounter(),
		admit: newAdmission(cfg.MaxInflightBytes, cfg.MaxInflightBytesPerClient), fwd: newForwardClient(cfg.ForwardTLS), con: console.New()}
	s.routes = newRouter(s.table())
	s.srv = &fasthttp.Server{
		Handler:            s.serve, // admission, panic recovery, then handle
		Name:               "ledgermq",
		MaxRequestBodySize: cfg.MaxRequestBytes,
		// Bodies are streamed so that serve admits a request from its
		// headers before its body is read (fasthttp pre-reads at most
		// 8 KiB; none of a body over MaxRequestBytes: headerReceived); no
		// multipart pre-parsing, which would read it first.
		StreamRequestBody:            true,
		HeaderReceived:               s.headerReceived,
		DisablePreParseMultipartForm: true,
		Concurrency:                  cfg.Concurrency,
		MaxConnsPerIP:                cfg.MaxConnsPerIP,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.MaxWait + 30*time.Second,
		IdleTimeout:                  cfg.IdleTimeout,
		NoDefaultServerHeader:        true,
		Logger:                       fasthttpLogger{cfg.Logger},
		ErrorHandler:                 s.requestError,
	}
	return s
}

// Serve serves ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); err != nil {
		return fmt.Errorf("httpapi: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections and waits (within ctx) for
// requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.fwd.CloseIdleConnections()
	return s.srv.ShutdownWithContext(ctx)
}

// requestError answers requests fasthttp could not read, above all bodies
// over MaxRequestBytes, which are refused from their Content-Length before
// being read.
func (s *Server) requestError(ctx *fasthttp.RequestCtx, err error) {
	// A read that timed out gets no answer: the connection is closed. The
	// usual case is a connection a client opened and never used (Go's
	// http.Transport pools a connection whose request was cancelled while
	// it dialed): an answer there arrives on what the client holds for an
	// idle connection ("unsolicited response"), and a half-sent request
	// has nobody waiting for an answer either.
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		ctx.Conn().Close()
		return
	}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		s.writeError(ctx, service.Errorf(wire.CodeRequestTooLarge, "request body exceeds the limit of %d bytes", s.cfg.MaxRequestBytes))
	} else {
		s.writeError(ctx, service.Errorf(wire.CodeInvalidArgument, "malformed request: %v", err))
	}
	s.reqs.observe("unreadable", ctx.Response.StatusCode(), string(ctx.Response.Header.Peek("X-Error-Code")))
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn(fmt.Sprintf(format, args...), "component", "http")
}
