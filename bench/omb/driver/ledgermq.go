package driver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/internal/cluster"
	"github.com/ledgermq/ledgermq/internal/devcerts"
	"github.com/ledgermq/ledgermq/internal/proc"
	"github.com/ledgermq/ledgermq/wire"
)

// Produce APIs of the LedgerMQ driver (ProduceAPISetter).
const (
	APISDK    = "sdk"    // the Go SDK's idempotent client.Producer (the default)
	APIJSON   = "json"   // POST /v1/topics/{t}/messages, values base64 in JSON
	APIBinary = "binary" // POST /v1/topics/{t}/queues/{q}/batches, wire.Encode batches
)

// clientUser is the user of the secured group's client certificate
// (principal User:admin, a superuser with auth).
const clientUser = "admin"

const (
	leaderTimeout = 60 * time.Second
	catchUpSlack  = 100 // log entries behind the leader that count as caught up
)

// LedgerMQ drives a group of three LedgerMQ broker processes built from
// this module's ./cmd/broker (package internal/cluster) through the Go SDK
// (package client) or, with SetProduceAPI, through plain HTTP requests.
//
// Durability: LedgerMQ's default is already an fsync of the commit log on
// every append before the acknowledgement, so both "fsync" and "default"
// start the brokers with --sync every-append.
//
// Secured (SetSecurity): the group starts with a throw-away CA
// (internal/devcerts) and every node's certificate on the API (HTTPS) and
// the Raft port (mutual TLS); every client of the run, SDK or HTTP,
// speaks HTTPS and presents the bundle's "admin" client certificate. With
// auth the nodes also run --auth --superusers User:admin, so every request
// is authenticated (by that certificate) and authorized as a superuser.
type LedgerMQ struct {
	log       *slog.Logger
	g         *cluster.Group
	hc        *http.Client // the HTTP produce API's and the driver's own requests
	api       string
	tls, auth bool
}

// NewLedgerMQ returns an unstarted LedgerMQ driver.
func NewLedgerMQ() *LedgerMQ { return &LedgerMQ{api: APISDK} }

// Name implements Driver: "ledgermq", "ledgermq-tls" or
// "ledgermq-tls-auth" (SetSecurity).
func (d *LedgerMQ) Name() string {
	if d.api == APIKafka {
		return "ledgermq-kafka" // through the Kafka listener (franz-go)
	}
	switch {
	case d.auth:
		return "ledgermq-tls-auth"
	case d.tls:
		return "ledgermq-tls"
	}
	return "ledgermq"
}

// SetSecurity implements SecuritySetter: TLS on the API and mutual TLS on
// the Raft port; auth adds --auth with the clients' certificate as a
// superuser, and implies TLS (the clients authenticate with their
// certificate).
func (d *LedgerMQ) SetSecurity(tls, auth bool) error {
	d.tls, d.auth = tls || auth, auth
	return nil
}

// SetProduceAPI implements ProduceAPISetter: "sdk", "json" or "binary".
func (d *LedgerMQ) SetProduceAPI(api string) error {
	switch api {
	case APISDK, APIJSON, APIBinary, APIKafka:
		d.api = api
		return nil
	}
	return fmt.Errorf("ledgermq: unknown produce API %q (want sdk, json, binary or kafka)", api)
}

// Start implements Driver: it builds the broker, starts three nodes under
// o.BaseDir and waits until a leader reports every node reachable.
func (d *LedgerMQ) Start(ctx context.Context, o Options) error {
	d.log = o.Log
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	switch o.Durability {
	case "", "fsync", "default":
	default:
		return fmt.Errorf("ledgermq: unknown durability %q", o.Durability)
	}
	binDir := filepath.Join(o.BaseDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("ledgermq: %w", err)
	}
	bin, err := proc.Build(ctx, binDir, proc.Broker)
	if err != nil {
		return fmt.Errorf("ledgermq: %w", err)
	}
	co := cluster.Options{Bin: bin, Nodes: 3, Dir: o.BaseDir, Args: []string{"--sync", "every-append"}, Netns: o.Netns, Kafka: true}
	if d.tls {
		if co.TLS, err = devcerts.WriteBundle(filepath.Join(o.BaseDir, "certs"), []string{"n1", "n2", "n3"}, []string{clientUser}); err != nil {
			return fmt.Errorf("ledgermq: %w", err)
		}
	}
	if d.auth {
		co.Args = append(co.Args, "--auth", "--superusers", "User:"+clientUser)
	}
	d.g, err = cluster.Start(co)
	if err != nil {
		return fmt.Errorf("ledgermq: %w", err)
	}
	d.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true, TLSClientConfig: d.g.TLSConfig()}}
	l, err := d.g.WaitLeader(ctx, "", leaderTimeout)
	if err == nil {
		err = d.g.WaitReachable(ctx, 30*time.Second)
	}
	if err != nil {
		d.g.Tail(os.Stderr, 20)
		return fmt.Errorf("ledgermq: %w", err)
	}
	d.log.Info("ledgermq group up", "leader", l, "netns", o.Netns, "tls", d.tls, "auth", d.auth, "apis", d.g.APIs())
	return nil
}

// Stop implements Driver: it kills every node.
func (d *LedgerMQ) Stop() error {
	if d.g != nil {
		d.g.Close()
	}
	return nil
}

// CreateTopic implements Driver, retrying on the current leader for 30 s.
func (d *LedgerMQ) CreateTopic(ctx context.Context, name string, queues int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := d.g.WaitLeader(ctx, "", 30*time.Second)
		if err != nil {
			return fmt.Errorf("ledgermq: create topic %s: %w", name, err)
		}
		err = d.call(ctx, "POST", d.g.API(l), "/v1/topics", "application/json", jsonBody(wire.CreateTopicRequest{Name: name, Queues: queues}), nil)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		d.log.Warn("create topic failed, retrying", "topic", name, "err", err)
		time.Sleep(100 * time.Millisecond)
	}
}

// KillLeader implements Driver.
func (d *LedgerMQ) KillLeader(ctx context.Context) (string, error) {
	return d.g.KillLeader(ctx, 30*time.Second)
}

// Restart implements Driver: it starts the node killed before.
func (d *LedgerMQ) Restart(ctx context.Context, node string) error {
	return d.g.StartNode(node)
}

// WaitCaughtUp implements CatchUpWaiter: it waits until the leader shows
// node reachable and its last index within 100 entries of its own.
func (d *LedgerMQ) WaitCaughtUp(ctx context.Context, node string) error {
	return d.g.WaitCaughtUp(ctx, node, catchUpSlack, leaderTimeout)
}

// NewProducer implements Driver: an idempotent client.Producer, or an HTTP
// producer when SetProduceAPI chose json or binary.
func (d *LedgerMQ) NewProducer(ctx context.Context, topic string, batchBytes int, linger time.Duration) (Producer, error) {
	switch d.api {
	case APIKafka:
		return d.newKafkaProducer(topic, batchBytes, linger)
	case APIJSON, APIBinary:
		return newHTTPProducer(ctx, d, topic, batchBytes, linger)
	}
	opts := []client.ProducerOpt{client.WithLinger(linger)}
	if d.tls {
		opts = append(opts, client.WithTLS(d.g.TLSConfig()))
	}
	if batchBytes > 0 {
		opts = append(opts, client.WithBatchBytes(batchBytes))
	}
	p, err := client.NewProducer(d.g.APIs(), opts...)
	if err != nil {
		return nil, err
	}
	return &lmqProducer{p: p, topic: topic}, nil
}

type lmqProducer struct {
	p     *client.Producer
	topic string
}

func (p *lmqProducer) Send(key, value []byte, done func(err error)) {
	p.p.ProduceAsync(&client.Message{Topic: p.topic, Key: key, Value: value}, func(_ client.Result, err error) { done(err) })
}
func (p *lmqProducer) Flush(ctx context.Context) error { return p.p.Flush(ctx) }
func (p *lmqProducer) Close() error                    { return p.p.Close() }

// NewConsumer implements Driver: it reads every queue from its start.
func (d *LedgerMQ) NewConsumer(ctx context.Context, topic string, queues int) (Consumer, error) {
	read := make([]int, queues)
	for q := range read {
		read[q] = q
	}
	return d.NewQueueConsumer(ctx, topic, queues, read)
}

var _ QueueConsumer = (*LedgerMQ)(nil)

// NewQueueConsumer implements QueueConsumer: it reads the queues read
// from their start.
func (d *LedgerMQ) NewQueueConsumer(ctx context.Context, topic string, queues int, read []int) (Consumer, error) {
	if d.api == APIKafka { // the Kafka listener for both ends
		return d.newKafkaConsumer(topic, read)
	}
	as := make(map[int]client.Start, len(read))
	for _, q := range read {
		as[q] = client.AtStart()
	}
	opts := []client.ConsumerOpt{client.WithAssignment(topic, as)}
	if d.tls {
		opts = append(opts, client.WithTLS(d.g.TLSConfig()))
	}
	c, err := client.NewConsumer(d.g.APIs(), opts...)
	if err != nil {
		return nil, err
	}
	return &lmqConsumer{c: c}, nil
}

type lmqConsumer struct{ c *client.Consumer }

func (c *lmqConsumer) Receive(ctx context.Context) ([]Msg, error) {
	recs, err := c.c.Poll(ctx)
	out := make([]Msg, len(recs))
	for i, r := range recs {
		out[i] = Msg{Key: r.Key, Value: r.Value}
	}
	return out, err
}
func (c *lmqConsumer) Close() error { return c.c.Close() }
