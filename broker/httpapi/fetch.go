package httpapi

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/wire"
)

// fetchRequest parses a fetch's path and query.
func (s *Server) fetchRequest(c *call) (service.FetchRequest, error) {
	req := service.FetchRequest{Topic: c.param("topic")}
	if err := s.admitResponse(c.ctx); err != nil {
		return req, err
	}
	var err error
	if req.Queue, err = c.queue(); err != nil {
		return req, err
	}
	off, err := queryInt(c.ctx, "offset", 0, 0, 1<<62)
	if err != nil {
		return req, err
	}
	req.Offset = uint64(off)
	w, err := queryInt(c.ctx, "wait_ms", 0, 0, s.cfg.MaxWait.Milliseconds())
	if err != nil {
		return req, err
	}
	req.Wait = time.Duration(w) * time.Millisecond
	mb, err := queryInt(c.ctx, "max_bytes", 1<<20, 1, 64<<20)
	if err != nil {
		return req, err
	}
	req.MaxBytes = int(mb)
	if ts := c.ctx.QueryArgs().Peek("timestamp"); ts != nil {
		if c.ctx.QueryArgs().Has("offset") {
			return req, service.Errorf(wire.CodeInvalidArgument, "give offset or timestamp, not both")
		}
		at, err := time.Parse(time.RFC3339Nano, string(ts))
		if err != nil {
			return req, service.Errorf(wire.CodeInvalidArgument, "timestamp must be RFC3339: %v", err)
		}
		req.Time = &at
	}
	req.MinIndex, err = minIndex(c)
	return req, err
}

// minIndex parses the optional min_index query parameter: a position
// token a write answered (0 when absent).
func minIndex(c *call) (uint64, error) {
	n, err := queryInt(c.ctx, "min_index", 0, 0, math.MaxInt64)
	return uint64(n), err
}

// fetchJSON is GET /v1/topics/{topic}/queues/{queue}/messages.
func (s *Server) fetchJSON(c *call) error {
	req, err := s.fetchRequest(c)
	if err != nil {
		return err
	}
	n, err := queryInt(c.ctx, "max_messages", 100, 1, 10000)
	if err != nil {
		return err
	}
	recs, err := s.svc.FetchRecords(c.cx, req, int(n)) // not c.ctx (c.cx): see requestContext
	if err != nil {
		return err
	}
	body, err := encodeFetchJSON(recs, req.MaxBytes)
	if err != nil {
		return err
	}
	c.ctx.SetStatusCode(http.StatusOK)
	c.ctx.SetContentType("application/json")
	s.respond(c.ctx, body)
	return nil
}

// fetchJSONTail bounds the bytes after the last message of a JSON fetch
// answer: `],"next_offset":` and 20 digits, `}` and a newline.
const fetchJSONTail = len(`],"next_offset":`) + 20 + 2

// encodeFetchJSON is the JSON answer (wire.FetchResponse, as json.Marshal
// writes it, and a newline) to a fetch of recs, cut so that the answer,
// measured after escaping, is at most maxBytes (issue 11: batch bounds):
// control bytes escape to 6 bytes and binary values grow by a third in
// base64, so the records' own size does not bound it. The first message
// is always included; next_offset is then the first one left out.
func encodeFetchJSON(recs *service.Records, maxBytes int) ([]byte, error) {
	next := recs.Next
	body := []byte(`{"messages":[`)
	for i := range recs.Records {
		r := &recs.Records[i]
		m, err := json.Marshal(wire.NewFetchedMessage(r.Offset, &r.Message))
		if err != nil {
			return nil, service.Errorf(wire.CodeInternal, "encode response: %v", err)
		}
		if i > 0 {
			if len(body)+1+len(m)+fetchJSONTail > maxBytes {
				next = r.Offset
				break
			}
			body = append(body, ',')
		}
		body = append(body, m...)
	}
	body = append(body, `],"next_offset":`...)
	body = strconv.AppendUint(body, next, 10)
	return append(body, "}\n"...), nil
}

// fetchBatches is GET .../batches: stored batches served as is, each
// framed with its base offset (see wire.FetchFrameHeader).
func (s *Server) fetchBatches(c *call) error {
	req, err := s.fetchRequest(c)
	if err != nil {
		return err
	}
	f, err := s.svc.Fetch(c.cx, req) // not c.ctx (c.cx): see requestContext
	if err != nil {
		return err
	}
	size := 0
	for _, b := range f.Batches {
		size += wire.FetchFrameHeader + len(b.Data)
	}
	body := make([]byte, 0, size)
	for _, b := range f.Batches {
		body = binary.LittleEndian.AppendUint64(body, b.BaseOffset)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(b.Data)))
		body = append(body, b.Data...)
	}
	c.ctx.Response.Header.Set("X-Next-Offset", strconv.FormatUint(f.Next, 10))
	c.ctx.SetContentType(wire.ContentType)
	c.ctx.SetStatusCode(http.StatusOK)
	s.respond(c.ctx, body)
	return nil
}

// requestContext: a fasthttp RequestCtx is a context.Context, but it is
// reset and reused for the connection's next request as soon as the
// handler returns, and it is done only when the server shuts down. A
// context derived from it whose timer fires after the handler returned
// reads a recycled request (a data race the race detector caught in a
// long-polled fetch). The service calls get c.cx, a context.Background()
// carrying the request's identity (issue 12); their waits are bounded by the request's own wait and the service's stop.
