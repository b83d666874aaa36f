package proc

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestOutputAndExit(t *testing.T) {
	var out lockedBuffer
	p, err := Start(Spec{Path: "/bin/sh", Args: []string{"-c", "echo $PROC_TEST"}, Env: []string{"PROC_TEST=hello"}, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Running() || !p.State().Success() || strings.TrimSpace(out.String()) != "hello" {
		t.Fatalf("running %v, state %v, output %q", p.Running(), p.State(), out.String())
	}
}

func TestPauseResumeKill(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "sleep.log")
	p, err := Start(Spec{Path: "/bin/sh", Args: []string{"-c", "echo started; exec sleep 60"}, LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if data, _ := os.ReadFile(logPath); strings.Contains(string(data), "started") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no output in the log file")
		}
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if !p.Running() {
		t.Fatal("exited after pause and resume")
	}
	p.Kill()
	if p.Running() || p.State().Success() {
		t.Fatalf("after kill: running %v, state %v", p.Running(), p.State())
	}
	if err := p.Signal(os.Interrupt); err != nil {
		t.Fatalf("signal after exit: %v", err)
	}
}
