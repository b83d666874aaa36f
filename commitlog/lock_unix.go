//go:build unix

package commitlog

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

func lockFile(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() error {
		uerr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		cerr := f.Close()
		return errors.Join(uerr, cerr)
	}, nil
}

// mmapFile maps size bytes of f read-only. It returns nil, nil when f cannot
// be mapped (not an OS file), in which case callers read the file instead.
func mmapFile(f File, size int64) ([]byte, error) {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok || size == 0 {
		return nil, nil
	}
	b, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func munmap(b []byte) error {
	if b == nil {
		return nil
	}
	return syscall.Munmap(b)
}
