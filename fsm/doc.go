// Package fsm is the broker group's replicated state machine: it drives
// the topics, consumer and auth state machines from committed log entries.
//
// Every command in the log is one code byte followed by a payload that
// the owning package encodes. The codes, names, decoders and appliers of
// all commands are in one table (commands, in registry.go); a proposer
// names a command by its typed Op, so a command's request and result types
// are checked by the compiler and its result is type-asserted in one
// place (Propose).
//
// Snapshots are written in a versioned binary container (snapshot.go):
// a magic string and format version, then sections (topics, consumer
// groups, auth), each with its kind, length and CRC-32C. A reader refuses a
// version it does not know and any section whose CRC does not match.
//
// Invariants: Apply is deterministic (same entries, same state and
// results on every node, and byte-identical snapshots); a command that
// does not decode changes nothing and answers ErrBadCommand.
//
// Concurrency: Apply, Snapshot and Restore run on replication's single
// FSM goroutine; Persist runs concurrently with later Applies; the read
// methods of topics.State and consumer.State are safe alongside Apply.
package fsm
