package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/wire"
)

// encodeFetchJSON writes what json.Marshal of the whole answer wrote
// when nothing is cut, and cuts after escaping otherwise.
func TestEncodeFetchJSON(t *testing.T) {
	ts := time.UnixMilli(1_700_000_000_123).UTC()
	recs := &service.Records{Next: 13}
	for i, v := range []string{"a<b>&", "\x01\x02", "\xff\xfe", "plain"} {
		m := wire.Message{Value: []byte(v), Timestamp: ts, Headers: []wire.Header{{Key: "h", Value: []byte("\x00")}}}
		if i == 0 {
			m.Key = []byte("k")
		}
		recs.Records = append(recs.Records, service.Record{Offset: uint64(9 + i), Message: m})
	}
	want := wire.FetchResponse{Messages: []wire.FetchedMessage{}, NextOffset: recs.Next}
	for i := range recs.Records {
		want.Messages = append(want.Messages, wire.NewFetchedMessage(recs.Records[i].Offset, &recs.Records[i].Message))
	}
	wantBody, _ := json.Marshal(want)
	wantBody = append(wantBody, '\n')
	got, err := encodeFetchJSON(recs, 1<<20)
	if err != nil || string(got) != string(wantBody) {
		t.Fatalf("got %s, %v\nwant %s", got, err, wantBody)
	}
	empty, _ := encodeFetchJSON(&service.Records{Next: 7}, 1)
	if string(empty) != `{"messages":[],"next_offset":7}`+"\n" {
		t.Fatalf("empty answer %s", empty)
	}
	for limit := 1; limit <= len(wantBody); limit++ {
		got, _ := encodeFetchJSON(recs, limit)
		var out wire.FetchResponse
		if err := json.Unmarshal(got, &out); err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		if len(out.Messages) == 0 || len(out.Messages) > 1 && len(got) > limit {
			t.Fatalf("limit %d: %d messages in %d bytes", limit, len(out.Messages), len(got))
		}
		if wantNext := recs.Records[0].Offset + uint64(len(out.Messages)); len(out.Messages) < 4 && out.NextOffset != wantNext || len(out.Messages) == 4 && out.NextOffset != 13 {
			t.Fatalf("limit %d: %d messages, next_offset %d", limit, len(out.Messages), out.NextOffset)
		}
	}
}
