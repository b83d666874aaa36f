package wire

import (
	"encoding/base64"
	"time"
	"unicode/utf8"
)

// JSON shapes of the HTTP API, shared by the broker, the SDK and mqctl.
// docs/api.md documents each endpoint. These shapes are a contract: extend
// them, never change them.

// Error codes. Each cause has one stable code; Retriable says whether a
// client may send the same request again.
const (
	CodeTopicNotFound    = "TOPIC_NOT_FOUND"
	CodeTopicExists      = "TOPIC_EXISTS"
	CodeQueueNotFound    = "QUEUE_NOT_FOUND"
	CodeInvalidArgument  = "INVALID_ARGUMENT"
	CodeMalformedBatch   = "MALFORMED_BATCH"
	CodeMessageTooLarge  = "MESSAGE_TOO_LARGE"
	CodeRequestTooLarge  = "REQUEST_TOO_LARGE"
	CodeOffsetOutOfRange = "OFFSET_OUT_OF_RANGE"
	CodeNotLeader        = "NOT_LEADER"
	CodeUnavailable      = "UNAVAILABLE"
	CodeNotFound         = "NOT_FOUND"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodeUnsupportedMedia = "UNSUPPORTED_MEDIA_TYPE"
	CodeInternal         = "INTERNAL"
	// Idempotent produce.
	CodeUnknownProducer    = "UNKNOWN_PRODUCER"
	CodeOutOfOrderSequence = "OUT_OF_ORDER_SEQUENCE"
	CodeDuplicateSequence  = "DUPLICATE_SEQUENCE"
	// issue 11: quotas and validation
	CodeTooManyTopics   = "TOO_MANY_TOPICS"   // the broker's topic quota is reached
	CodeTooManyQueues   = "TOO_MANY_QUEUES"   // a topic asks for more queues than the broker's quota
	CodeTooManyGroups   = "TOO_MANY_GROUPS"   // the broker's consumer group quota is reached
	CodeTooManyMembers  = "TOO_MANY_MEMBERS"  // the group's member quota is reached
	CodeCommandTooLarge = "COMMAND_TOO_LARGE" // a write would encode to a log entry over the command bound
	// issue 11: admission and disk
	// CodeOverloaded (503): the broker is shedding load (its in-flight
	// request bytes are over budget); nothing was read or applied: back off
	// and resend.
	CodeOverloaded = "OVERLOADED"
	// CodeDiskFull (507): free space in the leader's data directory is
	// below its watermark; nothing was applied: back off and resend.
	CodeDiskFull = "DISK_FULL"
)

// ErrorBody is every error response: {"error":{...}}.
type ErrorBody struct {
	Error APIError `json:"error"`
}

// APIError describes a failed request.
type APIError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Leader    string `json:"leader,omitempty"` // NOT_LEADER: the leader's API address, if known
	Retriable bool   `json:"retriable"`
	// NotApplied is true when the broker guarantees the request changed
	// nothing (refused before it was proposed, or refused by the state
	// machine), so resending it cannot store anything twice. It is false
	// only when the outcome is unknown (a write whose commit could not be
	// confirmed, an internal error).
	NotApplied bool `json:"not_applied"`
	// OFFSET_OUT_OF_RANGE: the valid range [Earliest, Latest].
	Earliest *uint64 `json:"earliest,omitempty"`
	Latest   *uint64 `json:"latest,omitempty"`
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// CreateTopicRequest is POST /v1/topics.
type CreateTopicRequest struct {
	Name            string `json:"name"`
	Queues          int    `json:"queues,omitempty"`
	RetentionMs     int64  `json:"retention_ms,omitempty"`
	RetentionBytes  int64  `json:"retention_bytes,omitempty"`
	MaxMessageBytes int    `json:"max_message_bytes,omitempty"`
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name            string      `json:"name"`
	Queues          int         `json:"queues"`
	RetentionMs     int64       `json:"retention_ms"`
	RetentionBytes  int64       `json:"retention_bytes"`
	MaxMessageBytes int         `json:"max_message_bytes"`
	QueueInfo       []QueueInfo `json:"queue_info,omitempty"`
	// Index is set in the answer to a create: the log index at which the
	// topic was created, a position token for min_index.
	Index uint64 `json:"index,omitempty"`
}

// QueueInfo is a queue's offset range: messages [Earliest, Next) are stored.
type QueueInfo struct {
	Queue    int    `json:"queue"`
	Earliest uint64 `json:"earliest"`
	Next     uint64 `json:"next"`
	// Bytes is the size of the stored batches of [Earliest, Next), as
	// the producers sent them (compressed batches count compressed).
	Bytes uint64 `json:"bytes"`
}

// TopicList is GET /v1/topics.
type TopicList struct {
	Topics []TopicInfo `json:"topics"`
}

// ProduceMessage is one message of POST /v1/topics/{topic}/messages.
type ProduceMessage struct {
	Key         *string           `json:"key,omitempty"`
	Value       *string           `json:"value,omitempty"`
	ValueBase64 *string           `json:"value_base64,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Queue       *int              `json:"queue,omitempty"`
}

// ProduceRequest is the body of POST /v1/topics/{topic}/messages.
type ProduceRequest struct {
	Messages []ProduceMessage `json:"messages"`
}

// ProduceResult is one message's position.
type ProduceResult struct {
	Queue  int    `json:"queue"`
	Offset uint64 `json:"offset"`
}

// ProduceResponse lists one result per message, in request order.
type ProduceResponse struct {
	Results []ProduceResult `json:"results"`
	// Index is the log index at which the messages committed: a position
	// token. A read with min_index=Index, on any node, shows them.
	Index uint64 `json:"index"`
}

// BatchProduceResponse answers a binary batch produce.
type BatchProduceResponse struct {
	Queue      int    `json:"queue"`
	BaseOffset uint64 `json:"base_offset"`
	Count      uint32 `json:"count"`
	// Duplicate: the batch was a resend of one already stored (same
	// producer id and sequence); the offsets are the original ones.
	Duplicate bool `json:"duplicate,omitempty"`
	// Index is the log index at which the batch committed (for a
	// duplicate, of the resend, which is after the original): a position
	// token for min_index.
	Index uint64 `json:"index"`
}

// InitProducerResponse is POST /v1/producers: a producer id for
// idempotent produce.
type InitProducerResponse struct {
	ProducerID uint64 `json:"producer_id"`
}

// FetchedMessage is one message of a JSON fetch. Value (Key) is set when
// the value (key) is valid UTF-8, ValueBase64 (KeyBase64) otherwise.
type FetchedMessage struct {
	Offset      uint64            `json:"offset"`
	Key         *string           `json:"key,omitempty"`
	KeyBase64   *string           `json:"key_base64,omitempty"` // set instead of Key when the key is not valid UTF-8
	Value       *string           `json:"value,omitempty"`
	ValueBase64 *string           `json:"value_base64,omitempty"`
	Headers     map[string]string `json:"headers"`
	Timestamp   string            `json:"timestamp"`
}

// FetchResponse is GET .../messages: NextOffset is where to continue.
type FetchResponse struct {
	Messages   []FetchedMessage `json:"messages"`
	NextOffset uint64           `json:"next_offset"`
}

// ClusterNode is one member in GET /v1/cluster.
type ClusterNode struct {
	ID           string `json:"id"`
	Role         string `json:"role"`
	APIAddr      string `json:"api_addr"`
	RaftAddr     string `json:"raft_addr"`
	KafkaAddr    string `json:"kafka_addr,omitempty"` // the Kafka listener it advertises
	Term         uint64 `json:"term"`
	FirstIndex   uint64 `json:"first_index"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Reachable    bool   `json:"reachable"`
	Error        string `json:"error,omitempty"`
	// StatusAgeMs is how old the figures are: 0 for the answering node,
	// the age of the member's newest report otherwise; omitted when none
	// ever arrived.
	StatusAgeMs *int64 `json:"status_age_ms,omitempty"`
	// DiskError is set when the member's commit log failed: it stopped its
	// Raft (no leading, no voting) until it is restarted.
	DiskError string `json:"disk_error,omitempty"`
}

// NodeHeader names the answering node (its id) on every API answer, so a
// client can tell brokers apart whatever addresses it reaches them by.
const NodeHeader = "LedgerMQ-Node"

// LeaderView is GET /v1/leader: the answering node's view of the leader,
// from local state (cheap; for clients' hot paths).
type LeaderView struct {
	Leader     string `json:"leader"`               // "" when no leader is known
	LeaderAPI  string `json:"leader_api,omitempty"` // omitted when not known yet
	Term       uint64 `json:"term"`
	AnsweredBy string `json:"answered_by"`
	// SilentMs is how long ago the answering follower last heard from the
	// leader, in milliseconds (leaders send several heartbeats a tenth of
	// a second); omitted on the leader itself.
	SilentMs int64 `json:"silent_ms,omitempty"`
}

// ClusterStatus is GET /v1/cluster.
type ClusterStatus struct {
	Leader     string        `json:"leader"`
	LeaderAPI  string        `json:"leader_api,omitempty"`
	Term       uint64        `json:"term"`
	GroupID    uint32        `json:"group_id"`
	AnsweredBy string        `json:"answered_by"`
	Nodes      []ClusterNode `json:"nodes"`
}

// TransferRequest is POST /v1/cluster/transfer-leadership.
type TransferRequest struct {
	To string `json:"to,omitempty"`
}

// Binary fetch: GET /v1/topics/{topic}/queues/{queue}/batches answers with
// Content-Type ContentType and a body of frames, each
//
//	baseOffset uint64 | batchLen uint32 | batch
//
// and the header X-Next-Offset. The batches are the stored bytes.
const FetchFrameHeader = 12

// Consumer groups. Error codes of the group endpoints.
const (
	CodeGroupNotFound     = "GROUP_NOT_FOUND"
	CodeUnknownMember     = "UNKNOWN_MEMBER"     // rejoin the group
	CodeIllegalGeneration = "ILLEGAL_GENERATION" // a commit names a generation the group never had: heartbeat
	CodeNotAssigned       = "NOT_ASSIGNED"       // the queue belongs to another member
	CodeGroupActive       = "GROUP_ACTIVE"       // offsets can be reset only with no members
)

// TopicQueue names one queue of one topic.
type TopicQueue struct {
	Topic string `json:"topic"`
	Queue int    `json:"queue"`
}

// JoinGroupRequest is POST /v1/groups/{group}/members. An empty MemberID
// asks the broker for a new one; a known one re-joins. InstanceID makes
// the member static (like Kafka's group.instance.id): a join with the
// instance id of a current member replaces that member, which is fenced
// (its id is gone), and takes over its queues without moving any.
type JoinGroupRequest struct {
	MemberID         string   `json:"member_id,omitempty"`
	InstanceID       string   `json:"instance_id,omitempty"`
	Topics           []string `json:"topics"`
	SessionTimeoutMs int64    `json:"session_timeout_ms,omitempty"`
}

// Membership is a member's view of its group: the answer to a join, to
// every heartbeat and to a release. The member owns, and may deliver, the
// queues in Assignment. Queues in Revoking it still owns but must give up:
// stop delivering them, commit what the application processed, and
// release them (POST .../release); only then does the group hand them to
// their next owner. Generation changes whenever anything in the group
// changes (members, targets, owners).
type Membership struct {
	Group               string       `json:"group"`
	MemberID            string       `json:"member_id"`
	Generation          uint64       `json:"generation"`
	Assignment          []TopicQueue `json:"assignment"`
	Revoking            []TopicQueue `json:"revoking,omitempty"`
	HeartbeatIntervalMs int64        `json:"heartbeat_interval_ms"`
	SessionTimeoutMs    int64        `json:"session_timeout_ms"`
}

// HeartbeatRequest is POST /v1/groups/{group}/members/{member}/heartbeat.
// With WaitMs the heartbeat is a long poll: answered at once when the
// group's generation differs from Generation, else when it changes or
// after WaitMs (at most a third of the session timeout).
type HeartbeatRequest struct {
	Generation uint64 `json:"generation"`
	WaitMs     int64  `json:"wait_ms,omitempty"`
}

// ReleaseRequest is POST /v1/groups/{group}/members/{member}/release: the
// member gives up Queues (those of its Revoking set it has stopped),
// committing Offsets for them in the same step (each optional). Queues the
// member no longer owns are skipped, their offsets ignored: a resent
// release changes nothing. The answer is the member's Membership.
type ReleaseRequest struct {
	Queues  []TopicQueue   `json:"queues"`
	Offsets []CommitOffset `json:"offsets,omitempty"`
}

// CommitOffset is the next offset to consume in a queue.
type CommitOffset struct {
	Topic  string `json:"topic"`
	Queue  int    `json:"queue"`
	Offset uint64 `json:"offset"`
}

// CommitRequest is POST /v1/groups/{group}/offsets. The commit is refused
// (NOT_ASSIGNED, UNKNOWN_MEMBER) unless the member owns every queue in it
// now (its Assignment or Revoking): a queue has one owner at a time, so a
// stale member cannot move another's offsets. Generation is the latest the
// member knows; one the group has not reached is refused
// (ILLEGAL_GENERATION).
type CommitRequest struct {
	MemberID   string         `json:"member_id"`
	Generation uint64         `json:"generation"`
	Offsets    []CommitOffset `json:"offsets"`
}

// ResetOffsetsRequest is POST /v1/groups/{group}/reset-offsets. To is
// "earliest", "latest", "time" (with Timestamp, RFC3339) or "offset" (with
// Offset). Allowed only while the group has no members.
type ResetOffsetsRequest struct {
	Topic     string `json:"topic"`
	To        string `json:"to"`
	Timestamp string `json:"timestamp,omitempty"`
	Offset    uint64 `json:"offset,omitempty"`
}

// GroupQueue is one queue in a group description.
type GroupQueue struct {
	Topic string `json:"topic"`
	Queue int    `json:"queue"`
	Owner string `json:"owner,omitempty"`
	// Target is the member the queue is moving to while its owner has not
	// released it yet; omitted when the owner is the target.
	Target    string  `json:"target,omitempty"`
	Committed *uint64 `json:"committed,omitempty"`
	Next      uint64  `json:"next"`
	Lag       uint64  `json:"lag"`
}

// GroupMember is one member in a group description.
type GroupMember struct {
	MemberID         string       `json:"member_id"`
	InstanceID       string       `json:"instance_id,omitempty"`
	Topics           []string     `json:"topics"`
	SessionTimeoutMs int64        `json:"session_timeout_ms"`
	Assignment       []TopicQueue `json:"assignment"`
	Revoking         []TopicQueue `json:"revoking,omitempty"`
}

// GroupInfo is GET /v1/groups/{group}.
type GroupInfo struct {
	Group      string        `json:"group"`
	Generation uint64        `json:"generation"`
	Members    []GroupMember `json:"members"`
	Queues     []GroupQueue  `json:"queues"`
}

// GroupList is GET /v1/groups.
type GroupList struct {
	Groups []GroupInfo `json:"groups"`
}

// NewFetchedMessage is a stored message as the JSON fetch shows it: text
// where the key or value is valid UTF-8, base64 otherwise.
func NewFetchedMessage(offset uint64, m *Message) FetchedMessage {
	f := FetchedMessage{Offset: offset, Headers: map[string]string{}, Timestamp: m.Timestamp.UTC().Format(time.RFC3339Nano)}
	if m.Key != nil && utf8.Valid(m.Key) {
		k := string(m.Key)
		f.Key = &k
	} else if m.Key != nil {
		k := base64.StdEncoding.EncodeToString(m.Key)
		f.KeyBase64 = &k
	}
	if utf8.Valid(m.Value) {
		v := string(m.Value)
		f.Value = &v
	} else {
		v := base64.StdEncoding.EncodeToString(m.Value)
		f.ValueBase64 = &v
	}
	for _, h := range m.Headers {
		f.Headers[h.Key] = string(h.Value)
	}
	return f
}
