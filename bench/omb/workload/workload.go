// Package workload reads OpenMessaging-Benchmark-shaped workload files
// (YAML) for bench/omb.
package workload

import (
	"errors"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// Workload is one benchmark scenario. Field names follow OMB's workload
// files; durations accept Go duration strings ("10s", "1m") or, for the
// *Minutes/*Ms fields, numbers.
type Workload struct {
	Name              string   `yaml:"name" json:"name"`
	Topics            int      `yaml:"topics" json:"topics"`
	QueuesPerTopic    int      `yaml:"queuesPerTopic" json:"queuesPerTopic"`
	MessageSize       int      `yaml:"messageSize" json:"messageSize"`
	ProducersPerTopic int      `yaml:"producersPerTopic" json:"producersPerTopic"`
	ConsumersPerTopic int      `yaml:"consumersPerTopic" json:"consumersPerTopic"`
	ProducerRate      int      `yaml:"producerRate" json:"producerRate"` // msgs/s over all producers; 0 = as fast as possible
	Warmup            Duration `yaml:"warmupDuration" json:"warmupDuration"`
	TestMinutes       float64  `yaml:"testDurationMinutes" json:"testDurationMinutes,omitempty"`
	Test              Duration `yaml:"testDuration" json:"testDuration"` // wins over testDurationMinutes
	BatchBytes        int      `yaml:"batchBytes" json:"batchBytes"`
	LingerMs          float64  `yaml:"lingerMs" json:"lingerMs"`
	KillLeaderEvery   Duration `yaml:"killLeaderEvery" json:"killLeaderEvery,omitempty"` // 0 = no failover
	Durability        string   `yaml:"durability" json:"durability"`                     // "fsync" (default) or "default"
	// ProduceAPI picks one of a driver's client APIs (driver.ProduceAPISetter;
	// LedgerMQ: sdk, json, binary); "" = the driver's default.
	ProduceAPI string `yaml:"produceAPI" json:"produceAPI,omitempty"`
	// FsyncBaseline: after the run, time write+fsync of 100 KiB chunks in
	// the cluster's directory for the test duration (at most 10 s).
	FsyncBaseline bool `yaml:"fsyncBaseline" json:"fsyncBaseline,omitempty"`
}

// Duration is a time.Duration read from a Go duration string.
type Duration struct{ time.Duration }

// UnmarshalYAML accepts "10s" style strings.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration string (JSON results).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration string (JSON results).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	d.Duration = v
	return err
}

// Load reads and validates a workload file.
func Load(path string) (*Workload, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse decodes and validates workload YAML, filling defaults.
func Parse(data []byte) (*Workload, error) {
	w := &Workload{}
	if err := yaml.Unmarshal(data, w); err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	if w.Test.Duration == 0 {
		w.Test.Duration = time.Duration(w.TestMinutes * float64(time.Minute))
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&w.Topics, 1)
	def(&w.QueuesPerTopic, 1)
	def(&w.MessageSize, 1024)
	def(&w.ProducersPerTopic, 1)
	def(&w.ConsumersPerTopic, 1)
	if w.Durability == "" {
		w.Durability = "fsync"
	}
	switch {
	case w.Test.Duration <= 0:
		return nil, errors.New("workload: testDuration or testDurationMinutes must be positive")
	case w.MessageSize < 16:
		return nil, errors.New("workload: messageSize must be at least 16 (8-byte timestamp + 8-byte id)")
	case w.ProducerRate < 0 || w.BatchBytes < 0 || w.LingerMs < 0:
		return nil, errors.New("workload: producerRate, batchBytes and lingerMs must not be negative")
	}
	return w, nil
}

// Linger is LingerMs as a duration.
func (w *Workload) Linger() time.Duration {
	return time.Duration(w.LingerMs * float64(time.Millisecond))
}
