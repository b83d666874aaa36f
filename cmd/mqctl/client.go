package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// client calls the broker API and finds the leader by itself. It tries the
// brokers in order; a 421 NOT_LEADER answer sends it to the leader the
// answer names, a broker it cannot connect to sends it to the next one, and
// after a round of failures it backs off a little, all within the timeout
// of the call. So a call made during a failover lands on the new leader.
//
// Reads are resent freely. A write is resent only when it was certainly
// not applied: on NOT_LEADER, and when no connection could be made. Any
// other failure after a write was sent leaves its outcome unknown, and
// that is reported, never retried.
type client struct {
	brokers    []string
	http       *http.Client
	timeout    time.Duration // per call, retries included
	backoff    time.Duration // first pause after a round of failures
	maxBackoff time.Duration

	mu   sync.Mutex
	last string // the broker that answered last: tried first
}

func newClient(brokers []string, timeout time.Duration) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // brokers are reached directly: leader addresses are theirs
	d := &net.Dialer{Timeout: min(2*time.Second, timeout/2), KeepAlive: 30 * time.Second}
	tr.DialContext = d.DialContext
	tr.MaxIdleConnsPerHost = 64
	return &client{
		brokers:    brokers,
		http:       &http.Client{Transport: tr},
		timeout:    timeout,
		backoff:    50 * time.Millisecond,
		maxBackoff: time.Second,
	}
}

// parseBrokers parses --brokers: host:port or http(s)://host:port, comma
// separated.
func parseBrokers(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		hostport := b
		if i := strings.Index(b, "://"); i >= 0 {
			hostport = strings.TrimRight(b[i+3:], "/")
		}
		if _, port, err := net.SplitHostPort(hostport); err != nil || port == "" {
			return nil, fmt.Errorf("--brokers: %q is not host:port", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("--brokers: no broker given")
	}
	return out, nil
}

func baseURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/")
	}
	return "http://" + addr
}

// request is one API call.
type request struct {
	method string
	path   string // escaped, e.g. /v1/topics/orders
	query  url.Values
	body   any // sent as JSON unless nil
}

// write reports whether the call changes state: it is resent only when it
// was certainly not applied.
func (r *request) write() bool { return r.method != http.MethodGet && r.method != http.MethodHead }

// apiError is an error answer of the API.
type apiError struct {
	wire.APIError
	status int
	// unknown: a write whose outcome is unknown (it may have been applied).
	unknown bool
}

func (e *apiError) Error() string {
	s := e.Code + ": " + e.Message
	if e.Code == wire.CodeNotLeader && e.Leader == "" {
		s += " (no leader known)"
	}
	if e.unknown && !strings.Contains(e.Message, "outcome") {
		s += " (the outcome is unknown: the write may or may not have been applied)"
	}
	return s
}

// decodeError makes an apiError of a non-2xx answer, also when its body is
// not the API's ErrorBody (a proxy, an old broker).
func decodeError(status int, body []byte) *apiError {
	var eb wire.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		return &apiError{APIError: eb.Error, status: status}
	}
	e := &apiError{status: status}
	switch status {
	case http.StatusMisdirectedRequest:
		e.Code, e.Retriable = wire.CodeNotLeader, true
	case http.StatusServiceUnavailable:
		e.Code, e.Retriable = wire.CodeUnavailable, true
	case http.StatusNotFound:
		e.Code = wire.CodeNotFound
	default:
		e.Code = fmt.Sprintf("HTTP_%d", status)
	}
	e.Message = strings.TrimSpace(string(body))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "..."
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// sendError is a failed exchange with one broker.
type sendError struct {
	addr string
	sent bool // a connection was made: the request may have been received
	err  error
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// unknownOutcomeError is a write that was sent but got no answer.
type unknownOutcomeError struct {
	method, path, addr string
	err                error
}

func (e *unknownOutcomeError) Error() string {
	return fmt.Sprintf("%s %s to %s: no answer (%v); the outcome is unknown: the write may or may not have been applied",
		e.method, e.path, e.addr, e.err)
}
func (e *unknownOutcomeError) Unwrap() error { return e.err }

// gaveUpError is the last error of a call that ran out of time.
type gaveUpError struct {
	last     error
	attempts int
	after    time.Duration
}

func (e *gaveUpError) Error() string {
	var se *sendError
	if errors.As(e.last, &se) {
		return fmt.Sprintf("no broker answered (gave up after %v and %d attempts): %v", e.after, e.attempts, e.last)
	}
	return fmt.Sprintf("%v (gave up after %v and %d attempts)", e.last, e.after, e.attempts)
}
func (e *gaveUpError) Unwrap() error { return e.last }

func (c *client) lastBroker() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *client) setLast(addr string) {
	c.mu.Lock()
	c.last = addr
	c.mu.Unlock()
}

// do makes a call and decodes a 2xx answer into out (unless nil). It
// returns the raw answer, for --format json.
func (c *client) do(ctx context.Context, r request, out any) ([]byte, error) {
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	// Start with the broker that answered last, if any; the list's next
	// broker after it comes next.
	addr, next := c.lastBroker(), 0
	if addr == "" {
		addr, next = c.brokers[0], 1
	} else if i := slices.Index(c.brokers, addr); i >= 0 {
		next = i + 1
	}
	failures, redirects := 0, 0
	delay := c.backoff
	var prev error // the last failure not caused by the call's deadline
	for attempt := 1; ; attempt++ {
		raw, err := c.send(cctx, addr, &r, body)
		if err == nil {
			c.setLast(addr)
			if out != nil && len(raw) > 0 {
				if err := json.Unmarshal(raw, out); err != nil {
					return raw, fmt.Errorf("%s %s: undecodable answer from %s: %v", r.method, r.path, addr, err)
				}
			}
			return raw, nil
		}
		var se *sendError
		if errors.As(err, &se) && se.sent && r.write() {
			return nil, &unknownOutcomeError{method: r.method, path: r.path, addr: addr, err: se.err}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if cctx.Err() != nil {
			if prev == nil {
				prev = err
			}
			return nil, &gaveUpError{last: prev, attempts: attempt, after: time.Since(start).Round(time.Millisecond)}
		}
		prev = err
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Code == wire.CodeNotLeader:
			// Refused, not applied: safe to resend anywhere.
			if ae.Leader != "" && ae.Leader != addr && redirects < len(c.brokers)+1 {
				redirects++
				addr = ae.Leader
				continue
			}
		case errors.As(err, &ae):
			if r.write() {
				// Not resent. A failure on the broker's side leaves the
				// outcome unknown unless it says the write was refused.
				if ae.Code == wire.CodeUnavailable || ae.status >= 500 {
					ae.unknown = !strings.Contains(ae.Message, "not applied")
				}
				return nil, ae
			}
			if !ae.Retriable {
				return nil, ae
			}
		case se != nil:
			// No connection (or a read lost on the way): next broker.
		default:
			return nil, err
		}
		// Try the next broker of the list; pause after each round.
		addr = c.brokers[next%len(c.brokers)]
		next++
		failures++
		if failures >= len(c.brokers) {
			redirects = 0
			t := time.NewTimer(delay)
			select {
			case <-cctx.Done():
				t.Stop()
			case <-t.C:
			}
			delay = min(2*delay, c.maxBackoff)
		}
	}
}

// send makes one exchange with one broker.
func (c *client) send(ctx context.Context, addr string, r *request, body []byte) ([]byte, error) {
	u := baseURL(addr) + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var connected atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), r.method, u, rd)
	if err != nil {
		return nil, &sendError{addr: addr, err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mqctl")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &sendError{addr: addr, sent: connected.Load(), err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &sendError{addr: addr, sent: true, err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, decodeError(resp.StatusCode, raw)
	}
	return raw, nil
}

// pathEscape escapes a topic name for a URL path.
func pathEscape(s string) string { return url.PathEscape(s) }
