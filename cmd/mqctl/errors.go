package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	sdk "github.com/ledgermq/ledgermq/client"
)

// call runs one admin call through the SDK within --timeout, retries and
// leader changes included. An interrupted call returns ctx's error (exit
// status 130); any other failure is a *cmdError.
func (a *app) call(ctx context.Context, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	start := time.Now()
	err := f(cctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return &cmdError{err: err, gaveUp: cctx.Err() != nil, after: time.Since(start).Round(time.Millisecond)}
}

// cmdError is a failed call as mqctl reports it: the API code first
// ("TOPIC_NOT_FOUND: topic x not found"), then whether a write's outcome is
// unknown (the SDK decides it from the error body's not_applied field) and
// whether mqctl gave up waiting.
type cmdError struct {
	err    error
	gaveUp bool          // --timeout ran out
	after  time.Duration // how long the call took
}

func (e *cmdError) Error() string {
	var ae *sdk.Error
	unknown := errors.Is(e.err, sdk.ErrUnknownOutcome)
	var s string
	switch {
	case errors.As(e.err, &ae):
		s = strings.TrimPrefix(ae.Error(), "ledgermq: ")
		if unknown && !strings.Contains(ae.Message, "outcome") {
			s += " (the outcome is unknown: the write may or may not have been applied)"
		}
	case e.gaveUp && !unknown:
		return fmt.Sprintf("no broker answered (gave up after %v): %v", e.after, e.err)
	default:
		return e.err.Error()
	}
	if e.gaveUp {
		s += fmt.Sprintf(" (gave up after %v)", e.after)
	}
	return s
}

func (e *cmdError) Unwrap() error { return e.err }

// apiError is a refusal mqctl makes itself for a cause the broker would
// refuse with the same code.
func apiError(e *sdk.Error) error {
	e.NotApplied = true
	return &cmdError{err: e}
}
