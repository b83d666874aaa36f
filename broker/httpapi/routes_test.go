package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestRouteTable(t *testing.T) {
	s := &Server{}
	r := newRouter(s.table())
	for _, tc := range []struct {
		method, path string
		name         string // "" when no route matches
		leaderOnly   bool
		params       map[string]string
		allow        string
	}{
		{"GET", "/healthz", "healthz", false, nil, ""},
		{"POST", "/metrics", "metrics", false, nil, ""}, // any method
		{"GET", "/v1/topics", "topics", false, nil, ""},
		{"POST", "/v1/topics", "topics", false, nil, ""}, // validated before the leader check
		{"PUT", "/v1/topics", "", false, nil, "GET, POST"},
		{"GET", "/v1/topics/orders", "topic", false, map[string]string{"topic": "orders"}, ""},
		{"DELETE", "/v1/topics/orders", "topic", true, map[string]string{"topic": "orders"}, ""},
		{"POST", "/v1/topics/orders/messages", "produce", true, map[string]string{"topic": "orders"}, ""},
		{"GET", "/v1/topics/orders/messages", "", false, nil, "POST"},
		{"GET", "/v1/topics/o/queues/3/messages", "fetch", false, map[string]string{"topic": "o", "queue": "3"}, ""},
		{"GET", "/v1/topics/o/queues/3/batches", "fetch_batches", false, map[string]string{"topic": "o", "queue": "3"}, ""},
		{"POST", "/v1/topics/o/queues/3/batches", "produce_batch", true, map[string]string{"topic": "o", "queue": "3"}, ""},
		{"DELETE", "/v1/topics/o/queues/3/batches", "", false, nil, "GET, POST"},
		{"POST", "/v1/groups/g/members", "group_join", true, map[string]string{"group": "g"}, ""},
		{"DELETE", "/v1/groups/g/members/m1", "group_leave", true, map[string]string{"group": "g", "member": "m1"}, ""},
		{"POST", "/v1/groups/g/members/m1/heartbeat", "group_heartbeat", true, map[string]string{"group": "g", "member": "m1"}, ""},
		{"POST", "/v1/groups/g/offsets", "group_commit", false, map[string]string{"group": "g"}, ""},
		{"POST", "/v1/cluster/transfer-leadership", "transfer_leadership", false, nil, ""},
		{"GET", "/v1/topics/", "", false, nil, ""}, // empty topic name
		{"GET", "/v1/topics//queues/1/messages", "", false, nil, ""},
		{"GET", "/v2/topics", "", false, nil, ""},
		{"GET", "/", "", false, nil, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rt, params, allow, _ := r.match(tc.method, tc.path)
			switch {
			case tc.name == "" && rt != nil:
				t.Fatalf("matched %s", rt.name)
			case tc.name != "" && (rt == nil || rt.name != tc.name || rt.leaderOnly != tc.leaderOnly):
				t.Fatalf("matched %+v, want %s (leader only %v)", rt, tc.name, tc.leaderOnly)
			case tc.name != "" && !reflect.DeepEqual(params, tc.params):
				t.Fatalf("params %v, want %v", params, tc.params)
			case strings.Join(allow, ", ") != tc.allow:
				t.Fatalf("allow %v, want %q", allow, tc.allow)
			}
		})
	}
}

// TestMethodNotAllowedLabels: a refused method is counted under the
// path's name, as docs/api.md lists the endpoint label.
func TestMethodNotAllowedLabels(t *testing.T) {
	r := newRouter((&Server{}).table())
	for path, want := range map[string]string{
		"/v1/topics": "topics", "/v1/topics/o": "topic", "/v1/topics/o/messages": "produce",
		"/v1/topics/o/queues/1/messages": "fetch", "/v1/topics/o/queues/1/batches": "batches",
		"/v1/groups/g/members/m/heartbeat": "group_heartbeat", "/v1/cluster": "cluster",
	} {
		if _, _, allow, label := r.match("PATCH", path); len(allow) == 0 || label != want {
			t.Errorf("PATCH %s: allow %v, label %q; want %q", path, allow, label, want)
		}
	}
}

// TestEveryCodeHasAStatus: each stable code wire declares (every string
// constant named Code* in its sources) maps to an HTTP status, so a new
// code cannot silently become 500.
func TestEveryCodeHasAStatus(t *testing.T) {
	files, err := filepath.Glob("../../wire/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					code, _ := strconv.Unquote(lit.Value)
					n++
					if statusOf[code] == 0 {
						t.Errorf("code %s (wire.%s) has no HTTP status", code, name.Name)
					}
				}
			}
		}
	}
	if n < 25 {
		t.Fatalf("found only %d codes in wire's sources; the parse is wrong", n)
	}
}
