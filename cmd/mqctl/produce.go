package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	sdk "github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/wire"
)

type produceOpts struct {
	file      string
	key       *string
	headers   map[string]string
	queue     *int
	batchSize int
	codec     wire.Codec
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
		"Produces one message per line of stdin (or --file), in binary batches through\n" +
			"an idempotent producer: a batch resent after a failover is stored once. A\n" +
			"trailing \\n or \\r\\n is not part of the message. A summary follows; on a\n" +
			"terminal, a progress line shows the rate. The summary ends with the log index\n" +
			"the messages reached, '(index I)': 'mqctl consume --min-index I' then shows\n" +
			"them from any broker."})
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
	fs.IntVar(&o.batchSize, "batch-size", o.batchSize, "at most `N` messages per batch: wait for them to be stored every N messages")
	fs.Func("compression", "compress batches with `C`: none, gzip, snappy, s2 or zstd (default none)", func(s string) error {
		c, err := wire.ParseCodec(s)
		o.codec = c
		return err
	})
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
	opts := []sdk.ProducerOpt{sdk.WithCompression(o.codec), sdk.WithDeliveryTimeout(a.timeout), sdk.WithCloseTimeout(0)}
	for _, opt := range a.opts() {
		opts = append(opts, opt)
	}
	sp, err := sdk.NewProducer(a.brokerList, opts...)
	if err != nil {
		return err
	}
	p := &producer{a: a, topic: pos[0], start: time.Now(), queues: map[int]*queueRange{}, failed: make(chan struct{})}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan inputBatch, 1)
	go readBatches(rctx, in, &o, batches)
	runErr := p.run(ctx, sp, &o, batches)
	sp.Close() // everything is flushed or abandoned by now: it fails what is left
	p.mu.Lock()
	defer p.mu.Unlock()
	if runErr == nil {
		runErr = p.err
	}
	a.wrote(p.index)
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

// inputBatch is a batch of lines read from the input, or a read error.
type inputBatch struct {
	lines [][]byte
	err   error
}

// readBatches reads one message per line. A batch is handed over when it
// is full or when the input has nothing more buffered, so messages typed
// or piped slowly go out at once.
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
		line, err := br.ReadBytes('\n') // a new slice each time: the producer may keep it
		if len(line) > 0 {
			b.lines = append(b.lines, trimEOL(line))
		}
		flush := len(b.lines) >= o.batchSize || br.Buffered() == 0 || err != nil
		if flush && len(b.lines) > 0 {
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
func (o *produceOpts) message(topic string, line []byte) *sdk.Message {
	m := &sdk.Message{Topic: topic, Value: line, Queue: o.queue}
	if o.key != nil {
		m.Key = []byte(*o.key)
	}
	if len(o.headers) > 0 {
		for k, v := range o.headers {
			m.Headers = append(m.Headers, wire.Header{Key: k, Value: []byte(v)})
		}
		slices.SortFunc(m.Headers, func(x, y wire.Header) int { return strings.Compare(x.Key, y.Key) })
	}
	return m
}

// producer hands the input's lines to the SDK producer and keeps the
// figures of the summary, which the producer's callbacks update.
type producer struct {
	a     *app
	topic string
	start time.Time

	failed     chan struct{} // closed at the first message that failed
	failedOnce sync.Once

	mu                sync.Mutex
	messages, bytes   int64
	queues            map[int]*queueRange
	inDoubt, failures int
	err               error  // the first failure
	index             uint64 // the highest index a message was acknowledged at

	progressShown bool
	lastProgress  time.Time
}

// run produces the input's messages until the input ends, a message fails
// or ctx ends. Every --batch-size messages it waits until they are stored
// (Flush), so that no batch holds more; without a pause in the input, the
// SDK sends a queue's batch once it lingered.
func (p *producer) run(ctx context.Context, sp *sdk.Producer, o *produceOpts, batches <-chan inputBatch) error {
	pending := 0
	flush := func() error {
		pending = 0
		if err := sp.Flush(ctx); err != nil {
			return ctx.Err()
		}
		return nil
	}
	for {
		var b inputBatch
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.failed:
			return nil
		case b, ok = <-batches:
		}
		if !ok {
			return flush()
		}
		if b.err != nil {
			flush()
			return b.err
		}
		for _, line := range b.lines {
			select {
			case <-p.failed:
				return nil
			default:
			}
			n := int64(len(line))
			sp.ProduceAsync(o.message(p.topic, line), func(r sdk.Result, err error) { p.done(r, n, err) })
			if pending++; pending >= o.batchSize {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
}

// done is a message's callback: it counts the message's result.
func (p *producer) done(r sdk.Result, bytes int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if errors.Is(err, sdk.ErrUnknownOutcome) {
			p.inDoubt++
		} else {
			p.failures++
		}
		if p.err == nil {
			p.err = err
		}
		p.failedOnce.Do(func() { close(p.failed) })
		return
	}
	p.messages++
	p.bytes += bytes
	p.index = max(p.index, r.Index)
	q := p.queues[r.Queue]
	if q == nil {
		q = &queueRange{Queue: r.Queue, FirstOffset: r.Offset, LastOffset: r.Offset}
		p.queues[r.Queue] = q
	}
	q.Messages++
	q.FirstOffset = min(q.FirstOffset, r.Offset)
	q.LastOffset = max(q.LastOffset, r.Offset)
	p.progress(time.Now())
}

// progress redraws the progress line, on a terminal only, once the run has
// lasted a second: small inputs never show one. The caller holds p.mu.
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
	// Index is the highest log index a message was acknowledged at: a
	// position token for consume --min-index (0 when nothing was stored).
	Index uint64 `json:"index"`
	// After a failure: messages whose outcome is unknown, or that were
	// certainly not stored.
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
		Queues: []queueRange{}, Index: p.index, InDoubt: p.inDoubt, Failed: p.failures}
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
	index := ""
	if s.Index > 0 {
		index = fmt.Sprintf(" (index %d)", s.Index)
	}
	fmt.Fprintf(w, "Produced %s (%s) to %s in %v: %s msg/s, %s/s%s.\n", plural(s.Messages, "message"),
		formatBytes(s.Bytes), s.Topic, el, strconv.FormatFloat(s.MessagesPerSec, 'f', 0, 64),
		formatBytes(int64(s.BytesPerSec)), index)
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
