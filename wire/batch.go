package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"time"
)

// Format constants.
const (
	Magic       = "LMQB"
	Version     = 1
	HeaderSize  = 56
	ContentType = "application/vnd.ledgermq.batch"
	// MaxRecords bounds the records of one batch.
	MaxRecords = 1 << 20
	// MaxHeaders bounds the headers of one record (issue 11: batch bounds).
	MaxHeaders = 64
	// RecordOverhead and HeaderOverhead are what each record and each
	// header are charged against the size limits on top of their bytes,
	// like Kafka's record overhead: at least what one decoded Message and
	// one decoded Header take in memory, so that a batch's charged size
	// (ChargedSize) bounds the memory its decoding allocates, and empty
	// headers or records are not free.
	RecordOverhead = 96
	HeaderOverhead = 40
)

// Errors. Every decoding error wraps ErrMalformed.
var (
	ErrMalformed  = errors.New("wire: malformed batch")
	ErrCodec      = errors.New("wire: unknown compression codec")
	ErrTooLarge   = errors.New("wire: batch or record exceeds the size limit")
	ErrEmptyBatch = errors.New("wire: batch has no records")
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Message is one record.
type Message struct {
	Key       []byte // nil: no key
	Value     []byte
	Headers   []Header
	Timestamp time.Time
}

// Header is one record header; order is kept.
type Header struct {
	Key   string
	Value []byte
}

// BatchHeader is a batch's fixed header.
type BatchHeader struct {
	Codec         Codec
	Length        uint32
	Count         uint32
	BaseTimestamp int64 // Unix ms
	MaxTimestamp  int64 // Unix ms
	ProducerID    uint64
	Sequence      uint64
	GroupID       uint32
}

// Producer identifies an idempotent producer's batch.
type Producer struct {
	ID       uint64
	Sequence uint64
}

// Encode builds a batch of msgs. Messages with a zero Timestamp get now.
func Encode(msgs []Message, codec Codec, p Producer, groupID uint32, now time.Time) ([]byte, error) {
	if len(msgs) == 0 {
		return nil, ErrEmptyBatch
	}
	if len(msgs) > MaxRecords {
		return nil, fmt.Errorf("%w: %d records", ErrTooLarge, len(msgs))
	}
	base := msgs[0].Timestamp
	if base.IsZero() {
		base = now
	}
	baseMs, maxMs := base.UnixMilli(), base.UnixMilli()
	msOf := func(m *Message) int64 {
		if m.Timestamp.IsZero() {
			return now.UnixMilli()
		}
		return m.Timestamp.UnixMilli()
	}
	// Sized first, then written once: no buffer grows and, uncompressed,
	// the records are laid out in the batch itself.
	size := 0
	for i := range msgs {
		ms := msOf(&msgs[i])
		maxMs = max(maxMs, ms)
		size += recordSize(&msgs[i], ms-baseMs)
	}
	var b []byte
	if codec == CodecNone {
		b = make([]byte, HeaderSize, HeaderSize+size)
	} else {
		b = make([]byte, 0, size)
	}
	for i := range msgs {
		b = appendRecord(b, &msgs[i], msOf(&msgs[i])-baseMs)
	}
	if codec != CodecNone {
		body, err := compress(codec, b)
		if err != nil {
			return nil, err
		}
		b = make([]byte, HeaderSize, HeaderSize+len(body))
		b = append(b, body...)
	}
	h := BatchHeader{Codec: codec, Length: uint32(len(b)), Count: uint32(len(msgs)),
		BaseTimestamp: baseMs, MaxTimestamp: maxMs, ProducerID: p.ID, Sequence: p.Sequence, GroupID: groupID}
	putHeader(b, &h)
	binary.LittleEndian.PutUint32(b[8:], batchCRC(b))
	return b, nil
}

// batchCRC is the CRC32C of every byte of the batch except the CRC field:
// bytes [0, 8) and [12, length).
func batchCRC(b []byte) uint32 {
	return crc32.Update(crc32.Checksum(b[:8], crcTable), crcTable, b[12:])
}

func putHeader(b []byte, h *BatchHeader) {
	copy(b, Magic)
	b[4] = Version
	b[5] = byte(h.Codec)
	binary.LittleEndian.PutUint16(b[6:], 0)
	binary.LittleEndian.PutUint32(b[12:], h.Length)
	binary.LittleEndian.PutUint32(b[16:], h.Count)
	binary.LittleEndian.PutUint64(b[20:], uint64(h.BaseTimestamp))
	binary.LittleEndian.PutUint64(b[28:], uint64(h.MaxTimestamp))
	binary.LittleEndian.PutUint64(b[36:], h.ProducerID)
	binary.LittleEndian.PutUint64(b[44:], h.Sequence)
	binary.LittleEndian.PutUint32(b[52:], h.GroupID)
}

// recordBodySize is the size of a record's body: what follows its length.
func recordBodySize(m *Message, tsDelta int64) int {
	n := varintLen(tsDelta) + uvarintLen(uint64(len(m.Value))) + len(m.Value) + uvarintLen(uint64(len(m.Headers)))
	if m.Key == nil {
		n++
	} else {
		n += uvarintLen(uint64(len(m.Key))+1) + len(m.Key)
	}
	for _, h := range m.Headers {
		n += uvarintLen(uint64(len(h.Key))) + len(h.Key) + uvarintLen(uint64(len(h.Value))) + len(h.Value)
	}
	return n
}

// recordSize is the encoded size of a record, its length included.
func recordSize(m *Message, tsDelta int64) int {
	n := recordBodySize(m, tsDelta)
	return uvarintLen(uint64(n)) + n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int {
	ux := uint64(x) << 1 // binary.AppendVarint's zig-zag encoding
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

func appendRecord(dst []byte, m *Message, tsDelta int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(recordBodySize(m, tsDelta)))
	dst = binary.AppendVarint(dst, tsDelta)
	if m.Key == nil {
		dst = binary.AppendUvarint(dst, 0)
	} else {
		dst = binary.AppendUvarint(dst, uint64(len(m.Key))+1)
		dst = append(dst, m.Key...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Value)))
	dst = append(dst, m.Value...)
	dst = binary.AppendUvarint(dst, uint64(len(m.Headers)))
	for _, h := range m.Headers {
		dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = binary.AppendUvarint(dst, uint64(len(h.Value)))
		dst = append(dst, h.Value...)
	}
	return dst
}

// ParseHeader validates the fixed header and CRC of the batch at the start
// of b and returns it. b may hold more bytes after the batch.
func ParseHeader(b []byte) (BatchHeader, error) {
	if len(b) < HeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformed, len(b), HeaderSize)
	}
	if string(b[:4]) != Magic {
		return BatchHeader{}, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	if b[4] != Version {
		return BatchHeader{}, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[4], Version)
	}
	h := BatchHeader{
		Codec:         Codec(b[5]),
		Length:        binary.LittleEndian.Uint32(b[12:]),
		Count:         binary.LittleEndian.Uint32(b[16:]),
		BaseTimestamp: int64(binary.LittleEndian.Uint64(b[20:])),
		MaxTimestamp:  int64(binary.LittleEndian.Uint64(b[28:])),
		ProducerID:    binary.LittleEndian.Uint64(b[36:]),
		Sequence:      binary.LittleEndian.Uint64(b[44:]),
		GroupID:       binary.LittleEndian.Uint32(b[52:]),
	}
	if !h.Codec.valid() {
		return BatchHeader{}, fmt.Errorf("%w: %w %d", ErrMalformed, ErrCodec, h.Codec)
	}
	if binary.LittleEndian.Uint16(b[6:]) != 0 {
		return BatchHeader{}, fmt.Errorf("%w: unknown flags", ErrMalformed)
	}
	if h.Length < HeaderSize || uint64(h.Length) > uint64(len(b)) {
		return BatchHeader{}, fmt.Errorf("%w: length %d, have %d bytes", ErrMalformed, h.Length, len(b))
	}
	if h.Count == 0 || h.Count > MaxRecords {
		return BatchHeader{}, fmt.Errorf("%w: record count %d", ErrMalformed, h.Count)
	}
	if h.MaxTimestamp < h.BaseTimestamp {
		return BatchHeader{}, fmt.Errorf("%w: max timestamp before base timestamp", ErrMalformed)
	}
	if batchCRC(b[:h.Length]) != binary.LittleEndian.Uint32(b[8:]) {
		return BatchHeader{}, fmt.Errorf("%w: CRC mismatch", ErrMalformed)
	}
	return h, nil
}

// Decode validates a whole batch and returns its header and records.
// maxRecordsBytes bounds the decompressed records section and also the
// batch's charged size, the sum of every record's ChargedSize;
// maxMessageBytes bounds each record's LimitSize (0: no bound; a
// maxRecordsBytes of 0 means 1 GiB). The returned messages alias the
// decompressed buffer, not b, unless the batch is uncompressed. Decoding
// allocates at most about twice maxRecordsBytes whatever the input, and
// refusing a batch only its decompressed records.
func Decode(b []byte, maxRecordsBytes, maxMessageBytes int) (BatchHeader, []Message, error) {
	var msgs []Message
	h, err := walk(b, maxRecordsBytes, maxMessageBytes, func(n int) { msgs = make([]Message, 0, n) },
		func(m *Message) { msgs = append(msgs, *m) })
	if err != nil {
		return h, nil, err
	}
	return h, msgs, nil
}

// Validate checks a whole batch as Decode does, without keeping its
// records: it allocates the decompressed records section and little else.
func Validate(b []byte, maxRecordsBytes, maxMessageBytes int) (BatchHeader, error) {
	return walk(b, maxRecordsBytes, maxMessageBytes, nil, nil)
}

// walk validates a batch and, when keep is not nil, hands each record to
// keep after telling prealloc how many there are.
func walk(b []byte, maxRecordsBytes, maxMessageBytes int, prealloc func(int), keep func(*Message)) (BatchHeader, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if int(h.Length) != len(b) {
		return h, fmt.Errorf("%w: %d trailing bytes after the batch", ErrMalformed, len(b)-int(h.Length))
	}
	if maxRecordsBytes <= 0 {
		maxRecordsBytes = 1 << 30
	}
	// Charged before anything is decompressed: a count the limit cannot
	// hold is refused at once.
	if uint64(h.Count)*RecordOverhead > uint64(maxRecordsBytes) {
		return h, fmt.Errorf("%w: %d records charge at least %d bytes, the limit is %d", ErrTooLarge, h.Count, uint64(h.Count)*RecordOverhead, maxRecordsBytes)
	}
	recs, err := decompress(h.Codec, b[HeaderSize:], maxRecordsBytes)
	if err != nil {
		return h, err
	}
	// A first pass checks every record and keeps nothing, so a batch that
	// is refused costs its decompressed records and no more; only a batch
	// within its limits is then decoded, its memory bounded by its charge.
	if err := records(recs, &h, maxRecordsBytes, maxMessageBytes, nil); err != nil || keep == nil {
		return h, err
	}
	prealloc(int(h.Count))
	return h, records(recs, &h, maxRecordsBytes, maxMessageBytes, keep)
}

// records checks the records section recs of the batch h, handing each
// record to keep when not nil.
func records(recs []byte, h *BatchHeader, maxRecordsBytes, maxMessageBytes int, keep func(*Message)) error {
	n, charged := 0, 0
	var baseMs, maxMs int64
	for len(recs) > 0 {
		if n == int(h.Count) {
			return fmt.Errorf("%w: more records than the count %d", ErrMalformed, h.Count)
		}
		m, used, cost, err := decodeRecord(recs, h.BaseTimestamp, maxMessageBytes, keep != nil)
		if err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
		if charged += cost; charged > maxRecordsBytes {
			return fmt.Errorf("%w: records charge more than the limit of %d bytes (%d bytes per record and %d per header on top of their bytes)",
				ErrTooLarge, maxRecordsBytes, RecordOverhead, HeaderOverhead)
		}
		ms := m.Timestamp.UnixMilli()
		if n == 0 {
			baseMs, maxMs = ms, ms
		}
		maxMs = max(maxMs, ms)
		if keep != nil {
			keep(&m)
		}
		n++
		recs = recs[used:]
	}
	if n != int(h.Count) {
		return fmt.Errorf("%w: %d records, header says %d", ErrMalformed, n, h.Count)
	}
	if maxMs != h.MaxTimestamp || baseMs != h.BaseTimestamp {
		return fmt.Errorf("%w: header timestamps do not match the records", ErrMalformed)
	}
	return nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad varint", ErrMalformed)
	}
	return v, b[n:], nil
}

func bytesField(b []byte, n uint64) ([]byte, []byte, error) {
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: field of %d bytes, %d left", ErrMalformed, n, len(b))
	}
	return b[:n:n], b[n:], nil
}

// decodeRecord decodes one record and returns it, the bytes it used and
// its ChargedSize. Without keepHeaders the headers are checked, not kept.
func decodeRecord(b []byte, baseMs int64, maxMessage int, keepHeaders bool) (Message, int, int, error) {
	bodyLen, rest, err := uvarint(b)
	if err != nil {
		return Message{}, 0, 0, err
	}
	body, _, err := bytesField(rest, bodyLen)
	if err != nil {
		return Message{}, 0, 0, err
	}
	consumed := len(b) - len(rest) + int(bodyLen)
	// A cheap bound before parsing: a record's framing (timestamp, lengths,
	// two length varints per header) is at most about twice the bytes
	// Size counts for messages whose headers have a key or a value; the
	// exact check on Size follows once the record is parsed.
	if maxMessage > 0 && bodyLen > 3*uint64(maxMessage)+64+2*MaxHeaders {
		return Message{}, 0, 0, fmt.Errorf("%w: record of %d bytes", ErrTooLarge, bodyLen)
	}
	delta, n := binary.Varint(body)
	if n <= 0 {
		return Message{}, 0, 0, fmt.Errorf("%w: bad timestamp", ErrMalformed)
	}
	body = body[n:]
	var m Message
	m.Timestamp = time.UnixMilli(baseMs + delta).UTC()
	kl, body, err := uvarint(body)
	if err != nil {
		return Message{}, 0, 0, err
	}
	if kl > 0 {
		if m.Key, body, err = bytesField(body, kl-1); err != nil {
			return Message{}, 0, 0, err
		}
	}
	vl, body, err := uvarint(body)
	if err != nil {
		return Message{}, 0, 0, err
	}
	if m.Value, body, err = bytesField(body, vl); err != nil {
		return Message{}, 0, 0, err
	}
	hc, body, err := uvarint(body)
	if err != nil {
		return Message{}, 0, 0, err
	}
	if hc > MaxHeaders {
		return Message{}, 0, 0, fmt.Errorf("%w: %d headers, the limit is %d per record", ErrTooLarge, hc, MaxHeaders)
	}
	if hc > uint64(len(body)) {
		return Message{}, 0, 0, fmt.Errorf("%w: %d headers in %d bytes", ErrMalformed, hc, len(body))
	}
	if hc > 0 && keepHeaders {
		m.Headers = make([]Header, 0, hc)
	}
	hdrBytes := 0
	for i := uint64(0); i < hc; i++ {
		var k, v []byte
		var l uint64
		if l, body, err = uvarint(body); err != nil {
			return Message{}, 0, 0, err
		}
		if k, body, err = bytesField(body, l); err != nil {
			return Message{}, 0, 0, err
		}
		if l, body, err = uvarint(body); err != nil {
			return Message{}, 0, 0, err
		}
		if v, body, err = bytesField(body, l); err != nil {
			return Message{}, 0, 0, err
		}
		if keepHeaders {
			m.Headers = append(m.Headers, Header{Key: string(k), Value: v})
		}
		hdrBytes += len(k) + len(v)
	}
	if len(body) != 0 {
		return Message{}, 0, 0, fmt.Errorf("%w: %d stray bytes in record", ErrMalformed, len(body))
	}
	// LimitSize, computed from the fields whether or not headers are kept.
	size := len(m.Key) + len(m.Value) + hdrBytes + HeaderOverhead*int(hc)
	if maxMessage > 0 && size > maxMessage {
		return Message{}, 0, 0, fmt.Errorf("%w: message of %d bytes (%d per header on top of its bytes), the limit is %d", ErrTooLarge, size, HeaderOverhead, maxMessage)
	}
	return m, consumed, size + RecordOverhead, nil
}

// Size is the message's size as limits count it: key, value and headers.
func (m *Message) Size() int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// LimitSize is the message's size as the per-message limit
// (max_message_bytes) counts it: Size plus HeaderOverhead per header.
func (m *Message) LimitSize() int {
	return m.Size() + HeaderOverhead*len(m.Headers)
}

// ChargedSize is the message's size as batch limits count it: LimitSize
// plus RecordOverhead.
func (m *Message) ChargedSize() int {
	return m.LimitSize() + RecordOverhead
}

// SortHeaders orders headers by key (JSON maps carry no order).
func SortHeaders(hs []Header) {
	sort.Slice(hs, func(i, j int) bool { return hs[i].Key < hs[j].Key })
}
