package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker"
	"github.com/ledgermq/ledgermq/commitlog"
	"github.com/ledgermq/ledgermq/internal/brokertest"
	"github.com/ledgermq/ledgermq/wire"
)

// ---- In-process brokers ----

// noSync speeds in-process groups up; durability is not under test here.
func noSync(c *broker.Config) { c.Sync = commitlog.SyncNever }

func httpCall(t testing.TB, method, url string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}

func createTopic(t testing.TB, leader, name string, queues int) {
	t.Helper()
	st, body := httpCall(t, "POST", "http://"+leader+"/v1/topics", fmt.Appendf(nil, `{"name":%q,"queues":%d}`, name, queues))
	if st != 201 {
		t.Fatalf("create topic %s: %d %s", name, st, body)
	}
}

// fetchQueue reads a whole queue back as JSON.
func fetchQueue(t testing.TB, addr, topic string, queue int) []wire.FetchedMessage {
	t.Helper()
	var out []wire.FetchedMessage
	offset := uint64(0)
	for {
		st, body := httpCall(t, "GET", fmt.Sprintf("http://%s/v1/topics/%s/queues/%d/messages?offset=%d&max_messages=10000&max_bytes=67108864", addr, topic, queue, offset), nil)
		if st != 200 {
			t.Fatalf("fetch %s/%d@%d: %d %s", topic, queue, offset, st, body)
		}
		var fr wire.FetchResponse
		if err := json.Unmarshal(body, &fr); err != nil {
			t.Fatal(err)
		}
		if len(fr.Messages) == 0 {
			return out
		}
		out = append(out, fr.Messages...)
		offset = fr.NextOffset
	}
}

func valueOf(t testing.TB, m wire.FetchedMessage) string {
	t.Helper()
	if m.Value != nil {
		return *m.Value
	}
	if m.ValueBase64 != nil {
		v, err := base64.StdEncoding.DecodeString(*m.ValueBase64)
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	return ""
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("LEDGERMQ_CLIENT_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newProducer(t testing.TB, brokers []string, opts ...ProducerOpt) *Producer {
	t.Helper()
	opts = append([]ProducerOpt{WithLogger(testLogger(t))}, opts...)
	p, err := NewProducer(brokers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// collector gathers async results.
type collector struct {
	mu      sync.Mutex
	results map[string]Result // by value
	errs    []error
	order   map[int][]string // values in callback order per queue
	wg      sync.WaitGroup
}

func newCollector() *collector {
	return &collector{results: map[string]Result{}, order: map[int][]string{}}
}

func (c *collector) cb(value string) func(Result, error) {
	c.wg.Add(1)
	return func(r Result, err error) {
		defer c.wg.Done()
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s: %w", value, err))
			return
		}
		c.results[value] = r
		c.order[r.Queue] = append(c.order[r.Queue], value)
	}
}

func (c *collector) wait(t testing.TB) {
	t.Helper()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("callbacks did not all arrive")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		t.Fatalf("%d failed, first: %v", len(c.errs), c.errs[0])
	}
}

// checkQueues reads every queue back and checks that each produced value
// is stored exactly once, at the offset its result reported, and that per
// key (or per queue when keyOf is nil) the values are in send order
// (value names end in a per-stream counter).
func checkQueues(t testing.TB, addr, topic string, queues int, c *collector, sent []string) {
	t.Helper()
	seen := map[string]int{}
	for q := 0; q < queues; q++ {
		msgs := fetchQueue(t, addr, topic, q)
		last := map[string]int{}
		for i, m := range msgs {
			if m.Offset != uint64(i) {
				t.Fatalf("queue %d: message %d has offset %d", q, i, m.Offset)
			}
			v := valueOf(t, m)
			seen[v]++
			if r, ok := c.results[v]; !ok || r.Queue != q || r.Offset != m.Offset {
				t.Fatalf("%s stored at %d/%d, result says %+v", v, q, m.Offset, r)
			}
			stream, num, _ := strings.Cut(v, "#")
			n, _ := strconv.Atoi(num)
			if prev, ok := last[stream]; ok && n <= prev {
				t.Fatalf("queue %d: %s after %s#%d: out of order", q, v, stream, prev)
			}
			last[stream] = n
		}
	}
	for _, v := range sent {
		if seen[v] != 1 {
			t.Fatalf("%s stored %d times", v, seen[v])
		}
	}
	if len(seen) != len(sent) {
		t.Fatalf("%d distinct values stored, %d sent", len(seen), len(sent))
	}
}

// ---- Single node ----

func TestProduceSyncAndAsync(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	addr := bs[0].Addr()
	createTopic(t, addr, "orders", 3)
	p := newProducer(t, []string{addr})
	ctx := context.Background()

	r, err := p.Produce(ctx, &Message{Topic: "orders", Key: []byte("customer-42"), Value: []byte("v0"),
		Headers: []wire.Header{{Key: "h", Value: []byte("1")}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Topic != "orders" || r.Queue != broker.KeyQueue([]byte("customer-42"), 3) || r.Offset != 0 || r.Duplicate {
		t.Fatalf("sync result %+v", r)
	}
	r, err = p.Produce(ctx, &Message{Topic: "orders", Queue: new(2), Value: []byte("explicit")})
	if err != nil || r.Queue != 2 || r.Offset != 0 {
		t.Fatalf("explicit queue: %+v %v", r, err)
	}

	c := newCollector()
	var sent []string
	for i := range 300 {
		v := fmt.Sprintf("s%d#%d", i%3, i)
		sent = append(sent, v)
		p.ProduceAsync(&Message{Topic: "orders", Key: []byte(v[:2]), Value: []byte(v)}, c.cb(v))
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	// Flush returned after every callback.
	if len(c.results) != 300 {
		t.Fatalf("%d results after Flush", len(c.results))
	}
	c.results["v0"] = Result{Topic: "orders", Queue: broker.KeyQueue([]byte("customer-42"), 3)}
	c.results["explicit"] = Result{Topic: "orders", Queue: 2}
	checkQueues(t, addr, "orders", 3, c, append(sent, "v0", "explicit"))
	msgs := fetchQueue(t, addr, "orders", broker.KeyQueue([]byte("customer-42"), 3))
	if *msgs[0].Key != "customer-42" || msgs[0].Headers["h"] != "1" {
		t.Fatalf("first message %+v", msgs[0])
	}

	// Client-side refusals.
	if _, err := p.Produce(ctx, &Message{Topic: "orders", Queue: new(3), Value: []byte("x")}); ErrorCode(err) != wire.CodeQueueNotFound {
		t.Fatalf("queue 3: %v", err)
	}
	if _, err := p.Produce(ctx, &Message{Topic: "nope", Value: []byte("x")}); !errors.Is(err, &Error{Code: wire.CodeTopicNotFound}) {
		t.Fatalf("unknown topic: %v", err)
	}
	if _, err := p.Produce(ctx, &Message{Topic: "orders", Value: make([]byte, 1<<20+1)}); ErrorCode(err) != wire.CodeMessageTooLarge {
		t.Fatalf("too large: %v", err)
	}
	// Headers count as the broker counts them: their bytes plus an
	// overhead each, and at most wire.MaxHeaders of them.
	many := make([]wire.Header, wire.MaxHeaders+1)
	for i := range many {
		many[i] = wire.Header{Key: fmt.Sprint("h", i)}
	}
	if _, err := p.Produce(ctx, &Message{Topic: "orders", Value: []byte("x"), Headers: many}); ErrorCode(err) != wire.CodeMessageTooLarge {
		t.Fatalf("too many headers: %v", err)
	}
	near := &Message{Topic: "orders", Value: make([]byte, 1<<20-wire.HeaderOverhead), Headers: []wire.Header{{Key: "k"}}}
	if _, err := p.Produce(ctx, near); ErrorCode(err) != wire.CodeMessageTooLarge {
		t.Fatalf("a message whose header overhead takes it over the limit: %v", err)
	}
	// The topic is created later: the failed lookup was not cached.
	createTopic(t, addr, "nope", 1)
	if _, err := p.Produce(ctx, &Message{Topic: "nope", Value: []byte("x")}); err != nil {
		t.Fatalf("topic created after a failed produce: %v", err)
	}
}

func TestOrderingPerQueuePipelined(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	addr := bs[0].Addr()
	createTopic(t, addr, "seq", 4)
	// Small batches and no linger: many batches per queue in flight.
	p := newProducer(t, []string{addr}, WithBatchBytes(300), WithLinger(0), WithMaxInFlight(8))
	c := newCollector()
	var sent []string
	var wg sync.WaitGroup
	var mu sync.Mutex
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				v := fmt.Sprintf("k%d#%d", g, i)
				mu.Lock()
				sent = append(sent, v)
				mu.Unlock()
				p.ProduceAsync(&Message{Topic: "seq", Key: []byte(v[:2]), Value: []byte(v)}, c.cb(v))
			}
		}()
	}
	wg.Wait()
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	// Callbacks of a queue arrive in offset order.
	for q, vs := range c.order {
		for i := 1; i < len(vs); i++ {
			if c.results[vs[i]].Offset <= c.results[vs[i-1]].Offset {
				t.Fatalf("queue %d: callback for offset %d after %d", q, c.results[vs[i]].Offset, c.results[vs[i-1]].Offset)
			}
		}
	}
	checkQueues(t, addr, "seq", 4, c, sent)
}

func TestKeyQueueMatchesBroker(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		key := make([]byte, rng.IntN(40))
		for j := range key {
			key[j] = byte(rng.IntN(256))
		}
		n := 1 + rng.IntN(1024)
		if got, want := KeyQueue(key, n), broker.KeyQueue(key, n); got != want {
			t.Fatalf("KeyQueue(%x, %d) = %d, broker says %d", key, n, got, want)
		}
	}
	// docs/api.md's examples.
	if KeyQueue([]byte("customer-42"), 4) != 2 || KeyQueue([]byte{}, 4) != 1 {
		t.Fatal("documented examples")
	}

	bs := brokertest.Group(t, 1, noSync)
	addr := bs[0].Addr()
	createTopic(t, addr, "keys", 7)
	p := newProducer(t, []string{addr})
	c := newCollector()
	var keys []string
	for i := range 200 {
		k := fmt.Sprintf("key-%d", i)
		keys = append(keys, k)
		p.ProduceAsync(&Message{Topic: "keys", Key: []byte(k), Value: []byte(k)}, c.cb(k))
	}
	// The broker's own JSON produce puts the same keys in the same queues.
	var req wire.ProduceRequest
	for _, k := range keys {
		req.Messages = append(req.Messages, wire.ProduceMessage{Key: &k})
	}
	body, _ := json.Marshal(req)
	st, raw := httpCall(t, "POST", "http://"+addr+"/v1/topics/keys/messages", body)
	var pr wire.ProduceResponse
	if st != 200 || json.Unmarshal(raw, &pr) != nil {
		t.Fatalf("JSON produce: %d %s", st, raw)
	}
	p.Flush(context.Background())
	c.wait(t)
	for i, k := range keys {
		if got := c.results[k].Queue; got != broker.KeyQueue([]byte(k), 7) || got != pr.Results[i].Queue {
			t.Fatalf("key %s: SDK queue %d, broker.KeyQueue %d, JSON produce %d", k, got, broker.KeyQueue([]byte(k), 7), pr.Results[i].Queue)
		}
	}
}

func TestCompressionCodecs(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	addr := bs[0].Addr()
	for _, codec := range []wire.Codec{wire.CodecNone, wire.CodecGzip, wire.CodecSnappy, wire.CodecS2, wire.CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			topic := "c-" + codec.String()
			createTopic(t, addr, topic, 2)
			p := newProducer(t, []string{addr}, WithCompression(codec))
			c := newCollector()
			var sent []string
			for i := range 200 {
				v := fmt.Sprintf("%s#%d", strings.Repeat("compressible ", i%50), i)
				sent = append(sent, v)
				p.ProduceAsync(&Message{Topic: topic, Queue: new(i % 2), Key: []byte(strconv.Itoa(i)), Value: []byte(v),
					Headers: []wire.Header{{Key: "codec", Value: []byte(codec.String())}}}, c.cb(v))
			}
			p.ProduceAsync(&Message{Topic: topic, Queue: new(0), Value: []byte{0, 0xff, 1}}, c.cb("\x00\xff\x01"))
			sent = append(sent, "\x00\xff\x01")
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			c.wait(t)
			checkQueues(t, addr, topic, 2, c, sent)
			// The stored batches are compressed with the codec.
			st, raw := httpCall(t, "GET", fmt.Sprintf("http://%s/v1/topics/%s/queues/1/batches?offset=0", addr, topic), nil)
			if st != 200 || len(raw) < wire.FetchFrameHeader+wire.HeaderSize {
				t.Fatalf("binary fetch: %d", st)
			}
			h, err := wire.ParseHeader(raw[wire.FetchFrameHeader:])
			if err != nil || h.Codec != codec || h.ProducerID == 0 {
				t.Fatalf("stored batch header %+v, %v", h, err)
			}
			for q := range 2 {
				for _, m := range fetchQueue(t, addr, topic, q) {
					if valueOf(t, m) != "\x00\xff\x01" && (m.Headers["codec"] != codec.String() || m.Key == nil) {
						t.Fatalf("message %+v", m)
					}
				}
			}
		})
	}
}

func TestCloseFlushesAndRefusesAfter(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	addr := bs[0].Addr()
	createTopic(t, addr, "close", 2)
	// A long linger: only Close makes the batches go.
	p := newProducer(t, []string{addr}, WithLinger(time.Hour))
	c := newCollector()
	var sent []string
	for i := range 100 {
		v := fmt.Sprintf("m#%d", i)
		sent = append(sent, v)
		p.ProduceAsync(&Message{Topic: "close", Queue: new(0), Value: []byte(v)}, c.cb(v))
	}
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Close took %v", time.Since(start))
	}
	c.mu.Lock()
	n := len(c.results)
	c.mu.Unlock()
	if n != 100 {
		t.Fatalf("%d of 100 callbacks before Close returned", n)
	}
	c.wait(t)
	checkQueues(t, addr, "close", 2, c, sent)

	if _, err := p.Produce(context.Background(), &Message{Topic: "close", Value: []byte("late")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("produce after Close: %v", err)
	}
	called := false
	p.ProduceAsync(&Message{Topic: "close", Value: []byte("late")}, func(_ Result, err error) { called = errors.Is(err, ErrClosed) })
	if !called {
		t.Fatal("ProduceAsync after Close did not fail at once with ErrClosed")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// ---- Fault injection: a proxy in front of a real broker ----

// proxy forwards to a broker; fault decides per batch POST what to do.
type proxy struct {
	t       testing.TB
	target  string
	srv     *httptest.Server
	mu      sync.Mutex
	fault   func(n int, r *http.Request, body []byte) string // n counts batch POSTs (one queue's or several's) from 1
	batches int
	merged  atomic.Int32 // POST /v1/produce requests: batches of several queues
	inits   atomic.Int32
}

func newProxy(t testing.TB, target string) *proxy {
	px := &proxy{t: t, target: target}
	px.srv = httptest.NewServer(http.HandlerFunc(px.serve))
	t.Cleanup(px.srv.Close)
	return px
}

func (px *proxy) addr() string { return strings.TrimPrefix(px.srv.URL, "http://") }

func (px *proxy) forward(r *http.Request, body []byte) (*http.Response, []byte, error) {
	req, _ := http.NewRequest(r.Method, "http://"+px.target+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func writeAPIError(w http.ResponseWriter, status int, e wire.APIError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(wire.ErrorBody{Error: e})
}

func (px *proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	action := ""
	if r.Method == "POST" && r.URL.Path == "/v1/produce" {
		px.merged.Add(1)
	}
	if r.Method == "POST" && (strings.HasSuffix(r.URL.Path, "/batches") || r.URL.Path == "/v1/produce") {
		px.mu.Lock()
		px.batches++
		n := px.batches
		f := px.fault
		px.mu.Unlock()
		if f != nil {
			action = f(n, r, body)
		}
	}
	if r.URL.Path == "/v1/producers" {
		px.inits.Add(1)
	}
	switch {
	case action == "unknown-producer":
		writeAPIError(w, 400, wire.APIError{Code: wire.CodeUnknownProducer, Message: "unknown or expired producer id"})
		return
	case action == "not-leader":
		writeAPIError(w, 421, wire.APIError{Code: wire.CodeNotLeader, Message: "not the leader", Leader: px.target, Retriable: true})
		return
	case action == "old-broker": // a broker from before POST /v1/produce
		writeAPIError(w, 404, wire.APIError{Code: wire.CodeNotFound, Message: "no such endpoint", NotApplied: true})
		return
	case action == "too-large": // a broker whose request limit is below the merged body
		writeAPIError(w, 413, wire.APIError{Code: wire.CodeRequestTooLarge, Message: "request too large", NotApplied: true})
		return
	case strings.HasPrefix(action, "delay:"):
		d, _ := time.ParseDuration(strings.TrimPrefix(action, "delay:"))
		time.Sleep(d)
	}
	resp, rb, err := px.forward(r, body)
	if err != nil {
		writeAPIError(w, 502, wire.APIError{Code: "BAD_GATEWAY", Message: err.Error()})
		return
	}
	switch action {
	case "store-then-503":
		// Stored, but the producer hears "outcome unknown".
		writeAPIError(w, 503, wire.APIError{Code: wire.CodeUnavailable, Message: "the write's outcome is unknown: leadership lost", Retriable: true})
		return
	case "store-then-hangup":
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
		return
	}
	if r.URL.Path == "/v1/cluster" {
		// The producer must keep talking to the proxy: it is "the leader".
		rb = bytes.ReplaceAll(rb, []byte(px.target), []byte(px.addr()))
		resp.Header.Del("Content-Length")
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(rb)
}

func (px *proxy) setFault(f func(n int, r *http.Request, body []byte) string) {
	px.mu.Lock()
	px.fault = f
	px.mu.Unlock()
}

func produceN(t testing.TB, p *Producer, topic string, n int, keys int) (*collector, []string) {
	t.Helper()
	c := newCollector()
	var sent []string
	for i := range n {
		k := fmt.Sprintf("k%d", i%keys)
		v := fmt.Sprintf("%s#%d", k, i)
		sent = append(sent, v)
		p.ProduceAsync(&Message{Topic: topic, Key: []byte(k), Value: []byte(v)}, c.cb(v))
	}
	return c, sent
}

// flushAndCountDuplicates flushes p, waits for every result c expects
// and returns how many were answered as duplicates.
func flushAndCountDuplicates(t testing.TB, p *Producer, c *collector) int {
	t.Helper()
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	dups := 0
	for _, r := range c.results {
		if r.Duplicate {
			dups++
		}
	}
	return dups
}

func TestIdempotentResendAfterUnknownOutcome(t *testing.T) {
	for _, action := range []string{"store-then-503", "store-then-hangup"} {
		t.Run(action, func(t *testing.T) {
			bs := brokertest.Group(t, 1, noSync)
			createTopic(t, bs[0].Addr(), "idem", 2)
			px := newProxy(t, bs[0].Addr())
			// Every third batch is stored but its answer lost.
			px.setFault(func(n int, _ *http.Request, _ []byte) string {
				if n%3 == 1 {
					return action
				}
				return ""
			})
			p := newProducer(t, []string{px.addr()}, WithBatchBytes(200), WithLinger(time.Millisecond))
			c, sent := produceN(t, p, "idem", 400, 5)
			dups := flushAndCountDuplicates(t, p, c)
			if dups == 0 {
				t.Fatal("no result was marked Duplicate")
			}
			checkQueues(t, bs[0].Addr(), "idem", 2, c, sent)
		})
	}
}

// produceMerged produces n messages with 64 keys to a new 16-queue topic
// through a proxy that holds every request 2 ms (so the slots stay busy
// and batches merge) and answers the n-th batch POST of a merged request
// (POST /v1/produce) with fault(n). It waits for every result and returns
// them with the messages sent, how many were answered as duplicates and
// the number of merged requests.
func produceMerged(t *testing.T, topic string, n int, fault func(n int) string) (b *broker.Broker, c *collector, sent []string, dups int, merged int32) {
	bs := brokertest.Group(t, 1, noSync)
	createTopic(t, bs[0].Addr(), topic, 16)
	px := newProxy(t, bs[0].Addr())
	px.setFault(func(k int, r *http.Request, _ []byte) string {
		if r.URL.Path == "/v1/produce" {
			if a := fault(k); a != "" {
				return a
			}
		}
		return "delay:2ms"
	})
	p := newProducer(t, []string{px.addr()}, WithBatchBytes(300), WithLinger(0))
	c, sent = produceN(t, p, topic, n, 64)
	dups = flushAndCountDuplicates(t, p, c)
	return bs[0], c, sent, dups, px.merged.Load()
}

// TestMergedRequestsExactlyOnce: with many queues and every request slot
// taken, batches of several queues travel as one POST /v1/produce; when
// such a request is stored but its answer lost, every part is resent and
// answered as a duplicate: each queue still holds its messages exactly
// once, in order.
func TestMergedRequestsExactlyOnce(t *testing.T) {
	for _, action := range []string{"store-then-503", "store-then-hangup"} {
		t.Run(action, func(t *testing.T) {
			b, c, sent, dups, merged := produceMerged(t, "merged", 2000, func(n int) string {
				if n%4 == 1 {
					return action
				}
				return ""
			})
			if merged == 0 || dups == 0 {
				t.Fatalf("%d merged requests, %d duplicates: the merged path and its resends were not exercised", merged, dups)
			}
			t.Logf("%d merged requests, %d messages answered as duplicates", merged, dups)
			checkQueues(t, b.Addr(), "merged", 16, c, sent)
		})
	}
}

// TestMergedRequestsRefusedWhole: a merged request refused as a whole for
// being one — by a broker without POST /v1/produce (404), or one whose
// request limit is below the merged body (413) — is resent part by part:
// every message is stored once, in order, and after a 404 the producer
// stops merging.
func TestMergedRequestsRefusedWhole(t *testing.T) {
	for _, action := range []string{"old-broker", "too-large"} {
		t.Run(action, func(t *testing.T) {
			b, c, sent, _, merged := produceMerged(t, "whole", 1000, func(int) string { return action })
			if merged == 0 {
				t.Fatal("no merged request was sent: the test does not test it")
			}
			if action == "old-broker" && merged > int32(DefaultMaxRequests) {
				t.Errorf("%d merged requests to a broker that answered 404: merging did not stop", merged)
			}
			t.Logf("%d merged requests refused, all resent alone", merged)
			checkQueues(t, b.Addr(), "whole", 16, c, sent)
		})
	}
}

func TestNonIdempotentUnknownOutcomeIsReported(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	createTopic(t, bs[0].Addr(), "plain", 1)
	px := newProxy(t, bs[0].Addr())
	px.setFault(func(n int, _ *http.Request, _ []byte) string {
		if n == 2 {
			return "store-then-503"
		}
		return ""
	})
	p := newProducer(t, []string{px.addr()}, WithIdempotence(false), WithBatchBytes(100), WithLinger(0))
	ctx := context.Background()
	if _, err := p.Produce(ctx, &Message{Topic: "plain", Value: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	_, err := p.Produce(ctx, &Message{Topic: "plain", Value: []byte("two")})
	if !errors.Is(err, ErrUnknownOutcome) || ErrorCode(err) != wire.CodeUnavailable {
		t.Fatalf("second produce: %v", err)
	}
	if _, err := p.Produce(ctx, &Message{Topic: "plain", Value: []byte("three")}); err != nil {
		t.Fatal(err)
	}
	// Not resent: "two" is stored once (the proxy did store it).
	msgs := fetchQueue(t, bs[0].Addr(), "plain", 0)
	var got []string
	for _, m := range msgs {
		got = append(got, valueOf(t, m))
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("stored %v", got)
	}
	h, _ := wire.ParseHeader(mustBatch(t, bs[0].Addr(), "plain"))
	if h.ProducerID != 0 || px.inits.Load() != 0 {
		t.Fatalf("non-idempotent producer used producer id %d (%d inits)", h.ProducerID, px.inits.Load())
	}
}

func mustBatch(t testing.TB, addr, topic string) []byte {
	st, raw := httpCall(t, "GET", fmt.Sprintf("http://%s/v1/topics/%s/queues/0/batches?offset=0", addr, topic), nil)
	if st != 200 {
		t.Fatalf("binary fetch %d", st)
	}
	return raw[wire.FetchFrameHeader:]
}

func TestReorderedBatchesAreResentInOrder(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	createTopic(t, bs[0].Addr(), "reorder", 1)
	px := newProxy(t, bs[0].Addr())
	// Some batches are held back so that the next ones overtake them and
	// are refused with OUT_OF_ORDER_SEQUENCE.
	px.setFault(func(n int, _ *http.Request, _ []byte) string {
		if n%7 == 1 {
			return "delay:50ms"
		}
		return ""
	})
	p := newProducer(t, []string{px.addr()}, WithBatchBytes(100), WithLinger(0), WithMaxInFlight(5))
	c, sent := produceN(t, p, "reorder", 300, 1)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	checkQueues(t, bs[0].Addr(), "reorder", 1, c, sent)
}

func TestUnknownProducerGetsNewID(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	createTopic(t, bs[0].Addr(), "expire", 2)
	px := newProxy(t, bs[0].Addr())
	px.setFault(func(n int, _ *http.Request, _ []byte) string {
		if n == 3 {
			return "unknown-producer"
		}
		return ""
	})
	p := newProducer(t, []string{px.addr()}, WithBatchBytes(100), WithLinger(0))
	c, sent := produceN(t, p, "expire", 100, 4)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	checkQueues(t, bs[0].Addr(), "expire", 2, c, sent)
	if n := px.inits.Load(); n != 2 {
		t.Fatalf("%d producer ids requested, want 2", n)
	}
}

func TestFollowsNotLeaderHint(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	createTopic(t, bs[0].Addr(), "hint", 1)
	// The producer knows only the "follower" (the proxy); it must follow
	// the hint to the broker.
	px := newProxy(t, bs[0].Addr())
	px.setFault(func(int, *http.Request, []byte) string { return "not-leader" })
	p := newProducer(t, []string{px.addr()})
	r, err := p.Produce(context.Background(), &Message{Topic: "hint", Value: []byte("x")})
	if err != nil || r.Offset != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	px.mu.Lock()
	n := px.batches
	px.mu.Unlock()
	if n != 1 {
		t.Fatalf("proxy saw %d batches, want 1 (then the leader is remembered)", n)
	}
	if _, err := p.Produce(context.Background(), &Message{Topic: "hint", Value: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	px.mu.Lock()
	n = px.batches
	px.mu.Unlock()
	if n != 1 {
		t.Fatalf("second produce went through the proxy again")
	}
}

func TestDeliveryTimeout(t *testing.T) {
	bs := brokertest.Group(t, 1, noSync)
	createTopic(t, bs[0].Addr(), "slow", 1)
	px := newProxy(t, bs[0].Addr())
	px.setFault(func(int, *http.Request, []byte) string { return "store-then-503" })
	p := newProducer(t, []string{px.addr()}, WithDeliveryTimeout(300*time.Millisecond), WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	start := time.Now()
	_, err := p.Produce(context.Background(), &Message{Topic: "slow", Value: []byte("x")})
	if !errors.Is(err, ErrDeliveryTimeout) || !errors.Is(err, ErrUnknownOutcome) || ErrorCode(err) != wire.CodeUnavailable {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	// Stored once despite the resends.
	if n := len(fetchQueue(t, bs[0].Addr(), "slow", 0)); n != 1 {
		t.Fatalf("stored %d times", n)
	}
}

// ---- Back-pressure, with a broker that answers only when told ----

// stallBroker serves metadata and producer ids, and holds batch POSTs
// until release is closed.
func stallBroker(t testing.TB, release chan struct{}) (string, *atomic.Int64) {
	var next atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/cluster":
			json.NewEncoder(w).Encode(wire.ClusterStatus{GroupID: 1})
		case r.URL.Path == "/v1/producers":
			json.NewEncoder(w).Encode(wire.InitProducerResponse{ProducerID: 1})
		case r.Method == "GET":
			json.NewEncoder(w).Encode(wire.TopicInfo{Name: "bp", Queues: 1, MaxMessageBytes: 1 << 20})
		default:
			body, _ := io.ReadAll(r.Body)
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			h, err := wire.ParseHeader(body)
			if err != nil {
				writeAPIError(w, 400, wire.APIError{Code: wire.CodeMalformedBatch, Message: err.Error()})
				return
			}
			base := next.Add(int64(h.Count)) - int64(h.Count)
			json.NewEncoder(w).Encode(wire.BatchProduceResponse{Queue: 0, BaseOffset: uint64(base), Count: h.Count})
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &next
}

func TestBackPressure(t *testing.T) {
	release := make(chan struct{})
	addr, stored := stallBroker(t, release)
	const bound = 64 << 10
	p := newProducer(t, []string{addr}, WithBufferedBytes(bound), WithBatchBytes(16<<10), WithLinger(0))
	value := make([]byte, 1000)
	var done atomic.Int64
	var maxBuffered atomic.Int64
	cb := func(_ Result, err error) {
		if err != nil {
			t.Error(err)
		}
		p.bufMu.Lock()
		b := p.buffered
		p.bufMu.Unlock()
		if b > maxBuffered.Load() {
			maxBuffered.Store(b)
		}
		done.Add(1)
	}
	// Fill the buffer while the broker holds every batch.
	for p.bufferedNow()+int64(len(value)+wire.RecordOverhead) <= bound {
		p.ProduceAsync(&Message{Topic: "bp", Value: value}, cb)
	}
	// Now the buffer is full: Produce waits, until its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := p.Produce(ctx, &Message{Topic: "bp", Value: value})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "buffer") {
		t.Fatalf("Produce on a full buffer: %v", err)
	}
	// Writers blocked in ProduceAsync proceed once the broker answers.
	const total = 2000
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range total / 4 {
				p.ProduceAsync(&Message{Topic: "bp", Value: value}, cb)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	if b := p.bufferedNow(); b > bound {
		t.Fatalf("buffered %d bytes, bound %d", b, bound)
	}
	close(release)
	wg.Wait()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stored.Load(); got != done.Load() || done.Load() < total {
		t.Fatalf("stored %d, callbacks %d", got, done.Load())
	}
	if m := maxBuffered.Load(); m > bound {
		t.Fatalf("buffered up to %d bytes, bound %d", m, bound)
	}
}

func (p *Producer) bufferedNow() int64 {
	p.bufMu.Lock()
	defer p.bufMu.Unlock()
	return p.buffered
}

func TestCloseTimeoutFailsStuckMessages(t *testing.T) {
	release := make(chan struct{})
	addr, _ := stallBroker(t, release)
	defer close(release)
	p := newProducer(t, []string{addr}, WithCloseTimeout(200*time.Millisecond))
	c := newCollector()
	var errs []error
	var mu sync.Mutex
	for range 10 {
		c.wg.Add(1)
		p.ProduceAsync(&Message{Topic: "bp", Value: []byte("x")}, func(_ Result, err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			c.wg.Done()
		})
	}
	time.Sleep(50 * time.Millisecond) // in flight
	start := time.Now()
	if err := p.Close(); err == nil {
		t.Fatal("Close reported no undelivered messages")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	c.wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrUnknownOutcome) {
			t.Fatalf("stuck message: %v", err)
		}
	}
}

func TestCloseStopsEveryGoroutine(t *testing.T) {
	release := make(chan struct{})
	addr, _ := stallBroker(t, release)
	before := runtime.NumGoroutine()
	p, err := NewProducer([]string{addr}, WithCloseTimeout(100*time.Millisecond), WithLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		p.ProduceAsync(&Message{Topic: "bp", Key: []byte(strconv.Itoa(i)), Value: []byte("x")}, nil)
	}
	time.Sleep(50 * time.Millisecond) // metadata loaded, batches in flight
	p.Close()
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []ProducerOpt{WithMaxInFlight(0), WithMaxInFlight(9), WithMaxRequests(0), WithMaxRequests(MaxRequestsLimit + 1), WithBatchBytes(0), WithLinger(-1),
		WithBufferedBytes(10), WithCompression(9), WithDeliveryTimeout(0), WithRetryBackoff(time.Second, time.Millisecond),
		WithRequestTimeout(0), WithLogger(nil)} {
		if _, err := NewProducer([]string{"127.0.0.1:1"}, o); err == nil {
			t.Fatalf("option accepted")
		}
	}
	// Mixed schemes too: leader hints (host:port) are reached with one.
	for _, b := range [][]string{nil, {"nohost"}, {"ftp://x:1"}, {"http://x:1/path"}, {"http://localhost:2", "https://h:3/"}} {
		if _, err := NewProducer(b); err == nil {
			t.Fatalf("brokers %q accepted", b)
		}
	}
	p, err := NewProducer([]string{"127.0.0.1:1", "https://h:3/"})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
}

// ---- A 3-node group: leadership moves while producing ----

func TestLeadershipTransferExactlyOnceInOrder(t *testing.T) {
	bs := brokertest.Group(t, 3, noSync)
	for _, inflight := range []int{DefaultMaxInFlight, 5} {
		t.Run(fmt.Sprintf("inflight=%d", inflight), func(t *testing.T) {
			topic := fmt.Sprintf("ha%d", inflight)
			createTopic(t, brokertest.Leader(t, bs).Addr(), topic, 4)
			p := newProducer(t, brokertest.Addrs(bs), WithBatchBytes(2000), WithLinger(time.Millisecond), WithMaxInFlight(inflight))
			transferWhileProducing(t, bs, p, topic)
		})
	}
}

func transferWhileProducing(t *testing.T, bs []*broker.Broker, p *Producer, topic string) {
	c := newCollector()
	var sent []string
	stop := make(chan struct{})
	producing := make(chan struct{})
	go func() {
		defer close(producing)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("k%d", i%8)
			v := fmt.Sprintf("%s#%d", k, i)
			sent = append(sent, v)
			p.ProduceAsync(&Message{Topic: topic, Key: []byte(k), Value: []byte(v)}, c.cb(v))
			if i%50 == 49 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	moved := 0
	for range 3 {
		time.Sleep(250 * time.Millisecond)
		l := brokertest.Leader(t, bs)
		// Raft may give up on a transfer under load; that is the broker's
		// business, the producer must cope either way.
		st, body := httpCall(t, "POST", "http://"+l.Addr()+"/v1/cluster/transfer-leadership", nil)
		if st == 200 {
			moved++
		} else {
			t.Logf("transfer: %d %s", st, body)
		}
	}
	time.Sleep(250 * time.Millisecond)
	close(stop)
	<-producing
	if moved == 0 {
		t.Fatal("leadership never moved")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	dups := 0
	for _, r := range c.results {
		if r.Duplicate {
			dups++
		}
	}
	t.Logf("%d messages, %d leadership moves, %d answered as duplicates of a stored batch", len(sent), moved, dups)
	checkQueues(t, brokertest.Leader(t, bs).Addr(), topic, 4, c, sent)
}

// ---- Measurements against a running group (not run by default) ----

// countingHandler counts log records by message (and OUT_OF_ORDER resends).
type countingHandler struct {
	resends, outOfOrder atomic.Int64
	mu                  sync.Mutex
	other               map[string]int // other resend causes, by error text
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "ledgermq: batch will be resent" {
		h.resends.Add(1)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" && strings.Contains(a.Value.String(), wire.CodeOutOfOrderSequence) {
				h.outOfOrder.Add(1)
			} else if a.Key == "err" {
				h.mu.Lock()
				if h.other == nil {
					h.other = map[string]int{}
				}
				h.other[a.Value.String()]++
				h.mu.Unlock()
			}
			return true
		})
	}
	return nil
}

// TestMeasure measures throughput, lone-message latency and request rates
// for linger, batch size and in-flight choices against a running group:
//
//	go run ./cmd/broker dev --nodes 3 --data-dir /tmp/sdkdev --api-port 27001 --raft-port 28001
//	LEDGERMQ_SDK_BENCH=127.0.0.1:27001,127.0.0.1:27002,127.0.0.1:27003 go test -run TestMeasure -v -timeout 30m ./client
func TestMeasure(t *testing.T) {
	env := os.Getenv("LEDGERMQ_SDK_BENCH")
	if env == "" {
		t.Skip("set LEDGERMQ_SDK_BENCH to a running group's brokers")
	}
	brokers := strings.Split(env, ",")
	dur := 3 * time.Second
	if d, err := time.ParseDuration(os.Getenv("LEDGERMQ_SDK_BENCH_DURATION")); err == nil {
		dur = d
	}
	parts := strings.Split(os.Getenv("LEDGERMQ_SDK_BENCH_PARTS"), ",")
	want := func(part string) bool { return parts[0] == "" || slices.Contains(parts, part) }
	var leader string
	for _, b := range brokers {
		st, body := httpCall(t, "GET", "http://"+b+"/v1/cluster", nil)
		var cs wire.ClusterStatus
		if st == 200 && json.Unmarshal(body, &cs) == nil && cs.LeaderAPI != "" {
			leader = cs.LeaderAPI
			break
		}
	}
	if leader == "" {
		t.Fatal("no leader")
	}
	newTopic := func(queues int) string {
		name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
		createTopic(t, leader, name, queues)
		return name
	}
	// produceRequests reads the leader's count of binary produce requests.
	produceRequests := func() int64 {
		_, body := httpCall(t, "GET", "http://"+leader+"/metrics", nil)
		var n int64
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "ledgermq_requests_total{") && strings.Contains(line, `endpoint="produce_batch"`) {
				f := strings.Fields(line)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				n += int64(v)
			}
		}
		return n
	}
	// 1 KiB JSON-like values with random hex: about 2:1 compressible.
	rng := rand.New(rand.NewPCG(7, 7))
	values := make([][]byte, 64)
	for i := range values {
		var b strings.Builder
		for b.Len() < 1024 {
			fmt.Fprintf(&b, `{"id":"%016x","n":%d},`, rng.Uint64(), rng.IntN(1e6))
		}
		values[i] = []byte(b.String()[:1024])
	}
	// throughput runs writers producing as fast as the buffer lets them.
	throughput := func(queues, writers int, opts ...ProducerOpt) (mbps float64, reqs, resends, ooo int64) {
		topic := newTopic(queues)
		h := &countingHandler{}
		p, err := NewProducer(brokers, append([]ProducerOpt{WithLogger(slog.New(h))}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		var acked, failed atomic.Int64
		cb := func(r Result, err error) {
			if err != nil {
				failed.Add(1)
				return
			}
			acked.Add(1)
		}
		r0 := produceRequests()
		stop := time.Now().Add(dur)
		var wg sync.WaitGroup
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(stop); i++ {
					p.ProduceAsync(&Message{Topic: topic, Key: []byte(strconv.Itoa(g*1_000_000 + i%1000)), Value: values[i%len(values)]}, cb)
				}
			}()
		}
		start := time.Now()
		wg.Wait()
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		if failed.Load() > 0 {
			t.Fatalf("%d failed", failed.Load())
		}
		h.mu.Lock()
		for e, n := range h.other {
			t.Logf("    resent %d times after: %s", n, e)
		}
		h.mu.Unlock()
		return float64(acked.Load()) * 1024 / el.Seconds() / 1e6, produceRequests() - r0, h.resends.Load(), h.outOfOrder.Load()
	}
	// paced produces rate messages per second for dur and reports the
	// requests per second and the mean time to acknowledgement.
	paced := func(rate int, keyed bool, opts ...ProducerOpt) (reqPerSec float64, meanAck time.Duration) {
		topic := newTopic(16)
		p, err := NewProducer(brokers, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		var total atomic.Int64
		var n atomic.Int64
		r0 := produceRequests()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		sent := 0
		for time.Since(start) < dur {
			<-tick.C
			for due := int(time.Since(start).Seconds() * float64(rate)); sent < due; sent++ {
				s := time.Now()
				m := &Message{Topic: topic, Value: values[sent%len(values)]}
				if keyed {
					m.Key = []byte(strconv.Itoa(sent))
				}
				p.ProduceAsync(m, func(_ Result, err error) {
					if err == nil {
						total.Add(int64(time.Since(s)))
						n.Add(1)
					}
				})
			}
		}
		p.Flush(context.Background())
		return float64(produceRequests()-r0) / dur.Seconds(), time.Duration(total.Load() / max(n.Load(), 1))
	}
	latency := func(opts ...ProducerOpt) (p50, p99 time.Duration) {
		topic := newTopic(16)
		p, err := NewProducer(brokers, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		var ds []time.Duration
		for i := 0; i < 300; i++ {
			s := time.Now()
			if _, err := p.Produce(context.Background(), &Message{Topic: topic, Queue: new(i % 16), Value: values[0]}); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(s))
		}
		ds = ds[20:] // warm-up
		slices.Sort(ds)
		return ds[len(ds)/2], ds[len(ds)*99/100]
	}
	lingers := []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond}

	if want("latency") {
		t.Logf("lone-message latency (sync Produce, one at a time):")
		for _, l := range lingers {
			p50, p99 := latency(WithLinger(l))
			t.Logf("  linger %-5v p50 %-8v p99 %v", l, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
		}
	}
	if want("paced") {
		t.Logf("paced load, 16 queues, 1 KiB messages, %v each:", dur)
		for _, keyed := range []bool{true, false} {
			for _, rate := range []int{1000, 3000, 10000} {
				for _, l := range lingers {
					rps, ack := paced(rate, keyed, WithLinger(l))
					t.Logf("  keyed %-5v %5d msg/s linger %-5v %7.0f requests/s  mean ack %v", keyed, rate, l, rps, ack.Round(10*time.Microsecond))
				}
			}
		}
	}
	if want("inflight") {
		t.Logf("max in flight (4 writers, 1 KiB messages, %v each):", dur)
		for _, queues := range []int{1, 16} {
			for _, inflight := range []int{1, 2, 5, 8} {
				mbps, reqs, rs, ooo := throughput(queues, 4, WithMaxInFlight(inflight))
				t.Logf("  %2d queues, in flight %d: %6.1f MB/s  %5d requests  resends %d (out-of-order %d)", queues, inflight, mbps, reqs, rs, ooo)
			}
		}
	}
	if want("grid") {
		t.Logf("throughput (16 queues, 4 writers, 1 KiB messages, in flight 1, %v each):", dur)
		for _, bb := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20} {
			for _, l := range lingers {
				mbps, reqs, rs, _ := throughput(16, 4, WithLinger(l), WithBatchBytes(bb), WithMaxInFlight(1))
				t.Logf("  batch %4d KiB linger %-5v %6.1f MB/s  %5d requests  resends %d", bb>>10, l, mbps, reqs, rs)
			}
		}
	}
	if want("codec") {
		for _, codec := range []wire.Codec{wire.CodecNone, wire.CodecS2, wire.CodecSnappy, wire.CodecZstd, wire.CodecGzip} {
			mbps, _, _, _ := throughput(16, 4, WithCompression(codec), WithMaxInFlight(1))
			t.Logf("  %-6s %6.1f MB/s of messages", codec, mbps)
		}
	}
}
