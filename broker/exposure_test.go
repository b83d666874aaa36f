package broker

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/devcerts"
)

func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7001": true, "[::1]:7001": true, "localhost:7001": true, "127.0.0.2:1": true,
		":7001": false, "0.0.0.0:7001": false, "[::]:7001": false, "10.1.2.3:7001": false, "192.168.0.1:1": false,
		"no-port": false,
	} {
		if got := LoopbackOnly(addr); got != want {
			t.Errorf("LoopbackOnly(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestSecureByDefault: a node whose API listens beyond loopback refuses
// to start without TLS and --auth, naming what is missing and listening on
// nothing; with Insecure it starts and warns until it is closed; with TLS,
// mutual TLS on the Raft port and --auth it starts without a warning.
func TestSecureByDefault(t *testing.T) {
	exposed := func(t *testing.T, log *syncBuffer) Config {
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen, cfg.RaftListen = t.TempDir(), "0.0.0.0:0", "127.0.0.1:0"
		cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
		return cfg
	}
	var log syncBuffer
	cfg := exposed(t, &log)
	cfg.RaftListen = "0.0.0.0:0"
	if b, err := Open(cfg); err == nil {
		b.Close()
		t.Fatal("an exposed node without TLS or auth started")
	} else {
		for _, want := range []string{"--insecure", "TLS (--tls-cert, --tls-key)", "authentication (--auth)", "the Raft port on 0.0.0.0:0 without mutual TLS"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not name %q", err, want)
			}
		}
	}

	t.Run("insecure warns until closed", func(t *testing.T) {
		var log syncBuffer
		cfg := exposed(t, &log)
		cfg.Insecure, cfg.insecureWarnEvery = true, 20*time.Millisecond
		b, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		b.Close()
		n := strings.Count(log.String(), "INSECURE")
		time.Sleep(100 * time.Millisecond)
		if n < 3 || strings.Count(log.String(), "INSECURE") != n {
			t.Fatalf("%d warnings while open, %d after Close; want several, then none", n, strings.Count(log.String(), "INSECURE"))
		}
	})

	t.Run("TLS and auth", func(t *testing.T) {
		bundle, err := devcerts.WriteBundle(t.TempDir(), []string{"n1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var log syncBuffer
		cfg := exposed(t, &log)
		cfg.RaftListen = "0.0.0.0:0"
		cfg.TLS.API = bundle.Nodes["n1"]
		cfg.Auth.Enabled = true
		b, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if strings.Contains(log.String(), "INSECURE") {
			t.Fatalf("a protected node warned: %s", log.String())
		}
		// Plain HTTP gets no API answer from it.
		addr := strings.Replace(b.Addr(), "0.0.0.0", "127.0.0.1", 1)
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				t.Fatal("the TLS API answered plain HTTP")
			}
		}
	})
}
