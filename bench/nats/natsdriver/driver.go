// Package natsdriver implements the bench/omb driver.Driver interface for
// a 3-node NATS JetStream cluster. It lives in its own Go module
// (bench/nats) so that the broker's go.mod never depends on NATS.
//
// Mapping: a topic is one R3 file stream named after the topic; a queue is
// the subject <topic>.<i>. Producers publish asynchronously with a unique
// Nats-Msg-Id header per message, so resends after a failover are
// de-duplicated by the server.
package natsdriver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/internal/netlab"
	"github.com/ledgermq/ledgermq/internal/proc"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// AckTimeout is how long an async publish waits for its ack before it is
// resent with the same Nats-Msg-Id. After a stream-leader kill, requests
// that reached the stream while it had no leader get no answer, so this
// bounds how quickly a producer recovers.
var AckTimeout = 2 * time.Second

// Client connection settings of every connection the driver opens (see
// docs/benchmarks.md, "Failover under real faults", for how they were
// chosen). PingInterval × MaxPingsOut bounds how long a client stays on
// a server it no longer hears (nats.go's defaults: 2 min × 2);
// ConnectTimeout bounds each reconnect attempt to a silent server (default
// 2 s); ReconnectWait is the pause between attempts; RetryWait the pause
// before a failed publish is resent.
var (
	PingInterval   = 2 * time.Minute
	MaxPingsOut    = 2
	ConnectTimeout = 2 * time.Second
	ReconnectWait  = 50 * time.Millisecond
	RetryWait      = 50 * time.Millisecond
)

// keyHeader carries the message key (base64) since NATS has no key field.
const keyHeader = "Omb-Key"

// DefaultMaxInFlight bounds the unacknowledged async publishes per
// producer unless SetMaxInFlight (flag -inflight) says otherwise; chosen
// by the sweep in docs/benchmarks.md ("NATS at its best").
const DefaultMaxInFlight = 4096

// Driver drives a 3-node nats-server cluster.
type Driver struct {
	log  *slog.Logger
	bin  string
	mu   sync.Mutex // guards nodes' proc and topics
	node []*natsNode

	lab *netlab.Lab // with Options.Netns

	nc     *nats.Conn // admin connection
	js     jetstream.JetStream
	topics []string

	resends     atomic.Int64 // over every closed producer
	disconnects atomic.Int64 // of every client connection

	maxInFlight int  // per producer; 0 = DefaultMaxInFlight
	fsync       bool // sync_interval: always (Options.Durability "fsync")
	started     bool // Start ran: Name tells the durability
}

var (
	_ driver.InFlightSetter   = (*Driver)(nil)
	_ driver.SettingsReporter = (*Driver)(nil)
	_ driver.CPUReporter      = (*Driver)(nil)
)

// SetMaxInFlight implements driver.InFlightSetter.
func (d *Driver) SetMaxInFlight(n int) error {
	if n < 1 {
		return fmt.Errorf("nats: in-flight window must be >= 1, got %d", n)
	}
	d.maxInFlight = n
	return nil
}

func (d *Driver) inFlight() int {
	if d.maxInFlight > 0 {
		return d.maxInFlight
	}
	return DefaultMaxInFlight
}

// Settings implements driver.SettingsReporter: the in-flight window, the
// ack timeout, the servers' fsync setting and the resends of the closed
// producers (publishes sent again after an error or the ack timeout).
func (d *Driver) Settings() map[string]string {
	sync := "default (no fsync before ack; sync every 2 min)"
	if d.fsync {
		sync = "always (fsync before ack)"
	}
	return map[string]string{"inflight": strconv.Itoa(d.inFlight()), "ack_timeout": AckTimeout.String(),
		"sync_interval": sync, "resends": strconv.FormatInt(d.resends.Load(), 10)}
}

// ServerCPU implements driver.CPUReporter: user + system CPU of every
// running nats-server (/proc/<pid>/stat).
func (d *Driver) ServerCPU() (time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var total time.Duration
	for _, n := range d.node {
		if n.proc == nil {
			continue
		}
		cpu, err := driver.ProcCPU(n.proc.Pid())
		if err != nil {
			return 0, fmt.Errorf("nats: CPU of %s: %w", n.name, err)
		}
		total += cpu
	}
	return total, nil
}

// Disconnects returns how often a client connection lost its server.
func (d *Driver) Disconnects() int64 { return d.disconnects.Load() }

// Resends returns how many publishes the closed producers sent again
// (after an error or AckTimeout without an ack).
func (d *Driver) Resends() int64 { return d.resends.Load() }

type natsNode struct {
	name, client, conf, logPath string
	proc                        *proc.Process // nil while down
}

// Ports of every node in the namespace lab (Options.Netns), each on its
// own address.
const (
	netnsClientPort  = 4222
	netnsClusterPort = 6222
)

var _ driver.Driver = (*Driver)(nil)

// New returns an unstarted NATS JetStream driver.
func New() *Driver { return &Driver{} }

// Name implements driver.Driver: "nats" with sync_interval: always (fsync
// before ack; durability fsync), "nats-nofsync" with NATS's default sync
// once started with durability default.
func (d *Driver) Name() string {
	if d.started && !d.fsync {
		return "nats-nofsync"
	}
	return "nats"
}

// FindServer locates nats-server: $NATS_SERVER, then PATH, then
// /tmp/natsbin/nats-server.
func FindServer() (string, error) {
	if p := os.Getenv("NATS_SERVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("nats: $NATS_SERVER=%q: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	const fallback = "/tmp/natsbin/nats-server"
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", errors.New("nats: nats-server not found; set $NATS_SERVER, put it on PATH, or run " +
		"`GOBIN=/tmp/natsbin go install github.com/nats-io/nats-server/v2@v2.15.2`")
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Start implements driver.Driver.
func (d *Driver) Start(ctx context.Context, o driver.Options) error {
	d.log = o.Log
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	sync := ""
	switch o.Durability {
	case "fsync":
		sync = "  sync_interval: always\n"
		d.fsync = true
	case "", "default":
	default:
		return fmt.Errorf("nats: unknown durability %q", o.Durability)
	}
	d.started = true
	bin, err := FindServer()
	if err != nil {
		return err
	}
	d.bin = bin
	if o.BaseDir == "" {
		return errors.New("nats: Options.BaseDir is required")
	}
	ids := []string{"n1", "n2", "n3"}
	// clients[i], clusters[i]: node i's client and cluster listen addresses.
	var clients, clusters []string
	if o.Netns {
		if d.lab, err = netlab.New(ids); err != nil {
			return fmt.Errorf("nats: %w", err)
		}
		for _, id := range ids {
			clients = append(clients, fmt.Sprintf("%s:%d", d.lab.IP(id), netnsClientPort))
			clusters = append(clusters, fmt.Sprintf("%s:%d", d.lab.IP(id), netnsClusterPort))
		}
	} else {
		ports, err := freePorts(6)
		if err != nil {
			return err
		}
		for i := range 3 {
			clients = append(clients, fmt.Sprintf("127.0.0.1:%d", ports[i]))
			clusters = append(clusters, fmt.Sprintf("127.0.0.1:%d", ports[3+i]))
		}
	}
	var routes []string
	for i := range 3 {
		routes = append(routes, "nats-route://"+clusters[i])
	}
	var urls []string
	for i := range 3 {
		n := &natsNode{name: ids[i], client: clients[i]}
		dir := filepath.Join(o.BaseDir, n.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		n.conf = filepath.Join(o.BaseDir, n.name+".conf")
		n.logPath = filepath.Join(o.BaseDir, n.name+".log")
		conf := fmt.Sprintf(`server_name: %s
listen: %s
jetstream {
  store_dir: %q
%s}
cluster {
  name: omb
  listen: %s
  routes: [%s]
}
`, n.name, n.client, dir, sync, clusters[i], strings.Join(routes, ", "))
		if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
			return err
		}
		d.node = append(d.node, n)
		urls = append(urls, "nats://"+n.client)
	}
	for _, n := range d.node {
		if err := d.start(n); err != nil {
			d.Stop()
			return err
		}
	}
	nc, err := d.connect("omb-admin")
	if err != nil {
		d.Stop()
		return err
	}
	d.nc = nc
	d.js, err = jetstream.New(nc)
	if err != nil {
		d.Stop()
		return err
	}
	if err := d.waitMeta(ctx, 60*time.Second); err != nil {
		d.Stop()
		return err
	}
	d.log.Info("nats cluster up", "server", bin, "durability", o.Durability, "urls", urls)
	return nil
}

// URLs returns the servers' client URLs, comma-separated.
func (d *Driver) URLs() string { return d.urls() }

func (d *Driver) urls() string {
	var u []string
	for _, n := range d.node {
		u = append(u, "nats://"+n.client)
	}
	return strings.Join(u, ",")
}

func (d *Driver) connect(name string) (*nats.Conn, error) {
	var nc *nats.Conn
	var err error
	// The servers may need a moment to open their client port.
	for range 100 {
		nc, err = nats.Connect(d.urls(), nats.Name(name), nats.MaxReconnects(-1),
			nats.ReconnectWait(ReconnectWait), nats.RetryOnFailedConnect(false),
			nats.PingInterval(PingInterval), nats.MaxPingsOutstanding(MaxPingsOut),
			nats.Timeout(ConnectTimeout),
			nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
				if err == nil {
					return // closed by us
				}
				d.disconnects.Add(1)
				d.log.Info("nats client disconnected", "conn", name, "server", c.ConnectedUrlRedacted(), "err", err)
			}))
		if err == nil {
			return nc, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("nats: connect %s: %w", d.urls(), err)
}

// waitMeta waits until the JetStream meta leader answers account info.
func (d *Driver) waitMeta(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := d.js.AccountInfo(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats: no JetStream meta leader within %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *Driver) start(n *natsNode) error {
	spec := proc.Spec{Path: d.bin, Args: []string{"-c", n.conf}, LogPath: n.logPath}
	if d.lab != nil {
		spec.Path, spec.Args = d.lab.Command(n.name, d.bin, spec.Args...)
	}
	p, err := proc.Start(spec)
	if err != nil {
		return fmt.Errorf("nats: start %s: %w", n.name, err)
	}
	d.mu.Lock()
	n.proc = p
	d.mu.Unlock()
	return nil
}

func (d *Driver) kill(n *natsNode) {
	d.mu.Lock()
	p := n.proc
	n.proc = nil
	d.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// Stop implements driver.Driver: it closes the admin connection and kills
// every server.
func (d *Driver) Stop() error {
	if d.nc != nil {
		d.nc.Close()
		d.nc = nil
	}
	if d.log != nil {
		d.log.Info("nats driver stopping", "resends", d.resends.Load(), "client_disconnects", d.disconnects.Load())
	}
	for _, n := range d.node {
		d.kill(n)
	}
	if d.lab != nil {
		d.lab.Close()
		d.lab = nil
	}
	return nil
}

func subjects(topic string, queues int) []string {
	s := make([]string, queues)
	for i := range queues {
		s[i] = topic + "." + strconv.Itoa(i)
	}
	return s
}

// CreateTopic implements driver.Driver: one R3 file stream per topic,
// retrying for 30 s while the cluster settles.
func (d *Driver) CreateTopic(ctx context.Context, name string, queues int) error {
	if queues < 1 {
		return fmt.Errorf("nats: queues must be >= 1, got %d", queues)
	}
	cfg := jetstream.StreamConfig{
		Name:       name,
		Subjects:   subjects(name, queues),
		Storage:    jetstream.FileStorage,
		Replicas:   3,
		Duplicates: 2 * time.Minute,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := d.js.CreateStream(cctx, cfg)
		cancel()
		if err == nil {
			d.mu.Lock()
			d.topics = append(d.topics, name)
			d.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nats: create stream %s: %w", name, err)
		}
		d.log.Warn("create stream failed, retrying", "stream", name, "err", err)
		time.Sleep(200 * time.Millisecond)
	}
}

// streamLeader returns the node leading the first created stream (or the
// meta leader if no stream exists).
func (d *Driver) streamLeader(ctx context.Context) (*natsNode, error) {
	d.mu.Lock()
	var topic string
	if len(d.topics) > 0 {
		topic = d.topics[0]
	}
	d.mu.Unlock()
	var leader string
	if topic != "" {
		s, err := d.js.Stream(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("nats: stream info %s: %w", topic, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("nats: stream info %s: %w", topic, err)
		}
		if info.Cluster != nil {
			leader = info.Cluster.Leader
		}
	} else {
		// $JS.API.INFO answers are served by the meta leader in clustered
		// mode; use the server info of the connected server as fallback.
		leader = d.nc.ConnectedServerName()
	}
	if leader == "" {
		return nil, errors.New("nats: stream has no leader")
	}
	n, err := d.byName(leader)
	if err != nil {
		return nil, fmt.Errorf("nats: stream leader: %w", err)
	}
	return n, nil
}

// KillLeader implements driver.Driver: it SIGKILLs the leader of the first
// topic's stream.
func (d *Driver) KillLeader(ctx context.Context) (string, error) {
	name, err := d.Leader(ctx)
	if err != nil {
		return "", err
	}
	n, err := d.byName(name)
	if err != nil {
		return "", err
	}
	d.kill(n)
	d.log.Info("killed nats stream leader", "node", n.name)
	return n.name, nil
}

// Restart implements driver.Driver: it restarts a killed node with its
// original config.
func (d *Driver) Restart(ctx context.Context, node string) error {
	for _, n := range d.node {
		if n.name == node {
			d.mu.Lock()
			running := n.proc != nil
			d.mu.Unlock()
			if running {
				return nil
			}
			return d.start(n)
		}
	}
	return fmt.Errorf("nats: unknown node %q", node)
}

// NewProducer implements driver.Driver. batchBytes and linger are not
// used: the NATS client coalesces writes in its own buffered writer. Each
// producer has its own connection and at most the in-flight window of
// unacknowledged publishes; acknowledgements come through the library's
// ack and error handlers (no goroutine per message).
func (d *Driver) NewProducer(ctx context.Context, topic string, batchBytes int, linger time.Duration) (driver.Producer, error) {
	s, err := d.js.Stream(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("nats: stream %s: %w", topic, err)
	}
	queues := len(s.CachedInfo().Config.Subjects)
	nc, err := d.connect("omb-producer")
	if err != nil {
		return nil, err
	}
	inflight := d.inFlight()
	p := &producer{
		nc:      nc,
		topic:   topic,
		queues:  queues,
		prefix:  nuid.Next(),
		sem:     make(chan struct{}, inflight),
		pending: make(map[*nats.Msg]pendingMsg, inflight),
		log:     d.log,
		d:       d,
	}
	p.js, err = jetstream.New(nc,
		// Our own semaphore bounds in-flight messages; keep the library's
		// limit above it so PublishMsgAsync never stalls.
		jetstream.WithPublishAsyncMaxPending(2*inflight),
		jetstream.WithPublishAsyncTimeout(AckTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			if pm, ok := p.take(m); ok {
				pm.finish(nil)
			}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			if pm, ok := p.take(m); ok {
				// The handler runs on the library's ack goroutine: resend
				// from another one.
				go p.retry(pm, err)
			}
		}),
	)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

type producer struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	topic  string
	queues int
	prefix string
	seq    atomic.Uint64
	rr     atomic.Uint64
	sem    chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
	log    *slog.Logger
	// resends counts publishes sent again after an error or ack timeout.
	resends atomic.Int64
	d       *Driver

	mu      sync.Mutex
	pending map[*nats.Msg]pendingMsg // the attempt in flight → its message
}

// pendingMsg is one message until it is acknowledged or given up.
type pendingMsg struct {
	m        *nats.Msg
	deadline time.Time
	finish   func(error)
}

// retryFor is how long a message is resent (with the same Nats-Msg-Id)
// before its done callback gets the error.
const retryFor = 30 * time.Second

func (p *producer) subject(key []byte) string {
	var q uint64
	if len(key) > 0 {
		h := fnv.New32a()
		h.Write(key)
		q = uint64(h.Sum32()) % uint64(p.queues)
	} else {
		q = p.rr.Add(1) % uint64(p.queues)
	}
	return p.topic + "." + strconv.FormatUint(q, 10)
}

// Send implements driver.Producer. It blocks while the in-flight window
// is full.
func (p *producer) Send(key, value []byte, done func(err error)) {
	if p.closed.Load() {
		done(errors.New("nats: producer closed"))
		return
	}
	p.sem <- struct{}{}
	p.wg.Add(1)
	m := nats.NewMsg(p.subject(key))
	m.Data = value
	if len(key) > 0 {
		m.Header.Set(keyHeader, base64.RawURLEncoding.EncodeToString(key))
	}
	m.Header.Set(jetstream.MsgIDHeader, p.prefix+"-"+strconv.FormatUint(p.seq.Add(1), 10))
	finish := func(err error) {
		<-p.sem
		p.wg.Done()
		done(err)
	}
	p.publish(pendingMsg{m: m, deadline: time.Now().Add(retryFor), finish: finish})
}

// take removes attempt m from the pending table.
func (p *producer) take(m *nats.Msg) (pendingMsg, bool) {
	p.mu.Lock()
	pm, ok := p.pending[m]
	delete(p.pending, m)
	p.mu.Unlock()
	return pm, ok
}

func (p *producer) publish(pm pendingMsg) {
	// A fresh *nats.Msg per attempt: the library keeps a reference in its
	// pending-ack table and hands it to the handlers. Same headers, so the
	// same Nats-Msg-Id.
	a := &nats.Msg{Subject: pm.m.Subject, Data: pm.m.Data, Header: pm.m.Header}
	p.mu.Lock()
	p.pending[a] = pm
	p.mu.Unlock()
	if _, err := p.js.PublishMsgAsync(a); err != nil {
		if pm, ok := p.take(a); ok {
			p.retry(pm, err)
		}
	}
}

func (p *producer) retry(pm pendingMsg, err error) {
	if p.closed.Load() || time.Now().After(pm.deadline) || errors.Is(err, nats.ErrConnectionClosed) {
		pm.finish(err)
		return
	}
	p.log.Debug("nats publish failed, resending", "subject", pm.m.Subject, "err", err)
	p.resends.Add(1)
	time.AfterFunc(RetryWait, func() { p.publish(pm) })
}

// Flush implements driver.Producer: it waits until every sent message has
// been acknowledged (or has failed).
func (p *producer) Flush(ctx context.Context) error { return driver.Wait(ctx, &p.wg) }

// Close implements driver.Producer.
func (p *producer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), retryFor)
	defer cancel()
	err := p.Flush(ctx)
	p.closed.Store(true)
	p.nc.Close()
	p.d.resends.Add(p.resends.Load())
	p.log.Info("nats producer closed", "resends", p.resends.Load())
	return err
}

// NewConsumer implements driver.Driver: an ordered consumer over every
// subject of the topic's stream, from the first message.
func (d *Driver) NewConsumer(ctx context.Context, topic string, queues int) (driver.Consumer, error) {
	return d.newConsumer(ctx, topic, nil)
}

var _ driver.QueueConsumer = (*Driver)(nil)

// NewQueueConsumer implements driver.QueueConsumer: an ordered consumer
// filtered to the subjects of the queues read, from the first message.
func (d *Driver) NewQueueConsumer(ctx context.Context, topic string, queues int, read []int) (driver.Consumer, error) {
	var filter []string
	for _, q := range read {
		if q < 0 || q >= queues {
			return nil, fmt.Errorf("nats: queue %d of %d", q, queues)
		}
		filter = append(filter, topic+"."+strconv.Itoa(q))
	}
	return d.newConsumer(ctx, topic, filter)
}

// newConsumer is an ordered consumer of the subjects filter (nil: every
// subject) from the first message.
func (d *Driver) newConsumer(ctx context.Context, topic string, filter []string) (driver.Consumer, error) {
	nc, err := d.connect("omb-consumer")
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	oc, err := js.OrderedConsumer(ctx, topic, jetstream.OrderedConsumerConfig{
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		FilterSubjects: filter,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: ordered consumer on %s: %w", topic, err)
	}
	c := &consumer{nc: nc, ch: make(chan driver.Msg, 8192), done: make(chan struct{})}
	cc, err := oc.Consume(func(m jetstream.Msg) {
		var key []byte
		if k := m.Headers().Get(keyHeader); k != "" {
			key, _ = base64.RawURLEncoding.DecodeString(k)
		}
		select {
		case c.ch <- driver.Msg{Key: key, Value: m.Data()}:
		case <-c.done:
		}
	}, jetstream.PullMaxMessages(1024))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: consume %s: %w", topic, err)
	}
	c.cc = cc
	return c, nil
}

type consumer struct {
	nc   *nats.Conn
	cc   jetstream.ConsumeContext
	ch   chan driver.Msg
	done chan struct{}
	once sync.Once
}

// Receive implements driver.Consumer: it waits for at least one message
// (or ctx) and returns up to 1024 buffered ones.
func (c *consumer) Receive(ctx context.Context) ([]driver.Msg, error) {
	var out []driver.Msg
	select {
	case m := <-c.ch:
		out = append(out, m)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(out) < 1024 {
		select {
		case m := <-c.ch:
			out = append(out, m)
		default:
			return out, nil
		}
	}
	return out, nil
}

// Close implements driver.Consumer.
func (c *consumer) Close() error {
	c.once.Do(func() {
		close(c.done) // unblock a handler stuck on a full channel
		c.cc.Stop()
		c.nc.Close()
	})
	return nil
}
