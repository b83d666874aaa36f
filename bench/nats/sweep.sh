#!/bin/bash
# The NATS driver sweep of docs/benchmarks.md ("NATS at its best"): the
# in-flight window per producer × producers, with sync_interval: always
# (fsync before ack) and NATS's default, short max-rate runs one at a time,
# then the nats-bench-style cross-check (ombnats asyncbench).
#   bench/nats/sweep.sh [OUT]      (from the repository root; ~7 min)
set -eu
cd "$(dirname "$0")"
OUT=$(realpath -m "${1:-../../docs/benchmarks/nats-sweep}")
go build -o /tmp/ombnats ./cmd/ombnats
WL=../omb/workloads/1-topic-16-queues-1kb.yaml
# No failover here: a long ack timeout keeps large windows from resending.
export OMB_NATS_ACK_TIMEOUT=${OMB_NATS_ACK_TIMEOUT:-30s}
one() { # durability inflight producers
	echo "=== $1 inflight=$2 producers=$3 $(date +%T) load=$(cut -d' ' -f1 /proc/loadavg)"
	/tmp/ombnats run -workload $WL -driver nats -durability "$1" -inflight "$2" -producers "$3" \
		-max-outstanding 67108864 -warmup 4s -duration 12s -out "$OUT" 2>"$OUT/last.err" | grep -E '^1-topic|CPU in'
}
for dur in fsync default; do
	for inf in 256 1024 4096 16384; do one $dur $inf 4; done
	for p in 1 16; do one $dur 4096 $p; done
done
for dur in fsync default; do
	for pend in 1024 4096; do
		/tmp/ombnats asyncbench -durability $dur -producers 4 -pending $pend -warmup 4s -duration 12s 2>/dev/null
	done
done
rm -f "$OUT/last.err"
