package httpapi

import (
	"context"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/broker/console"
	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/wire"
)

// route is one endpoint: a method ("*" for any) on a path pattern whose
// {name} segments are captured as parameters. leaderOnly routes are
// refused on a follower (service.RequireLeader) before their body is read;
// writes whose input the core validates first (so that a request that can
// never succeed gets its 4xx from any node) are not leaderOnly here, the
// core checks leadership after validating.
type route struct {
	method     string
	pattern    string
	name       string // metrics label
	leaderOnly bool
	handle     func(*call) error
}

// table is every endpoint the broker serves (docs/api.md).
func (s *Server) table() []route {
	return []route{
		{"*", "/healthz", "healthz", false, s.healthz},
		{"*", "/readyz", "readyz", false, s.readyz},
		{"*", "/metrics", "metrics", false, s.metrics},
		{"GET", "/v1/cluster", "cluster", false, s.clusterStatus},
		{"GET", "/v1/leader", "leader", false, s.leader},
		{"POST", "/v1/cluster/transfer-leadership", "transfer_leadership", false, s.transferLeadership},
		{"POST", "/v1/producers", "producers", true, s.initProducer},
		{"GET", "/v1/topics", "topics", false, s.listTopics},
		{"POST", "/v1/topics", "topics", false, s.createTopic},
		{"GET", "/v1/topics/{topic}", "topic", false, s.describeTopic},
		{"DELETE", "/v1/topics/{topic}", "topic", true, s.deleteTopic},
		{"POST", "/v1/produce", "produce_parts", true, s.produceParts},
		{"POST", "/v1/topics/{topic}/messages", "produce", true, s.produceJSON},
		{"GET", "/v1/topics/{topic}/queues/{queue}/messages", "fetch", false, s.fetchJSON},
		{"GET", "/v1/topics/{topic}/queues/{queue}/batches", "fetch_batches", false, s.fetchBatches},
		{"POST", "/v1/topics/{topic}/queues/{queue}/batches", "produce_batch", true, s.produceBatch},
		{"GET", "/v1/groups", "groups", false, s.listGroups},
		{"GET", "/v1/groups/{group}", "group", false, s.describeGroup},
		{"DELETE", "/v1/groups/{group}", "group", true, s.deleteGroup},
		{"POST", "/v1/groups/{group}/members", "group_join", true, s.joinGroup},
		{"DELETE", "/v1/groups/{group}/members/{member}", "group_leave", true, s.leaveGroup},
		{"POST", "/v1/groups/{group}/members/{member}/heartbeat", "group_heartbeat", true, s.heartbeat},
		{"POST", "/v1/groups/{group}/members/{member}/release", "group_release", true, s.release},
		{"POST", "/v1/groups/{group}/offsets", "group_commit", false, s.commitOffsets},
		{"POST", "/v1/groups/{group}/reset-offsets", "group_reset", false, s.resetOffsets},
		// issue 12: authentication and authorization (auth.go)
		{"GET", "/v1/auth/whoami", "whoami", false, s.whoami},
		{"GET", "/v1/auth/tokens", "tokens", false, s.listTokens},
		{"POST", "/v1/auth/tokens", "tokens", true, s.createToken},
		{"DELETE", "/v1/auth/tokens/{id}", "token", true, s.revokeToken},
		{"GET", "/v1/acls", "acls", false, s.listACLs},
		{"POST", "/v1/acls", "acls", true, s.addACL},
		{"DELETE", "/v1/acls", "acls", true, s.deleteACL},
		{"GET", "/v1/auth/principals/{principal}/groups", "principal_groups", false, s.principalGroups},
		{"PUT", "/v1/auth/principals/{principal}/groups", "principal_groups", true, s.setPrincipalGroups},
	}
}

// router matches requests to routes; each pattern is split into its
// segments once, not per request.
type router struct {
	routes []route
	segs   [][]string // routes[i]'s pattern, split at "/"
}

func newRouter(rs []route) *router {
	r := &router{routes: rs, segs: make([][]string, len(rs))}
	for i := range rs {
		r.segs[i] = strings.Split(strings.TrimPrefix(rs[i].pattern, "/"), "/")
	}
	return r
}

// match finds the route for method and path. With no route for the method
// but some for the path, it returns the methods the path allows and the
// metrics label of the path (see pathLabel).
func (r *router) match(method, path string) (rt *route, params map[string]string, allow []string, label string) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i := range r.routes {
		p, ok := matchSegments(r.segs[i], segs)
		if !ok {
			continue
		}
		if m := r.routes[i].method; m == method || m == "*" {
			return &r.routes[i], p, nil, ""
		}
		allow = append(allow, r.routes[i].method)
		if label == "" {
			label = pathLabel(&r.routes[i])
		}
	}
	return nil, nil, allow, label
}

// pathLabel names a path, whatever the method, in ledgermq_requests_total
// (docs/api.md): the route's name, except that the batches path, whose
// two methods have names of their own, is "batches".
func pathLabel(rt *route) string {
	if strings.HasSuffix(rt.pattern, "/batches") {
		return "batches"
	}
	return rt.name
}

// matchSegments matches a request path's segments against a pattern's,
// capturing its {name} segments (which must not be empty).
func matchSegments(ps, segs []string) (map[string]string, bool) {
	if len(ps) != len(segs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range ps {
		if name, ok := strings.CutPrefix(p, "{"); ok {
			if segs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[strings.TrimSuffix(name, "}")] = segs[i]
		} else if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

// call is one request being served.
type call struct {
	ctx    *fasthttp.RequestCtx
	cx     context.Context // the service calls' context: the request's identity (issue 12)
	params map[string]string
	label  string // metrics label, when not the route's name
}

func (c *call) param(name string) string { return c.params[name] }

// handle routes a request, answers errors in one way, and counts it.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set(wire.NodeHeader, s.svc.NodeID())
	method, path := string(ctx.Method()), string(ctx.Path())
	if console.Handles(path) { // static files: no data, no credentials
		s.con.Serve(ctx)
		s.reqs.observe("console", ctx.Response.StatusCode(), "")
		return
	}
	rt, params, allow, label := s.routes.match(method, path)
	name := "unknown"
	switch {
	case rt != nil:
		c := &call{ctx: ctx, params: params, label: rt.name}
		err := s.authenticate(c)
		if err == nil && rt.leaderOnly {
			err = s.svc.RequireLeader()
		}
		if err == nil {
			err = rt.handle(c)
		}
		if err != nil && !s.maybeForward(ctx, err) {
			s.writeError(ctx, err)
		}
		name = c.label
	case len(allow) > 0:
		name = label
		ctx.Response.Header.Set("Allow", strings.Join(allow, ", "))
		s.writeError(ctx, service.Errorf(wire.CodeMethodNotAllowed, "method %s not allowed; use %s", method, strings.Join(allow, ", ")))
	default:
		s.writeError(ctx, service.Errorf(wire.CodeNotFound, "no such endpoint: %s", path))
	}
	s.reqs.observe(name, ctx.Response.StatusCode(), string(ctx.Response.Header.Peek("X-Error-Code")))
}
