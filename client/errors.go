package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ledgermq/ledgermq/wire"
)

// Error is an error answer of the broker API, or a refusal the client makes
// itself for a cause the broker would refuse with the same code (a message
// larger than the topic allows, a queue the topic does not have). Code is
// one of the wire.Code* constants; program against it, not against Message.
//
// errors.Is(err, &Error{Code: c}) reports whether err is or wraps an *Error
// with code c.
type Error struct {
	Code    string
	Message string
	// Retriable: sending the same request again can succeed (NOT_LEADER,
	// UNAVAILABLE, OUT_OF_ORDER_SEQUENCE). For a write it does not mean the
	// first attempt had no effect: a 503 UNAVAILABLE leaves the outcome
	// unknown.
	Retriable bool
	// NotApplied: the broker guarantees the request changed nothing (it
	// was refused before it was proposed, or refused by the state
	// machine), so resending it cannot apply it twice. False only when the
	// outcome of a write is unknown (a 503 UNAVAILABLE after a propose
	// whose commit could not be confirmed, a 500 INTERNAL, an answer that
	// is not the API's error body). It is the API's "not_applied" field;
	// errors the client makes itself are never applied.
	NotApplied bool
	// Leader is the leader's API address (host:port) named by a NOT_LEADER
	// answer, "" when the node did not know it.
	Leader string
	// Status is the HTTP status of the answer, 0 for errors made by the
	// client.
	Status int
	// Earliest and Latest are the valid offset range of an
	// OFFSET_OUT_OF_RANGE answer.
	Earliest, Latest *uint64
}

func (e *Error) Error() string {
	s := "ledgermq: " + e.Code + ": " + e.Message
	if e.Code == wire.CodeNotLeader && e.Leader == "" {
		s += " (no leader known)"
	}
	return s
}

// Is matches an *Error target with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// ErrorCode returns the Code of the *Error err is or wraps, "" if none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// IsRetriable reports whether err is or wraps an *Error marked retriable.
// The producer already retries these within its delivery timeout; an error
// it reports is final for the messages it names.
func IsRetriable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retriable
}

// IsNotApplied reports whether err certainly left the brokers' state
// unchanged: it is or wraps an *Error marked NotApplied, or the request
// could not be sent. A write that failed otherwise may have been applied.
func IsNotApplied(err error) bool {
	var e *Error
	var te *transportError
	switch {
	case errors.Is(err, ErrUnknownOutcome):
		return false
	case errors.As(err, &e):
		return e.NotApplied
	case errors.As(err, &te):
		return !te.sent
	}
	return false
}

// Errors the client reports for causes of its own.
var (
	// ErrClosed: the producer was closed before the message was delivered,
	// or the message was produced after Close. For a message that was
	// already sent, wrapped together with ErrUnknownOutcome.
	ErrClosed = errors.New("ledgermq: producer closed")
	// ErrUnknownOutcome: the messages were sent but no answer confirmed
	// whether they were stored (503 UNAVAILABLE, a lost connection, a
	// request timeout) and they could not be resent safely (idempotence is
	// off, or the producer was closed). They may or may not have been
	// stored.
	ErrUnknownOutcome = errors.New("ledgermq: the outcome is unknown: the messages may or may not have been stored")
	// ErrDeliveryTimeout: the messages were not acknowledged within the
	// delivery timeout. The error also wraps the last failure, if any; if
	// that failure left the outcome unknown, it wraps ErrUnknownOutcome.
	ErrDeliveryTimeout = errors.New("ledgermq: delivery timeout")
)

// clientError makes an *Error the client raises itself.
func clientError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), NotApplied: true}
}

// apiError makes an *Error of the API's error object a, answered with
// status.
func apiError(status int, a *wire.APIError) *Error {
	return &Error{Code: a.Code, Message: a.Message, Retriable: a.Retriable, NotApplied: a.NotApplied,
		Leader: a.Leader, Status: status, Earliest: a.Earliest, Latest: a.Latest}
}

// decodeError makes an *Error of a non-2xx answer, also when its body is
// not the API's ErrorBody (a proxy, an old broker).
func decodeError(status int, body []byte) *Error {
	var eb wire.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		return apiError(status, &eb.Error)
	}
	// Not the API's body: only a 421 says by itself that nothing was done.
	e := &Error{Status: status}
	switch status {
	case http.StatusMisdirectedRequest:
		e.Code, e.Retriable, e.NotApplied = wire.CodeNotLeader, true, true
	case http.StatusServiceUnavailable:
		e.Code, e.Retriable = wire.CodeUnavailable, true
	case http.StatusNotFound:
		e.Code = wire.CodeNotFound
	case http.StatusUnauthorized:
		// Refused before anything was done (a proxy or gateway in front
		// of the brokers, say), as the brokers' own 401 and 403.
		e.Code, e.NotApplied = wire.CodeUnauthenticated, true
	case http.StatusForbidden:
		e.Code, e.NotApplied = wire.CodeForbidden, true
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

// transportError is an exchange with one broker that got no HTTP answer.
type transportError struct {
	addr string
	// sent: the request was written completely, so the broker may have
	// received and applied it. When false it certainly did not apply it.
	sent bool
	err  error
}

func (e *transportError) Error() string {
	if e.sent {
		return fmt.Sprintf("ledgermq: %s: no answer: %v", e.addr, e.err)
	}
	return fmt.Sprintf("ledgermq: %s: request not sent: %v", e.addr, e.err)
}

func (e *transportError) Unwrap() error { return e.err }

// unknownOutcomeError is the failure of a write that may have been applied:
// an answer without not_applied, or no answer to a request that was sent.
// errors.Is(err, ErrUnknownOutcome) holds; errors.As finds the *Error, if
// the broker answered.
type unknownOutcomeError struct {
	op  string // "create topic orders"
	err error
}

func (e *unknownOutcomeError) Error() string {
	return fmt.Sprintf("ledgermq: %s: the outcome is unknown, the request may or may not have been applied: %v", e.op, e.err)
}

func (e *unknownOutcomeError) Unwrap() []error { return []error{ErrUnknownOutcome, e.err} }

// BatchError is a fetched batch the consumer cannot decode within its
// bounds: one stored by a broker before today's limits (a header bomb) or
// damaged. Poll returns it (wrapped) for as long as the queue's position
// is at that batch; an application that chooses to skip it calls Seek
// with AtOffset(Next), as Kafka consumers stop at a corrupt record and
// leave the skip to the application.
type BatchError struct {
	Topic string
	Queue int
	// Offset is the batch's first offset; Next the offset after it (0
	// when even its header is unreadable: skip one offset at a time).
	Offset, Next uint64
	Err          error // wraps wire.ErrTooLarge or wire.ErrMalformed
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("ledgermq: cannot decode the batch at %s/%d offset %d: %v", e.Topic, e.Queue, e.Offset, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }
