package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/testnet"
	"github.com/ledgermq/ledgermq/wire"
)

// Issue 15: the container image and deploy/compose.yaml, for real: build
// the image (deploy/build-image.sh, FROM scratch), bring the 3-node group
// up with Docker Compose, produce and consume with mqctl from the host,
// kill the leader's container, and see the group elect a new leader, keep
// every message and committed offset, and take the killed node back.

// compose returns the Compose command of this machine (the docker compose
// plugin, else docker-compose), or skips the test where Docker is absent.
func compose(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("Docker is not available here (docker info: %v: %s): the container test needs a Docker engine and Compose", err, bytes.TrimSpace(out))
	}
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if exec.CommandContext(ctx, "docker-compose", "version").Run() == nil {
		return []string{"docker-compose"}
	}
	t.Skip("Docker runs but neither `docker compose` nor docker-compose is installed: the container test needs Compose")
	return nil
}

// runCmd runs a command with env added, failing the test with its output.
func runCmd(t *testing.T, d time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestComposeGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image and runs containers")
	}
	dc := compose(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("ledgermq:e2e-%d", os.Getpid())
	project := fmt.Sprintf("lmqe2e%d", os.Getpid())
	runCmd(t, 5*time.Minute, nil, filepath.Join(root, "deploy", "build-image.sh"), tag)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })

	// Free ports for the nine listeners, through compose.yaml's variables.
	addrs := testnet.FreeAddrs(t, 9)
	env := []string{"LEDGERMQ_IMAGE=" + tag}
	api := map[string]string{}
	for i, id := range []string{"n1", "n2", "n3"} {
		for k, kind := range []string{"API", "RAFT", "KAFKA"} {
			_, port, _ := net.SplitHostPort(addrs[3*i+k])
			env = append(env, fmt.Sprintf("LMQ_N%d_%s=%s", i+1, kind, port))
			if kind == "API" {
				api[id] = "127.0.0.1:" + port
			}
		}
	}
	composeArgs := func(args ...string) []string {
		return append(append(dc[1:], "-f", filepath.Join(root, "deploy", "compose.yaml"), "-p", project), args...)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, dc[0], composeArgs("down", "-v", "--remove-orphans", "-t", "5")...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	runCmd(t, 2*time.Minute, env, dc[0], composeArgs("up", "-d")...)

	hc := &http.Client{Timeout: 2 * time.Second}
	status := func(id string) (wire.ClusterStatus, bool) {
		var cs wire.ClusterStatus
		r, err := hc.Get("http://" + api[id] + "/v1/cluster")
		if err != nil {
			return cs, false
		}
		defer r.Body.Close()
		return cs, r.StatusCode == 200 && json.NewDecoder(r.Body).Decode(&cs) == nil
	}
	// healthy is whether id sees a leader and want nodes up and caught up
	// (holding every entry the leader has committed).
	healthy := func(id string, want int) (string, bool) {
		cs, ok := status(id)
		if !ok || cs.Leader == "" {
			return "", false
		}
		var commit uint64
		for _, n := range cs.Nodes {
			if n.ID == cs.Leader {
				commit = n.CommitIndex
			}
		}
		up := 0
		for _, n := range cs.Nodes {
			if n.Reachable && n.LastIndex >= commit {
				up++
			}
		}
		return cs.Leader, up >= want
	}
	var leader string
	waitUntil(t, 60*time.Second, "the compose group up with a leader", func() bool {
		l, ok := healthy("n1", 3)
		leader = l
		return ok
	})
	brokers := api["n1"] + "," + api["n2"] + "," + api["n3"]

	// mqctl from the host: a topic, 300 messages, a group reading them all.
	mqctl(t, brokers, "", "topic", "create", "orders", "--queues", "3")
	produce := func(from, to int) {
		var in strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&in, "m%d\n", i)
		}
		mqctl(t, brokers, in.String(), "produce", "orders", "--batch-size", "50")
	}
	consumeGroup := func(from, to int) {
		t.Helper()
		out := mqctl(t, brokers, "", "consume", "orders", "--group", "billing", "--count", fmt.Sprint(to-from), "--values-only", "--timeout", "30s")
		checkExactly(t, out, from, to)
	}
	produce(0, 300)
	consumeGroup(0, 300)

	// Kill the leader's container (SIGKILL, no shutdown): the other two
	// elect a leader and go on; mqctl finds it by itself.
	svc := "ledgermq-" + strings.TrimPrefix(leader, "n")
	cid := strings.TrimSpace(runCmd(t, 30*time.Second, env, dc[0], composeArgs("ps", "-q", svc)...))
	runCmd(t, 30*time.Second, nil, "docker", "kill", cid)
	killed := time.Now()
	other := "n1"
	if leader == "n1" {
		other = "n2"
	}
	var newLeader string
	waitUntil(t, 30*time.Second, "a new leader after the kill", func() bool {
		l, ok := healthy(other, 2)
		newLeader = l
		return ok && l != leader
	})
	t.Logf("leader %s killed; %s leads, seen %v after the kill (status polled through the HTTP API)", leader, newLeader, time.Since(killed).Round(time.Millisecond))
	produce(300, 500)
	consumeGroup(300, 500) // the group's committed offsets survived

	// The killed node comes back with its volume and catches up.
	runCmd(t, time.Minute, env, dc[0], composeArgs("start", svc)...)
	waitUntil(t, 60*time.Second, "the restarted node caught up", func() bool {
		_, ok := healthy(leader, 3)
		return ok
	})
	out := mqctl(t, api[leader], "", "consume", "orders", "--from-beginning", "--values-only")
	checkExactly(t, out, 0, 500)
}

// checkExactly checks that out holds the values m<from>..m<to-1>, one per
// line, each exactly once.
func checkExactly(t *testing.T, out string, from, to int) {
	t.Helper()
	lines := strings.Fields(out)
	if len(lines) != to-from {
		t.Fatalf("got %d messages, want %d (m%d..m%d)", len(lines), to-from, from, to-1)
	}
	seen := map[int]bool{}
	for _, l := range lines {
		var i int
		if _, err := fmt.Sscanf(l, "m%d", &i); err != nil || i < from || i >= to || seen[i] {
			t.Fatalf("unexpected or repeated message %q (want m%d..m%d once each)", l, from, to-1)
		}
		seen[i] = true
	}
}
