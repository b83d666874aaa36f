package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
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

var devNodeLine = regexp.MustCompile(`(?m)^  (n\d)  api http://(\S+)  raft (\S+)  kafka (\S+)$`)

// TestDevGroup runs `broker dev --nodes 3` in this process on free ports:
// the addresses it prints answer /readyz, and cancelling its context
// stops every node.
func TestDevGroup(t *testing.T) {
	bases := freeRanges(t, 3, 3)
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
		"--raft-port", strconv.Itoa(bases[1]), "--kafka-port", strconv.Itoa(bases[2]), "--log-level", "error"})
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
		wantKafka := fmt.Sprintf("127.0.0.1:%d", bases[2]+i)
		if m[1] != fmt.Sprintf("n%d", i+1) || m[2] != wantAPI || m[3] != wantRaft || m[4] != wantKafka {
			t.Fatalf("node line %q, want n%d %s %s %s", m[0], i+1, wantAPI, wantRaft, wantKafka)
		}
		c, err := net.DialTimeout("tcp", wantKafka, 5*time.Second)
		if err != nil {
			t.Fatalf("the Kafka listener %s: %v", wantKafka, err)
		}
		c.Close()
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

var devSecureNodeLine = regexp.MustCompile(`(?m)^  (n\d)  api https://(\S+)  raft (\S+)  kafka (\S+)$`)

// TestDevSecure runs `broker dev --nodes 3 --secure`: every API is HTTPS
// and wants credentials; the admin token and certificate it wrote are the
// superuser's; plain HTTP and requests without credentials are refused;
// a restart keeps the credentials.
func TestDevSecure(t *testing.T) {
	bases := freeRanges(t, 3, 3)
	dir := t.TempDir()
	start := func() (apis []string, stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		text, done, err := startDev(t, ctx, []string{"--nodes", "3", "--secure", "--data-dir", dir, "--api-port", strconv.Itoa(bases[0]),
			"--raft-port", strconv.Itoa(bases[1]), "--kafka-port", strconv.Itoa(bases[2]), "--log-level", "error"})
		if done == nil {
			cancel()
			t.Fatalf("runDev returned: %v\n%s", err, text)
		}
		for _, m := range devSecureNodeLine.FindAllStringSubmatch(text, -1) {
			apis = append(apis, m[2])
		}
		if len(apis) != 3 || !strings.Contains(text, "export MQ_CONFIG="+filepath.Join(dir, "mqctl.yaml")) {
			cancel()
			t.Fatalf("output:\n%s", text)
		}
		return apis, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runDev: %v", err)
			}
		}
	}
	apis, stop := start()
	token, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls", "user-admin.pem"), filepath.Join(dir, "tls", "user-admin-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string, certs []tls.Certificate, tok string) (int, string) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
		req, _ := http.NewRequest("GET", url, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		r, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	tok := strings.TrimSpace(string(token))
	for _, api := range apis {
		waitReady := time.Now().Add(20 * time.Second)
		for {
			code, body := get("https://"+api+"/v1/auth/whoami", nil, tok)
			if code == http.StatusOK && strings.Contains(body, `"User:admin"`) && strings.Contains(body, `"superuser":true`) {
				break
			}
			if time.Now().After(waitReady) {
				t.Fatalf("%s whoami with the admin token: %d %s", api, code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code, body := get("https://"+api+"/v1/auth/whoami", []tls.Certificate{cert}, ""); code != http.StatusOK || !strings.Contains(body, `"User:admin"`) {
			t.Fatalf("%s whoami with the admin certificate: %d %s", api, code, body)
		}
		if code, body := get("https://"+api+"/v1/topics", nil, ""); code != http.StatusUnauthorized {
			t.Fatalf("%s without credentials: %d %s", api, code, body)
		}
		if code, body := get("http://"+api+"/v1/topics", nil, ""); code == http.StatusOK {
			t.Fatalf("%s answered plain HTTP: %s", api, body)
		}
	}
	stop()
	apis, stop = start()
	defer stop()
	again, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil || string(again) != string(token) {
		t.Fatalf("the admin token changed across a restart (%v)", err)
	}
	if code, body := get("https://"+apis[0]+"/healthz", nil, ""); code != http.StatusOK {
		t.Fatalf("healthz after the restart: %d %s", code, body)
	}
}
