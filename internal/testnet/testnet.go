// Package testnet reserves free loopback ports for tests and benchmarks
// that start real nodes on 127.0.0.1.
package testnet

import (
	"fmt"
	"net"
	"testing"
)

// Reserve picks n distinct free 127.0.0.1 ports by listening on port 0 and
// returns them as host:port. The ports are released before returning, so
// another process could take one in between; callers accept that small
// race.
func Reserve(n int) ([]string, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a loopback port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// FreeAddrs is Reserve for tests: it fails t instead of returning an
// error.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs, err := Reserve(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}
