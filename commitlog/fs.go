package commitlog

import (
	"fmt"
	"io"
	"os"
)

// FS is the file system a Log lives on. It is the seam for fault injection:
// tests wrap OSFS to fail or tear writes. Paths are OS paths.
type FS interface {
	// MkdirAll creates a directory and its parents.
	MkdirAll(path string) error
	// OpenFile opens a file like os.OpenFile.
	OpenFile(path string, flag int, perm os.FileMode) (File, error)
	// Remove removes a file; a missing file is not an error.
	Remove(path string) error
	// ReadDir lists the names of the entries of a directory.
	ReadDir(path string) ([]string, error)
	// SyncDir makes creations and removals in a directory durable.
	SyncDir(path string) error
	// Lock takes an exclusive advisory lock on a file, creating it, and
	// returns its release function. It fails with ErrLocked if held.
	Lock(path string) (release func() error, err error)
}

// File is an open file. ReadAt must be safe for concurrent use with itself,
// Write and Sync.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	Truncate(size int64) error
	Sync() error
	Size() (int64, error)
}

// vectorWriter is an optional interface of File: WriteVAt writes the
// concatenation of bufs at off, like WriteAt (an error if not all of it was
// written), with one system call where it can. Append uses it to write a
// large entry from the caller's memory, next to the frames encoded around
// it, instead of copying it into its encode buffer. A File without it (a
// test's wrapper, say) gets one WriteAt of copied bytes per segment write.
type vectorWriter interface {
	WriteVAt(bufs [][]byte, off int64) (int, error)
}

// consumeBufs drops the first n bytes of bufs, and any empty buffers that
// then lead it: what is left to write after a vectored write of n bytes.
func consumeBufs(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if n > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
}

// OSFS is the operating system's file system.
type OSFS struct{}

// MkdirAll implements FS.
func (OSFS) MkdirAll(path string) error { return os.MkdirAll(path, 0o755) }

// OpenFile implements FS.
func (OSFS) OpenFile(path string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Remove implements FS.
func (OSFS) Remove(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// ReadDir implements FS.
func (OSFS) ReadDir(path string) ([]string, error) {
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// SyncDir implements FS.
func (OSFS) SyncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return fmt.Errorf("sync dir %s: %w", path, serr)
	}
	return cerr
}

// Lock implements FS.
func (OSFS) Lock(path string) (func() error, error) { return lockFile(path) }

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Fd exposes the descriptor so sealed index files can be memory-mapped.
func (f osFile) Fd() uintptr { return f.File.Fd() }
