// Package service is the broker's protocol-neutral core: every operation a
// broker offers (produce, fetch, topics, idempotent producers, consumer
// groups, cluster status, leadership transfer) with typed requests and
// results. Front-ends (the HTTP API in package httpapi, and the coming
// Kafka-protocol listener and console) are thin adapters over it: they
// decode their protocol, call one method, and encode the result or the
// error.
//
// The service owns the rules that must not differ between front-ends:
//   - Leader checks: RequireLeader is the one place that decides; every
//     write calls it, so a follower refuses writes with NOT_LEADER naming
//     the leader's API address (not applied: safe to resend).
//   - Admission: message and batch validation before anything is proposed.
//   - Error mapping: AsError turns any error into a *wire.APIError with a
//     stable code (docs/api.md), saying whether a retry may help and
//     whether the request was certainly not applied.
//
// Reads are served by any node from its applied state, which holds only
// committed entries. Writes return once their entry is committed by a
// majority and applied here.
//
// Concurrency: all methods are safe for concurrent use. The service owns
// two goroutines (peer refresh, member-session expiry) that Close stops.
package service
