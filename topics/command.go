package topics

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Command types: the first byte of every command in the log.
const (
	CmdCreateTopic byte = 1
	CmdDeleteTopic byte = 2
	CmdProduce     byte = 3
	// CmdInitProducer hands out a producer id: type u8 | time i64.
	CmdInitProducer byte = 4
)

// EncodeInitProducer encodes a request for a new producer id; timeMs is
// the leader's clock, which ages out idle producers deterministically.
func EncodeInitProducer(timeMs int64) []byte {
	return binary.LittleEndian.AppendUint64([]byte{CmdInitProducer}, uint64(timeMs))
}

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

// EncodeCreate encodes a create-topic command.
func EncodeCreate(c Config) []byte {
	b, _ := json.Marshal(c)
	return append([]byte{CmdCreateTopic}, b...)
}

// EncodeDelete encodes a delete-topic command.
func EncodeDelete(name string) []byte {
	return append([]byte{CmdDeleteTopic}, name...)
}

// Part is one batch of a produce command: the batch goes to one queue.
type Part struct {
	Topic string
	Queue int
	Batch []byte // a wire batch, stored as is
}

// Produce command layout: type u8 | time i64 | parts u16 | parts ×
// (topicLen u16 | topic | queue u32 | batchLen u32 | batch). time is the
// leader's clock when it proposed the command (Unix ms).
const produceHeader = 11

// EncodeProduce encodes a produce command.
func EncodeProduce(timeMs int64, parts []Part) []byte {
	n := produceHeader
	for _, p := range parts {
		n += 10 + len(p.Topic) + len(p.Batch)
	}
	b := make([]byte, 0, n)
	b = append(b, CmdProduce)
	b = binary.LittleEndian.AppendUint64(b, uint64(timeMs))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(parts)))
	for _, p := range parts {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.Topic)))
		b = append(b, p.Topic...)
		b = binary.LittleEndian.AppendUint32(b, uint32(p.Queue))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Batch)))
		b = append(b, p.Batch...)
	}
	return b
}

// DecodeProduce decodes a produce command (including its type byte) into
// its time and parts. The parts' batches alias b.
func DecodeProduce(b []byte) (int64, []Part, error) {
	timeMs, parts, err := decodeProduce(b)
	return timeMs, parts, err
}

func decodeProduce(b []byte) (int64, []Part, error) {
	if len(b) < produceHeader || b[0] != CmdProduce {
		return 0, nil, fmt.Errorf("%w: not a produce command", ErrBadCommand)
	}
	timeMs := int64(binary.LittleEndian.Uint64(b[1:]))
	n := int(binary.LittleEndian.Uint16(b[9:]))
	b = b[produceHeader:]
	parts := make([]Part, 0, min(n, 1024))
	for i := 0; i < n; i++ {
		if len(b) < 2 {
			return 0, nil, fmt.Errorf("%w: truncated part %d", ErrBadCommand, i)
		}
		tl := int(binary.LittleEndian.Uint16(b))
		if len(b) < 2+tl+8 {
			return 0, nil, fmt.Errorf("%w: truncated part %d", ErrBadCommand, i)
		}
		p := Part{Topic: string(b[2 : 2+tl]), Queue: int(binary.LittleEndian.Uint32(b[2+tl:]))}
		bl := int(binary.LittleEndian.Uint32(b[6+tl:]))
		b = b[10+tl:]
		if bl > len(b) {
			return 0, nil, fmt.Errorf("%w: truncated batch in part %d", ErrBadCommand, i)
		}
		p.Batch = b[:bl:bl]
		b = b[bl:]
		parts = append(parts, p)
	}
	if len(b) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(b))
	}
	return timeMs, parts, nil
}
