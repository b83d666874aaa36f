// Package client is the Go SDK of LedgerMQ. It speaks the brokers' HTTP API
// (docs/api.md) and builds binary batches with package wire; it imports
// nothing else of the project.
//
// # Producing
//
//	p, err := client.NewProducer([]string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"},
//		client.WithCompression(wire.CodecZstd))
//	if err != nil { ... }
//	defer p.Close()
//
//	// Synchronous: waits for the message to be committed.
//	res, err := p.Produce(ctx, &client.Message{Topic: "orders", Key: []byte("customer-42"), Value: v})
//
//	// Asynchronous: the callback receives the result.
//	p.ProduceAsync(&client.Message{Topic: "orders", Value: v}, func(r client.Result, err error) { ... })
//	err = p.Flush(ctx)
//
// Messages are batched per topic and queue: a queue's batch is sent when it
// reaches the batch size or after the linger, as one binary batch
// (POST /v1/topics/{t}/queues/{q}/batches) to the group's leader. The queue
// is the message's explicit Queue, else KeyQueue of its key (the brokers'
// hash: keyed messages land in the same queue whichever endpoint wrote
// them), else chosen round-robin. A topic's queue count and message size
// limit are read once (GET /v1/topics/{t}) and cached.
//
// # Delivery
//
// The producer finds the leader by itself: a 421 NOT_LEADER answer names
// the leader, which the producer follows at once; a broker it cannot reach
// sends it to the next one of the list; a leader that goes silent (power
// or network lost, a stalled process: no connection reset) is left as soon
// as the other brokers name a newer leader, 300 ms into a stalled request
// by default (WithStallTimeout), the stalled batch counting as one whose
// outcome is unknown (below). Failures that resending can cure
// are resent with exponential backoff until the delivery timeout
// (WithDeliveryTimeout); anything else is reported to the message's
// callback, wrapped with context, as an *Error (broker answers, with the
// wire.Code* codes), ErrUnknownOutcome, ErrDeliveryTimeout or ErrClosed.
//
// With idempotence (the default, WithIdempotence) the producer gets a
// producer id (POST /v1/producers) and each batch carries that id and the
// sequence number of its first record, counted per queue from 0. A batch
// whose outcome is unknown — 503 UNAVAILABLE (the leader lost leadership or
// timed out during the commit), a lost connection, a request timeout — is
// resent with the same id and sequence, and a broker that already stored it
// answers with the original offsets (Result.Duplicate) instead of storing
// it again. Every message acknowledged is therefore stored exactly once,
// also across leader changes. Without idempotence such a batch fails with
// ErrUnknownOutcome and is not resent.
//
// If the brokers forget the producer id (400 UNKNOWN_PRODUCER: it was idle
// for longer than the brokers' producer TTL, or pushed out by newer
// producers), the producer gets a new id and every queue restarts its
// sequence at 0 with its unacknowledged batches. Batches whose outcome was
// unknown at that moment are then resent under the new id, which the
// brokers cannot match with the old one: those few batches may be stored
// twice. The same happens to one queue when a batch of it that may have
// been stored fails for good (its delivery timeout passes): the queue moves
// to a new producer id so that its later batches are not refused as out of
// sequence.
//
// # Ordering
//
// Messages of one queue are stored in the order they were produced, and
// their callbacks run in that order. A queue sends its batches in sequence
// order, one at a time by default (WithMaxInFlight allows pipelining).
// When an attempt fails retriably, the queue sends nothing new until all
// its attempts under way have come back, then resends from the first
// unacknowledged batch, in order; with idempotence the brokers refuse a
// batch that would skip one (409 OUT_OF_ORDER_SEQUENCE, resent in order)
// and recognize batches already stored, so retries never reorder or
// duplicate messages. Without idempotence each queue has one batch in
// flight, so order is kept too, but a batch that fails with an unknown
// outcome may be missing before the following ones.
//
// # Resources
//
// Buffered messages are bounded (WithBufferedBytes): ProduceAsync blocks
// when the bound is reached. Each queue in use has one goroutine, plus one
// per request in flight; all belong to the Producer and stop in Close.
// There is no package-level state.
//
// # Defaults and how they were chosen
//
// Linger 5 ms, batches of 1 MiB, one batch in flight per queue, 64 MiB of
// buffer, no compression, idempotence on, delivery timeout 2 min, request
// timeout 15 s, retry backoff 20 ms to 1 s, close timeout 30 s. Linger,
// batch size and in-flight depth were measured against a 3-node group
// (TestMeasure in producer_test.go reproduces the runs); each option's
// documentation gives the figures and the reasons.
//
// # Consuming
//
//	c, err := client.NewConsumer(brokers, client.WithGroup("billing", "orders"))
//	if err != nil { ... }
//	defer c.Close() // commits what Poll returned, then leaves the group
//	for {
//		recs, err := c.Poll(ctx) // long-polls the brokers, prefetches per queue
//		if err != nil { ... }
//		for _, r := range recs { process(r.Topic, r.Queue, r.Offset, r.Value) }
//	}
//
// A consumer either reads queues it names (WithAssignment, with a Start:
// AtOffset, AtStart, AtEnd, AtTime) or joins a group (WithGroup). In a
// group the brokers assign each queue to one member and rebalance when a
// member joins, leaves or misses its session timeout (WithSessionTimeout,
// default 10 s). Heartbeats are long polls, so a member learns of a
// rebalance within milliseconds. A queue moves cooperatively, in two
// steps: its owner stops delivering it, commits what the application
// processed (the records Poll returned before its latest call) and
// releases it; only then does its next owner start it, from that commit.
// No two members deliver a queue at once, and queues that do not move
// keep flowing. Offsets are committed automatically (WithAutoCommit,
// default every 5 s, on every hand-over and in Close; only records
// returned before the latest Poll, i.e. already processed) or with
// Commit/CommitOffsets. Delivery is at least once; with idempotent
// producers and commit-after-process, a run in which no member crashes
// delivers each message once.
//
// Rebalance callbacks and static membership:
//
//	c, err := client.NewConsumer(brokers,
//		client.WithGroup("billing", "orders"),
//		client.WithInstanceID("billing-"+hostname), // static: a restart keeps the queues
//		client.WithRebalanceCallbacks(
//			func(qs []client.TopicQueue) { log.Println("assigned", qs) },
//			func(qs []client.TopicQueue) { log.Println("revoked", qs) }, // no record of qs after this
//		))
//
// The callbacks run one at a time on the goroutine that applies the change
// (the heartbeat goroutine, or inside NewConsumer, Poll, Commit or Close);
// they may commit but must not call Poll or Close. A static member's Close
// commits but does not leave: its queues wait for its restart under the
// same instance id, up to its session timeout.
//
// # Security
//
// Brokers that run with TLS and --auth (docs/security.md) want TLS and
// credentials: a client certificate signed by their --tls-ca (principal
// User:<CN>) and/or an API token (the token's principal wins):
//
//	pool := x509.NewCertPool()
//	pool.AppendCertsFromPEM(caPEM) // the CA that signed the brokers' certificates
//	cert, err := tls.LoadX509KeyPair("alice.crt", "alice.key") // optional
//	p, err := client.NewProducer([]string{"broker1:7001", "broker2:7001", "broker3:7001"},
//		client.WithTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}),
//		client.WithToken(os.Getenv("MQ_TOKEN")))
//
// WithTLS (or an https:// address) makes every request, leader hints
// included, use TLS with that configuration; WithToken sends
// "Authorization: Bearer <token>" on every request and is never logged.
// Both are Opts, so producers, consumers (group members too) and Admin
// take them. A refusal is final, never resent: an *Error with code
// UNAUTHENTICATED (401: no, bad or revoked credentials) or FORBIDDEN
// (403: the principal lacks the operation the message names). Admin
// manages tokens, ACLs and principal groups (CreateToken, AddACL, ...) and
// tells who the brokers take the caller for (WhoAmI).
//
// # Reading your writes
//
// Any broker serves reads from the committed state it has applied; a
// follower may lag the leader by a few milliseconds. Each Result carries
// the log Index at which its message committed (CreateTopic answers one
// too): pass the highest one seen to WithMinIndex or Admin.DescribeTopicAt
// and the answering broker, whichever it is, first applies everything up
// to it, so those writes are seen (docs/api.md, "Read consistency").
package client
