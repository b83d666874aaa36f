//go:build !unix

package commitlog

import "os"

// lockFile on platforms without flock only creates the file: two logs on
// one directory are not detected there.
func lockFile(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	return f.Close, nil
}

func mmapFile(File, int64) ([]byte, error) { return nil, nil }

func munmap([]byte) error { return nil }
