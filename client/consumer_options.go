package client

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// ConsumerOpt configures a Consumer; see NewConsumer. Every Opt
// (WithLogger, WithRequestTimeout, WithRetryBackoff, WithHTTPClient) is a
// ConsumerOpt too.
type ConsumerOpt interface {
	applyConn(*connConfig)
}

// consumerOpt is an option only consumers take. NewConsumer applies it to
// the whole consumer configuration; as a ConsumerOpt its connection part
// does nothing.
type consumerOpt struct{ fn func(*consumerConfig) }

func (consumerOpt) applyConn(*connConfig) {}

// Consumer defaults; each option's doc says how it was chosen.
const (
	DefaultSessionTimeout     = 10 * time.Second
	DefaultAutoCommitInterval = 5 * time.Second
	DefaultFetchMaxBytes      = 1 << 20
	DefaultMaxWait            = time.Second
	DefaultPrefetch           = 2
)

// consumerConfig is a Consumer's configuration.
type consumerConfig struct {
	conn connConfig

	assignment map[TopicQueue]Start // WithAssignment
	group      string               // WithGroup
	topics     []string

	sessionTimeout time.Duration
	autoCommit     time.Duration // 0: off
	fetchMaxBytes  int
	maxWait        time.Duration
	prefetch       int
	startNoCommit  Start
	minIndex       uint64 // WithMinIndex
	instanceID     string // WithInstanceID
	onAssigned     func([]TopicQueue)
	onRevoked      func([]TopicQueue)

	errs []error // option errors found while applying, reported by validate
}

func defaultConsumerConfig() consumerConfig {
	return consumerConfig{
		conn:           defaultConnConfig(),
		sessionTimeout: DefaultSessionTimeout,
		autoCommit:     DefaultAutoCommitInterval,
		fetchMaxBytes:  DefaultFetchMaxBytes,
		maxWait:        DefaultMaxWait,
		prefetch:       DefaultPrefetch,
		startNoCommit:  AtStart(),
	}
}

func (c *consumerConfig) validate() error {
	if err := c.conn.validate(); err != nil {
		return err
	}
	if len(c.errs) > 0 {
		return errors.Join(c.errs...)
	}
	switch {
	case c.group == "" && len(c.assignment) == 0:
		return errors.New("a consumer needs WithGroup or WithAssignment")
	case c.group != "" && len(c.assignment) > 0:
		return errors.New("WithGroup and WithAssignment exclude each other")
	case c.group == "" && c.instanceID != "":
		return errors.New("WithInstanceID needs WithGroup")
	case c.group == "" && (c.onAssigned != nil || c.onRevoked != nil):
		return errors.New("WithRebalanceCallbacks needs WithGroup")
	case c.sessionTimeout < time.Second || c.sessionTimeout > 5*time.Minute:
		// The brokers' bounds.
		return fmt.Errorf("WithSessionTimeout: %v is not in [1s, 5m]", c.sessionTimeout)
	case c.autoCommit < 0:
		return fmt.Errorf("WithAutoCommit: %v is negative", c.autoCommit)
	case c.fetchMaxBytes < 1 || c.fetchMaxBytes > 64<<20:
		return fmt.Errorf("WithFetchMaxBytes: %d is not in [1, 64 MiB]", c.fetchMaxBytes)
	case c.maxWait < 0:
		return fmt.Errorf("WithMaxWait: %v is negative", c.maxWait)
	case c.prefetch < 1:
		return fmt.Errorf("WithPrefetch: %d is not positive", c.prefetch)
	case c.startNoCommit.kind == startOffset:
		return errors.New("WithStartWhenNoCommit: want AtStart, AtEnd or AtTime, not AtOffset")
	}
	return nil
}

// Start is where a consumer starts reading a queue: AtOffset, AtStart,
// AtEnd or AtTime.
type Start struct {
	kind   startKind
	offset uint64
	time   time.Time
}

type startKind uint8

const (
	startEarliest startKind = iota
	startLatest
	startOffset
	startTime
)

// AtOffset starts at offset n. An offset no longer stored (deleted by
// retention) or not stored yet restarts at the earliest stored message,
// with a warning in the log.
func AtOffset(n uint64) Start { return Start{kind: startOffset, offset: n} }

// AtStart starts at the earliest stored message.
func AtStart() Start { return Start{kind: startEarliest} }

// AtEnd starts after the newest message: only messages produced from now
// on are read.
func AtEnd() Start { return Start{kind: startLatest} }

// AtTime starts at the first message whose timestamp is at or after t.
// Timestamps are set by producers and need not increase with the offset:
// the queue is read from the first batch whose newest message reaches t,
// and messages older than t are skipped until the first one that is not.
func AtTime(t time.Time) Start { return Start{kind: startTime, time: t} }

func (s Start) String() string {
	switch s.kind {
	case startLatest:
		return "end"
	case startOffset:
		return fmt.Sprintf("offset %d", s.offset)
	case startTime:
		return "time " + s.time.UTC().Format(time.RFC3339Nano)
	}
	return "start"
}

// WithAssignment reads the given queues of topic, each from its Start,
// without a consumer group: nothing is committed, and no other consumer
// is told. Call it once per topic. It excludes WithGroup.
func WithAssignment(topic string, queues map[int]Start) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) {
		if topic == "" || len(queues) == 0 {
			c.errs = append(c.errs, errors.New("WithAssignment: a topic and at least one queue are needed"))
			return
		}
		if c.assignment == nil {
			c.assignment = map[TopicQueue]Start{}
		}
		for q, s := range queues {
			if q < 0 {
				c.errs = append(c.errs, fmt.Errorf("WithAssignment: queue %d is negative", q))
				continue
			}
			c.assignment[TopicQueue{Topic: topic, Queue: q}] = s
		}
	}}
}

// WithGroup makes the consumer a member of consumer group name, reading
// the given topics. The group's brokers assign each queue of the topics to
// exactly one member; the consumer reads the queues assigned to it, each
// from the group's committed offset (WithStartWhenNoCommit when there is
// none), and commits its progress there. It excludes WithAssignment.
func WithGroup(name string, topics ...string) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) {
		if name == "" || len(topics) == 0 {
			c.errs = append(c.errs, errors.New("WithGroup: a group name and at least one topic are needed"))
			return
		}
		c.group = name
		c.topics = append([]string(nil), topics...)
		sort.Strings(c.topics)
	}}
}

// WithSessionTimeout sets how long the group's leader broker waits
// without a heartbeat before it removes the consumer from the group and
// gives its queues to the other members. Heartbeats are sent every third
// of it. It must be in [1s, 5m] (the brokers' bounds).
//
// Default 10s: a consumer that dies is replaced within seconds, while a
// leader election (under a second) or a garbage-collection pause does not
// cost the consumer its queues. Group mode only.
func WithSessionTimeout(d time.Duration) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) { c.sessionTimeout = d }}
}

// WithAutoCommit commits, every interval, the offsets of the records that
// Poll returned before its latest call: records an application received
// are taken as processed once it asks for more. A queue the group takes
// away is committed the same way when it is handed over (see Consumer,
// "Rebalances"), and Close commits every record Poll returned. 0 turns
// auto-commit off: the application commits with Commit or CommitOffsets
// after processing, and the consumer commits nothing by itself, neither on
// a rebalance nor in Close (commit in the OnRevoked callback of
// WithRebalanceCallbacks, which runs before a queue is handed over and in
// Close).
//
// Default 5s: after a crash at most a few seconds of messages are
// delivered again, for one commit (a Raft write) per consumer every 5 s.
// Group mode only; without a group nothing is committed.
func WithAutoCommit(interval time.Duration) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) { c.autoCommit = interval }}
}

// WithFetchMaxBytes bounds one fetch's answer (GET .../batches max_bytes):
// the frames of whole stored batches, but the first batch is always
// returned whole even when it alone is larger. At most 64 MiB.
//
// Default 1 MiB, the producer's default batch size: a fetch carries a few
// batches, enough to amortize the request at full speed.
func WithFetchMaxBytes(n int) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) { c.fetchMaxBytes = n }}
}

// WithMaxWait sets how long a fetch waits on the broker for a message
// when the queue has none (the long poll, wait_ms). It must not exceed
// the brokers' limit (30 s by default): longer waits are refused with
// INVALID_ARGUMENT, which Poll reports. 0 asks without waiting, which
// polls in a busy loop.
//
// Default 1s: a new message is fetched as soon as it is committed, and an
// idle queue costs one request a second.
func WithMaxWait(d time.Duration) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) { c.maxWait = d }}
}

// WithPrefetch sets how many fetched answers (each up to
// WithFetchMaxBytes) the consumer buffers per queue ahead of Poll. Each
// assigned queue has a goroutine that fetches until its buffer is full.
//
// Default 2: the next answer is ready while the application processes one,
// for at most 2 MiB buffered per queue (3 while a fetch is under way).
func WithPrefetch(n int) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) { c.prefetch = n }}
}

// WithMinIndex makes every read of the consumer (fetches, the queue
// descriptions behind AtStart, AtEnd and Lag) wait for position token
// index: a Result's Index, or the highest of several. Whichever broker
// answers has then applied every write up to it, so a consumer started
// after a produce sees that produce's messages even when a follower
// answers, and AtEnd starts after them. A broker behind the token waits
// for it (up to WithMaxWait, or 5 s when that is 0) or refuses with a
// retriable UNAVAILABLE, which the consumer resends.
//
// Default 0: reads show whatever the answering broker has applied, which
// on a follower may lag the leader by a few milliseconds.
func WithMinIndex(index uint64) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) { c.minIndex = index }}
}

// WithStartWhenNoCommit sets where a group member starts reading a queue
// for which the group has no committed offset: AtStart, AtEnd or AtTime.
//
// Default AtStart: a new group reads everything still stored.
func WithStartWhenNoCommit(s Start) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) { c.startNoCommit = s }}
}

// WithInstanceID makes the consumer a static member of its group, like
// Kafka's group.instance.id: id names this instance of the application
// (say, its host name or pod ordinal) and must be unique in the group. A
// join with the instance id of a current member replaces that member at
// once — it is fenced, its member id is gone — and takes over its queues
// exactly, without moving any other queue. Close of a static member
// commits (with auto-commit) but does not leave: its queues wait for its
// restart under the same id, up to its session timeout
// (WithSessionTimeout), and only then go to the other members. A restart
// within the session timeout thus costs no rebalance. A static member the
// group removed (its session expired, or another consumer joined with its
// id) joins again under the same id, so two live consumers sharing an id
// keep replacing each other: ids must be unique among running instances.
//
// Default "": a dynamic member, which leaves its group in Close, its
// queues going to the other members at once. Group mode only.
func WithInstanceID(id string) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) {
		if id == "" {
			c.errs = append(c.errs, errors.New("WithInstanceID: empty id"))
			return
		}
		c.instanceID = id
	}}
}

// WithRebalanceCallbacks sets functions the consumer calls when the group
// gives it queues and takes them away. Either may be nil.
//
// onAssigned gets the queues the consumer has just started delivering
// (their fetchers started at the group's committed offsets). onRevoked
// gets the queues the consumer is giving up, before it commits and hands
// them over: from the moment the consumer learns a queue is revoked, Poll
// returns no record of it, so when onRevoked runs the application has
// every record of the queue it will get, and may finish and commit them
// (Commit or CommitOffsets still accept a queue until it is handed over;
// with auto-commit the consumer commits what Poll returned before its
// latest call right after onRevoked returns). onRevoked is also called,
// after the fact, for queues the consumer lost without handing them over
// (its session expired: committing them then fails), and in Close for
// every queue it still owns.
//
// The callbacks run one at a time, never concurrently, on whichever
// goroutine applies the change: the consumer's heartbeat goroutine, the
// caller of NewConsumer (the first assignment), of Poll (a queue revoked
// while the application was processing the records of the previous Poll
// is handed over at the start of the next Poll, before Poll returns
// anything), of Commit (a refused commit refreshes the membership) or of
// Close. They may call Commit, CommitOffsets, Seek, Assignment and Lag,
// but not Poll or Close, and should return quickly: the group waits for the
// hand-over, and a member that does not release a revoked queue within its
// session timeout is removed from the group. Group mode only.
func WithRebalanceCallbacks(onAssigned, onRevoked func(queues []TopicQueue)) ConsumerOpt {
	return consumerOpt{func(c *consumerConfig) { c.onAssigned, c.onRevoked = onAssigned, onRevoked }}
}
