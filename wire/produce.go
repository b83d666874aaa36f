package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A produce request carries batches for several (topic, queue) pairs in
// one HTTP request, POST /v1/produce, the way a Kafka ProduceRequest
// carries a batch per partition: one request and one Raft entry for many
// queues, so small batches of many queues cost the client, the network and
// the log one round each, not one per queue (issue 13). Body layout,
// little endian, Content-Type ProduceContentType:
//
//	version u8 (1) | parts u16 | parts × (topicLen u16 | topic | queue u32 | batchLen u32 | batch)
//
// Each batch is a batch as POST /v1/topics/{topic}/queues/{queue}/batches
// takes it. The answer is a ProducePartsResponse with one result per part,
// in order: parts are refused or stored independently.

// ProduceContentType is the Content-Type of a produce request.
const ProduceContentType = "application/vnd.ledgermq.produce"

// ProduceVersion is the version byte of the produce request layout.
const ProduceVersion = 1

// MaxProduceParts bounds the parts of one produce request.
const MaxProduceParts = 1024

// producePartHeader is the fixed bytes of a part besides its topic and
// batch; produceHeader those of the request.
const (
	producePartHeader = 10
	produceHeader     = 3
)

// ProduceRequestHeader is the size of a produce request before its parts.
const ProduceRequestHeader = produceHeader

// MaxProduceTopicLen bounds a part's topic name (topic names have at most
// 249 bytes; a longer one is refused before anything is looked up).
const MaxProduceTopicLen = 255

// ProducePart is one batch of a produce request.
type ProducePart struct {
	Topic string
	Queue int
	Batch []byte
}

// ProducePartSize is the encoded size of a part with this topic and batch.
func ProducePartSize(topic string, batchLen int) int {
	return producePartHeader + len(topic) + batchLen
}

// AppendProduceRequest appends the encoding of parts (at most
// MaxProduceParts, topics at most 65,535 bytes) to dst.
func AppendProduceRequest(dst []byte, parts []ProducePart) ([]byte, error) {
	if len(parts) > MaxProduceParts {
		return dst, fmt.Errorf("ledgermq: %d parts in one produce request (at most %d)", len(parts), MaxProduceParts)
	}
	n := produceHeader
	for _, p := range parts {
		if len(p.Topic) > 0xFFFF || p.Queue < 0 || p.Queue > 0xFFFFFFFF || int64(len(p.Batch)) > 0xFFFFFFFF {
			return dst, fmt.Errorf("ledgermq: produce part %q/%d cannot be encoded", p.Topic, p.Queue)
		}
		n += ProducePartSize(p.Topic, len(p.Batch))
	}
	b := dst
	if cap(b)-len(b) < n {
		b = make([]byte, len(dst), len(dst)+n)
		copy(b, dst)
	}
	b = append(b, ProduceVersion)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(parts)))
	for _, p := range parts {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.Topic)))
		b = append(b, p.Topic...)
		b = binary.LittleEndian.AppendUint32(b, uint32(p.Queue))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Batch)))
		b = append(b, p.Batch...)
	}
	return b, nil
}

// ErrBadProduceRequest is wrapped by every DecodeProduceRequest error.
var ErrBadProduceRequest = errors.New("malformed produce request")

// DecodeProduceRequest decodes a produce request. The parts' batches alias
// b; nothing else is allocated beyond the parts slice and the topic
// strings. It checks the layout only: the batches are validated by whoever
// stores them.
func DecodeProduceRequest(b []byte) ([]ProducePart, error) {
	if len(b) < produceHeader {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadProduceRequest, len(b))
	}
	if b[0] != ProduceVersion {
		return nil, fmt.Errorf("%w: version %d (this broker reads %d)", ErrBadProduceRequest, b[0], ProduceVersion)
	}
	n := int(binary.LittleEndian.Uint16(b[1:]))
	if n == 0 {
		return nil, fmt.Errorf("%w: no parts", ErrBadProduceRequest)
	}
	if n > MaxProduceParts {
		return nil, fmt.Errorf("%w: %d parts (at most %d)", ErrBadProduceRequest, n, MaxProduceParts)
	}
	b = b[produceHeader:]
	// Every part takes at least producePartHeader bytes: a count larger
	// than the body can hold is refused before anything is allocated.
	if n > len(b)/producePartHeader {
		return nil, fmt.Errorf("%w: %d parts in %d bytes", ErrBadProduceRequest, n, len(b))
	}
	parts := make([]ProducePart, n)
	for i := range parts {
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: part %d truncated", ErrBadProduceRequest, i)
		}
		tl := int(binary.LittleEndian.Uint16(b))
		if tl > MaxProduceTopicLen {
			return nil, fmt.Errorf("%w: part %d: topic name of %d bytes (at most %d)", ErrBadProduceRequest, i, tl, MaxProduceTopicLen)
		}
		if len(b) < producePartHeader+tl {
			return nil, fmt.Errorf("%w: part %d truncated", ErrBadProduceRequest, i)
		}
		q := binary.LittleEndian.Uint32(b[2+tl:])
		bl := uint64(binary.LittleEndian.Uint32(b[6+tl:]))
		rest := b[producePartHeader+tl:]
		if bl > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: part %d: batch of %d bytes, %d left", ErrBadProduceRequest, i, bl, len(rest))
		}
		if q > 1<<31-1 {
			return nil, fmt.Errorf("%w: part %d: queue %d", ErrBadProduceRequest, i, q)
		}
		parts[i] = ProducePart{Topic: string(b[2 : 2+tl]), Queue: int(q), Batch: rest[:bl:bl]}
		b = rest[bl:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadProduceRequest, len(b))
	}
	return parts, nil
}

// ProducePartsResponse answers a produce request: one result per part,
// in the request's order.
type ProducePartsResponse struct {
	Results []ProducePartResult `json:"results"`
}

// ProducePartResult is the outcome of one part: the batch's offsets, as a
// BatchProduceResponse, or Error with the HTTP Status the single-batch
// endpoint would have answered it with.
type ProducePartResult struct {
	BatchProduceResponse
	Status int       `json:"status,omitempty"`
	Error  *APIError `json:"error,omitempty"`
}
