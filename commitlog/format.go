package commitlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// On-disk format, version 1. All integers are little-endian. See
// docs/design.md for the full description.
//
// Segment file NNNNNNNNNNNNNNNNNNNN.log (20-digit first index):
//
//	0  magic   [4]byte "LMQS"
//	4  version uint16 (1)
//	6  flags   uint16 (0)
//	8  base    uint64 first index of the segment
//	16 frames...
//
// Frame (one entry):
//
//	0  crc       uint32 CRC32C (Castagnoli) of bytes [4, 40+dataLen+extLen)
//	4  dataLen   uint32
//	8  extLen    uint32
//	12 index     uint64
//	20 term      uint64
//	28 appended  int64 Unix nanoseconds, 0 for the zero time
//	36 type      uint8
//	37 reserved  [3]byte, zero
//	40 data      [dataLen]byte
//	.. ext       [extLen]byte
//
// Index file NNNNNNNNNNNNNNNNNNNN.idx: a 16-byte header like the segment's
// (magic "LMQI") followed by one uint64 frame position per entry.
const (
	formatVersion      = 1
	segmentHeaderSize  = 16
	indexHeaderSize    = 16
	frameHeaderSize    = 40
	indexEntrySize     = 8
	maxEntrySizeLimit  = 512 << 20
	segmentMagic       = "LMQS"
	indexMagic         = "LMQI"
	segmentFileSuffix  = ".log"
	indexFileSuffix    = ".idx"
	resetMarkerName    = "RESET"
	lockFileName       = "LOCK"
	segmentNameDigits  = 20
	segmentNameFormat  = "%020d"
	frameReservedStart = 37
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Entry is one record of the log. Index, Term, Type, Data, Extensions and
// AppendedAt round-trip exactly (AppendedAt to the nanosecond, without its
// monotonic reading or location).
type Entry struct {
	Index      uint64
	Term       uint64
	Type       uint8
	Data       []byte
	Extensions []byte
	AppendedAt time.Time
}

// frameSize is the number of bytes e occupies on disk.
func frameSize(e *Entry) int64 {
	return int64(frameHeaderSize + len(e.Data) + len(e.Extensions))
}

// appendFrame encodes e onto buf and returns the extended slice.
func appendFrame(buf []byte, e *Entry) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, frameHeaderSize)...)
	putFrameHeader(buf[start:], e)
	buf = append(buf, e.Data...)
	buf = append(buf, e.Extensions...)
	// One CRC call over the contiguous copy is cheaper than frameCRC's
	// three for small entries.
	binary.LittleEndian.PutUint32(buf[start:], crc32.Checksum(buf[start+4:], castagnoli))
	return buf
}

// putFrameHeader encodes the header of e's frame into b, whose first
// frameHeaderSize bytes must be zero, except for the CRC.
func putFrameHeader(b []byte, e *Entry) {
	binary.LittleEndian.PutUint32(b[4:], uint32(len(e.Data)))
	binary.LittleEndian.PutUint32(b[8:], uint32(len(e.Extensions)))
	binary.LittleEndian.PutUint64(b[12:], e.Index)
	binary.LittleEndian.PutUint64(b[20:], e.Term)
	var nanos int64
	if !e.AppendedAt.IsZero() {
		nanos = e.AppendedAt.UnixNano()
	}
	binary.LittleEndian.PutUint64(b[28:], uint64(nanos))
	b[36] = e.Type
}

// frameCRC returns the CRC of the frame with header hdr (put by
// putFrameHeader) and e's payload, read where it lies: a large payload is
// written from the caller's memory, never copied next to its header.
func frameCRC(hdr []byte, e *Entry) uint32 {
	crc := crc32.Update(0, castagnoli, hdr[4:frameHeaderSize])
	crc = crc32.Update(crc, castagnoli, e.Data)
	return crc32.Update(crc, castagnoli, e.Extensions)
}

// frameError says why a frame did not decode. short means the buffer ended
// before the frame did, which at the tail of the active segment is a torn
// write rather than corruption.
type frameError struct {
	short  bool
	reason string
}

func (e *frameError) Error() string { return e.reason }

// frameLen reads the total length of the frame starting at b from its
// header, validating the length fields against maxEntry. It needs
// frameHeaderSize bytes.
func frameLen(b []byte, maxEntry int) (int, *frameError) {
	if len(b) < frameHeaderSize {
		return 0, &frameError{short: true, reason: fmt.Sprintf("frame header truncated: %d of %d bytes", len(b), frameHeaderSize)}
	}
	dataLen := binary.LittleEndian.Uint32(b[4:])
	extLen := binary.LittleEndian.Uint32(b[8:])
	if uint64(dataLen)+uint64(extLen) > uint64(maxEntry) {
		return 0, &frameError{reason: fmt.Sprintf("frame length %d+%d exceeds the maximum entry size %d", dataLen, extLen, maxEntry)}
	}
	return frameHeaderSize + int(dataLen) + int(extLen), nil
}

// decodeFrame decodes the frame at the start of b into e, verifying its CRC.
// e's Data and Extensions alias b. It returns the frame's length.
func decodeFrame(b []byte, maxEntry int, e *Entry) (int, *frameError) {
	n, ferr := frameLen(b, maxEntry)
	if ferr != nil {
		return 0, ferr
	}
	if len(b) < n {
		return 0, &frameError{short: true, reason: fmt.Sprintf("frame truncated: %d of %d bytes", len(b), n)}
	}
	want := binary.LittleEndian.Uint32(b[0:])
	if got := crc32.Checksum(b[4:n], castagnoli); got != want {
		return 0, &frameError{reason: fmt.Sprintf("CRC mismatch: stored %08x, computed %08x", want, got)}
	}
	if b[37] != 0 || b[38] != 0 || b[39] != 0 {
		return 0, &frameError{reason: "reserved header bytes are not zero"}
	}
	dataLen := int(binary.LittleEndian.Uint32(b[4:]))
	e.Index = binary.LittleEndian.Uint64(b[12:])
	e.Term = binary.LittleEndian.Uint64(b[20:])
	if nanos := int64(binary.LittleEndian.Uint64(b[28:])); nanos != 0 {
		e.AppendedAt = time.Unix(0, nanos).UTC()
	} else {
		e.AppendedAt = time.Time{}
	}
	e.Type = b[36]
	e.Data = b[frameHeaderSize : frameHeaderSize+dataLen : frameHeaderSize+dataLen]
	e.Extensions = b[frameHeaderSize+dataLen : n : n]
	if len(e.Data) == 0 {
		e.Data = nil
	}
	if len(e.Extensions) == 0 {
		e.Extensions = nil
	}
	return n, nil
}

// DecodeEntry decodes one frame from the start of b, verifying its CRC, and
// returns the entry (its slices alias b) and the number of bytes consumed.
// It is exported for tools and fuzzing; the log itself never hands out
// frames.
func DecodeEntry(b []byte, maxEntrySize int) (Entry, int, error) {
	var e Entry
	n, ferr := decodeFrame(b, maxEntrySize, &e)
	if ferr != nil {
		return Entry{}, 0, fmt.Errorf("%w: %s", ErrCorrupt, ferr.reason)
	}
	return e, n, nil
}

// EncodeEntry appends the frame of e to buf. It is the inverse of
// DecodeEntry.
func EncodeEntry(buf []byte, e *Entry) []byte { return appendFrame(buf, e) }

func fileHeader(magic string, base uint64) []byte {
	b := make([]byte, segmentHeaderSize)
	copy(b, magic)
	binary.LittleEndian.PutUint16(b[4:], formatVersion)
	binary.LittleEndian.PutUint64(b[8:], base)
	return b
}

// checkFileHeader validates a segment or index header against its name.
func checkFileHeader(path string, b []byte, magic string, base uint64) error {
	if string(b[:4]) != magic {
		return &CorruptError{File: path, Offset: 0, Reason: fmt.Sprintf("bad magic %q, want %q", b[:4], magic)}
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != formatVersion {
		return fmt.Errorf("%w: %s has format version %d, this build reads version %d", ErrVersion, path, v, formatVersion)
	}
	if got := binary.LittleEndian.Uint64(b[8:]); got != base {
		return &CorruptError{File: path, Offset: 8, Reason: fmt.Sprintf("header says first index %d, file name says %d", got, base)}
	}
	return nil
}
