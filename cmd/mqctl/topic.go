package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

func (a *app) topicCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("mqctl", "topic: missing subcommand: create, list, describe or delete")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "create":
		return a.topicCreate(ctx, args)
	case "list", "ls":
		return a.topicList(ctx, args)
	case "describe":
		return a.topicDescribe(ctx, args)
	case "delete", "rm":
		return a.topicDelete(ctx, args)
	}
	return usagef("mqctl", "topic: unknown subcommand %q: want create, list, describe or delete", sub)
}

func (a *app) topicCreate(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"topic create", "NAME [flags]",
		"Creates a topic. Settings left out take the broker's defaults."})
	queues := fs.Int("queues", 0, "the number `N` of queues (default: the broker's)")
	retention := fs.String("retention", "", "keep messages for `D`, e.g. 24h, 90m or 7d (default: the broker's)")
	retBytes := fs.Int64("retention-bytes", 0, "keep at most `N` bytes (default: unlimited)")
	maxMsg := fs.Int("max-message-bytes", 0, "largest message, `N` bytes (default: the broker's)")
	pos, err := a.parse(fs, args, 1, "topic NAME")
	if err != nil {
		return err
	}
	req := wire.CreateTopicRequest{Name: pos[0], Queues: *queues, RetentionBytes: *retBytes, MaxMessageBytes: *maxMsg}
	if *queues < 0 || *retBytes < 0 || *maxMsg < 0 {
		return usagef(fs.Name(), "--queues, --retention-bytes and --max-message-bytes must not be negative")
	}
	if *retention != "" {
		d, err := parseRetention(*retention)
		if err != nil {
			return usagef(fs.Name(), "--retention: %v", err)
		}
		req.RetentionMs = d.Milliseconds()
	}
	var info *wire.TopicInfo
	err = a.call(ctx, func(ctx context.Context) (err error) {
		info, err = a.admin.CreateTopic(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	a.wrote(info.Index)
	if a.json() {
		return printJSON(a.stdout, info)
	}
	fmt.Fprintf(a.stdout, "Created topic %s.\n", info.Name)
	return writeTopic(a.stdout, info)
}

func (a *app) topicList(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"topic list", "", "Lists the topics."})
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	var list wire.TopicList
	err := a.call(ctx, func(ctx context.Context) (err error) {
		list.Topics, err = a.admin.ListTopics(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, list)
	}
	return writeTopicList(a.stdout, list.Topics)
}

func (a *app) topicDescribe(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"topic describe", "NAME", "Shows a topic's settings and each queue's offset range."})
	pos, err := a.parse(fs, args, 1, "topic NAME")
	if err != nil {
		return err
	}
	info, err := a.describeTopic(ctx, pos[0])
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, info)
	}
	if err := writeTopic(a.stdout, info); err != nil {
		return err
	}
	if len(info.QueueInfo) == 0 {
		return nil
	}
	fmt.Fprintln(a.stdout)
	return writeQueues(a.stdout, info.QueueInfo)
}

func (a *app) topicDelete(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"topic delete", "NAME", "Deletes a topic and its messages."})
	pos, err := a.parse(fs, args, 1, "topic NAME")
	if err != nil {
		return err
	}
	if err := a.call(ctx, func(ctx context.Context) error { return a.admin.DeleteTopic(ctx, pos[0]) }); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, map[string]string{"deleted": pos[0]}) // the API's answer
	}
	fmt.Fprintf(a.stdout, "Deleted topic %s.\n", pos[0])
	return nil
}

// describeTopic is GET /v1/topics/{topic} through the SDK.
func (a *app) describeTopic(ctx context.Context, topic string) (info *wire.TopicInfo, err error) {
	err = a.call(ctx, func(ctx context.Context) (err error) {
		info, err = a.admin.DescribeTopicAt(ctx, topic, a.minIndex)
		return err
	})
	return info, err
}

// writeTopic prints a topic's settings.
func writeTopic(w io.Writer, t *wire.TopicInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Topic:\t%s\n", t.Name)
	fmt.Fprintf(tw, "Queues:\t%d\n", t.Queues)
	fmt.Fprintf(tw, "Retention:\t%s\n", formatMs(t.RetentionMs))
	fmt.Fprintf(tw, "Retention bytes:\t%s\n", formatLimit(t.RetentionBytes))
	fmt.Fprintf(tw, "Max message bytes:\t%s\n", formatBytes(int64(t.MaxMessageBytes)))
	if len(t.QueueInfo) > 0 {
		var n uint64
		for _, q := range t.QueueInfo {
			n += q.Next - min(q.Earliest, q.Next)
		}
		fmt.Fprintf(tw, "Messages:\t%d\n", n)
	}
	return tw.Flush()
}

// writeQueues prints a table of queue offset ranges.
func writeQueues(w io.Writer, qs []wire.QueueInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tEARLIEST\tNEXT\tMESSAGES")
	for _, q := range qs {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", q.Queue, q.Earliest, q.Next, q.Next-min(q.Earliest, q.Next))
	}
	return tw.Flush()
}

// writeTopicList prints a table of topics, sorted by name.
func writeTopicList(w io.Writer, ts []wire.TopicInfo) error {
	if len(ts) == 0 {
		_, err := fmt.Fprintln(w, "No topics.")
		return err
	}
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(x, y wire.TopicInfo) int { return strings.Compare(x.Name, y.Name) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tQUEUES\tRETENTION\tRETENTION BYTES\tMAX MESSAGE BYTES")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", t.Name, t.Queues, formatMs(t.RetentionMs),
			formatLimit(t.RetentionBytes), formatBytes(int64(t.MaxMessageBytes)))
	}
	return tw.Flush()
}

// parseRetention parses a Go duration with an optional leading day count:
// "24h", "90m", "7d", "1d12h".
func parseRetention(s string) (time.Duration, error) {
	var days time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || n > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("invalid duration %q (want e.g. 24h, 90m, 7d)", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, fmt.Errorf("invalid duration %q (want e.g. 24h, 90m, 7d)", s)
		}
	}
	total := days + d
	if d < 0 || total < days {
		return 0, fmt.Errorf("invalid duration %q: must be positive", s)
	}
	if total < time.Millisecond {
		return 0, fmt.Errorf("invalid duration %q: must be at least 1ms", s)
	}
	return total, nil
}

// formatMs prints milliseconds as a short duration: "7d", "1d12h", "90m".
func formatMs(ms int64) string {
	if ms <= 0 {
		return strconv.FormatInt(ms, 10)
	}
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return strconv.FormatInt(ms, 10) + "ms"
	}
	d := time.Duration(ms) * time.Millisecond
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	s := ""
	if days > 0 {
		s = strconv.FormatInt(int64(days), 10) + "d"
		if d == 0 {
			return s
		}
	}
	t := d.String() // "24h0m0s", "1h30m0s", "1m30s", "1.5s"
	if strings.HasSuffix(t, "m0s") {
		t = t[:len(t)-2]
	}
	if strings.HasSuffix(t, "h0m") {
		t = t[:len(t)-2]
	}
	return s + t
}

// formatLimit prints a byte limit where 0 means none.
func formatLimit(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return formatBytes(n)
}

// formatBytes prints a byte count with a binary unit: "512 B", "1.5 MiB".
func formatBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	const units = "KMGTPE"
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i:i+1] + "iB"
}
