package auth

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Audit log defaults: a token bucket of 50 lines a second, bursts of 100.
const (
	DefaultAuditRate  = 50
	DefaultAuditBurst = 100
)

// Event is one audit record.
type Event struct {
	Principal string // who (User:ANONYMOUS when unknown)
	Operation string // e.g. create, acl_add, authenticate
	Resource  string // e.g. "topic orders", "cluster"
	Result    string // ok, denied, unauthenticated, failed
	Remote    string // client address, when known
	Detail    string // optional: the reason or what changed
}

// Audit is the audit log: a slog logger with logger=audit, rate-limited
// by token buckets. Lines over the rate are dropped and counted; the
// next line written from the same bucket reports how many were
// suppressed. Refusals (failed authentication, denied authorization),
// which anyone who reaches the API can cause, and the operations of
// principals allowed to make them (admin operations) have a bucket each,
// so that a flood of refusals cannot hide an admin operation.
type Audit struct {
	logger  *slog.Logger
	now     func() time.Time
	mu      sync.Mutex
	refused bucket // Result denied or unauthenticated
	ops     bucket // the rest: operations that were allowed (ok or failed)
}

// bucket is one token bucket of lines.
type bucket struct {
	rate, burst float64 // tokens per second, at most burst
	tokens      float64
	last        time.Time
	suppressed  int64
}

// take reports whether a line may be written at t and, if so, how many
// were suppressed before it.
func (b *bucket) take(t time.Time) (bool, int64) {
	b.tokens = min(b.burst, b.tokens+t.Sub(b.last).Seconds()*b.rate)
	b.last = t
	if b.tokens < 1 {
		b.suppressed++
		return false, 0
	}
	b.tokens--
	n := b.suppressed
	b.suppressed = 0
	return true, n
}

// NewAudit returns an audit log writing to logger (rate per second,
// bursts of burst lines, for each bucket; zero: the defaults).
func NewAudit(logger *slog.Logger, rate, burst int, now func() time.Time) *Audit {
	if rate <= 0 {
		rate = DefaultAuditRate
	}
	if burst <= 0 {
		burst = DefaultAuditBurst
	}
	if now == nil {
		now = time.Now
	}
	b := bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: now()}
	return &Audit{logger: logger.With("logger", "audit"), now: now, refused: b, ops: b}
}

// Record writes e unless over the rate.
func (a *Audit) Record(e Event) {
	a.mu.Lock()
	b := &a.ops
	if e.Result == "denied" || e.Result == "unauthenticated" {
		b = &a.refused
	}
	ok, suppressed := b.take(a.now())
	a.mu.Unlock()
	if !ok {
		return
	}
	attrs := []slog.Attr{slog.String("principal", e.Principal), slog.String("operation", e.Operation),
		slog.String("resource", e.Resource), slog.String("result", e.Result)}
	if e.Remote != "" {
		attrs = append(attrs, slog.String("remote", e.Remote))
	}
	if e.Detail != "" {
		attrs = append(attrs, slog.String("detail", e.Detail))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	level := slog.LevelInfo
	if e.Result != "ok" {
		level = slog.LevelWarn
	}
	a.logger.LogAttrs(context.Background(), level, "audit", attrs...)
}
