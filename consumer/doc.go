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
// Fencing: every membership change increments the group's generation and
// recomputes the assignment. A commit is accepted only from a current
// member, for its current generation, for queues assigned to it, so a
// member that lost a queue (or was expired) cannot move its offsets.
package consumer
