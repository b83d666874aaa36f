// Package commitlog is LedgerMQ's storage engine: a segmented, append-only
// log of entries addressed by a dense uint64 index. It knows nothing of Raft,
// topics or the network; the replication package puts hashicorp/raft's
// LogStore on top of it, so each message batch is written to disk once per
// node.
//
// # Layout
//
// A log is a directory of segment files named by the index of their first
// entry (00000000000000000001.log) and, for sealed segments, an index file
// of frame positions (00000000000000000001.idx). The last segment is the
// active one; Append writes only there and starts a new segment once
// Options.SegmentSize would be exceeded. Every entry is a frame with a
// CRC32C over its header and payload. docs/design.md describes the format
// byte by byte.
//
// # Invariants
//
//   - Indexes are consecutive: FirstIndex..LastIndex with no gap, across
//     segments. Append accepts only LastIndex+1.
//   - A sealed segment is fsynced, and its index file written and fsynced,
//     before the next segment is created. So only the last segment can have
//     a torn tail.
//   - Readers see an entry only after its frame is completely written.
//   - Under SyncEveryAppend, Append returns only after an fsync that covers
//     its frames.
//
// # Recovery
//
// Open scans the last segment frame by frame. A frame that is short, or
// fails its checks with no valid frame for the next index after it, is a torn
// write: it and everything after it is cut off and the cut is logged (file,
// index, bytes). A bad frame followed by a valid one is corruption of data
// that was once complete, and Open fails with a *CorruptError rather than
// drop acknowledged entries. A sealed segment is trusted through its index
// file when that file agrees with it (header, monotonic positions, last frame
// verifies and ends the file); otherwise its index is rebuilt by a scan, in
// which any bad frame is a *CorruptError. Reads verify every frame's CRC, so
// damage inside a sealed segment is reported when it is read, naming the file
// and byte offset.
//
// # Concurrency
//
// All methods are safe for concurrent use. Mutations (Append, TruncateAfter,
// DeleteBefore, Reset, Close) are serialized; reads take a shared lock and
// do one positioned read each, so they proceed alongside an Append's write
// and fsync. An fsync failure, or a failed write that cannot be cut back,
// makes the log refuse further writes (ErrFailed; Failure returns it and
// Options.OnFail is told at once): after a failed fsync the page cache can
// no longer be trusted, and only Open's verification restores a known
// state. A write refused cleanly (ENOSPC before any byte landed, or cut
// back) fails only its Append. FaultFS injects both kinds for tests.
//
// # Caveats
//
//   - One Log per directory, enforced with an advisory lock (ErrLocked).
//   - TruncateAfter and DeleteBefore are durable but not atomic: a crash
//     part way leaves a contiguous log holding a subset of what was to be
//     removed, which the caller repeats.
//   - Age retention uses the newest AppendedAt in a segment; entries
//     without one never expire by age.
//   - Sealed index files are memory-mapped on Unix; elsewhere they are read
//     into memory.
package commitlog
