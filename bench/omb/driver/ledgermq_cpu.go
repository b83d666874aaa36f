package driver

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

var _ CPUReporter = (*LedgerMQ)(nil)

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on
// every Linux the benchmarks run on).
const clockTick = 10 * time.Millisecond

// ServerCPU implements CPUReporter from /proc/<pid>/stat (utime + stime)
// of every running node.
func (d *LedgerMQ) ServerCPU() (time.Duration, error) {
	var total time.Duration
	for _, id := range d.g.Running() {
		cpu, err := ProcCPU(d.g.Pid(id))
		if err != nil {
			return 0, fmt.Errorf("ledgermq: CPU of %s: %w", id, err)
		}
		total += cpu
	}
	return total, nil
}

// ProcCPU is process pid's user + system CPU time (/proc/<pid>/stat), for
// every driver's CPUReporter.
func ProcCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, data)
	}
	var ticks int64
	for _, s := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
