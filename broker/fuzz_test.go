package broker

import (
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// FuzzPlanProduce: the JSON produce decoder never panics, refuses bad
// input with an API error, and what it accepts becomes valid batches that
// hold every message exactly once.
func FuzzPlanProduce(f *testing.F) {
	f.Add([]byte(`{"messages":[{"key":"k","value":"v","headers":{"a":"b"}},{"value_base64":"AAE=","queue":1}]}`))
	f.Add([]byte(`{"messages":[]}`))
	f.Add([]byte(`{"messages":[{"value":"x","queue":-1}]}`))
	f.Add([]byte(`{"messages":[{"value":"x","value_base64":"eA=="}]}`))
	s := topics.New()
	s.Apply(1, topics.EncodeCreate(topics.Config{Name: "t", Queues: 3, MaxMessageBytes: 1 << 10}))
	top, _ := s.Lookup("t")
	f.Fuzz(func(t *testing.T, body []byte) {
		n := 0
		rr := func(string, int) int { n++; return n % 3 }
		plan, err := planProduce(top, body, 1, time.Unix(1, 0), rr)
		if err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("non-API error %T: %v", err, err)
			}
			return
		}
		seen := 0
		for pi, p := range plan.parts {
			if p.Queue < 0 || p.Queue >= 3 {
				t.Fatalf("queue %d", p.Queue)
			}
			_, msgs, err := wire.Decode(p.Batch, 0, 1<<10)
			if err != nil {
				t.Fatalf("planned batch does not decode: %v", err)
			}
			if len(msgs) != len(plan.members[pi]) {
				t.Fatalf("part %d: %d messages, %d members", pi, len(msgs), len(plan.members[pi]))
			}
			seen += len(msgs)
		}
		if seen != plan.count {
			t.Fatalf("%d messages planned, %d in batches", plan.count, seen)
		}
	})
}
