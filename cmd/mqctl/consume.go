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
	"strconv"
	"strings"
	"time"

	sdk "github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/wire"
)

const (
	followWait   = time.Second            // long poll of --follow
	caughtUpPoll = 100 * time.Millisecond // without --follow: how long a queue may be idle before mqctl checks it is caught up
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

func (a *app) consumeCmd(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"consume", "TOPIC [flags]",
		"Prints a topic's messages, from every queue in turn unless --queue is given,\n" +
			"from the beginning unless told otherwise. It stops once caught up; with\n" +
			"--count N, once N messages are printed, waiting for them to arrive as long as\n" +
			"new ones keep coming within --timeout (fewer than N: an error). With --follow\n" +
			"it waits for new messages until interrupted. --min-index I (the index\n" +
			"'mqctl produce' printed) makes every broker answer only once it has applied\n" +
			"I, so that what was produced is seen whichever broker answers.\n" +
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
	fs.Func("min-index", "read as of log index `I` at least (printed by produce): writes up to it are seen", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > math.MaxInt64 {
			return fmt.Errorf("min-index must be a non-negative integer, not %q", s)
		}
		a.wrote(n)
		return nil
	})
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
	info, err := a.describeTopic(ctx, topic)
	if err != nil {
		return err
	}
	plan, err := o.plan(info)
	if err != nil {
		return err
	}
	c := &consumer{a: a, o: &o, brokers: a.brokerList, topic: topic, out: bufio.NewWriter(a.stdout)}
	err = c.run(ctx, plan)
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

// queueStart is where to read one queue.
type queueStart struct {
	queue int
	start sdk.Start
	// offset is the start as an offset, if hasOffset. next is the queue's
	// next offset in the topic's description, if described: with both,
	// offset >= next means the queue had nothing to read.
	offset, next         uint64
	hasOffset, described bool
}

// readAll reports whether the queue had nothing left to read when the
// topic was described.
func (s *queueStart) readAll() bool { return s.hasOffset && s.described && s.offset >= s.next }

// plan returns the queues to read, in order, and where to start them.
func (o *consumeOpts) plan(t *wire.TopicInfo) ([]*queueStart, error) {
	var queues []int
	if o.queue != nil {
		if *o.queue >= t.Queues {
			return nil, apiError(&sdk.Error{Code: wire.CodeQueueNotFound,
				Message: fmt.Sprintf("topic %s has queues 0..%d, not %d", t.Name, t.Queues-1, *o.queue)})
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
	var plan []*queueStart
	for _, q := range queues {
		r, known := ranges[q]
		s := &queueStart{queue: q, next: r.Next, described: known, hasOffset: true}
		switch {
		case o.offset != nil:
			if known && (*o.offset < r.Earliest || *o.offset > r.Next) {
				e, l := r.Earliest, r.Next
				return nil, apiError(&sdk.Error{Code: wire.CodeOffsetOutOfRange, Earliest: &e, Latest: &l,
					Message: fmt.Sprintf("offset %d is outside the stored range [%d, %d] of %s/%d", *o.offset, e, l, t.Name, q)})
			}
			s.start, s.offset = sdk.AtOffset(*o.offset), *o.offset
		case o.fromTime != "":
			tm, _ := time.Parse(time.RFC3339Nano, o.fromTime) // checked by o.check
			s.start, s.hasOffset = sdk.AtTime(tm), false
		case o.fromEnd:
			// The offset, so that --follow goes on from there.
			s.start, s.offset, s.hasOffset = sdk.AtOffset(r.Next), r.Next, known
			if !known {
				s.start = sdk.AtEnd()
			}
		default:
			s.start, s.offset, s.hasOffset = sdk.AtStart(), r.Earliest, known
		}
		plan = append(plan, s)
	}
	return plan, nil
}

// consumer prints a topic's messages: the queues one after the other until
// each is caught up, then, with --follow, all of them at once as messages
// arrive.
type consumer struct {
	a       *app
	o       *consumeOpts
	brokers []string
	topic   string
	out     *bufio.Writer
	printed int64
}

// full reports whether --count messages were printed.
func (c *consumer) full() bool { return c.o.count > 0 && c.printed >= c.o.count }

func (c *consumer) run(ctx context.Context, plan []*queueStart) error {
	for _, s := range plan {
		if c.full() {
			return nil
		}
		if s.readAll() {
			continue // nothing to read now; --follow waits for it below
		}
		if err := c.catchUp(ctx, s); err != nil {
			return err
		}
	}
	if c.full() || !c.o.follow && c.o.count == 0 {
		return nil
	}
	// --follow, or --count not reached yet: every queue at once, long
	// polling, from where the catch-up left it.
	starts := map[int]sdk.Start{}
	for _, s := range plan {
		starts[s.queue] = s.start
	}
	sc, err := c.newConsumer(starts)
	if err != nil {
		return err
	}
	defer sc.Close()
	for !c.full() {
		recs, err := pollIdle(ctx, sc, c.o.follow, c.a.timeout)
		if perr := c.print(recs, nil); perr != nil {
			return perr
		}
		if err != nil {
			return c.a.countErr(ctx, err, c.topic, c.printed, c.o.count)
		}
	}
	return nil
}

// pollIdle polls c; unless follow, it gives up when nothing arrives
// within idle.
func pollIdle(ctx context.Context, c *sdk.Consumer, follow bool, idle time.Duration) ([]sdk.Record, error) {
	if follow {
		return c.Poll(ctx)
	}
	pctx, cancel := context.WithTimeout(ctx, idle)
	defer cancel()
	return c.Poll(pctx)
}

// countErr explains a poll's err: when --count messages did not all
// arrive before nothing more came within --timeout, it says so.
func (a *app) countErr(ctx context.Context, err error, topic string, printed, count int64) error {
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("consume %s: %d of the %d messages asked for (--count) arrived; no more came within --timeout %v",
			topic, printed, count, a.timeout)
	}
	return err
}

func (c *consumer) newConsumer(starts map[int]sdk.Start) (*sdk.Consumer, error) {
	opts := []sdk.ConsumerOpt{sdk.WithAssignment(c.topic, starts), sdk.WithMaxWait(followWait), sdk.WithMinIndex(c.a.minIndex)}
	for _, o := range c.a.opts() {
		opts = append(opts, o)
	}
	return sdk.NewConsumer(c.brokers, opts...)
}

// catchUp prints one queue's messages from s until it has nothing more,
// then moves s to after the last message printed.
func (c *consumer) catchUp(ctx context.Context, s *queueStart) error {
	sc, err := c.newConsumer(map[int]sdk.Start{s.queue: s.start})
	if err != nil {
		return err
	}
	defer sc.Close()
	for !c.full() {
		pctx, cancel := context.WithTimeout(ctx, caughtUpPoll)
		recs, perr := sc.Poll(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := c.print(recs, s); err != nil {
			return err
		}
		if perr != nil && !errors.Is(perr, context.DeadlineExceeded) {
			return perr
		}
		// Caught up with the topic's description, or idle for a while:
		// ask whether anything is left.
		if (len(recs) == 0 || s.readAll()) && caughtUp(ctx, sc) {
			return nil
		}
	}
	return nil
}

// print writes records up to --count and flushes. With s, it moves s's
// start to after the last record printed.
func (c *consumer) print(recs []sdk.Record, s *queueStart) error {
	for i := range recs {
		if c.full() {
			break
		}
		r := &recs[i]
		m := fetchedMessage(r)
		if err := writeMessage(c.out, c.a.format, c.o.valuesOnly, r.Queue, &m); err != nil {
			return err
		}
		c.printed++
		if s != nil {
			s.start, s.offset, s.hasOffset = sdk.AtOffset(r.Offset+1), r.Offset+1, true
		}
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
