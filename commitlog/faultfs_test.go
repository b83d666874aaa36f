package commitlog

import (
	"errors"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestFsyncFailureLatches checks that a failed fsync makes the log refuse
// writes, reports the failure through Failure and OnFail exactly once, and
// that a reopen on a healed disk keeps what was durable.
func TestFsyncFailureLatches(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncEveryAppend, SyncInterval} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			fsys := &FaultFS{}
			var calls atomic.Int32
			failed := make(chan error, 4)
			o := testOptions()
			o.Sync = policy
			o.SyncInterval = time.Millisecond
			o.FS = fsys
			o.OnFail = func(err error) { calls.Add(1); failed <- err }
			l := mustOpen(t, dir, o)
			es := entries(1, 6)
			if err := l.Append(es[:3]); err != nil {
				t.Fatal(err)
			}
			if policy == SyncInterval {
				if err := l.syncer.syncNow(); err != nil {
					t.Fatal(err)
				}
			}
			fsys.FailSync(syscall.EIO)
			err := l.Append(es[3:4])
			if policy == SyncEveryAppend && !errors.Is(err, ErrFailed) {
				t.Fatalf("Append over a failing fsync = %v, want ErrFailed", err)
			}
			var got error
			select {
			case got = <-failed: // the background fsync fails within an interval
			case <-time.After(5 * time.Second):
				t.Fatal("OnFail was not called")
			}
			if !errors.Is(got, ErrFailed) || !errors.Is(got, syscall.EIO) {
				t.Fatalf("OnFail(%v), want ErrFailed wrapping EIO", got)
			}
			if err := l.Failure(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Failure() = %v", err)
			}
			fsys.FailSync(nil) // a healed disk does not make the log trust its pages again
			if err := l.Append(es[4:]); !errors.Is(err, ErrFailed) {
				t.Fatalf("Append after the failure = %v, want ErrFailed", err)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("OnFail called %d times, want 1", n)
			}
			l.Close()
			l = mustOpen(t, dir, testOptions())
			defer l.Close()
			if l.Failure() != nil {
				t.Fatal("a reopened log reports the old failure")
			}
			// Entry 4 was written but its fsync failed: it may or may not
			// be there; what was durable is.
			last := l.LastIndex()
			if last < 3 || last > 4 {
				t.Fatalf("reopened log ends at %d, want 3 or 4", last)
			}
			checkContents(t, l, 1, last)
		})
	}
}

// TestWriteFailureIsNotSticky: a write refused before anything reached the
// file (ENOSPC) leaves the log consistent, so the log itself goes on; an
// owner that wants to stop at the first error (replication does) decides
// that above the log.
func TestWriteFailureIsNotSticky(t *testing.T) {
	fsys := &FaultFS{}
	o := testOptions()
	o.FS = fsys
	o.OnFail = func(err error) { t.Errorf("OnFail(%v) for a clean write failure", err) }
	l := mustOpen(t, t.TempDir(), o)
	defer l.Close()
	es := entries(1, 4)
	if err := l.Append(es[:2]); err != nil {
		t.Fatal(err)
	}
	fsys.FailWrite(syscall.ENOSPC)
	if err := l.Append(es[2:]); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk = %v, want ENOSPC", err)
	}
	if _, w := fsys.Failed(); w == 0 {
		t.Fatal("no write was failed")
	}
	fsys.FailWrite(nil)
	if l.Failure() != nil || l.LastIndex() != 2 {
		t.Fatalf("after a clean write failure: Failure %v, LastIndex %d", l.Failure(), l.LastIndex())
	}
	if err := l.Append(es[2:]); err != nil {
		t.Fatal(err)
	}
	checkContents(t, l, 1, 4)
}
