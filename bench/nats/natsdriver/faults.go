package natsdriver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
)

var _ driver.FaultInjector = (*Driver)(nil)

func (d *Driver) byName(name string) (*natsNode, error) {
	for _, n := range d.node {
		if n.name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("nats: unknown node %q", name)
}

// Leader implements driver.FaultInjector: the leader of the first topic's
// stream (the Raft group that acknowledges its writes).
func (d *Driver) Leader(ctx context.Context) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := d.streamLeader(cctx)
		cancel()
		if err == nil {
			return n.name, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *Driver) withProc(name string, f func(n *natsNode) error) error {
	n, err := d.byName(name)
	if err != nil {
		return err
	}
	return f(n)
}

func (d *Driver) needLab() error {
	if d.lab == nil {
		return errors.New("nats: network faults need the namespace lab (driver.Options.Netns)")
	}
	return nil
}

// Inject implements driver.FaultInjector: SIGKILL, SIGSTOP, or nftables
// drops in the namespace lab (internal/netlab), the same rules as for
// LedgerMQ.
func (d *Driver) Inject(ctx context.Context, f driver.Fault, node string) error {
	switch f {
	case driver.FaultKill:
		return d.withProc(node, func(n *natsNode) error { d.kill(n); return nil })
	case driver.FaultStall:
		return d.withProc(node, func(n *natsNode) error {
			d.mu.Lock()
			p := n.proc
			d.mu.Unlock()
			if p == nil {
				return fmt.Errorf("nats: node %s is not running", node)
			}
			return p.Pause()
		})
	case driver.FaultBlackhole:
		if err := d.needLab(); err != nil {
			return err
		}
		return d.lab.Blackhole(node)
	case driver.FaultPartition:
		if err := d.needLab(); err != nil {
			return err
		}
		return d.lab.Isolate(node, 0)
	}
	return fmt.Errorf("nats: unknown fault %q", f)
}

// Heal implements driver.FaultInjector: restart, SIGCONT, or every drop
// rule removed.
func (d *Driver) Heal(ctx context.Context, f driver.Fault, node string) error {
	switch f {
	case driver.FaultKill:
		return d.Restart(ctx, node)
	case driver.FaultStall:
		return d.withProc(node, func(n *natsNode) error {
			d.mu.Lock()
			p := n.proc
			d.mu.Unlock()
			if p == nil {
				return fmt.Errorf("nats: node %s is not running", node)
			}
			return p.Resume()
		})
	case driver.FaultBlackhole, driver.FaultPartition:
		if err := d.needLab(); err != nil {
			return err
		}
		return d.lab.Heal()
	}
	return fmt.Errorf("nats: unknown fault %q", f)
}

// WaitHealthy implements driver.FaultInjector: every topic's stream has a
// leader and reports node as a current replica (or as the leader).
func (d *Driver) WaitHealthy(ctx context.Context, node string) error {
	d.mu.Lock()
	topics := append([]string(nil), d.topics...)
	d.mu.Unlock()
	for {
		ok := true
		for _, t := range topics {
			if !d.replicaCurrent(ctx, t, node) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats: waiting for %s to rejoin: %w", node, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *Driver) replicaCurrent(ctx context.Context, topic, node string) bool {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := d.js.Stream(cctx, topic)
	if err != nil {
		return false
	}
	info, err := s.Info(cctx)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
		return false
	}
	if info.Cluster.Leader == node {
		return true
	}
	for _, r := range info.Cluster.Replicas {
		if r.Name == node {
			return r.Current && !r.Offline
		}
	}
	return false
}
