package driver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

const (
	httpInFlight   = 4                // concurrent requests per HTTP producer
	requestTimeout = 10 * time.Second // one produce request
	writeDeadline  = 15 * time.Second // one write, redirects included
)

func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only wire types, which always marshal
	}
	return b
}

// call sends one request to the node at addr (host:port; HTTPS when the
// group is secured) and decodes a JSON answer into out; an error answer is
// returned as a *wire.APIError.
func (d *LedgerMQ) call(ctx context.Context, method, addr, path, ctype string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	scheme := "http://"
	if d.tls {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, method, scheme+addr+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb wire.ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
		}
		return &eb.Error
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// httpProducer publishes through the broker's HTTP produce endpoints: it
// gathers Sends into requests of up to batchBytes of values (or what came
// within linger), keeps up to httpInFlight requests open and sends each to
// the leader, following NOT_LEADER answers and moving to the next node
// when a connection is refused. Any other failure leaves the outcome
// unknown: the request's messages fail and are not resent.
type httpProducer struct {
	d       *LedgerMQ
	api     string
	topic   string
	queues  int
	groupID uint32
	maxB    int
	linger  time.Duration

	in      chan pendingMsg
	loop    sync.WaitGroup // the gathering goroutine
	reqs    sync.WaitGroup // requests in flight
	pending sync.WaitGroup // messages not yet answered
	sem     chan struct{}
}

type pendingMsg struct {
	value []byte
	done  func(error)
}

func newHTTPProducer(ctx context.Context, d *LedgerMQ, topic string, batchBytes int, linger time.Duration) (*httpProducer, error) {
	g := d.g
	l, err := g.WaitLeader(ctx, "", leaderTimeout)
	if err != nil {
		return nil, err
	}
	var ti wire.TopicInfo
	if err := d.call(ctx, "GET", g.API(l), "/v1/topics/"+topic, "", nil, &ti); err != nil {
		return nil, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	cs, err := g.Status(ctx, l)
	if err != nil {
		return nil, err
	}
	p := &httpProducer{d: d, api: d.api, topic: topic, queues: len(ti.QueueInfo), groupID: cs.GroupID,
		maxB: max(batchBytes, 1), linger: max(linger, time.Millisecond), in: make(chan pendingMsg, 1024), sem: make(chan struct{}, httpInFlight)}
	if batchBytes == 0 {
		p.maxB = 100 << 10
	}
	p.loop.Add(1)
	go p.gather()
	return p, nil
}

// Send implements Producer.
func (p *httpProducer) Send(_, value []byte, done func(err error)) {
	p.pending.Add(1)
	p.in <- pendingMsg{value: value, done: func(err error) { done(err); p.pending.Done() }}
}

// Flush implements Producer: it waits until every sent message is
// answered.
func (p *httpProducer) Flush(ctx context.Context) error { return Wait(ctx, &p.pending) }

// Close implements Producer: it sends what is gathered and waits for
// every request.
func (p *httpProducer) Close() error {
	close(p.in)
	p.loop.Wait()
	p.reqs.Wait()
	return nil
}

// gather owns the batch being filled; it ends when Close closes in.
func (p *httpProducer) gather() {
	defer p.loop.Done()
	var batch []pendingMsg
	size, next := 0, 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		p.sem <- struct{}{}
		p.reqs.Add(1)
		go func(b []pendingMsg, q int) {
			defer func() { <-p.sem; p.reqs.Done() }()
			err := p.send(b, q)
			for _, m := range b {
				m.done(err)
			}
		}(batch, next%max(p.queues, 1))
		batch, size, next = nil, 0, next+1
	}
	for {
		select {
		case m, ok := <-p.in:
			if !ok {
				flush()
				return
			}
			if len(batch) == 0 {
				timer.Reset(p.linger)
			}
			batch = append(batch, m)
			if size += len(m.value); size >= p.maxB || len(batch) >= wire.MaxRecords {
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// send posts one request of batch's messages (binary: all to queue q).
func (p *httpProducer) send(batch []pendingMsg, q int) error {
	if p.api == APIJSON {
		req := wire.ProduceRequest{Messages: make([]wire.ProduceMessage, len(batch))}
		for i, m := range batch {
			v := base64.StdEncoding.EncodeToString(m.value)
			req.Messages[i].ValueBase64 = &v
		}
		var pr wire.ProduceResponse
		return p.write("/v1/topics/"+p.topic+"/messages", "application/json", jsonBody(req), &pr)
	}
	msgs := make([]wire.Message, len(batch))
	for i, m := range batch {
		msgs[i].Value = m.value
	}
	body, err := wire.Encode(msgs, wire.CodecNone, wire.Producer{}, p.groupID, time.Now())
	if err != nil {
		return fmt.Errorf("encode batch: %w", err)
	}
	var br wire.BatchProduceResponse
	return p.write("/v1/topics/"+p.topic+"/queues/"+strconv.Itoa(q)+"/batches", wire.ContentType, body, &br)
}

// write POSTs to the leader, following redirects, for at most
// writeDeadline.
func (p *httpProducer) write(path, ctype string, body []byte, out any) error {
	apis := p.d.g.APIs()
	target, i := apis[0], 0
	deadline := time.Now().Add(writeDeadline)
	for {
		err := p.d.call(context.Background(), "POST", target, path, ctype, body, out)
		var ae *wire.APIError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ae) && ae.Code == wire.CodeNotLeader && ae.Leader != "" && ae.Leader != target:
			target = ae.Leader
			continue
		case errors.As(err, &ae) && ae.Code == wire.CodeNotLeader, errors.Is(err, syscall.ECONNREFUSED):
			i++
			target = apis[i%len(apis)]
		default:
			return err // the write may have happened: not resent
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no leader accepted the write within %s: %w", writeDeadline, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
