package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a process to signal: with PROC_TEST_HELPER
// set it says "ready", then exits with status 3 on SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("PROC_TEST_HELPER") == "term" {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// startHelper starts the helper and waits until it has said ready.
func startHelper(t *testing.T) *Process {
	t.Helper()
	var out lockedBuffer
	p, err := Start(Spec{Path: os.Args[0], Env: []string{"PROC_TEST_HELPER=term"}, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	waitFor(t, "the helper to be ready", func() bool { return strings.Contains(out.String(), "ready") })
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// schedState is the process state letter of /proc/<pid>/stat: T when
// stopped.
func schedState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	i := strings.LastIndexByte(string(b), ')')
	return b[i+2]
}

func TestSignals(t *testing.T) {
	for _, c := range []struct {
		name     string
		paused   bool
		end      func(*Process)
		wantCode int // exit status; -1: killed by a signal
		wantSig  syscall.Signal
	}{
		{"terminate sends SIGTERM", false, (*Process).Terminate, 3, 0},
		{"terminate continues a paused process", true, (*Process).Terminate, 3, 0},
		{"kill sends SIGKILL", false, (*Process).Kill, -1, syscall.SIGKILL},
		{"kill ends a paused process", true, (*Process).Kill, -1, syscall.SIGKILL},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startHelper(t)
			if p.State() != nil || !p.Running() {
				t.Fatal("a running process has an exit state")
			}
			if c.paused {
				if err := p.Pause(); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the process to stop", func() bool { return schedState(t, p.Pid()) == 'T' })
			}
			c.end(p)
			st := p.State()
			if p.Running() || st == nil || st.ExitCode() != c.wantCode {
				t.Fatalf("running %v, state %v; want exit code %d", p.Running(), st, c.wantCode)
			}
			if ws := st.Sys().(syscall.WaitStatus); c.wantSig != 0 && (!ws.Signaled() || ws.Signal() != c.wantSig) {
				t.Fatalf("wait status %v, want killed by %v", ws, c.wantSig)
			}
			select {
			case <-p.Exited():
			default:
				t.Fatal("Exited not closed after the exit")
			}
			c.end(p) // ending an ended process returns at once
		})
	}
}

// Pause stops the process and Resume continues it, as the kernel sees it.
func TestPauseResumeState(t *testing.T) {
	p := startHelper(t)
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the process to stop", func() bool { return schedState(t, p.Pid()) == 'T' })
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the process to continue", func() bool { return schedState(t, p.Pid()) != 'T' })
	if !p.Running() {
		t.Fatal("exited after pause and resume")
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	p := startHelper(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if !p.Running() {
		t.Fatal("Wait's context ended the process")
	}
}

func TestStartFails(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		s    Spec
	}{
		{"missing executable", Spec{Path: filepath.Join(dir, "nothing")}},
		{"not executable", Spec{Path: dir}},
		{"log in a missing directory", Spec{Path: "/bin/true", LogPath: filepath.Join(dir, "no", "such.log")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if p, err := Start(c.s); err == nil || p != nil {
				t.Fatalf("Start = %v, %v; want an error", p, err)
			}
		})
	}
}

// A log file is appended to, not truncated, by each start.
func TestLogPathAppends(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "out.log")
	for _, word := range []string{"first", "second"} {
		p, err := Start(Spec{Path: "/bin/sh", Args: []string{"-c", "echo " + word + "; echo err-" + word + " >&2"}, LogPath: logPath})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(logPath)
	if err != nil || string(b) != "first\nerr-first\nsecond\nerr-second\n" {
		t.Fatalf("log %q, %v", b, err)
	}
}

func TestBuildFails(t *testing.T) {
	ctx := context.Background()
	t.Run("unknown package", func(t *testing.T) {
		_, err := Build(ctx, t.TempDir(), "github.com/ledgermq/ledgermq/cmd/no-such-command")
		if err == nil || !strings.Contains(err.Error(), "no-such-command") {
			t.Fatalf("Build = %v", err)
		}
	})
	t.Run("outside a module", func(t *testing.T) {
		t.Chdir(t.TempDir())
		t.Setenv("GO111MODULE", "on")
		t.Setenv("GOWORK", "off")
		_, err := Build(ctx, t.TempDir(), Broker)
		if err == nil || !strings.Contains(err.Error(), "in no Go module") {
			t.Fatalf("Build = %v", err)
		}
	})
}
