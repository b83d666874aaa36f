package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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
	var st wire.ClusterStatus
	raw, err := a.client.do(ctx, request{method: http.MethodGet, path: "/v1/cluster"}, &st)
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, raw)
	}
	return writeClusterStatus(a.stdout, &st)
}

// transferResponse is the answer of POST /v1/cluster/transfer-leadership.
type transferResponse struct {
	Leader    string `json:"leader"`
	LeaderAPI string `json:"leader_api"`
}

func (a *app) transferLeadership(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"cluster transfer-leadership", "[--to ID]",
		"Asks the leader to hand leadership over to another node, and waits for it."})
	to := fs.String("to", "", "the node `ID` to hand over to (default: the broker picks)")
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	var tr transferResponse
	raw, err := a.client.do(ctx, request{method: http.MethodPost, path: "/v1/cluster/transfer-leadership",
		body: wire.TransferRequest{To: *to}}, &tr)
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, raw)
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
func (a *app) awaitLeader(ctx context.Context) transferResponse {
	deadline := time.Now().Add(min(a.timeout, 5*time.Second))
	for {
		var st wire.ClusterStatus
		_, err := a.client.do(ctx, request{method: http.MethodGet, path: "/v1/cluster"}, &st)
		if err == nil && st.Leader != "" {
			return transferResponse{Leader: st.Leader, LeaderAPI: st.LeaderAPI}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return transferResponse{}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeClusterStatus prints the group summary and a table of its nodes.
func writeClusterStatus(w io.Writer, st *wire.ClusterStatus) error {
	var leader *wire.ClusterNode
	for i := range st.Nodes {
		n := &st.Nodes[i]
		if st.Leader != "" && n.ID == st.Leader || st.Leader == "" && strings.EqualFold(n.Role, "leader") && leader == nil {
			leader = n
		}
	}
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

	anyErr := false
	for _, n := range st.Nodes {
		anyErr = anyErr || n.Error != ""
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "NODE\tROLE\tTERM\tLAST\tCOMMIT\tAPPLIED\tLAG\tAPI ADDR\tREACHABLE"
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
		lag := "-"
		if n.Reachable && leader != nil && leader.Reachable {
			lag = strconv.FormatUint(leader.LastIndex-min(leader.LastIndex, n.LastIndex), 10)
		}
		reachable := "yes"
		if !n.Reachable {
			reachable = "no"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", n.ID, orDash(n.Role), num(n.Term), num(n.LastIndex),
			num(n.CommitIndex), num(n.AppliedIndex), lag, orDash(n.APIAddr), reachable)
		if anyErr {
			line += "\t" + orDash(n.Error)
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
