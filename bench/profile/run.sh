#!/usr/bin/env bash
# Profiles the three brokers of an OMB run: CPU (and allocations) of every
# node over a window of the measurement phase, then prints the top of each.
#
#   bench/profile/run.sh [workload.yaml] [seconds] [out-dir] [omb flags...]
#   bench/profile/run.sh bench/omb/workloads/1-topic-16-queues-1kb.yaml 20 /tmp/prof -duration 40s
#
# Every broker serves its profiles on a free loopback port
# (LEDGERMQ_PPROF_LISTEN=127.0.0.1:0) and writes it to <data-dir>/pprof.addr.
set -euo pipefail
workload=${1:-bench/omb/workloads/1-topic-16-queues-1kb.yaml}
secs=${2:-20}
out=${3:-/tmp/ledgermq-profile}
shift $(( $# < 3 ? $# : 3 ))
mkdir -p "$out"
go build -o "$out/omb" ./bench/omb/cmd/omb
start=$(date +%s)
LEDGERMQ_PPROF_LISTEN=127.0.0.1:0 "$out/omb" run -workload "$workload" -driver ledgermq -out "$out" "$@" > "$out/omb.log" 2>&1 &
omb=$!
# Wait for the measurement phase (the runner logs "test" lines), then find
# the nodes of this run: data dirs created after it started.
for _ in $(seq 1 300); do
	grep -q "^test " "$out/omb.log" 2>/dev/null && break
	sleep 0.2
done
addrs=()
for f in /tmp/omb-ledgermq-*/n*/pprof.addr; do
	[ -f "$f" ] && [ "$(stat -c %Y "$f")" -ge "$start" ] && addrs+=("$(basename "$(dirname "$f")")=$(cat "$f")")
done
if [ ${#addrs[@]} -eq 0 ]; then
	echo "no broker profile addresses found" >&2
	kill $omb 2>/dev/null || true
	exit 1
fi
for a in "${addrs[@]}"; do
	id=${a%%=*} addr=${a#*=}
	curl -s -o "$out/$id.cpu.pprof" "http://$addr/debug/pprof/profile?seconds=$secs" &
done
wait $(jobs -p | grep -v "^$omb$") 2>/dev/null || true
for a in "${addrs[@]}"; do
	id=${a%%=*} addr=${a#*=}
	curl -s -o "$out/$id.allocs.pprof" "http://$addr/debug/pprof/allocs"
done
wait $omb || true
tail -5 "$out/omb.log"
for a in "${addrs[@]}"; do
	id=${a%%=*}
	echo "=== $id CPU"
	go tool pprof -top -nodecount 25 "$out/$id.cpu.pprof" 2>/dev/null | sed -n '1,32p'
done
