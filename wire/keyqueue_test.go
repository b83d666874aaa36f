package wire

import (
	"hash/fnv"
	"math/rand/v2"
	"testing"
)

// KeyQueue is a wire contract: it must stay FNV-1a 32-bit modulo the queue
// count (checked against known vectors and the standard library).
func TestKeyQueueIsFNV1a(t *testing.T) {
	if got := KeyQueue(nil, 1<<31); got != 0x811c9dc5%(1<<31) {
		t.Fatalf("empty key: %d", got)
	}
	if got := KeyQueue([]byte("a"), 1<<31); got != 0xe40c292c%(1<<31) {
		t.Fatalf(`key "a": %d`, got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		key := make([]byte, rng.IntN(40))
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		n := 1 + rng.IntN(1024)
		h := fnv.New32a()
		h.Write(key)
		if got, want := KeyQueue(key, n), int(h.Sum32()%uint32(n)); got != want {
			t.Fatalf("KeyQueue(%x, %d) = %d, want %d", key, n, got, want)
		}
	}
}
