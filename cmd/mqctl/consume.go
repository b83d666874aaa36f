package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

const (
	fetchMax   = 500         // messages per fetch
	followWait = time.Second // long poll of --follow
)

type consumeOpts struct {
	queue         *int
	offset        *uint64
	fromBeginning bool
	fromEnd       bool
	fromTime      string
	count         int64
	follow        bool
	valuesOnly    bool
	group         string
}

// cursor is the read position in one queue.
type cursor struct {
	queue    int
	offset   uint64
	fromTime string // set until the first fetch: start at this time
	explicit bool   // offset given by --offset and not fetched yet: out of range is an error
}

func (a *app) consumeCmd(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"consume", "TOPIC [flags]",
		"Prints a topic's messages, from every queue in turn unless --queue is given,\n" +
			"from the beginning unless told otherwise. It stops once caught up, or after\n" +
			"--count messages; with --follow it waits for new messages until interrupted.\n" +
			"Text output is 'queue/offset key value' lines (key '-' when there is none;\n" +
			"binary values as base64:...); json output is one object per line.\n" +
			"With --group it reads as a member of that consumer group: only the queues the\n" +
			"group assigns to it, from the group's committed offsets (--from-* apply to queues\n" +
			"with none), and commits each record after printing it."})
	var o consumeOpts
	fs.Func("queue", "read only queue `Q`", func(s string) error {
		q, err := parseQueue(s)
		o.queue = &q
		return err
	})
	fs.Func("offset", "start at offset `N` (in every queue read)", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("offset must be a non-negative integer, not %q", s)
		}
		o.offset = &n
		return nil
	})
	fs.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the earliest stored message (the default)")
	fs.BoolVar(&o.fromEnd, "from-end", false, "start after the newest message: only new ones (with --follow)")
	fs.StringVar(&o.fromTime, "from-time", "", "start at the first message at or after `T` (RFC3339, e.g. 2025-01-02T15:04:05Z)")
	fs.Int64Var(&o.count, "count", 0, "stop after `N` messages (default: no limit)")
	fs.BoolVar(&o.follow, "follow", false, "keep waiting for new messages until interrupted")
	fs.BoolVar(&o.valuesOnly, "values-only", false, "print only the values, one per line (binary values raw)")
	fs.StringVar(&o.group, "group", "", "read as a member of consumer group `G`, committing what is printed")
	pos, err := a.parse(fs, args, 1, "TOPIC")
	if err != nil {
		return err
	}
	if err := o.check(a.format); err != nil {
		return usagef(fs.Name(), "%v", err)
	}
	topic := pos[0]
	if o.group != "" {
		return a.consumeGroup(ctx, topic, &o)
	}
	var info wire.TopicInfo
	if _, err := a.client.do(ctx, request{method: http.MethodGet, path: "/v1/topics/" + pathEscape(topic)}, &info); err != nil {
		return err
	}
	curs, err := o.cursors(&info)
	if err != nil {
		return err
	}
	c := &consumer{a: a, o: &o, path: "/v1/topics/" + pathEscape(topic) + "/queues/", out: bufio.NewWriter(a.stdout)}
	err = c.run(ctx, curs)
	if ferr := c.out.Flush(); err == nil {
		err = ferr
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // interrupted: the normal end of --follow
	}
	return err
}

func (o *consumeOpts) check(format string) error {
	n := 0
	for _, set := range []bool{o.offset != nil, o.fromBeginning, o.fromEnd, o.fromTime != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("give at most one of --offset, --from-beginning, --from-end and --from-time")
	}
	if o.fromTime != "" {
		if _, err := time.Parse(time.RFC3339Nano, o.fromTime); err != nil {
			return fmt.Errorf("--from-time must be RFC3339, e.g. 2025-01-02T15:04:05Z: %v", err)
		}
	}
	if o.count < 0 {
		return errors.New("--count must not be negative")
	}
	if o.group != "" && (o.queue != nil || o.offset != nil) {
		return errors.New("--queue and --offset do not go with --group: the group assigns the queues and keeps the offsets")
	}
	if o.valuesOnly && format == "json" {
		return errors.New("--values-only is for --format text")
	}
	return nil
}

// cursors returns the start position of every queue to read.
func (o *consumeOpts) cursors(t *wire.TopicInfo) ([]*cursor, error) {
	var queues []int
	if o.queue != nil {
		if *o.queue >= t.Queues {
			return nil, &apiError{APIError: wire.APIError{Code: wire.CodeQueueNotFound,
				Message: fmt.Sprintf("topic %s has queues 0..%d, not %d", t.Name, t.Queues-1, *o.queue)}}
		}
		queues = []int{*o.queue}
	} else {
		for q := range t.Queues {
			queues = append(queues, q)
		}
	}
	if len(queues) == 0 {
		return nil, fmt.Errorf("topic %s has no queues", t.Name)
	}
	ranges := map[int]wire.QueueInfo{}
	for _, qi := range t.QueueInfo {
		ranges[qi.Queue] = qi
	}
	var curs []*cursor
	for _, q := range queues {
		c := &cursor{queue: q}
		r, known := ranges[q]
		switch {
		case o.offset != nil:
			c.offset, c.explicit = *o.offset, true
		case o.fromTime != "":
			c.fromTime = o.fromTime
		case o.fromEnd:
			if !known {
				return nil, fmt.Errorf("the broker did not report queue %d's offsets; use --offset", q)
			}
			c.offset = r.Next
		default:
			c.offset = r.Earliest // 0 if unknown: corrected on OFFSET_OUT_OF_RANGE
		}
		curs = append(curs, c)
	}
	return curs, nil
}

// consumer reads queues round-robin and prints their messages.
type consumer struct {
	a       *app
	o       *consumeOpts
	path    string // /v1/topics/{t}/queues/
	out     *bufio.Writer
	printed int64
}

// left is how many messages to ask for: 0 once --count is reached.
func (c *consumer) left() int {
	if c.o.count == 0 {
		return fetchMax
	}
	return int(min(int64(fetchMax), c.o.count-c.printed))
}

// run reads every queue in turn. Without --follow a queue is done after an
// empty fetch. With --follow, a round in which no queue had anything is
// followed by a long poll of all queues at once, so a message in any queue
// is printed as soon as it arrives.
func (c *consumer) run(ctx context.Context, curs []*cursor) error {
	for {
		active := false
		var live []*cursor
		for _, cur := range curs {
			if c.left() == 0 {
				return nil
			}
			fr, err := c.fetch(ctx, cur, 0)
			if err != nil {
				return err
			}
			if err := c.print(cur.queue, fr.Messages); err != nil {
				return err
			}
			if len(fr.Messages) > 0 {
				active = true
			}
			if len(fr.Messages) > 0 || c.o.follow {
				live = append(live, cur)
			}
		}
		curs = live
		if len(curs) == 0 || c.left() == 0 {
			return nil
		}
		if !active && c.o.follow {
			if err := c.pollAll(ctx, curs); err != nil {
				return err
			}
		}
	}
}

// pollAll long-polls every queue at once; the first answer with messages
// ends the others' polls (reads: nothing is lost). Messages are printed
// in queue order.
func (c *consumer) pollAll(ctx context.Context, curs []*cursor) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := make([]wire.FetchResponse, len(curs))
	errs := make([]error, len(curs))
	var wg sync.WaitGroup
	for i, cur := range curs {
		wg.Go(func() {
			res[i], errs[i] = c.fetch(pctx, cur, followWait)
			if errs[i] == nil && len(res[i].Messages) > 0 {
				cancel()
			}
		})
	}
	wg.Wait()
	for i, cur := range curs {
		if errs[i] != nil {
			if ctx.Err() == nil && errors.Is(errs[i], context.Canceled) {
				continue // ended by another queue's answer
			}
			return errs[i]
		}
		if err := c.print(cur.queue, res[i].Messages); err != nil {
			return err
		}
	}
	return nil
}

// fetch reads the next messages of a queue and advances its cursor.
func (c *consumer) fetch(ctx context.Context, cur *cursor, wait time.Duration) (wire.FetchResponse, error) {
	for {
		q := url.Values{"max_messages": {strconv.Itoa(max(c.left(), 1))}}
		if cur.fromTime != "" {
			q.Set("timestamp", cur.fromTime)
		} else {
			q.Set("offset", strconv.FormatUint(cur.offset, 10))
		}
		if wait > 0 {
			q.Set("wait_ms", strconv.FormatInt(wait.Milliseconds(), 10))
		}
		var fr wire.FetchResponse
		_, err := c.a.client.do(ctx, request{method: http.MethodGet, path: c.path + strconv.Itoa(cur.queue) + "/messages",
			query: q, wait: wait}, &fr)
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == wire.CodeOffsetOutOfRange && !cur.explicit && cur.fromTime == "" &&
			ae.Earliest != nil && cur.offset < *ae.Earliest {
			// Retention deleted messages we had not read yet: skip them.
			fmt.Fprintf(c.a.stderr, "mqctl: queue %d: offsets %d-%d were deleted by retention; skipping to %d\n",
				cur.queue, cur.offset, *ae.Earliest-1, *ae.Earliest)
			cur.offset = *ae.Earliest
			continue
		}
		if err != nil {
			return fr, err
		}
		cur.fromTime, cur.explicit = "", false
		cur.offset = max(cur.offset, fr.NextOffset)
		if len(fr.Messages) > 0 {
			cur.offset = max(cur.offset, fr.Messages[len(fr.Messages)-1].Offset+1)
		}
		return fr, nil
	}
}

// print writes messages up to --count and flushes.
func (c *consumer) print(queue int, msgs []wire.FetchedMessage) error {
	for i := range msgs {
		if c.left() == 0 {
			break
		}
		if err := writeMessage(c.out, c.a.format, c.o.valuesOnly, queue, &msgs[i]); err != nil {
			return err
		}
		c.printed++
	}
	return c.out.Flush()
}

// consumedMessage is a line of json output: the API's message plus its queue.
type consumedMessage struct {
	Queue int `json:"queue"`
	wire.FetchedMessage
}

// writeMessage prints one message.
func writeMessage(w io.Writer, format string, valuesOnly bool, queue int, m *wire.FetchedMessage) error {
	if format == "json" {
		b, err := json.Marshal(consumedMessage{Queue: queue, FetchedMessage: *m})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	if valuesOnly {
		v, err := rawValue(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", v)
		return err
	}
	_, err := fmt.Fprintf(w, "%d/%d %s %s\n", queue, m.Offset, formatKey(m.Key), formatValue(m))
	return err
}

// formatKey prints a key as one word: '-' for none, quoted if it has
// spaces, quotes or control characters, or is empty or "-".
func formatKey(k *string) string {
	switch {
	case k == nil:
		return "-"
	case *k == "" || *k == "-" || strings.ContainsFunc(*k, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }):
		return strconv.Quote(*k)
	}
	return *k
}

func formatValue(m *wire.FetchedMessage) string {
	switch {
	case m.Value != nil:
		return *m.Value
	case m.ValueBase64 != nil:
		return "base64:" + *m.ValueBase64
	}
	return ""
}

// rawValue returns a message's value bytes.
func rawValue(m *wire.FetchedMessage) ([]byte, error) {
	switch {
	case m.Value != nil:
		return []byte(*m.Value), nil
	case m.ValueBase64 != nil:
		v, err := base64.StdEncoding.DecodeString(*m.ValueBase64)
		if err != nil {
			return nil, fmt.Errorf("message at offset %d: bad value_base64: %v", m.Offset, err)
		}
		return v, nil
	}
	return nil, nil
}
