package replication

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestHCLogNamedTwiceOneLoggerKey: a logger named twice must carry its
// name once; duplicate keys make the JSON ambiguous.
func TestHCLogNamedTwiceOneLoggerKey(t *testing.T) {
	var buf bytes.Buffer
	h := newHCLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	h.Named("raft").Named("net").Info("hello")
	if n := strings.Count(buf.String(), `"logger"`); n != 1 {
		t.Fatalf("%d logger keys in %s", n, buf.String())
	}
}
