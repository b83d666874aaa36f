package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/promql/parser"
)

// TestGrafanaDashboard: deploy/grafana/ledgermq.json decodes strictly as a
// Grafana dashboard (the Grafana Foundation SDK's types, generated from
// Grafana's own schema: an unknown or mistyped field anywhere, panels and
// Prometheus queries included, fails), every query is valid PromQL, and
// every metric it reads is one a real 3-node group exposes.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana/ledgermq.json")
	if err != nil {
		t.Fatal(err)
	}
	plugins.RegisterDefaultPlugins() // panel options and Prometheus queries decode by their types
	d, err := strictDashboard(raw)
	if err != nil {
		t.Fatalf("the dashboard does not match Grafana's schema: %v", err)
	}
	// The check is not vacuous: a misspelt panel field fails it.
	bad := strings.Replace(string(raw), `"gridPos"`, `"gridPosition"`, 1)
	if _, err := strictDashboard([]byte(bad)); err == nil {
		t.Fatal("a dashboard with an unknown panel field passed the schema check")
	}
	if d.Uid == nil || *d.Uid == "" || d.Title == nil || *d.Title == "" {
		t.Fatal("the dashboard needs a uid and a title to import")
	}

	// A group with a consumer group, a produce, a fetch and a failed
	// request, so that every conditional series exists somewhere.
	bs := startGroup(t, 3, nil)
	l := leaderOf(t, bs)
	base := "http://" + l.Addr()
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/topics", `{"name":"dash","queues":2}`},
		{"POST", "/v1/topics/dash/messages", `{"messages":[{"value":"a"},{"value":"b"}]}`},
		{"POST", "/v1/groups/dg/reset-offsets", `{"topic":"dash","to":"earliest"}`},
		{"GET", "/v1/topics/dash/queues/0/messages?offset=0", ""},
		{"GET", "/v1/topics/dash/queues/1/messages?offset=0", ""},
	} {
		if r := call(t, c.method, base+c.path, "", []byte(c.body)); r.status >= 300 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	call(t, "GET", base+"/v1/topics/nosuch", "", nil) // a request error series
	exposed := map[string]bool{}
	waitFor(t, 5*time.Second, "follower series on the leader", func() bool {
		_, ok := scrape(t, l.Addr())["ledgermq_raft_follower_match_index"]
		return ok
	})
	for _, b := range bs {
		for name := range scrape(t, b.Addr()) {
			exposed[name] = true
		}
	}

	p := parser.NewParser(parser.Options{})
	vars := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*", "$group", ".*")
	queries := 0
	for _, panel := range panelsOf(t, raw) {
		for _, tg := range panel.Targets {
			queries++
			where := fmt.Sprintf("panel %q query %s", panel.Title, tg.RefID)
			if panel.Datasource.UID != "${datasource}" || tg.Datasource.UID != "${datasource}" {
				t.Errorf("%s: datasource %q/%q, want the ${datasource} variable", where, panel.Datasource.UID, tg.Datasource.UID)
			}
			e, err := p.ParseExpr(vars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("%s: %q is not PromQL: %v", where, tg.Expr, err)
				continue
			}
			parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				name := vs.Name
				if strings.HasSuffix(name, "_bucket") && exposed[strings.TrimSuffix(name, "_bucket")] {
					return nil
				}
				if !exposed[name] {
					t.Errorf("%s reads %s, which no node exposes", where, name)
				}
				return nil
			})
		}
	}
	if queries < 15 {
		t.Fatalf("only %d queries in the dashboard", queries)
	}
}

// strictDashboard decodes raw as a Grafana dashboard, failing on anything
// the schema does not have or requires and raw lacks.
func strictDashboard(raw []byte) (*dashboard.Dashboard, error) {
	var d dashboard.Dashboard
	err := d.UnmarshalJSONStrict(raw)
	// The SDK returns its error list as an error even when it is empty.
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		err = nil
	}
	return &d, err
}

type dashPanel struct {
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // a collapsed row's
}

// panelsOf returns the dashboard's panels, those inside rows included.
func panelsOf(t *testing.T, raw []byte) []dashPanel {
	var d struct {
		Panels []dashPanel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var out []dashPanel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}
