package command

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// The test binary re-executed with COMMAND_TEST_RUN set calls Main with
// the run named by it, and exits 0 if Main returns.
var runs = map[string]Run{
	"ok": func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fmt.Fprintf(stdout, "args %q\n", args)
		return nil
	},
	"fail": func(context.Context, []string, io.Writer, io.Writer) error {
		return errors.New("disk full")
	},
	"help": func(context.Context, []string, io.Writer, io.Writer) error {
		return fmt.Errorf("usage: %w", flag.ErrHelp)
	},
	// wait says ready and returns its context's error once cancelled.
	"wait": func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		fmt.Fprintln(stdout, "ready")
		<-ctx.Done()
		return fmt.Errorf("stopped: %w", ctx.Err())
	},
}

func TestMain(m *testing.M) {
	if name := os.Getenv("COMMAND_TEST_RUN"); name != "" {
		Main("tool", runs[name])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestMainExit(t *testing.T) {
	for _, c := range []struct {
		name       string
		run        string
		args       []string
		sig        syscall.Signal // sent once the run has said ready
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"arguments passed, exit 0", "ok", []string{"-x", "y"}, 0, 0, `args ["-x" "y"]` + "\n", ""},
		{"error printed, exit 1", "fail", nil, 0, 1, "", "tool: disk full\n"},
		{"help is not a failure", "help", nil, 0, 0, "", ""},
		{"SIGTERM cancels the context", "wait", nil, syscall.SIGTERM, 1, "ready\n", "tool: stopped: context canceled\n"},
		{"SIGINT cancels the context", "wait", nil, syscall.SIGINT, 1, "ready\n", "tool: stopped: context canceled\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], c.args...)
			// GORACE: no pause at exit under the race detector.
			cmd.Env = append(os.Environ(), "COMMAND_TEST_RUN="+c.run, "GORACE=atexit_sleep_ms=0")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if c.sig != 0 {
				// Reading the line "ready" means the run is waiting.
				line := make([]byte, len("ready\n"))
				if _, err := io.ReadFull(stdout, line); err != nil {
					t.Fatal(err)
				}
				out.Write(line)
				if err := cmd.Process.Signal(c.sig); err != nil {
					t.Fatal(err)
				}
			}
			io.Copy(&out, stdout)
			err = cmd.Wait()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.wantCode || out.String() != c.wantStdout || stderr.String() != c.wantStderr {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), stderr.String(), c.wantCode, c.wantStdout, c.wantStderr)
			}
		})
	}
}
