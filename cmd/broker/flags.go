package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ledgermq/ledgermq/broker"
	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/replication"
)

// nodeOptions are the flags of one broker node. Each flag can also be set
// by the environment variable LEDGERMQ_<NAME> (upper case, - as _) and by a
// line `name = value` in the --config file. A flag beats the environment,
// which beats the file, which beats the default.
type nodeOptions struct {
	id, dataDir, listen, advertiseAPI, raftListen, peers, logLevel, sync string
	groupID                                                              uint
	segmentBytes, retentionBytes, zeroAhead                              int64
	maxRequestBytes                                                      int
	retention, heartbeat, election, lease, snapInterval, failoverAfter   time.Duration
	retentionInterval                                                    time.Duration
	snapThreshold                                                        uint64
	admission                                                            broker.Admission // issue 11
	quotas                                                               service.Quotas
	maxAppendBytes                                                       int64
	auth                                                                 authOptions      // issue 12
	tls                                                                  broker.TLSConfig // issue 12
	insecure                                                             bool
	pprofListen                                                          string
	kafkaListen, kafkaAdvertise                                          string // issue 14
}

// authOptions are the authentication and authorization flags (issue 12).
type authOptions struct {
	enabled                        bool
	superusers, bootstrapTokenFile string
}

func defineNodeFlags(fs *flag.FlagSet, o *nodeOptions) {
	d := broker.DefaultConfig()
	fs.StringVar(&o.id, "id", d.ID, "this node's id within its group")
	fs.UintVar(&o.groupID, "group-id", uint(d.GroupID), "broker group id")
	fs.StringVar(&o.dataDir, "data-dir", d.DataDir, "directory for the commit log, Raft state and snapshots")
	fs.StringVar(&o.listen, "listen", d.Listen, "HTTP API address")
	fs.StringVar(&o.advertiseAPI, "advertise-api", "", "API address told to clients and peers, when not --listen (NAT, proxy, container port)")
	fs.StringVar(&o.raftListen, "raft-listen", d.RaftListen, "Raft address (also the peer protocol)")
	fs.StringVar(&o.kafkaListen, "kafka-listen", "", "Kafka-protocol listener address, e.g. 127.0.0.1:9092 (off when empty; uses the API's TLS settings)")
	fs.StringVar(&o.kafkaAdvertise, "kafka-advertise", "", "host:port that Kafka Metadata reports for this node, when not --kafka-listen")
	fs.StringVar(&o.peers, "peers", "", "every member's Raft address: id=host:port,... (empty: a group of one)")
	fs.StringVar(&o.sync, "sync", d.Sync.String(), "commit-log durability: every-append, interval or never")
	fs.Int64Var(&o.segmentBytes, "segment-bytes", d.SegmentBytes, "commit-log segment size in bytes")
	fs.Int64Var(&o.zeroAhead, "zero-ahead-bytes", d.ZeroAheadBytes, "write the active segment with zeros this far ahead of its appends, so a durable append needs fdatasync only (0: off, the default; see docs/design.md 1.3 for what a power loss then costs)")
	fs.Int64Var(&o.retentionBytes, "retention-bytes", 0, "delete the oldest segments while the log is larger (0: no limit)")
	fs.DurationVar(&o.retention, "retention", d.RetentionAge, "delete segments whose newest message is older (0: no limit)")
	fs.DurationVar(&o.retentionInterval, "retention-interval", replication.DefaultConfig().RetentionInterval, "how often retention deletes segments (with --retention-bytes, the log may exceed it by what arrives in between)")
	fs.IntVar(&o.maxRequestBytes, "max-request-bytes", d.MaxRequestBytes, "largest request body accepted")
	fs.DurationVar(&o.heartbeat, "raft-heartbeat", replication.DefaultConfig().HeartbeatTimeout, "Raft heartbeat timeout")
	fs.DurationVar(&o.election, "raft-election", replication.DefaultConfig().ElectionTimeout, "Raft election timeout")
	fs.DurationVar(&o.lease, "raft-lease", 0, "a leader that reaches no majority this long steps down; at most the heartbeat timeout (0: the heartbeat timeout)")
	fs.DurationVar(&o.failoverAfter, "raft-failover-after", replication.DefaultConfig().FailoverAfter, "a follower whose leader has been silent this long starts an election at once when a majority agrees (negative: raft's randomized timer only)")
	fs.DurationVar(&o.snapInterval, "snapshot-interval", replication.DefaultConfig().SnapshotInterval, "how often to check whether a state snapshot is due")
	fs.Uint64Var(&o.snapThreshold, "snapshot-threshold", replication.DefaultConfig().SnapshotThreshold, "log entries since the last snapshot that make one due (bounds restart replay)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.pprofListen, "pprof-listen", "", "serve Go profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060 (off when empty)")
	// issue 11: admission and disk
	a := &o.admission
	fs.Int64Var(&a.MaxInflightBytes, "max-inflight-bytes", d.Admission.MaxInflightBytes, "request bytes all requests being served may hold; over it requests get 503 OVERLOADED before their body is read")
	fs.Int64Var(&a.MaxInflightBytesPerClient, "max-inflight-bytes-per-client", d.Admission.MaxInflightBytesPerClient, "request bytes the requests of one client address may hold")
	fs.IntVar(&a.MaxConns, "max-conns", d.Admission.MaxConns, "connections served at once")
	fs.IntVar(&a.MaxConnsPerIP, "max-conns-per-ip", d.Admission.MaxConnsPerIP, "connections of one client address")
	fs.Int64Var(&a.MinFreeBytes, "min-free-bytes", d.Admission.MinFreeBytes, "the leader refuses writes (507 DISK_FULL) while the data directory has less free space (negative: no byte floor)")
	fs.Float64Var(&a.MinFreePercent, "min-free-percent", d.Admission.MinFreePercent, "the same floor as a percentage of the data directory's file system (negative: none); the larger floor applies")
	// quotas: bounds on the replicated state, each refused with its own code
	q := &o.quotas
	fs.IntVar(&q.MaxTopics, "max-topics", service.DefaultMaxTopics, "topics in the group (TOO_MANY_TOPICS)")
	fs.IntVar(&q.MaxQueuesPerTopic, "max-queues-per-topic", service.DefaultMaxQueuesPerTopic, "queues of one topic, at most 1024 (TOO_MANY_QUEUES)")
	fs.IntVar(&q.MaxGroups, "max-groups", service.DefaultMaxGroups, "consumer groups (TOO_MANY_GROUPS)")
	fs.IntVar(&q.MaxMembersPerGroup, "max-members-per-group", service.DefaultMaxMembersPerGroup, "members of one consumer group (TOO_MANY_MEMBERS)")
	fs.IntVar(&q.MaxCommandBytes, "max-command-bytes", service.DefaultMaxCommandBytes, "encoded size of one topic or group command (COMMAND_TOO_LARGE)")
	// issue 12: authentication and authorization
	fs.BoolVar(&o.auth.enabled, "auth", false, "require authentication (bearer token or client certificate) and enforce ACLs; off, every request is User:ANONYMOUS and allowed")
	fs.StringVar(&o.auth.superusers, "superusers", "", "principals allowed everything, not stored in Raft: User:admin,...")
	fs.StringVar(&o.auth.bootstrapTokenFile, "bootstrap-token-file", "", "file holding one token lmq_<id>_<secret>, accepted as the first superuser's credential (User:admin if --superusers is empty)")
	fs.Int64Var(&o.maxAppendBytes, "max-append-bytes", replication.DefaultConfig().MaxAppendBytes, "entry bytes one Raft AppendEntries may carry: entries per RPC = this / (max-request-bytes + 256 KiB), at most 512")
	fs.BoolVar(&o.insecure, "insecure", false, "allow listening beyond loopback without TLS and --auth (the node then warns every minute)")
	// issue 12: TLS (files are re-read when they change and on SIGHUP)
	t := &o.tls
	fs.StringVar(&t.API.Cert, "tls-cert", "", "PEM certificate of the HTTP API: serve HTTPS")
	fs.StringVar(&t.API.Key, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&t.API.CA, "tls-ca", "", "PEM CA bundle verifying API client certificates (principal User:<CN>)")
	fs.StringVar(&t.ClientAuth, "tls-client-auth", "", "API client certificates: none, request (verified if sent) or require (default: request with --tls-ca, else none)")
	fs.StringVar(&t.Raft.Cert, "raft-tls-cert", "", "PEM node certificate (URI SAN ledgermq://node/<id>) for mutual TLS on the Raft port (default: --tls-cert)")
	fs.StringVar(&t.Raft.Key, "raft-tls-key", "", "PEM key of --raft-tls-cert (default: --tls-key)")
	fs.StringVar(&t.Raft.CA, "raft-tls-ca", "", "PEM cluster CA verifying the other nodes (default: --tls-ca)")
}

func parseNodeFlags(args []string, stderr io.Writer) (*nodeOptions, error) {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &nodeOptions{}
	defineNodeFlags(fs, o)
	config := fs.String("config", "", "optional config file of `name = value` lines (flag names)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage:\n  broker [flags]            run one node\n  broker dev [--nodes 3]    run a local group in one process\n\nFlags (also LEDGERMQ_<NAME> environment variables and --config file lines):\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only; see broker -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := applyEnv(fs, set); err != nil {
		return nil, err
	}
	for _, name := range unknownEnv(fs, os.Environ()) {
		fmt.Fprintf(stderr, "broker: warning: %s is not a setting (no flag --%s); ignored\n", name,
			strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "LEDGERMQ_"), "_", "-")))
	}
	if *config != "" {
		if err := applyFile(fs, *config, set); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func envName(flagName string) string {
	return "LEDGERMQ_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// unknownEnv returns the LEDGERMQ_* variables of environ that name no
// flag: a misspelt setting (LEDGERMQ_LOGLEVEL) would otherwise be ignored
// without a word. LEDGERMQ_TEST_* belong to the test suite.
func unknownEnv(fs *flag.FlagSet, environ []string) []string {
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "LEDGERMQ_") && !strings.HasPrefix(name, "LEDGERMQ_TEST_") && !known[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func applyEnv(fs *flag.FlagSet, set map[string]bool) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && !set[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: invalid value %q: %w", envName(f.Name), v, e)
			}
			set[f.Name] = true
		}
	})
	return err
}

func applyFile(fs *flag.FlagSet, path string, set map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want name = value", path, line)
		}
		name, value = strings.TrimSpace(name), strings.Trim(strings.TrimSpace(value), `"`)
		if fs.Lookup(name) == nil || name == "config" {
			return fmt.Errorf("%s:%d: unknown setting %q", path, line, name)
		}
		if set[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: invalid value %q for %s: %w", path, line, value, name, err)
		}
	}
	return sc.Err()
}

func parsePeers(s string) ([]replication.Peer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []replication.Peer
	for _, item := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--peers: want id=host:port, got %q", item)
		}
		out = append(out, replication.Peer{ID: id, RaftAddr: addr})
	}
	return out, nil
}

func (o *nodeOptions) brokerConfig(logger *slog.Logger) (broker.Config, error) {
	cfg := broker.DefaultConfig()
	peers, err := parsePeers(o.peers)
	if err != nil {
		return cfg, err
	}
	pol, err := replication.ParseSyncPolicy(o.sync)
	if err != nil {
		return cfg, fmt.Errorf("--sync: %w", err)
	}
	if err := checkLevel(o.logLevel); err != nil {
		return cfg, err
	}
	if o.groupID > math.MaxUint32 {
		return cfg, fmt.Errorf("--group-id: %d is above %d", o.groupID, uint32(math.MaxUint32))
	}
	cfg.ID, cfg.GroupID, cfg.DataDir = o.id, uint32(o.groupID), o.dataDir
	cfg.Listen, cfg.RaftListen, cfg.Peers = o.listen, o.raftListen, peers
	cfg.AdvertiseAPI = o.advertiseAPI
	cfg.KafkaListen, cfg.KafkaAdvertise = o.kafkaListen, o.kafkaAdvertise
	cfg.Sync, cfg.SegmentBytes, cfg.ZeroAheadBytes = pol, o.segmentBytes, o.zeroAhead
	cfg.RetentionBytes, cfg.RetentionAge, cfg.RetentionInterval = o.retentionBytes, o.retention, o.retentionInterval
	cfg.MaxRequestBytes = o.maxRequestBytes
	cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout = o.heartbeat, o.election
	cfg.Raft.FailoverAfter = o.failoverAfter
	cfg.Raft.LeaderLeaseTimeout, cfg.Raft.SnapshotInterval, cfg.Raft.SnapshotThreshold = o.lease, o.snapInterval, o.snapThreshold
	cfg.Admission = o.admission
	cfg.Quotas = o.quotas
	cfg.Raft.MaxAppendBytes = o.maxAppendBytes
	// issue 12
	cfg.Auth.Enabled = o.auth.enabled
	for _, p := range strings.Split(o.auth.superusers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Auth.Superusers = append(cfg.Auth.Superusers, p)
		}
	}
	cfg.BootstrapTokenFile = o.auth.bootstrapTokenFile
	cfg.TLS = o.tls
	cfg.Insecure = o.insecure
	cfg.Logger = logger
	return cfg, nil
}

// checkLevel refuses a log level slog does not know.
func checkLevel(level string) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return fmt.Errorf("--log-level: want debug, info, warn or error, got %q", level)
	}
	return nil
}
