package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// clusterStatus is GET /v1/cluster.
func (s *Server) clusterStatus(c *call) error {
	return s.writeJSON(c.ctx, http.StatusOK, s.svc.ClusterStatus())
}

// leader is GET /v1/leader.
func (s *Server) leader(c *call) error {
	return s.writeJSON(c.ctx, http.StatusOK, s.svc.LeaderView())
}

// transferLeadership is POST /v1/cluster/transfer-leadership.
func (s *Server) transferLeadership(c *call) error {
	var req wire.TransferRequest
	if len(c.ctx.PostBody()) > 0 {
		if err := decodeStrict(c.ctx.PostBody(), &req); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(c.cx, 10*time.Second)
	defer cancel()
	l, err := s.svc.TransferLeadership(ctx, req.To)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, map[string]string{"leader": l.ID, "leader_api": l.API})
}

// healthz is GET /healthz: the process serves requests.
func (s *Server) healthz(c *call) error {
	c.ctx.SetStatusCode(http.StatusOK)
	c.ctx.SetBodyString("ok\n")
	return nil
}

// readyz is GET /readyz: see service.Ready.
func (s *Server) readyz(c *call) error {
	if err := s.svc.Ready(); err != nil {
		return err
	}
	c.ctx.SetStatusCode(http.StatusOK)
	c.ctx.SetBodyString("ready\n")
	return nil
}
