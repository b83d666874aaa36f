// Package auth is the broker group's replicated authentication and
// authorization state (issue 12): API tokens (argon2id hashes, never the
// secret), the groups each principal belongs to, and ACLs. The fsm package
// drives it like topics and consumer: commands are encoded here (JSON
// payloads behind the registry's code byte), applied deterministically by
// State, and snapshotted in a section of their own (Snap).
//
// Around the state: Authorizer answers whether a principal may perform an
// operation on a resource (deny beats allow, prefixed patterns, "*",
// "User:*", implied describe, superusers); Verifier checks bearer tokens
// against the state with a per-node cache that a revocation empties at
// once; Audit is the rate-limited audit log.
//
// Concurrency: Apply methods run on the FSM goroutine; the read methods
// of State, Authorizer and Verifier are safe alongside them.
package auth
