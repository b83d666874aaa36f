package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/wire"
)

// Authentication and the admin API of issue 12 (docs/api.md,
// "Authentication and authorization").

// public routes need no credentials; clusterRoutes need describe on the
// cluster (the other routes' permissions are checked by the core). The
// cluster status and the leader are the clients' metadata: every
// authenticated principal may read them, as every Kafka client may ask
// for the broker list, since no client can find the leader without them.
var (
	publicRoutes  = map[string]bool{"healthz": true, "readyz": true}
	clusterRoutes = map[string]bool{"metrics": true}
)

// authenticate sets the call's identity from its credentials: a bearer
// token (Authorization: Bearer lmq_…) beats a verified client
// certificate (User:<CN> of the chain's leaf).
func (s *Server) authenticate(c *call) error {
	c.cx = context.Background()
	if publicRoutes[c.label] {
		return nil
	}
	token := ""
	if h := string(c.ctx.Request.Header.Peek("Authorization")); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
			return service.Unauthenticated("the Authorization header must be Bearer lmq_…")
		}
		token = strings.TrimSpace(cred)
	}
	cn := ""
	if st := c.ctx.TLSConnectionState(); st != nil && len(st.VerifiedChains) > 0 && len(st.VerifiedChains[0]) > 0 {
		cn = st.VerifiedChains[0][0].Subject.CommonName
	}
	id, err := s.svc.Authenticate(token, cn, c.ctx.RemoteAddr().String())
	if err != nil {
		return err
	}
	c.cx = service.WithIdentity(c.cx, id)
	if clusterRoutes[c.label] {
		return s.svc.Authorize(c.cx, wire.OpDescribe, wire.ResourceCluster, "")
	}
	return nil
}

// whoami is GET /v1/auth/whoami.
func (s *Server) whoami(c *call) error {
	w, err := s.svc.WhoAmI(c.cx)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, w)
}

// createToken is POST /v1/auth/tokens.
func (s *Server) createToken(c *call) error {
	var req wire.TokenRequest
	if err := decodeStrict(c.ctx.PostBody(), &req); err != nil {
		return err
	}
	info, err := s.svc.CreateToken(c.cx, req)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusCreated, info)
}

// listTokens is GET /v1/auth/tokens.
func (s *Server) listTokens(c *call) error {
	l, err := s.svc.ListTokens(c.cx)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, l)
}

// revokeToken is DELETE /v1/auth/tokens/{id}.
func (s *Server) revokeToken(c *call) error {
	id := c.param("id")
	if err := s.svc.RevokeToken(c.cx, id); err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, wire.TokenRevoked{ID: id, Revoked: true})
}

// listACLs is GET /v1/acls?principal=&resource_type=&resource=.
func (s *Server) listACLs(c *call) error {
	q := c.ctx.QueryArgs()
	acls, err := s.svc.ListACLs(c.cx, string(q.Peek("principal")), string(q.Peek("resource_type")), string(q.Peek("resource")))
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, wire.ACLList{ACLs: acls})
}

// addACL is POST /v1/acls: 201 when added, 200 when it was there.
func (s *Server) addACL(c *call) error {
	var a wire.ACL
	if err := decodeStrict(c.ctx.PostBody(), &a); err != nil {
		return err
	}
	added, err := s.svc.AddACL(c.cx, a)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if added {
		status = http.StatusCreated
	}
	return s.writeJSON(c.ctx, status, a)
}

// deleteACL is DELETE /v1/acls with an ACL body.
func (s *Server) deleteACL(c *call) error {
	var a wire.ACL
	if err := decodeStrict(c.ctx.PostBody(), &a); err != nil {
		return err
	}
	n, err := s.svc.DeleteACL(c.cx, a)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, wire.ACLDeleted{Deleted: n})
}

// principalParam is the {principal} parameter, path-unescaped (User%3Aalice).
func principalParam(c *call) (string, error) {
	p, err := url.PathUnescape(c.param("principal"))
	if err != nil {
		return "", service.Errorf(wire.CodeInvalidArgument, "malformed principal %q", c.param("principal"))
	}
	return p, nil
}

// principalGroups is GET /v1/auth/principals/{principal}/groups.
func (s *Server) principalGroups(c *call) error {
	p, err := principalParam(c)
	if err != nil {
		return err
	}
	g, err := s.svc.PrincipalGroups(c.cx, p)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, g)
}

// setPrincipalGroups is PUT /v1/auth/principals/{principal}/groups.
func (s *Server) setPrincipalGroups(c *call) error {
	p, err := principalParam(c)
	if err != nil {
		return err
	}
	var req wire.PrincipalGroups
	if err := decodeStrict(c.ctx.PostBody(), &req); err != nil {
		return err
	}
	if req.Principal != "" && req.Principal != p {
		return service.Errorf(wire.CodeInvalidArgument, "the body names principal %q, the path %q", req.Principal, p)
	}
	g, err := s.svc.SetPrincipalGroups(c.cx, p, req.Groups)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, g)
}
