// Package workdir prepares what every storage benchmark run needs: a
// temporary work directory on the file system being measured and, if
// asked for, a CPU profile of the whole run.
package workdir

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
)

// Open creates a temporary directory prefix* inside parent (os.TempDir()
// when parent is ""), starts a CPU profile written to profile unless it is
// "", and returns the directory and the function that stops the profile
// and removes the directory.
func Open(parent, prefix, profile string) (dir string, done func() error, err error) {
	if parent == "" {
		parent = os.TempDir()
	}
	dir, err = os.MkdirTemp(parent, prefix)
	if err != nil {
		return "", nil, fmt.Errorf("create work directory: %w", err)
	}
	remove := func() error { return os.RemoveAll(dir) }
	if profile == "" {
		return dir, remove, nil
	}
	f, err := os.Create(profile)
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("create CPU profile: %w", err), remove())
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return "", nil, errors.Join(fmt.Errorf("start CPU profile: %w", err), f.Close(), remove())
	}
	return dir, func() error {
		pprof.StopCPUProfile()
		return errors.Join(f.Close(), remove())
	}, nil
}
