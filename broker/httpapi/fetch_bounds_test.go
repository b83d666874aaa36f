package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/internal/brokertest"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// TestFetchJSONOutputBounded (issue 11: batch bounds): values of control
// bytes escape 6× in JSON; the answer, measured after escaping, stays
// within max_bytes (one message alone may exceed it), and following
// next_offset reads every message exactly once.
func TestFetchJSONOutputBounded(t *testing.T) {
	b := brokertest.Group(t, 1, nil)[0]
	svc := b.Service()
	ctx := context.Background()
	if _, err := svc.CreateTopic(ctx, topics.Config{Name: "ctl", Queues: 1}); err != nil {
		t.Fatal(err)
	}
	const n, size = 200, 1000
	msgs := make([]service.Message, n)
	for i := range msgs {
		msgs[i].Value = bytes.Repeat([]byte{1}, size) // valid UTF-8: "\u0001" each
	}
	big := service.Message{}
	big.Value = bytes.Repeat([]byte{2}, 20000)
	msgs = append(msgs, big, msgs[0])
	if _, err := svc.Produce(ctx, "ctl", msgs); err != nil {
		t.Fatal(err)
	}
	get := func(offset uint64, maxBytes int) ([]byte, wire.FetchResponse) {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://%s/v1/topics/ctl/queues/0/messages?offset=%d&max_bytes=%d&max_messages=10000", b.Addr(), offset, maxBytes))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var out wire.FetchResponse
		if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		return body, out
	}
	const maxBytes = 64 << 10 // the records' own bytes: 64 messages; escaped, ~10
	seen := uint64(0)
	for seen < uint64(len(msgs)) {
		body, out := get(seen, maxBytes)
		if len(out.Messages) == 0 {
			t.Fatalf("no message at %d", seen)
		}
		if len(body) > maxBytes && len(out.Messages) > 1 {
			t.Fatalf("offset %d: %d-byte answer with %d messages, max_bytes %d", seen, len(body), len(out.Messages), maxBytes)
		}
		for i, m := range out.Messages {
			if m.Offset != seen+uint64(i) {
				t.Fatalf("message %d has offset %d, want %d", i, m.Offset, seen+uint64(i))
			}
		}
		t.Logf("offset %d: %d messages in %d bytes", seen, len(out.Messages), len(body))
		if out.NextOffset != seen+uint64(len(out.Messages)) {
			t.Fatalf("next_offset %d after %d messages from %d", out.NextOffset, len(out.Messages), seen)
		}
		seen = out.NextOffset
	}
}
