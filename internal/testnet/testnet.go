// Package testnet reserves free loopback ports for tests and benchmarks
// that start real nodes on 127.0.0.1.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Reserve picks n distinct free 127.0.0.1 ports and returns them as
// host:port. The ports are chosen at random below the kernel's ephemeral
// range and checked free by listening on them; they are released before
// returning, so another process could take one in between. Outside the
// ephemeral range no outgoing connection takes one as its source port
// (which, with ports from listening on port 0, happened often enough to
// fail test runs that open many connections); only another test picking
// the same random port can, which is rare.
func Reserve(n int) ([]string, error) {
	lo, hi := 10000, ephemeralLow()
	if hi-lo < 1000 { // an unusual range: fall back to the kernel's choice
		return reserveAny(n)
	}
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]string, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("reserve %d loopback ports: no free port in [%d, %d) after %d tries", n, lo, hi, tries)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(lo+rand.IntN(hi-lo)))
		if err != nil {
			continue // taken
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// ephemeralLow is the lowest port the kernel gives outgoing connections.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	v, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return v
}

// reserveAny lets the kernel choose (listening on port 0).
func reserveAny(n int) ([]string, error) {
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
