package testnet

import (
	"net"
	"strings"
	"testing"
)

// Reserve returns loopback ports that are already released: each can be
// listened on by the caller.
func TestReservedPortsAreFree(t *testing.T) {
	for _, n := range []int{0, 1, 5} {
		addrs, err := Reserve(n)
		if err != nil || len(addrs) != n {
			t.Fatalf("Reserve(%d) = %v, %v", n, addrs, err)
		}
		for _, a := range addrs {
			host, port, err := net.SplitHostPort(a)
			if err != nil || host != "127.0.0.1" || port == "0" || strings.TrimSpace(port) == "" {
				t.Fatalf("address %q: %v", a, err)
			}
			ln, err := net.Listen("tcp", a)
			if err != nil {
				t.Fatalf("reserved address %s is not free: %v", a, err)
			}
			ln.Close()
		}
	}
}
