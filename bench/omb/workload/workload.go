// Package workload reads OpenMessaging-Benchmark-shaped workload files
// (YAML) for bench/omb.
package workload

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
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
	// Fault names a leader fault (kill, stall, blackhole, partition;
	// driver.Fault) injected every FaultEvery inside the window and healed
	// after FaultHold (defaults: DefaultHold). A fault workload runs every
	// node in a network namespace of its own (needs root) and needs a
	// driver that implements driver.FaultInjector. killLeaderEvery is the
	// older, namespace-free kill loop; it cannot be combined with fault.
	Fault      string   `yaml:"fault" json:"fault,omitempty"`
	FaultHold  Duration `yaml:"faultHold" json:"faultHold,omitempty"`
	FaultEvery Duration `yaml:"faultEvery" json:"faultEvery,omitempty"`
	// FsyncBaseline: after the run, time write+fsync of 100 KiB chunks in
	// the cluster's directory for the test duration (at most 10 s).
	FsyncBaseline bool `yaml:"fsyncBaseline" json:"fsyncBaseline,omitempty"`
	// MaxOutstandingBytes bounds each producer's unacknowledged payload in
	// the runner (default DefaultMaxOutstandingBytes); a driver may bound
	// its in-flight messages lower (driver.InFlightSetter).
	MaxOutstandingBytes int `yaml:"maxOutstandingBytes" json:"maxOutstandingBytes,omitempty"`
	// ConsumerBacklogSizeGB (OMB's field; GB = 10^9 bytes of payload)
	// makes a backlog-drain workload: the producers publish that much with
	// no consumer reading, then BacklogConsumers (default 1 and 4)
	// consumers read it all from the start, the queues split between them.
	ConsumerBacklogSizeGB float64 `yaml:"consumerBacklogSizeGB" json:"consumerBacklogSizeGB,omitempty"`
	BacklogConsumers      []int   `yaml:"backlogConsumers" json:"backlogConsumers,omitempty"`
}

// DefaultMaxOutstandingBytes is a producer's default bound on
// unacknowledged payload (8 MiB: 8192 messages of 1 KiB).
const DefaultMaxOutstandingBytes = 8 << 20

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
	if w.ConsumerBacklogSizeGB > 0 {
		if len(w.BacklogConsumers) == 0 {
			w.BacklogConsumers = []int{1, 4}
		}
		if w.Test.Duration == 0 { // a drain runs until the backlog is read
			w.Test.Duration = time.Second
		}
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
	def(&w.MaxOutstandingBytes, DefaultMaxOutstandingBytes)
	if w.Durability == "" {
		w.Durability = "fsync"
	}
	if err := w.SetFault(w.Fault, w.FaultHold.Duration); err != nil {
		return nil, err
	}
	switch {
	case w.Test.Duration <= 0:
		return nil, errors.New("workload: testDuration or testDurationMinutes must be positive")
	case w.MessageSize < 16:
		return nil, errors.New("workload: messageSize must be at least 16 (8-byte timestamp + 8-byte id)")
	case w.ConsumerBacklogSizeGB < 0 || slices.ContainsFunc(w.BacklogConsumers, func(n int) bool { return n < 1 }):
		return nil, errors.New("workload: consumerBacklogSizeGB must not be negative and backlogConsumers must be >= 1")
	case w.ProducerRate < 0 || w.BatchBytes < 0 || w.LingerMs < 0 || w.MaxOutstandingBytes < 0:
		return nil, errors.New("workload: producerRate, batchBytes, lingerMs and maxOutstandingBytes must not be negative")
	}
	return w, nil
}

// ID names the workload in results and reports: its name, with "-<fault>"
// appended for a fault workload whose name does not end with the fault.
func (w *Workload) ID() string {
	if w.Fault == "" || strings.HasSuffix(w.Name, "-"+w.Fault) {
		return w.Name
	}
	return w.Name + "-" + w.Fault
}

// Linger is LingerMs as a duration.
func (w *Workload) Linger() time.Duration {
	return time.Duration(w.LingerMs * float64(time.Millisecond))
}

// DefaultHold is how long each fault lasts unless faultHold says otherwise.
var DefaultHold = map[string]time.Duration{
	"kill":      1 * time.Second, // restart after
	"stall":     3 * time.Second, // SIGCONT after
	"blackhole": 5 * time.Second,
	"partition": 5 * time.Second,
}

// defaultFaultEvery is the fault period when neither faultEvery nor
// killLeaderEvery gives one.
const defaultFaultEvery = 12 * time.Second

// SetFault makes w a fault workload of the given fault ("" leaves w
// without one) held for hold (0: DefaultHold). A killLeaderEvery period
// becomes the fault period.
func (w *Workload) SetFault(fault string, hold time.Duration) error {
	if fault == "" {
		if w.FaultHold.Duration != 0 || w.FaultEvery.Duration != 0 {
			return errors.New("workload: faultHold and faultEvery need a fault")
		}
		return nil
	}
	def, ok := DefaultHold[fault]
	if !ok {
		return fmt.Errorf("workload: unknown fault %q (want kill, stall, blackhole or partition)", fault)
	}
	if hold < 0 || w.FaultEvery.Duration < 0 {
		return errors.New("workload: faultHold and faultEvery must not be negative")
	}
	if hold == 0 {
		hold = def
	}
	if w.FaultEvery.Duration == 0 {
		w.FaultEvery.Duration = w.KillLeaderEvery.Duration
	}
	if w.FaultEvery.Duration == 0 {
		w.FaultEvery.Duration = defaultFaultEvery
	}
	if hold >= w.FaultEvery.Duration {
		return fmt.Errorf("workload: faultHold %s must be shorter than the fault period %s", hold, w.FaultEvery.Duration)
	}
	w.Fault, w.FaultHold.Duration, w.KillLeaderEvery.Duration = fault, hold, 0
	return nil
}
