// Package runner runs an OMB-shaped workload (package workload) against a
// driver.Driver and measures it.
//
// Every message value is an 8-byte send timestamp (unix nanos, big endian),
// an 8-byte message id (producer<<40 | sequence) and padding up to
// messageSize. Producers send without keys (the system spreads them over
// the queues); with producerRate > 0 each of the P producers sends
// producerRate/P msgs/s on a fixed schedule (catching up at most 1 s of
// backlog), else as fast as the system acknowledges. Each producer keeps at
// most the workload's maxOutstandingBytes (default 8 MiB) of unacknowledged payload, so a saturated system
// shows up as bounded latency instead of unbounded client buffering.
//
// One consumer per topic reads every queue from the start
// (consumersPerTopic is recorded but the Driver interface has no shared
// subscriptions, so more than one would read everything twice).
//
// Phases: warm-up (nothing recorded), the measurement window (publish
// latency = send → acknowledgement, for messages sent inside it; end-to-end
// latency = send → reception, for messages sent and received inside it;
// acknowledgements and receptions inside it count for the rates), then the
// producers stop, are flushed and closed, and the consumers read until every
// acknowledged message was received or nothing arrived for drainIdle.
// Acknowledged-lost and duplicates cover the whole run.
//
// Failover (killLeaderEvery > 0): every killLeaderEvery inside the window
// the leader is SIGKILLed. Outage = kill (when KillLeader returned, i.e.
// the process is gone) → first acknowledgement of a
// message sent after the kill (such a message can only be acknowledged by
// a working leader); max gap = longest interval between consecutive
// acknowledgements from 1 s before the kill to 1 s after that first one.
// The killed node is restarted right after that first acknowledgement.
//
// Faults (workload field fault; driver.FaultInjector): the driver runs
// every node in a network namespace of its own (internal/netlab), and
// every faultEvery inside the window the runner asks the driver for the
// leader, injects the fault (SIGKILL, SIGSTOP, every packet to and from the
// node dropped, or the node cut from its peers only) and heals it (restart,
// SIGCONT, rules removed) faultHold after the injection, whatever the
// clients saw. Outage = injection (when Inject returned) → first
// acknowledgement of a message sent after the injection; max gap = longest
// interval between consecutive acknowledgements from 1 s before the
// injection to 1 s after the later of that first acknowledgement and the
// heal; healthy = heal → the driver reports the node back and caught up
// (WaitHealthy), which the runner awaits before the next event.
//
// CPU (driver.CPUReporter; runs without kills or faults): the server
// processes' CPU time and this process's (the clients) in the window, per
// message acknowledged in the window.
//
// Leadership (driver.LeaderStats): every node's leader-change counter and
// term at the start and the end of the window.
package runner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/bench/omb/workload"
	"github.com/ledgermq/ledgermq/internal/netlab"
	"github.com/ledgermq/ledgermq/internal/stats"
)

const (
	flushTimeout  = 2 * time.Minute
	drainIdle     = 15 * time.Second
	drainMax      = 2 * time.Minute
	outageTimeout = 60 * time.Second
	gapSlack      = time.Second
)

// Options configures Run.
type Options struct {
	BaseDir  string       // fresh directory for the cluster's data
	Log      *slog.Logger // nil: discard
	Progress io.Writer    // live line per second; nil: none
}

type run struct {
	w    *workload.Workload
	d    driver.Driver
	log  *slog.Logger
	tr   *tracker
	winS time.Time // measurement window start
	winE time.Time // measurement window end

	acks, recvs, errs atomic.Int64 // whole run
	pubWin, conWin    atomic.Int64 // inside the window

	mu        sync.Mutex // guards everything below
	pubH      *stats.Histogram
	e2eH      *stats.Histogram
	pubTick   *stats.Histogram // reset every second
	e2eTick   *stats.Histogram
	ackTimes  []time.Time // failover only: ack time of every ack
	firstSent []ackAfter  // failover only: acks of messages sent after a kill
}

type ackAfter struct{ sent, acked time.Time }

// ErrNoFaults is returned (wrapped) by FaultsAvailable.
var ErrNoFaults = errors.New("fault workloads unavailable")

// FaultsAvailable reports why a fault workload cannot run with d here: d
// does not implement driver.FaultInjector, or network namespaces are not
// available (internal/netlab: root, ip, nft).
func FaultsAvailable(d driver.Driver) error {
	if _, ok := d.(driver.FaultInjector); !ok {
		return fmt.Errorf("%w: driver %s cannot inject faults", ErrNoFaults, d.Name())
	}
	if err := netlab.Available(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoFaults, err)
	}
	return nil
}

// tracksAcks reports whether every acknowledgement's time is kept (for
// outages and gaps).
func (r *run) tracksAcks() bool { return r.w.KillLeaderEvery.Duration > 0 || r.w.Fault != "" }

// Run brings the system up, runs w and tears the system down.
func Run(ctx context.Context, d driver.Driver, w *workload.Workload, o Options) (res *Result, err error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &run{w: w, d: d, log: log, pubH: stats.New(), e2eH: stats.New(), pubTick: stats.New(), e2eTick: stats.New()}
	res = &Result{System: d.Name(), Workload: *w, StartedAt: time.Now(),
		Machine: Machine{GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), LoadAvg: loadAvg()}}
	if w.ProduceAPI != "" {
		ps, ok := d.(driver.ProduceAPISetter)
		if !ok {
			return nil, fmt.Errorf("driver %s has one produce API; the workload asks for %q", d.Name(), w.ProduceAPI)
		}
		if err := ps.SetProduceAPI(w.ProduceAPI); err != nil {
			return nil, err
		}
	}

	if w.Fault != "" {
		if err := FaultsAvailable(d); err != nil {
			return nil, err
		}
	}
	log.Info("starting cluster", "driver", d.Name(), "durability", w.Durability, "dir", o.BaseDir, "netns", w.Fault != "")
	if err := d.Start(ctx, driver.Options{Durability: w.Durability, BaseDir: o.BaseDir, Log: log, Netns: w.Fault != ""}); err != nil {
		d.Stop()
		return nil, fmt.Errorf("start %s: %w", d.Name(), err)
	}
	defer func() { err = errors.Join(err, d.Stop()) }()
	res.System = d.Name() // a driver may name its durability once started (e.g. nats-nofsync)
	if sr, ok := d.(driver.SettingsReporter); ok {
		// Read at the end (before Stop): settings may count things, e.g.
		// resends.
		defer func() {
			if res != nil {
				res.DriverSettings = sr.Settings()
			}
		}()
	}

	if w.ConsumerBacklogSizeGB > 0 {
		if w.Fault != "" || w.KillLeaderEvery.Duration > 0 {
			return nil, errors.New("a backlog-drain workload cannot have leader kills or faults")
		}
		if err := r.backlog(ctx, res); err != nil {
			return nil, fmt.Errorf("backlog drain: %w", err)
		}
		return res, nil
	}
	cons, prods, err := r.clients(ctx)
	defer func() {
		for _, c := range cons {
			c.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	kills := r.measure(ctx, res, cons, prods, o.Progress)
	r.summarize(res, kills)
	if r.tracksAcks() {
		res.ReadBack = r.readBack(ctx)
		log.Info("second read-back", "received", res.ReadBack.Received, "lost", res.ReadBack.Lost, "duplicates", res.ReadBack.Duplicates)
	}
	if w.FsyncBaseline {
		log.Info("raw write+fsync baseline", "dir", o.BaseDir)
		if res.Fsync, err = fsyncBaseline(ctx, o.BaseDir, min(w.Test.Duration, maxBaseline)); err != nil {
			return nil, err
		}
		if res.Fsync.MBps > 0 {
			res.PublishOverFsync = res.PublishMBps / res.Fsync.MBps
		}
	}
	log.Info("done", "published", res.Published, "consumed", res.Consumed, "acked", res.Acked, "lost", res.Lost, "duplicates", res.Duplicates)
	return res, ctx.Err()
}

// clients creates the topics, one consumer per topic (first, so that they
// see everything from the start) and the producers. The consumers are
// returned for closing even with an error.
func (r *run) clients(ctx context.Context) ([]driver.Consumer, []driver.Producer, error) {
	w := r.w
	topics := make([]string, w.Topics)
	for i := range topics {
		topics[i] = fmt.Sprintf("omb-%s-%d", w.Name, i)
		if err := r.d.CreateTopic(ctx, topics[i], w.QueuesPerTopic); err != nil {
			return nil, nil, fmt.Errorf("create topic %s: %w", topics[i], err)
		}
	}
	nprod := w.Topics * w.ProducersPerTopic
	r.tr = newTracker(nprod)
	var cons []driver.Consumer
	for _, t := range topics {
		c, err := r.d.NewConsumer(ctx, t, w.QueuesPerTopic)
		if err != nil {
			return cons, nil, fmt.Errorf("consumer %s: %w", t, err)
		}
		cons = append(cons, c)
	}
	var prods []driver.Producer
	for i := range nprod {
		p, err := r.d.NewProducer(ctx, topics[i%w.Topics], w.BatchBytes, w.Linger())
		if err != nil {
			for _, p := range prods {
				p.Close()
			}
			return cons, nil, fmt.Errorf("producer: %w", err)
		}
		prods = append(prods, p)
	}
	return cons, prods, nil
}

// measure runs the warm-up and the window, then flushes and closes the
// producers and drains the consumers. It returns the leader kills.
func (r *run) measure(ctx context.Context, res *Result, cons []driver.Consumer, prods []driver.Producer, progress io.Writer) []Kill {
	w := r.w
	start := time.Now()
	r.winS = start.Add(w.Warmup.Duration)
	r.winE = r.winS.Add(w.Test.Duration)
	r.log.Info("running", "workload", w.Name, "warmup", w.Warmup.Duration, "test", w.Test.Duration, "producers", len(prods), "consumers", len(cons))

	consCtx, stopCons := context.WithCancel(ctx)
	defer stopCons()
	var consWG sync.WaitGroup
	for _, c := range cons {
		consWG.Go(func() { r.consume(consCtx, c) })
	}
	prodCtx, stopProd := context.WithDeadline(ctx, r.winE)
	defer stopProd()
	var prodWG sync.WaitGroup
	for i, p := range prods {
		prodWG.Go(func() { r.produce(prodCtx, i, p, float64(w.ProducerRate)/float64(len(prods))) })
	}
	progCtx, stopProg := context.WithCancel(ctx)
	progDone := make(chan []Sample)
	go func() { progDone <- r.progress(progCtx, start, progress) }()
	var kills []Kill
	var killWG sync.WaitGroup
	if w.KillLeaderEvery.Duration > 0 {
		killWG.Go(func() { kills = r.failover(prodCtx) })
	}
	if w.Fault != "" {
		killWG.Go(func() { kills = r.faults(prodCtx) })
	}
	if d := time.Until(r.winS); d > 0 {
		time.Sleep(d)
	}
	cpuStart, hasCPU := readCPU(r.d)
	hasCPU = hasCPU && !r.tracksAcks()
	ls, hasLS := r.d.(driver.LeaderStats)
	var lsStart map[string]driver.NodeLeaderStats
	if hasLS {
		var err error
		if lsStart, err = ls.LeaderStats(ctx); err != nil {
			r.log.Warn("leader stats", "err", err)
		}
	}

	prodWG.Wait()
	if cpuEnd, ok := readCPU(r.d); ok && hasCPU {
		res.CPU = cpuUsed(cpuStart, cpuEnd, r.pubWin.Load())
	}
	killWG.Wait()
	if hasLS && lsStart != nil {
		if end, err := ls.LeaderStats(ctx); err != nil {
			r.log.Warn("leader stats", "err", err)
		} else {
			res.Leadership = leadership(lsStart, end)
			r.log.Info("leadership in the window", "leader_changes", res.Leadership.LeaderChanges, "term_change", res.Leadership.TermChange)
		}
	}
	stopProg()
	res.Series = <-progDone
	r.log.Info("window over; flushing producers")
	for _, p := range prods {
		fctx, cancel := context.WithTimeout(ctx, flushTimeout)
		if err := p.Flush(fctx); err != nil {
			r.log.Warn("flush", "err", err)
		}
		cancel()
		if err := p.Close(); err != nil {
			r.log.Warn("close producer", "err", err)
		}
	}
	r.drain(ctx)
	stopCons()
	consWG.Wait()
	return kills
}

// summarize fills res's rates, latencies, counts and kill summaries.
func (r *run) summarize(res *Result, kills []Kill) {
	secs := r.w.Test.Duration.Seconds()
	res.Published, res.Consumed, res.PublishErrors = r.pubWin.Load(), r.conWin.Load(), r.errs.Load()
	res.PublishRate, res.ConsumeRate = float64(res.Published)/secs, float64(res.Consumed)/secs
	res.PublishMBps = res.PublishRate * float64(r.w.MessageSize) / 1e6
	r.mu.Lock()
	res.PublishLatency, res.E2ELatency = r.pubH.Summary(), r.e2eH.Summary()
	r.mu.Unlock()
	res.Acked, res.Lost, res.Duplicates = r.tr.counts()
	res.Kills = kills
	if len(kills) == 0 {
		return
	}
	var first, catchUp []time.Duration
	for _, k := range kills {
		if k.FirstAckMs >= 0 {
			first = append(first, time.Duration(k.FirstAckMs*float64(time.Millisecond)))
		}
		if k.CatchUpMs > 0 {
			catchUp = append(catchUp, time.Duration(k.CatchUpMs*float64(time.Millisecond)))
		}
	}
	fs, cs := stats.Of(first), stats.Of(catchUp)
	res.FirstAck, res.CatchUp = &fs, &cs
}

// produce sends until ctx ends; rate 0 means as fast as possible.
func (r *run) produce(ctx context.Context, idx int, p driver.Producer, rate float64) {
	sem := r.outstanding()
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	next := time.Now()
	for seq := uint64(0); ; seq++ {
		if interval > 0 {
			now := time.Now()
			if d := next.Sub(now); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			} else if -d > time.Second {
				next = now // do not burst more than 1 s of backlog
			}
			next = next.Add(interval)
		}
		if !r.send(ctx, p, sem, idx, seq) {
			return
		}
	}
}

// send publishes message seq of producer idx once sem has room (false:
// ctx ended first); the acknowledgement frees the slot.
func (r *run) send(ctx context.Context, p driver.Producer, sem chan struct{}, idx int, seq uint64) bool {
	select {
	case <-ctx.Done():
		return false
	case sem <- struct{}{}:
	}
	id := makeID(idx, seq)
	v := make([]byte, r.w.MessageSize)
	sent := time.Now()
	binary.BigEndian.PutUint64(v, uint64(sent.UnixNano()))
	binary.BigEndian.PutUint64(v[8:], id)
	p.Send(nil, v, func(err error) {
		<-sem
		r.onAck(id, sent, err)
	})
	return true
}

// outstanding is a producer's bound on unacknowledged messages.
func (r *run) outstanding() chan struct{} {
	b := r.w.MaxOutstandingBytes
	if b == 0 { // a workload not from workload.Parse
		b = workload.DefaultMaxOutstandingBytes
	}
	return make(chan struct{}, max(16, b/r.w.MessageSize))
}

func (r *run) onAck(id uint64, sent time.Time, err error) {
	now := time.Now()
	if err != nil {
		if r.errs.Add(1) <= 5 {
			r.log.Warn("publish failed", "err", err)
		}
		return
	}
	r.tr.acked(id)
	r.acks.Add(1)
	inWin := !now.Before(r.winS) && now.Before(r.winE)
	if inWin {
		r.pubWin.Add(1)
	}
	lat := now.Sub(sent)
	r.mu.Lock()
	if inWin && !sent.Before(r.winS) {
		r.pubH.Record(lat)
	}
	r.pubTick.Record(lat)
	if r.tracksAcks() {
		r.ackTimes = append(r.ackTimes, now)
		r.firstSent = append(r.firstSent, ackAfter{sent, now})
	}
	r.mu.Unlock()
}

func (r *run) consume(ctx context.Context, c driver.Consumer) {
	fails := 0
	for {
		msgs, err := c.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if fails++; fails <= 5 {
				r.log.Warn("receive", "err", err)
			}
			if len(msgs) == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		now := time.Now()
		inWin := !now.Before(r.winS) && now.Before(r.winE)
		r.mu.Lock()
		for _, m := range msgs {
			if len(m.Value) < 16 {
				continue
			}
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(m.Value)))
			if !r.tr.received(binary.BigEndian.Uint64(m.Value[8:])) {
				continue
			}
			lat := now.Sub(sent)
			r.e2eTick.Record(lat)
			if inWin && !sent.Before(r.winS) {
				r.e2eH.Record(lat)
			}
		}
		r.mu.Unlock()
		r.recvs.Add(int64(len(msgs)))
		if inWin {
			r.conWin.Add(int64(len(msgs)))
		}
	}
}

// readBack reads every topic again with fresh consumers, until every
// acknowledged message was seen or nothing arrived for 5 s.
func (r *run) readBack(ctx context.Context) *ReadBack {
	t2 := newTracker(len(r.tr.per))
	rb := &ReadBack{}
	acked, _, _ := r.tr.counts()
	for i := range r.w.Topics {
		c, err := r.d.NewConsumer(ctx, fmt.Sprintf("omb-%s-%d", r.w.Name, i), r.w.QueuesPerTopic)
		if err != nil {
			r.log.Warn("second read-back", "err", err)
			continue
		}
		for ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			msgs, err := c.Receive(rctx)
			cancel()
			for _, m := range msgs {
				if len(m.Value) >= 16 && t2.received(binary.BigEndian.Uint64(m.Value[8:])) {
					rb.Received++
				}
			}
			if len(msgs) == 0 && err != nil {
				break
			}
			if lost, _ := r.tr.stored(t2); lost == 0 && rb.Received >= acked {
				// everything seen; one more short read for trailing copies
				rctx, cancel := context.WithTimeout(ctx, time.Second)
				msgs, _ := c.Receive(rctx)
				cancel()
				for _, m := range msgs {
					if len(m.Value) >= 16 && t2.received(binary.BigEndian.Uint64(m.Value[8:])) {
						rb.Received++
					}
				}
				break
			}
		}
		c.Close()
	}
	rb.Lost, rb.Duplicates = r.tr.stored(t2)
	return rb
}

// drain waits until every acknowledged message was received, nothing
// arrived for drainIdle, or drainMax passed.
func (r *run) drain(ctx context.Context) {
	deadline := time.Now().Add(drainMax)
	last, lastChange := r.recvs.Load(), time.Now()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if _, lost, _ := r.tr.counts(); lost == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
		if n := r.recvs.Load(); n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > drainIdle {
			r.log.Warn("drain: nothing received", "for", drainIdle)
			return
		}
	}
}

// progress prints a line per second and returns the window's samples.
func (r *run) progress(ctx context.Context, start time.Time, w io.Writer) []Sample {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	var out []Sample
	prevT, prevA, prevR := start, int64(0), int64(0)
	for {
		select {
		case <-ctx.Done():
			return out
		case now := <-tk.C:
			a, rc := r.acks.Load(), r.recvs.Load()
			dt := now.Sub(prevT).Seconds()
			pr, cr := float64(a-prevA)/dt, float64(rc-prevR)/dt
			prevT, prevA, prevR = now, a, rc
			r.mu.Lock()
			p99, e99 := stats.Millis(r.pubTick.Percentile(99)), stats.Millis(r.e2eTick.Percentile(99))
			r.pubTick.Reset()
			r.e2eTick.Reset()
			r.mu.Unlock()
			phase := "warmup"
			if now.After(r.winS.Add(500*time.Millisecond)) && !now.After(r.winE.Add(500*time.Millisecond)) {
				phase = "test"
				out = append(out, Sample{T: int(now.Sub(r.winS).Round(time.Second) / time.Second), PublishRate: pr, ConsumeRate: cr, PublishP99Ms: p99})
			}
			if w != nil {
				fmt.Fprintf(w, "%-6s %5.0fs  pub %9.0f msg/s  cons %9.0f msg/s  pub p99 %8.2f ms  e2e p99 %8.2f ms  errors %d\n",
					phase, now.Sub(start).Seconds(), pr, cr, p99, e99, r.errs.Load())
			}
		}
	}
}

// failover kills the leader every killLeaderEvery until ctx ends.
func (r *run) failover(ctx context.Context) []Kill {
	every := r.w.KillLeaderEvery.Duration
	var kills []Kill
	for at := r.winS.Add(every); at.Before(r.winE); at = at.Add(every) {
		t := time.NewTimer(time.Until(at))
		select {
		case <-ctx.Done():
			t.Stop()
			return kills
		case <-t.C:
		}
		node, err := r.d.KillLeader(context.WithoutCancel(ctx))
		if err != nil {
			r.log.Error("kill leader", "err", err)
			continue
		}
		// KillLeader returns once the process is gone, and looks the leader
		// up first: taking the time before it would count acknowledgements
		// from the old leader.
		killAt := time.Now()
		k := Kill{Node: node, AtS: killAt.Sub(r.winS).Seconds(), FirstAckMs: -1}
		first := r.firstAckAfter(killAt)
		if !first.IsZero() {
			k.FirstAckMs = float64(first.Sub(killAt)) / float64(time.Millisecond)
			time.Sleep(gapSlack)
			k.MaxGapMs = float64(r.maxGap(killAt.Add(-gapSlack), first.Add(gapSlack))) / float64(time.Millisecond)
		}
		r.log.Info("leader killed", "node", node, "first_ack_ms", k.FirstAckMs, "max_gap_ms", k.MaxGapMs)
		k.CatchUpMs = r.restart(context.WithoutCancel(ctx), node)
		kills = append(kills, k)
	}
	return kills
}

// leadership compares two LeaderStats readings.
func leadership(start, end map[string]driver.NodeLeaderStats) *Leadership {
	l := &Leadership{Start: start, End: end}
	var t0, t1 uint64
	for id, e := range end {
		if s, ok := start[id]; ok && e.LeaderChanges >= s.LeaderChanges {
			l.LeaderChanges = max(l.LeaderChanges, e.LeaderChanges-s.LeaderChanges)
		}
		t1 = max(t1, e.Term)
	}
	for _, s := range start {
		t0 = max(t0, s.Term)
	}
	if t1 > t0 {
		l.TermChange = t1 - t0
	}
	return l
}

// faults injects the workload's fault into the leader every faultEvery
// until ctx ends (see the package comment).
func (r *run) faults(ctx context.Context) []Kill {
	fi := r.d.(driver.FaultInjector)
	fault, hold, every := driver.Fault(r.w.Fault), r.w.FaultHold.Duration, r.w.FaultEvery.Duration
	bg := context.WithoutCancel(ctx)
	var events []Kill
	// An event is injected only if it is healed inside the window.
	for at := r.winS.Add(every); at.Add(hold).Before(r.winE); at = at.Add(every) {
		t := time.NewTimer(time.Until(at))
		select {
		case <-ctx.Done():
			t.Stop()
			return events
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(bg, 30*time.Second)
		node, err := fi.Leader(lctx)
		cancel()
		if err != nil {
			r.log.Error("fault: no leader", "err", err)
			continue
		}
		if err := fi.Inject(bg, fault, node); err != nil {
			r.log.Error("fault: inject", "fault", fault, "node", node, "err", err)
			fi.Heal(bg, fault, node)
			continue
		}
		injAt := time.Now()
		k := Kill{Fault: string(fault), Node: node, AtS: injAt.Sub(r.winS).Seconds(), FirstAckMs: -1}
		healed := make(chan time.Time, 1)
		go func() {
			time.Sleep(time.Until(injAt.Add(hold)))
			if err := fi.Heal(bg, fault, node); err != nil {
				r.log.Error("fault: heal", "fault", fault, "node", node, "err", err)
			}
			healed <- time.Now()
		}()
		first := r.firstAckAfter(injAt)
		healAt := <-healed
		k.HealMs = stats.Millis(healAt.Sub(injAt))
		if !first.IsZero() {
			k.FirstAckMs = stats.Millis(first.Sub(injAt))
			end := first
			if healAt.After(end) {
				end = healAt
			}
			time.Sleep(time.Until(end.Add(gapSlack)))
			k.MaxGapMs = stats.Millis(r.maxGap(injAt.Add(-gapSlack), end.Add(gapSlack)))
		}
		hctx, cancel := context.WithTimeout(bg, outageTimeout)
		if err := fi.WaitHealthy(hctx, node); err != nil {
			r.log.Error("fault: node not healthy again", "node", node, "err", err)
		} else {
			k.CatchUpMs = stats.Millis(time.Since(healAt))
		}
		cancel()
		r.log.Info("fault event", "fault", fault, "node", node, "first_ack_ms", k.FirstAckMs, "max_gap_ms", k.MaxGapMs, "heal_ms", k.HealMs, "healthy_ms", k.CatchUpMs)
		events = append(events, k)
	}
	return events
}

// restart restarts node and, when the driver can tell, returns the
// milliseconds until it caught up with the leader (0 if not measured).
func (r *run) restart(ctx context.Context, node string) float64 {
	t0 := time.Now()
	if err := r.d.Restart(ctx, node); err != nil {
		r.log.Error("restart", "node", node, "err", err)
		return 0
	}
	cw, ok := r.d.(driver.CatchUpWaiter)
	if !ok {
		return 0
	}
	if err := cw.WaitCaughtUp(ctx, node); err != nil {
		r.log.Error("catch-up", "node", node, "err", err)
		return 0
	}
	ms := stats.Millis(time.Since(t0))
	r.log.Info("restarted node caught up", "node", node, "catch_up_ms", ms)
	return ms
}

// firstAckAfter waits up to outageTimeout for the acknowledgement of a
// message sent after t; zero if none came.
func (r *run) firstAckAfter(t time.Time) time.Time {
	deadline := time.Now().Add(outageTimeout)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		var first time.Time
		for _, a := range r.firstSent {
			if a.sent.After(t) && (first.IsZero() || a.acked.Before(first)) {
				first = a.acked
			}
		}
		r.firstSent = slices.DeleteFunc(r.firstSent, func(a ackAfter) bool { return !a.sent.After(t) })
		r.mu.Unlock()
		if !first.IsZero() {
			return first
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}
}

// maxGap is the longest interval between consecutive acknowledgements in
// [from, to], the bounds counting as acknowledgements.
func (r *run) maxGap(from, to time.Time) time.Duration {
	r.mu.Lock()
	ts := slices.Clone(r.ackTimes)
	r.mu.Unlock()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	prev, gap := from, time.Duration(0)
	for _, t := range ts {
		if t.Before(from) || t.After(to) {
			continue
		}
		gap = max(gap, t.Sub(prev))
		prev = t
	}
	return max(gap, to.Sub(prev))
}

// loadAvg is /proc/loadavg's three load averages, or "".
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
