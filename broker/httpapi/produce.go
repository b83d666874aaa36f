package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/wire"
)

// produceJSON is POST /v1/topics/{topic}/messages.
func (s *Server) produceJSON(c *call) error {
	msgs, err := decodeProduce(c.ctx.PostBody())
	if err != nil {
		return err
	}
	stored, err := s.svc.Produce(context.Background(), c.param("topic"), msgs)
	if err != nil {
		return err
	}
	out := wire.ProduceResponse{Results: make([]wire.ProduceResult, len(stored))}
	for i, st := range stored {
		out.Results[i] = wire.ProduceResult{Queue: st.Queue, Offset: st.BaseOffset}
		out.Index = st.Index // one entry: the same for all
	}
	return s.writeJSON(c.ctx, http.StatusOK, out)
}

// decodeProduce decodes a JSON produce body into the core's messages;
// fuzzed with the planner by FuzzPlanProduce.
func decodeProduce(body []byte) ([]service.Message, error) {
	var req wire.ProduceRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	msgs := make([]service.Message, len(req.Messages))
	for i, pm := range req.Messages {
		m := &msgs[i]
		switch {
		case pm.Value != nil && pm.ValueBase64 != nil:
			return nil, service.Errorf(wire.CodeInvalidArgument, "message %d has both value and value_base64", i)
		case pm.Value != nil:
			m.Value = []byte(*pm.Value)
		case pm.ValueBase64 != nil:
			v, err := base64.StdEncoding.DecodeString(*pm.ValueBase64)
			if err != nil {
				return nil, service.Errorf(wire.CodeInvalidArgument, "message %d: value_base64: %v", i, err)
			}
			m.Value = v
		default:
			m.Value = []byte{}
		}
		if pm.Key != nil {
			m.Key = []byte(*pm.Key)
		}
		for k, v := range pm.Headers {
			m.Headers = append(m.Headers, wire.Header{Key: k, Value: []byte(v)})
		}
		m.Queue = pm.Queue
	}
	return msgs, nil
}

// produceBatch is POST /v1/topics/{topic}/queues/{queue}/batches: one
// binary batch, stored exactly as received.
func (s *Server) produceBatch(c *call) error {
	ct, _, _ := strings.Cut(string(c.ctx.Request.Header.ContentType()), ";")
	if ct = strings.TrimSpace(ct); ct != wire.ContentType {
		return service.Errorf(wire.CodeUnsupportedMedia, "content type must be %s, got %q", wire.ContentType, ct)
	}
	q, err := c.queue()
	if err != nil {
		return err
	}
	batch := append([]byte(nil), c.ctx.PostBody()...) // the request buffer is reused after the handler
	st, err := s.svc.ProduceBatch(context.Background(), c.param("topic"), q, batch)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, wire.BatchProduceResponse{Queue: st.Queue, BaseOffset: st.BaseOffset, Count: st.Count, Duplicate: st.Duplicate, Index: st.Index})
}

// initProducer is POST /v1/producers: a new idempotent producer id.
func (s *Server) initProducer(c *call) error {
	id, err := s.svc.InitProducer(context.Background())
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, wire.InitProducerResponse{ProducerID: id})
}
