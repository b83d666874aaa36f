package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/testnet"
)

// freeRanges finds k disjoint runs of n consecutive free loopback ports,
// as `broker dev` numbers its nodes' ports, and returns each run's first
// port. Like testnet.Reserve, it releases them before returning.
func freeRanges(t *testing.T, n, k int) []int {
	t.Helper()
	for try := 0; try < 100; try++ {
		var lns []net.Listener
		var bases []int
		ok := true
		for len(bases) < k && ok {
			base, err := strconv.Atoi(strings.TrimPrefix(testnet.FreeAddrs(t, 1)[0], "127.0.0.1:"))
			if err != nil || base+n > 65535 {
				ok = false
				break
			}
			for p := base; p < base+n; p++ {
				ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
				if err != nil {
					ok = false
					break
				}
				lns = append(lns, ln)
			}
			bases = append(bases, base)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return bases
		}
	}
	t.Fatalf("no %d runs of %d free consecutive ports", k, n)
	return nil
}

// startDev runs runDev with args until ctx ends. It returns what runDev
// printed once it says the group is up, and runDev's result channel; if
// runDev returns first, the output so far and its error.
func startDev(t *testing.T, ctx context.Context, args []string) (string, <-chan error, error) {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runDev(ctx, args, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if sc.Text() == "Press Ctrl-C to stop." {
			go io.Copy(io.Discard, pr)
			return out.String(), done, nil
		}
	}
	return out.String(), nil, <-done
}

func TestDevArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "2"}, "--nodes must be 1, 3 or 5"},
		{[]string{"--nodes", "4"}, "--nodes must be 1, 3 or 5"},
		{[]string{"--nodes", "0"}, "--nodes must be 1, 3 or 5"},
		{[]string{"--nodes", "-3"}, "--nodes must be 1, 3 or 5"},
		{[]string{"--nodes", "7"}, "--nodes must be 1, 3 or 5"},
		{[]string{"--nodes", "three"}, `invalid value "three" for flag -nodes`},
		{[]string{"--api-port", "x"}, `invalid value "x" for flag -api-port`},
		{[]string{"--peers", "n1=a:1"}, "flag provided but not defined: -peers"},
	} {
		// Through run, as `broker dev ...` is given.
		var stderr bytes.Buffer
		err := run(append([]string{"dev"}, tc.args...), io.Discard, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("dev %q: err %v, want %q", tc.args, err, tc.want)
		}
	}
	var stderr bytes.Buffer
	if err := runDev(context.Background(), []string{"-h"}, io.Discard, &stderr); err == nil ||
		!strings.Contains(stderr.String(), "group size: 1, 3 or 5") {
		t.Errorf("dev -h: %v, %q", err, stderr.String())
	}
}

var devNodeLine = regexp.MustCompile(`(?m)^  (n\d)  api http://(\S+)  raft (\S+)$`)

// TestDevGroup runs `broker dev --nodes 3` in this process on free ports:
// the addresses it prints answer /readyz, and cancelling its context
// stops every node.
func TestDevGroup(t *testing.T) {
	bases := freeRanges(t, 3, 2)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	upCtx, up := context.WithTimeout(ctx, 20*time.Second)
	defer up()
	go func() {
		<-upCtx.Done() // stops a group that never says it is up
		if upCtx.Err() == context.DeadlineExceeded {
			cancel()
		}
	}()
	text, done, err := startDev(t, ctx, []string{"--nodes", "3", "--data-dir", dir, "--api-port", strconv.Itoa(bases[0]),
		"--raft-port", strconv.Itoa(bases[1]), "--log-level", "error"})
	up()
	if done == nil {
		t.Fatalf("runDev returned: %v\n%s", err, text)
	}
	if !strings.HasPrefix(text, fmt.Sprintf("LedgerMQ dev group of 3 nodes is up (data in %s).\n", dir)) {
		t.Fatalf("output:\n%s", text)
	}
	nodes := devNodeLine.FindAllStringSubmatch(text, -1)
	if len(nodes) != 3 {
		t.Fatalf("%d node lines in:\n%s", len(nodes), text)
	}
	var apis []string
	for i, m := range nodes {
		wantAPI, wantRaft := fmt.Sprintf("127.0.0.1:%d", bases[0]+i), fmt.Sprintf("127.0.0.1:%d", bases[1]+i)
		if m[1] != fmt.Sprintf("n%d", i+1) || m[2] != wantAPI || m[3] != wantRaft {
			t.Fatalf("node line %q, want n%d %s %s", m[0], i+1, wantAPI, wantRaft)
		}
		apis = append(apis, m[2])
	}
	if !strings.Contains(text, "(set MQ_BROKERS="+strings.Join(apis, ",")+" for mqctl)") {
		t.Fatalf("no MQ_BROKERS hint for non-default ports:\n%s", text)
	}
	for _, api := range apis {
		waitUntil(t, 20*time.Second, api+" to be ready", func() bool {
			r, err := httpc.Get("http://" + api + "/readyz")
			if err != nil {
				return false
			}
			r.Body.Close()
			return r.StatusCode == http.StatusOK
		})
	}
	for i := range 3 {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("n%d", i+1))); err != nil {
			t.Errorf("node data dir: %v", err)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runDev: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runDev did not return after its context ended")
	}
	for _, api := range apis {
		if c, err := net.DialTimeout("tcp", api, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after runDev returned", api)
		}
	}
}
