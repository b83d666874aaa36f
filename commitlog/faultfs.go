package commitlog

import (
	"os"
	"sync/atomic"
)

// FaultFS wraps an FS to make its files fail on demand, as a dying disk
// does: fsync with EIO, writes with ENOSPC. It is for tests, in this
// package and in those built on it (replication's disk-failure tests, a
// fault lab). Faults apply to files opened before and after they are armed.
// It is safe for concurrent use.
type FaultFS struct {
	FS // the file system underneath; nil means OSFS{}

	syncErr  atomic.Pointer[error]
	writeErr atomic.Pointer[error]
	syncs    atomic.Int64 // fsyncs that failed
	writes   atomic.Int64 // writes that failed
}

// FailSync makes every following file fsync (and SyncDir) fail with err,
// e.g. syscall.EIO. A nil err heals it.
func (f *FaultFS) FailSync(err error) { f.syncErr.Store(errPtr(err)) }

// FailWrite makes every following write fail with err before writing
// anything, e.g. syscall.ENOSPC. A nil err heals it.
func (f *FaultFS) FailWrite(err error) { f.writeErr.Store(errPtr(err)) }

// Failed returns how many fsyncs and writes failed by injection.
func (f *FaultFS) Failed() (syncs, writes int64) { return f.syncs.Load(), f.writes.Load() }

func errPtr(err error) *error {
	if err == nil {
		return nil
	}
	return &err
}

func (f *FaultFS) base() FS {
	if f.FS == nil {
		return OSFS{}
	}
	return f.FS
}

func (f *FaultFS) syncFault(path string) error {
	if p := f.syncErr.Load(); p != nil {
		f.syncs.Add(1)
		return &os.PathError{Op: "fsync", Path: path, Err: *p}
	}
	return nil
}

func (f *FaultFS) writeFault(path string) error {
	if p := f.writeErr.Load(); p != nil {
		f.writes.Add(1)
		return &os.PathError{Op: "write", Path: path, Err: *p}
	}
	return nil
}

// MkdirAll implements FS.
func (f *FaultFS) MkdirAll(path string) error { return f.base().MkdirAll(path) }

// Remove implements FS.
func (f *FaultFS) Remove(path string) error { return f.base().Remove(path) }

// ReadDir implements FS.
func (f *FaultFS) ReadDir(path string) ([]string, error) { return f.base().ReadDir(path) }

// Lock implements FS.
func (f *FaultFS) Lock(path string) (func() error, error) { return f.base().Lock(path) }

// SyncDir implements FS.
func (f *FaultFS) SyncDir(path string) error {
	if err := f.syncFault(path); err != nil {
		return err
	}
	return f.base().SyncDir(path)
}

// OpenFile implements FS.
func (f *FaultFS) OpenFile(path string, flag int, perm os.FileMode) (File, error) {
	file, err := f.base().OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	ff := &faultFile{File: file, fs: f, path: path}
	if _, ok := file.(interface{ Fd() uintptr }); ok {
		return faultFdFile{ff}, nil
	}
	return ff, nil
}

type faultFile struct {
	File
	fs   *FaultFS
	path string
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.writeFault(f.path); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

// WriteVAt keeps vectored writes when the file underneath has them.
func (f *faultFile) WriteVAt(bufs [][]byte, off int64) (int, error) {
	if err := f.fs.writeFault(f.path); err != nil {
		return 0, err
	}
	if vw, ok := f.File.(vectorWriter); ok {
		return vw.WriteVAt(bufs, off)
	}
	var all []byte
	for _, b := range bufs {
		all = append(all, b...)
	}
	return f.File.WriteAt(all, off)
}

func (f *faultFile) Sync() error {
	if err := f.fs.syncFault(f.path); err != nil {
		return err
	}
	return f.File.Sync()
}

// Datasync fails as an fsync does; over a file without it, it is an
// fsync.
func (f *faultFile) Datasync() error {
	if err := f.fs.syncFault(f.path); err != nil {
		return err
	}
	if ds, ok := f.File.(datasyncer); ok {
		return ds.Datasync()
	}
	return f.File.Sync()
}

// SyncRange fails as an fsync does; it is a hint, so over a file without
// it it does nothing.
func (f *faultFile) SyncRange(off, n int64) error {
	if err := f.fs.syncFault(f.path); err != nil {
		return err
	}
	if rs, ok := f.File.(rangeSyncer); ok {
		return rs.SyncRange(off, n)
	}
	return nil
}

// faultFdFile is a faultFile over an OS file: sealed index files stay
// memory-mapped through its descriptor.
type faultFdFile struct{ *faultFile }

func (f faultFdFile) Fd() uintptr { return f.File.(interface{ Fd() uintptr }).Fd() }
