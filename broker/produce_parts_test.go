package broker

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// TestProducePartsRequest: POST /v1/produce stores the batches of several
// queues and topics as one entry, answers each part on its own (a bad part
// does not stop the good ones, and gets the status and code the
// single-batch endpoint gives it), keeps idempotence per queue, and
// refuses a malformed request as a whole with nothing stored.
func TestProducePartsRequest(t *testing.T) {
	bs := startGroup(t, 3, nil)
	base := "http://" + leaderOf(t, bs).Addr()
	for _, topic := range []string{`{"name":"a","queues":2}`, `{"name":"b","queues":1}`} {
		expectCode(t, call(t, "POST", base+"/v1/topics", "", []byte(topic)), 201, "")
	}
	enc := func(pid, seq uint64, vals ...string) []byte {
		var msgs []wire.Message
		for _, v := range vals {
			msgs = append(msgs, wire.Message{Value: []byte(v)})
		}
		b, err := wire.Encode(msgs, wire.CodecNone, wire.Producer{ID: pid, Sequence: seq}, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var ip wire.InitProducerResponse
	if r := call(t, "POST", base+"/v1/producers", "", nil); r.status != 200 || json.Unmarshal(r.body, &ip) != nil {
		t.Fatalf("init producer: %d %s", r.status, r.body)
	}
	pid := ip.ProducerID
	produce := func(parts []wire.ProducePart) ([]wire.ProducePartResult, resp) {
		t.Helper()
		body, err := wire.AppendProduceRequest(nil, parts)
		if err != nil {
			t.Fatal(err)
		}
		r := call(t, "POST", base+"/v1/produce", wire.ProduceContentType, body)
		var out wire.ProducePartsResponse
		if r.status == 200 {
			if err := json.Unmarshal(r.body, &out); err != nil || len(out.Results) != len(parts) {
				t.Fatalf("answer %s: %v", r.body, err)
			}
		}
		return out.Results, r
	}
	res, r := produce([]wire.ProducePart{
		{Topic: "a", Queue: 0, Batch: enc(pid, 0, "a0-1", "a0-2")},
		{Topic: "nope", Queue: 0, Batch: enc(0, 0, "x")},
		{Topic: "a", Queue: 1, Batch: enc(pid, 0, "a1-1")},
		{Topic: "a", Queue: 5, Batch: enc(0, 0, "x")},
		{Topic: "b", Queue: 0, Batch: []byte("not a batch")},
		{Topic: "b", Queue: 0, Batch: enc(pid, 0, "b0-1")},
		{Topic: "a", Queue: 0, Batch: enc(pid, 2, "a0-3")}, // the next batch of queue a/0, same request
		{Topic: "a", Queue: 1, Batch: enc(pid, 5, "gap")},  // a sequence gap
	})
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	want := []struct {
		status int
		code   string
		base   uint64
	}{{0, "", 0}, {404, wire.CodeTopicNotFound, 0}, {0, "", 0}, {404, wire.CodeQueueNotFound, 0},
		{400, wire.CodeMalformedBatch, 0}, {0, "", 0}, {0, "", 2}, {409, wire.CodeOutOfOrderSequence, 0}}
	var index uint64
	for i, w := range want {
		got := res[i]
		if w.code == "" {
			if got.Error != nil || got.Status != 0 || got.BaseOffset != w.base || got.Index == 0 {
				t.Errorf("part %d: %+v (error %+v), want stored at offset %d", i, got, got.Error, w.base)
			}
			if index != 0 && got.Index != index {
				t.Errorf("part %d committed at index %d, the others at %d: not one entry", i, got.Index, index)
			}
			index = got.Index
			continue
		}
		if got.Error == nil || got.Status != w.status || got.Error.Code != w.code {
			t.Errorf("part %d: %+v (error %+v), want %d %s", i, got, got.Error, w.status, w.code)
		}
	}
	// A resend of the same parts: duplicates, the original offsets.
	res, _ = produce([]wire.ProducePart{{Topic: "a", Queue: 0, Batch: enc(pid, 0, "a0-1", "a0-2")}, {Topic: "b", Queue: 0, Batch: enc(pid, 0, "b0-1")}})
	for i, got := range res {
		if got.Error != nil || !got.Duplicate || got.BaseOffset != 0 {
			t.Errorf("resent part %d: %+v (error %+v), want a duplicate at 0", i, got, got.Error)
		}
	}
	// Whole-request refusals store nothing.
	good, _ := wire.AppendProduceRequest(nil, []wire.ProducePart{{Topic: "b", Queue: 0, Batch: enc(0, 0, "never")}})
	expectCode(t, call(t, "POST", base+"/v1/produce", wire.ContentType, good), 415, wire.CodeUnsupportedMedia)
	expectCode(t, call(t, "POST", base+"/v1/produce", wire.ProduceContentType, good[:len(good)-1]), 400, wire.CodeInvalidArgument)
	expectCode(t, call(t, "POST", base+"/v1/produce", wire.ProduceContentType, nil), 400, wire.CodeInvalidArgument)
	for _, b := range bs {
		if b.node.IsLeader() {
			continue
		}
		expectCode(t, call(t, "POST", "http://"+b.Addr()+"/v1/produce", wire.ProduceContentType, good), 421, wire.CodeNotLeader)
	}
	// What is stored, per queue, in order.
	for q, vals := range map[string][]string{"a/0": {"a0-1", "a0-2", "a0-3"}, "a/1": {"a1-1"}, "b/0": {"b0-1"}} {
		var fr wire.FetchResponse
		var topic string
		var queue int
		fmt.Sscanf(q, "%1s/%d", &topic, &queue)
		r := call(t, "GET", fmt.Sprintf("%s/v1/topics/%s/queues/%d/messages?offset=0", base, topic, queue), "", nil)
		if err := json.Unmarshal(r.body, &fr); err != nil {
			t.Fatalf("%s: %s", q, r.body)
		}
		var got []string
		for _, m := range fr.Messages {
			got = append(got, *m.Value)
		}
		if fmt.Sprint(got) != fmt.Sprint(vals) {
			t.Errorf("%s holds %v, want %v", q, got, vals)
		}
	}
}
