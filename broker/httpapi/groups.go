package httpapi

import (
	"net/http"
	"time"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/wire"
)

func membership(group string, m service.Membership) wire.Membership {
	ms := m.SessionTimeout.Milliseconds()
	out := wire.Membership{Group: group, MemberID: m.MemberID, Generation: m.Generation,
		Assignment: service.WireQueues(m.Assignment), HeartbeatIntervalMs: ms / 3, SessionTimeoutMs: ms}
	if len(m.Revoking) > 0 {
		out.Revoking = service.WireQueues(m.Revoking)
	}
	return out
}

// joinGroup is POST /v1/groups/{group}/members.
func (s *Server) joinGroup(c *call) error {
	var req wire.JoinGroupRequest
	if err := decodeStrict(c.ctx.PostBody(), &req); err != nil {
		return err
	}
	g := c.param("group")
	m, err := s.svc.JoinGroup(c.cx, g, service.JoinRequest{MemberID: req.MemberID, InstanceID: req.InstanceID,
		Topics: req.Topics, SessionTimeout: time.Duration(req.SessionTimeoutMs) * time.Millisecond})
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, membership(g, m))
}

// heartbeat is POST /v1/groups/{group}/members/{member}/heartbeat; the
// body (HeartbeatRequest) is optional.
func (s *Server) heartbeat(c *call) error {
	var req wire.HeartbeatRequest
	if body := c.ctx.PostBody(); len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
	}
	if req.WaitMs < 0 {
		return service.Errorf(wire.CodeInvalidArgument, "wait_ms must not be negative")
	}
	g := c.param("group")
	m, err := s.svc.Heartbeat(c.cx, g, c.param("member"), req.Generation, time.Duration(req.WaitMs)*time.Millisecond)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, membership(g, m))
}

// release is POST /v1/groups/{group}/members/{member}/release.
func (s *Server) release(c *call) error {
	var req wire.ReleaseRequest
	if err := decodeStrict(c.ctx.PostBody(), &req); err != nil {
		return err
	}
	cmd := consumer.ReleaseCmd{Group: c.param("group"), MemberID: c.param("member")}
	for _, q := range req.Queues {
		cmd.Queues = append(cmd.Queues, consumer.TQ{Topic: q.Topic, Queue: q.Queue})
	}
	for _, o := range req.Offsets {
		cmd.Offsets = append(cmd.Offsets, consumer.Offset{Topic: o.Topic, Queue: o.Queue, Offset: o.Offset})
	}
	m, err := s.svc.ReleaseQueues(c.cx, cmd)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, membership(cmd.Group, m))
}

// leaveGroup is DELETE /v1/groups/{group}/members/{member}.
func (s *Server) leaveGroup(c *call) error {
	member := c.param("member")
	if err := s.svc.LeaveGroup(c.cx, c.param("group"), member); err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, map[string]string{"left": member})
}

// commitOffsets is POST /v1/groups/{group}/offsets.
func (s *Server) commitOffsets(c *call) error {
	var req wire.CommitRequest
	if err := decodeStrict(c.ctx.PostBody(), &req); err != nil {
		return err
	}
	cmd := consumer.CommitCmd{Group: c.param("group"), MemberID: req.MemberID, Generation: req.Generation}
	for _, o := range req.Offsets {
		cmd.Offsets = append(cmd.Offsets, consumer.Offset{Topic: o.Topic, Queue: o.Queue, Offset: o.Offset})
	}
	if err := s.svc.CommitOffsets(c.cx, cmd); err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, map[string]int{"committed": len(req.Offsets)})
}

// resetOffsets is POST /v1/groups/{group}/reset-offsets.
func (s *Server) resetOffsets(c *call) error {
	var req wire.ResetOffsetsRequest
	if err := decodeStrict(c.ctx.PostBody(), &req); err != nil {
		return err
	}
	to := service.ResetTo{To: req.To, Offset: req.Offset}
	if req.To == "time" {
		at, err := time.Parse(time.RFC3339Nano, req.Timestamp)
		if err != nil {
			return service.Errorf(wire.CodeInvalidArgument, "timestamp must be RFC3339: %v", err)
		}
		to.Time = at
	}
	info, err := s.svc.ResetOffsets(c.cx, c.param("group"), req.Topic, to)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, info)
}

// listGroups is GET /v1/groups.
func (s *Server) listGroups(c *call) error {
	return s.writeJSON(c.ctx, http.StatusOK, wire.GroupList{Groups: s.svc.ListGroups(c.cx)})
}

// describeGroup is GET /v1/groups/{group}.
func (s *Server) describeGroup(c *call) error {
	info, err := s.svc.DescribeGroup(c.cx, c.param("group"))
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, info)
}

// deleteGroup is DELETE /v1/groups/{group}.
func (s *Server) deleteGroup(c *call) error {
	g := c.param("group")
	if err := s.svc.DeleteGroup(c.cx, g); err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, map[string]string{"deleted": g})
}
