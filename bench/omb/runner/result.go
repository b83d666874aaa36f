package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/bench/omb/workload"
	"github.com/ledgermq/ledgermq/internal/stats"
)

// Result is one run, written as JSON by the command and read by the report.
type Result struct {
	System    string            `json:"system"`
	Workload  workload.Workload `json:"workload"`
	StartedAt time.Time         `json:"startedAt"`
	Machine   Machine           `json:"machine"`
	// DriverSettings are the driver's own settings
	// (driver.SettingsReporter), e.g. the NATS producers' in-flight window.
	DriverSettings map[string]string `json:"driverSettings,omitempty"`

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

	// ReadBack is a second read of everything by fresh consumers after the
	// run (failover and fault runs): it tells duplicates stored in the log
	// from messages the live consumer received twice.
	ReadBack *ReadBack `json:"readBack,omitempty"`

	// Kills are the leader kills (killLeaderEvery) or, for a fault
	// workload, the fault events (Kill.Fault set).
	Kills []Kill `json:"kills,omitempty"`
	// FirstAck and CatchUp summarize the kills' FirstAckMs (kills without
	// one left out) and CatchUpMs.
	FirstAck *stats.Summary `json:"firstAck,omitempty"`
	CatchUp  *stats.Summary `json:"catchUp,omitempty"`

	// Leadership compares the nodes' leader changes and terms at the start
	// and the end of the window (drivers with driver.LeaderStats).
	Leadership *Leadership `json:"leadership,omitempty"`

	// CPU is the CPU time of the window per published message (drivers
	// with driver.CPUReporter; runs without kills or faults).
	CPU *CPU `json:"cpu,omitempty"`

	// Fsync is the raw write+fsync baseline (workload fsyncBaseline), and
	// PublishOverFsync publishMBps ÷ its MB/s.
	// Backlog is the backlog drain of a consumerBacklogSizeGB workload.
	Backlog *Backlog `json:"backlog,omitempty"`

	Fsync            *Fsync  `json:"fsync,omitempty"`
	PublishOverFsync float64 `json:"publishOverFsync,omitempty"`
}

// ReadBack is the second read-back: acknowledged messages it did not
// find, and receptions beyond the first (copies stored in the log).
type ReadBack struct {
	Received   int64 `json:"received"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
}

// Machine describes where the run happened.
type Machine struct {
	GoVersion string `json:"goVersion"`
	NumCPU    int    `json:"numCPU"`
	LoadAvg   string `json:"loadAvg"`
}

// Latency holds percentiles in milliseconds (package internal/stats).
type Latency = stats.Summary

// Sample is one second of the measurement window.
type Sample struct {
	T            int     `json:"t"` // seconds since the window started
	PublishRate  float64 `json:"publishRate"`
	ConsumeRate  float64 `json:"consumeRate"`
	PublishP99Ms float64 `json:"publishP99Ms"`
}

// Leadership is LeaderStats read at the start and at the end of the
// measurement window.
type Leadership struct {
	Start map[string]driver.NodeLeaderStats `json:"start"`
	End   map[string]driver.NodeLeaderStats `json:"end"`
	// LeaderChanges: the most leader changes any node observed in the
	// window; TermChange: highest term at the end − highest at the start.
	LeaderChanges uint64 `json:"leaderChanges"`
	TermChange    uint64 `json:"termChange"`
}

// Kill is one leader kill of a failover run, or one fault event of a fault
// workload: then the times count from the injection (when
// FaultInjector.Inject returned), MaxGapMs covers 1 s before the injection
// to 1 s after the later of the first acknowledgement and the heal, and
// CatchUpMs runs from the heal until FaultInjector.WaitHealthy returned.
type Kill struct {
	Fault  string  `json:"fault,omitempty"`
	HealMs float64 `json:"healMs,omitempty"` // injection → heal (the hold, plus the heal's own time)
	Node   string  `json:"node"`
	AtS    float64 `json:"atS"` // seconds since the window started
	// FirstAckMs: from the kill to the first acknowledgement of a message
	// sent after the kill (-1: none within the timeout).
	FirstAckMs float64 `json:"firstAckMs"`
	// MaxGapMs: longest interval between consecutive acknowledgements from
	// 1 s before the kill to 1 s after the first acknowledgement.
	MaxGapMs float64 `json:"maxGapMs"`
	// CatchUpMs: from the restart until the driver (driver.CatchUpWaiter)
	// reported the node caught up with the leader; 0 if not measured.
	CatchUpMs float64 `json:"catchUpMs,omitempty"`
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
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.json", r.Workload.ID(), r.System, r.StartedAt.UTC().Format("20060102T150405")))
	return path, os.WriteFile(path, append(data, '\n'), 0o644)
}
