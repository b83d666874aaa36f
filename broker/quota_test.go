package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ledgermq/ledgermq/wire"
)

// joinMember joins group g to topics and returns the membership.
func joinMember(t *testing.T, base, g, body string) wire.Membership {
	t.Helper()
	var m wire.Membership
	r := call(t, "POST", base+"/v1/groups/"+g+"/members", "", []byte(body))
	if r.status != 200 || json.Unmarshal(r.body, &m) != nil {
		t.Fatalf("join: %d %s", r.status, r.body)
	}
	return m
}

func floodBody(prefix string, entry string, size int) []byte {
	var b bytes.Buffer
	b.WriteString(prefix)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(entry)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// TestOffsetsFlood: a commit (or release) of a few MiB of entries that
// re-encode many times larger is refused or bounded before it is
// proposed: the leader and its term stay, and produces go on.
func TestOffsetsFlood(t *testing.T) {
	bs := startGroup(t, 3, func(c *Config) { c.MaxRequestBytes = 16 << 20 })
	l := leaderOf(t, bs)
	base := "http://" + l.Addr()
	if r := call(t, "POST", base+"/v1/topics", "", []byte(`{"name":"jobs","queues":4}`)); r.status != 201 {
		t.Fatalf("create: %s", r.body)
	}
	m := joinMember(t, base, "g", `{"topics":["jobs"],"session_timeout_ms":60000}`)
	term := l.node.Leader().Term

	stop := make(chan struct{})
	var produced, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := http.Post(base+"/v1/topics/jobs/messages", "application/json", bytes.NewReader([]byte(`{"messages":[{"value":"x"}]}`)))
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
			} else {
				produced.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	}()

	prefix := fmt.Sprintf(`{"member_id":%q,"generation":%d,"offsets":[`, m.MemberID, m.Generation)
	// 6 MiB of {} entries: each would re-encode ~11x larger, over the log's entry limit.
	expectCode(t, call(t, "POST", base+"/v1/groups/g/offsets", "", floodBody(prefix, `{}`, 6<<20)), 409, wire.CodeNotAssigned)
	// 6 MiB of one owned queue: collapsed to one entry (the last wins).
	r := call(t, "POST", base+"/v1/groups/g/offsets", "", floodBody(prefix, `{"topic":"jobs","queue":0,"offset":1}`, 6<<20))
	if r.status != 200 {
		t.Fatalf("commit of repeats: %d %s", r.status, r.body)
	}
	// A release of 6 MiB of queues and offsets it does not own: dropped before proposing.
	rel := floodBody(`{"offsets":[{"topic":"jobs","queue":1,"offset":2}],"queues":[`, `{}`, 6<<20)
	if r := call(t, "POST", base+"/v1/groups/g/members/"+m.MemberID+"/release", "", rel); r.status != 200 {
		t.Fatalf("release flood: %d %s", r.status, r.body)
	}
	// Unknown members and groups are refused before proposing.
	expectCode(t, call(t, "POST", base+"/v1/groups/g/offsets", "", floodBody(`{"member_id":"m9","generation":1,"offsets":[`, `{}`, 1<<20)), 404, wire.CodeUnknownMember)
	expectCode(t, call(t, "POST", base+"/v1/groups/nope/offsets", "", floodBody(prefix, `{}`, 1<<20)), 404, wire.CodeGroupNotFound)
	close(stop)
	wg.Wait()

	if now := leaderOf(t, bs); now != l || now.node.Leader().Term != term {
		t.Fatalf("leader %s term %d after the flood, was %s term %d", now.cfg.ID, now.node.Leader().Term, l.cfg.ID, term)
	}
	if failed.Load() != 0 || produced.Load() == 0 {
		t.Fatalf("concurrent produces: %d ok, %d failed", produced.Load(), failed.Load())
	}
	var gi wire.GroupInfo
	json.Unmarshal(call(t, "GET", base+"/v1/groups/g", "", nil).body, &gi)
	for _, q := range gi.Queues {
		want := map[int]uint64{0: 1, 1: 2}[q.Queue]
		if got := uint64(0); q.Committed != nil {
			got = *q.Committed
			if got != want {
				t.Fatalf("queue %d committed %d, want %d", q.Queue, got, want)
			}
		} else if want != 0 {
			t.Fatalf("queue %d has no commit, want %d", q.Queue, want)
		}
	}
}
