package broker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ledgermq/ledgermq/auth"
	"github.com/ledgermq/ledgermq/broker/httpapi"
	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/internal/tlsfiles"
	"github.com/ledgermq/ledgermq/replication"
)

// Config configures a broker node. Start from DefaultConfig.
type Config struct {
	// ID is the node's id within its group. Default "n1".
	ID string
	// GroupID names the broker group (reported in the API and stamped in
	// routing); one group per cluster for now. Default 1.
	GroupID uint32
	// DataDir holds the node's commit log, Raft state and snapshots.
	// Default "./data".
	DataDir string
	// Listen is the HTTP API address. Default 127.0.0.1:7001.
	Listen string
	// AdvertiseAPI is the API address other nodes and clients are told
	// (leader hints, GET /v1/cluster, GET /v1/leader), when it differs
	// from Listen: a NAT, a proxy, a container's published port. Default:
	// Listen.
	AdvertiseAPI string
	// RaftListen is the Raft address. Default 127.0.0.1:8001.
	RaftListen string
	// KafkaListen, when set, starts the Kafka-protocol listener there
	// (issue 14); KafkaAdvertise is the host:port Metadata reports for
	// this node (default KafkaListen). The listener uses the API's TLS
	// settings.
	KafkaListen    string
	KafkaAdvertise string
	// Peers lists every member's Raft address. Empty means a group of one:
	// this node alone.
	Peers []replication.Peer
	// MaxRequestBytes bounds a request body; larger bodies are refused
	// before they are read. Default 16 MiB.
	MaxRequestBytes int
	// Sync is the commit log's durability policy. Default every-append.
	Sync replication.SyncPolicy
	// SegmentBytes is the commit log's segment size. Default 256 MiB.
	SegmentBytes int64
	// ZeroAheadBytes: how far ahead of its appends the active segment is
	// written with zeros, so that durable appends need fdatasync only
	// (commitlog.Options.PreallocBytes). Default 0 (off): after a power
	// loss a node with it on may refuse to open its log until repaired
	// (docs/design.md 1.3).
	ZeroAheadBytes int64
	// RetentionBytes and RetentionAge bound the whole log (all topics);
	// whole segments are deleted. Defaults: unlimited and 7 days.
	RetentionBytes int64
	RetentionAge   time.Duration
	// RetentionInterval is how often retention runs. Default 30s.
	RetentionInterval time.Duration
	// ProposeTimeout bounds how long a write waits for commit. Default 10s.
	ProposeTimeout time.Duration
	// MaxWait bounds a fetch's long poll. Default 30s.
	MaxWait time.Duration
	// Raft overrides replication timing (zero fields keep the defaults).
	Raft replication.Config
	// Logger receives all logs. Default slog.Default().
	Logger *slog.Logger

	// issue 11: quotas. Bounds on the replicated state (topics, queues per
	// topic, groups, members per group) and on one group command's
	// encoded size; zero fields take the defaults of service.Quotas.
	Quotas             service.Quotas
	requestReadTimeout time.Duration                                    // tests: the HTTP server's read timeout (0: its default)
	freeSpace          func(dir string) (free, total uint64, err error) // tests: the disk watermark's statfs

	// issue 11: admission and disk
	// Admission bounds what the HTTP API takes in at once and the free
	// space writes need (docs/api.md "Admission and disk").
	Admission Admission

	// issue 12: authentication and authorization
	// Auth turns authentication and ACLs on and names the superusers
	// (--auth, --superusers); its BootstrapToken is read from
	// BootstrapTokenFile (--bootstrap-token-file) when that is set.
	Auth               service.AuthConfig
	BootstrapTokenFile string

	// issue 12: TLS on the API and the Raft port.
	TLS TLSConfig
	// Insecure lets a node listen beyond loopback without TLS and
	// authentication (exposure.go); it then warns every minute.
	Insecure          bool
	insecureWarnEvery time.Duration // tests
}

// authConfig validates the auth configuration and reads the bootstrap
// token file.
func (c *Config) authConfig() (service.AuthConfig, error) {
	a := c.Auth
	for _, p := range a.Superusers {
		if err := auth.ValidatePrincipal(p, false); err != nil || !strings.HasPrefix(p, "User:") {
			return a, fmt.Errorf("broker: --superusers: %q is not a user (User:<name>)", p)
		}
	}
	if c.BootstrapTokenFile != "" {
		b, err := os.ReadFile(c.BootstrapTokenFile)
		if err != nil {
			return a, fmt.Errorf("broker: --bootstrap-token-file: %w", err)
		}
		a.BootstrapToken = strings.TrimSpace(string(b))
	}
	if a.BootstrapToken != "" {
		if _, _, err := auth.ParseToken(a.BootstrapToken); err != nil {
			return a, fmt.Errorf("broker: the bootstrap token is not lmq_<id>_<secret> (16 hex characters of id): %w", err)
		}
	}
	return a, nil
}

// TLSConfig configures TLS. Files are PEM; they are re-read when they
// change (polled every second) and on Broker.ReloadTLS (SIGHUP).
type TLSConfig struct {
	// API: with Cert and Key the HTTP API is HTTPS; CA verifies client
	// certificates (principal User:<CN>) as ClientAuth says.
	API tlsfiles.Files
	// ClientAuth is "none", "request" (verify a certificate if one is
	// sent) or "require". Default: "request" with API.CA, else "none".
	ClientAuth string
	// Raft: with Cert, Key and CA the Raft port is mutual TLS between
	// members (node certificates carry ledgermq://node/<id>). Default:
	// the API files, when only those are given.
	Raft tlsfiles.Files
}

// clientAuth maps ClientAuth to crypto/tls.
func (c *TLSConfig) clientAuth() (tls.ClientAuthType, error) {
	mode := c.ClientAuth
	if mode == "" {
		mode = "none"
		if c.API.CA != "" {
			mode = "request"
		}
	}
	switch mode {
	case "none":
		return tls.NoClientCert, nil
	case "request", "require":
		if c.API.CA == "" {
			return 0, fmt.Errorf("broker: --tls-client-auth %s needs --tls-ca to verify client certificates", mode)
		}
		if mode == "require" {
			return tls.RequireAndVerifyClientCert, nil
		}
		return tls.VerifyClientCertIfGiven, nil
	}
	return 0, fmt.Errorf("broker: --tls-client-auth: want none, request or require, got %q", c.ClientAuth)
}

// raftFiles is Raft, defaulting to API; ok is false when the Raft port
// stays plain TCP.
func (c *TLSConfig) raftFiles() (tlsfiles.Files, bool, error) {
	f := c.Raft
	if f == (tlsfiles.Files{}) {
		f = c.API
	}
	if f == (tlsfiles.Files{}) {
		return f, false, nil
	}
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return f, false, fmt.Errorf("broker: mutual TLS on the Raft port needs a certificate, its key and the cluster CA (--raft-tls-cert, --raft-tls-key, --raft-tls-ca)")
	}
	return f, true, nil
}

// Admission is the admission-control and disk-watermark configuration.
// Zero fields take the defaults in brackets.
type Admission struct {
	// MaxInflightBytes bounds the request bytes (Content-Length) of all
	// requests being served; over it requests get OVERLOADED before their
	// body is read [256 MiB]. MaxInflightBytesPerClient bounds those of one
	// client address [64 MiB]. Each is raised to MaxRequestBytes if lower.
	MaxInflightBytes          int64
	MaxInflightBytesPerClient int64
	// MaxConns bounds the connections served at once [4096];
	// MaxConnsPerIP those of one client address [256].
	MaxConns      int
	MaxConnsPerIP int
	// MinFreeBytes and MinFreePercent: the leader refuses writes that grow
	// the log with DISK_FULL while the data directory's free space is below
	// max(MinFreeBytes, MinFreePercent% of its size) [256 MiB, 1%];
	// negative disables a floor.
	MinFreeBytes   int64
	MinFreePercent float64
}

// entrySlack is what an entry may hold beyond its request's bytes: the
// command's framing and, for a JSON produce, the binary records'
// per-message overhead (at most 10,000 messages).
const entrySlack = 256 << 10

func (c *Config) maxRequestBytes() int {
	if c.MaxRequestBytes > 0 {
		return c.MaxRequestBytes
	}
	return DefaultConfig().MaxRequestBytes
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ID:              "n1",
		GroupID:         1,
		DataDir:         "./data",
		Listen:          "127.0.0.1:7001",
		RaftListen:      "127.0.0.1:8001",
		MaxRequestBytes: 16 << 20,
		Sync:            replication.SyncEveryAppend,
		SegmentBytes:    256 << 20,
		RetentionAge:    7 * 24 * time.Hour,
		ProposeTimeout:  10 * time.Second,
		MaxWait:         30 * time.Second,
		Quotas: service.Quotas{MaxTopics: service.DefaultMaxTopics, MaxQueuesPerTopic: service.DefaultMaxQueuesPerTopic,
			MaxGroups: service.DefaultMaxGroups, MaxMembersPerGroup: service.DefaultMaxMembersPerGroup,
			MaxCommandBytes: service.DefaultMaxCommandBytes},
		Admission: Admission{
			MaxInflightBytes:          httpapi.DefaultMaxInflightBytes,
			MaxInflightBytesPerClient: httpapi.DefaultMaxInflightBytesPerClient,
			MaxConns:                  httpapi.DefaultConcurrency,
			MaxConnsPerIP:             httpapi.DefaultMaxConnsPerIP,
			MinFreeBytes:              service.DefaultMinFreeBytes,
			MinFreePercent:            service.DefaultMinFreePercent,
		},
	}
}

func (c *Config) replicationConfig() (replication.Config, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	rc := replication.DefaultConfig()
	o := c.Raft
	if o.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = o.HeartbeatTimeout
	}
	if o.ElectionTimeout > 0 {
		rc.ElectionTimeout = o.ElectionTimeout
	}
	if o.LeaderLeaseTimeout > 0 {
		rc.LeaderLeaseTimeout = o.LeaderLeaseTimeout
	} else {
		// The lease follows the heartbeat timeout unless set: raft wants it
		// no longer, and a shorter one makes loaded leaders step down.
		rc.LeaderLeaseTimeout = rc.HeartbeatTimeout
	}
	if o.FailoverAfter != 0 { // negative: raft's own election timer only
		rc.FailoverAfter = o.FailoverAfter
	}
	if c.RetentionInterval > 0 {
		rc.RetentionInterval = c.RetentionInterval
	}
	if o.SnapshotInterval > 0 {
		rc.SnapshotInterval = o.SnapshotInterval
	}
	if o.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = o.SnapshotThreshold
	}
	rc.ID = c.ID
	rc.Dir = c.DataDir
	rc.RaftAddr = c.RaftListen
	rc.APIAddr = c.Listen
	if c.AdvertiseAPI != "" {
		rc.APIAddr = c.AdvertiseAPI
	}
	rc.KafkaAddr = c.KafkaListen
	if c.KafkaAdvertise != "" {
		rc.KafkaAddr = c.KafkaAdvertise
	}
	rc.Peers = c.Peers
	if len(rc.Peers) == 0 {
		rc.Peers = []replication.Peer{{ID: c.ID, RaftAddr: c.RaftListen}}
	}
	found := false
	for _, p := range rc.Peers {
		found = found || p.ID == c.ID
	}
	if !found {
		return rc, fmt.Errorf("broker: --peers does not list this node's id %q", c.ID)
	}
	rc.Log.Sync = c.Sync
	if c.SegmentBytes > 0 {
		rc.Log.SegmentSize = c.SegmentBytes
	}
	rc.Log.PreallocBytes = max(c.ZeroAheadBytes, 0)
	rc.Log.Retention.MaxBytes, rc.Log.Retention.MaxAge = c.RetentionBytes, c.RetentionAge
	// An entry holds at most one request's data and its framing, or one
	// command within its quota; the entry bound in turn sizes
	// AppendEntries (replication.Config).
	cmd := c.Quotas.MaxCommandBytes
	if cmd <= 0 {
		cmd = service.DefaultMaxCommandBytes
	}
	rc.MaxEntryBytes = min(max(c.maxRequestBytes()+entrySlack, cmd), rc.Log.MaxEntrySize)
	if o.MaxAppendBytes > 0 {
		rc.MaxAppendBytes = o.MaxAppendBytes
	}
	rc.Logger = c.Logger
	return rc, nil
}
