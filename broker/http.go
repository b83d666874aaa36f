package broker

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/wire"
)

// handle routes a request. Paths:
//
//	/healthz /readyz /metrics
//	/v1/topics                                     GET POST
//	/v1/topics/{t}                                 GET DELETE
//	/v1/topics/{t}/messages                        POST
//	/v1/topics/{t}/queues/{q}/messages             GET
//	/v1/topics/{t}/queues/{q}/batches              GET POST
//	/v1/cluster                                    GET
//	/v1/cluster/transfer-leadership                POST
//	/v1/producers                                  POST
//	/v1/groups, /v1/groups/{g}/...                 see groups.go
func (b *Broker) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	endpoint := b.route(ctx)
	b.m.observeRequest(endpoint, ctx.Response.StatusCode(), string(ctx.Response.Header.Peek("X-Error-Code")), time.Since(start))
}

func (b *Broker) route(ctx *fasthttp.RequestCtx) string {
	path := string(ctx.Path())
	method := string(ctx.Method())
	switch path {
	case "/healthz":
		ctx.SetStatusCode(http.StatusOK)
		ctx.SetBodyString("ok\n")
		return "healthz"
	case "/readyz":
		b.readyz(ctx)
		return "readyz"
	case "/metrics":
		b.serveMetrics(ctx)
		return "metrics"
	case "/v1/cluster":
		if b.allow(ctx, method, "GET") {
			b.clusterStatus(ctx)
		}
		return "cluster"
	case "/v1/cluster/transfer-leadership":
		if b.allow(ctx, method, "POST") {
			b.transferLeadership(ctx)
		}
		return "transfer_leadership"
	case "/v1/producers":
		if b.allow(ctx, method, "POST") {
			b.initProducer(ctx)
		}
		return "producers"
	case "/v1/topics":
		switch method {
		case "GET":
			b.listTopics(ctx)
		case "POST":
			b.createTopic(ctx)
		default:
			b.allow(ctx, method, "GET, POST")
		}
		return "topics"
	}
	if path == "/v1/groups" {
		return b.routeGroups(ctx, method, "")
	}
	if rest, ok := strings.CutPrefix(path, "/v1/groups/"); ok {
		return b.routeGroups(ctx, method, rest)
	}
	rest, ok := strings.CutPrefix(path, "/v1/topics/")
	if !ok {
		b.writeError(ctx, newAPIError(http.StatusNotFound, wire.CodeNotFound, "no such endpoint: %s", path))
		return "unknown"
	}
	seg := strings.Split(rest, "/")
	topic := seg[0]
	switch {
	case len(seg) == 1:
		switch method {
		case "GET":
			b.describeTopic(ctx, topic)
		case "DELETE":
			b.deleteTopic(ctx, topic)
		default:
			b.allow(ctx, method, "GET, DELETE")
		}
		return "topic"
	case len(seg) == 2 && seg[1] == "messages":
		if b.allow(ctx, method, "POST") {
			b.produceJSON(ctx, topic)
		}
		return "produce"
	case len(seg) == 4 && seg[1] == "queues" && (seg[3] == "messages" || seg[3] == "batches"):
		q, err := strconv.Atoi(seg[2])
		if err != nil || q < 0 {
			b.writeError(ctx, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "queue must be a non-negative integer, got %q", seg[2]))
			return "fetch"
		}
		if seg[3] == "messages" {
			if b.allow(ctx, method, "GET") {
				b.fetchJSON(ctx, topic, q)
			}
			return "fetch"
		}
		switch method {
		case "GET":
			b.fetchBatches(ctx, topic, q)
			return "fetch_batches"
		case "POST":
			b.produceBatch(ctx, topic, q)
			return "produce_batch"
		}
		b.allow(ctx, method, "GET, POST")
		return "batches"
	}
	b.writeError(ctx, newAPIError(http.StatusNotFound, wire.CodeNotFound, "no such endpoint: %s", path))
	return "unknown"
}

// allow answers 405 unless method is one of want.
func (b *Broker) allow(ctx *fasthttp.RequestCtx, method, want string) bool {
	for _, m := range strings.Split(want, ", ") {
		if m == method {
			return true
		}
	}
	ctx.Response.Header.Set("Allow", want)
	b.writeError(ctx, newAPIError(http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "method %s not allowed; use %s", method, want))
	return false
}

func (b *Broker) writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		b.writeError(ctx, newAPIError(http.StatusInternalServerError, wire.CodeInternal, "encode response: %v", err))
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}

func (b *Broker) writeError(ctx *fasthttp.RequestCtx, err error) {
	ae := b.toAPIError(err)
	body, _ := json.Marshal(wire.ErrorBody{Error: ae.body})
	ctx.Response.Header.Set("X-Error-Code", ae.body.Code)
	ctx.SetStatusCode(ae.status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}

// decodeJSON decodes the request body into v, refusing unknown fields.
func (b *Broker) decodeJSON(ctx *fasthttp.RequestCtx, v any) bool {
	if err := decodeStrict(ctx.PostBody(), v); err != nil {
		b.writeError(ctx, err)
		return false
	}
	return true
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(body []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "malformed JSON body: trailing data")
	}
	return nil
}

// queryInt parses an optional integer query parameter.
func queryInt(ctx *fasthttp.RequestCtx, name string, def, lo, hi int64) (int64, *apiError) {
	raw := ctx.QueryArgs().Peek(name)
	if raw == nil {
		return def, nil
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "%s must be an integer in [%d, %d], got %q", name, lo, hi, raw)
	}
	return v, nil
}
