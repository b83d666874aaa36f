// Package testnet holds helpers shared by the tests that start real nodes
// on loopback. It is imported only from _test.go files.
package testnet

import (
	"net"
	"testing"
)

// FreeAddrs reserves n distinct 127.0.0.1 ports and returns them as
// host:port. The ports are released before returning, so another process
// could take one in between; tests accept that small race.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	lns := make([]net.Listener, 0, n)
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}
