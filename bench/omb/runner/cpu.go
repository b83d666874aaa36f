package runner

import (
	"syscall"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
)

// CPU is the CPU time used in the measurement window: by the system's
// server processes (driver.CPUReporter) and by this process (the
// benchmark's clients: producers, consumers, the runner), and each per
// published message. Runs with leader kills or faults have none (a
// restarted node's counters start again).
type CPU struct {
	ServerSeconds  float64 `json:"serverSeconds"`
	ClientSeconds  float64 `json:"clientSeconds"`
	ServerUsPerMsg float64 `json:"serverUsPerMsg"`
	ClientUsPerMsg float64 `json:"clientUsPerMsg"`
}

// cpuReading is one reading of both counters.
type cpuReading struct{ server, client time.Duration }

// readCPU reads d's server CPU and this process's; ok is false when d
// cannot tell or the reading failed.
func readCPU(d driver.Driver) (cpuReading, bool) {
	cr, ok := d.(driver.CPUReporter)
	if !ok {
		return cpuReading{}, false
	}
	server, err := cr.ServerCPU()
	if err != nil {
		return cpuReading{}, false
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return cpuReading{}, false
	}
	client := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpuReading{server: server, client: client}, true
}

// cpuUsed is the CPU between two readings, per message of msgs.
func cpuUsed(start, end cpuReading, msgs int64) *CPU {
	c := &CPU{ServerSeconds: (end.server - start.server).Seconds(), ClientSeconds: (end.client - start.client).Seconds()}
	if msgs > 0 {
		c.ServerUsPerMsg = c.ServerSeconds * 1e6 / float64(msgs)
		c.ClientUsPerMsg = c.ClientSeconds * 1e6 / float64(msgs)
	}
	return c
}
