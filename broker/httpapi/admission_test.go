package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/wire"
)

// TestPanicRecovered: a handler panic becomes a 500 INTERNAL with an
// unknown outcome and a logged stack; the server keeps serving. (The
// server here has no service, so routing itself panics.)
func TestPanicRecovered(t *testing.T) {
	var log bytes.Buffer
	s := New(Config{Logger: slog.New(slog.NewTextHandler(&log, nil))}, nil)
	for range 2 {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.SetRequestURI("/v1/topics")
		s.serve(&ctx)
		var e wire.ErrorBody
		if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil || ctx.Response.StatusCode() != 500 ||
			e.Error.Code != wire.CodeInternal || e.Error.NotApplied {
			t.Fatalf("got %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	if !strings.Contains(log.String(), "http handler panicked") || !strings.Contains(log.String(), "goroutine") {
		t.Fatalf("no stack logged: %s", log.String())
	}
}

func TestAdmissionBudget(t *testing.T) {
	a := newAdmission(100, 60)
	if !a.acquire("a", 60) || a.acquire("a", 1) || !a.acquire("b", 40) || a.acquire("c", 1) {
		t.Fatal("budgets not enforced")
	}
	a.release("a", 60)
	if !a.acquire("c", 60) || a.inflight() != 100 {
		t.Fatalf("release: inflight %d", a.inflight())
	}
}
