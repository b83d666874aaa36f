// Package broker assembles a LedgerMQ broker node: a replication.Node
// driving the group's state machine (package fsm), the protocol-neutral
// core over them (package broker/service) and the HTTP front-end (package
// broker/httpapi). Other front-ends (the Kafka-protocol listener, the
// console) attach to Broker.Service.
//
// Writes (topic changes, produces, group changes) are accepted only by the
// leader and acknowledged only after their Raft entry is committed by a
// majority and applied; a follower refuses them with NOT_LEADER naming the
// leader's API address, which means not applied, so clients may resend
// safely. Reads are served by any node from its applied state, which holds
// only committed entries. docs/api.md documents every endpoint and error
// code; docs/design.md has the map of the code.
//
// Close shuts down in order: the core refuses new writes, the HTTP server
// drains (long polls wake), the core's goroutines stop, a leader hands
// leadership over, and the files are synced and closed.
package broker
