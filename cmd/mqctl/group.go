package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	sdk "github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/wire"
)

func (a *app) groupCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("mqctl", "group: missing subcommand: list, describe or reset-offsets")
	}
	switch args[0] {
	case "list", "ls":
		return a.groupList(ctx, args[1:])
	case "describe":
		return a.groupDescribe(ctx, args[1:])
	case "reset-offsets":
		return a.groupReset(ctx, args[1:])
	}
	return usagef("mqctl", "group: unknown subcommand %q: want list, describe or reset-offsets", args[0])
}

func (a *app) groupList(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"group list", "", "Lists the consumer groups with their members and total lag."})
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	var list wire.GroupList
	err := a.call(ctx, func(ctx context.Context) (err error) {
		list.Groups, err = a.admin.ListGroups(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, list)
	}
	return writeGroupList(a.stdout, list.Groups)
}

func (a *app) groupDescribe(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"group describe", "GROUP",
		"Shows a consumer group: each queue's owner, committed offset, next offset and lag\n" +
			"(next minus committed; everything stored when nothing is committed), and the members."})
	pos, err := a.parse(fs, args, 1, "GROUP")
	if err != nil {
		return err
	}
	var info *wire.GroupInfo
	err = a.call(ctx, func(ctx context.Context) (err error) {
		info, err = a.admin.DescribeGroup(ctx, pos[0])
		return err
	})
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, info)
	}
	return writeGroup(a.stdout, info)
}

func (a *app) groupReset(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"group reset-offsets", "GROUP --topic T (--to-earliest | --to-latest | --to-time T | --to-offset N)",
		"Sets the committed offset of every queue of a topic for a group. The group must have\n" +
			"no members: stop its consumers first. Offsets outside a queue's stored range are\n" +
			"moved into it."})
	topic := fs.String("topic", "", "the `topic` whose offsets to reset (required)")
	earliest := fs.Bool("to-earliest", false, "to the earliest stored message")
	latest := fs.Bool("to-latest", false, "to after the newest message")
	at := fs.String("to-time", "", "to the first message at or after `T` (RFC3339)")
	var offset *uint64
	fs.Func("to-offset", "to offset `N` in every queue", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("offset must be a non-negative integer, not %q", s)
		}
		offset = &n
		return nil
	})
	pos, err := a.parse(fs, args, 1, "GROUP")
	if err != nil {
		return err
	}
	req := wire.ResetOffsetsRequest{Topic: *topic}
	n := 0
	if *earliest {
		req.To, n = "earliest", n+1
	}
	if *latest {
		req.To, n = "latest", n+1
	}
	if *at != "" {
		if _, err := time.Parse(time.RFC3339Nano, *at); err != nil {
			return usagef(fs.Name(), "--to-time must be RFC3339, e.g. 2025-01-02T15:04:05Z: %v", err)
		}
		req.To, req.Timestamp, n = "time", *at, n+1
	}
	if offset != nil {
		req.To, req.Offset, n = "offset", *offset, n+1
	}
	switch {
	case *topic == "":
		return usagef(fs.Name(), "group reset-offsets: --topic is required")
	case n != 1:
		return usagef(fs.Name(), "group reset-offsets: give exactly one of --to-earliest, --to-latest, --to-time and --to-offset")
	}
	var info *wire.GroupInfo
	err = a.call(ctx, func(ctx context.Context) (err error) {
		info, err = a.admin.ResetOffsets(ctx, pos[0], req)
		return err
	})
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, info)
	}
	fmt.Fprintf(a.stdout, "Reset the offsets of group %s in topic %s.\n\n", pos[0], *topic)
	return writeGroup(a.stdout, info)
}

// writeGroupList prints a table of groups, sorted by name.
func writeGroupList(w io.Writer, gs []wire.GroupInfo) error {
	if len(gs) == 0 {
		_, err := fmt.Fprintln(w, "No groups.")
		return err
	}
	gs = slices.Clone(gs)
	slices.SortFunc(gs, func(x, y wire.GroupInfo) int { return strings.Compare(x.Group, y.Group) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tGENERATION\tMEMBERS\tTOPICS\tLAG")
	for _, g := range gs {
		var topics []string
		var lag uint64
		for _, q := range g.Queues {
			if !slices.Contains(topics, q.Topic) {
				topics = append(topics, q.Topic)
			}
			lag += q.Lag
		}
		slices.Sort(topics)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\n", g.Group, g.Generation, len(g.Members), orDash(strings.Join(topics, ",")), lag)
	}
	return tw.Flush()
}

// writeGroup prints a group's queues and members.
func writeGroup(w io.Writer, g *wire.GroupInfo) error {
	members := "no members"
	switch len(g.Members) {
	case 0:
	case 1:
		members = "1 member"
	default:
		members = fmt.Sprintf("%d members", len(g.Members))
	}
	fmt.Fprintf(w, "Group %s, generation %d, %s.\n", g.Group, g.Generation, members)
	if len(g.Queues) > 0 {
		qs := slices.Clone(g.Queues)
		slices.SortFunc(qs, func(x, y wire.GroupQueue) int {
			if c := strings.Compare(x.Topic, y.Topic); c != 0 {
				return c
			}
			return x.Queue - y.Queue
		})
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tQUEUE\tOWNER\tCOMMITTED\tNEXT\tLAG")
		for _, q := range qs {
			committed := "-"
			if q.Committed != nil {
				committed = strconv.FormatUint(*q.Committed, 10)
			}
			owner := orDash(q.Owner)
			if q.Target != "" { // moving: the owner releases it, then the target owns it
				owner += "->" + q.Target
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\n", q.Topic, q.Queue, owner, committed, q.Next, q.Lag)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(g.Members) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tTOPICS\tSESSION TIMEOUT\tQUEUES")
	for _, m := range g.Members {
		id, queues := m.MemberID, formatAssignment(m.Assignment)
		if m.InstanceID != "" {
			id += " (" + m.InstanceID + ")"
		}
		if len(m.Revoking) > 0 {
			queues += ", releasing " + formatAssignment(m.Revoking)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, orDash(strings.Join(m.Topics, ",")), formatMs(m.SessionTimeoutMs), queues)
	}
	return tw.Flush()
}

// formatAssignment prints queues as "orders/0,3,6 payments/1", topics in
// name order; "-" for none.
func formatAssignment(qs []wire.TopicQueue) string {
	byTopic := map[string][]int{}
	var topics []string
	for _, q := range qs {
		if _, ok := byTopic[q.Topic]; !ok {
			topics = append(topics, q.Topic)
		}
		byTopic[q.Topic] = append(byTopic[q.Topic], q.Queue)
	}
	slices.Sort(topics)
	var parts []string
	for _, t := range topics {
		ns := byTopic[t]
		slices.Sort(ns)
		s := make([]string, len(ns))
		for i, n := range ns {
			s[i] = strconv.Itoa(n)
		}
		parts = append(parts, t+"/"+strings.Join(s, ","))
	}
	return orDash(strings.Join(parts, " "))
}

// groupPollWait is how long consume --group waits for records before it
// checks whether it has caught up (without --follow).
const groupPollWait = 250 * time.Millisecond

// consumeGroup is consume --group: it reads the topic as a member of the
// group through the SDK consumer, prints the records and commits each
// printed record's offset after printing it. Without --follow it stops
// once its queues have nothing left.
func (a *app) consumeGroup(ctx context.Context, topic string, o *consumeOpts) error {
	start := sdk.AtStart()
	switch {
	case o.fromEnd:
		start = sdk.AtEnd()
	case o.fromTime != "":
		t, _ := time.Parse(time.RFC3339Nano, o.fromTime) // checked by o.check
		start = sdk.AtTime(t)
	}
	opts := []sdk.ConsumerOpt{sdk.WithGroup(o.group, topic), sdk.WithAutoCommit(0), sdk.WithStartWhenNoCommit(start), sdk.WithMaxWait(followWait),
		sdk.WithMinIndex(a.minIndex)}
	for _, opt := range a.opts() { // the options every command passes to the SDK
		opts = append(opts, opt)
	}
	c, err := sdk.NewConsumer(a.brokerList, opts...)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(a.stdout)
	err = a.printGroup(ctx, c, topic, o, out)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // interrupted: the normal end of --follow
	}
	return err
}

func (a *app) printGroup(ctx context.Context, c *sdk.Consumer, topic string, o *consumeOpts, out *bufio.Writer) error {
	var printed int64
	progress := time.Now() // the last record, for --count's wait
	for o.count == 0 || printed < o.count {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if !o.follow {
			pctx, cancel = context.WithTimeout(ctx, groupPollWait)
		}
		recs, perr := c.Poll(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(recs) == 0 && errors.Is(perr, context.DeadlineExceeded) {
			switch {
			case o.count > 0 && time.Since(progress) >= a.timeout:
				// --count N waits for N as long as records keep coming.
				return a.countErr(ctx, perr, topic, printed, o.count)
			case o.count == 0 && caughtUp(ctx, c):
				return nil
			}
			continue
		}
		progress = time.Now()
		offsets := map[sdk.TopicQueue]uint64{}
		for i := range recs {
			if o.count > 0 && printed == o.count {
				break
			}
			r := &recs[i]
			m := fetchedMessage(r)
			if err := writeMessage(out, a.format, o.valuesOnly, r.Queue, &m); err != nil {
				return err
			}
			printed++
			offsets[sdk.TopicQueue{Topic: r.Topic, Queue: r.Queue}] = r.Offset + 1
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if err := a.commitPrinted(ctx, c, offsets); err != nil {
			return err
		}
		if perr != nil {
			return perr
		}
	}
	return nil
}

// commitPrinted commits the offsets after the records printed. Interrupted
// or not, the commit is made (within --timeout). A commit refused because
// the group rebalanced is not an error: the queue's new owner reads the
// records again.
func (a *app) commitPrinted(ctx context.Context, c *sdk.Consumer, offsets map[sdk.TopicQueue]uint64) error {
	if len(offsets) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	err := c.CommitOffsets(cctx, offsets)
	switch sdk.ErrorCode(err) {
	case wire.CodeIllegalGeneration, wire.CodeNotAssigned, wire.CodeUnknownMember:
		fmt.Fprintf(a.stderr, "mqctl: the group rebalanced; its new owner will print some of these records again (%v)\n", err)
		return nil
	}
	return err
}

// caughtUp reports whether every queue assigned to c has nothing after
// c's position.
func caughtUp(ctx context.Context, c *sdk.Consumer) bool {
	lag, err := c.Lag(ctx)
	if err != nil || len(lag) != len(c.Assignment()) {
		return false
	}
	for _, n := range lag {
		if n > 0 {
			return false
		}
	}
	return true
}

// fetchedMessage is a record as the JSON fetch shows it.
func fetchedMessage(r *sdk.Record) wire.FetchedMessage {
	return wire.NewFetchedMessage(r.Offset, &wire.Message{Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp})
}
