// Package broker is a LedgerMQ broker node: the HTTP API (fasthttp) in
// front of a replication.Node that drives the topic state machine.
//
// Writes (topic changes, produces) are accepted only by the leader and
// acknowledged only after their Raft entry is committed by a majority and
// applied; a follower refuses them with 421 NOT_LEADER naming the leader's
// API address, which means not applied, so clients may resend safely.
// Reads are served by any node from its applied state, which holds only
// committed entries. docs/api.md documents every endpoint and error code.
package broker
