package commitlog

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package either is one of
// these or wraps one of them (test with errors.Is), or wraps an error from the
// file system.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("commitlog: log is closed")

	// ErrNonContiguous is returned by Append when the first entry's index is
	// not LastIndex()+1, or when the entries of one batch are not
	// consecutive. Nothing of the batch is written.
	ErrNonContiguous = errors.New("commitlog: entry index is not contiguous with the log")

	// ErrEntryTooLarge is returned by Append when an entry's payload plus
	// extensions exceed Options.MaxEntrySize. Nothing of the batch is written.
	ErrEntryTooLarge = errors.New("commitlog: entry exceeds the maximum entry size")

	// ErrBeforeFirst is returned by reads of an index below FirstIndex (the
	// entry was deleted by retention or never existed) and by TruncateAfter
	// with an index below FirstIndex()-1.
	ErrBeforeFirst = errors.New("commitlog: index is below the first index")

	// ErrAfterLast is returned by reads of an index above LastIndex.
	ErrAfterLast = errors.New("commitlog: index is above the last index")

	// ErrCorrupt is wrapped by *CorruptError: stored bytes failed their CRC
	// or are structurally invalid somewhere recovery may not repair (inside
	// a sealed segment, in the middle of the active one, in a file header).
	ErrCorrupt = errors.New("commitlog: corrupt data")

	// ErrVersion is returned by Open when a file in the directory was
	// written in a format version this build does not read.
	ErrVersion = errors.New("commitlog: unsupported format version")

	// ErrLocked is returned by Open when another Log (in this or another
	// process) holds the directory.
	ErrLocked = errors.New("commitlog: directory is locked by another log")

	// ErrFailed is wrapped by every mutation after a write or fsync failed.
	// After a failed fsync the kernel may have dropped dirty pages, so the
	// only safe continuation is Close and Open, which re-verifies the tail.
	ErrFailed = errors.New("commitlog: log failed an earlier write or sync; reopen it")

	// ErrInvalidOptions is returned by Open for options out of range.
	ErrInvalidOptions = errors.New("commitlog: invalid options")
)

// CorruptError names where corrupt data was found. It matches ErrCorrupt
// with errors.Is.
type CorruptError struct {
	File   string // path of the damaged file
	Offset int64  // byte offset of the damaged frame or header in File
	Index  uint64 // index of the entry expected there, 0 if not known
	Reason string // what check failed
}

func (e *CorruptError) Error() string {
	if e.Index != 0 {
		return fmt.Sprintf("commitlog: corrupt data in %s at byte %d (entry %d): %s", e.File, e.Offset, e.Index, e.Reason)
	}
	return fmt.Sprintf("commitlog: corrupt data in %s at byte %d: %s", e.File, e.Offset, e.Reason)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
