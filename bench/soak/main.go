// Command soak runs a 3-node group under steady produce and group-consume
// load with small segments and short retention, so that months of traffic
// pass through in minutes, and samples each broker's resources every
// second: RSS and open files (/proc), goroutines, Go heap and index
// references (/metrics), and the sizes of its snapshots and data
// directory. It writes samples.csv, one PNG chart per resource and a
// summary comparing the end of the run with the end of the warm-up: a
// bounded broker shows flat lines once retention has started deleting.
//
//	go run ./bench/soak -duration 10m -out /tmp/soak
package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/report"
	"github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/internal/cluster"
	"github.com/ledgermq/ledgermq/internal/proc"
	"github.com/ledgermq/ledgermq/wire"
)

type options struct {
	duration, warmup  time.Duration
	segment, retained int64
	minBytes          int64
	producers, size   int
	out               string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Minute, "load duration")
	flag.DurationVar(&o.warmup, "warmup", time.Minute, "time before the baseline sample (retention should have started)")
	flag.Int64Var(&o.segment, "segment-bytes", 1<<20, "brokers' --segment-bytes")
	flag.Int64Var(&o.retained, "retention-bytes", 64<<20, "brokers' --retention-bytes")
	flag.Int64Var(&o.minBytes, "min-bytes", 0, "go on past -duration until this many bytes are acknowledged (e.g. 50000000000)")
	flag.IntVar(&o.producers, "producers", 4, "SDK producers")
	flag.IntVar(&o.size, "size", 1024, "message bytes")
	flag.StringVar(&o.out, "out", "soak-results", "output directory")
	resummarize := flag.String("summarize", "", "no run: read DIR/samples.csv of an earlier run, redraw its charts and print its summary")
	flag.Parse()
	if *resummarize != "" {
		ss, err := readCSV(filepath.Join(*resummarize, "samples.csv"))
		if err == nil {
			err = charts(*resummarize, ss)
		}
		if err == nil {
			err = summary(os.Stdout, ss, o.warmup.Seconds(), ss[len(ss)-1].moved, -1, -1)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// sample is one node's resources at one second.
type sample struct {
	t                          float64 // seconds since the start
	node                       string
	rssKB, fds                 int64
	goroutines, heap, batches  int64
	snapBytes, dirBytes, moved int64 // moved: bytes acknowledged so far (all nodes alike)
}

func run(o options) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "soak")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// SIGINT/SIGTERM end the load early; the brokers are still stopped
	// (deferred) and what was sampled is still written.
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	bin, err := proc.Build(ctx, dir, proc.Broker)
	if err != nil {
		return err
	}
	g, err := cluster.Start(cluster.Options{Bin: bin, Nodes: 3, Dir: dir, Args: []string{
		"--segment-bytes", fmt.Sprint(o.segment), "--retention-bytes", fmt.Sprint(o.retained), "--retention-interval", "1s"}})
	if err != nil {
		return err
	}
	defer g.Close()
	if err := g.WaitReachable(ctx, 30*time.Second); err != nil {
		return err
	}
	admin, err := client.NewAdmin(g.APIs())
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.CreateTopic(ctx, wire.CreateTopicRequest{Name: "soak", Queues: 8}); err != nil {
		return err
	}

	var acked, ackedBytes, failed, consumed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range o.producers {
		p, err := client.NewProducer(g.APIs())
		if err != nil {
			return err
		}
		defer p.Close()
		wg.Go(func() {
			val := make([]byte, o.size)
			for {
				select {
				case <-stop:
					return
				default:
				}
				p.ProduceAsync(&client.Message{Topic: "soak", Value: val}, func(_ client.Result, err error) {
					if err != nil {
						failed.Add(1)
						return
					}
					acked.Add(1)
					ackedBytes.Add(int64(o.size))
				})
			}
		})
	}
	cons, err := client.NewConsumer(g.APIs(), client.WithGroup("soak-readers", "soak"))
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() {
		for cctx.Err() == nil {
			recs, _ := cons.Poll(cctx)
			consumed.Add(int64(len(recs)))
		}
	})

	var samples []sample
	start := time.Now()
	tick := time.NewTicker(time.Second)
	for ctx.Err() == nil && (time.Since(start) < o.duration || ackedBytes.Load() < o.minBytes) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			continue
		}
		for _, n := range g.Nodes() {
			s := measure(g, n, dir)
			s.t, s.moved = time.Since(start).Seconds(), ackedBytes.Load()
			samples = append(samples, s)
		}
		last := samples[len(samples)-1]
		slog.Info("soak", "t", int(last.t), "acked_MB", ackedBytes.Load()>>20, "consumed", consumed.Load(), "failed", failed.Load(),
			"rss_MB", last.rssKB>>10, "batches", last.batches, "dir_MB", last.dirBytes>>20)
	}
	tick.Stop()
	close(stop)
	cancel()
	cons.Close()
	wg.Wait()
	if err := writeCSV(filepath.Join(o.out, "samples.csv"), samples); err != nil {
		return err
	}
	if err := charts(o.out, samples); err != nil {
		return err
	}
	return summary(os.Stdout, samples, o.warmup.Seconds(), ackedBytes.Load(), consumed.Load(), failed.Load())
}

// measure samples one node; fields it cannot read stay -1.
func measure(g *cluster.Group, n cluster.Node, dir string) sample {
	s := sample{node: n.ID, rssKB: -1, fds: -1, goroutines: -1, heap: -1, batches: -1}
	if pid := g.Pid(n.ID); pid > 0 {
		s.rssKB = procStatus(pid, "VmRSS:")
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
			s.fds = int64(len(ents))
		}
	}
	if m, err := metrics("http://" + n.API + "/metrics"); err == nil {
		s.goroutines, s.heap, s.batches = m["go_goroutines"], m["go_memstats_heap_inuse_bytes"], m["ledgermq_index_batches"]
	}
	s.snapBytes = du(filepath.Join(dir, n.ID, "snapshots"))
	s.dirBytes = du(filepath.Join(dir, n.ID))
	return s
}

func procStatus(pid int, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), key) {
			if fs := strings.Fields(sc.Text()); len(fs) >= 2 {
				v, _ := strconv.ParseInt(fs[1], 10, 64)
				return v
			}
		}
	}
	return -1
}

func metrics(url string) (map[string]int64, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		if fs := strings.Fields(line); len(fs) == 2 && !strings.HasPrefix(line, "#") {
			if v, err := strconv.ParseFloat(fs[1], 64); err == nil {
				out[fs[0]] = int64(v)
			}
		}
	}
	return out, nil
}

func du(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// resources are the sampled columns: name, unit scale and getter.
var resources = []struct {
	name  string
	scale float64
	get   func(sample) int64
}{
	{"RSS MB", 1 << 10, func(s sample) int64 { return s.rssKB }},
	{"open files", 1, func(s sample) int64 { return s.fds }},
	{"goroutines", 1, func(s sample) int64 { return s.goroutines }},
	{"Go heap MB", 1 << 20, func(s sample) int64 { return s.heap }},
	{"index references", 1, func(s sample) int64 { return s.batches }},
	{"snapshots KB", 1 << 10, func(s sample) int64 { return s.snapBytes }},
	{"data dir MB", 1 << 20, func(s sample) int64 { return s.dirBytes }},
}

func writeCSV(path string, ss []sample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"t", "node", "rss_kb", "fds", "goroutines", "heap_bytes", "index_batches", "snapshot_bytes", "dir_bytes", "acked_bytes"})
	for _, s := range ss {
		w.Write([]string{fmt.Sprintf("%.0f", s.t), s.node, fmt.Sprint(s.rssKB), fmt.Sprint(s.fds), fmt.Sprint(s.goroutines),
			fmt.Sprint(s.heap), fmt.Sprint(s.batches), fmt.Sprint(s.snapBytes), fmt.Sprint(s.dirBytes), fmt.Sprint(s.moved)})
	}
	w.Flush()
	return w.Error()
}

// readCSV reads what writeCSV wrote.
func readCSV(path string) ([]sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	var ss []sample
	for i, r := range rows {
		if i == 0 || len(r) != 10 {
			continue
		}
		var v [8]int64
		for j := range v {
			if v[j], err = strconv.ParseInt(r[j+2], 10, 64); err != nil {
				return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
			}
		}
		t, err := strconv.ParseFloat(r[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		ss = append(ss, sample{t: t, node: r[1], rssKB: v[0], fds: v[1], goroutines: v[2], heap: v[3], batches: v[4],
			snapBytes: v[5], dirBytes: v[6], moved: v[7]})
	}
	return ss, nil
}

func charts(dir string, ss []sample) error {
	for _, r := range resources {
		byNode := map[string]*report.Line{}
		var order []string
		for _, s := range ss {
			l := byNode[s.node]
			if l == nil {
				l = &report.Line{Name: s.node}
				byNode[s.node] = l
				order = append(order, s.node)
			}
			if v := r.get(s); v >= 0 {
				l.X, l.Y = append(l.X, s.t), append(l.Y, float64(v)/r.scale)
			}
		}
		var lines []report.Line
		for _, n := range order {
			lines = append(lines, *byNode[n])
		}
		name := strings.ReplaceAll(r.name, " ", "-") + ".png"
		if err := report.LineChart(filepath.Join(dir, name), "soak: "+r.name+" per broker", r.name, "seconds", lines); err != nil {
			return err
		}
	}
	return nil
}

// summary prints, per resource and node, the median over the first
// window after the warm-up and over the last window of the run (a window
// is 5 minutes, or a third of the time after the warm-up if shorter), the
// change between the two, and the largest value after the warm-up. One
// sample is noisy (a snapshot, a segment roll, a GC cycle): medians over
// minutes show whether a resource grows with what has passed through.
func summary(w io.Writer, ss []sample, warmup float64, moved, consumed, failed int64) error {
	fmt.Fprintf(w, "acknowledged %.2f GB", float64(moved)/1e9)
	if consumed >= 0 {
		fmt.Fprintf(w, ", consumed %d messages, %d failed sends", consumed, failed)
	}
	fmt.Fprintln(w)
	end := 0.0
	for _, s := range ss {
		end = max(end, s.t)
	}
	win := min(300, (end-warmup)/3)
	fmt.Fprintf(w, "medians over [%.0f s, %.0f s) and [%.0f s, %.0f s]\n", warmup, warmup+win, end-win, end)
	fmt.Fprintf(w, "%-18s %-4s %12s %12s %8s %12s\n", "resource", "node", "early", "late", "change", "max after")
	for _, r := range resources {
		early, late, peak := map[string][]int64{}, map[string][]int64{}, map[string]int64{}
		var nodes []string
		for _, s := range ss {
			v := r.get(s)
			if _, ok := peak[s.node]; !ok {
				nodes = append(nodes, s.node)
				peak[s.node] = 0
			}
			if s.t <= warmup {
				continue
			}
			peak[s.node] = max(peak[s.node], v)
			if s.t < warmup+win {
				early[s.node] = append(early[s.node], v)
			}
			if s.t >= end-win {
				late[s.node] = append(late[s.node], v)
			}
		}
		for _, n := range nodes {
			a, b := median(early[n]), median(late[n])
			change := "-"
			if a > 0 {
				change = fmt.Sprintf("%+.0f%%", 100*float64(b-a)/float64(a))
			}
			fmt.Fprintf(w, "%-18s %-4s %12.1f %12.1f %8s %12.1f\n", r.name, n, float64(a)/r.scale, float64(b)/r.scale, change,
				float64(peak[n])/r.scale)
		}
	}
	return nil
}

// median of vs (0 when empty).
func median(vs []int64) int64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return vs[len(vs)/2]
}
