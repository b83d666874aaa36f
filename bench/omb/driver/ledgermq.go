package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/wire"
)

// LedgerMQ drives a group of three LedgerMQ broker processes built from
// this module's ./cmd/broker (as bench/brokerbench does) through the Go
// SDK (package client).
//
// Durability: LedgerMQ's default is already an fsync of the commit log on
// every append before the acknowledgement, so both "fsync" and "default"
// start the brokers with --sync every-append.
type LedgerMQ struct {
	log  *slog.Logger
	hc   *http.Client
	bin  string
	mu   sync.Mutex // guards the nodes' cmd and exited
	node []*lmqNode
}

type lmqNode struct {
	id, api, raft, dir, logPath string
	args                        []string
	cmd                         *exec.Cmd     // nil while down
	exited                      chan struct{} // closed when cmd has exited
}

// NewLedgerMQ returns an unstarted LedgerMQ driver.
func NewLedgerMQ() *LedgerMQ { return &LedgerMQ{} }

// Name implements Driver.
func (d *LedgerMQ) Name() string { return "ledgermq" }

// Start builds the broker, starts three nodes under o.BaseDir and waits
// for a leader.
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
	d.hc = &http.Client{Timeout: 5 * time.Second}
	bin, err := buildBroker(ctx, o.BaseDir)
	if err != nil {
		return err
	}
	d.bin = bin
	addrs, err := freeAddrs(6)
	if err != nil {
		return err
	}
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("n%d=%s", i+1, addrs[3+i]))
	}
	for i := range 3 {
		n := &lmqNode{id: fmt.Sprintf("n%d", i+1), api: addrs[i], raft: addrs[3+i]}
		n.dir = filepath.Join(o.BaseDir, n.id)
		n.logPath = filepath.Join(o.BaseDir, n.id+".log")
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return err
		}
		n.args = []string{"--id", n.id, "--data-dir", n.dir, "--listen", n.api, "--raft-listen", n.raft,
			"--peers", strings.Join(peers, ","), "--log-level", "warn", "--sync", "every-append"}
		d.node = append(d.node, n)
	}
	for _, n := range d.node {
		if err := d.start(n); err != nil {
			return err
		}
	}
	l, err := d.waitLeader(ctx, 60*time.Second)
	if err != nil {
		return err
	}
	if err := d.waitAllReachable(ctx, 30*time.Second); err != nil {
		return err
	}
	d.log.Info("ledgermq group up", "leader", l.id)
	return nil
}

// buildBroker builds cmd/broker of the module the working directory is in.
func buildBroker(ctx context.Context, root string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("ledgermq: run from inside the ledgermq module")
	}
	bin := filepath.Join(root, "bin", "broker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ledgermq/ledgermq/cmd/broker")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/broker: %w\n%s", err, out)
	}
	return bin, nil
}

// freeAddrs reserves n free loopback ports and releases them.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

func (d *LedgerMQ) start(n *lmqNode) error {
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(d.bin, n.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", n.id, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(exited)
	}()
	d.mu.Lock()
	n.cmd, n.exited = cmd, exited
	d.mu.Unlock()
	return nil
}

func (d *LedgerMQ) kill(n *lmqNode) {
	d.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd, n.exited = nil, nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Stop implements Driver: it kills every node.
func (d *LedgerMQ) Stop() error {
	for _, n := range d.node {
		d.kill(n)
	}
	return nil
}

func (d *LedgerMQ) addrs() []string {
	var out []string
	for _, n := range d.node {
		out = append(out, n.api)
	}
	return out
}

func (d *LedgerMQ) up() []*lmqNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*lmqNode
	for _, n := range d.node {
		if n.cmd == nil {
			continue
		}
		select {
		case <-n.exited:
			d.log.Error("broker exited on its own", "node", n.id, "state", n.cmd.ProcessState, "log", n.logPath)
			n.cmd, n.exited = nil, nil
		default:
			out = append(out, n)
		}
	}
	return out
}

// waitAllReachable waits until the leader reports every node reachable, so
// that a node that crashed while starting is noticed before the run.
func (d *LedgerMQ) waitAllReachable(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if up := d.up(); len(up) < len(d.node) {
			return fmt.Errorf("ledgermq: %d of %d brokers running (logs in %s)", len(up), len(d.node), filepath.Dir(d.node[0].logPath))
		}
		var cs wire.ClusterStatus
		if l := d.leader(ctx); l != nil && d.call(ctx, "GET", l.api, "/v1/cluster", nil, &cs) == nil {
			ok := len(cs.Nodes) == len(d.node)
			for _, n := range cs.Nodes {
				ok = ok && n.Reachable
			}
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ledgermq: not every node reachable within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leader asks the running nodes for the leader; nil if none is known.
func (d *LedgerMQ) leader(ctx context.Context) *lmqNode {
	for _, n := range d.up() {
		var cs wire.ClusterStatus
		if d.call(ctx, "GET", n.api, "/v1/cluster", nil, &cs) != nil || cs.Leader == "" {
			continue
		}
		for _, cn := range cs.Nodes {
			if cn.ID != cs.Leader || cn.Role != "leader" {
				continue
			}
			for _, x := range d.up() {
				if x.id == cs.Leader {
					return x
				}
			}
		}
	}
	return nil
}

func (d *LedgerMQ) waitLeader(ctx context.Context, timeout time.Duration) (*lmqNode, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l := d.leader(ctx); l != nil {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("ledgermq: no leader within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// call sends one JSON request; a non-2xx answer is an error.
func (d *LedgerMQ) call(ctx context.Context, method, addr, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// CreateTopic implements Driver, retrying on the current leader for 30 s.
func (d *LedgerMQ) CreateTopic(ctx context.Context, name string, queues int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := d.waitLeader(ctx, 30*time.Second)
		if err != nil {
			return err
		}
		err = d.call(ctx, "POST", l.api, "/v1/topics", wire.CreateTopicRequest{Name: name, Queues: queues}, nil)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		d.log.Warn("create topic failed, retrying", "topic", name, "err", err)
		time.Sleep(100 * time.Millisecond)
	}
}

// KillLeader implements Driver.
func (d *LedgerMQ) KillLeader(ctx context.Context) (string, error) {
	l, err := d.waitLeader(ctx, 30*time.Second)
	if err != nil {
		return "", err
	}
	d.kill(l)
	return l.id, nil
}

// Restart implements Driver: it starts the node killed before.
func (d *LedgerMQ) Restart(ctx context.Context, node string) error {
	for _, n := range d.node {
		if n.id == node {
			d.mu.Lock()
			running := n.cmd != nil
			d.mu.Unlock()
			if running {
				return nil
			}
			return d.start(n)
		}
	}
	return fmt.Errorf("ledgermq: unknown node %q", node)
}

// NewProducer implements Driver with an idempotent client.Producer.
func (d *LedgerMQ) NewProducer(ctx context.Context, topic string, batchBytes int, linger time.Duration) (Producer, error) {
	opts := []client.ProducerOpt{client.WithLinger(linger)}
	if batchBytes > 0 {
		opts = append(opts, client.WithBatchBytes(batchBytes))
	}
	p, err := client.NewProducer(d.addrs(), opts...)
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
	as := make(map[int]client.Start, queues)
	for q := range queues {
		as[q] = client.AtStart()
	}
	c, err := client.NewConsumer(d.addrs(), client.WithAssignment(topic, as))
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
