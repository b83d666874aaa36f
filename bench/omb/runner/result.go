package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ledgermq/ledgermq/bench/omb/workload"
)

// Result is one run, written as JSON by the command and read by the report.
type Result struct {
	System    string            `json:"system"`
	Workload  workload.Workload `json:"workload"`
	StartedAt time.Time         `json:"startedAt"`
	Machine   Machine           `json:"machine"`

	// Counts inside the measurement window (after the warm-up).
	Published     int64   `json:"published"`     // acknowledged
	PublishErrors int64   `json:"publishErrors"` // whole run
	Consumed      int64   `json:"consumed"`
	PublishRate   float64 `json:"publishRate"` // msgs/s
	ConsumeRate   float64 `json:"consumeRate"` // msgs/s
	PublishMBps   float64 `json:"publishMBps"` // payload bytes, MB = 10^6

	PublishLatency Latency `json:"publishLatency"` // send → acknowledged
	E2ELatency     Latency `json:"e2eLatency"`     // send → received

	Series []Sample `json:"series"` // one per second of the window

	// Whole run, after reading everything back.
	Acked      int64 `json:"acked"`
	Lost       int64 `json:"lost"`       // acknowledged, never received
	Duplicates int64 `json:"duplicates"` // receptions beyond the first

	Kills []Kill `json:"kills,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	GoVersion string `json:"goVersion"`
	NumCPU    int    `json:"numCPU"`
	LoadAvg   string `json:"loadAvg"`
}

// Latency holds percentiles in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P75   float64 `json:"p75"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// Sample is one second of the measurement window.
type Sample struct {
	T            int     `json:"t"` // seconds since the window started
	PublishRate  float64 `json:"publishRate"`
	ConsumeRate  float64 `json:"consumeRate"`
	PublishP99Ms float64 `json:"publishP99Ms"`
}

// Kill is one leader kill of a failover run.
type Kill struct {
	Node string  `json:"node"`
	AtS  float64 `json:"atS"` // seconds since the window started
	// FirstAckMs: from the kill to the first acknowledgement of a message
	// sent after the kill (-1: none within the timeout).
	FirstAckMs float64 `json:"firstAckMs"`
	// MaxGapMs: longest interval between consecutive acknowledgements from
	// 1 s before the kill to 1 s after the first acknowledgement.
	MaxGapMs float64 `json:"maxGapMs"`
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 600_000_000, 3) } // µs

func latencyOf(h *hdrhistogram.Histogram) Latency {
	ms := func(v int64) float64 { return float64(v) / 1000 }
	return Latency{Count: h.TotalCount(), Mean: h.Mean() / 1000, P50: ms(h.ValueAtQuantile(50)), P75: ms(h.ValueAtQuantile(75)),
		P95: ms(h.ValueAtQuantile(95)), P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
}

// WriteResult writes r as dir/<workload>-<system>-<time>.json.
func WriteResult(dir string, r *Result) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.json", r.Workload.Name, r.System, r.StartedAt.UTC().Format("20060102T150405")))
	return path, os.WriteFile(path, append(data, '\n'), 0o644)
}
