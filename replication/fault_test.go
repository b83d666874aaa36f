package replication

import (
	"context"
	"flag"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

var faultSeed = flag.Uint64("replication.seed", 0, "seed for TestRandomFaults (0: time-based)")

// TestRandomFaults runs proposers against a group while a seeded schedule
// kills and restarts nodes and cuts them off from the others. At the end,
// with everything healed, every index present on two nodes must agree, and
// every acknowledged proposal must be in the log exactly once. The fault
// schedule replays from the printed seed (thread timing does not).
func TestRandomFaults(t *testing.T) {
	seed := *faultSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -replication.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))
	size := 3 + 2*rng.IntN(2)
	duration := 8 * time.Second
	if testing.Short() {
		duration = 3 * time.Second
	}
	c := newCluster(t, size, clusterOpts{})
	c.leader(10 * time.Second)
	down := map[string]bool{}
	isolated := ""
	steps := 0
	acked := runLoadFor(t, c, 6, duration, func() {
		steps++
		id := c.ids[rng.IntN(len(c.ids))]
		switch op := rng.IntN(10); {
		case op < 3: // kill, keeping a majority alive
			if !down[id] && len(down)+1 <= (size-1)/2 && id != isolated {
				t.Logf("step %d: kill %s", steps, id)
				c.kill(id)
				down[id] = true
			}
		case op < 6: // restart
			for d := range down {
				t.Logf("step %d: restart %s", steps, d)
				c.start(d)
				delete(down, d)
				break
			}
		case op < 8: // isolate one node (the leader half the time)
			if isolated == "" && !down[id] {
				if rng.IntN(2) == 0 {
					for _, n := range c.running() {
						if n.IsLeader() {
							id = n.ID()
						}
					}
				}
				if down[id] {
					return
				}
				t.Logf("step %d: isolate %s", steps, id)
				c.net.isolate(id, c.ids)
				isolated = id
			}
		default:
			if isolated != "" {
				t.Logf("step %d: heal", steps)
				c.net.heal()
				isolated = ""
			}
		}
	}, func() time.Duration { return time.Duration(200+rng.IntN(600)) * time.Millisecond })
	c.net.heal()
	for d := range down {
		c.start(d)
	}
	c.checkLogs(acked)
	t.Logf("%d nodes, %d fault steps, %d proposals acknowledged", size, steps, len(acked))
	if len(acked) == 0 {
		t.Fatal("no proposal was acknowledged")
	}
}

// runLoadFor runs proposers for d, calling fault at intervals given by
// every, and returns the acknowledged proposals.
func runLoadFor(t *testing.T, c *cluster, proposers int, d time.Duration, fault func(), every func() time.Duration) map[string]uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	results := make(chan map[string]uint64, proposers)
	for p := 0; p < proposers; p++ {
		go func() {
			acked := map[string]uint64{}
			for i := 0; ctx.Err() == nil; i++ {
				data := "f" + strconv.Itoa(p) + "-" + strconv.Itoa(i)
				if idx, ok := c.propose(ctx, data); ok {
					acked[data] = idx
				}
			}
			results <- acked
		}()
	}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(every()):
			fault()
		}
	}
	all := map[string]uint64{}
	for p := 0; p < proposers; p++ {
		for k, v := range <-results {
			all[k] = v
		}
	}
	return all
}
