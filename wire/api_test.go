package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// sameJSON reports whether a and b hold the same JSON value, whatever the
// spacing and key order.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// Examples from docs/api.md: each decodes into its type with no unknown
// field, and encodes back to the same JSON, so that the field names and
// which fields are omitted match the documentation.
func TestDocExamplesRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		into any
		doc  string
	}{
		{"error body, offset out of range", &ErrorBody{}, `{"error": {"code": "OFFSET_OUT_OF_RANGE", "message": "offset 99 is outside the stored range [0, 4] of orders/2",
			"retriable": false, "not_applied": true, "earliest": 0, "latest": 4}}`},
		{"error body, not leader", &ErrorBody{}, `{"error": {"code": "NOT_LEADER", "message": "not the leader", "leader": "127.0.0.1:7001", "retriable": true, "not_applied": true}}`},
		{"create topic", &CreateTopicRequest{}, `{"name":"orders","queues":4}`},
		{"topic info", &TopicInfo{}, `{"name": "orders", "queues": 4, "retention_ms": 604800000, "retention_bytes": 0, "max_message_bytes": 1048576,
			"queue_info": [{"queue": 0, "earliest": 0, "next": 1, "bytes": 96}, {"queue": 1, "earliest": 0, "next": 3, "bytes": 288}]}`},
		{"created topic", &TopicInfo{}, `{"name": "orders", "queues": 4, "retention_ms": 604800000, "retention_bytes": 0, "max_message_bytes": 1048576, "index": 7}`},
		{"topic list without queue info", &TopicList{}, `{"topics": [{"name": "a", "queues": 1, "retention_ms": 0, "retention_bytes": 0, "max_message_bytes": 1}]}`},
		{"produce", &ProduceRequest{}, `{"messages":[{"key":"customer-42","value":"{\"order\":1001}","headers":{"source":"web"}},
			{"key":"customer-42","value":"{\"order\":1002}"},{"value":"no key"},{"value_base64":"AAECAwQ=","queue":3},{"key":"","value":""}]}`},
		{"produce response", &ProduceResponse{}, `{"results": [{"queue": 0, "offset": 0}, {"queue": 3, "offset": 12}], "index": 41}`},
		{"batch produce", &BatchProduceResponse{}, `{"queue": 0, "base_offset": 0, "count": 2, "index": 57}`},
		{"batch produce, duplicate", &BatchProduceResponse{}, `{"queue": 0, "base_offset": 0, "count": 2, "duplicate": true, "index": 60}`},
		{"init producer", &InitProducerResponse{}, `{"producer_id": 18446744073709551615}`},
		{"fetch", &FetchResponse{}, `{"messages": [
			{"offset": 0, "key": "customer-42", "value": "{\"order\":1001}", "headers": {"source": "web"}, "timestamp": "2026-11-23T14:57:22.776Z"},
			{"offset": 2, "value": "a", "headers": {}, "timestamp": "2026-11-23T14:57:22.815Z"},
			{"offset": 3, "key_base64": "/w==", "value_base64": "AAE=", "headers": {}, "timestamp": "2026-11-23T14:57:22.815Z"}],
			"next_offset": 4}`},
		{"fetch, nothing new", &FetchResponse{}, `{"messages": [], "next_offset": 7}`},
		{"cluster", &ClusterStatus{}, `{"leader": "n1", "leader_api": "127.0.0.1:7001", "term": 2, "group_id": 1, "answered_by": "n1", "nodes": [
			{"id": "n1", "role": "leader", "api_addr": "127.0.0.1:7001", "raft_addr": "127.0.0.1:8001", "term": 2, "first_index": 1,
			 "last_index": 17, "commit_index": 17, "applied_index": 17, "reachable": true},
			{"id": "n3", "role": "unreachable", "api_addr": "127.0.0.1:7003", "raft_addr": "127.0.0.1:8003", "term": 0, "first_index": 0,
			 "last_index": 0, "commit_index": 0, "applied_index": 0, "reachable": false, "error": "dial peer 127.0.0.1:8003: connection refused"}]}`},
		{"cluster, no leader known", &ClusterStatus{}, `{"leader": "", "term": 3, "group_id": 1, "answered_by": "n2", "nodes": []}`},
		{"transfer", &TransferRequest{}, `{"to":"n2"}`},
		{"transfer to anyone", &TransferRequest{}, `{}`},
		{"join", &JoinGroupRequest{}, `{"topics":["orders","audit"],"session_timeout_ms":30000}`},
		{"rejoin", &JoinGroupRequest{}, `{"member_id":"m1","topics":["orders"]}`},
		{"membership", &Membership{}, `{"group": "billing", "member_id": "m1", "generation": 1,
			"assignment": [{"topic": "orders", "queue": 0}, {"topic": "orders", "queue": 1}], "heartbeat_interval_ms": 3333, "session_timeout_ms": 10000}`},
		{"heartbeat", &HeartbeatRequest{}, `{"generation": 2}`},
		{"commit", &CommitRequest{}, `{"member_id":"m1","generation":2,"offsets":[{"topic":"orders","queue":0,"offset":5},{"topic":"orders","queue":2,"offset":1}]}`},
		{"reset to an offset", &ResetOffsetsRequest{}, `{"topic":"orders","to":"offset","offset":3}`},
		{"reset to a time", &ResetOffsetsRequest{}, `{"topic":"orders","to":"time","timestamp":"2026-11-29T15:00:00Z"}`},
		{"group", &GroupInfo{}, `{"group": "billing", "generation": 3, "members": [
			{"member_id": "m1", "topics": ["orders"], "session_timeout_ms": 10000, "assignment": [{"topic": "orders", "queue": 0}]}],
			"queues": [{"topic": "audit", "queue": 0, "owner": "m2", "next": 1, "lag": 1},
			{"topic": "orders", "queue": 0, "owner": "m1", "committed": 5, "next": 7, "lag": 2},
			{"topic": "orders", "queue": 3, "committed": 0, "next": 2, "lag": 2}]}`},
		{"group list", &GroupList{}, `{"groups": []}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dec := json.NewDecoder(bytes.NewReader([]byte(c.doc)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(c.into); err != nil {
				t.Fatalf("decode: %v", err)
			}
			out, err := json.Marshal(c.into)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, out, []byte(c.doc)) {
				t.Fatalf("encodes to\n%s\nwant\n%s", out, c.doc)
			}
		})
	}
}

// What is omitted when empty and what is always present, on the zero
// value and on zero pointers.
func TestJSONOmitted(t *testing.T) {
	zero := uint64(0)
	for _, c := range []struct {
		name string
		v    any
		want string
	}{
		{"error: not_applied and retriable always present", ErrorBody{Error: APIError{Code: CodeInternal, Message: "m"}},
			`{"error":{"code":"INTERNAL","message":"m","retriable":false,"not_applied":false}}`},
		{"error: zero earliest and latest kept", APIError{Code: CodeOffsetOutOfRange, Earliest: &zero, Latest: &zero},
			`{"code":"OFFSET_OUT_OF_RANGE","message":"","retriable":false,"not_applied":false,"earliest":0,"latest":0}`},
		{"create topic: only the name", CreateTopicRequest{Name: "t"}, `{"name":"t"}`},
		{"topic info: settings always, queue info omitted", TopicInfo{Name: "t"},
			`{"name":"t","queues":0,"retention_ms":0,"retention_bytes":0,"max_message_bytes":0}`},
		{"produce message: key absent is no key", ProduceMessage{}, `{}`},
		{"fetched message: headers always, null key omitted", FetchedMessage{Offset: 1, Headers: map[string]string{}},
			`{"offset":1,"headers":{},"timestamp":""}`},
		{"batch produce: duplicate omitted, index kept", BatchProduceResponse{Count: 1}, `{"queue":0,"base_offset":0,"count":1,"index":0}`},
		{"produce: index kept", ProduceResponse{Results: []ProduceResult{}}, `{"results":[],"index":0}`},
		{"cluster: leader_api omitted, leader kept", ClusterStatus{}, `{"leader":"","term":0,"group_id":0,"answered_by":"","nodes":null}`},
		{"cluster node: error omitted", ClusterNode{ID: "n1"},
			`{"id":"n1","role":"","api_addr":"","raft_addr":"","term":0,"first_index":0,"last_index":0,"commit_index":0,"applied_index":0,"reachable":false}`},
		{"group queue: zero committed kept, no owner omitted", GroupQueue{Topic: "t", Committed: &zero},
			`{"topic":"t","queue":0,"committed":0,"next":0,"lag":0}`},
		{"group queue: never committed", GroupQueue{Topic: "t"}, `{"topic":"t","queue":0,"next":0,"lag":0}`},
		{"join: new member", JoinGroupRequest{Topics: []string{"a"}}, `{"topics":["a"]}`},
		{"reset: timestamp and offset omitted", ResetOffsetsRequest{Topic: "t", To: "earliest"}, `{"topic":"t","to":"earliest"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := json.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestAPIErrorText(t *testing.T) {
	var err error = &APIError{Code: CodeNotLeader, Message: "ask n2"}
	if err.Error() != "NOT_LEADER: ask n2" {
		t.Fatalf("Error() = %q", err.Error())
	}
}

// A binary fetch body is frames of baseOffset uint64 | batchLen uint32 |
// batch, little-endian; FetchFrameHeader is the size of the first two.
func TestFetchFrames(t *testing.T) {
	if FetchFrameHeader != binary.Size(uint64(0))+binary.Size(uint32(0)) {
		t.Fatalf("FetchFrameHeader = %d", FetchFrameHeader)
	}
	var body []byte
	bases := []uint64{0, 3, 1 << 40}
	for i, base := range bases {
		b, err := Encode(sampleMessages()[:i+1], Codec(i), Producer{}, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		body = binary.LittleEndian.AppendUint64(body, base)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(b)))
		body = append(body, b...)
	}
	for i := 0; len(body) > 0; i++ {
		if len(body) < FetchFrameHeader {
			t.Fatalf("frame %d: %d bytes left", i, len(body))
		}
		base, n := binary.LittleEndian.Uint64(body), binary.LittleEndian.Uint32(body[8:])
		// The frame's batch is parsed in place, the following frames after it.
		h, err := ParseHeader(body[FetchFrameHeader:])
		if err != nil || h.Length != n || base != bases[i] || h.Count != uint32(i+1) {
			t.Fatalf("frame %d: base %d, length %d, header %+v, %v", i, base, n, h, err)
		}
		if _, _, err := Decode(body[FetchFrameHeader:FetchFrameHeader+int(n)], 0, 0); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		body = body[FetchFrameHeader+int(n):]
	}
}
