package httpapi

import (
	"errors"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// FuzzPlanProduce: the JSON produce decoder and the core's planner never
// panic, refuse bad input with an API error, and what they accept becomes
// valid batches that hold every message exactly once.
func FuzzPlanProduce(f *testing.F) {
	f.Add([]byte(`{"messages":[{"key":"k","value":"v","headers":{"a":"b"}},{"value_base64":"AAE=","queue":1}]}`))
	f.Add([]byte(`{"messages":[]}`))
	f.Add([]byte(`{"messages":[{"value":"x","queue":-1}]}`))
	f.Add([]byte(`{"messages":[{"value":"x","value_base64":"eA=="}]}`))
	s := topics.New()
	top, err := s.Create(1, topics.Config{Name: "t", Queues: 3, MaxMessageBytes: 1 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n := 0
		rr := func(string, int) int { n++; return n % 3 }
		msgs, err := decodeProduce(body)
		var plan *service.ProducePlan
		if err == nil {
			plan, err = service.PlanProduce(top, msgs, 1, time.Unix(1, 0), rr)
		}
		if err != nil {
			var ae *wire.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("non-API error %T: %v", err, err)
			}
			return
		}
		seen := 0
		for pi, p := range plan.Parts {
			if p.Queue < 0 || p.Queue >= 3 {
				t.Fatalf("queue %d", p.Queue)
			}
			_, got, err := wire.Decode(p.Batch, 0, 1<<10)
			if err != nil {
				t.Fatalf("planned batch does not decode: %v", err)
			}
			if len(got) != len(plan.Members[pi]) {
				t.Fatalf("part %d: %d messages, %d members", pi, len(got), len(plan.Members[pi]))
			}
			seen += len(got)
		}
		if seen != len(msgs) {
			t.Fatalf("%d messages planned, %d in batches", len(msgs), seen)
		}
	})
}
