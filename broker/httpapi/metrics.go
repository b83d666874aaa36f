package httpapi

import (
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// requestCounter counts HTTP requests by endpoint, status and error code.
type requestCounter struct {
	mu sync.Mutex
	n  map[[3]string]uint64
}

func newRequestCounter() *requestCounter { return &requestCounter{n: map[[3]string]uint64{}} }

func (r *requestCounter) observe(endpoint string, status int, code string) {
	r.mu.Lock()
	r.n[[3]string{endpoint, strconv.Itoa(status), code}]++
	r.mu.Unlock()
}

func (r *requestCounter) write(sb *strings.Builder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([][3]string, 0, len(r.n))
	for k := range r.n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return strings.Join(keys[i][:], "/") < strings.Join(keys[j][:], "/") })
	for _, k := range keys {
		fmt.Fprintf(sb, "ledgermq_requests_total{endpoint=%q,status=%q,code=%q} %d\n", k[0], k[1], k[2], r.n[k])
	}
}

// metrics is GET /metrics in the Prometheus text format.
func (s *Server) metrics(c *call) error {
	var sb strings.Builder
	help := func(name, typ, text string) { fmt.Fprintf(&sb, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, typ) }
	value := func(name, typ, text string, v any) {
		help(name, typ, text)
		fmt.Fprintf(&sb, "%s %v\n", name, v)
	}
	help("ledgermq_requests_total", "counter", "HTTP requests by endpoint, status and error code.")
	s.reqs.write(&sb)
	m := s.svc.Metrics
	value("ledgermq_produced_messages_total", "counter", "Messages acknowledged to producers.", m.ProducedMsgs.Load())
	value("ledgermq_produced_bytes_total", "counter", "Batch bytes of acknowledged produces.", m.ProducedBytes.Load())
	value("ledgermq_fetched_messages_total", "counter", "Messages served to consumers.", m.FetchedMsgs.Load())
	value("ledgermq_fetched_bytes_total", "counter", "Bytes served to consumers.", m.FetchedBytes.Load())
	value("ledgermq_leader_changes_total", "counter", "Leader changes this node observed.", m.LeaderChanges.Load())
	help("ledgermq_commit_latency_seconds", "histogram", "Time from proposing a produce to its commit and apply.")
	m.CommitLatency.WriteText(&sb, "ledgermq_commit_latency_seconds")
	help("ledgermq_produce_duration_seconds", "histogram", "Service time of acknowledged produce requests, any front-end.")
	m.ProduceLatency.WriteText(&sb, "ledgermq_produce_duration_seconds")
	help("ledgermq_fetch_duration_seconds", "histogram", "Service time of fetches that returned messages, long-poll wait included.")
	m.FetchLatency.WriteText(&sb, "ledgermq_fetch_duration_seconds")

	st := s.svc.Status()
	value("ledgermq_raft_term", "gauge", "Current Raft term.", st.Term)
	help("ledgermq_raft_role", "gauge", "1 for this node's current role.")
	for _, r := range []string{"leader", "follower", "candidate", "shutdown"} {
		v := 0
		if st.Role == r {
			v = 1
		}
		fmt.Fprintf(&sb, "ledgermq_raft_role{role=%q} %d\n", r, v)
	}
	value("ledgermq_raft_last_index", "gauge", "Last index in this node's log.", st.LastIndex)
	value("ledgermq_raft_commit_index", "gauge", "Commit index known to this node.", st.CommitIndex)
	value("ledgermq_raft_applied_index", "gauge", "Index applied to the state machine.", st.AppliedIndex)
	if st.Role == "leader" {
		help("ledgermq_follower_lag_entries", "gauge", "Leader's last index minus the follower's, as last reported.")
		for _, p := range st.Peers {
			if p.ID == st.ID || p.Status == nil {
				continue
			}
			lag := int64(st.LastIndex) - int64(p.Status.LastIndex)
			fmt.Fprintf(&sb, "ledgermq_follower_lag_entries{follower=%q} %d\n", p.ID, max(lag, 0))
		}
		now := time.Now()
		help("ledgermq_raft_follower_match_index", "gauge", "Highest log index the follower acknowledged to this leader in its term.")
		for _, f := range st.Followers {
			fmt.Fprintf(&sb, "ledgermq_raft_follower_match_index{follower=%q} %d\n", f.ID, f.MatchIndex)
		}
		help("ledgermq_raft_follower_last_contact_seconds", "gauge", "Seconds since the follower last answered this leader's AppendEntries.")
		for _, f := range st.Followers {
			age := "+Inf" // not heard from in this leader's term
			if !f.LastContact.IsZero() {
				age = strconv.FormatFloat(now.Sub(f.LastContact).Seconds(), 'g', -1, 64)
			}
			fmt.Fprintf(&sb, "ledgermq_raft_follower_last_contact_seconds{follower=%q} %s\n", f.ID, age)
		}
	} else if !st.LeaderContact.IsZero() {
		value("ledgermq_raft_leader_last_contact_seconds", "gauge", "Seconds since this follower last heard from its leader.",
			strconv.FormatFloat(time.Since(st.LeaderContact).Seconds(), 'g', -1, 64))
	}
	s.writeGroupLag(c, &sb, help)
	s.writeQueues(c, &sb, help)
	if d, ok := s.svc.DiskUsage(); ok {
		value("ledgermq_disk_free_bytes", "gauge", "Bytes available to the broker on the data directory's file system.", d.Free)
		value("ledgermq_disk_size_bytes", "gauge", "Size of the data directory's file system.", d.Total)
		value("ledgermq_disk_watermark_bytes", "gauge", "Free space below which writes are refused (DISK_FULL); 0: none.", d.Watermark)
	}
	value("ledgermq_log_segments", "gauge", "Commit-log segment files.", st.Log.Segments)
	value("ledgermq_log_bytes", "gauge", "Commit-log bytes on disk.", st.Log.Bytes)
	value("ledgermq_inflight_request_bytes", "gauge", "Request bytes charged to the in-flight budget (admission control).", s.InflightBytes())
	value("ledgermq_index_batches", "gauge", "Batch references in the topics' queue indexes (40 bytes each).", s.svc.IndexedBatches())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	value("go_goroutines", "gauge", "Goroutines that currently exist.", runtime.NumGoroutine())
	value("go_memstats_heap_inuse_bytes", "gauge", "Heap bytes in in-use spans.", ms.HeapInuse)
	value("go_memstats_sys_bytes", "gauge", "Bytes obtained from the OS.", ms.Sys)
	c.ctx.SetStatusCode(http.StatusOK)
	c.ctx.SetContentType("text/plain; version=0.0.4")
	c.ctx.SetBodyString(sb.String())
	return nil
}

// writeGroupLag writes every consumer group's committed offset and lag per
// queue (the figures of GET /v1/groups/{g} and mqctl group describe), and
// the lag per group and topic, for the groups and topics the caller may
// describe. A queue without a committed offset has no committed series; its
// lag counts from the queue's earliest offset, as the describe shows.
func (s *Server) writeGroupLag(c *call, sb *strings.Builder, help func(name, typ, text string)) {
	groups := s.svc.ListGroups(c.cx)
	if len(groups) == 0 {
		return
	}
	help("ledgermq_consumer_group_lag_messages", "gauge", "Messages of a queue after the group's committed offset.")
	for _, g := range groups {
		for _, q := range g.Queues {
			fmt.Fprintf(sb, "ledgermq_consumer_group_lag_messages{group=%q,topic=%q,queue=\"%d\"} %d\n", g.Group, q.Topic, q.Queue, q.Lag)
		}
	}
	help("ledgermq_consumer_group_committed_offset", "gauge", "The group's committed offset of a queue (the next message it will read).")
	for _, g := range groups {
		for _, q := range g.Queues {
			if q.Committed != nil {
				fmt.Fprintf(sb, "ledgermq_consumer_group_committed_offset{group=%q,topic=%q,queue=\"%d\"} %d\n", g.Group, q.Topic, q.Queue, *q.Committed)
			}
		}
	}
	help("ledgermq_consumer_group_topic_lag_messages", "gauge", "A group's lag summed over a topic's queues.")
	for _, g := range groups {
		sum := map[string]uint64{}
		var topics []string
		for _, q := range g.Queues {
			if _, ok := sum[q.Topic]; !ok {
				topics = append(topics, q.Topic)
			}
			sum[q.Topic] += q.Lag
		}
		for _, t := range topics {
			fmt.Fprintf(sb, "ledgermq_consumer_group_topic_lag_messages{group=%q,topic=%q} %d\n", g.Group, t, sum[t])
		}
	}
}

// writeQueues writes every queue's offsets and stored bytes (the figures
// of GET /v1/topics/{t}) for the topics the caller may describe.
func (s *Server) writeQueues(c *call, sb *strings.Builder, help func(name, typ, text string)) {
	topics := s.svc.ListTopicsQueues(c.cx, true)
	if len(topics) == 0 {
		return
	}
	series := []struct {
		name, text string
		v          func(wire.QueueInfo) uint64
	}{
		{"ledgermq_queue_next_offset", "The offset the queue's next message will get (its high watermark).", func(q wire.QueueInfo) uint64 { return q.Next }},
		{"ledgermq_queue_earliest_offset", "The queue's first offset not deleted by retention.", func(q wire.QueueInfo) uint64 { return q.Earliest }},
		{"ledgermq_queue_stored_bytes", "Bytes of the queue's stored batches as producers sent them.", func(q wire.QueueInfo) uint64 { return q.Bytes }},
	}
	for _, m := range series {
		help(m.name, "gauge", m.text)
		for _, t := range topics {
			for _, q := range t.QueueInfo {
				fmt.Fprintf(sb, "%s{topic=%q,queue=\"%d\"} %d\n", m.name, t.Name, q.Queue, m.v(q))
			}
		}
	}
}
