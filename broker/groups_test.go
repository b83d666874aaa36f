package broker

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

func TestGroupsAPI(t *testing.T) {
	bs := startGroup(t, 1, nil)
	base := "http://" + bs[0].Addr()
	if r := call(t, "POST", base+"/v1/topics", "", []byte(`{"name":"jobs","queues":4}`)); r.status != 201 {
		t.Fatalf("create: %s", r.body)
	}
	call(t, "POST", base+"/v1/topics/jobs/messages", "", []byte(`{"messages":[{"value":"a","queue":0},{"value":"b","queue":0},{"value":"c","queue":1}]}`))
	expectCode(t, call(t, "POST", base+"/v1/groups/g/members", "", []byte(`{"topics":["nope"]}`)), 404, wire.CodeTopicNotFound)
	expectCode(t, call(t, "POST", base+"/v1/groups/g/members", "", []byte(`{"topics":["jobs"],"session_timeout_ms":5}`)), 400, wire.CodeInvalidArgument)

	joinAs := func(body string) wire.Membership {
		t.Helper()
		var m wire.Membership
		r := call(t, "POST", base+"/v1/groups/g/members", "", []byte(body))
		if r.status != 200 || json.Unmarshal(r.body, &m) != nil {
			t.Fatalf("join: %d %s", r.status, r.body)
		}
		return m
	}
	a := joinAs(`{"topics":["jobs"],"session_timeout_ms":1000}`)
	if len(a.Assignment) != 4 || a.HeartbeatIntervalMs != 333 {
		t.Fatalf("first member: %+v", a)
	}
	b := joinAs(`{"topics":["jobs"],"session_timeout_ms":60000}`)
	if len(b.Assignment) != 0 {
		t.Fatalf("the second member delivers %v before the first released anything", b.Assignment)
	}
	heartbeat := func(m wire.Membership, body string) wire.Membership {
		t.Helper()
		var hb wire.Membership
		r := call(t, "POST", fmt.Sprintf("%s/v1/groups/g/members/%s/heartbeat", base, m.MemberID), "", []byte(body))
		if r.status != 200 || json.Unmarshal(r.body, &hb) != nil {
			t.Fatalf("heartbeat: %d %s", r.status, r.body)
		}
		return hb
	}
	// A long poll at an old generation answers at once with the change.
	hb := heartbeat(a, `{"generation":1,"wait_ms":30000}`)
	if hb.Generation != b.Generation || len(hb.Assignment) != 2 || len(hb.Revoking) != 2 {
		t.Fatalf("heartbeat after rebalance: %+v (b %+v)", hb, b)
	}
	var gi wire.GroupInfo
	json.Unmarshal(call(t, "GET", base+"/v1/groups/g", "", nil).body, &gi)
	for _, gq := range gi.Queues {
		moving := gq.Queue == hb.Revoking[0].Queue || gq.Queue == hb.Revoking[1].Queue
		if gq.Owner != a.MemberID || moving && gq.Target != b.MemberID || !moving && gq.Target != "" {
			t.Fatalf("describe while moving: %+v", gi.Queues)
		}
	}
	// The owner commits and releases; the next owner's long poll wakes.
	woke := make(chan wire.Membership, 1)
	go func() { woke <- heartbeat(b, fmt.Sprintf(`{"generation":%d,"wait_ms":30000}`, b.Generation)) }()
	release := fmt.Sprintf(`{"queues":[{"topic":"jobs","queue":%d},{"topic":"jobs","queue":%d}],"offsets":[{"topic":"jobs","queue":%d,"offset":0}]}`,
		hb.Revoking[0].Queue, hb.Revoking[1].Queue, hb.Revoking[0].Queue)
	var rel wire.Membership
	r := call(t, "POST", fmt.Sprintf("%s/v1/groups/g/members/%s/release", base, a.MemberID), "", []byte(release))
	if r.status != 200 || json.Unmarshal(r.body, &rel) != nil || len(rel.Revoking) != 0 || len(rel.Assignment) != 2 {
		t.Fatalf("release: %d %s", r.status, r.body)
	}
	if bm := <-woke; len(bm.Assignment) != 2 {
		t.Fatalf("the next owner after the release: %+v", bm)
	}
	expectCode(t, call(t, "POST", fmt.Sprintf("%s/v1/groups/g/members/%s/release", base, a.MemberID), "", []byte(`{"queues":[`)), 400, wire.CodeInvalidArgument)
	// Commits: the owner's works, with its current or an older generation;
	// a generation the group never had and a foreign queue are refused.
	q := hb.Assignment[0]
	future := fmt.Sprintf(`{"member_id":%q,"generation":%d,"offsets":[{"topic":"jobs","queue":%d,"offset":1}]}`, a.MemberID, 99, q.Queue)
	expectCode(t, call(t, "POST", base+"/v1/groups/g/offsets", "", []byte(future)), 409, wire.CodeIllegalGeneration)
	cur := fmt.Sprintf(`{"member_id":%q,"generation":%d,"offsets":[{"topic":"jobs","queue":%d,"offset":1}]}`, a.MemberID, a.Generation, q.Queue)
	if r := call(t, "POST", base+"/v1/groups/g/offsets", "", []byte(cur)); r.status != 200 {
		t.Fatalf("commit: %s", r.body)
	}
	foreign := fmt.Sprintf(`{"member_id":%q,"generation":%d,"offsets":[{"topic":"jobs","queue":%d,"offset":1}]}`, a.MemberID, hb.Generation, hb.Revoking[0].Queue)
	expectCode(t, call(t, "POST", base+"/v1/groups/g/offsets", "", []byte(foreign)), 409, wire.CodeNotAssigned)
	expectCode(t, call(t, "POST", base+"/v1/groups/g/reset-offsets", "", []byte(`{"topic":"jobs","to":"earliest"}`)), 409, wire.CodeGroupActive)

	// a stops heartbeating: its session (1 s) expires and b gets every queue.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var m wire.Membership
		r := call(t, "POST", fmt.Sprintf("%s/v1/groups/g/members/%s/heartbeat", base, b.MemberID), "", []byte(`{}`))
		json.Unmarshal(r.body, &m)
		if len(m.Assignment) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a's queues did not move to b: %s", r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	expectCode(t, call(t, "POST", fmt.Sprintf("%s/v1/groups/g/members/%s/heartbeat", base, a.MemberID), "", []byte(`{}`)), 404, wire.CodeUnknownMember)
	json.Unmarshal(call(t, "GET", base+"/v1/groups/g", "", nil).body, &gi)
	if len(gi.Members) != 1 || len(gi.Queues) != 4 {
		t.Fatalf("describe: %+v", gi)
	}
	for _, gq := range gi.Queues {
		if gq.Queue == q.Queue && (gq.Committed == nil || *gq.Committed != 1 || gq.Lag != gq.Next-1) {
			t.Fatalf("committed offset or lag wrong: %+v", gq)
		}
	}
	if r := call(t, "DELETE", fmt.Sprintf("%s/v1/groups/g/members/%s", base, b.MemberID), "", nil); r.status != 200 {
		t.Fatalf("leave: %s", r.body)
	}
	if r := call(t, "POST", base+"/v1/groups/g/reset-offsets", "", []byte(`{"topic":"jobs","to":"latest"}`)); r.status != 200 {
		t.Fatalf("reset: %s", r.body)
	}
	json.Unmarshal(call(t, "GET", base+"/v1/groups", "", nil).body, &struct{ Groups *[]wire.GroupInfo }{})
	json.Unmarshal(call(t, "GET", base+"/v1/groups/g", "", nil).body, &gi)
	for _, gq := range gi.Queues {
		if gq.Lag != 0 {
			t.Fatalf("lag after reset to latest: %+v", gq)
		}
	}
}
