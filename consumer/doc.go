// Package consumer is the replicated state of consumer groups: members,
// their subscriptions, the assignment of queues to members, the group
// generation, and committed offsets. It is a deterministic state machine
// the broker's FSM drives; every node reaches the same assignment.
//
// Membership changes (join, leave, expiry) and offset commits are Raft
// commands. Heartbeats are not: the leader tracks them in memory and
// proposes a leave when a member's session times out (a new leader gives
// every member a fresh session timeout).
//
// Handover: every queue has a target (where the assignor puts it) and at
// most one owner (who may deliver it). A queue whose target moves stays
// with its owner until the owner releases it (committing its offset in the
// same command), leaves or is removed; only then does the target own it.
// So no two members own a queue at once.
//
// Fencing is by ownership: a commit is accepted only from a current member
// for queues it owns now, so a member that lost a queue (or was expired)
// cannot move its offsets. Logs of the first protocol (codes 16-18) replay
// with that protocol's rules (Group.legacy).
package consumer
