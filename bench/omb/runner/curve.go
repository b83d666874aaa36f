package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CurveKind marks a Curve's JSON file (field "kind"), so that `omb report`
// tells it from a Result.
const CurveKind = "latency-throughput-curve"

// CurvePercents are the fixed rates of a latency–throughput curve, in
// percent of the measured maximum rate.
var CurvePercents = []float64{5, 10, 25, 50, 75, 90, 100}

// Curve is a latency–throughput curve of one system: the maximum publish
// rate of a workload, then one fixed-rate run at each percentage of it
// (each with a fresh cluster).
type Curve struct {
	Kind      string    `json:"kind"` // CurveKind
	System    string    `json:"system"`
	Workload  string    `json:"workload"`
	StartedAt time.Time `json:"startedAt"`
	LingerMs  float64   `json:"lingerMs"`
	MaxRate   float64   `json:"maxRate"` // msgs/s of the max-rate run
	// Max is the max-rate run's point (Percent 0, TargetRate 0).
	Max    CurvePoint   `json:"max"`
	Points []CurvePoint `json:"points"`
}

// CurvePoint is one run of a curve.
type CurvePoint struct {
	Percent        float64 `json:"percent"`
	TargetRate     int     `json:"targetRate"`  // msgs/s asked for (0: max)
	PublishRate    float64 `json:"publishRate"` // msgs/s acknowledged
	PublishLatency Latency `json:"publishLatency"`
	E2ELatency     Latency `json:"e2eLatency"`
	CPU            *CPU    `json:"cpu,omitempty"`
	Result         string  `json:"result"` // the run's result JSON file
}

// PointOf is the curve point of a run.
func PointOf(pct float64, res *Result, path string) CurvePoint {
	return CurvePoint{Percent: pct, TargetRate: res.Workload.ProducerRate, PublishRate: res.PublishRate,
		PublishLatency: res.PublishLatency, E2ELatency: res.E2ELatency, CPU: res.CPU, Result: filepath.Base(path)}
}

// WriteCurve writes c as dir/curve-<workload>-<system>-<time>.json.
func WriteCurve(dir string, c *Curve) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("curve-%s-%s-%s.json", c.Workload, c.System, c.StartedAt.UTC().Format("20060102T150405")))
	return path, os.WriteFile(path, append(data, '\n'), 0o644)
}
