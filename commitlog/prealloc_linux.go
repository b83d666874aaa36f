package commitlog

import "golang.org/x/sys/unix"

// Datasync implements datasyncer with fdatasync(2).
func (f osFile) Datasync() error {
	return f.control(func(fd int) error { return unix.Fdatasync(fd) })
}

// SyncRange implements rangeSyncer with sync_file_range(2): write the
// range's dirty pages back and wait for them.
func (f osFile) SyncRange(off, n int64) error {
	return f.control(func(fd int) error {
		return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	})
}

// control runs op on the descriptor, retrying on EINTR.
func (f osFile) control(op func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var oerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if oerr = op(int(fd)); oerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return oerr
}
