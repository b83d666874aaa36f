package commitlog

import (
	"fmt"
	"log/slog"
	"time"
)

// SyncPolicy says when appended entries are made durable with fsync.
type SyncPolicy int

const (
	// SyncEveryAppend makes Append return only after its entries are on
	// stable storage. Concurrent Append calls share fsyncs (group commit): a
	// caller that arrives while an fsync is running waits for the next one,
	// which covers every write made in the meantime. This is the default.
	SyncEveryAppend SyncPolicy = iota
	// SyncInterval fsyncs at most every Options.SyncInterval in the
	// background. Append returns once its entries are written to the OS. A
	// machine crash loses at most the last interval; a process crash loses
	// nothing.
	SyncInterval
	// SyncNever leaves write-back to the operating system (and to Close and
	// segment rolls, which always sync). A machine crash may lose any
	// amount of the unsealed tail; a process crash loses nothing.
	SyncNever
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncEveryAppend:
		return "every-append"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// ParseSyncPolicy parses the names printed by SyncPolicy.String.
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	for _, p := range []SyncPolicy{SyncEveryAppend, SyncInterval, SyncNever} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown sync policy %q (want every-append, interval or never)", ErrInvalidOptions, s)
}

// Options configure a Log. Start from DefaultOptions.
type Options struct {
	// SegmentSize is the size in bytes at which the active segment is sealed
	// and a new one started. A segment exceeds it only when a single entry
	// is larger. Default 256 MiB; at most 1 GiB.
	SegmentSize int64
	// MaxEntrySize bounds an entry's payload plus extensions in bytes.
	// Default 64 MiB; at most 512 MiB.
	MaxEntrySize int
	// Sync is the durability policy. Default SyncEveryAppend.
	Sync SyncPolicy
	// SyncInterval is the fsync period for SyncInterval. Default 10ms.
	SyncInterval time.Duration
	// Retention bounds what RetentionIndex lets DeleteBefore remove.
	// Default: no limit.
	Retention Retention
	// PreallocBytes: the active segment's file is written with zeros this
	// far ahead of its appends, so that a durable append needs fdatasync
	// only, not fsync (prealloc.go). 0 (the default) disables it: after a
	// power loss (not a process crash) the write-back of the unacknowledged
	// tail may have left a page of zeros before complete later frames,
	// which Open reports as a *CorruptError (see RepairTail).
	PreallocBytes int64
	// RepairTail makes Open cut the last segment at its first bad frame
	// even when valid frames follow (which by default is a *CorruptError,
	// since those entries may have been acknowledged). It is for an
	// operator recovering a replica after a power loss; the cut entries
	// must then come back from the other replicas. Default false.
	RepairTail bool
	// FS is the file system the log lives on. Default OSFS{}.
	FS FS
	// Logger receives recovery and failure reports. Default slog.Default().
	Logger *slog.Logger
	// OnFail, if set, is called once, when the log fails: the first write
	// or fsync failure that makes it refuse writes (the error it is called
	// with wraps ErrFailed). It tells an owner at once, even when the
	// failure happens in the background fsync of SyncInterval. It runs on
	// the goroutine that saw the failure with the log's locks held: it must
	// return quickly and must not call the Log.
	OnFail func(err error)
}

// Retention is a policy for deleting whole sealed segments from the head.
type Retention struct {
	// MaxBytes: delete the oldest sealed segments while the log is larger
	// than this. 0 means no size limit.
	MaxBytes int64
	// MaxAge: delete sealed segments whose newest entry is older than this.
	// 0 means no age limit.
	MaxAge time.Duration
}

// DefaultOptions returns the default options.
func DefaultOptions() Options {
	return Options{
		SegmentSize:  256 << 20,
		MaxEntrySize: 64 << 20,
		Sync:         SyncEveryAppend,
		SyncInterval: 10 * time.Millisecond,
	}
}

func (o *Options) validate() error {
	if o.SegmentSize < segmentHeaderSize+frameHeaderSize || o.SegmentSize > 1<<30 {
		return fmt.Errorf("%w: SegmentSize %d out of range [%d, %d]", ErrInvalidOptions, o.SegmentSize, segmentHeaderSize+frameHeaderSize, 1<<30)
	}
	if o.MaxEntrySize < 1 || o.MaxEntrySize > maxEntrySizeLimit {
		return fmt.Errorf("%w: MaxEntrySize %d out of range [1, %d]", ErrInvalidOptions, o.MaxEntrySize, maxEntrySizeLimit)
	}
	switch o.Sync {
	case SyncEveryAppend, SyncNever:
	case SyncInterval:
		if o.SyncInterval <= 0 {
			return fmt.Errorf("%w: SyncInterval must be positive with the interval policy", ErrInvalidOptions)
		}
	default:
		return fmt.Errorf("%w: unknown sync policy %d", ErrInvalidOptions, o.Sync)
	}
	if o.PreallocBytes < 0 {
		return fmt.Errorf("%w: negative PreallocBytes", ErrInvalidOptions)
	}
	if o.Retention.MaxBytes < 0 || o.Retention.MaxAge < 0 {
		return fmt.Errorf("%w: negative retention", ErrInvalidOptions)
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}
