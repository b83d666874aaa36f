package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"github.com/ledgermq/ledgermq/broker"
)

// startPprof serves Go's profiles (net/http/pprof) on addr, a loopback
// address only (profiles show the process's memory and code paths: reach
// them through SSH). Port 0 picks a free port; the address serving is
// written to addrFile (when not empty), so that tools find every node's.
// It stops when ctx ends; the returned wait blocks until it has.
func startPprof(ctx context.Context, addr, addrFile string, logger *slog.Logger) (wait func(), err error) {
	if !broker.LoopbackOnly(addr) {
		return nil, fmt.Errorf("--pprof-listen %q: want a loopback address such as 127.0.0.1:6060", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	if addrFile != "" {
		if err := os.MkdirAll(filepath.Dir(addrFile), 0o755); err == nil {
			err = os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644)
		}
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("--pprof-listen: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof server stopped", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		case <-done:
		}
	}()
	logger.Info("profiles served", "addr", ln.Addr().String())
	return func() { <-done }, nil
}
