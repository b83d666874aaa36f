//go:build darwin || linux || openbsd

package commitlog

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// iovMax is the most buffers one pwritev takes (IOV_MAX on Linux, macOS and
// OpenBSD).
const iovMax = 1024

// WriteVAt implements vectorWriter with pwritev(2). pwritev may write less
// than asked (a signal, a nearly full disk); the rest is written by further
// calls, and an error is returned only if the write cannot be completed.
func (f osFile) WriteVAt(bufs [][]byte, off int64) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	// Skipping written bytes below rewrites the list; work on a copy so the
	// caller's list is left as it was. Empty buffers are dropped as written.
	var local [8][]byte
	bufs = consumeBufs(append(local[:0], bufs...), 0)
	total := 0
	for len(bufs) > 0 {
		var n int
		var werr error
		// RawConn.Write holds a reference to the descriptor, so a concurrent
		// Close cannot hand its number to another file mid-call.
		if err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Pwritev(int(fd), bufs[:min(len(bufs), iovMax)], off)
			return true // a regular file is never "not ready"
		}); err != nil {
			return total, err
		}
		if errors.Is(werr, unix.EINTR) {
			continue
		}
		if werr != nil {
			return total, &os.PathError{Op: "pwritev", Path: f.Name(), Err: werr}
		}
		if n == 0 {
			return total, &os.PathError{Op: "pwritev", Path: f.Name(), Err: io.ErrShortWrite}
		}
		total += n
		off += int64(n)
		bufs = consumeBufs(bufs, n)
	}
	return total, nil
}
