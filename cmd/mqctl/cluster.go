package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	sdk "github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/wire"
)

func (a *app) clusterCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("mqctl", "cluster: missing subcommand: status or transfer-leadership")
	}
	switch args[0] {
	case "status":
		return a.clusterStatus(ctx, args[1:])
	case "transfer-leadership":
		return a.transferLeadership(ctx, args[1:])
	}
	return usagef("mqctl", "cluster: unknown subcommand %q: want status or transfer-leadership", args[0])
}

func (a *app) clusterStatus(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"cluster status", "",
		"Shows the broker group: each node's role, Raft term and log indexes, and its lag\n" +
			"(the leader's last index minus the node's)."})
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	var st *wire.ClusterStatus
	err := a.call(ctx, func(ctx context.Context) (err error) {
		st, err = a.admin.ClusterStatus(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, st)
	}
	return writeClusterStatus(a.stdout, st)
}

func (a *app) transferLeadership(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"cluster transfer-leadership", "[--to ID]",
		"Asks the leader to hand leadership over to another node, and waits for it."})
	to := fs.String("to", "", "the node `ID` to hand over to (default: the broker picks)")
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	var tr *sdk.TransferResult
	err := a.call(ctx, func(ctx context.Context) (err error) {
		tr, err = a.admin.TransferLeadership(ctx, *to)
		return err
	})
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, tr)
	}
	if tr.Leader == "" {
		tr = a.awaitLeader(ctx)
	}
	switch {
	case tr.Leader == "":
		fmt.Fprintln(a.stdout, "Leadership transfer done; no new leader is known yet.")
	case tr.LeaderAPI != "":
		fmt.Fprintf(a.stdout, "Leadership transferred: the leader is now %s (%s).\n", tr.Leader, tr.LeaderAPI)
	default:
		fmt.Fprintf(a.stdout, "Leadership transferred: the leader is now %s.\n", tr.Leader)
	}
	return nil
}

// awaitLeader asks the group for its leader until one is known, for a few
// seconds at most.
func (a *app) awaitLeader(ctx context.Context) *sdk.TransferResult {
	ctx, cancel := context.WithTimeout(ctx, min(a.timeout, 5*time.Second))
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := a.admin.ClusterStatus(ctx)
		if err == nil && st.Leader != "" {
			return &sdk.TransferResult{Leader: st.Leader, LeaderAPI: st.LeaderAPI}
		}
		select {
		case <-ctx.Done():
			return &sdk.TransferResult{}
		case <-tick.C:
		}
	}
}

// writeClusterStatus prints the group summary and a table of its nodes.
func writeClusterStatus(w io.Writer, st *wire.ClusterStatus) error {
	leader := leaderNode(st)
	leaderName := "none"
	switch {
	case st.Leader != "" && st.LeaderAPI != "":
		leaderName = st.Leader + " (" + st.LeaderAPI + ")"
	case st.Leader != "":
		leaderName = st.Leader
	case leader != nil:
		leaderName = leader.ID
	}
	fmt.Fprintf(w, "Group %d, term %d, leader %s; answered by %s.\n\n", st.GroupID, st.Term, leaderName, st.AnsweredBy)

	anyErr, anyKafka := false, false
	for _, n := range st.Nodes {
		anyErr = anyErr || n.Error != "" || n.DiskError != ""
		anyKafka = anyKafka || n.KafkaAddr != ""
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// AGE: how old a row's figures are. The answering node's are current;
	// the others' come from reports its background loop collects twice a
	// second, so right after a write they may trail the answering node's.
	header := "NODE\tROLE\tTERM\tLAST\tCOMMIT\tAPPLIED\tLAG\tAGE\tAPI ADDR\tREACHABLE"
	if anyKafka { // the Kafka listener's address, when the nodes have one
		header = strings.Replace(header, "\tREACHABLE", "\tKAFKA ADDR\tREACHABLE", 1)
	}
	if anyErr {
		header += "\tERROR"
	}
	fmt.Fprintln(tw, header)
	for i := range st.Nodes {
		n := &st.Nodes[i]
		num := func(v uint64) string {
			if !n.Reachable {
				return "-"
			}
			return strconv.FormatUint(v, 10)
		}
		lag := nodeLag(leader, n)
		reachable := "yes"
		if !n.Reachable {
			reachable = "no"
		}
		age := "-"
		if n.StatusAgeMs != nil {
			age = (time.Duration(*n.StatusAgeMs) * time.Millisecond).String()
		}
		cols := []string{n.ID, orDash(n.Role), num(n.Term), num(n.LastIndex), num(n.CommitIndex), num(n.AppliedIndex), lag, age, orDash(n.APIAddr)}
		if anyKafka {
			cols = append(cols, orDash(n.KafkaAddr))
		}
		line := strings.Join(append(cols, reachable), "\t")
		if anyErr {
			msg := n.Error
			if n.DiskError != "" { // the member stopped its Raft: it must be restarted
				msg = "commit log failed: " + n.DiskError
			}
			line += "\t" + orDash(msg)
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// leaderNode is the group's leader among st's nodes (the one st names, else
// the first reporting the leader role), nil if none.
func leaderNode(st *wire.ClusterStatus) *wire.ClusterNode {
	var leader *wire.ClusterNode
	for i := range st.Nodes {
		n := &st.Nodes[i]
		if st.Leader != "" && n.ID == st.Leader || st.Leader == "" && strings.EqualFold(n.Role, "leader") && leader == nil {
			leader = n
		}
	}
	return leader
}

// nodeLag is the leader's last index minus n's, "-" when either is not
// reachable.
func nodeLag(leader, n *wire.ClusterNode) string {
	if !n.Reachable || leader == nil || !leader.Reachable {
		return "-"
	}
	return strconv.FormatUint(leader.LastIndex-min(leader.LastIndex, n.LastIndex), 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
