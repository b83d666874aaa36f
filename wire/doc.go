// Package wire is the binary format LedgerMQ's SDK and brokers share: the
// record batch. A batch is built by a producer, stored in the commit log
// exactly as received, and served to consumers as is; only producers and
// consumers look inside its (possibly compressed) records.
//
// Batch layout (all integers little-endian):
//
//	0  magic          [4]byte "LMQB"
//	4  version        uint8 (1)
//	5  codec          uint8 (0 none, 1 gzip, 2 snappy, 3 s2, 4 zstd)
//	6  flags          uint16 (0)
//	8  crc            uint32 CRC32C of bytes [0, 8) and [12, length)
//	12 length         uint32 total batch length, header included
//	16 count          uint32 number of records (>= 1)
//	20 baseTimestamp  int64 Unix milliseconds of the first record
//	28 maxTimestamp   int64 Unix milliseconds of the newest record
//	36 producerID     uint64 (0: no idempotence)
//	44 sequence       uint64 sequence number of the first record
//	52 groupID        uint32 broker group the batch was produced to
//	56 records        [length-56]byte, compressed with codec
//
// Record (inside the decompressed records section), each preceded by its
// body length as a uvarint:
//
//	timestampDelta  varint, milliseconds after baseTimestamp
//	keyLen          uvarint, 0 for no key, else len(key)+1
//	key             []byte
//	valueLen        uvarint
//	value           []byte
//	headerCount     uvarint
//	headers         headerCount × (uvarint len, key, uvarint len, value)
//
// Offsets are not stored in a batch: the broker assigns a batch its base
// offset when it commits, and records take consecutive offsets from it.
package wire
