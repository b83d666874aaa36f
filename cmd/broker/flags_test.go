package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker"
	"github.com/ledgermq/ledgermq/commitlog"
	"github.com/ledgermq/ledgermq/replication"
)

// writeConfig writes a --config file and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "broker.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFlagPrecedence: a flag beats LEDGERMQ_<FLAG>, which beats the
// --config file, which beats the default, for flags of every type.
func TestFlagPrecedence(t *testing.T) {
	d := broker.DefaultConfig()
	for _, tc := range []struct {
		flag     string
		get      func(*nodeOptions) string
		def      string
		vals     [3]string // flag, env, file
		wantVals [3]string // as get prints them
	}{
		{"id", func(o *nodeOptions) string { return o.id }, d.ID,
			[3]string{"f", "e", "c"}, [3]string{"f", "e", "c"}},
		{"segment-bytes", func(o *nodeOptions) string { return fmt.Sprint(o.segmentBytes) }, fmt.Sprint(d.SegmentBytes),
			[3]string{"1000", "2000", "3000"}, [3]string{"1000", "2000", "3000"}},
		{"group-id", func(o *nodeOptions) string { return fmt.Sprint(o.groupID) }, "1",
			[3]string{"7", "8", "9"}, [3]string{"7", "8", "9"}},
		{"retention", func(o *nodeOptions) string { return o.retention.String() }, d.RetentionAge.String(),
			[3]string{"1h", "2m", "3s"}, [3]string{"1h0m0s", "2m0s", "3s"}},
		{"raft-election", func(o *nodeOptions) string { return o.election.String() },
			replication.DefaultConfig().ElectionTimeout.String(),
			[3]string{"1s", "2s", "3s"}, [3]string{"1s", "2s", "3s"}},
		{"max-request-bytes", func(o *nodeOptions) string { return fmt.Sprint(o.maxRequestBytes) }, fmt.Sprint(d.MaxRequestBytes),
			[3]string{"10", "20", "30"}, [3]string{"10", "20", "30"}},
		{"sync", func(o *nodeOptions) string { return o.sync }, "every-append",
			[3]string{"never", "interval", "never"}, [3]string{"never", "interval", "never"}},
		{"peers", func(o *nodeOptions) string { return o.peers }, "",
			[3]string{"n1=a:1", "n1=b:2", "n1=c:3"}, [3]string{"n1=a:1", "n1=b:2", "n1=c:3"}},
		{"log-level", func(o *nodeOptions) string { return o.logLevel }, "info",
			[3]string{"debug", "warn", "error"}, [3]string{"debug", "warn", "error"}},
	} {
		env := envName(tc.flag)
		for mask := range 8 { // bit 0: flag, 1: env, 2: file
			var args []string
			if mask&1 != 0 {
				args = append(args, "--"+tc.flag, tc.vals[0])
			}
			if mask&2 != 0 {
				t.Setenv(env, tc.vals[1])
			} else {
				unsetenv(t, env)
			}
			if mask&4 != 0 {
				args = append(args, "--config", writeConfig(t, "# a comment\n\n  "+tc.flag+" = \""+tc.vals[2]+"\"  \n"))
			}
			want := tc.def
			for i := 2; i >= 0; i-- {
				if mask&(1<<i) != 0 {
					want = tc.wantVals[i]
				}
			}
			o, err := parseNodeFlags(args, io.Discard)
			if err != nil {
				t.Fatalf("%s mask %03b: %v", tc.flag, mask, err)
			}
			if got := tc.get(o); got != want {
				t.Errorf("%s (flag %v, env %v, file %v): got %q, want %q", tc.flag, mask&1 != 0, mask&2 != 0, mask&4 != 0, got, want)
			}
		}
	}
}

// unsetenv unsets an environment variable for the test, restoring it
// after.
func unsetenv(t *testing.T, k string) {
	t.Helper()
	t.Setenv(k, "")
	os.Unsetenv(k)
}

// TestFlagsRefused: invalid values are refused from each source, with a
// message naming the source (the flag, the variable or the file's line).
func TestFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		file  string // --config contents, if any
		want  string
		usage bool // the flag package printed the usage
	}{
		{name: "unknown flag", args: []string{"--nope"}, want: "flag provided but not defined: -nope", usage: true},
		{name: "bad int flag", args: []string{"--segment-bytes", "big"}, want: `invalid value "big" for flag -segment-bytes`, usage: true},
		{name: "bad duration flag", args: []string{"--retention", "7"}, want: `invalid value "7" for flag -retention`, usage: true},
		{name: "negative group id", args: []string{"--group-id", "-1"}, want: `invalid value "-1" for flag -group-id`, usage: true},
		{name: "bad env", env: map[string]string{"LEDGERMQ_SEGMENT_BYTES": "1MB"},
			want: "LEDGERMQ_SEGMENT_BYTES: "},
		{name: "bad env duration", env: map[string]string{"LEDGERMQ_RAFT_HEARTBEAT": "soon"},
			want: "LEDGERMQ_RAFT_HEARTBEAT: "},
		{name: "missing file", args: []string{"--config", "/nonexistent/broker.conf"}, want: "config file: open /nonexistent/broker.conf"},
		{name: "file line without =", file: "id = n1\nlisten 127.0.0.1:1\n", want: "broker.conf:2: want name = value"},
		{name: "file unknown setting", file: "# c\nport = 1\n", want: `broker.conf:2: unknown setting "port"`},
		{name: "file names config", file: "config = other.conf\n", want: `broker.conf:1: unknown setting "config"`},
		{name: "file bad value", file: "\nretention = forever\n", want: "broker.conf:2: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			var stderr bytes.Buffer
			_, err := parseNodeFlags(args, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if printed := strings.Contains(stderr.String(), "Usage:"); printed != tc.usage {
				t.Fatalf("usage printed: %v, want %v; stderr %q", printed, tc.usage, stderr.String())
			}
		})
	}
}

// TestFlagsConfigFromEnv: LEDGERMQ_CONFIG names the file, and the file is
// still beaten by a flag.
func TestFlagsConfigFromEnv(t *testing.T) {
	t.Setenv("LEDGERMQ_CONFIG", writeConfig(t, "id = from-file\nlisten = 127.0.0.1:9\n"))
	o, err := parseNodeFlags([]string{"--listen", "127.0.0.1:10"}, io.Discard)
	if err != nil || o.id != "from-file" || o.listen != "127.0.0.1:10" {
		t.Fatalf("%+v, %v", o, err)
	}
}

func TestFlagsHelp(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseNodeFlags([]string{"-h"}, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	for _, s := range []string{"broker dev [--nodes 3]", "LEDGERMQ_<NAME>", "-raft-election", "-config", "-peers"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("help lacks %q:\n%s", s, stderr.String())
		}
	}
	if err := run([]string{"--help"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run --help: %v", err)
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"id": "LEDGERMQ_ID", "raft-listen": "LEDGERMQ_RAFT_LISTEN",
		"max-request-bytes": "LEDGERMQ_MAX_REQUEST_BYTES"} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePeers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []replication.Peer
	}{
		{"", nil},
		{"  ", nil},
		{"n1=a:1", []replication.Peer{{ID: "n1", RaftAddr: "a:1"}}},
		{"n1=a:1, n2=b:2 ,n3=c:3", []replication.Peer{{ID: "n1", RaftAddr: "a:1"}, {ID: "n2", RaftAddr: "b:2"}, {ID: "n3", RaftAddr: "c:3"}}},
	} {
		got, err := parsePeers(tc.in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("parsePeers(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"n1", "n1=", "=a:1", "n1=a:1,", "n1=a:1,,n2=b:2"} {
		if _, err := parsePeers(bad); err == nil || !strings.HasPrefix(err.Error(), "--peers: want id=host:port") {
			t.Errorf("parsePeers(%q): err %v", bad, err)
		}
	}
}

// TestBrokerConfig: every option reaches the broker's Config.
func TestBrokerConfig(t *testing.T) {
	o, err := parseNodeFlags([]string{"--id", "n2", "--group-id", "5", "--data-dir", "/d", "--listen", "h:1",
		"--advertise-api", "public:1", "--raft-listen", "h:2", "--peers", "n1=h:3,n2=h:2", "--sync", "interval", "--segment-bytes", "4096",
		"--retention-bytes", "8192", "--retention", "1h", "--max-request-bytes", "1024",
		"--raft-heartbeat", "300ms", "--raft-election", "600ms", "--raft-failover-after", "-1ns", "--retention-interval", "5s",
		"--max-topics", "7", "--max-members-per-group", "9", "--max-append-bytes", "1000000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.brokerConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := broker.DefaultConfig()
	want.ID, want.GroupID, want.DataDir, want.Listen, want.RaftListen = "n2", 5, "/d", "h:1", "h:2"
	want.Peers = []replication.Peer{{ID: "n1", RaftAddr: "h:3"}, {ID: "n2", RaftAddr: "h:2"}}
	want.Sync, want.SegmentBytes, want.RetentionBytes, want.RetentionAge = commitlog.SyncInterval, 4096, 8192, time.Hour
	want.MaxRequestBytes, want.AdvertiseAPI = 1024, "public:1"
	want.Raft.HeartbeatTimeout, want.Raft.ElectionTimeout = 300*time.Millisecond, 600*time.Millisecond
	want.Raft.FailoverAfter = -1 // disabled: raft's own timer only
	want.RetentionInterval = 5 * time.Second
	want.Quotas.MaxTopics, want.Quotas.MaxMembersPerGroup, want.Raft.MaxAppendBytes = 7, 9, 1000000
	want.Raft.SnapshotInterval = replication.DefaultConfig().SnapshotInterval
	want.Raft.SnapshotThreshold = replication.DefaultConfig().SnapshotThreshold
	if fmt.Sprintf("%+v", cfg) != fmt.Sprintf("%+v", want) {
		t.Fatalf("got\n%+v\nwant\n%+v", cfg, want)
	}

	// The defaults make the default Config.
	o, err = parseNodeFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = o.brokerConfig(nil); err != nil {
		t.Fatal(err)
	}
	want = broker.DefaultConfig()
	want.Raft.HeartbeatTimeout = replication.DefaultConfig().HeartbeatTimeout
	want.Raft.ElectionTimeout = replication.DefaultConfig().ElectionTimeout
	want.Raft.FailoverAfter = replication.DefaultConfig().FailoverAfter
	want.RetentionInterval = replication.DefaultConfig().RetentionInterval
	want.Raft.MaxAppendBytes = replication.DefaultConfig().MaxAppendBytes
	want.Raft.SnapshotInterval = replication.DefaultConfig().SnapshotInterval
	want.Raft.SnapshotThreshold = replication.DefaultConfig().SnapshotThreshold
	if fmt.Sprintf("%+v", cfg) != fmt.Sprintf("%+v", want) {
		t.Fatalf("defaults: got\n%+v\nwant\n%+v", cfg, want)
	}
}

// TestRunRefuses: run reports a bad configuration before it starts
// anything.
func TestRunRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sync", "sometimes"}, `--sync: commitlog: invalid options: unknown sync policy "sometimes"`},
		{[]string{"--peers", "n1"}, `--peers: want id=host:port, got "n1"`},
		{[]string{"--id", "n9", "--peers", "n1=127.0.0.1:1", "--data-dir", dir}, `--peers does not list this node's id "n9"`},
		{[]string{"--bogus"}, "flag provided but not defined"},
	} {
		if err := run(tc.args, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		level       string
		debug, warn bool
	}{
		{"debug", true, true}, {"DEBUG", true, true}, {"info", false, true}, {"warn", false, true}, {"error", false, false},
	} {
		var b bytes.Buffer
		l := newLogger(&b, tc.level)
		l.Debug("d-msg")
		l.Warn("w-msg")
		if strings.Contains(b.String(), "d-msg") != tc.debug || strings.Contains(b.String(), "w-msg") != tc.warn {
			t.Errorf("level %q logged %q", tc.level, b.String())
		}
	}
}

// TestUnknownEnvWarns: a LEDGERMQ_* variable that names no setting is
// reported (a misspelling would otherwise pass unnoticed); the known ones,
// LEDGERMQ_CONFIG and the test suite's LEDGERMQ_TEST_* are not.
func TestUnknownEnvWarns(t *testing.T) {
	t.Setenv("LEDGERMQ_LOGLEVEL", "debug")
	t.Setenv("LEDGERMQ_LOG_LEVEL", "warn")
	t.Setenv("LEDGERMQ_TEST_WHATEVER", "1")
	var stderr bytes.Buffer
	o, err := parseNodeFlags(nil, &stderr)
	if err != nil || o.logLevel != "warn" {
		t.Fatalf("%+v, %v", o, err)
	}
	want := "broker: warning: LEDGERMQ_LOGLEVEL is not a setting (no flag --loglevel); ignored\n"
	if !strings.Contains(stderr.String(), want) || strings.Contains(stderr.String(), "LEDGERMQ_LOG_LEVEL") ||
		strings.Contains(stderr.String(), "LEDGERMQ_TEST_") {
		t.Fatalf("stderr %q, want the line %q and no other of these variables", stderr.String(), want)
	}
}
