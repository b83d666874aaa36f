package testnet

import "testing"

func TestReserveDistinct(t *testing.T) {
	addrs := FreeAddrs(t, 8)
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s reserved twice", a)
		}
		seen[a] = true
	}
	if len(seen) != 8 {
		t.Fatalf("got %d addresses, want 8", len(seen))
	}
}
