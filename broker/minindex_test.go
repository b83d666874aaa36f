package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// TestMinIndexHTTP: write answers carry their index; a follower read
// with min_index set to it shows the write (JSON fetch, binary fetch,
// describe); a token it cannot reach within wait_ms is 503 UNAVAILABLE,
// retriable and not applied; a bad min_index is 400.
func TestMinIndexHTTP(t *testing.T) {
	bs := startGroup(t, 3, nil)
	leader := leaderOf(t, bs)
	var follower *Broker
	for _, b := range bs {
		if b != leader {
			follower = b
			break
		}
	}
	l, f := "http://"+leader.Addr(), "http://"+follower.Addr()

	r := call(t, http.MethodPost, l+"/v1/topics", "", []byte(`{"name":"orders","queues":2}`))
	var created wire.TopicInfo
	if err := json.Unmarshal(r.body, &created); err != nil || r.status != http.StatusCreated || created.Index == 0 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r = call(t, http.MethodGet, fmt.Sprintf("%s/v1/topics/orders?min_index=%d", f, created.Index), "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"name":"orders"`) || strings.Contains(string(r.body), `"index"`) {
		t.Fatalf("describe on the follower with the create's token: %d %s", r.status, r.body)
	}

	r = call(t, http.MethodPost, l+"/v1/topics/orders/messages", "", []byte(`{"messages":[{"value":"a","queue":0},{"value":"b","queue":1}]}`))
	var pr wire.ProduceResponse
	if err := json.Unmarshal(r.body, &pr); err != nil || r.status != http.StatusOK || pr.Index <= created.Index {
		t.Fatalf("produce: %d %s (create at %d)", r.status, r.body, created.Index)
	}
	r = call(t, http.MethodGet, fmt.Sprintf("%s/v1/topics/orders/queues/1/messages?min_index=%d", f, pr.Index), "", nil)
	var fr wire.FetchResponse
	if err := json.Unmarshal(r.body, &fr); err != nil || r.status != http.StatusOK || len(fr.Messages) != 1 || *fr.Messages[0].Value != "b" {
		t.Fatalf("JSON fetch on the follower with the produce's token: %d %s", r.status, r.body)
	}

	batch, err := wire.Encode([]wire.Message{{Value: []byte("c"), Timestamp: time.Now()}}, wire.CodecNone, wire.Producer{}, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r = call(t, http.MethodPost, l+"/v1/topics/orders/queues/0/batches", wire.ContentType, batch)
	var br wire.BatchProduceResponse
	if err := json.Unmarshal(r.body, &br); err != nil || r.status != http.StatusOK || br.Index <= pr.Index || br.BaseOffset != 1 {
		t.Fatalf("batch produce: %d %s (after %d)", r.status, r.body, pr.Index)
	}
	r = call(t, http.MethodGet, fmt.Sprintf("%s/v1/topics/orders/queues/0/batches?offset=1&min_index=%d", f, br.Index), "", nil)
	if r.status != http.StatusOK || r.hdr.Get("X-Next-Offset") != "2" || len(r.body) != wire.FetchFrameHeader+len(batch) {
		t.Fatalf("binary fetch on the follower with the batch's token: %d, next %q, %d bytes", r.status, r.hdr.Get("X-Next-Offset"), len(r.body))
	}

	far := br.Index + 1_000_000
	for _, path := range []string{
		fmt.Sprintf("/v1/topics/orders/queues/0/messages?min_index=%d&wait_ms=100", far),
		fmt.Sprintf("/v1/topics/orders/queues/0/batches?min_index=%d&wait_ms=100", far),
		fmt.Sprintf("/v1/topics/orders?min_index=%d&wait_ms=100", far),
	} {
		start := time.Now()
		e := expectCode(t, call(t, http.MethodGet, f+path, "", nil), http.StatusServiceUnavailable, wire.CodeUnavailable)
		if !e.Retriable || !e.NotApplied || !strings.Contains(e.Message, "min_index") {
			t.Fatalf("%s: %+v", path, e)
		}
		if el := time.Since(start); el < 100*time.Millisecond {
			t.Fatalf("%s: answered after %v, before wait_ms", path, el)
		}
	}
	for _, path := range []string{
		"/v1/topics/orders/queues/0/messages?min_index=-1",
		"/v1/topics/orders/queues/0/batches?min_index=x",
		"/v1/topics/orders?min_index=18446744073709551615",
		"/v1/topics/orders?min_index=1&wait_ms=99999999",
	} {
		expectCode(t, call(t, http.MethodGet, f+path, "", nil), http.StatusBadRequest, wire.CodeInvalidArgument)
	}
}
