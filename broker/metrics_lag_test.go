package broker

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ledgermq/ledgermq/wire"
)

// TestMetricsGroupLag: /metrics shows every group's lag and committed
// offset per queue, and its lag per topic, with the figures GET
// /v1/groups/{g} (and so mqctl group describe) shows.
func TestMetricsGroupLag(t *testing.T) {
	bs := startGroup(t, 1, nil)
	base := "http://" + bs[0].Addr()
	if r := call(t, "POST", base+"/v1/topics", "", []byte(`{"name":"lag","queues":2}`)); r.status != 201 && r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	for i := 0; i < 8; i++ {
		body := fmt.Sprintf(`{"messages":[{"value":"m%d","queue":%d}]}`, i, i%2*(1-i/6)) // queue 0: 5, queue 1: 3
		if r := call(t, "POST", base+"/v1/topics/lag/messages", "", []byte(body)); r.status != 200 {
			t.Fatalf("produce: %d %s", r.status, r.body)
		}
	}
	if r := call(t, "POST", base+"/v1/groups/g/reset-offsets", "", []byte(`{"topic":"lag","to":"offset","offset":2}`)); r.status != 200 {
		t.Fatalf("reset: %d %s", r.status, r.body)
	}
	var gi wire.GroupInfo
	r := call(t, "GET", base+"/v1/groups/g", "", nil)
	if err := json.Unmarshal(r.body, &gi); err != nil || len(gi.Queues) != 2 {
		t.Fatalf("describe: %v %s", err, r.body)
	}
	metrics := string(call(t, "GET", base+"/metrics", "", nil).body)
	var total uint64
	for _, q := range gi.Queues {
		total += q.Lag
		for _, want := range []string{
			fmt.Sprintf(`ledgermq_consumer_group_lag_messages{group="g",topic="lag",queue="%d"} %d`, q.Queue, q.Lag),
			fmt.Sprintf(`ledgermq_consumer_group_committed_offset{group="g",topic="lag",queue="%d"} %d`, q.Queue, *q.Committed),
		} {
			if !strings.Contains(metrics, want+"\n") {
				t.Fatalf("metrics lack %q:\n%s", want, metrics)
			}
		}
	}
	want := fmt.Sprintf(`ledgermq_consumer_group_topic_lag_messages{group="g",topic="lag"} %d`, total)
	if total != 4 || !strings.Contains(metrics, want+"\n") {
		t.Fatalf("total lag %d (want 4 = 3 + 1); metrics lack %q", total, want)
	}
}
