// Command broker runs a LedgerMQ broker node, or with `broker dev` a whole
// local group in one process for trying LedgerMQ out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if len(args) > 0 && args[0] == "dev" {
		return runDev(ctx, args[1:], stdout, stderr)
	}
	o, err := parseNodeFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, o.logLevel)
	cfg, err := o.brokerConfig(logger)
	if err != nil {
		return err
	}
	if o.pprofListen != "" {
		pctx, stopPprof := context.WithCancel(ctx)
		wait, err := startPprof(pctx, o.pprofListen, filepath.Join(cfg.DataDir, "pprof.addr"), logger)
		if err != nil {
			stopPprof()
			return err
		}
		defer wait()
		defer stopPprof()
	}
	return serve(ctx, cfg, logger)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		lv = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv}))
}
