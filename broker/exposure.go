package broker

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// Secure by default (issue 12, docs/security.md): a node whose API or Raft
// port can be reached from other machines must protect it. The API needs
// TLS and authentication (--auth); the Raft port needs mutual TLS. Without
// them Open refuses to start unless Config.Insecure (--insecure) is set,
// and then the node logs a warning every minute it runs so.

// insecureWarnEvery is how often an insecure exposed node says so.
const insecureWarnEvery = time.Minute

// exposure lists the listeners reachable beyond this machine that lack
// protection, e.g. "API 0.0.0.0:7001 without TLS and --auth". Empty when
// every listener is loopback-only or protected.
func (c *Config) exposure(raftTLS bool) []string {
	var out []string
	// client listeners: TLS and authentication both
	client := func(what, addr, authHow string) {
		if addr == "" || LoopbackOnly(addr) {
			return
		}
		var miss []string
		if c.TLS.API.Cert == "" {
			miss = append(miss, "TLS (--tls-cert, --tls-key)")
		}
		if !c.Auth.Enabled {
			miss = append(miss, "authentication ("+authHow+")")
		}
		if len(miss) > 0 {
			out = append(out, fmt.Sprintf("%s on %s without %s", what, addr, strings.Join(miss, " and ")))
		}
	}
	client("the API", c.Listen, "--auth")
	client("the Kafka listener", c.KafkaListen, "--auth, SASL/PLAIN with a token")
	if !raftTLS && !LoopbackOnly(c.RaftListen) {
		out = append(out, fmt.Sprintf("the Raft port on %s without mutual TLS (--raft-tls-cert, --raft-tls-key, --raft-tls-ca)", c.RaftListen))
	}
	return out
}

// LoopbackOnly reports whether a listen address can be reached from this
// machine only: a loopback IP, or a name that resolves to loopback IPs
// only. An empty or unspecified host (":7001", "0.0.0.0:7001") listens
// everywhere.
func LoopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return false
		}
	}
	return true
}

// checkExposure refuses an unprotected exposed node unless Insecure; what
// is exposed is remembered for warnInsecure.
func (b *Broker) checkExposure(raftTLS bool) error {
	b.exposed = b.cfg.exposure(raftTLS)
	exposed := b.exposed
	if len(exposed) == 0 {
		return nil
	}
	if !b.cfg.Insecure {
		return fmt.Errorf("broker: refusing to serve %s: anyone who can reach it could read and change everything; "+
			"configure them (docs/security.md), listen on 127.0.0.1, or accept the risk with --insecure",
			strings.Join(exposed, "; "))
	}
	return nil
}

// warnInsecure logs, now and every minute until Close, that the node is
// exposed without protection (Insecure). The loop is owned by b.
func (b *Broker) warnInsecure() {
	if len(b.exposed) == 0 {
		return
	}
	exposed := b.exposed
	warn := func() {
		b.logger.Warn("INSECURE: this node is reachable from other machines without protection (--insecure)",
			"exposed", strings.Join(exposed, "; "))
	}
	warn()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(b.insecureWarnEvery())
		defer t.Stop()
		for {
			select {
			case <-t.C:
				warn()
			case <-b.stop:
				return
			}
		}
	}()
}

func (b *Broker) insecureWarnEvery() time.Duration {
	if b.cfg.insecureWarnEvery > 0 {
		return b.cfg.insecureWarnEvery
	}
	return insecureWarnEvery
}
