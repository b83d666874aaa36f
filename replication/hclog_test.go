package replication

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// jsonLogger returns a slog logger at level writing JSON lines to the
// returned buffer, and a function that decodes the lines written so far.
func jsonLogger(t *testing.T, level slog.Level) (*slog.Logger, func() []map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))
	return l, func() []map[string]any {
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if line == "" {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			out = append(out, rec)
		}
		buf.Reset()
		return out
	}
}

func TestHCLogLevels(t *testing.T) {
	l, records := jsonLogger(t, slog.LevelDebug-4)
	h := newHCLog(l)
	tests := []struct {
		emit  func(string, ...any)
		level hclog.Level
		want  string // slog's name of the level
	}{
		{h.Trace, hclog.Trace, "DEBUG-4"},
		{h.Debug, hclog.Debug, "DEBUG"},
		{h.Info, hclog.Info, "INFO"},
		{h.Warn, hclog.Warn, "WARN"},
		{h.Error, hclog.Error, "ERROR"},
	}
	for _, tc := range tests {
		tc.emit("via method", "k", 1)
		h.Log(tc.level, "via Log", "k", 2)
		recs := records()
		if len(recs) != 2 {
			t.Fatalf("%s: %d records, want 2", tc.level, len(recs))
		}
		for i, r := range recs {
			if r["level"] != tc.want || r["component"] != "raft" || r["k"] != float64(i+1) {
				t.Fatalf("%s: record %v, want level %s, component raft, k %d", tc.level, r, tc.want, i+1)
			}
		}
	}
	// Levels hclog has and slog has not are logged at Info.
	h.Log(hclog.NoLevel, "no level")
	if recs := records(); len(recs) != 1 || recs[0]["level"] != "INFO" {
		t.Fatalf("NoLevel: %v", recs)
	}
}

func TestHCLogHandlerLevelDecides(t *testing.T) {
	tests := []struct {
		handler slog.Level
		want    hclog.Level
		enabled [5]bool // trace, debug, info, warn, error
	}{
		{slog.LevelDebug - 4, hclog.Trace, [5]bool{true, true, true, true, true}},
		{slog.LevelDebug, hclog.Debug, [5]bool{false, true, true, true, true}},
		{slog.LevelInfo, hclog.Info, [5]bool{false, false, true, true, true}},
		{slog.LevelWarn, hclog.Warn, [5]bool{false, false, false, true, true}},
		{slog.LevelError, hclog.Error, [5]bool{false, false, false, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.handler.String(), func(t *testing.T) {
			l, records := jsonLogger(t, tc.handler)
			h := newHCLog(l)
			h.SetLevel(hclog.Trace) // ignored: the handler decides
			if got := h.GetLevel(); got != tc.want {
				t.Fatalf("GetLevel = %s, want %s", got, tc.want)
			}
			got := [5]bool{h.IsTrace(), h.IsDebug(), h.IsInfo(), h.IsWarn(), h.IsError()}
			if got != tc.enabled {
				t.Fatalf("Is* = %v, want %v", got, tc.enabled)
			}
			h.Trace("t")
			h.Debug("d")
			h.Info("i")
			h.Warn("w")
			h.Error("e")
			n := 0
			for _, on := range tc.enabled {
				if on {
					n++
				}
			}
			if recs := records(); len(recs) != n {
				t.Fatalf("%d records logged, want %d: %v", len(recs), n, recs)
			}
		})
	}
}

func TestHCLogWithAndNamed(t *testing.T) {
	l, records := jsonLogger(t, slog.LevelInfo)
	base := newHCLog(l)
	a := base.With("a", 1)
	b := a.With("b", 2)
	c := a.With("c", 3) // a sibling: must not see b's args
	if got := fmt.Sprint(b.ImpliedArgs()); got != "[a 1 b 2]" {
		t.Fatalf("b implied args %s", got)
	}
	if got := fmt.Sprint(c.ImpliedArgs()); got != "[a 1 c 3]" {
		t.Fatalf("c implied args %s (siblings share a slice)", got)
	}
	if len(base.ImpliedArgs()) != 0 {
		t.Fatalf("With changed its parent: %v", base.ImpliedArgs())
	}
	c.Info("msg", "d", 4)
	recs := records()
	if len(recs) != 1 || recs[0]["a"] != float64(1) || recs[0]["c"] != float64(3) || recs[0]["d"] != float64(4) || recs[0]["b"] != nil {
		t.Fatalf("record of c: %v", recs)
	}

	tests := []struct {
		logger hclog.Logger
		name   string
	}{
		{base, ""},
		{base.Named("raft"), "raft"},
		{base.Named("raft").Named("net"), "raft.net"},
		{base.Named("raft").ResetNamed("snap"), "snap"},
		{b.Named("x"), "x"},
		{b.Named("x").With("e", 5), "x"},
	}
	for _, tc := range tests {
		if got := tc.logger.Name(); got != tc.name {
			t.Errorf("Name() = %q, want %q", got, tc.name)
		}
	}
	named := b.Named("x")
	if got := fmt.Sprint(named.ImpliedArgs()); got != "[a 1 b 2]" {
		t.Fatalf("Named dropped implied args: %s", got)
	}
	named.Warn("hello")
	recs = records()
	if len(recs) != 1 || recs[0]["logger"] != "x" || recs[0]["a"] != float64(1) || recs[0]["b"] != float64(2) || recs[0]["msg"] != "hello" {
		t.Fatalf("record of a named logger: %v", recs)
	}
}

func TestHCLogStandardLogger(t *testing.T) {
	l, records := jsonLogger(t, slog.LevelInfo)
	std := newHCLog(l).StandardLogger(nil)
	std.Printf("  from the standard library  \n")
	recs := records()
	if len(recs) != 1 || recs[0]["msg"] != "from the standard library" || recs[0]["level"] != "INFO" {
		t.Fatalf("standard logger records: %v", recs)
	}
	w := newHCLog(l).StandardWriter(nil)
	if n, err := w.Write([]byte("raw\n")); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if recs := records(); len(recs) != 1 || recs[0]["msg"] != "raw" {
		t.Fatalf("standard writer records: %v", recs)
	}
}

func TestNotLeaderError(t *testing.T) {
	tests := []struct {
		err  *NotLeaderError
		text string
	}{
		{&NotLeaderError{}, "replication: not the leader; no leader known"},
		{&NotLeaderError{LeaderAddr: "ignored:1"}, "replication: not the leader; no leader known"},
		{&NotLeaderError{LeaderID: "n2", LeaderAddr: "10.0.0.2:7000"}, "replication: not the leader; leader is n2 at 10.0.0.2:7000"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.text {
			t.Errorf("Error() = %q, want %q", got, tc.text)
		}
		wrapped := fmt.Errorf("produce: %w", tc.err)
		var nle *NotLeaderError
		if !errors.Is(wrapped, ErrNotLeader) || !errors.As(wrapped, &nle) || nle != tc.err {
			t.Errorf("%v: Is(ErrNotLeader)=%v As=%v", tc.err, errors.Is(wrapped, ErrNotLeader), nle)
		}
		for _, other := range []error{ErrLeadershipLost, ErrTimeout, ErrClosed, ErrBadResult, errors.New(ErrNotLeader.Error())} {
			if errors.Is(tc.err, other) {
				t.Errorf("%v matches %v", tc.err, other)
			}
		}
	}
	// The sentinels are distinct and say which layer they come from.
	all := []error{ErrNotLeader, ErrLeadershipLost, ErrTimeout, ErrClosed, ErrLogGap, ErrNoSource, ErrBadSnapshot, ErrUnknownPeer, ErrBadResult}
	for i, a := range all {
		if !strings.HasPrefix(a.Error(), "replication: ") {
			t.Errorf("%q lacks the package prefix", a)
		}
		for _, b := range all[i+1:] {
			if errors.Is(a, b) || a.Error() == b.Error() {
				t.Errorf("%q and %q are not distinct", a, b)
			}
		}
	}
}
