package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ledgermq/ledgermq/wire"
)

// maxBatchBytes bounds the values of one produce request, well under the
// broker's default 16 MiB request limit even after JSON escaping.
const maxBatchBytes = 4 << 20

type produceOpts struct {
	file      string
	key       *string
	headers   map[string]string
	queue     *int
	batchSize int
}

// headerFlag is a repeatable --header k=v.
type headerFlag struct{ m *map[string]string }

func (h headerFlag) String() string {
	if h.m == nil {
		return ""
	}
	var parts []string
	for k, v := range *h.m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (h headerFlag) Set(s string) error {
	k, v, err := parseHeader(s)
	if err != nil {
		return err
	}
	if *h.m == nil {
		*h.m = map[string]string{}
	}
	if _, dup := (*h.m)[k]; dup {
		return fmt.Errorf("header %q given twice", k)
	}
	(*h.m)[k] = v
	return nil
}

// parseHeader parses k=v; the value may be empty and may contain '='.
func parseHeader(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("header %q is not k=v", s)
	}
	if k == "" {
		return "", "", fmt.Errorf("header %q has an empty name", s)
	}
	return k, v, nil
}

// parseQueue parses a queue number.
func parseQueue(s string) (int, error) {
	q, err := strconv.Atoi(s)
	if err != nil || q < 0 {
		return 0, fmt.Errorf("queue must be a non-negative integer, not %q", s)
	}
	return q, nil
}

func (a *app) produceCmd(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"produce", "TOPIC [flags]",
		"Produces one message per line of stdin (or --file), in batches. A trailing\n" +
			"\\n or \\r\\n is not part of the message; lines that are not UTF-8 are sent as\n" +
			"binary. A summary follows; on a terminal, a progress line shows the rate."})
	o := produceOpts{batchSize: 500}
	fs.StringVar(&o.file, "file", "", "read messages from file `F` instead of stdin")
	fs.Func("key", "give every message the key `K` (it picks the queue)", func(s string) error {
		o.key = &s
		return nil
	})
	fs.Var(headerFlag{&o.headers}, "header", "add header `k=v` to every message (repeatable)")
	fs.Func("queue", "produce to queue `Q` (default: by key, else round-robin)", func(s string) error {
		q, err := parseQueue(s)
		o.queue = &q
		return err
	})
	fs.IntVar(&o.batchSize, "batch-size", o.batchSize, "at most `N` messages per request")
	pos, err := a.parse(fs, args, 1, "TOPIC")
	if err != nil {
		return err
	}
	if o.batchSize < 1 || o.batchSize > 10000 {
		return usagef(fs.Name(), "--batch-size must be 1..10000")
	}
	in := a.stdin
	if o.file != "" && o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	p := &producer{a: a, topic: pos[0], start: time.Now(), queues: map[int]*queueRange{}}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan inputBatch, 1)
	go readBatches(rctx, in, &o, batches)
	runErr := p.run(ctx, batches)
	if p.progressShown {
		fmt.Fprint(a.stderr, "\r\x1b[K")
	}
	s := p.summary(time.Now(), runErr)
	if a.json() {
		b, _ := json.Marshal(s)
		fmt.Fprintf(a.stdout, "%s\n", b)
	} else {
		writeProduceSummary(a.stdout, &s)
	}
	return runErr
}

// inputBatch is a batch of messages read from the input, or a read error.
type inputBatch struct {
	msgs  []wire.ProduceMessage
	bytes int64
	err   error
}

// readBatches reads one message per line. A batch is sent when it is full
// or when the input has nothing more buffered, so messages typed or piped
// slowly go out at once.
func readBatches(ctx context.Context, r io.Reader, o *produceOpts, out chan<- inputBatch) {
	defer close(out)
	br := bufio.NewReaderSize(r, 1<<20)
	var b inputBatch
	send := func(x inputBatch) bool {
		select {
		case out <- x:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = trimEOL(line)
			b.msgs = append(b.msgs, o.message(line))
			b.bytes += int64(len(line))
		}
		flush := len(b.msgs) >= o.batchSize || b.bytes >= maxBatchBytes || br.Buffered() == 0 || err != nil
		if flush && len(b.msgs) > 0 {
			if !send(b) {
				return
			}
			b = inputBatch{}
		}
		if err != nil {
			if err != io.EOF {
				send(inputBatch{err: fmt.Errorf("read input: %w", err)})
			}
			return
		}
	}
}

func trimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	return line
}

// message makes one message of a line.
func (o *produceOpts) message(line []byte) wire.ProduceMessage {
	m := wire.ProduceMessage{Key: o.key, Headers: o.headers, Queue: o.queue}
	if utf8.Valid(line) {
		s := string(line)
		m.Value = &s
	} else {
		s := base64.StdEncoding.EncodeToString(line)
		m.ValueBase64 = &s
	}
	return m
}

// producer sends batches and keeps the figures of the summary.
type producer struct {
	a     *app
	topic string
	start time.Time

	messages, bytes int64
	queues          map[int]*queueRange
	inDoubt, failed int

	progressShown bool
	lastProgress  time.Time
}

func (p *producer) run(ctx context.Context, batches <-chan inputBatch) error {
	path := "/v1/topics/" + pathEscape(p.topic) + "/messages"
	for {
		var b inputBatch
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case b, ok = <-batches:
		}
		if !ok {
			return nil
		}
		if b.err != nil {
			return b.err
		}
		var resp wire.ProduceResponse
		_, err := p.a.client.do(ctx, request{method: http.MethodPost, path: path,
			body: wire.ProduceRequest{Messages: b.msgs}}, &resp)
		if err == nil && len(resp.Results) != len(b.msgs) {
			// Stored, but we cannot say where.
			p.messages += int64(len(b.msgs))
			p.bytes += b.bytes
			return fmt.Errorf("the broker answered %d results for %d messages", len(resp.Results), len(b.msgs))
		}
		if err != nil {
			if outcomeUnknown(err) {
				p.inDoubt += len(b.msgs)
			} else {
				p.failed += len(b.msgs)
			}
			return err
		}
		p.record(resp.Results, b.bytes)
		p.progress(time.Now())
	}
}

func (p *producer) record(results []wire.ProduceResult, bytes int64) {
	p.messages += int64(len(results))
	p.bytes += bytes
	for _, r := range results {
		q := p.queues[r.Queue]
		if q == nil {
			q = &queueRange{Queue: r.Queue, FirstOffset: r.Offset, LastOffset: r.Offset}
			p.queues[r.Queue] = q
		}
		q.Messages++
		q.FirstOffset = min(q.FirstOffset, r.Offset)
		q.LastOffset = max(q.LastOffset, r.Offset)
	}
}

// progress redraws the progress line, on a terminal only, once the run has
// lasted a second: small inputs never show one.
func (p *producer) progress(now time.Time) {
	el := now.Sub(p.start)
	if !p.a.stderrTTY || el < time.Second || now.Sub(p.lastProgress) < 250*time.Millisecond {
		return
	}
	p.lastProgress, p.progressShown = now, true
	fmt.Fprintf(p.a.stderr, "\r%d messages, %s, %s msg/s, %s/s\x1b[K", p.messages, formatBytes(p.bytes),
		strconv.FormatFloat(float64(p.messages)/el.Seconds(), 'f', 0, 64), formatBytes(int64(float64(p.bytes)/el.Seconds())))
}

// produceSummary is printed at the end; --format json prints it as is.
type produceSummary struct {
	Topic          string       `json:"topic"`
	Messages       int64        `json:"messages"` // acknowledged: stored
	Bytes          int64        `json:"bytes"`    // of their values
	ElapsedMs      int64        `json:"elapsed_ms"`
	MessagesPerSec float64      `json:"messages_per_sec"`
	BytesPerSec    float64      `json:"bytes_per_sec"`
	Queues         []queueRange `json:"queues"`
	// After a failure: messages of the failed request whose outcome is
	// unknown, or that were certainly not stored.
	InDoubt int    `json:"in_doubt,omitempty"`
	Failed  int    `json:"failed,omitempty"`
	Error   string `json:"error,omitempty"`
}

// queueRange is where a run's messages went in one queue.
type queueRange struct {
	Queue       int    `json:"queue"`
	Messages    int64  `json:"messages"`
	FirstOffset uint64 `json:"first_offset"`
	LastOffset  uint64 `json:"last_offset"`
}

func (p *producer) summary(now time.Time, err error) produceSummary {
	el := now.Sub(p.start)
	s := produceSummary{Topic: p.topic, Messages: p.messages, Bytes: p.bytes, ElapsedMs: el.Milliseconds(),
		Queues: []queueRange{}, InDoubt: p.inDoubt, Failed: p.failed}
	if sec := el.Seconds(); sec > 0 {
		s.MessagesPerSec = math.Round(float64(p.messages)/sec*10) / 10
		s.BytesPerSec = math.Round(float64(p.bytes)/sec*10) / 10
	}
	for _, q := range p.queues {
		s.Queues = append(s.Queues, *q)
	}
	slices.SortFunc(s.Queues, func(x, y queueRange) int { return x.Queue - y.Queue })
	if err != nil {
		s.Error = err.Error()
		if errors.Is(err, context.Canceled) {
			s.Error = "interrupted"
		}
	}
	return s
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.FormatInt(n, 10) + " " + word + "s"
}

func writeProduceSummary(w io.Writer, s *produceSummary) {
	el := time.Duration(s.ElapsedMs) * time.Millisecond
	fmt.Fprintf(w, "Produced %s (%s) to %s in %v: %s msg/s, %s/s.\n", plural(s.Messages, "message"),
		formatBytes(s.Bytes), s.Topic, el, strconv.FormatFloat(s.MessagesPerSec, 'f', 0, 64),
		formatBytes(int64(s.BytesPerSec)))
	if len(s.Queues) <= 16 {
		for _, q := range s.Queues {
			if q.FirstOffset == q.LastOffset {
				fmt.Fprintf(w, "  queue %d: %s, offset %d\n", q.Queue, plural(q.Messages, "message"), q.FirstOffset)
			} else {
				fmt.Fprintf(w, "  queue %d: %s, offsets %d-%d\n", q.Queue, plural(q.Messages, "message"), q.FirstOffset, q.LastOffset)
			}
		}
	}
	if s.InDoubt > 0 {
		fmt.Fprintf(w, "In doubt: %s of the failed request (they may or may not be stored).\n", plural(int64(s.InDoubt), "message"))
	}
	if s.Failed > 0 {
		fmt.Fprintf(w, "Not stored: %s of the failed request.\n", plural(int64(s.Failed), "message"))
	}
}
