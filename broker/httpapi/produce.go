package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
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
	stored, err := s.svc.Produce(c.cx, c.param("topic"), msgs)
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
// fuzzed with the planner by FuzzPlanProduce. It streams the messages
// array and refuses more than service.MaxProduceMessages messages
// (REQUEST_TOO_LARGE) or more than wire.MaxHeaders headers in a message
// (MESSAGE_TOO_LARGE) as soon as it meets them, so the work and memory
// spent before validation stay bounded whatever the body (issue 11: batch
// bounds). It is as strict as decoding into wire.ProduceRequest was, and
// stricter in two corner cases: a repeated "messages" key and a trailing
// } or ] are refused.
func decodeProduce(body []byte) ([]service.Message, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(err)
	}
	var msgs []service.Message
	seen := false
	if tok != nil { // a null body is an empty request, as with Unmarshal
		if tok != json.Delim('{') {
			return nil, malformed(fmt.Errorf("the body must be an object, not %v", tok))
		}
		for dec.More() {
			if tok, err = dec.Token(); err != nil {
				return nil, malformed(err)
			}
			if key, _ := tok.(string); !strings.EqualFold(key, "messages") {
				return nil, malformed(fmt.Errorf("json: unknown field %q", key))
			}
			if seen {
				return nil, malformed(errors.New(`"messages" given twice`))
			}
			seen = true
			if msgs, err = decodeMessages(dec); err != nil {
				return nil, err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing brace
			return nil, malformed(err)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, service.Errorf(wire.CodeInvalidArgument, "malformed JSON body: trailing data")
	}
	return msgs, nil
}

func malformed(err error) error {
	return service.Errorf(wire.CodeInvalidArgument, "malformed JSON body: %v", err)
}

// decodeMessages decodes the value of "messages": null or an array of
// at most service.MaxProduceMessages messages.
func decodeMessages(dec *json.Decoder) ([]service.Message, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(err)
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('[') {
		return nil, malformed(fmt.Errorf("messages must be an array, not %v", tok))
	}
	var msgs []service.Message
	for i := 0; dec.More(); i++ {
		if i == service.MaxProduceMessages {
			return nil, service.Errorf(wire.CodeRequestTooLarge, "more than %d messages in one request (the limit); send fewer per request, or binary batches",
				service.MaxProduceMessages)
		}
		pm, err := decodeMessage(dec)
		if err != nil {
			var ae *wire.APIError
			if errors.As(err, &ae) {
				return nil, service.Errorf(ae.Code, "message %d: %s", i, ae.Message)
			}
			return nil, malformed(err)
		}
		m, err := pm.message(i)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, malformed(err)
	}
	return msgs, nil
}

// produceMessage is a decoded wire.ProduceMessage.
type produceMessage struct {
	Key, Value, ValueBase64 *string
	Headers                 []wire.Header
	Queue                   *int
}

// decodeMessage decodes one wire.ProduceMessage (or null) token by token,
// as strictly as Unmarshal with unknown fields disallowed (field names
// match case-insensitively, the last of repeated fields wins), so that
// only scalar values are ever buffered whole.
func decodeMessage(dec *json.Decoder) (produceMessage, error) {
	var pm produceMessage
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return pm, err
	}
	if tok != json.Delim('{') {
		return pm, fmt.Errorf("a message must be an object, not %v", tok)
	}
	for dec.More() {
		if tok, err = dec.Token(); err != nil {
			return pm, err
		}
		key, _ := tok.(string)
		switch {
		case strings.EqualFold(key, "key"):
			pm.Key = nil
			err = dec.Decode(&pm.Key)
		case strings.EqualFold(key, "value"):
			pm.Value = nil
			err = dec.Decode(&pm.Value)
		case strings.EqualFold(key, "value_base64"):
			pm.ValueBase64 = nil
			err = dec.Decode(&pm.ValueBase64)
		case strings.EqualFold(key, "queue"):
			pm.Queue = nil
			err = dec.Decode(&pm.Queue)
		case strings.EqualFold(key, "headers"):
			pm.Headers, err = decodeHeaders(dec, pm.Headers)
		default:
			err = fmt.Errorf("json: unknown field %q", key)
		}
		if err != nil {
			return pm, err
		}
	}
	_, err = dec.Token() // the closing brace
	return pm, err
}

// decodeHeaders decodes a JSON object of string values into hs as
// Unmarshal does into a map[string]string (entries are added to those
// already there, a repeated key keeps its last value, null values are "",
// a null object clears them) but refuses more than wire.MaxHeaders
// entries, repeated keys included, as soon as it meets one.
func decodeHeaders(dec *json.Decoder, hs []wire.Header) ([]wire.Header, error) {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("headers must be an object of strings, not %v", tok)
	}
	out := hs
	if out == nil {
		out = []wire.Header{}
	}
	for n := len(out); dec.More(); n++ {
		if n == wire.MaxHeaders {
			return nil, service.Errorf(wire.CodeMessageTooLarge, "more than %d headers (the limit per message)", wire.MaxHeaders)
		}
		if tok, err = dec.Token(); err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		var v *string
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("header %q: %w", k, err)
		}
		val := []byte{}
		if v != nil {
			val = []byte(*v)
		}
		if j := slices.IndexFunc(out, func(h wire.Header) bool { return h.Key == k }); j >= 0 {
			out[j].Value = val
			continue
		}
		out = append(out, wire.Header{Key: k, Value: val})
	}
	_, err = dec.Token() // the closing brace
	return out, err
}

func (pm *produceMessage) message(i int) (service.Message, error) {
	var m service.Message
	switch {
	case pm.Value != nil && pm.ValueBase64 != nil:
		return m, service.Errorf(wire.CodeInvalidArgument, "message %d has both value and value_base64", i)
	case pm.Value != nil:
		m.Value = []byte(*pm.Value)
	case pm.ValueBase64 != nil:
		v, err := base64.StdEncoding.DecodeString(*pm.ValueBase64)
		if err != nil {
			return m, service.Errorf(wire.CodeInvalidArgument, "message %d: value_base64: %v", i, err)
		}
		m.Value = v
	default:
		m.Value = []byte{}
	}
	if pm.Key != nil {
		m.Key = []byte(*pm.Key)
	}
	m.Headers = pm.Headers
	m.Queue = pm.Queue
	return m, nil
}

// produceBatch is POST /v1/topics/{topic}/queues/{queue}/batches: one
// binary batch, stored exactly as received.
func (s *Server) produceBatch(c *call) error {
	if err := c.requireContentType(wire.ContentType); err != nil {
		return err
	}
	q, err := c.queue()
	if err != nil {
		return err
	}
	batch := append([]byte(nil), c.ctx.PostBody()...) // the request buffer is reused after the handler
	st, err := s.svc.ProduceBatch(c.cx, c.param("topic"), q, batch)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, wire.BatchProduceResponse{Queue: st.Queue, BaseOffset: st.BaseOffset, Count: st.Count, Duplicate: st.Duplicate, Index: st.Index})
}

// produceParts is POST /v1/produce: batches for several queues in one
// request (wire.DecodeProduceRequest), stored as one log entry; one result
// per part, each with the status the single-batch endpoint would answer.
func (s *Server) produceParts(c *call) error {
	if err := c.requireContentType(wire.ProduceContentType); err != nil {
		return err
	}
	body := append([]byte(nil), c.ctx.PostBody()...) // the request buffer is reused after the handler; the batches alias body
	parts, err := wire.DecodeProduceRequest(body)
	if err != nil {
		return service.Errorf(wire.CodeInvalidArgument, "%v", err)
	}
	res, err := s.svc.ProduceBatches(c.cx, parts)
	if err != nil {
		return err
	}
	out := wire.ProducePartsResponse{Results: make([]wire.ProducePartResult, len(res))}
	for i, r := range res {
		if r.Err != nil {
			ae := s.svc.AsError(r.Err)
			out.Results[i] = wire.ProducePartResult{BatchProduceResponse: wire.BatchProduceResponse{Queue: parts[i].Queue}, Status: statusFor(ae.Code), Error: ae}
			continue
		}
		st := r.Stored
		out.Results[i] = wire.ProducePartResult{BatchProduceResponse: wire.BatchProduceResponse{Queue: st.Queue, BaseOffset: st.BaseOffset, Count: st.Count, Duplicate: st.Duplicate, Index: st.Index}}
	}
	return s.writeJSON(c.ctx, http.StatusOK, out)
}

// requireContentType refuses a body whose media type (parameters after a
// ";" ignored) is not want.
func (c *call) requireContentType(want string) error {
	ct, _, _ := strings.Cut(string(c.ctx.Request.Header.ContentType()), ";")
	if ct = strings.TrimSpace(ct); ct != want {
		return service.Errorf(wire.CodeUnsupportedMedia, "content type must be %s, got %q", want, ct)
	}
	return nil
}

// initProducer is POST /v1/producers: a new idempotent producer id.
func (s *Server) initProducer(c *call) error {
	id, err := s.svc.InitProducer(c.cx)
	if err != nil {
		return err
	}
	return s.writeJSON(c.ctx, http.StatusOK, wire.InitProducerResponse{ProducerID: id})
}
