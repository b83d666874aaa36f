package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

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

// scrape parses a node's /metrics with Prometheus' own text parser, which
// rejects malformed exposition (types, histogram series, label syntax).
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	r := call(t, "GET", "http://"+addr+"/metrics", "", nil)
	if r.status != 200 {
		t.Fatalf("/metrics: %d %s", r.status, r.body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, r.body)
	}
	return fams
}

// sample returns the value of name's series with exactly labels, and
// whether there is one.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsExposition: a 3-node group's /metrics parses as Prometheus
// text, follows its naming conventions, and carries what operators watch:
// produce and fetch latency histograms, each follower's match index and
// last contact on the leader, the leader's last contact on a follower,
// disk space and watermark, and every queue's offsets as described.
func TestMetricsExposition(t *testing.T) {
	bs := startGroup(t, 3, nil)
	l := leaderOf(t, bs)
	base := "http://" + l.Addr()
	if r := call(t, "POST", base+"/v1/topics", "", []byte(`{"name":"m","queues":2}`)); r.status != 201 && r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	for i := range 7 {
		body := fmt.Sprintf(`{"messages":[{"value":"v%d","queue":%d}]}`, i, i%2)
		if r := call(t, "POST", base+"/v1/topics/m/messages", "", []byte(body)); r.status != 200 {
			t.Fatalf("produce: %d %s", r.status, r.body)
		}
	}
	if r := call(t, "GET", base+"/v1/topics/m/queues/0/messages?offset=0", "", nil); r.status != 200 {
		t.Fatalf("fetch: %d %s", r.status, r.body)
	}
	var ti wire.TopicInfo
	if err := json.Unmarshal(call(t, "GET", base+"/v1/topics/m", "", nil).body, &ti); err != nil {
		t.Fatal(err)
	}
	lastIndex := l.Service().Status().LastIndex

	var fams map[string]*dto.MetricFamily
	waitFor(t, 5*time.Second, "both followers' match index at the leader's last index", func() bool {
		fams = scrape(t, l.Addr())
		for _, b := range bs {
			if b == l {
				continue
			}
			v, ok := sample(fams, "ledgermq_raft_follower_match_index", map[string]string{"follower": b.Node().ID()})
			if !ok || uint64(v) < lastIndex {
				return false
			}
		}
		return true
	})
	for name, f := range fams {
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			if !strings.HasSuffix(name, "_total") {
				t.Errorf("counter %s does not end in _total", name)
			}
		case dto.MetricType_HISTOGRAM:
			if !strings.HasSuffix(name, "_seconds") {
				t.Errorf("histogram %s is not in seconds", name)
			}
		}
		if strings.Contains(name, "latency") && !strings.HasSuffix(name, "_seconds") {
			t.Errorf("%s: a duration not in seconds", name)
		}
	}
	if n, _ := sample(fams, "ledgermq_produce_duration_seconds", nil); n != 7 {
		t.Errorf("produce histogram counts %v requests, want 7", n)
	}
	if n, _ := sample(fams, "ledgermq_fetch_duration_seconds", nil); n != 1 {
		t.Errorf("fetch histogram counts %v fetches, want 1", n)
	}
	for _, b := range bs {
		if b == l {
			continue
		}
		age, ok := sample(fams, "ledgermq_raft_follower_last_contact_seconds", map[string]string{"follower": b.Node().ID()})
		if !ok || age < 0 || age > 2 {
			t.Errorf("follower %s last contact %v s ago (present %v)", b.Node().ID(), age, ok)
		}
		ff := scrape(t, b.Addr())
		if age, ok := sample(ff, "ledgermq_raft_leader_last_contact_seconds", nil); !ok || age < 0 || age > 2 {
			t.Errorf("follower %s: leader last contact %v s ago (present %v)", b.Node().ID(), age, ok)
		}
		if _, ok := ff["ledgermq_raft_follower_match_index"]; ok {
			t.Errorf("follower %s exposes follower match indexes", b.Node().ID())
		}
	}
	free, ok1 := sample(fams, "ledgermq_disk_free_bytes", nil)
	size, ok2 := sample(fams, "ledgermq_disk_size_bytes", nil)
	mark, ok3 := sample(fams, "ledgermq_disk_watermark_bytes", nil)
	if !ok1 || !ok2 || !ok3 || free <= 0 || size < free || mark <= 0 {
		t.Errorf("disk: free %v size %v watermark %v", free, size, mark)
	}
	for _, q := range ti.QueueInfo {
		lbl := map[string]string{"topic": "m", "queue": fmt.Sprint(q.Queue)}
		for name, want := range map[string]uint64{"ledgermq_queue_next_offset": q.Next,
			"ledgermq_queue_earliest_offset": q.Earliest, "ledgermq_queue_stored_bytes": q.Bytes} {
			if v, ok := sample(fams, name, lbl); !ok || uint64(v) != want {
				t.Errorf("%s%v = %v (present %v), describe says %d", name, lbl, v, ok, want)
			}
		}
	}
}
