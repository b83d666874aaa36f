#!/bin/bash
# docs/kafka.md's figures: the same workloads through the SDK and through
# the Kafka listener (franz-go), alternating, one sitting (~7 min).
#   bench/omb/issue14.sh [OUT]
set -eu
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "${1:-docs/benchmarks/issue14}")
go build -o /tmp/omb ./bench/omb/cmd/omb
D=${DURATION:-30s}
# 1. Max publish rate (linger 5 ms), CPU per message.
/tmp/omb run -workload bench/omb/workloads/1-topic-16-queues-1kb.yaml -duration $D -out "$OUT/max"
/tmp/omb run -workload bench/omb/workloads/kafka-1kb.yaml -duration $D -out "$OUT/max"
# 2. Latency at 20,000 msgs/s, linger 1 ms.
/tmp/omb run -workload bench/omb/workloads/1-topic-16-queues-1kb-fixed-rate.yaml -rate 20000 -linger-ms 1 -duration $D -out "$OUT/20k"
/tmp/omb run -workload bench/omb/workloads/kafka-1kb.yaml -rate 20000 -linger-ms 1 -duration $D -out "$OUT/20k"
# 3. Failover: the leader SIGKILLed every 15 s under 2,000 msgs/s.
/tmp/omb run -workload bench/omb/workloads/failover-1kb.yaml -out "$OUT/failover"
/tmp/omb run -workload bench/omb/workloads/kafka-failover-1kb.yaml -out "$OUT/failover"
