package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// conn is the HTTP transport the producer (and the consumer) share: it
// holds the broker list, remembers which broker leads, follows the
// leader named by 421 NOT_LEADER answers, and moves on to the next broker
// when one cannot be reached. It is safe for concurrent use.
//
// Writes go to the leader; reads go to the leader when it is known (its
// state is the newest) and otherwise to the brokers in turn. What is
// resent is the caller's choice (request.retry): only what was certainly
// not applied, anything retriable, or nothing beyond one pass over the
// brokers (the producer's batches, whose resends it orders itself).
type conn struct {
	brokers    []string // base URLs: scheme://host:port
	scheme     string   // of every broker, and so of leader hints, which are host:port
	token      string   // WithToken; "" for none
	hc         *http.Client
	ownHC      bool
	log        *slog.Logger
	reqTimeout time.Duration
	backoffMin time.Duration
	backoffMax time.Duration
	stallAfter time.Duration // see stall.go; 0 disables stall detection

	mu         sync.Mutex
	leader     string            // base URL of the believed leader; "" when unknown
	leaderTerm uint64            // newest term a broker named the leader in (stall.go)
	ids        map[string]string // base URL -> node id, from answers' LedgerMQ-Node header
	probe      *probeCall        // the shared leader probe (stall.go)
	next       int               // the broker to try next when no leader is known
	groupID    uint32
	hasGroup   bool
}

// connConfig is the configuration producers and consumers share.
type connConfig struct {
	logger         *slog.Logger
	httpClient     *http.Client
	requestTimeout time.Duration
	backoffMin     time.Duration
	backoffMax     time.Duration
	stallAfter     time.Duration
	useTLS         bool        // WithTLS
	tls            *tls.Config // WithTLS; nil: Go's defaults
	token          string      // WithToken
}

func defaultConnConfig() connConfig {
	return connConfig{
		logger:         slog.New(slog.DiscardHandler),
		requestTimeout: 15 * time.Second,
		backoffMin:     20 * time.Millisecond,
		backoffMax:     time.Second,
		stallAfter:     defaultStallAfter,
	}
}

func (c *connConfig) validate() error {
	switch {
	case c.logger == nil:
		return errors.New("WithLogger: nil logger")
	case c.requestTimeout <= 0:
		return fmt.Errorf("WithRequestTimeout: %v is not positive", c.requestTimeout)
	case c.backoffMin <= 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("WithRetryBackoff: want 0 < min <= max, got %v and %v", c.backoffMin, c.backoffMax)
	case c.stallAfter < 0:
		return fmt.Errorf("WithStallTimeout: %v is negative", c.stallAfter)
	case c.useTLS && c.httpClient != nil:
		return errors.New("WithTLS and WithHTTPClient exclude each other: give the TLS configuration to the HTTP client's transport")
	}
	return validToken(c.token)
}

// validToken checks that a WithToken token can travel in a header. It
// never repeats the token: errors are logged and printed.
func validToken(t string) error {
	for _, r := range t {
		if r <= ' ' || r >= 0x7f {
			return errors.New("WithToken: the token has a space, control or non-ASCII character")
		}
	}
	return nil
}

func newConn(brokers []string, cfg connConfig) (*conn, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &conn{hc: cfg.httpClient, log: cfg.logger, reqTimeout: cfg.requestTimeout,
		backoffMin: cfg.backoffMin, backoffMax: cfg.backoffMax, stallAfter: cfg.stallAfter, token: cfg.token}
	scheme, err := brokerScheme(brokers, cfg.useTLS)
	if err != nil {
		return nil, err
	}
	c.scheme = scheme
	for _, b := range brokers {
		base, err := normalizeBroker(b, scheme)
		if err != nil {
			return nil, err
		}
		c.brokers = append(c.brokers, base)
	}
	if len(c.brokers) == 0 {
		return nil, errors.New("no broker given")
	}
	if c.hc == nil {
		tr := &http.Transport{
			Proxy:               nil, // brokers are reached directly: leader hints are their addresses
			DialContext:         (&net.Dialer{Timeout: min(2*time.Second, cfg.requestTimeout), KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		}
		if scheme == "https" {
			// The same configuration for every broker, leader hints
			// included: its ServerName, if set, names them all; else each
			// broker's host is verified. HTTP/1.1, as without TLS.
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			if cfg.tls != nil {
				tr.TLSClientConfig = cfg.tls.Clone()
			}
		}
		c.hc = &http.Client{Transport: tr}
		c.ownHC = true
	}
	return c, nil
}

// brokerScheme is the scheme of every broker: https when TLS is asked for
// (WithTLS) or any address says https://, else http. Leader hints name
// host:port only, so one group is reached with one scheme.
func brokerScheme(brokers []string, useTLS bool) (string, error) {
	var plain, secure string
	for _, b := range brokers {
		switch s, _, _ := strings.Cut(strings.TrimSpace(b), "://"); strings.ToLower(s) {
		case "http":
			plain = b
		case "https":
			secure = b
		}
	}
	switch {
	case plain != "" && secure != "":
		return "", fmt.Errorf("brokers %q and %q: one group is reached with one scheme", plain, secure)
	case plain != "" && useTLS:
		return "", fmt.Errorf("broker %q: WithTLS needs https:// or host:port addresses", plain)
	case useTLS || secure != "":
		return "https", nil
	}
	return "http", nil
}

// normalizeBroker turns host:port or http(s)://host:port into a base URL;
// host:port takes scheme.
func normalizeBroker(s, scheme string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return "", fmt.Errorf("broker %q is not host:port or http(s)://host:port", s)
		}
		return u.Scheme + "://" + u.Host, nil
	}
	if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
		return "", fmt.Errorf("broker %q is not host:port or http(s)://host:port", s)
	}
	return scheme + "://" + s, nil
}

// close releases idle connections of a client the conn made itself.
func (c *conn) close() {
	if c.ownHC {
		c.hc.CloseIdleConnections()
	}
}

// retryMode says which failures conn.do resends.
type retryMode int

const (
	// retryOnce makes one pass: it follows NOT_LEADER hints and tries the
	// next broker when one cannot be reached (the request was not sent),
	// and returns any other failure at once, without pausing.
	retryOnce retryMode = iota
	// retryUnapplied also resends, after a backoff, until ctx ends, what was
	// certainly not applied and may succeed on a resend: NOT_LEADER, other
	// retriable answers marked not_applied (a broker shutting down), and
	// requests that could not be sent. For writes that must not be applied
	// twice.
	retryUnapplied
	// retryAll resends, after a backoff, until ctx ends, every failure that
	// may succeed on a resend: also 503, 5xx and lost answers. For reads,
	// and writes that may be applied twice harmlessly.
	retryAll
)

// request is one API call.
type request struct {
	method      string
	path        string // escaped, e.g. /v1/topics/orders
	query       url.Values
	body        []byte
	contentType string
	write       bool          // goes to the leader
	retry       retryMode     // see retryMode
	timeout     time.Duration // per attempt; 0: the conn's request timeout
	expect      time.Duration // how long the broker may take by design (a long poll's wait), for stall detection
}

// response is a 2xx answer.
type response struct {
	status int
	header http.Header
	body   []byte
	addr   string // the base URL of the broker that answered
}

// do makes the call and returns a 2xx answer, or the last failure: an
// *Error for an API error answer, a *transportError when no answer came.
// When ctx ends during retries, the error wraps both ctx's error and the
// last failure.
func (c *conn) do(ctx context.Context, r *request) (*response, error) {
	delay := c.backoffMin
	var last error // the last failure not caused by ctx's end
	for {
		resp, err := c.pass(ctx, r)
		if err == nil || r.retry == retryOnce || !c.resendable(r, err) {
			return resp, err
		}
		if ctx.Err() != nil {
			if last == nil || !errors.Is(err, ctx.Err()) {
				last = err
			}
			return nil, fmt.Errorf("%w; last failure: %w", ctx.Err(), last)
		}
		last = err
		c.log.Debug("ledgermq: retrying request", "method", r.method, "path", r.path, "err", err, "backoff", delay)
		if serr := sleep(ctx, jitter(delay)); serr != nil {
			return nil, fmt.Errorf("%w; last failure: %w", serr, err)
		}
		delay = min(2*delay, c.backoffMax)
	}
}

// resendable reports whether do may resend r after err.
func (c *conn) resendable(r *request, err error) bool {
	var ae *Error
	var te *transportError
	switch {
	case errors.As(err, &ae):
		if ae.Code == wire.CodeUnauthenticated || ae.Code == wire.CodeForbidden {
			return false // the same credentials get the same answer
		}
		if ae.Code == wire.CodeNotLeader || ae.Retriable && ae.NotApplied {
			return true
		}
		return r.retry == retryAll && (ae.Retriable || ae.Status >= 500)
	case errors.As(err, &te):
		return !te.sent || r.retry == retryAll
	}
	return false
}

// pass is one pass over the brokers: it starts with the leader (or the
// next broker when none is known), follows NOT_LEADER hints, and tries
// each other broker once when one cannot be reached.
func (c *conn) pass(ctx context.Context, r *request) (*response, error) {
	addr := c.target(r.write)
	tried := map[string]bool{}
	hops := 0
	for {
		resp, err := c.send(ctx, addr, r)
		if err == nil {
			if r.write {
				c.setLeader(addr)
			}
			return resp, nil
		}
		tried[addr] = true
		if ctx.Err() != nil {
			return nil, err
		}
		var ae *Error
		var te *transportError
		switch {
		case errors.As(err, &ae) && ae.Code == wire.CodeNotLeader:
			if ae.Leader != "" {
				hint := c.scheme + "://" + ae.Leader
				if hint == addr {
					// The leader is not ready yet, or is handing over:
					// the caller backs off and resends.
					c.setLeader(addr)
					return nil, err
				}
				if hops <= len(c.brokers) {
					c.log.Debug("ledgermq: following the leader hint", "from", addr, "to", hint)
					hops++
					c.setLeader(hint)
					addr = hint
					continue
				}
				return nil, err
			}
			c.forgetLeader(addr)
		case errors.As(err, &te) && (!te.sent || !r.write):
			c.log.Debug("ledgermq: broker unreachable", "addr", addr, "err", err)
			c.forgetLeader(addr)
		case errors.As(err, &te) && !errors.Is(te, errStalled) && c.stallAfter > 0:
			// A write sent and answered by a lost connection (a crashed
			// leader behind a proxy or load balancer, a reset): its outcome
			// is unknown, so it is not resent here, but the next attempt
			// should not go back to a leader the others no longer name.
			c.leaderMovedFrom(ctx, addr)
			return nil, err
		default:
			return nil, err
		}
		next := c.untried(tried)
		if next == "" {
			return nil, err
		}
		addr = next
	}
}

// target is the broker to start a pass with.
func (c *conn) target(write bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader != "" {
		return c.leader
	}
	b := c.brokers[c.next%len(c.brokers)]
	if !write {
		c.next++
	}
	return b
}

// untried is the next broker of the list not tried in this pass, "" if
// none is left.
func (c *conn) untried(tried map[string]bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range c.brokers {
		b := c.brokers[c.next%len(c.brokers)]
		c.next++
		if !tried[b] {
			return b
		}
	}
	return ""
}

func (c *conn) setLeader(addr string) {
	c.mu.Lock()
	if c.leader != addr {
		c.log.Debug("ledgermq: leader", "addr", addr, "previous", c.leader)
		c.leader = addr
	}
	c.mu.Unlock()
}

func (c *conn) forgetLeader(addr string) {
	c.mu.Lock()
	if c.leader == addr {
		c.leader = ""
	}
	c.mu.Unlock()
}

// leaderMoved records that leadership moved to the broker at API address
// api (host:port), or to an unknown one when api is "".
func (c *conn) leaderMoved(api string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = ""
	if api != "" {
		c.leader = c.scheme + "://" + api
	}
	c.log.Debug("ledgermq: leader moved", "addr", c.leader)
}

// send makes one exchange with one broker.
func (c *conn) send(ctx context.Context, base string, r *request) (*response, error) {
	timeout := r.timeout
	if timeout <= 0 {
		timeout = c.reqTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	// sent must err on the side of "maybe": a request counts as not sent
	// only when no connection was had for it, or its write failed. Once a
	// connection is had, a deadline or cancellation can end Do while the
	// request is being written or after it was, before WroteRequest
	// reports: the broker may have it (and a write that is resent as
	// "not sent" would be applied twice).
	var wrote, gotConn, writeFailed atomic.Bool
	trace := &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			} else {
				writeFailed.Store(true)
			}
		},
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), r.method, u, body)
	if err != nil {
		return nil, &transportError{addr: base, err: err}
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	c.setHeaders(req)
	w := c.watch(actx, cancel, base, r)
	resp, err := c.hc.Do(req)
	w.stop()
	if err != nil {
		if w.abandoned.Load() {
			err = errStalled
		}
		return nil, &transportError{addr: base, sent: wrote.Load() || gotConn.Load() && !writeFailed.Load(), err: err}
	}
	defer resp.Body.Close()
	c.learnID(base, resp.Header.Get(wire.NodeHeader))
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &transportError{addr: base, sent: true, err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, decodeError(resp.StatusCode, raw)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: raw, addr: base}, nil
}

// setHeaders sets the headers every request carries: the client's name and
// the credentials.
func (c *conn) setHeaders(req *http.Request) {
	req.Header.Set("User-Agent", "ledgermq-go")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

// getJSON reads path into out, resending any retriable failure until ctx
// ends.
func (c *conn) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path, query: query, retry: retryAll})
	if err != nil {
		return err
	}
	return decodeJSON(resp, out)
}

// postJSON sends in (nil: no body) to the leader and decodes the answer
// into out (unless nil).
func (c *conn) postJSON(ctx context.Context, path string, in, out any, retry retryMode) error {
	r := &request{method: http.MethodPost, path: path, write: true, retry: retry}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		r.body, r.contentType = b, "application/json"
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	return decodeJSON(resp, out)
}

func decodeJSON(resp *response, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("ledgermq: undecodable answer from %s: %w", resp.addr, err)
	}
	return nil
}

// group returns the broker group id (stamped in every batch), asking the
// cluster once; that first call also learns the leader.
func (c *conn) group(ctx context.Context) (uint32, error) {
	c.mu.Lock()
	if c.hasGroup {
		g := c.groupID
		c.mu.Unlock()
		return g, nil
	}
	c.mu.Unlock()
	if err := c.learnLeader(ctx); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groupID, nil
}

// knowsLeader reports whether a leader is known.
func (c *conn) knowsLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader != ""
}

// learnLeader asks the cluster (GET /v1/cluster, any broker) for its leader
// and group id. The leader's API address is taken from the answering node's
// view, else from the leader's own status report, which the answering node
// collects directly (so it is known even before the nodes have learned
// each other's API addresses).
func (c *conn) learnLeader(ctx context.Context) error {
	var cs wire.ClusterStatus
	if err := c.getJSON(ctx, "/v1/cluster", nil, &cs); err != nil {
		return fmt.Errorf("ledgermq: cluster status: %w", err)
	}
	api := cs.LeaderAPI
	for _, n := range cs.Nodes {
		if api == "" && n.APIAddr != "" && (n.ID == cs.Leader || n.Role == "leader") {
			api = n.APIAddr
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groupID, c.hasGroup = cs.GroupID, true
	if api != "" && c.leader == "" {
		c.leader = c.scheme + "://" + api
		c.log.Debug("ledgermq: leader", "addr", c.leader, "from", "cluster status")
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jitter spreads d over [0.8d, 1.2d) so that clients do not retry in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d*4/5 + time.Duration(rand.Int64N(int64(d)*2/5+1))
}

// backoff is the pause before the n-th consecutive retry (n >= 1).
func (c *conn) backoff(n int) time.Duration {
	d := c.backoffMin
	for i := 1; i < n && d < c.backoffMax; i++ {
		d *= 2
	}
	return jitter(min(d, c.backoffMax))
}
