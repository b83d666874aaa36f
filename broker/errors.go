package broker

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// apiError is an error with its HTTP status and stable code.
type apiError struct {
	status int
	body   wire.APIError
}

func (e *apiError) Error() string { return e.body.Code + ": " + e.body.Message }

func newAPIError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, body: wire.APIError{Code: code, Message: fmt.Sprintf(format, args...), NotApplied: true}}
}

// toAPIError maps any error to its status and code (docs/api.md has the
// table).
func (b *Broker) toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var nle *replication.NotLeaderError
	switch {
	case errors.As(err, &nle):
		return b.notLeaderError(nle.LeaderID)
	case errors.Is(err, replication.ErrNotLeader):
		return b.notLeaderError("")
	case errors.Is(err, replication.ErrLeadershipLost), errors.Is(err, replication.ErrTimeout):
		e := unavailable(fmt.Sprintf("the write's outcome is unknown: %v", err))
		e.body.NotApplied = false
		return e
	case errors.Is(err, replication.ErrClosed):
		return errShuttingDown()
	case errors.Is(err, topics.ErrUnknownProducer):
		return newAPIError(http.StatusBadRequest, wire.CodeUnknownProducer, "%v", trimPrefix(err))
	case errors.Is(err, topics.ErrOutOfOrderSeq):
		e := newAPIError(http.StatusConflict, wire.CodeOutOfOrderSequence, "%v", trimPrefix(err))
		e.body.Retriable = true
		return e
	case errors.Is(err, topics.ErrDuplicateSequence):
		return newAPIError(http.StatusConflict, wire.CodeDuplicateSequence, "%v", trimPrefix(err))
	case errors.Is(err, consumer.ErrGroupNotFound):
		return newAPIError(http.StatusNotFound, wire.CodeGroupNotFound, "%v", err)
	case errors.Is(err, consumer.ErrUnknownMember):
		return newAPIError(http.StatusNotFound, wire.CodeUnknownMember, "%v", err)
	case errors.Is(err, consumer.ErrIllegalGeneration):
		return newAPIError(http.StatusConflict, wire.CodeIllegalGeneration, "%v", err)
	case errors.Is(err, consumer.ErrNotAssigned):
		return newAPIError(http.StatusConflict, wire.CodeNotAssigned, "%v", err)
	case errors.Is(err, consumer.ErrGroupActive):
		return newAPIError(http.StatusConflict, wire.CodeGroupActive, "%v", err)
	case errors.Is(err, consumer.ErrInvalid):
		return newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "%v", err)
	case errors.Is(err, topics.ErrTopicNotFound):
		return newAPIError(http.StatusNotFound, wire.CodeTopicNotFound, "%v", trimPrefix(err))
	case errors.Is(err, topics.ErrTopicExists):
		return newAPIError(http.StatusConflict, wire.CodeTopicExists, "%v", trimPrefix(err))
	case errors.Is(err, topics.ErrQueueNotFound):
		return newAPIError(http.StatusNotFound, wire.CodeQueueNotFound, "%v", trimPrefix(err))
	case errors.Is(err, wire.ErrTooLarge):
		return newAPIError(http.StatusRequestEntityTooLarge, wire.CodeMessageTooLarge, "%v", err)
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, wire.ErrEmptyBatch):
		return newAPIError(http.StatusBadRequest, wire.CodeMalformedBatch, "%v", err)
	case errors.Is(err, topics.ErrInvalidArgument):
		return newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "%v", trimPrefix(err))
	}
	b.logger.Error("internal error", "err", err)
	e := newAPIError(http.StatusInternalServerError, wire.CodeInternal, "internal error: %v", err)
	e.body.NotApplied = false
	return e
}

// notLeaderError is 421 NOT_LEADER naming the API address of leaderID
// (empty if unknown): the request was not applied, so it may be resent.
func (b *Broker) notLeaderError(leaderID string) *apiError {
	e := newAPIError(StatusMisdirected, wire.CodeNotLeader, "this node is not the leader; the request was not applied")
	e.body.Leader = b.apiAddrOf(leaderID)
	e.body.Retriable = true
	return e
}

// unavailable is a retriable 503 UNAVAILABLE.
func unavailable(msg string) *apiError {
	e := newAPIError(http.StatusServiceUnavailable, wire.CodeUnavailable, "%s", msg)
	e.body.Retriable = true
	return e
}

func errShuttingDown() *apiError {
	return unavailable("the broker is shutting down; the request was not applied")
}

// StatusMisdirected is HTTP 421: a write reached a follower.
const StatusMisdirected = 421

func trimPrefix(err error) string {
	s := err.Error()
	const p = "topics: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
