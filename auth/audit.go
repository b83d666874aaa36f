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
// by a token bucket. Lines over the rate are dropped and counted; the
// next line written reports how many were suppressed.
type Audit struct {
	logger     *slog.Logger
	rate       float64 // tokens per second
	burst      float64
	now        func() time.Time
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int64
}

// NewAudit returns an audit log writing to logger (rate per second,
// bursts of burst lines; zero: the defaults).
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
	return &Audit{logger: logger.With("logger", "audit"), rate: float64(rate), burst: float64(burst),
		now: now, tokens: float64(burst), last: now()}
}

// Record writes e unless over the rate.
func (a *Audit) Record(e Event) {
	a.mu.Lock()
	t := a.now()
	a.tokens = min(a.burst, a.tokens+t.Sub(a.last).Seconds()*a.rate)
	a.last = t
	if a.tokens < 1 {
		a.suppressed++
		a.mu.Unlock()
		return
	}
	a.tokens--
	suppressed := a.suppressed
	a.suppressed = 0
	a.mu.Unlock()
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
