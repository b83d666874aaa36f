// Command brokerbench measures a LedgerMQ broker group of three real OS
// processes end to end, over HTTP, against a raw disk baseline taken in
// the same run.
//
// It builds ./cmd/broker into a temporary directory with `go build`, and
// starts three broker processes on free 127.0.0.1 ports, each with a
// fresh data directory under one temporary root and the flags --id
// --data-dir --listen --raft-listen --peers --log-level warn (everything
// else default: sync every-append, heartbeat and election 300ms). Their
// logs go to files in the root. Once a node reports a leader, it creates
// the topic "bench" with 16 queues, then measures:
//
//  1. JSON produce: -clients goroutines, each in a closed loop, POST
//     /v1/topics/bench/messages with 100 messages whose values are JSON
//     strings of 1024 bytes (no key: the broker spreads them round robin
//     over the queues), to the leader.
//
//  2. Binary produce: the same with POST /v1/topics/bench/queues/{q}/batches,
//     Content-Type application/vnd.ledgermq.batch, one batch of 100 records
//     of 1024-byte values built with wire.Encode (codec none); client i
//     writes to queue i mod 16.
//
//     Each runs 2 s of warm-up, then -duration measured. A request counts
//     if its acknowledgement arrived inside the measured window; msgs/s
//     and MB/s (value bytes, MB = 10^6 bytes) are counted requests over
//     the window, and the request latency (from sending it to reading the
//     answer, redirects included) goes into an HDR histogram.
//
//  3. Raw disk: one goroutine appends 100 KiB with write(2) and calls
//     fsync (os.File.Sync) after every write, to a file in the temporary
//     root (the parent of the nodes' data directories, so the same file
//     system), for -duration while the brokers are idle. Every payload
//     byte the brokers acknowledge is on this same disk three times (one
//     per node), so the ratio broker MB/s ÷ fsync MB/s is shown, and also
//     multiplied by three.
//
//  4. Failover: 8 goroutines keep producing one 1024-byte message per JSON
//     request. Then -kills times: wait 2 s; ask GET /v1/cluster on the
//     nodes in turn for the leader; send it SIGKILL (the kill time is taken
//     just before); measure "outage", the time from the kill to the first
//     write acknowledged by a different node, and "max gap", the longest
//     interval between two consecutive acknowledgements (from any node) in
//     the window from 1 s before the kill to 1 s after that first new
//     acknowledgement; then restart the killed process with the same flags
//     and measure "catch-up": the time until the leader's GET /v1/cluster
//     shows the restarted node's last_index within 100 of its own.
//
// A writer follows NOT_LEADER answers to the leader they name and tries the
// next node when a connection is refused (nothing was sent). Any other
// failure (timeout, reset connection, UNAVAILABLE) leaves the write's
// outcome unknown: it is counted, not resent, and the writer moves on to a
// new message. Every message value starts with a unique 16-hex-digit id.
//
// At the end the load stops, the nodes must agree on every queue's offset
// range (GET /v1/topics/bench), and every queue is read from the leader
// with GET .../messages?offset=N&max_messages=10000&max_bytes=67108864:
// every acknowledged message of every phase must be stored exactly once,
// at the queue and offset it was acknowledged with. Lost, duplicated and
// misplaced messages are reported per phase; stored messages that were
// never acknowledged (outcome unknown to the writer) are reported, not
// counted as errors.
//
// Usage:
//
//	go run ./bench/brokerbench [-duration 10s] [-clients 32] [-kills 10] [-json FILE]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ledgermq/ledgermq/wire"
)

const (
	nodes         = 3
	topicName     = "bench"
	topicQueues   = 16
	valueSize     = 1024 // bytes of every message value
	batchMsgs     = 100  // messages per throughput request
	warmup        = 2 * time.Second
	fsyncChunk    = 100 << 10
	failClients   = 8
	killEvery     = 2 * time.Second // load before each kill
	gapSlack      = time.Second     // the gap window's margin on each side
	catchUpSlack  = 100             // log entries
	fetchMax      = 10000
	fetchMaxBytes = 64 << 20
	idHex         = 16 // hex digits of the id at the start of every value

	produceTimeout  = 10 * time.Second // one throughput request
	failoverTimeout = 3 * time.Second  // one failover request
	controlTimeout  = 5 * time.Second  // cluster status, topics, fetches
	writeDeadline   = 15 * time.Second // one write, redirects included
	recoverTimeout  = 60 * time.Second // a leader, a catch-up, agreement
	pollEvery       = 25 * time.Millisecond
	retryEvery      = 5 * time.Millisecond
)

// Phases, stored in the top byte of every message id.
const (
	phaseJSON uint64 = iota + 1
	phaseBinary
	phaseFailover
)

func phaseName(p uint64) string {
	switch p {
	case phaseJSON:
		return "json"
	case phaseBinary:
		return "binary"
	case phaseFailover:
		return "failover"
	}
	return "phase " + strconv.FormatUint(p, 10)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "brokerbench:", err)
		os.Exit(1)
	}
}

type config struct {
	duration time.Duration
	clients  int
	kills    int
	jsonOut  string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("brokerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time of each throughput phase and of the fsync baseline (after a 2s warm-up)")
	fs.IntVar(&c.clients, "clients", 32, "concurrent clients in the throughput phases")
	fs.IntVar(&c.kills, "kills", 10, "leader kills in the failover phase")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.duration <= 0:
		return c, errors.New("-duration must be positive")
	case c.clients < 1 || c.clients > 1<<16:
		return c, errors.New("-clients must be in [1, 65536]")
	case c.kills < 0:
		return c, errors.New("-kills must not be negative")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	root, err := os.MkdirTemp("", "brokerbench-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(root)) }()

	log.Info("building the broker", "dir", root)
	bin, err := buildBroker(ctx, root)
	if err != nil {
		return err
	}
	g, err := newGroup(bin, root)
	if err != nil {
		return err
	}
	defer g.close()
	defer func() {
		if err != nil {
			g.dumpLogs(stderr, 20)
		}
	}()
	transport := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	defer transport.CloseIdleConnections()
	b := &bench{cfg: cfg, log: log, g: g, hc: &http.Client{Transport: transport}, filler: makeFiller()}

	res := results{
		Config: resultConfig{DurationS: cfg.duration.Seconds(), WarmupS: warmup.Seconds(), Clients: cfg.clients, Kills: cfg.kills,
			FailoverClients: failClients, Nodes: nodes, Queues: topicQueues, ValueBytes: valueSize, MsgsPerRequest: batchMsgs},
		Machine: machine{GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAvgStart: loadAvg()},
	}
	log.Info("starting 3 broker processes", "load_avg", res.Machine.LoadAvgStart)
	for _, n := range g.nodes {
		if err := g.start(n); err != nil {
			return err
		}
	}
	leader, err := b.waitLeader(ctx, nil)
	if err != nil {
		return err
	}
	var cs wire.ClusterStatus
	if err := b.call(ctx, controlTimeout, "GET", leader.api, "/v1/cluster", "", nil, &cs); err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	b.groupID = cs.GroupID
	body, _ := json.Marshal(wire.CreateTopicRequest{Name: topicName, Queues: topicQueues})
	target := leader.api
	var errs errCounts
	if _, err := b.write(ctx, &target, "/v1/topics", "application/json", body, nil, controlTimeout, &errs); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	log.Info("group up", "leader", leader.id, "topic", topicName, "queues", topicQueues)

	var acks [][]ackRec
	log.Info("phase 1: JSON produce", "clients", cfg.clients, "duration", cfg.duration)
	if leader, err = b.waitLeader(ctx, nil); err != nil {
		return err
	}
	jr, ja, err := b.throughput(ctx, "json", leader, batchMsgs, b.jsonRequest(phaseJSON, batchMsgs, produceTimeout))
	if err != nil {
		return err
	}
	res.JSON, acks = jr, append(acks, ja)
	log.Info("phase 2: binary batch produce", "clients", cfg.clients, "duration", cfg.duration)
	if leader, err = b.waitLeader(ctx, nil); err != nil {
		return err
	}
	br, ba, err := b.throughput(ctx, "binary", leader, batchMsgs, b.binaryRequest(phaseBinary, batchMsgs))
	if err != nil {
		return err
	}
	res.Binary, acks = br, append(acks, ba)
	log.Info("phase 3: raw write+fsync baseline", "duration", cfg.duration)
	if res.Fsync, err = fsyncBaseline(ctx, root, cfg.duration); err != nil {
		return err
	}
	if res.Binary.MsgsPerSec > 0 {
		res.Ratios.JSONOverBinaryMsgs = res.JSON.MsgsPerSec / res.Binary.MsgsPerSec
	}
	if res.Fsync.MBPerSec > 0 {
		res.Ratios.JSONOverFsyncMB = res.JSON.MBPerSec / res.Fsync.MBPerSec
		res.Ratios.BinaryOverFsyncMB = res.Binary.MBPerSec / res.Fsync.MBPerSec
	}

	log.Info("phase 4: failover", "clients", failClients, "kills", cfg.kills)
	fr, fa, err := b.failover(ctx)
	if err != nil {
		return err
	}
	res.Failover, acks = fr, append(acks, fa)

	log.Info("verifying every acknowledged message")
	if res.Verify, err = b.verify(ctx, acks); err != nil {
		return err
	}
	res.Machine.LoadAvgEnd = loadAvg()
	report(stdout, root, &res)
	if cfg.jsonOut != "" {
		data, err := json.MarshalIndent(&res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if !res.Verify.OK {
		return errors.New("verification failed: acknowledged messages lost, duplicated or misplaced, or replicas disagree")
	}
	return nil
}

// buildBroker builds cmd/broker of the module this program belongs to.
func buildBroker(ctx context.Context, root string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run brokerbench from inside the ledgermq module")
	}
	bin := filepath.Join(root, "bin", "broker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ledgermq/ledgermq/cmd/broker")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/broker: %w\n%s", err, out)
	}
	return bin, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadAvg is /proc/loadavg's three load averages, or "" where there is none.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// --- processes -------------------------------------------------------------

type node struct {
	id, api, raft, dir, logPath string
	args                        []string

	// Guarded by group.mu; nil while the node is down.
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

type group struct {
	bin   string
	nodes []*node
	mu    sync.Mutex
}

// freeAddrs reserves n free loopback ports and releases them for the
// brokers to bind.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

func newGroup(bin, root string) (*group, error) {
	addrs, err := freeAddrs(2 * nodes)
	if err != nil {
		return nil, err
	}
	var peers []string
	for i := range nodes {
		peers = append(peers, fmt.Sprintf("n%d=%s", i+1, addrs[nodes+i]))
	}
	g := &group{bin: bin}
	for i := range nodes {
		n := &node{id: fmt.Sprintf("n%d", i+1), api: addrs[i], raft: addrs[nodes+i]}
		n.dir = filepath.Join(root, n.id)
		n.logPath = filepath.Join(root, n.id+".log")
		if err := os.Mkdir(n.dir, 0o755); err != nil {
			return nil, err
		}
		n.args = []string{"--id", n.id, "--data-dir", n.dir, "--listen", n.api, "--raft-listen", n.raft,
			"--peers", strings.Join(peers, ","), "--log-level", "warn"}
		g.nodes = append(g.nodes, n)
	}
	return g, nil
}

// start runs n's process, its output appended to n's log file.
func (g *group) start(n *node) error {
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(g.bin, n.args...)
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
	g.mu.Lock()
	n.cmd, n.exited = cmd, exited
	g.mu.Unlock()
	return nil
}

// kill sends SIGKILL to n's process and waits for it to exit.
func (g *group) kill(n *node) {
	g.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd, n.exited = nil, nil
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

func (g *group) close() {
	for _, n := range g.nodes {
		g.kill(n)
	}
}

// running returns the nodes that should be up, and an error if one of them
// has exited on its own.
func (g *group) running() ([]*node, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*node
	for _, n := range g.nodes {
		if n.cmd == nil {
			continue
		}
		select {
		case <-n.exited:
			return nil, fmt.Errorf("broker %s exited: %v (log: %s)", n.id, n.cmd.ProcessState, n.logPath)
		default:
		}
		out = append(out, n)
	}
	return out, nil
}

func (g *group) byAPI(addr string) *node {
	for _, n := range g.nodes {
		if n.api == addr {
			return n
		}
	}
	return nil
}

func (g *group) byID(id string) *node {
	for _, n := range g.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// nextAPI is the API address of the node after the one at addr.
func (g *group) nextAPI(addr string) string {
	for i, n := range g.nodes {
		if n.api == addr {
			return g.nodes[(i+1)%len(g.nodes)].api
		}
	}
	return g.nodes[0].api
}

// dumpLogs prints the last lines of every node's log.
func (g *group) dumpLogs(w io.Writer, lines int) {
	for _, n := range g.nodes {
		data, err := os.ReadFile(n.logPath)
		if err != nil || len(data) == 0 {
			continue
		}
		ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(w, "--- last lines of %s's log ---\n%s\n", n.id, strings.Join(ls[max(0, len(ls)-lines):], "\n"))
	}
}

// --- HTTP ------------------------------------------------------------------

type bench struct {
	cfg     config
	log     *slog.Logger
	g       *group
	hc      *http.Client
	filler  []byte // the bytes of every value after its id
	groupID uint32
}

func makeFiller() []byte {
	f := make([]byte, valueSize-idHex)
	for i := range f {
		f[i] = 'a' + byte(i%26)
	}
	return f
}

// call sends one request and decodes a JSON answer into out. An error
// answer is returned as a *wire.APIError.
func (b *bench) call(ctx context.Context, timeout time.Duration, method, addr, path, ctype string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb wire.ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return &wire.APIError{Code: "HTTP_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(data))}
		}
		return &eb.Error
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// errCounts counts failed attempts by cause.
type errCounts struct {
	notLeader, refused, unavailable, timeout, other atomic.Int64
}

type errSnapshot struct {
	NotLeader   int64 `json:"not_leader"`  // redirected (the write was then sent again)
	Refused     int64 `json:"refused"`     // connection refused (sent again to another node)
	Unavailable int64 `json:"unavailable"` // UNAVAILABLE: outcome unknown or refused, not resent
	Timeout     int64 `json:"timeout"`     // no answer in time: outcome unknown, not resent
	Other       int64 `json:"other"`       // reset connections etc.: outcome unknown, not resent
}

func (e *errCounts) snapshot() errSnapshot {
	return errSnapshot{e.notLeader.Load(), e.refused.Load(), e.unavailable.Load(), e.timeout.Load(), e.other.Load()}
}

// write POSTs body to the node at *target, following NOT_LEADER answers
// and moving on to the next node when a connection is refused, for at
// most writeDeadline. *target is left at the node last tried; the address
// that acknowledged is returned. Any other failure is returned at once:
// the write may have been applied, so it is not resent.
func (b *bench) write(ctx context.Context, target *string, path, ctype string, body []byte, out any, timeout time.Duration, errs *errCounts) (string, error) {
	deadline := time.Now().Add(writeDeadline)
	for {
		err := b.call(ctx, timeout, "POST", *target, path, ctype, body, out)
		if err == nil {
			return *target, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var ae *wire.APIError
		wait := true
		switch {
		case errors.As(err, &ae) && ae.Code == wire.CodeNotLeader:
			errs.notLeader.Add(1)
			if ae.Leader != "" && ae.Leader != *target {
				*target, wait = ae.Leader, false
			} else {
				*target = b.g.nextAPI(*target)
			}
		case errors.Is(err, syscall.ECONNREFUSED):
			errs.refused.Add(1)
			*target = b.g.nextAPI(*target)
		case errors.As(err, &ae) && ae.Code == wire.CodeUnavailable:
			errs.unavailable.Add(1)
			return "", err
		case errors.Is(err, context.DeadlineExceeded):
			errs.timeout.Add(1)
			return "", err
		default:
			errs.other.Add(1)
			return "", err
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no leader accepted the write within %s: %w", writeDeadline, err)
		}
		if wait {
			if err := sleepCtx(ctx, retryEvery); err != nil {
				return "", err
			}
		}
	}
}

// leader asks the running nodes in turn for the cluster status and returns
// the leader named by the first answer in which that node's role is
// "leader", or nil. exclude is never returned.
func (b *bench) leader(ctx context.Context, exclude *node) *node {
	up, _ := b.g.running()
	for _, n := range up {
		var cs wire.ClusterStatus
		if b.call(ctx, controlTimeout, "GET", n.api, "/v1/cluster", "", nil, &cs) != nil || cs.Leader == "" {
			continue
		}
		for _, cn := range cs.Nodes {
			if cn.ID == cs.Leader && cn.Role == "leader" {
				if l := b.g.byID(cs.Leader); l != nil && l != exclude {
					return l
				}
			}
		}
	}
	return nil
}

func (b *bench) waitLeader(ctx context.Context, exclude *node) (*node, error) {
	deadline := time.Now().Add(recoverTimeout)
	for {
		if _, err := b.g.running(); err != nil {
			return nil, err
		}
		if l := b.leader(ctx, exclude); l != nil {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no leader within %s", recoverTimeout)
		}
		if err := sleepCtx(ctx, pollEvery); err != nil {
			return nil, err
		}
	}
}

// --- messages --------------------------------------------------------------

// makeID packs a message id: phase, client and the client's sequence.
func makeID(phase uint64, client int, seq uint64) uint64 {
	return phase<<56 | uint64(client)<<40 | seq&(1<<40-1)
}

func idPhase(id uint64) uint64 { return id >> 56 }

// appendValue appends the 1024-byte value of message id: the id in hex,
// then the filler. It is plain ASCII, so it needs no JSON escaping.
func (b *bench) appendValue(dst []byte, id uint64) []byte {
	dst = append(dst, fmt.Sprintf("%0*x", idHex, id)...)
	return append(dst, b.filler...)
}

// parseID reads the id at the start of a stored value.
func parseID(v string) (uint64, bool) {
	if len(v) < idHex {
		return 0, false
	}
	id, err := strconv.ParseUint(v[:idHex], 16, 64)
	return id, err == nil
}

// ackRec is one acknowledged message and where it was stored.
type ackRec struct {
	id     uint64
	queue  int
	offset uint64
}

// requestFunc sends one produce request carrying the messages with ids
// makeID(phase, client, seq...) and returns the address that acknowledged
// it and the messages' positions.
type requestFunc func(ctx context.Context, client int, seq uint64, target *string, errs *errCounts) (string, []ackRec, error)

func (b *bench) jsonRequest(phase uint64, n int, timeout time.Duration) requestFunc {
	path := "/v1/topics/" + topicName + "/messages"
	return func(ctx context.Context, client int, seq uint64, target *string, errs *errCounts) (string, []ackRec, error) {
		ids := make([]uint64, n)
		body := make([]byte, 0, 16+n*(valueSize+16))
		body = append(body, `{"messages":[`...)
		for i := range ids {
			ids[i] = makeID(phase, client, seq+uint64(i))
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, `{"value":"`...)
			body = b.appendValue(body, ids[i])
			body = append(body, `"}`...)
		}
		body = append(body, "]}"...)
		var pr wire.ProduceResponse
		by, err := b.write(ctx, target, path, "application/json", body, &pr, timeout, errs)
		if err != nil {
			return "", nil, err
		}
		if len(pr.Results) != n {
			return "", nil, fmt.Errorf("produce answered %d results for %d messages", len(pr.Results), n)
		}
		acks := make([]ackRec, n)
		for i, r := range pr.Results {
			acks[i] = ackRec{id: ids[i], queue: r.Queue, offset: r.Offset}
		}
		return by, acks, nil
	}
}

func (b *bench) binaryRequest(phase uint64, n int) requestFunc {
	return func(ctx context.Context, client int, seq uint64, target *string, errs *errCounts) (string, []ackRec, error) {
		q := client % topicQueues
		ids := make([]uint64, n)
		msgs := make([]wire.Message, n)
		vals := make([]byte, 0, n*valueSize)
		for i := range msgs {
			ids[i] = makeID(phase, client, seq+uint64(i))
			vals = b.appendValue(vals, ids[i])
			msgs[i].Value = vals[i*valueSize : (i+1)*valueSize]
		}
		batch, err := wire.Encode(msgs, wire.CodecNone, wire.Producer{}, b.groupID, time.Now())
		if err != nil {
			return "", nil, err
		}
		var br wire.BatchProduceResponse
		path := fmt.Sprintf("/v1/topics/%s/queues/%d/batches", topicName, q)
		by, err := b.write(ctx, target, path, wire.ContentType, batch, &br, produceTimeout, errs)
		if err != nil {
			return "", nil, err
		}
		if int(br.Count) != n || br.Queue != q {
			return "", nil, fmt.Errorf("batch produce answered %d records in queue %d, sent %d to %d", br.Count, br.Queue, n, q)
		}
		acks := make([]ackRec, n)
		for i := range acks {
			acks[i] = ackRec{id: ids[i], queue: q, offset: br.BaseOffset + uint64(i)}
		}
		return by, acks, nil
	}
}

// --- throughput ------------------------------------------------------------

type latency struct {
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 600_000_000, 3) } // µs

func histLatency(h *hdrhistogram.Histogram) latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return latency{P50Ms: ms(h.ValueAtQuantile(50)), P99Ms: ms(h.ValueAtQuantile(99)), MaxMs: ms(h.Max())}
}

type phaseResult struct {
	Name       string      `json:"name"`
	Leader     string      `json:"leader"`
	Clients    int         `json:"clients"`
	MsgsPerReq int         `json:"msgs_per_request"`
	Seconds    float64     `json:"measured_seconds"`
	Requests   int64       `json:"requests"`
	Messages   int64       `json:"messages"`
	MsgsPerSec float64     `json:"msgs_per_sec"`
	MBPerSec   float64     `json:"payload_mb_per_sec"` // value bytes, 10^6
	Latency    latency     `json:"request_latency"`
	Failed     int64       `json:"failed_requests"` // whole phase, warm-up included
	Errors     errSnapshot `json:"errors"`
}

// throughput runs clients closed-loop writers of req for the warm-up and
// the measured window, and returns the window's figures and every
// acknowledged message (warm-up included).
func (b *bench) throughput(ctx context.Context, name string, leader *node, perReq int, req requestFunc) (phaseResult, []ackRec, error) {
	clients := b.cfg.clients
	type clientOut struct {
		hist           *hdrhistogram.Histogram
		reqs, msgs, nf int64
		acks           []ackRec
	}
	outs := make([]clientOut, clients)
	var errs errCounts
	mStart := time.Now().Add(warmup)
	mEnd := mStart.Add(b.cfg.duration)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &outs[c]
			o.hist = newHist()
			target := leader.api
			for seq := uint64(0); ctx.Err() == nil && time.Now().Before(mEnd); seq += uint64(perReq) {
				t0 := time.Now()
				_, acks, err := req(ctx, c, seq, &target, &errs)
				t1 := time.Now()
				if err != nil {
					o.nf++
					sleepCtx(ctx, 10*time.Millisecond)
					continue
				}
				o.acks = append(o.acks, acks...)
				if !t1.Before(mStart) && !t1.After(mEnd) {
					o.reqs++
					o.msgs += int64(len(acks))
					o.hist.RecordValue(t1.Sub(t0).Microseconds())
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return phaseResult{}, nil, err
	}
	if _, err := b.g.running(); err != nil {
		return phaseResult{}, nil, err
	}
	r := phaseResult{Name: name, Leader: leader.id, Clients: clients, MsgsPerReq: perReq, Seconds: b.cfg.duration.Seconds(), Errors: errs.snapshot()}
	h := newHist()
	var acks []ackRec
	for i := range outs {
		o := &outs[i]
		h.Merge(o.hist)
		r.Requests += o.reqs
		r.Messages += o.msgs
		r.Failed += o.nf
		acks = append(acks, o.acks...)
	}
	r.MsgsPerSec = float64(r.Messages) / r.Seconds
	r.MBPerSec = r.MsgsPerSec * valueSize / 1e6
	r.Latency = histLatency(h)
	b.log.Info("phase done", "phase", name, "msgs_per_sec", int(r.MsgsPerSec), "mb_per_sec", fmt.Sprintf("%.1f", r.MBPerSec),
		"p50_ms", r.Latency.P50Ms, "p99_ms", r.Latency.P99Ms, "failed", r.Failed)
	return r, acks, nil
}

// --- raw disk baseline -----------------------------------------------------

type fsyncResult struct {
	Path     string  `json:"path"`
	Seconds  float64 `json:"seconds"`
	Writes   int64   `json:"writes"`
	MBPerSec float64 `json:"mb_per_sec"`
	Latency  latency `json:"write_fsync_latency"`
}

// fsyncBaseline appends 100 KiB chunks to a new file in dir, each write
// followed by fsync, for d.
func fsyncBaseline(ctx context.Context, dir string, d time.Duration) (res fsyncResult, err error) {
	path := filepath.Join(dir, "fsync-baseline.dat")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, f.Close(), os.Remove(path)) }()
	chunk := bytes.Repeat([]byte{0x5a}, fsyncChunk)
	h := newHist()
	start := time.Now()
	end := start.Add(d)
	var writes int64
	for now := start; now.Before(end); writes++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if _, err := f.Write(chunk); err != nil {
			return res, err
		}
		if err := f.Sync(); err != nil {
			return res, err
		}
		t := time.Now()
		h.RecordValue(t.Sub(now).Microseconds())
		now = t
	}
	secs := time.Since(start).Seconds()
	res = fsyncResult{Path: path, Seconds: secs, Writes: writes, MBPerSec: float64(writes*fsyncChunk) / secs / 1e6, Latency: histLatency(h)}
	return res, nil
}

// --- failover --------------------------------------------------------------

type timedAck struct {
	at  time.Time
	by  string // API address
	rec ackRec
}

// ackLog records the failover phase's acknowledgements.
type ackLog struct {
	mu   sync.Mutex
	acks []timedAck
	wake chan struct{} // closed and replaced on every add
}

func (a *ackLog) add(x timedAck) {
	a.mu.Lock()
	a.acks = append(a.acks, x)
	close(a.wake)
	a.wake = make(chan struct{})
	a.mu.Unlock()
}

// firstAfter waits for the first acknowledgement at or after t by a node
// other than exclude.
func (a *ackLog) firstAfter(ctx context.Context, t time.Time, exclude string, timeout time.Duration) (timedAck, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		a.mu.Lock()
		for ; seen < len(a.acks); seen++ {
			if x := a.acks[seen]; x.by != exclude && !x.at.Before(t) {
				a.mu.Unlock()
				return x, nil
			}
		}
		wake := a.wake
		a.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			return timedAck{}, fmt.Errorf("no write acknowledged by a new leader within %s", timeout)
		case <-ctx.Done():
			return timedAck{}, ctx.Err()
		}
	}
}

// maxGap is the longest interval between consecutive acknowledgements
// with from <= at <= to, and how many there were.
func (a *ackLog) maxGap(from, to time.Time) (time.Duration, int) {
	a.mu.Lock()
	var ts []time.Time
	for _, x := range a.acks {
		if !x.at.Before(from) && !x.at.After(to) {
			ts = append(ts, x.at)
		}
	}
	a.mu.Unlock()
	slices.SortFunc(ts, time.Time.Compare)
	var gap time.Duration
	for i := 1; i < len(ts); i++ {
		gap = max(gap, ts[i].Sub(ts[i-1]))
	}
	return gap, len(ts)
}

type killResult struct {
	N           int     `json:"n"`
	Killed      string  `json:"killed"`
	NewLeader   string  `json:"new_leader"`
	OutageMs    float64 `json:"outage_ms"`  // kill to the first ack by another node
	MaxGapMs    float64 `json:"max_gap_ms"` // longest ack gap from 1s before the kill to 1s after that ack
	WindowAcks  int     `json:"window_acks"`
	ReachableMs float64 `json:"reachable_ms"` // restart until the leader's status shows the node reachable
	CatchUpMs   float64 `json:"catch_up_ms"`  // restart until last_index within 100 of the leader's
}

type summary struct {
	Median float64 `json:"median_ms"`
	Worst  float64 `json:"worst_ms"`
}

type failoverResult struct {
	Clients     int          `json:"clients"`
	Kills       []killResult `json:"kills"`
	Outage      summary      `json:"outage"`
	MaxGap      summary      `json:"max_gap"`
	Reachable   summary      `json:"reachable"`
	CatchUp     summary      `json:"catch_up"`
	Seconds     float64      `json:"seconds"`
	Acked       int          `json:"acked"`
	AckedPerSec float64      `json:"acked_per_sec"`
	Failed      int64        `json:"failed_requests"`
	Errors      errSnapshot  `json:"errors"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := slices.Sorted(slices.Values(xs))
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{Median: med, Worst: s[len(s)-1]}
}

// failover runs the failover phase and returns its figures and every
// acknowledged message.
func (b *bench) failover(ctx context.Context) (failoverResult, []ackRec, error) {
	res := failoverResult{Clients: failClients}
	leader, err := b.waitLeader(ctx, nil)
	if err != nil {
		return res, nil, err
	}
	log := &ackLog{wake: make(chan struct{})}
	var errs errCounts
	var failed atomic.Int64
	req := b.jsonRequest(phaseFailover, 1, failoverTimeout)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	for c := range failClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := leader.api
			for seq := uint64(0); loadCtx.Err() == nil; seq++ {
				by, acks, err := req(loadCtx, c, seq, &target, &errs)
				if err != nil {
					if loadCtx.Err() == nil {
						failed.Add(1)
						sleepCtx(loadCtx, retryEvery)
					}
					continue
				}
				log.add(timedAck{at: time.Now(), by: by, rec: acks[0]})
			}
		}()
	}
	start := time.Now()
	for k := range b.cfg.kills {
		kr, err := b.killLeader(ctx, log)
		if err != nil {
			stopLoad()
			wg.Wait()
			return res, nil, fmt.Errorf("kill %d: %w", k+1, err)
		}
		kr.N = k + 1
		res.Kills = append(res.Kills, kr)
		b.log.Info("leader killed", "n", kr.N, "killed", kr.Killed, "new_leader", kr.NewLeader,
			"outage_ms", kr.OutageMs, "max_gap_ms", kr.MaxGapMs, "catch_up_ms", kr.CatchUpMs)
	}
	err = sleepCtx(ctx, killEvery) // some load on the healed group
	stopLoad()
	wg.Wait()
	if err != nil {
		return res, nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	col := func(f func(killResult) float64) []float64 {
		var out []float64
		for _, k := range res.Kills {
			out = append(out, f(k))
		}
		return out
	}
	res.Outage = summarize(col(func(k killResult) float64 { return k.OutageMs }))
	res.MaxGap = summarize(col(func(k killResult) float64 { return k.MaxGapMs }))
	res.Reachable = summarize(col(func(k killResult) float64 { return k.ReachableMs }))
	res.CatchUp = summarize(col(func(k killResult) float64 { return k.CatchUpMs }))
	res.Failed, res.Errors = failed.Load(), errs.snapshot()
	log.mu.Lock()
	acks := make([]ackRec, len(log.acks))
	for i, x := range log.acks {
		acks[i] = x.rec
	}
	log.mu.Unlock()
	res.Acked = len(acks)
	res.AckedPerSec = float64(res.Acked) / res.Seconds
	return res, acks, nil
}

// killLeader waits killEvery, kills the leader, measures the failover,
// restarts the killed node and waits until it has caught up.
func (b *bench) killLeader(ctx context.Context, log *ackLog) (killResult, error) {
	var kr killResult
	if err := sleepCtx(ctx, killEvery); err != nil {
		return kr, err
	}
	victim, err := b.waitLeader(ctx, nil)
	if err != nil {
		return kr, err
	}
	kr.Killed = victim.id
	killAt := time.Now()
	b.g.kill(victim)

	first, err := log.firstAfter(ctx, killAt, victim.api, recoverTimeout)
	if err != nil {
		return kr, err
	}
	kr.OutageMs = ms(first.at.Sub(killAt))
	if n := b.g.byAPI(first.by); n != nil {
		kr.NewLeader = n.id
	}
	windowEnd := first.at.Add(gapSlack)
	if err := sleepCtx(ctx, time.Until(windowEnd)); err != nil {
		return kr, err
	}
	gap, count := log.maxGap(killAt.Add(-gapSlack), windowEnd)
	kr.MaxGapMs, kr.WindowAcks = ms(gap), count

	restart := time.Now()
	if err := b.g.start(victim); err != nil {
		return kr, err
	}
	deadline := restart.Add(recoverTimeout)
	for {
		reachable, ok, err := b.caughtUp(ctx, victim)
		if err != nil {
			return kr, err
		}
		if reachable && kr.ReachableMs == 0 {
			kr.ReachableMs = ms(time.Since(restart))
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return kr, fmt.Errorf("%s did not catch up within %s", victim.id, recoverTimeout)
		}
		if err := sleepCtx(ctx, pollEvery); err != nil {
			return kr, err
		}
	}
	kr.CatchUpMs = ms(time.Since(restart))
	return kr, nil
}

// caughtUp reports whether the leader's cluster status shows n reachable,
// and whether it also shows n's last_index within catchUpSlack of the
// leader's.
func (b *bench) caughtUp(ctx context.Context, n *node) (reachable, ok bool, err error) {
	if _, err := b.g.running(); err != nil {
		return false, false, err
	}
	l := b.leader(ctx, n)
	if l == nil {
		return false, false, nil
	}
	var cs wire.ClusterStatus
	if b.call(ctx, controlTimeout, "GET", l.api, "/v1/cluster", "", nil, &cs) != nil {
		return false, false, nil
	}
	var ln, nn *wire.ClusterNode
	for i := range cs.Nodes {
		switch cs.Nodes[i].ID {
		case l.id:
			ln = &cs.Nodes[i]
		case n.id:
			nn = &cs.Nodes[i]
		}
	}
	if ln == nil || nn == nil || !nn.Reachable {
		return false, false, nil
	}
	return true, nn.LastIndex+catchUpSlack >= ln.LastIndex, nil
}

// --- verification ----------------------------------------------------------

type phaseCheck struct {
	Phase         string `json:"phase"`
	Acked         int    `json:"acked"`
	Stored        int    `json:"stored"`     // distinct ids of this phase found
	Lost          int    `json:"lost"`       // acknowledged, not stored
	Duplicates    int    `json:"duplicates"` // acknowledged, stored more than once
	Misplaced     int    `json:"misplaced"`  // stored elsewhere than acknowledged
	UnackedStored int    `json:"unacked_stored"`
}

type verifyResult struct {
	Leader        string       `json:"leader"`
	ReplicasAgree bool         `json:"replicas_agree"` // same offset ranges on every node
	Messages      int64        `json:"messages_read"`
	Fetches       int          `json:"fetches"`
	ReadSeconds   float64      `json:"read_seconds"`
	Foreign       int          `json:"foreign"` // values without an id of this run
	Phases        []phaseCheck `json:"phases"`
	OK            bool         `json:"ok"`
}

type fetchResponse struct {
	Messages []struct {
		Offset uint64  `json:"offset"`
		Value  *string `json:"value"`
	} `json:"messages"`
	NextOffset uint64 `json:"next_offset"`
}

func loc(queue int, offset uint64) uint64 { return uint64(queue)<<48 | offset }

// verify reads every queue from the leader and checks every acknowledged
// message.
func (b *bench) verify(ctx context.Context, ackSets [][]ackRec) (verifyResult, error) {
	var v verifyResult
	leader, err := b.waitLeader(ctx, nil)
	if err != nil {
		return v, err
	}
	v.Leader = leader.id
	ti, agree, err := b.agreedTopic(ctx, leader)
	if err != nil {
		return v, err
	}
	v.ReplicasAgree = agree

	acked := map[uint64]uint64{} // id -> loc
	for _, set := range ackSets {
		for _, a := range set {
			acked[a.id] = loc(a.queue, a.offset)
		}
	}
	count := make(map[uint64]uint32, len(acked))
	misplaced := map[uint64]int{} // phase -> count
	start := time.Now()
	for _, qi := range ti.QueueInfo {
		for off := qi.Earliest; off < qi.Next; {
			var fr fetchResponse
			path := fmt.Sprintf("/v1/topics/%s/queues/%d/messages?offset=%d&max_messages=%d&max_bytes=%d", topicName, qi.Queue, off, fetchMax, fetchMaxBytes)
			if err := b.call(ctx, controlTimeout, "GET", leader.api, path, "", nil, &fr); err != nil {
				return v, fmt.Errorf("read queue %d at %d: %w", qi.Queue, off, err)
			}
			v.Fetches++
			if len(fr.Messages) == 0 || fr.NextOffset <= off {
				return v, fmt.Errorf("read queue %d at %d: no messages before %d", qi.Queue, off, qi.Next)
			}
			for _, m := range fr.Messages {
				v.Messages++
				id, ok := uint64(0), false
				if m.Value != nil {
					id, ok = parseID(*m.Value)
				}
				if !ok {
					v.Foreign++
					continue
				}
				count[id]++
				if l, ok := acked[id]; ok && l != loc(qi.Queue, m.Offset) {
					misplaced[idPhase(id)]++
				}
			}
			off = fr.NextOffset
		}
	}
	v.ReadSeconds = time.Since(start).Seconds()

	checks := map[uint64]*phaseCheck{}
	for _, p := range []uint64{phaseJSON, phaseBinary, phaseFailover} {
		checks[p] = &phaseCheck{Phase: phaseName(p), Misplaced: misplaced[p]}
	}
	for id, n := range count {
		pc := checks[idPhase(id)]
		if pc == nil {
			v.Foreign += int(n)
			continue
		}
		pc.Stored++
		if _, ok := acked[id]; !ok {
			pc.UnackedStored++
		}
	}
	for id := range acked {
		pc := checks[idPhase(id)]
		pc.Acked++
		switch n := count[id]; {
		case n == 0:
			pc.Lost++
		case n > 1:
			pc.Duplicates++
		}
	}
	v.OK = v.ReplicasAgree
	for _, p := range []uint64{phaseJSON, phaseBinary, phaseFailover} {
		pc := checks[p]
		v.Phases = append(v.Phases, *pc)
		v.OK = v.OK && pc.Lost == 0 && pc.Duplicates == 0 && pc.Misplaced == 0
	}
	return v, nil
}

// agreedTopic waits until every node describes the topic with the same
// queue offset ranges and returns the leader's description, and whether
// they agreed before recoverTimeout.
func (b *bench) agreedTopic(ctx context.Context, leader *node) (wire.TopicInfo, bool, error) {
	deadline := time.Now().Add(recoverTimeout)
	for {
		var lt wire.TopicInfo
		if err := b.call(ctx, controlTimeout, "GET", leader.api, "/v1/topics/"+topicName, "", nil, &lt); err != nil {
			return lt, false, fmt.Errorf("describe topic on %s: %w", leader.id, err)
		}
		agree := len(lt.QueueInfo) == topicQueues
		for _, n := range b.g.nodes {
			if n == leader || !agree {
				continue
			}
			var t wire.TopicInfo
			agree = b.call(ctx, controlTimeout, "GET", n.api, "/v1/topics/"+topicName, "", nil, &t) == nil && slices.Equal(t.QueueInfo, lt.QueueInfo)
		}
		if agree || time.Now().After(deadline) {
			return lt, agree, nil
		}
		if err := sleepCtx(ctx, pollEvery); err != nil {
			return lt, false, err
		}
	}
}

// --- report ----------------------------------------------------------------

type resultConfig struct {
	DurationS       float64 `json:"duration_s"`
	WarmupS         float64 `json:"warmup_s"`
	Clients         int     `json:"clients"`
	Kills           int     `json:"kills"`
	FailoverClients int     `json:"failover_clients"`
	Nodes           int     `json:"nodes"`
	Queues          int     `json:"queues"`
	ValueBytes      int     `json:"value_bytes"`
	MsgsPerRequest  int     `json:"msgs_per_request"`
}

type machine struct {
	GoVersion    string `json:"go_version"`
	NumCPU       int    `json:"num_cpu"`
	GOMAXPROCS   int    `json:"gomaxprocs"`
	LoadAvgStart string `json:"load_avg_start"`
	LoadAvgEnd   string `json:"load_avg_end"`
}

type ratios struct {
	JSONOverBinaryMsgs float64 `json:"json_over_binary_msgs"`
	JSONOverFsyncMB    float64 `json:"json_over_fsync_mb"`
	BinaryOverFsyncMB  float64 `json:"binary_over_fsync_mb"`
}

type results struct {
	Config   resultConfig   `json:"config"`
	Machine  machine        `json:"machine"`
	JSON     phaseResult    `json:"json"`
	Binary   phaseResult    `json:"binary"`
	Fsync    fsyncResult    `json:"fsync"`
	Ratios   ratios         `json:"ratios"`
	Failover failoverResult `json:"failover"`
	Verify   verifyResult   `json:"verify"`
}

func report(w io.Writer, root string, r *results) {
	m := r.Machine
	fmt.Fprintf(w, "\nbrokerbench: %d broker processes on 127.0.0.1 (defaults: sync every-append), %s, %d CPUs, GOMAXPROCS=%d\n",
		r.Config.Nodes, m.GoVersion, m.NumCPU, m.GOMAXPROCS)
	fmt.Fprintf(w, "load average at start %s, at end %s; data under %s (removed on exit)\n\n", m.LoadAvgStart, m.LoadAvgEnd, root)

	fmt.Fprintf(w, "throughput: topic with %d queues, %d-byte values, %.0fs measured after %.0fs warm-up, MB = 10^6 bytes of values\n",
		r.Config.Queues, r.Config.ValueBytes, r.Config.DurationS, r.Config.WarmupS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tclients\tmsgs/req\trequests\tmsgs/s\tMB/s\tp50 ms\tp99 ms\tmax ms\tfailed\tredirects\t")
	for _, p := range []*phaseResult{&r.JSON, &r.Binary} {
		fmt.Fprintf(tw, "%s produce (leader %s)\t%d\t%d\t%d\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%d\t%d\t\n", p.Name, p.Leader, p.Clients, p.MsgsPerReq,
			p.Requests, p.MsgsPerSec, p.MBPerSec, p.Latency.P50Ms, p.Latency.P99Ms, p.Latency.MaxMs, p.Failed, p.Errors.NotLeader)
	}
	f := r.Fsync
	fmt.Fprintf(tw, "raw write(100 KiB)+fsync\t1\t-\t%d\t-\t%.1f\t%.2f\t%.2f\t%.2f\t-\t-\t\n", f.Writes, f.MBPerSec, f.Latency.P50Ms, f.Latency.P99Ms, f.Latency.MaxMs)
	tw.Flush()
	fmt.Fprintf(w, "(latency: per request; for the raw baseline per write+fsync, file in the temporary root next to the data dirs)\n\n")

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "JSON msgs/s ÷ binary msgs/s\t%.3f\n", r.Ratios.JSONOverBinaryMsgs)
	fmt.Fprintf(tw, "JSON MB/s ÷ raw fsync MB/s\t%.3f\t(×3 replicas on this disk: %.3f)\n", r.Ratios.JSONOverFsyncMB, 3*r.Ratios.JSONOverFsyncMB)
	fmt.Fprintf(tw, "binary MB/s ÷ raw fsync MB/s\t%.3f\t(×3 replicas on this disk: %.3f)\n", r.Ratios.BinaryOverFsyncMB, 3*r.Ratios.BinaryOverFsyncMB)
	tw.Flush()

	fo := r.Failover
	fmt.Fprintf(w, "\nfailover: %d clients, JSON, 1 message per request; SIGKILL of the leader every %s, then restart\n", fo.Clients, killEvery)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kill\tkilled\tnew leader\toutage ms\tmax ack gap ms\tacks in window\treachable ms\tcatch-up ms\t")
	for _, k := range fo.Kills {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1f\t%.1f\t%d\t%.1f\t%.1f\t\n", k.N, k.Killed, k.NewLeader, k.OutageMs, k.MaxGapMs, k.WindowAcks, k.ReachableMs, k.CatchUpMs)
	}
	fmt.Fprintf(tw, "median\t\t\t%.1f\t%.1f\t\t%.1f\t%.1f\t\n", fo.Outage.Median, fo.MaxGap.Median, fo.Reachable.Median, fo.CatchUp.Median)
	fmt.Fprintf(tw, "worst\t\t\t%.1f\t%.1f\t\t%.1f\t%.1f\t\n", fo.Outage.Worst, fo.MaxGap.Worst, fo.Reachable.Worst, fo.CatchUp.Worst)
	tw.Flush()
	e := fo.Errors
	fmt.Fprintf(w, "outage: kill to the first write acknowledged by another node; max ack gap: from 1s before the kill to 1s after that ack;\n")
	fmt.Fprintf(w, "reachable / catch-up: restart until the leader's GET /v1/cluster shows the node reachable / its last_index within %d of the leader's\n", catchUpSlack)
	fmt.Fprintf(w, "%d writes acknowledged in %.1fs (%.0f/s); %d failed with unknown outcome (unavailable %d, timeout %d, other %d); redirects %d, refused connections %d\n",
		fo.Acked, fo.Seconds, fo.AckedPerSec, fo.Failed, e.Unavailable, e.Timeout, e.Other, e.NotLeader, e.Refused)

	v := r.Verify
	fmt.Fprintf(w, "\nverification: read %d messages in %d fetches from the leader %s in %.1fs; replicas agree on every queue's range: %v\n",
		v.Messages, v.Fetches, v.Leader, v.ReadSeconds, v.ReplicasAgree)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tacknowledged\tstored\tlost\tduplicates\tmisplaced\tstored, not acknowledged\t")
	for _, p := range v.Phases {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", p.Phase, p.Acked, p.Stored, p.Lost, p.Duplicates, p.Misplaced, p.UnackedStored)
	}
	tw.Flush()
	if v.Foreign > 0 {
		fmt.Fprintf(w, "%d stored messages carry no id of this run\n", v.Foreign)
	}
	verdict := "OK: every acknowledged message stored exactly once, where it was acknowledged"
	if !v.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "verification: %s\n", verdict)
}
