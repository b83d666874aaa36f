package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Forwarding. librdkafka asks any broker it is connected to (at first the
// bootstrap one) for an idempotent producer id, and connects to the
// partition leaders only once it has one; Kafka lets any broker answer.
// Here only the Raft leader can propose the id, so a follower forwards the
// request to the leader's Kafka listener, with the client's SASL/PLAIN
// token when it authenticated with one. Over TLS, or for a client
// authenticated by certificate, a follower answers NOT_COORDINATOR (the
// client retries; clients that ask the partition leader are unaffected).

var errNoForward = errors.New("kafka: cannot forward to the leader")

// forward sends req to the Kafka listener at addr and returns its answer.
func (s *Server) forward(ctx context.Context, addr string, req kmsg.Request, token string) (kmsg.Response, error) {
	if s.cfg.TLS || addr == "" {
		return nil, errNoForward
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kafka: forward to %s: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	fc := &forwardConn{c: c}
	if token != "" {
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Mechanism = "PLAIN"
		if _, err := fc.roundTrip(hs, 1); err != nil {
			return nil, err
		}
		au := kmsg.NewPtrSASLAuthenticateRequest()
		au.SASLAuthBytes = []byte("\x00forwarded\x00" + token)
		r, err := fc.roundTrip(au, 1)
		if err != nil {
			return nil, err
		}
		if r.(*kmsg.SASLAuthenticateResponse).ErrorCode != 0 {
			return nil, fmt.Errorf("kafka: forward to %s: SASL refused", addr)
		}
	}
	return fc.roundTrip(req, req.GetVersion())
}

type forwardConn struct {
	c    net.Conn
	corr int32
}

func (f *forwardConn) roundTrip(req kmsg.Request, v int16) (kmsg.Response, error) {
	req.SetVersion(v)
	f.corr++
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(v))
	b = binary.BigEndian.AppendUint32(b, uint32(f.corr))
	b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	if _, err := f.c.Write(b); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(f.c, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return nil, fmt.Errorf("kafka: forwarded answer of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(f.c, body); err != nil {
		return nil, err
	}
	if int32(binary.BigEndian.Uint32(body)) != f.corr {
		return nil, errors.New("kafka: forwarded answer with another correlation id")
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(v)
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		if _, err := skipTags(body); err != nil {
			return nil, err
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("kafka: forwarded answer: %w", err)
	}
	return resp, nil
}
