package wire

// KeyQueue is the queue a key maps to in a topic of queues queues: FNV-1a
// (32-bit) of the key bytes modulo the queue count. It is part of the API
// contract: the broker's JSON produce and the SDK both use it, so the same
// key always lands in the same queue while the queue count is unchanged.
func KeyQueue(key []byte, queues int) int {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return int(h % uint32(queues))
}
