package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ledgermq/ledgermq/broker/service"
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

// TestJoinStorm: 10,000 joins without a member id stop at the member
// quota (TOO_MANY_MEMBERS, refused before proposing), and the group's
// owner commits offsets throughout.
func TestJoinStorm(t *testing.T) {
	bs := startGroup(t, 1, nil)
	base := "http://" + bs[0].Addr()
	if r := call(t, "POST", base+"/v1/topics", "", []byte(`{"name":"jobs","queues":4}`)); r.status != 201 {
		t.Fatalf("create: %s", r.body)
	}
	owner := joinMember(t, base, "g", `{"topics":["jobs"],"session_timeout_ms":300000}`)
	commit := func(off int) {
		t.Helper()
		body := fmt.Sprintf(`{"member_id":%q,"generation":%d,"offsets":[{"topic":"jobs","queue":0,"offset":%d}]}`, owner.MemberID, owner.Generation, off)
		if r := call(t, "POST", base+"/v1/groups/g/offsets", "", []byte(body)); r.status != 200 {
			t.Fatalf("commit during the storm: %d %s", r.status, r.body)
		}
	}
	const joins, workers = 10_000, 16
	var joined, refused, other atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= joins {
				resp, err := http.Post(base+"/v1/groups/g/members", "application/json", bytes.NewReader([]byte(`{"topics":["jobs"]}`)))
				if err != nil {
					other.Add(1)
					continue
				}
				var e wire.ErrorBody
				json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					joined.Add(1)
				case resp.StatusCode == 409 && e.Error.Code == wire.CodeTooManyMembers:
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	for i := 1; next.Load() < joins; i++ {
		commit(i)
	}
	wg.Wait()
	commit(1_000_000)
	if joined.Load() != 999 || refused.Load() != joins-999 || other.Load() != 0 {
		t.Fatalf("joins: %d joined, %d refused, %d other", joined.Load(), refused.Load(), other.Load())
	}
	var gi wire.GroupInfo
	json.Unmarshal(call(t, "GET", base+"/v1/groups/g", "", nil).body, &gi)
	if len(gi.Members) != 1000 || gi.Generation != 1000 {
		t.Fatalf("group after the storm: %d members, generation %d", len(gi.Members), gi.Generation)
	}
}

// TestQuotas: every quota answers with its own code, and a refused
// request changes nothing.
func TestQuotas(t *testing.T) {
	bs := startGroup(t, 1, func(c *Config) {
		c.Quotas.MaxTopics, c.Quotas.MaxQueuesPerTopic, c.Quotas.MaxGroups, c.Quotas.MaxMembersPerGroup = 2, 8, 2, 2
		c.Quotas.MaxCommandBytes = 300
	})
	base := "http://" + bs[0].Addr()
	post := func(path, body string) resp { t.Helper(); return call(t, "POST", base+path, "", []byte(body)) }
	expectCode(t, post("/v1/topics", `{"name":"big","queues":9}`), 409, wire.CodeTooManyQueues)
	for _, n := range []string{"a", "b"} {
		if r := post("/v1/topics", fmt.Sprintf(`{"name":%q,"queues":8}`, n)); r.status != 201 {
			t.Fatalf("create %s: %s", n, r.body)
		}
	}
	expectCode(t, post("/v1/topics", `{"name":"c"}`), 409, wire.CodeTooManyTopics)
	expectCode(t, post("/v1/topics", `{"name":"a"}`), 409, wire.CodeTopicExists)

	joinMember(t, base, "g1", `{"topics":["a"]}`)
	m2 := joinMember(t, base, "g1", `{"topics":["a","b"],"instance_id":"i2"}`)
	expectCode(t, post("/v1/groups/g1/members", `{"topics":["a"]}`), 409, wire.CodeTooManyMembers)
	joinMember(t, base, "g1", `{"topics":["a","b"],"instance_id":"i2"}`) // a static restart replaces, so it is admitted
	joinMember(t, base, "g2", `{"topics":["a"]}`)
	expectCode(t, post("/v1/groups/g3/members", `{"topics":["a"]}`), 409, wire.CodeTooManyGroups)
	expectCode(t, post("/v1/groups/g3/reset-offsets", `{"topic":"a","to":"earliest"}`), 409, wire.CodeTooManyGroups)
	expectCode(t, call(t, "GET", base+"/v1/groups/g3", "", nil), 404, wire.CodeGroupNotFound)
	_ = m2

	// A reset of 8 queues encodes over 300 bytes.
	expectCode(t, post("/v1/groups/g2/reset-offsets", `{"topic":"a","to":"earliest"}`), 409, wire.CodeGroupActive)
	r := call(t, "DELETE", base+"/v1/groups/g2/members/m1", "", nil)
	if r.status != 200 {
		t.Fatalf("leave: %s", r.body)
	}
	expectCode(t, post("/v1/groups/g2/reset-offsets", `{"topic":"a","to":"earliest"}`), 413, wire.CodeCommandTooLarge)
}

// TestValidation: names "." and "..", an explicit queues 0, group names,
// refused resets and group deletion.
func TestValidation(t *testing.T) {
	bs := startGroup(t, 1, nil)
	base := "http://" + bs[0].Addr()
	post := func(path, body string) resp { t.Helper(); return call(t, "POST", base+path, "", []byte(body)) }
	for _, body := range []string{`{"name":"."}`, `{"name":".."}`, `{"name":"q0","queues":0}`, `{"name":"qn","queues":-1}`} {
		expectCode(t, post("/v1/topics", body), 400, wire.CodeInvalidArgument)
	}
	var ti wire.TopicInfo
	if r := post("/v1/topics", `{"name":"t"}`); r.status != 201 || json.Unmarshal(r.body, &ti) != nil || ti.Queues != 4 {
		t.Fatalf("create without queues: %d %s", r.status, r.body)
	}
	svc := bs[0].Service()
	for _, g := range []string{"..", ".", "a/b", ""} { // names an HTTP path cannot carry: through the core
		_, err := svc.JoinGroup(context.Background(), g, service.JoinRequest{Topics: []string{"t"}})
		if e := svc.AsError(err); e.Code != wire.CodeInvalidArgument {
			t.Fatalf("join %q: %v", g, err)
		}
		_, err = svc.ResetOffsets(context.Background(), g, "t", service.ResetTo{To: "earliest"})
		if e := svc.AsError(err); e.Code != wire.CodeInvalidArgument {
			t.Fatalf("reset %q: %v", g, err)
		}
	}
	expectCode(t, post("/v1/groups/bad%20name/members", `{"topics":["t"]}`), 400, wire.CodeInvalidArgument)
	expectCode(t, post("/v1/groups/x/reset-offsets", `{"topic":"t","to":"sideways"}`), 400, wire.CodeInvalidArgument)
	var gl wire.GroupList
	json.Unmarshal(call(t, "GET", base+"/v1/groups", "", nil).body, &gl)
	if len(gl.Groups) != 0 {
		t.Fatalf("refused requests created groups: %+v", gl.Groups)
	}

	// Deletion: only without members.
	m := joinMember(t, base, "g", `{"topics":["t"]}`)
	expectCode(t, call(t, "DELETE", base+"/v1/groups/g", "", nil), 409, wire.CodeGroupActive)
	expectCode(t, call(t, "DELETE", base+"/v1/groups/nope", "", nil), 404, wire.CodeGroupNotFound)
	if r := call(t, "DELETE", base+"/v1/groups/g/members/"+m.MemberID, "", nil); r.status != 200 {
		t.Fatalf("leave: %s", r.body)
	}
	if r := call(t, "DELETE", base+"/v1/groups/g", "", nil); r.status != 200 || string(bytes.TrimSpace(r.body)) != `{"deleted":"g"}` {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	expectCode(t, call(t, "GET", base+"/v1/groups/g", "", nil), 404, wire.CodeGroupNotFound)
	// The name can be used again: a new group, members from m1.
	if m := joinMember(t, base, "g", `{"topics":["t"]}`); m.MemberID != "m1" || m.Generation != 1 {
		t.Fatalf("join after delete: %+v", m)
	}
}
