#!/bin/bash
# Every figure of docs/benchmarks.md's "Issue 13" section, one run at a
# time, the two systems alternating (shared machine: noise hits both).
#   bench/omb/issue13.sh [OUT]       (from anywhere; ~25 min; needs nats-server, see docs/benchmarks.md)
# Each line below is also the one command for its figure.
set -eu
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "${1:-docs/benchmarks/issue13}")
go build -o /tmp/omb ./bench/omb/cmd/omb
(cd bench/nats && go build -o /tmp/ombnats ./cmd/ombnats)
WL=bench/omb/workloads/1-topic-16-queues-1kb.yaml
BL=bench/omb/workloads/backlog-1kb.yaml
D=${DURATION:-30s}
export OMB_NATS_ACK_TIMEOUT=${OMB_NATS_ACK_TIMEOUT:-30s} # no failover in these runs

# 1. Max publish rate, CPU per message, raw fsync baseline.
/tmp/omb run -workload $WL -duration $D -fsync-baseline -out "$OUT/max"
/tmp/ombnats run -workload $WL -driver nats -durability fsync -duration $D -fsync-baseline -out "$OUT/max"
/tmp/ombnats run -workload $WL -driver nats -durability default -duration $D -fsync-baseline -out "$OUT/max"

# 2. Latency–throughput curves (linger ≤ 1 ms; short points).
/tmp/omb curve -workload $WL -warmup 3s -duration ${CURVE_DURATION:-8s} -out "$OUT/curve"
/tmp/ombnats curve -workload $WL -driver nats -durability fsync -warmup 3s -duration ${CURVE_DURATION:-8s} -out "$OUT/curve"
/tmp/ombnats curve -workload $WL -driver nats -durability default -warmup 3s -duration ${CURVE_DURATION:-8s} -out "$OUT/curve"

# 3. Backlog drain with 1 and 4 consumers.
/tmp/omb run -workload $BL -backlog-gb ${BACKLOG_GB:-0.25} -out "$OUT/backlog"
/tmp/ombnats run -workload $BL -driver nats -durability fsync -backlog-gb ${BACKLOG_GB:-0.25} -out "$OUT/backlog"

# 4. Publish latency at 20,000 msgs/s with linger 1 ms (the issue's fixed-rate target).
FR=bench/omb/workloads/1-topic-16-queues-1kb-fixed-rate.yaml
/tmp/omb run -workload $FR -rate 20000 -linger-ms 1 -duration $D -out "$OUT/20k"
/tmp/ombnats run -workload $FR -driver nats -durability fsync -rate 20000 -linger-ms 1 -duration $D -out "$OUT/20k"
/tmp/ombnats run -workload $FR -driver nats -durability default -rate 20000 -linger-ms 1 -duration $D -out "$OUT/20k"

# Tables and charts.
/tmp/omb report -out "$OUT" "$OUT"/max/*.json "$OUT"/20k/*.json "$OUT"/curve/curve-*.json
