package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/ledgermq/ledgermq/wire"
)

// Kafka's RecordBatch v2 (magic 2), the only format this listener speaks:
// produce requests of older formats (message sets v0/v1) are refused, and
// fetches answer in v2, which every client of Kafka 0.11 and later reads.
//
// Batches are converted, not stored in Kafka's format: a Kafka batch
// becomes a LedgerMQ batch with the same records (key, value, headers,
// timestamps), compressed with the same codec where LedgerMQ has it (gzip,
// snappy, zstd; lz4 is stored as s2), so that the SDK, mqctl and the HTTP
// API read what Kafka clients wrote and the other way round, at the same
// offsets. See docs/kafka.md for the cost.

const (
	batchHeaderSize = 61 // base offset .. record count
	magicV2         = 2

	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20

	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Errors of batch decoding; each is a CORRUPT_MESSAGE (or, for the
// unsupported kinds, an INVALID_RECORD / UNSUPPORTED_*) to the client.
var (
	errCorrupt       = errors.New("kafka: corrupt record batch")
	errOldFormat     = errors.New("kafka: message format older than v2 (magic 2) is not supported")
	errTransactional = errors.New("kafka: transactional and control batches are not supported")
	errTooLarge      = errors.New("kafka: records exceed the size limit")
)

// inBatch is a decoded produce batch.
type inBatch struct {
	codec         int
	producerID    int64
	producerEpoch int16
	baseSequence  int32
	msgs          []wire.Message
}

// parseBatches decodes the record batches of one partition's produce data
// (clients send one; several are accepted). limit bounds the decompressed
// bytes of all records; it returns how many were used.
func parseBatches(b []byte, limit int, now time.Time) ([]inBatch, int, error) {
	var out []inBatch
	used := 0
	for len(b) > 0 {
		if len(b) < 17 {
			return nil, 0, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(b))
		}
		length := int(int32(binary.BigEndian.Uint32(b[8:12])))
		if b[16] != magicV2 {
			return nil, 0, errOldFormat
		}
		if length < batchHeaderSize-12 || length > len(b)-12 {
			return nil, 0, fmt.Errorf("%w: batch length %d of %d bytes", errCorrupt, length, len(b)-12)
		}
		ib, n, err := parseBatch(b[:12+length], limit, now)
		if err != nil {
			return nil, 0, err
		}
		limit -= n
		used += n
		out = append(out, ib)
		b = b[12+length:]
	}
	if len(out) == 0 {
		return nil, 0, fmt.Errorf("%w: no record batch", errCorrupt)
	}
	return out, used, nil
}

// parseBatch decodes one batch, returning its records' decompressed size.
func parseBatch(b []byte, limit int, now time.Time) (inBatch, int, error) {
	if crc := binary.BigEndian.Uint32(b[17:21]); crc != crcOf(b[21:]) {
		return inBatch{}, 0, fmt.Errorf("%w: CRC mismatch", errCorrupt)
	}
	attrs := int16(binary.BigEndian.Uint16(b[21:23]))
	if attrs&(attrTransactional|attrControl) != 0 {
		return inBatch{}, 0, errTransactional
	}
	firstTs := int64(binary.BigEndian.Uint64(b[27:35]))
	ib := inBatch{
		codec:         int(attrs & attrCodecMask),
		producerID:    int64(binary.BigEndian.Uint64(b[43:51])),
		producerEpoch: int16(binary.BigEndian.Uint16(b[51:53])),
		baseSequence:  int32(binary.BigEndian.Uint32(b[53:57])),
	}
	count := int(int32(binary.BigEndian.Uint32(b[57:61])))
	if count <= 0 || count > wire.MaxRecords {
		return inBatch{}, 0, fmt.Errorf("%w: %d records", errCorrupt, count)
	}
	recs, err := decompress(ib.codec, b[61:], limit)
	if err != nil {
		return inBatch{}, 0, err
	}
	// Each record takes at least 7 bytes: a hostile count allocates no more
	// than the bytes allow.
	if count > len(recs)/7+1 {
		return inBatch{}, 0, fmt.Errorf("%w: %d records in %d bytes", errCorrupt, count, len(recs))
	}
	ib.msgs = make([]wire.Message, 0, count)
	r := reader{b: recs}
	for i := 0; i < count; i++ {
		m, err := r.record(firstTs)
		if err != nil {
			return inBatch{}, 0, fmt.Errorf("%w: record %d: %v", errCorrupt, i, err)
		}
		if attrs&attrLogAppendTime != 0 {
			m.Timestamp = now
		}
		ib.msgs = append(ib.msgs, m)
	}
	if len(r.b) != 0 {
		return inBatch{}, 0, fmt.Errorf("%w: %d bytes after the last record", errCorrupt, len(r.b))
	}
	return ib, len(recs), nil
}

// reader reads Kafka's varint-encoded records.
type reader struct {
	b   []byte
	err error
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errors.New("bad varint")
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes reads a varint length and that many bytes; -1 is null.
func (r *reader) bytes() []byte {
	n := r.varint()
	if r.err != nil || n < 0 {
		return nil
	}
	if n > int64(len(r.b)) {
		r.err = errors.New("length beyond the record")
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) record(firstTs int64) (wire.Message, error) {
	length := r.varint()
	if r.err != nil || length < 0 || length > int64(len(r.b)) {
		return wire.Message{}, errors.New("bad record length")
	}
	rec := reader{b: r.b[:length]}
	r.b = r.b[length:]
	if len(rec.b) < 1 {
		return wire.Message{}, errors.New("empty record")
	}
	rec.b = rec.b[1:] // attributes (unused)
	tsDelta := rec.varint()
	rec.varint() // offset delta: offsets are the broker's
	m := wire.Message{Key: rec.bytes()}
	m.Value = rec.bytes()
	if m.Value == nil {
		m.Value = []byte{}
	}
	nh := rec.varint()
	if rec.err == nil && (nh < 0 || nh > wire.MaxHeaders) {
		return wire.Message{}, fmt.Errorf("%d headers (at most %d)", nh, wire.MaxHeaders)
	}
	for i := int64(0); i < nh && rec.err == nil; i++ {
		k := rec.bytes()
		v := rec.bytes()
		m.Headers = append(m.Headers, wire.Header{Key: string(k), Value: v})
	}
	if rec.err != nil {
		return wire.Message{}, rec.err
	}
	if len(rec.b) != 0 {
		return wire.Message{}, errors.New("bytes after the headers")
	}
	m.Timestamp = time.UnixMilli(firstTs + tsDelta)
	return m, nil
}

// xerialMagic starts snappy data in the Java client's framing.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// decompress returns the records of a batch, at most limit bytes of them.
func decompress(codec int, b []byte, limit int) ([]byte, error) {
	var r io.Reader
	switch codec {
	case codecNone:
		if len(b) > limit {
			return nil, errTooLarge
		}
		return b, nil
	case codecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", errCorrupt, err)
		}
		defer zr.Close()
		r = zr
	case codecSnappy:
		return unsnappy(b, limit)
	case codecLZ4:
		r = lz4.NewReader(bytes.NewReader(b))
	case codecZstd:
		zr, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)+1<<20))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", errCorrupt, err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("%w: compression codec %d", errCorrupt, codec)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: decompressing: %v", errCorrupt, err)
	}
	if len(out) > limit {
		return nil, errTooLarge
	}
	return out, nil
}

// unsnappy decodes a raw snappy block or the xerial framing (16-byte
// header, then blocks each behind a 4-byte length).
func unsnappy(b []byte, limit int) ([]byte, error) {
	block := func(dst, p []byte) ([]byte, error) {
		n, err := snappy.DecodedLen(p)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", errCorrupt, err)
		}
		if n > limit-len(dst) {
			return nil, errTooLarge
		}
		out, err := snappy.Decode(nil, p)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", errCorrupt, err)
		}
		return append(dst, out...), nil
	}
	if !bytes.HasPrefix(b, xerialMagic) {
		return block(nil, b)
	}
	if len(b) < 16 {
		return nil, fmt.Errorf("%w: short xerial snappy header", errCorrupt)
	}
	b = b[16:]
	var out []byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: xerial snappy chunk", errCorrupt)
		}
		n := int(binary.BigEndian.Uint32(b))
		if n > len(b)-4 {
			return nil, fmt.Errorf("%w: xerial snappy chunk of %d bytes", errCorrupt, n)
		}
		var err error
		if out, err = block(out, b[4:4+n]); err != nil {
			return nil, err
		}
		b = b[4+n:]
	}
	return out, nil
}

// storeCodec is the LedgerMQ codec a Kafka batch is stored with.
func storeCodec(kafkaCodec int) wire.Codec {
	switch kafkaCodec {
	case codecGzip:
		return wire.CodecGzip
	case codecSnappy:
		return wire.CodecSnappy
	case codecLZ4:
		return wire.CodecS2
	case codecZstd:
		return wire.CodecZstd
	}
	return wire.CodecNone
}

// appendBatch appends one stored batch as an uncompressed Kafka
// RecordBatch v2 whose first offset is base, skipping nothing: clients drop
// records below the offset they asked for themselves.
func appendBatch(dst []byte, base uint64, h wire.BatchHeader, msgs []wire.Message, epoch int32) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, base)
	dst = append(dst, 0, 0, 0, 0) // length, below
	dst = binary.BigEndian.AppendUint32(dst, uint32(epoch))
	dst = append(dst, magicV2)
	dst = append(dst, 0, 0, 0, 0) // CRC, below
	crcFrom := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, 0) // attributes: no codec, create time
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msgs)-1))
	first := h.BaseTimestamp
	if len(msgs) > 0 {
		first = msgs[0].Timestamp.UnixMilli()
	}
	maxTs := first
	for i := range msgs {
		maxTs = max(maxTs, msgs[i].Timestamp.UnixMilli())
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(first))
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxTs))
	dst = binary.BigEndian.AppendUint64(dst, ^uint64(0)) // producer id -1
	dst = binary.BigEndian.AppendUint16(dst, 0xffff)     // producer epoch -1
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff) // base sequence -1
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msgs)))
	var rec []byte
	for i := range msgs {
		m := &msgs[i]
		rec = rec[:0]
		rec = append(rec, 0) // attributes
		rec = binary.AppendVarint(rec, m.Timestamp.UnixMilli()-first)
		rec = binary.AppendVarint(rec, int64(i))
		rec = appendVarBytes(rec, m.Key)
		rec = appendVarBytes(rec, m.Value)
		rec = binary.AppendVarint(rec, int64(len(m.Headers)))
		for _, hd := range m.Headers {
			rec = binary.AppendVarint(rec, int64(len(hd.Key)))
			rec = append(rec, hd.Key...)
			rec = appendVarBytes(rec, hd.Value)
		}
		dst = binary.AppendVarint(dst, int64(len(rec)))
		dst = append(dst, rec...)
	}
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(dst)-start-12))
	binary.BigEndian.PutUint32(dst[start+17:], crcOf(dst[crcFrom:]))
	return dst
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
