// Package proc builds this module's commands and runs them as OS
// processes for end-to-end tests and benchmarks: start, signal (SIGKILL,
// SIGTERM, SIGSTOP and SIGCONT), wait for the exit.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Broker is the import path of the broker command.
const Broker = "github.com/ledgermq/ledgermq/cmd/broker"

// Build compiles the package pkg (an import path such as Broker) into
// dir/<last element of pkg> and returns the binary's path. It runs `go
// build` in the root of the module the working directory belongs to, so it
// works from this module and from the bench modules that replace it.
func Build(ctx context.Context, dir, pkg string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("build %s: the working directory is in no Go module", pkg)
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// Spec describes a process to start.
type Spec struct {
	Path string   // the executable
	Args []string // its arguments, without the program name
	Env  []string // added to this process's environment
	// Output receives the process's stdout and stderr; nil discards them.
	// LogPath, if set, wins: the output is appended to that file.
	Output  io.Writer
	LogPath string
}

// Process is one started process. Its methods are safe for concurrent use.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited
}

// Start starts the process s describes. A goroutine owned by the Process
// waits for its exit; every Process must be ended with Kill, Terminate or
// by exiting, which Wait observes.
func Start(s Spec) (*Process, error) {
	cmd := exec.Command(s.Path, s.Args...)
	if len(s.Env) > 0 {
		cmd.Env = append(os.Environ(), s.Env...)
	}
	var logFile *os.File
	if s.LogPath != "" {
		f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open %s's log: %w", filepath.Base(s.Path), err)
		}
		logFile = f
		cmd.Stdout, cmd.Stderr = f, f
	} else if s.Output != nil {
		cmd.Stdout, cmd.Stderr = s.Output, s.Output
	}
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, fmt.Errorf("start %s: %w", s.Path, err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		close(p.exited)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// State describes how the process exited; nil while it runs.
func (p *Process) State() *os.ProcessState {
	if p.Running() {
		return nil
	}
	return p.cmd.ProcessState
}

// Signal sends sig without waiting. Signalling an exited process is not
// an error.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %d: %w", p.Pid(), err)
	}
	return nil
}

// Wait waits until the process has exited or ctx ends.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill sends SIGKILL (after SIGCONT, in case it is paused) and waits for
// the exit.
func (p *Process) Kill() {
	p.Signal(syscall.SIGCONT)
	p.Signal(syscall.SIGKILL)
	<-p.exited
}

// Terminate sends SIGTERM and waits for the exit.
func (p *Process) Terminate() {
	p.Signal(syscall.SIGCONT)
	p.Signal(syscall.SIGTERM)
	<-p.exited
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (p *Process) Pause() error { return p.Signal(syscall.SIGSTOP) }

// Resume continues a paused process with SIGCONT.
func (p *Process) Resume() error { return p.Signal(syscall.SIGCONT) }
