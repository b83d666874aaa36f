// Package netlab runs a test's hosts in network namespaces of their own on
// one machine and injects network faults with nftables: every host has its
// own address, faults are packets dropped in the kernel with no process in
// their path, as on a real network. Used by internal/cluster (the brokers'
// e2e fault lab) and by bench/ (peer brokers under the same faults).
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Layout:
//
//	root namespace (the test, its clients)   10.x.y.1 ── veth ──┐
//	<prefix>-sw: a bridge, nothing else                          bridge
//	<prefix>-<host>: one per host             10.x.y.11.. ─ veth ┘
//
// The bridge lives in a namespace of its own so that the host's firewall
// (Docker's FORWARD policy drop, br_netfilter) never sees the bridged
// traffic. Drops are input rules only, so that a sender sees nothing
// either (an output drop would fail its connect at once): "host A cannot
// hear host B" is a rule in A's namespace dropping B's source address; the
// clients' side of a fault is a rule in the root namespace's own table.
// Requires root, iproute2 (ip) and nftables (nft).

const nftTable = "lmqfault" // in each host's namespace

// Lab is the namespaces, links and rules of one set of hosts. Its methods
// are safe for concurrent use (each runs its own commands).
type Lab struct {
	prefix string
	subnet string            // "10.x.y"
	ns     map[string]string // host -> namespace
	ip     map[string]string // host -> address
	ids    []string
}

// Available reports why a Lab cannot run here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (install iproute2 and nftables)", tool)
		}
	}
	return nil
}

func run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// New builds a namespace, address and link for each host name (short:
// they become parts of interface names).
func New(ids []string) (_ *Lab, err error) {
	if err := Available(); err != nil {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	var r [4]byte
	rand.Read(r[:])
	l := &Lab{prefix: "lq" + hex.EncodeToString(r[:2]), ns: map[string]string{}, ip: map[string]string{}, ids: ids}
	if l.subnet, err = freeSubnet(r[2], r[3]); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sw := l.prefix + "-sw"
	var script []string
	add := func(format string, a ...any) { script = append(script, fmt.Sprintf(format, a...)) }
	add("netns add %s", sw)
	add("-n %s link add br0 type bridge", sw)
	add("-n %s link set br0 up", sw)
	add("link add %sr type veth peer name %ss netns %s", l.prefix, l.prefix, sw)
	add("-n %s link set %ss master br0 up", sw, l.prefix)
	add("addr add %s.1/24 dev %sr", l.subnet, l.prefix)
	add("link set %sr up", l.prefix)
	for i, id := range ids {
		ns, ip := l.prefix+"-"+id, fmt.Sprintf("%s.%d", l.subnet, 11+i)
		l.ns[id], l.ip[id] = ns, ip
		add("netns add %s", ns)
		add("link add %s%dh netns %s type veth peer name %s%dc netns %s", l.prefix, i, sw, l.prefix, i, ns)
		add("-n %s link set %s%dh master br0 up", sw, l.prefix, i)
		add("-n %s addr add %s/24 dev %s%dc", ns, ip, l.prefix, i)
		add("-n %s link set %s%dc up", ns, l.prefix, i)
		add("-n %s link set lo up", ns)
	}
	for _, line := range script {
		if err := run(ctx, "", "ip", strings.Fields(line)...); err != nil {
			return nil, fmt.Errorf("netlab: build the namespaces: %w", err)
		}
	}
	for _, id := range ids {
		if err := l.nft(ctx, id, fmt.Sprintf("add table inet %s\nadd chain inet %s in { type filter hook input priority 0; policy accept; }\n", nftTable, nftTable)); err != nil {
			return nil, err
		}
	}
	if err := l.nft(ctx, "", fmt.Sprintf("add table inet %s\nadd chain inet %s in { type filter hook input priority 0; policy accept; }\n", l.prefix, l.prefix)); err != nil {
		return nil, err
	}
	return l, nil
}

// freeSubnet picks a 10.x.y.0/24 no local address is in.
func freeSubnet(a, b byte) (string, error) {
	out, err := exec.Command("ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return "", fmt.Errorf("netlab: ip addr: %w", err)
	}
	for i := range 64 {
		s := fmt.Sprintf("10.%d.%d", 200+(int(a)+i)%50, b)
		if !bytes.Contains(out, []byte(" "+s+".")) {
			return s, nil
		}
	}
	return "", errors.New("netlab: no free 10.x.y.0/24 subnet")
}

// IP is host id's address.
func (l *Lab) IP(id string) string { return l.ip[id] }

// Namespace is host id's network namespace.
func (l *Lab) Namespace(id string) string { return l.ns[id] }

// Command returns the path and arguments that run bin with args in host
// id's namespace (ip netns exec execs bin: the pid is bin's).
func (l *Lab) Command(id, bin string, args ...string) (string, []string) {
	return "ip", append([]string{"netns", "exec", l.ns[id], bin}, args...)
}

// nft runs an nft script in host id's namespace ("" for the root
// namespace, whose table is named after the lab).
func (l *Lab) nft(ctx context.Context, id, script string) error {
	if id == "" {
		return run(ctx, script, "nft", "-f", "-")
	}
	return run(ctx, script, "ip", "netns", "exec", l.ns[id], "nft", "-f", "-")
}

// drop makes host at ("" for the clients in the root namespace) drop
// every packet from the given hosts ("*" for every source but loopback).
func (l *Lab) drop(at string, from ...string) error {
	table := nftTable
	if at == "" {
		table = l.prefix
	}
	var b strings.Builder
	for _, f := range from {
		if f == "*" {
			fmt.Fprintf(&b, "add rule inet %s in iifname != \"lo\" drop\n", table)
			continue
		}
		fmt.Fprintf(&b, "add rule inet %s in ip saddr %s drop\n", table, l.ip[f])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return l.nft(ctx, at, b.String())
}

func (l *Lab) others(id string) []string {
	var out []string
	for _, o := range l.ids {
		if o != id {
			out = append(out, o)
		}
	}
	return out
}

// Flow is a direction of packets relative to one host.
type Flow int

// The flows; 0 means both.
const (
	Outbound Flow = iota + 1 // packets the host sends
	Inbound                  // packets the host receives
)

// Isolate drops host id's packets to and from the other hosts in the
// flows asked (0: both); the clients in the root namespace still reach it.
func (l *Lab) Isolate(id string, flow Flow) error {
	if flow != Outbound { // id hears no peer
		if err := l.drop(id, l.others(id)...); err != nil {
			return err
		}
	}
	if flow != Inbound { // no peer hears id
		for _, o := range l.others(id) {
			if err := l.drop(o, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// Blackhole drops every packet to and from host id, the clients' too, as
// a powered-off host or a dropped route would: no data, no FIN, no RST.
func (l *Lab) Blackhole(id string) error {
	if err := l.drop(id, "*"); err != nil {
		return err
	}
	if err := l.drop("", id); err != nil {
		return err
	}
	for _, o := range l.others(id) {
		if err := l.drop(o, id); err != nil {
			return err
		}
	}
	return nil
}

// Cut drops the packets between hosts a and b, both ways.
func (l *Lab) Cut(a, b string) error {
	if err := l.drop(a, b); err != nil {
		return err
	}
	return l.drop(b, a)
}

// Heal removes every drop rule.
func (l *Lab) Heal() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range l.ids {
		if err := l.nft(ctx, id, fmt.Sprintf("flush chain inet %s in\n", nftTable)); err != nil {
			return err
		}
	}
	return l.nft(ctx, "", fmt.Sprintf("flush chain inet %s in\n", l.prefix))
}

// Close removes the namespaces (their veths go with them) and the root
// namespace's table and veth.
func (l *Lab) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run(ctx, "", "nft", "delete", "table", "inet", l.prefix)
	for _, ns := range l.ns {
		run(ctx, "", "ip", "netns", "delete", ns)
	}
	run(ctx, "", "ip", "netns", "delete", l.prefix+"-sw")
	run(ctx, "", "ip", "link", "delete", l.prefix+"r")
}
