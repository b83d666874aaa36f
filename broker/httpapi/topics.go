package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// createTopic is POST /v1/topics.
func (s *Server) createTopic(c *call) error {
	var req wire.CreateTopicRequest
	if err := decodeStrict(c.ctx.PostBody(), &req); err != nil {
		return err
	}
	// An absent queues takes the default; an explicit 0 is refused (it
	// used to create the default 4 queues silently).
	var given struct {
		Queues *json.RawMessage `json:"queues"`
	}
	if json.Unmarshal(c.ctx.PostBody(), &given) == nil && given.Queues != nil && req.Queues == 0 {
		return service.Errorf(wire.CodeInvalidArgument, "queues must be 1..%d, got 0 (leave it out for the default of %d)", topics.MaxQueues, topics.DefaultQueues)
	}
	info, err := s.svc.CreateTopic(c.cx, topics.Config{Name: req.Name, Queues: req.Queues,
		RetentionMs: req.RetentionMs, RetentionBytes: req.RetentionBytes, MaxMessageBytes: req.MaxMessageBytes})
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusCreated, info)
}

// deleteTopic is DELETE /v1/topics/{topic}.
func (s *Server) deleteTopic(c *call) error {
	name := c.param("topic")
	if err := s.svc.DeleteTopic(c.cx, name); err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, map[string]string{"deleted": name})
}

// listTopics is GET /v1/topics; ?queues=true adds every topic's
// queue_info.
func (s *Server) listTopics(c *call) error {
	queues := false
	if v := c.ctx.QueryArgs().Peek("queues"); v != nil {
		b, err := strconv.ParseBool(string(v))
		if err != nil {
			return service.Errorf(wire.CodeInvalidArgument, "queues must be true or false, got %q", v)
		}
		queues = b
	}
	return s.writeJSON(c.ctx, http.StatusOK, wire.TopicList{Topics: s.svc.ListTopicsQueues(c.cx, queues)})
}

// describeTopic is GET /v1/topics/{topic}.
func (s *Server) describeTopic(c *call) error {
	mi, err := minIndex(c)
	if err != nil {
		return err
	}
	w, err := queryInt(c.ctx, "wait_ms", 0, 0, s.cfg.MaxWait.Milliseconds())
	if err != nil {
		return err
	}
	info, err := s.svc.DescribeTopicAt(c.cx, c.param("topic"), mi, time.Duration(w)*time.Millisecond)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, info)
}
