package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/wire"
)

// StatusMisdirected is HTTP 421: a write reached a follower.
const StatusMisdirected = 421

// statusOf is the HTTP status of each stable code (docs/api.md).
var statusOf = map[string]int{
	wire.CodeTopicNotFound:      http.StatusNotFound,
	wire.CodeTopicExists:        http.StatusConflict,
	wire.CodeQueueNotFound:      http.StatusNotFound,
	wire.CodeInvalidArgument:    http.StatusBadRequest,
	wire.CodeMalformedBatch:     http.StatusBadRequest,
	wire.CodeMessageTooLarge:    http.StatusRequestEntityTooLarge,
	wire.CodeRequestTooLarge:    http.StatusRequestEntityTooLarge,
	wire.CodeOffsetOutOfRange:   http.StatusRequestedRangeNotSatisfiable,
	wire.CodeNotLeader:          StatusMisdirected,
	wire.CodeUnavailable:        http.StatusServiceUnavailable,
	wire.CodeNotFound:           http.StatusNotFound,
	wire.CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	wire.CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	wire.CodeInternal:           http.StatusInternalServerError,
	wire.CodeUnknownProducer:    http.StatusBadRequest,
	wire.CodeOutOfOrderSequence: http.StatusConflict,
	wire.CodeDuplicateSequence:  http.StatusConflict,
	wire.CodeGroupNotFound:      http.StatusNotFound,
	wire.CodeUnknownMember:      http.StatusNotFound,
	wire.CodeIllegalGeneration:  http.StatusConflict,
	wire.CodeNotAssigned:        http.StatusConflict,
	wire.CodeGroupActive:        http.StatusConflict,
	wire.CodeTooManyTopics:      http.StatusConflict,
	wire.CodeTooManyQueues:      http.StatusConflict,
	wire.CodeTooManyGroups:      http.StatusConflict,
	wire.CodeTooManyMembers:     http.StatusConflict,
	wire.CodeCommandTooLarge:    http.StatusRequestEntityTooLarge,
	wire.CodeOverloaded:         http.StatusServiceUnavailable,
	wire.CodeDiskFull:           http.StatusInsufficientStorage,
	wire.CodeUnauthenticated:    http.StatusUnauthorized,
	wire.CodeForbidden:          http.StatusForbidden,
	wire.CodeTooManyTokens:      http.StatusConflict,
	wire.CodeTooManyACLs:        http.StatusConflict,
	wire.CodeTooManyPrincipals:  http.StatusConflict,
}

func (s *Server) writeJSON(ctx *fasthttp.RequestCtx, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return service.Errorf(wire.CodeInternal, "encode response: %v", err)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
	return nil
}

// statusFor is the HTTP status of an error code (500 for a code the table
// lacks, which TestEveryCodeHasAStatus keeps from happening).
func statusFor(code string) int {
	if status, ok := statusOf[code]; ok {
		return status
	}
	return http.StatusInternalServerError
}

func (s *Server) writeError(ctx *fasthttp.RequestCtx, err error) {
	ae := s.svc.AsError(err)
	status := statusFor(ae.Code)
	body, _ := json.Marshal(wire.ErrorBody{Error: *ae})
	ctx.Response.Header.Set("X-Error-Code", ae.Code)
	if ae.Code == wire.CodeUnauthenticated {
		ctx.Response.Header.Set("WWW-Authenticate", wire.AuthRealm)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return service.Errorf(wire.CodeInvalidArgument, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return service.Errorf(wire.CodeInvalidArgument, "malformed JSON body: trailing data")
	}
	return nil
}

// queryInt parses an optional integer query parameter in [lo, hi].
func queryInt(ctx *fasthttp.RequestCtx, name string, def, lo, hi int64) (int64, error) {
	raw := ctx.QueryArgs().Peek(name)
	if raw == nil {
		return def, nil
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, service.Errorf(wire.CodeInvalidArgument, "%s must be an integer in [%d, %d], got %q", name, lo, hi, raw)
	}
	return v, nil
}

// queue parses the {queue} parameter.
func (c *call) queue() (int, error) {
	q, err := strconv.Atoi(c.param("queue"))
	if err != nil || q < 0 {
		c.label = "fetch" // counted as before the route table
		return 0, service.Errorf(wire.CodeInvalidArgument, "queue must be a non-negative integer, got %q", c.param("queue"))
	}
	return q, nil
}
