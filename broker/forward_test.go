package broker

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/ledgermq/ledgermq/broker/httpapi"
	"github.com/ledgermq/ledgermq/wire"
)

// forwardCall sends a request to a follower, asking it to forward it to
// the leader when fwd is set.
func forwardCall(t *testing.T, method, url, token string, fwd bool, body any) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if fwd {
		req.Header.Set(httpapi.ForwardHeader, "leader")
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, b, r.Header}
}

// TestForwardToLeader: a follower asked to forward (LedgerMQ-Forward:
// leader) sends writes it would refuse with 421 to the leader and answers
// with the leader's answer; without the header it still answers 421. Errors
// come back as the leader gave them, and the bearer token travels: the
// leader authorizes the caller, not the follower.
func TestForwardToLeader(t *testing.T) {
	path, admin := bootstrapToken(t)
	bs := startGroup(t, 3, func(c *Config) {
		c.Auth.Enabled, c.Auth.Superusers, c.BootstrapTokenFile = true, []string{"User:admin"}, path
	})
	l := leaderOf(t, bs)
	var f *Broker
	for _, b := range bs {
		if b != l {
			f = b
			break
		}
	}
	base := "http://" + f.Addr()
	create := map[string]any{"name": "fwd", "queues": 2}

	expectCode(t, forwardCall(t, "POST", base+"/v1/topics", admin, false, create), http.StatusMisdirectedRequest, wire.CodeNotLeader)
	r := forwardCall(t, "POST", base+"/v1/topics", admin, true, create)
	expectStatus(t, r, http.StatusCreated)
	if got := r.hdr.Get(wire.NodeHeader); got != l.cfg.ID {
		t.Fatalf("forwarded answer from node %q, want the leader %q", got, l.cfg.ID)
	}
	var ti wire.TopicInfo
	if err := json.Unmarshal(r.body, &ti); err != nil || ti.Name != "fwd" || ti.Index == 0 {
		t.Fatalf("forwarded create answered %s (%v)", r.body, err)
	}
	// The leader's own errors come back with their code and status.
	expectCode(t, forwardCall(t, "POST", base+"/v1/topics", admin, true, create), http.StatusConflict, wire.CodeTopicExists)

	// A leader-only route (refused before its body is read) is forwarded
	// too, body included.
	produce := wire.ProduceRequest{Messages: []wire.ProduceMessage{{Value: ptr("one")}, {Value: ptr("two")}}}
	r = forwardCall(t, "POST", base+"/v1/topics/fwd/messages", admin, true, produce)
	expectStatus(t, r, http.StatusOK)
	var pr wire.ProduceResponse
	if err := json.Unmarshal(r.body, &pr); err != nil || len(pr.Results) != 2 {
		t.Fatalf("forwarded produce answered %s (%v)", r.body, err)
	}

	// GET /v1/topics?queues=true lists the queues' offsets and bytes.
	var tl wire.TopicList
	r = forwardCall(t, "GET", "http://"+l.Addr()+"/v1/topics?queues=true", admin, false, nil)
	if err := json.Unmarshal(r.body, &tl); err != nil || len(tl.Topics) != 1 || len(tl.Topics[0].QueueInfo) != 2 {
		t.Fatalf("topics with queues: %s (%v)", r.body, err)
	}
	var msgs, size uint64
	for _, q := range tl.Topics[0].QueueInfo {
		msgs, size = msgs+q.Next-q.Earliest, size+q.Bytes
	}
	if msgs != 2 || size == 0 {
		t.Fatalf("topic list counts %d messages in %d bytes, want 2 in > 0", msgs, size)
	}
	expectCode(t, forwardCall(t, "GET", base+"/v1/topics?queues=maybe", admin, false, nil), http.StatusBadRequest, wire.CodeInvalidArgument)

	// The token travels: without one the follower does not forward (its
	// own identity must not stand in), with a stranger's the leader
	// refuses it.
	expectCode(t, forwardCall(t, "POST", base+"/v1/topics", "", true, create), http.StatusUnauthorized, wire.CodeUnauthenticated)
	r = forwardCall(t, "POST", base+"/v1/auth/tokens", admin, true, wire.TokenRequest{Principal: "User:bob"})
	expectStatus(t, r, http.StatusCreated)
	var tok wire.TokenInfo
	if err := json.Unmarshal(r.body, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token answer %s (%v)", r.body, err)
	}
	expectCode(t, forwardCall(t, "DELETE", base+"/v1/topics/fwd", tok.Token, true, nil), http.StatusForbidden, wire.CodeForbidden)
	expectStatus(t, forwardCall(t, "DELETE", base+"/v1/topics/fwd", admin, true, nil), http.StatusOK)
}

func ptr[T any](v T) *T { return &v }
