package topics

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Config is a topic's configuration.
type Config struct {
	Name            string `json:"name"`
	Queues          int    `json:"queues"`
	RetentionMs     int64  `json:"retention_ms"`
	RetentionBytes  int64  `json:"retention_bytes"`
	MaxMessageBytes int    `json:"max_message_bytes"`
}

// Defaults for new topics.
const (
	DefaultQueues          = 4
	DefaultRetentionMs     = 7 * 24 * 3600 * 1000
	DefaultMaxMessageBytes = 1 << 20
	MaxQueues              = 1024
	MaxNameLen             = 249
)

// Normalize fills defaults and validates c.
func (c *Config) Normalize() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if c.Queues == 0 {
		c.Queues = DefaultQueues
	}
	if c.Queues < 1 || c.Queues > MaxQueues {
		return fmt.Errorf("%w: queues must be 1..%d, got %d", ErrInvalidArgument, MaxQueues, c.Queues)
	}
	if c.RetentionMs == 0 {
		c.RetentionMs = DefaultRetentionMs
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.RetentionMs < 0 || c.RetentionBytes < 0 || c.MaxMessageBytes < 1 || c.MaxMessageBytes > 64<<20 {
		return fmt.Errorf("%w: retention and max message size must be positive (max message size at most 64 MiB)", ErrInvalidArgument)
	}
	return nil
}

// ValidateName checks a topic name: 1-249 characters of [a-zA-Z0-9._-].
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("%w: topic name must be 1-%d characters", ErrInvalidArgument, MaxNameLen)
	}
	for _, r := range name {
		ok := r == '.' || r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("%w: topic name %q may only contain [a-zA-Z0-9._-]", ErrInvalidArgument, name)
		}
	}
	return nil
}

// Command payloads. The state machine's command registry (package fsm)
// frames each payload behind the command's code; these functions encode
// and decode the payload only. Decoders never panic and refuse trailing
// bytes.

// AppendCreate appends a create-topic payload: the config as JSON.
func AppendCreate(dst []byte, c Config) []byte {
	b, _ := json.Marshal(c)
	return append(dst, b...)
}

// DecodeCreate decodes a create-topic payload.
func DecodeCreate(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: create-topic: %w", ErrBadCommand, err)
	}
	return c, nil
}

// AppendDelete appends a delete-topic payload: the name.
func AppendDelete(dst []byte, name string) []byte { return append(dst, name...) }

// DecodeDelete decodes a delete-topic payload.
func DecodeDelete(b []byte) (string, error) { return string(b), nil }

// AppendInitProducer appends an init-producer payload: the leader's clock
// (Unix ms), which ages out idle producers deterministically.
func AppendInitProducer(dst []byte, timeMs int64) []byte {
	return binary.LittleEndian.AppendUint64(dst, uint64(timeMs))
}

// DecodeInitProducer decodes an init-producer payload.
func DecodeInitProducer(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: init-producer payload of %d bytes", ErrBadCommand, len(b))
	}
	return int64(binary.LittleEndian.Uint64(b)), nil
}

// Part is one batch of a produce command: the batch goes to one queue.
type Part struct {
	Topic string
	Queue int
	Batch []byte // a wire batch, stored as is
}

// ProduceCmd stores batches, one per part, as one log entry. TimeMs is
// the leader's clock when it proposed the command (Unix ms).
type ProduceCmd struct {
	TimeMs int64
	Parts  []Part
}

// Produce payload layout: time i64 | parts u16 | parts × (topicLen u16 |
// topic | queue u32 | batchLen u32 | batch).
const produceHeader = 10

// AppendProduce appends a produce payload.
func AppendProduce(dst []byte, c ProduceCmd) []byte {
	n := produceHeader
	for _, p := range c.Parts {
		n += 10 + len(p.Topic) + len(p.Batch)
	}
	b := dst
	if cap(b)-len(b) < n {
		b = make([]byte, len(dst), len(dst)+n)
		copy(b, dst)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(c.TimeMs))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(c.Parts)))
	for _, p := range c.Parts {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.Topic)))
		b = append(b, p.Topic...)
		b = binary.LittleEndian.AppendUint32(b, uint32(p.Queue))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Batch)))
		b = append(b, p.Batch...)
	}
	return b
}

// DecodeProduce decodes a produce payload. The parts' batches alias b.
func DecodeProduce(b []byte) (ProduceCmd, error) {
	if len(b) < produceHeader {
		return ProduceCmd{}, fmt.Errorf("%w: produce payload of %d bytes", ErrBadCommand, len(b))
	}
	c := ProduceCmd{TimeMs: int64(binary.LittleEndian.Uint64(b))}
	n := int(binary.LittleEndian.Uint16(b[8:]))
	b = b[produceHeader:]
	c.Parts = make([]Part, 0, min(n, 1024))
	for i := 0; i < n; i++ {
		p, rest, err := decodePart(b, i)
		if err != nil {
			return ProduceCmd{}, err
		}
		c.Parts = append(c.Parts, p)
		b = rest
	}
	if len(b) != 0 {
		return ProduceCmd{}, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(b))
	}
	return c, nil
}

func decodePart(b []byte, i int) (Part, []byte, error) {
	if len(b) < 2 {
		return Part{}, nil, fmt.Errorf("%w: truncated part %d", ErrBadCommand, i)
	}
	tl := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+tl+8 {
		return Part{}, nil, fmt.Errorf("%w: truncated part %d", ErrBadCommand, i)
	}
	p := Part{Topic: string(b[2 : 2+tl]), Queue: int(binary.LittleEndian.Uint32(b[2+tl:]))}
	bl := int(binary.LittleEndian.Uint32(b[6+tl:]))
	b = b[10+tl:]
	if bl > len(b) {
		return Part{}, nil, fmt.Errorf("%w: truncated batch in part %d", ErrBadCommand, i)
	}
	p.Batch = b[:bl:bl]
	return p, b[bl:], nil
}

// partAt returns part i of a produce payload without decoding the others'
// batches: the read path cuts one queue's batch out of a multi-queue
// entry.
func partAt(b []byte, i int) ([]byte, error) {
	if len(b) < produceHeader {
		return nil, fmt.Errorf("%w: produce payload of %d bytes", ErrBadCommand, len(b))
	}
	n := int(binary.LittleEndian.Uint16(b[8:]))
	if i >= n {
		return nil, fmt.Errorf("%w: part %d of %d", ErrBadCommand, i, n)
	}
	b = b[produceHeader:]
	for k := 0; ; k++ {
		p, rest, err := decodePart(b, k)
		if err != nil {
			return nil, err
		}
		if k == i {
			return p.Batch, nil
		}
		b = rest
	}
}

// CheckNewName checks the name of a topic (kind "topic") or consumer group
// (kind "group") about to be created: ValidateName's rules, and neither
// "." nor "..". Only requests are checked with it: applying a logged
// create keeps ValidateName, so logs of earlier versions replay as they
// did.
func CheckNewName(kind, name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s name must be 1-%d characters", ErrInvalidArgument, kind, MaxNameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: %s name must not be %q", ErrInvalidArgument, kind, name)
	}
	for _, r := range name {
		ok := r == '.' || r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("%w: %s name %q may only contain [a-zA-Z0-9._-]", ErrInvalidArgument, kind, name)
		}
	}
	return nil
}
