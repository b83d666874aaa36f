// Package topics is the replicated state of LedgerMQ's topics: their
// configuration and, per queue, the index that maps the queue's dense
// offsets to positions in the commit log. It is a deterministic state
// machine: the broker feeds it committed commands in log order on every
// node, so every node assigns the same offsets.
//
// Reads (Queue.Find, Lookup) run concurrently with Apply; each queue guards
// its index with its own lock, and the index only ever grows at its end.
//
// Caveat: the queue index lives in memory and in snapshots (about 40 bytes
// per stored batch). A persistent per-queue index file, like RocketMQ's
// consume queue, is the next step for very long retention.
package topics
