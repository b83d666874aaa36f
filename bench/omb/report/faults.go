package report

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/bench/omb/runner"
	"github.com/ledgermq/ledgermq/internal/stats"
)

// faultsSection renders the fault workloads' results side by side: one
// table row group per fault (outage p50 / max and every event's, longest
// ack gap, lost / duplicates) and faults-outage.png, every event's outage
// as a dot per fault and system with the median as a bar. It writes
// nothing when rs has no fault workload. The latest result per fault and
// system wins.
func faultsSection(md *strings.Builder, dir string, rs []*runner.Result) ([]string, error) {
	byFault := map[string]map[string]*runner.Result{}
	sysSet := map[string]bool{}
	for _, r := range rs {
		f := r.Workload.Fault
		if f == "" {
			continue
		}
		m := byFault[f]
		if m == nil {
			m = map[string]*runner.Result{}
			byFault[f] = m
		}
		if old := m[r.System]; old == nil || r.StartedAt.After(old.StartedAt) {
			m[r.System] = r
		}
		sysSet[r.System] = true
	}
	if len(byFault) == 0 {
		return nil, nil
	}
	var faults []string
	for _, f := range driver.Faults { // the documented order first
		if byFault[string(f)] != nil {
			faults = append(faults, string(f))
		}
	}
	var systems []string
	for s := range sysSet {
		systems = append(systems, s)
	}
	slices.Sort(systems)

	md.WriteString("\n## Leader faults side by side\n\nOutage: injection → first acknowledgement of a message sent after it. " +
		"Max gap: longest interval between acknowledgements from 1 s before the injection to 1 s after the later of that first acknowledgement and the heal. " +
		"In ms; – = no result.\n\n")
	md.WriteString("| fault (hold) | metric | " + strings.Join(systems, " | ") + " |\n|---|---|" + strings.Repeat("---|", len(systems)) + "\n")
	cell := func(f string, sys string, fn func(r *runner.Result) string) string {
		if r := byFault[f][sys]; r != nil {
			return fn(r)
		}
		return "–"
	}
	for _, f := range faults {
		hold := ""
		for _, r := range byFault[f] {
			hold = r.Workload.FaultHold.Duration.String()
		}
		for i, rw := range faultRows {
			label := ""
			if i == 0 {
				label = fmt.Sprintf("**%s** (%s)", f, hold)
			}
			cells := make([]string, len(systems))
			for j, s := range systems {
				cells[j] = cell(f, s, rw.f)
			}
			fmt.Fprintf(md, "| %s | %s | %s |\n", label, rw.name, strings.Join(cells, " | "))
		}
	}
	vals := make([][][]float64, len(systems)) // system, fault, events
	for i, s := range systems {
		for _, f := range faults {
			var ev []float64
			if r := byFault[f][s]; r != nil {
				for _, k := range r.Kills {
					ev = append(ev, k.FirstAckMs)
				}
			}
			vals[i] = append(vals[i], ev)
		}
	}
	name := "faults-outage.png"
	if err := stripChart(filepath.Join(dir, name), "write outage per leader fault (injection -> first ack); dot = event, bar = median", "ms", faults, systems, vals); err != nil {
		return nil, err
	}
	fmt.Fprintf(md, "\n![write outage per leader fault](%s)\n", name)
	return []string{name}, nil
}

// outages returns the events' outages (events with none left out) and
// how many had none.
func outages(r *runner.Result, gap bool) (ds []time.Duration, none int) {
	for _, k := range r.Kills {
		v := k.FirstAckMs
		if gap {
			v = k.MaxGapMs
		}
		if k.FirstAckMs < 0 {
			none++
			continue
		}
		ds = append(ds, time.Duration(v*float64(time.Millisecond)))
	}
	return ds, none
}

func p50max(r *runner.Result, gap bool) string {
	ds, none := outages(r, gap)
	s := stats.Of(ds)
	out := fmt.Sprintf("%s / %s", f0(s.P50), f0(s.Max))
	if none > 0 {
		out += fmt.Sprintf(" (%d without an ack)", none)
	}
	return out
}

var faultRows = []row{
	{"events", func(r *runner.Result) string { return fmt.Sprint(len(r.Kills)) }},
	{"outage p50 / max", func(r *runner.Result) string { return p50max(r, false) }},
	{"outage, every event", func(r *runner.Result) string {
		var s []string
		for _, k := range r.Kills {
			s = append(s, f0(k.FirstAckMs))
		}
		return strings.Join(s, ", ")
	}},
	{"max ack gap p50 / max", func(r *runner.Result) string { return p50max(r, true) }},
	{"healthy after heal p50 / max", func(r *runner.Result) string {
		var ds []time.Duration
		for _, k := range r.Kills {
			ds = append(ds, time.Duration(k.CatchUpMs*float64(time.Millisecond)))
		}
		s := stats.Of(ds)
		return fmt.Sprintf("%s / %s", f0(s.P50), f0(s.Max))
	}},
	{"acknowledged / lost / duplicates", func(r *runner.Result) string {
		return fmt.Sprintf("%d / %d / %d", r.Acked, r.Lost, r.Duplicates)
	}},
	{"second read-back: lost / duplicates stored", func(r *runner.Result) string {
		if r.ReadBack == nil {
			return "not run"
		}
		return fmt.Sprintf("%d / %d", r.ReadBack.Lost, r.ReadBack.Duplicates)
	}},
	{"publish errors", func(r *runner.Result) string { return fmt.Sprint(r.PublishErrors) }},
	{"publish rate (msg/s)", func(r *runner.Result) string { return f0(r.PublishRate) }},
}

// stripChart draws, per group (x label), one column per system: a dot
// per value and a bar at the values' median.
func stripChart(path, title, ylabel string, groups, systems []string, vals [][][]float64) error {
	ymax := 0.0
	for _, per := range vals {
		for _, vs := range per {
			for _, v := range vs {
				ymax = math.Max(ymax, v)
			}
		}
	}
	c := newChart(title, ylabel, ymax)
	gw := float64(c.right-c.left) / float64(max(len(groups), 1))
	cw := int(gw*0.8) / max(len(systems), 1)
	for g, name := range groups {
		x0 := c.left + int(float64(g)*gw+gw*0.1)
		for s := range systems {
			if g >= len(vals[s]) || len(vals[s][g]) == 0 {
				continue
			}
			vs := slices.Clone(vals[s][g])
			slices.Sort(vs)
			col := colorOf(s)
			light := color.RGBA{col.R/2 + 127, col.G/2 + 127, col.B/2 + 127, 255}
			med := vs[len(vs)/2]
			if len(vs)%2 == 0 {
				med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
			}
			cx := x0 + s*cw + cw/2
			c.rect(x0+s*cw+cw/6, c.y(med), x0+(s+1)*cw-cw/6, c.bott, light)
			for i, v := range vs {
				if v < 0 {
					continue
				}
				dx := (i%3 - 1) * 6 // spread equal values a little
				c.rect(cx+dx-3, c.y(v)-3, cx+dx+4, c.y(v)+4, col)
			}
		}
		c.text(x0+int(gw*0.3), c.bott+18, name, color.Black)
	}
	c.legend(systems)
	return c.save(path)
}
