package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// mqctl top: a live view of the group in the terminal, like top(1): the
// nodes, each topic's message rate and size, each consumer group's lag and
// consumption rate, redrawn every --interval. Rates are the change of the
// queues' next offsets (in) and of the groups' committed offsets (out)
// between two samples, so the first frame has none.

// topSample is one round of the figures a frame shows.
type topSample struct {
	at      time.Time
	cluster *wire.ClusterStatus
	topics  []wire.TopicInfo
	groups  []wire.GroupInfo
}

// topicTotals sums a topic's queues: messages stored, next offsets, bytes.
func topicTotals(t wire.TopicInfo) (stored, next, bytes uint64) {
	for _, q := range t.QueueInfo {
		stored += q.Next - q.Earliest
		next += q.Next
		bytes += q.Bytes
	}
	return
}

// groupTotals sums a group's lag and committed offsets.
func groupTotals(g wire.GroupInfo) (lag, committed uint64) {
	for _, q := range g.Queues {
		lag += q.Lag
		if q.Committed != nil {
			committed += *q.Committed
		}
	}
	return
}

func (a *app) topCmd(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"top", "[--interval D] [--count N] [--group G]... [--topic T]...",
		"Shows the group live: nodes, topics with their message rates and sizes, consumer\n" +
			"groups with their lag and consumption rates; redrawn every --interval until\n" +
			"interrupted (or --count frames). Rates need two samples: the first frame has none."})
	interval := fs.Duration("interval", 2*time.Second, "time between frames")
	count := fs.Int("count", 0, "frames to show, then exit (0: until interrupted)")
	var groups, topics multiFlag
	fs.Var(&groups, "group", "show only this consumer `group` (repeatable)")
	fs.Var(&topics, "topic", "show only this `topic` and groups' lag on it (repeatable)")
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	if *interval < 100*time.Millisecond {
		return usagef("mqctl top", "top: --interval must be at least 100ms")
	}
	if *count < 0 {
		return usagef("mqctl top", "top: --count must not be negative")
	}
	defer a.admin.Close()
	clear := isTerminalWriter(a.stdout) && !a.json()
	var prev *topSample
	for frame := 0; *count == 0 || frame < *count; frame++ {
		if frame > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(*interval):
			}
		}
		s, err := a.topSample(ctx)
		if err != nil {
			return err
		}
		s.topics = slices.DeleteFunc(s.topics, func(t wire.TopicInfo) bool { return len(topics) > 0 && !slices.Contains(topics, t.Name) })
		s.groups = slices.DeleteFunc(s.groups, func(g wire.GroupInfo) bool { return len(groups) > 0 && !slices.Contains(groups, g.Group) })
		if len(topics) > 0 {
			for i := range s.groups {
				s.groups[i].Queues = slices.DeleteFunc(slices.Clone(s.groups[i].Queues), func(q wire.GroupQueue) bool { return !slices.Contains(topics, q.Topic) })
			}
		}
		if a.json() {
			if err := printJSON(a.stdout, topJSON(s, prev)); err != nil {
				return err
			}
		} else {
			if clear {
				fmt.Fprint(a.stdout, "\x1b[H\x1b[2J")
			} else if frame > 0 {
				fmt.Fprintln(a.stdout)
			}
			if err := writeTop(a.stdout, s, prev, *interval); err != nil {
				return err
			}
		}
		prev = s
	}
	return nil
}

// isTerminalWriter is whether w is a terminal (frames then redraw).
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// topSample reads the cluster, topics and groups once.
func (a *app) topSample(ctx context.Context) (*topSample, error) {
	s := &topSample{at: time.Now()}
	err := a.call(ctx, func(ctx context.Context) (err error) {
		if s.cluster, err = a.admin.ClusterStatus(ctx); err != nil {
			return err
		}
		if s.topics, err = a.admin.ListTopicsQueues(ctx); err != nil {
			return err
		}
		s.groups, err = a.admin.ListGroups(ctx)
		return err
	})
	return s, err
}

// rate is the per-second change from before to now over d; ok is false
// without a previous sample (or when the counter went back: a reset).
func rate(now, before uint64, d time.Duration) (float64, bool) {
	if d <= 0 || now < before {
		return 0, false
	}
	return float64(now-before) / d.Seconds(), true
}

// topRates returns each topic's in-rate and each group's out-rate since
// prev (absent: no rate).
func topRates(s, prev *topSample) (in, out map[string]float64) {
	in, out = map[string]float64{}, map[string]float64{}
	if prev == nil {
		return in, out
	}
	d := s.at.Sub(prev.at)
	before := map[string]uint64{}
	for _, t := range prev.topics {
		_, next, _ := topicTotals(t)
		before[t.Name] = next
	}
	for _, t := range s.topics {
		_, next, _ := topicTotals(t)
		if b, ok := before[t.Name]; ok {
			if r, ok := rate(next, b, d); ok {
				in[t.Name] = r
			}
		}
	}
	clear(before)
	for _, g := range prev.groups {
		_, c := groupTotals(g)
		before[g.Group] = c
	}
	for _, g := range s.groups {
		_, c := groupTotals(g)
		if b, ok := before[g.Group]; ok {
			if r, ok := rate(c, b, d); ok {
				out[g.Group] = r
			}
		}
	}
	return in, out
}

func fmtRate(r float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.1f", r)
}

// writeTop draws one frame.
func writeTop(w io.Writer, s, prev *topSample, interval time.Duration) error {
	cs := s.cluster
	up := 0
	for _, n := range cs.Nodes {
		if n.Reachable {
			up++
		}
	}
	leader := cs.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "LedgerMQ group %d · leader %s · term %d · %d/%d nodes up   %s (every %s)\n\n",
		cs.GroupID, leader, cs.Term, up, len(cs.Nodes), s.at.Format("15:04:05"), interval)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tTERM\tCOMMIT\tAPPLIED\tLAG\tREACHABLE")
	lead := leaderNode(cs)
	for i := range cs.Nodes {
		n := &cs.Nodes[i]
		if !n.Reachable {
			fmt.Fprintf(tw, "%s\tunreachable\t-\t-\t-\t-\tno\n", n.ID)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\tyes\n", n.ID, n.Role, n.Term, n.CommitIndex, n.AppliedIndex, nodeLag(lead, n))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	in, out := topRates(s, prev)

	fmt.Fprintln(w)
	if len(s.topics) == 0 {
		fmt.Fprintln(w, "No topics.")
	} else {
		topics := slices.Clone(s.topics)
		sort.Slice(topics, func(i, j int) bool { return topics[i].Name < topics[j].Name })
		fmt.Fprintln(tw, "TOPIC\tQUEUES\tMESSAGES\tIN/S\tSIZE")
		for _, t := range topics {
			stored, _, bytes := topicTotals(t)
			r, ok := in[t.Name]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", t.Name, t.Queues, stored, fmtRate(r, ok), formatBytes(int64(bytes)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	if len(s.groups) == 0 {
		fmt.Fprintln(w, "No consumer groups.")
		return nil
	}
	groups := slices.Clone(s.groups)
	sort.Slice(groups, func(i, j int) bool { return groups[i].Group < groups[j].Group })
	fmt.Fprintln(tw, "GROUP\tMEMBERS\tTOPICS\tLAG\tOUT/S")
	for _, g := range groups {
		lag, _ := groupTotals(g)
		var ts []string
		for _, q := range g.Queues {
			if !slices.Contains(ts, q.Topic) {
				ts = append(ts, q.Topic)
			}
		}
		r, ok := out[g.Group]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", g.Group, len(g.Members), strings.Join(ts, ","), lag, fmtRate(r, ok))
	}
	return tw.Flush()
}

// topJSONFrame is a frame for --format json: one JSON object per frame.
type topJSONFrame struct {
	Time    string              `json:"time"`
	Cluster *wire.ClusterStatus `json:"cluster"`
	Topics  []topJSONTopic      `json:"topics"`
	Groups  []topJSONGroup      `json:"groups"`
}

type topJSONTopic struct {
	Name        string   `json:"name"`
	Queues      int      `json:"queues"`
	Messages    uint64   `json:"messages"`
	Bytes       uint64   `json:"bytes"`
	InPerSecond *float64 `json:"in_per_second,omitempty"`
}

type topJSONGroup struct {
	Group        string   `json:"group"`
	Members      int      `json:"members"`
	Lag          uint64   `json:"lag"`
	OutPerSecond *float64 `json:"out_per_second,omitempty"`
}

func topJSON(s, prev *topSample) topJSONFrame {
	in, out := topRates(s, prev)
	f := topJSONFrame{Time: s.at.UTC().Format(time.RFC3339Nano), Cluster: s.cluster, Topics: []topJSONTopic{}, Groups: []topJSONGroup{}}
	for _, t := range s.topics {
		stored, _, bytes := topicTotals(t)
		jt := topJSONTopic{Name: t.Name, Queues: t.Queues, Messages: stored, Bytes: bytes}
		if r, ok := in[t.Name]; ok {
			jt.InPerSecond = &r
		}
		f.Topics = append(f.Topics, jt)
	}
	for _, g := range s.groups {
		lag, _ := groupTotals(g)
		jg := topJSONGroup{Group: g.Group, Members: len(g.Members), Lag: lag}
		if r, ok := out[g.Group]; ok {
			jg.OutPerSecond = &r
		}
		f.Groups = append(f.Groups, jg)
	}
	return f
}

// multiFlag is a repeatable string flag; a value may also list several,
// comma-separated.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	*m = append(*m, splitList(v)...)
	return nil
}
