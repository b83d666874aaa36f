package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ledgermq/ledgermq/broker"
	"github.com/ledgermq/ledgermq/replication"
)

// serve runs one node until ctx ends, then shuts it down cleanly.
func serve(ctx context.Context, cfg broker.Config, logger *slog.Logger) error {
	b, err := broker.Open(cfg)
	if err != nil {
		return err
	}
	// SIGHUP re-reads the TLS files (they are also polled every second).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			logger.Info("SIGHUP: reloading TLS files")
			if err := b.ReloadTLS(); err != nil {
				logger.Error("TLS reload failed; the previous certificates stay in use", "err", err)
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	logger.Info("shutting down")
	return b.Close()
}

// runDev starts a complete local group in this process.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("broker dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", 3, "group size: 1, 3 or 5")
	dir := fs.String("data-dir", "./data/dev", "parent directory of the nodes' data")
	apiPort := fs.Int("api-port", 7001, "first node's API port; node i uses api-port+i-1")
	raftPort := fs.Int("raft-port", 8001, "first node's Raft port")
	kafkaPort := fs.Int("kafka-port", 9092, "first node's Kafka-protocol port (0: no Kafka listener)")
	level := fs.String("log-level", "warn", "debug, info, warn or error")
	secure := fs.Bool("secure", false, "TLS on every port and authentication: a throw-away CA, node and client certificates and an admin token under --data-dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only; see broker dev -h)", fs.Arg(0))
	}
	if *nodes != 1 && *nodes != 3 && *nodes != 5 {
		return fmt.Errorf("--nodes must be 1, 3 or 5")
	}
	if err := checkLevel(*level); err != nil {
		return err
	}
	logger := newLogger(stderr, *level)
	var peers []replication.Peer
	for i := 1; i <= *nodes; i++ {
		peers = append(peers, replication.Peer{ID: fmt.Sprintf("n%d", i), RaftAddr: fmt.Sprintf("127.0.0.1:%d", *raftPort+i-1)})
	}
	var brokers []*broker.Broker
	defer func() {
		for _, b := range brokers {
			if err := b.Close(); err != nil {
				logger.Warn("close", "err", err)
			}
		}
	}()
	var sec *devSecurity
	if *secure {
		var err error
		if sec, err = setupDevSecurity(*dir, peers, *apiPort); err != nil {
			return err
		}
	}
	var apis []string
	for i, p := range peers {
		cfg := broker.DefaultConfig()
		cfg.ID, cfg.Peers, cfg.RaftListen = p.ID, peers, p.RaftAddr
		cfg.Listen = fmt.Sprintf("127.0.0.1:%d", *apiPort+i)
		if *kafkaPort > 0 {
			cfg.KafkaListen = fmt.Sprintf("127.0.0.1:%d", *kafkaPort+i)
		}
		cfg.DataDir = filepath.Join(*dir, p.ID)
		cfg.Logger = logger
		sec.configure(&cfg)
		b, err := broker.Open(cfg)
		if err != nil {
			return err
		}
		brokers = append(brokers, b)
		apis = append(apis, cfg.Listen)
	}
	fmt.Fprintf(stdout, "LedgerMQ dev group of %d nodes is up (data in %s).\n", *nodes, *dir)
	scheme := "http"
	if sec != nil {
		scheme = "https"
	}
	for i, p := range peers {
		fmt.Fprintf(stdout, "  %s  api %s://%s  raft %s", p.ID, scheme, apis[i], p.RaftAddr)
		if *kafkaPort > 0 {
			fmt.Fprintf(stdout, "  kafka %s", fmt.Sprintf("127.0.0.1:%d", *kafkaPort+i))
		}
		fmt.Fprintln(stdout)
	}
	if sec != nil {
		sec.printUsage(stdout)
	}
	fmt.Fprintf(stdout, "Try:\n  mqctl topic create orders --queues 4\n  echo hello | mqctl produce orders\n  mqctl consume orders --from-beginning\n  mqctl cluster status\n")
	if sec == nil && strings.Join(apis, ",") != "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003" {
		fmt.Fprintf(stdout, "  (set MQ_BROKERS=%s for mqctl)\n", strings.Join(apis, ","))
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}
