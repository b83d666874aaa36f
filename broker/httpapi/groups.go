package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/wire"
)

func membership(group string, m service.Membership) wire.Membership {
	ms := m.SessionTimeout.Milliseconds()
	return wire.Membership{Group: group, MemberID: m.MemberID, Generation: m.Generation,
		Assignment: service.WireQueues(m.Assignment), HeartbeatIntervalMs: ms / 3, SessionTimeoutMs: ms}
}

// joinGroup is POST /v1/groups/{group}/members.
func (s *Server) joinGroup(c *call) error {
	var req wire.JoinGroupRequest
	if err := decodeStrict(c.ctx.PostBody(), &req); err != nil {
		return err
	}
	g := c.param("group")
	m, err := s.svc.JoinGroup(context.Background(), g, req.MemberID, req.Topics, time.Duration(req.SessionTimeoutMs)*time.Millisecond)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, membership(g, m))
}

// heartbeat is POST /v1/groups/{group}/members/{member}/heartbeat.
func (s *Server) heartbeat(c *call) error {
	g := c.param("group")
	m, err := s.svc.Heartbeat(g, c.param("member"))
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, membership(g, m))
}

// leaveGroup is DELETE /v1/groups/{group}/members/{member}.
func (s *Server) leaveGroup(c *call) error {
	member := c.param("member")
	if err := s.svc.LeaveGroup(context.Background(), c.param("group"), member); err != nil {
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
	if err := s.svc.CommitOffsets(context.Background(), cmd); err != nil {
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
	info, err := s.svc.ResetOffsets(context.Background(), c.param("group"), req.Topic, to)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, info)
}

// listGroups is GET /v1/groups.
func (s *Server) listGroups(c *call) error {
	return s.writeJSON(c.ctx, http.StatusOK, wire.GroupList{Groups: s.svc.ListGroups()})
}

// describeGroup is GET /v1/groups/{group}.
func (s *Server) describeGroup(c *call) error {
	info, err := s.svc.DescribeGroup(c.param("group"))
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, info)
}
