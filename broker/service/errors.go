package service

import (
	"errors"
	"fmt"

	"github.com/ledgermq/ledgermq/auth"
	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// Errorf returns an API error with a stable code. It is not applied and
// not retriable; callers set those fields where that differs.
func Errorf(code, format string, args ...any) *wire.APIError {
	return &wire.APIError{Code: code, Message: fmt.Sprintf(format, args...), NotApplied: true}
}

// codeOf maps package errors to stable codes; the first match wins.
var codeOf = []struct {
	err       error
	code      string
	retriable bool
}{
	{topics.ErrUnknownProducer, wire.CodeUnknownProducer, false},
	{topics.ErrOutOfOrderSeq, wire.CodeOutOfOrderSequence, true},
	{topics.ErrDuplicateSequence, wire.CodeDuplicateSequence, false},
	{consumer.ErrGroupNotFound, wire.CodeGroupNotFound, false},
	{consumer.ErrUnknownMember, wire.CodeUnknownMember, false},
	{consumer.ErrIllegalGeneration, wire.CodeIllegalGeneration, false},
	{consumer.ErrNotAssigned, wire.CodeNotAssigned, false},
	{consumer.ErrGroupActive, wire.CodeGroupActive, false},
	{consumer.ErrInvalid, wire.CodeInvalidArgument, false},
	{topics.ErrTopicNotFound, wire.CodeTopicNotFound, false},
	{topics.ErrTopicExists, wire.CodeTopicExists, false},
	{topics.ErrQueueNotFound, wire.CodeQueueNotFound, false},
	{wire.ErrTooLarge, wire.CodeMessageTooLarge, false},
	{replication.ErrEntryTooLarge, wire.CodeRequestTooLarge, false},
	{wire.ErrMalformed, wire.CodeMalformedBatch, false},
	{wire.ErrEmptyBatch, wire.CodeMalformedBatch, false},
	{topics.ErrInvalidArgument, wire.CodeInvalidArgument, false},
	{fsm.ErrBadCommand, wire.CodeInvalidArgument, false},
	// issue 12
	{auth.ErrInvalid, wire.CodeInvalidArgument, false},
	{auth.ErrTokenNotFound, wire.CodeNotFound, false},
	{auth.ErrTooManyTokens, wire.CodeTooManyTokens, false},
	{auth.ErrTooManyACLs, wire.CodeTooManyACLs, false},
	{auth.ErrTooManyMembers, wire.CodeTooManyPrincipals, false},
}

// AsError maps any error to its API form (docs/api.md has the table):
// the one place where errors become stable codes. Errors it does not know
// are INTERNAL, logged, with an unknown outcome.
func (s *Service) AsError(err error) *wire.APIError {
	var ae *wire.APIError
	if errors.As(err, &ae) {
		return ae
	}
	var nle *replication.NotLeaderError
	switch {
	case errors.As(err, &nle):
		return s.notLeaderError(nle.LeaderID)
	case errors.Is(err, replication.ErrNotLeader):
		return s.notLeaderError("")
	case errors.Is(err, replication.ErrLeadershipLost), errors.Is(err, replication.ErrTimeout):
		return outcomeUnknown(fmt.Sprintf("the write's outcome is unknown: %v", err))
	case errors.Is(err, replication.ErrClosed):
		return errShuttingDown()
	}
	for _, c := range codeOf {
		if errors.Is(err, c.err) {
			e := Errorf(c.code, "%s", trimPrefix(err))
			e.Retriable = c.retriable
			return e
		}
	}
	s.logger.Error("internal error", "err", err)
	e := Errorf(wire.CodeInternal, "internal error: %v", err)
	e.NotApplied = false
	return e
}

// notLeaderError is NOT_LEADER naming the API address of leaderID (empty
// if unknown): the request was not applied, so it may be resent.
func (s *Service) notLeaderError(leaderID string) *wire.APIError {
	e := Errorf(wire.CodeNotLeader, "this node is not the leader; the request was not applied")
	e.Leader = s.peers.apiAddr(leaderID)
	e.Retriable = true
	return e
}

// unavailable is a retriable UNAVAILABLE that was not applied.
// Overloaded is a retriable OVERLOADED: the node sheds load; nothing was
// applied.
func Overloaded(format string, args ...any) *wire.APIError {
	e := Errorf(wire.CodeOverloaded, format, args...)
	e.Retriable = true
	return e
}

func unavailable(msg string) *wire.APIError {
	e := Errorf(wire.CodeUnavailable, "%s", msg)
	e.Retriable = true
	return e
}

// outcomeUnknown is a retriable UNAVAILABLE for a write that may or may
// not have been applied.
func outcomeUnknown(msg string) *wire.APIError {
	e := unavailable(msg)
	e.NotApplied = false
	return e
}

func errShuttingDown() *wire.APIError {
	return unavailable("the broker is shutting down; the request was not applied")
}

// trimPrefix drops a package prefix ("topics: ") from an error message.
func trimPrefix(err error) string {
	s := err.Error()
	for _, p := range []string{"topics: ", "fsm: ", "auth: "} {
		if len(s) > len(p) && s[:len(p)] == p {
			return s[len(p):]
		}
	}
	return s
}
