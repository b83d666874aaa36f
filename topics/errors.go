package topics

import "errors"

// Errors. The broker maps each to one API error code.
var (
	ErrTopicNotFound   = errors.New("topics: topic not found")
	ErrTopicExists     = errors.New("topics: topic already exists")
	ErrInvalidArgument = errors.New("topics: invalid argument")
	ErrQueueNotFound   = errors.New("topics: queue does not exist")
	ErrOffsetRange     = errors.New("topics: offset out of range")
	ErrBadCommand      = errors.New("topics: malformed command")
)
