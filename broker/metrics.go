package broker

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// metrics are exposed at /metrics in the Prometheus text format. They are
// kept by hand: a few counters, one histogram, and gauges read at scrape
// time.
type metrics struct {
	mu       sync.Mutex
	requests map[[3]string]uint64 // endpoint, status, error code

	producedMsgs, producedBytes atomic.Uint64
	fetchedMsgs, fetchedBytes   atomic.Uint64
	leaderChanges               atomic.Uint64
	commitLatency               *histogram
}

func newMetrics() *metrics {
	return &metrics{requests: map[[3]string]uint64{},
		commitLatency: newHistogram([]float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5})}
}

func (m *metrics) observeRequest(endpoint string, status int, code string, _ time.Duration) {
	m.mu.Lock()
	m.requests[[3]string{endpoint, fmt.Sprint(status), code}]++
	m.mu.Unlock()
}

func (m *metrics) produced(msgs, bytes int) {
	m.producedMsgs.Add(uint64(msgs))
	m.producedBytes.Add(uint64(bytes))
}

func (m *metrics) fetched(msgs, bytes int) {
	m.fetchedMsgs.Add(uint64(msgs))
	m.fetchedBytes.Add(uint64(bytes))
}

type histogram struct {
	mu      sync.Mutex
	bounds  []float64
	counts  []uint64
	sum     float64
	samples uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds))}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range h.bounds {
		if s <= b {
			h.counts[i]++
		}
	}
	h.sum += s
	h.samples++
}

func (h *histogram) write(sb *strings.Builder, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range h.bounds {
		fmt.Fprintf(sb, "%s_bucket{le=\"%g\"} %d\n", name, b, h.counts[i])
	}
	fmt.Fprintf(sb, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, h.samples, name, h.sum, name, h.samples)
}

func (b *Broker) serveMetrics(ctx *fasthttp.RequestCtx) {
	var sb strings.Builder
	m := b.m
	help := func(name, typ, text string) { fmt.Fprintf(&sb, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, typ) }

	help("ledgermq_requests_total", "counter", "HTTP requests by endpoint, status and error code.")
	m.mu.Lock()
	keys := make([][3]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return strings.Join(keys[i][:], "/") < strings.Join(keys[j][:], "/") })
	for _, k := range keys {
		fmt.Fprintf(&sb, "ledgermq_requests_total{endpoint=%q,status=%q,code=%q} %d\n", k[0], k[1], k[2], m.requests[k])
	}
	m.mu.Unlock()
	counter := func(name, text string, v uint64) {
		help(name, "counter", text)
		fmt.Fprintf(&sb, "%s %d\n", name, v)
	}
	gauge := func(name, text string, v any) {
		help(name, "gauge", text)
		fmt.Fprintf(&sb, "%s %v\n", name, v)
	}
	counter("ledgermq_produced_messages_total", "Messages acknowledged to producers.", m.producedMsgs.Load())
	counter("ledgermq_produced_bytes_total", "Request bytes of acknowledged produces.", m.producedBytes.Load())
	counter("ledgermq_fetched_messages_total", "Messages served to consumers.", m.fetchedMsgs.Load())
	counter("ledgermq_fetched_bytes_total", "Bytes served to consumers.", m.fetchedBytes.Load())
	counter("ledgermq_leader_changes_total", "Leader changes this node observed.", m.leaderChanges.Load())
	help("ledgermq_commit_latency_seconds", "histogram", "Time from proposing a produce to its commit and apply.")
	m.commitLatency.write(&sb, "ledgermq_commit_latency_seconds")

	st := b.node.Status()
	gauge("ledgermq_raft_term", "Current Raft term.", st.Term)
	help("ledgermq_raft_role", "gauge", "1 for this node's current role.")
	for _, r := range []string{"leader", "follower", "candidate", "shutdown"} {
		v := 0
		if st.Role == r {
			v = 1
		}
		fmt.Fprintf(&sb, "ledgermq_raft_role{role=%q} %d\n", r, v)
	}
	gauge("ledgermq_raft_last_index", "Last index in this node's log.", st.LastIndex)
	gauge("ledgermq_raft_commit_index", "Commit index known to this node.", st.CommitIndex)
	gauge("ledgermq_raft_applied_index", "Index applied to the state machine.", st.AppliedIndex)
	if st.Role == "leader" {
		help("ledgermq_follower_lag_entries", "gauge", "Leader's last index minus the follower's, as last reported.")
		for _, p := range b.peerProgress() {
			if p.ID == b.cfg.ID || p.Status == nil {
				continue
			}
			lag := int64(st.LastIndex) - int64(p.Status.LastIndex)
			fmt.Fprintf(&sb, "ledgermq_follower_lag_entries{follower=%q} %d\n", p.ID, max(lag, 0))
		}
	}
	ls := b.node.Log().Stats()
	gauge("ledgermq_log_segments", "Commit-log segment files.", ls.Segments)
	gauge("ledgermq_log_bytes", "Commit-log bytes on disk.", ls.Bytes)
	ctx.SetStatusCode(http.StatusOK)
	ctx.SetContentType("text/plain; version=0.0.4")
	ctx.SetBodyString(sb.String())
}
