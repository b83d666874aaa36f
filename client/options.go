package client

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// ProducerOpt configures a Producer; see NewProducer.
type ProducerOpt interface {
	applyProducer(*producerConfig)
}

// Opt is an option every client of the package takes (connection, retries,
// logging). It is a ProducerOpt.
type Opt interface {
	ProducerOpt
	applyConn(*connConfig)
}

type connOpt struct{ fn func(*connConfig) }

func (o connOpt) applyConn(c *connConfig)         { o.fn(c) }
func (o connOpt) applyProducer(c *producerConfig) { o.fn(&c.conn) }

type producerOpt struct{ fn func(*producerConfig) }

func (o producerOpt) applyProducer(c *producerConfig) { o.fn(c) }

// producerConfig is a Producer's configuration.
type producerConfig struct {
	conn            connConfig
	linger          time.Duration
	batchBytes      int
	maxInFlight     int
	maxRequests     int
	bufferedBytes   int64
	codec           wire.Codec
	idempotent      bool
	deliveryTimeout time.Duration
	closeTimeout    time.Duration
}

// Defaults; each option's doc says how it was chosen.
const (
	DefaultLinger          = 5 * time.Millisecond
	DefaultBatchBytes      = 1 << 20
	DefaultMaxInFlight     = 1
	DefaultMaxRequests     = 8
	DefaultBufferedBytes   = 64 << 20
	DefaultDeliveryTimeout = 2 * time.Minute
	DefaultCloseTimeout    = 30 * time.Second
	DefaultRequestTimeout  = 15 * time.Second
	DefaultRetryBackoffMin = 20 * time.Millisecond
	DefaultRetryBackoffMax = time.Second
	// MaxRequestsLimit is the most WithMaxRequests takes.
	MaxRequestsLimit = 64
	// MaxInFlightLimit is the most batches per queue WithMaxInFlight
	// allows: the number of recent batches the broker remembers per
	// producer and queue. Every batch whose outcome is still open is then
	// among the ones the broker remembers, so a resend of it is always
	// recognized as a duplicate.
	MaxInFlightLimit = 8
)

func defaultProducerConfig() producerConfig {
	return producerConfig{
		conn:            defaultConnConfig(),
		linger:          DefaultLinger,
		batchBytes:      DefaultBatchBytes,
		maxInFlight:     DefaultMaxInFlight,
		maxRequests:     DefaultMaxRequests,
		bufferedBytes:   DefaultBufferedBytes,
		codec:           wire.CodecNone,
		idempotent:      true,
		deliveryTimeout: DefaultDeliveryTimeout,
		closeTimeout:    DefaultCloseTimeout,
	}
}

func (c *producerConfig) validate() error {
	if err := c.conn.validate(); err != nil {
		return err
	}
	switch {
	case c.linger < 0:
		return fmt.Errorf("WithLinger: %v is negative", c.linger)
	case c.batchBytes <= 0:
		return fmt.Errorf("WithBatchBytes: %d is not positive", c.batchBytes)
	case c.maxRequests < 1 || c.maxRequests > MaxRequestsLimit:
		return fmt.Errorf("WithMaxRequests: %d is not in [1, %d]", c.maxRequests, MaxRequestsLimit)
	case c.maxInFlight < 1 || c.maxInFlight > MaxInFlightLimit:
		return fmt.Errorf("WithMaxInFlight: %d is not in [1, %d]", c.maxInFlight, MaxInFlightLimit)
	case c.bufferedBytes <= 0:
		return fmt.Errorf("WithBufferedBytes: %d is not positive", c.bufferedBytes)
	case c.bufferedBytes < int64(c.batchBytes):
		return fmt.Errorf("WithBufferedBytes: %d is less than the batch size %d", c.bufferedBytes, c.batchBytes)
	case c.codec > wire.CodecZstd:
		return fmt.Errorf("WithCompression: %w %d", wire.ErrCodec, c.codec)
	case c.deliveryTimeout <= 0:
		return fmt.Errorf("WithDeliveryTimeout: %v is not positive", c.deliveryTimeout)
	case c.closeTimeout < 0:
		return fmt.Errorf("WithCloseTimeout: %v is negative", c.closeTimeout)
	}
	return nil
}

// WithLinger sets how long a queue's batch waits for more messages before
// it is sent, once the queue may send (a batch that reaches the batch size
// is sent at once). While a queue's batch is in flight the next one keeps
// filling regardless, so under load batches grow by themselves and the
// linger only matters when the queue is idle. A synchronous Produce pays
// the linger: use WithLinger(0) for latency-sensitive synchronous calls.
//
// Default 5ms, chosen by measurement (3-node `broker dev` group on one
// 2-CPU machine, fsync on every append, 1 KiB messages, 16 queues, the
// leader's request count from /metrics):
//
//	linger                          0       1ms     5ms     20ms
//	lone message, p50             1.8ms   3.7ms   8.3ms   22.9ms
//	unkeyed, 1000 msg/s: req/s      956     519     166      47
//	           mean ack           2.0ms   2.7ms   5.3ms   13.3ms
//	unkeyed, 10000 msg/s: req/s     910     510     147      44
//	           mean ack           5.1ms   4.5ms  14.5ms   27.2ms
//	keyed, 1000 msg/s: req/s        988     970     868     494
//	keyed, 10000 msg/s: req/s      1581    1704    1534     718
//	saturated, MB/s (two runs)   88–103  97–103  96–99   99–101
//
// Each request is a Raft entry written and fsynced on every node, so 5 ms
// cuts the leader's request rate several-fold for traffic spread over
// queues, for about 6 ms of latency; under saturation the linger makes no
// difference.
func WithLinger(d time.Duration) ProducerOpt {
	return producerOpt{func(c *producerConfig) { c.linger = d }}
}

// WithBatchBytes sets the most bytes of messages (keys, values, headers,
// before compression) one batch, and so one request, carries. A message
// larger than this is sent alone. It must stay below the brokers' request
// size limit (16 MiB by default) after compression.
//
// Default 1 MiB, chosen by measurement (setup as for WithLinger, 4 writers
// producing as fast as they can, one batch in flight, two 5 s runs per
// size): 64 KiB gave 31–46 MB/s, 256 KiB 65–96, 1 MiB 88–103 and 4 MiB
// 90–111. Past 1 MiB throughput is flat within the noise while each batch
// holds four times the memory.
func WithBatchBytes(n int) ProducerOpt {
	return producerOpt{func(c *producerConfig) { c.batchBytes = n }}
}

// WithMaxInFlight sets how many batches of one queue may be in flight at
// once (sent, outcome not yet known). Only the leader accepts produce
// requests, so this is the pipelining depth per broker and queue; batches
// of different queues are always sent independently of each other.
//
// Batches of a queue are always sent in sequence order, but each request
// travels on its own HTTP/1.1 connection and the broker handles them
// concurrently, so a batch can overtake the one before it. With
// idempotence the broker then refuses it with OUT_OF_ORDER_SEQUENCE (after
// replicating it: the check runs when the entry is applied) and the
// producer resends it in order: order is kept, at the cost of a wasted
// request.
//
// Default 1, chosen by measurement (3-node `broker dev` group on one
// 2-CPU machine, fsync on every append, 1 KiB keyed messages, 4 writers,
// 3 s per run, two runs): 16 queues gave 49/32 MB/s with 1 in flight,
// 43/29 with 2, 40/29 with 5 and 39/16 with 8, with 0, 46–76, 199–267 and
// 333–571 out-of-order resends; one queue gave 31–35 MB/s with 1 and
// 15–23 with 8. While a batch is in flight the next one fills, so one in
// flight already keeps batches large under load. At most MaxInFlightLimit
// (8), the number of recent batches the broker remembers per producer and
// queue, so that any batch whose outcome is unknown is resent within the
// window the broker de-duplicates. Conflict: without idempotence
// (WithIdempotence(false)) the broker cannot detect reordering, so each
// queue then has one batch in flight whatever this says.
func WithMaxInFlight(n int) ProducerOpt {
	return producerOpt{func(c *producerConfig) { c.maxInFlight = n }}
}

// WithMaxRequests sets how many produce requests the producer has in
// flight at once, for all its queues together (Kafka's
// max.in.flight.requests.per.connection). While all are in flight, the
// batches its queues send meanwhile wait and then travel together, as one
// POST /v1/produce and one Raft entry, so many queues with small batches
// cost one request per round instead of one per queue. A batch that finds
// a free request goes at once. Per-queue order and pipelining are
// WithMaxInFlight's. A merged request refused as a whole for being one
// (larger than the broker's request limit, say) is resent part by part;
// brokers without POST /v1/produce (404) turn merging off.
//
// Default 8, chosen by measurement (docs/benchmarks.md, issue 13: 1 topic
// of 16 queues, 4 producers, 20,000 msgs/s of 1 KiB, linger 1 ms, 3-node
// group and load generator on one 2-CPU machine): publish p50/p99 14/151
// ms with 1, 12/81 with 2, 9–12/50–77 with 4, 8/45 with 8, at the same
// broker CPU per message. At most MaxRequestsLimit (64).
func WithMaxRequests(n int) ProducerOpt {
	return producerOpt{func(c *producerConfig) { c.maxRequests = n }}
}

// WithBufferedBytes bounds the bytes of messages (keys, values, headers)
// produced but not yet acknowledged or failed. When the bound would be
// exceeded, ProduceAsync blocks and Produce waits (until its context ends)
// for earlier messages to complete. A single message larger than the bound
// is let through when nothing else is buffered.
//
// Default 64 MiB. Conflict: must be at least the batch size.
func WithBufferedBytes(n int64) ProducerOpt {
	return producerOpt{func(c *producerConfig) { c.bufferedBytes = n }}
}

// WithCompression sets the codec batches are compressed with:
// wire.CodecNone, CodecZstd, CodecS2, CodecSnappy or CodecGzip. The broker
// stores batches as sent, so compression saves network, disk and
// replication alike; consumers decompress.
//
// Default wire.CodecNone: no CPU cost, and nothing to gain on
// incompressible data. For compressible messages choose s2 (cheapest) or
// zstd (best ratio): on the setup described at WithLinger, with 1 KiB
// JSON-like messages compressing about 2:1, one run gave 84 MB/s without
// compression, 107 with s2, 107 with zstd, 75 with snappy and 45 with gzip.
func WithCompression(codec wire.Codec) ProducerOpt {
	return producerOpt{func(c *producerConfig) { c.codec = codec }}
}

// WithIdempotence turns the idempotent producer on or off.
//
// On (the default): the producer gets a producer id from the brokers
// (POST /v1/producers) and numbers each queue's records. A batch whose
// outcome is unknown (503 UNAVAILABLE, a lost connection, a timeout) is
// resent with the same producer id and sequence; if the first attempt was
// stored, the broker answers with its original offsets (Result.Duplicate)
// instead of storing it twice. So every message is stored once, in order.
//
// Off: batches carry no producer id. A batch is resent only when it was
// certainly not applied (NOT_LEADER, no connection); one whose outcome is
// unknown fails with ErrUnknownOutcome, never resent, so nothing is stored
// twice by the producer but a message may be lost or its fate unknown.
// Conflict: each queue then has one batch in flight (see WithMaxInFlight).
func WithIdempotence(on bool) ProducerOpt {
	return producerOpt{func(c *producerConfig) { c.idempotent = on }}
}

// WithDeliveryTimeout bounds the time from buffering a message (after any
// wait for buffer space) to its result, metadata lookups and retries
// included: a batch still unacknowledged when its oldest message has been
// buffered this long fails with ErrDeliveryTimeout. A batch in flight at
// that moment is waited for (at most the request timeout) before it fails.
//
// Default 2m: long enough to ride out leader elections (under a second)
// and broker restarts, short enough to surface a dead cluster.
func WithDeliveryTimeout(d time.Duration) ProducerOpt {
	return producerOpt{func(c *producerConfig) { c.deliveryTimeout = d }}
}

// WithCloseTimeout bounds how long Close waits for buffered messages to be
// delivered; those still undelivered then fail with ErrClosed.
//
// Default 30s. 0 fails buffered messages at once.
func WithCloseTimeout(d time.Duration) ProducerOpt {
	return producerOpt{func(c *producerConfig) { c.closeTimeout = d }}
}

// WithRetryBackoff sets the pause before resending after a retriable
// failure: min after the first failure, doubling with each consecutive
// failure up to max, with ±20% jitter. A NOT_LEADER answer naming another
// broker is followed at once, without a pause.
//
// Default 20ms to 1s: a leader election takes 0.3–0.6 s, so a few short
// pauses find the new leader quickly while a long outage is polled once a
// second.
func WithRetryBackoff(min, max time.Duration) Opt {
	return connOpt{func(c *connConfig) { c.backoffMin, c.backoffMax = min, max }}
}

// WithRequestTimeout bounds one HTTP request, from sending it to reading
// the whole answer. A produce request that times out has an unknown
// outcome (see WithIdempotence).
//
// Default 15s: longer than the brokers' 10 s commit timeout, so that a
// slow commit is answered (503 UNAVAILABLE) rather than abandoned.
func WithRequestTimeout(d time.Duration) Opt {
	return connOpt{func(c *connConfig) { c.requestTimeout = d }}
}

// WithStallTimeout sets how long a request to the leader may go without an
// answer before the client asks the other brokers who leads. A leader that
// loses power, its network or its CPU resets no connection; when the
// brokers name a newer leader, the stalled attempt is abandoned (outcome
// unknown: the idempotent producer resends it with the same sequence,
// which the brokers de-duplicate) and the client follows the new leader.
// While no other leader is named, the attempt goes on and the brokers are
// asked again every 100 ms. A read (a fetch, a status) without an answer
// after its long-poll wait plus twice this bound moves to the next broker.
//
// Default 300ms: below the brokers' default election timeout (400 ms), so
// the first probe comes about when a new leader can exist; a probe only
// costs a local read on each other broker. 0 disables stall detection
// (requests then wait up to the request timeout).
func WithStallTimeout(d time.Duration) Opt {
	return connOpt{func(c *connConfig) { c.stallAfter = d }}
}

// WithLogger sets where the client logs: leader changes and retries at
// Debug, producer ids at Info, failed deliveries at Warn.
//
// Default: no logging.
func WithLogger(l *slog.Logger) Opt {
	return connOpt{func(c *connConfig) { c.logger = l }}
}

// WithHTTPClient sets the HTTP client requests are made with. Its Timeout
// should be zero or longer than the request timeout, and it should not
// follow redirects or use a proxy that hides broker addresses (leader hints
// name brokers directly).
//
// Default: a client of its own with keep-alive, no proxy, a 2 s dial
// timeout and up to 256 idle connections per broker.
func WithHTTPClient(hc *http.Client) Opt {
	return connOpt{func(c *connConfig) { c.httpClient = hc }}
}

// WithTLS makes the client reach the brokers over TLS with cfg: its
// RootCAs verify the brokers' certificates (nil: the system's roots) and
// its Certificates (or GetClientCertificate) are the client certificate
// the brokers map to the principal User:<CN>. nil cfg means Go's defaults.
// Addresses given as host:port are then reached with https://, and so are
// the leaders that NOT_LEADER answers and cluster status name (host:port),
// with the same cfg; an http:// address is refused.
//
// Without WithTLS, an https:// address also means TLS, with Go's defaults.
// The configuration is cloned; requests use HTTP/1.1 as without TLS.
// Conflict: WithHTTPClient (configure its transport instead).
func WithTLS(cfg *tls.Config) Opt {
	return connOpt{func(c *connConfig) { c.useTLS, c.tls = true, cfg }}
}

// WithToken makes every request carry the API token (lmq_<id>_<secret>,
// from `mqctl token create` or Admin.CreateToken) as
// "Authorization: Bearer <token>". A token and a client certificate may
// both be given; the brokers then take the token's principal. The client
// never logs the token; send it over TLS only, as anyone who reads it can
// use it.
//
// A broker that refuses the credentials answers 401 UNAUTHENTICATED; one
// that refuses the principal the operation answers 403 FORBIDDEN. Neither
// is resent: the call (or the produced message) fails with an *Error of
// that code.
func WithToken(token string) Opt {
	return connOpt{func(c *connConfig) { c.token = token }}
}
