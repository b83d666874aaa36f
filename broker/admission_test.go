package broker

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// TestOverloadedBeforeBody: while one request holds the whole in-flight
// budget (its body still arriving), another is refused with a retriable,
// not-applied 503 OVERLOADED from its headers alone; once the first ends,
// requests are served again.
func TestOverloadedBeforeBody(t *testing.T) {
	bs := startGroup(t, 1, func(c *Config) {
		c.Admission.MaxInflightBytes = 1 << 20 // = MaxRequestBytes
		c.Admission.MaxInflightBytesPerClient = 1 << 20
	})
	addr := bs[0].Addr()
	base := "http://" + addr
	if r := call(t, "POST", base+"/v1/topics", "application/json", []byte(`{"name":"orders","queues":1}`)); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	hog, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	// Announce the largest body allowed and send a little of it (more
	// than the 8 KiB fasthttp pre-reads before the handler runs).
	fmt.Fprintf(hog, "POST /v1/topics/orders/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"messages\":%s", 1<<20, strings.Repeat(" ", 9<<10))
	// The hog is charged once fasthttp has handed its request to the
	// handler (after its headers and a pre-read of the body): wait for it.
	waitFor(t, 15*time.Second, "the hog charged to the budget", func() bool { return bs[0].http.InflightBytes() == 1<<20 })
	shed := expectCode(t, call(t, "POST", base+"/v1/topics/orders/messages", "application/json", []byte(`{"messages":[{"value":"x"}]}`)),
		http.StatusServiceUnavailable, wire.CodeOverloaded)
	if !shed.Retriable || !shed.NotApplied {
		t.Fatalf("OVERLOADED must be retriable and not applied: %+v", shed)
	}
	hog.Close()
	waitFor(t, 5*time.Second, "admission after the hog left", func() bool {
		return call(t, "POST", base+"/v1/topics/orders/messages", "application/json", []byte(`{"messages":[{"value":"x"}]}`)).status == http.StatusOK
	})
}

// TestDiskWatermark: below the free-space watermark the leader refuses
// produce with a retriable, not-applied DISK_FULL; reads still work; it
// accepts writes again by itself once space returns.
func TestDiskWatermark(t *testing.T) {
	var free atomic.Uint64
	free.Store(10 << 30)
	bs := startGroup(t, 1, func(c *Config) {
		c.freeSpace = func(string) (uint64, uint64, error) { return free.Load(), 20 << 30, nil }
	})
	base := "http://" + bs[0].Addr()
	produce := func() resp {
		return call(t, "POST", base+"/v1/topics/orders/messages", "application/json", []byte(`{"messages":[{"value":"x"}]}`))
	}
	if r := call(t, "POST", base+"/v1/topics", "application/json", []byte(`{"name":"orders","queues":1}`)); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if r := produce(); r.status != http.StatusOK {
		t.Fatalf("produce: %d %s", r.status, r.body)
	}
	free.Store(100 << 20) // below max(256 MiB, 1% of 20 GiB)
	var e wire.APIError
	waitFor(t, 5*time.Second, "DISK_FULL", func() bool {
		r := produce()
		if r.status == http.StatusOK {
			return false
		}
		e = expectCode(t, r, http.StatusInsufficientStorage, wire.CodeDiskFull)
		return true
	})
	if !e.Retriable || !e.NotApplied {
		t.Fatalf("DISK_FULL must be retriable and not applied: %+v", e)
	}
	if r := call(t, "GET", base+"/v1/topics/orders/queues/0/messages?offset=0", "", nil); r.status != http.StatusOK {
		t.Fatalf("fetch below the watermark: %d %s", r.status, r.body)
	}
	free.Store(1 << 30)
	waitFor(t, 5*time.Second, "writes after space returned", func() bool { return produce().status == http.StatusOK })
}

// TestDiskWatermarkLeaderStepsDown: a leader below its watermark hands
// leadership to a follower with room, so the group stays writable.
func TestDiskWatermarkLeaderStepsDown(t *testing.T) {
	var short sync.Map // node id -> true while its disk is short
	bs := startGroup(t, 3, func(c *Config) {
		id := c.ID
		c.freeSpace = func(string) (uint64, uint64, error) {
			if v, ok := short.Load(id); ok && v.(bool) {
				return 100 << 20, 20 << 30, nil
			}
			return 10 << 30, 20 << 30, nil
		}
	})
	l := leaderOf(t, bs)
	base := "http://" + l.Addr()
	if r := call(t, "POST", base+"/v1/topics", "application/json", []byte(`{"name":"orders","queues":1}`)); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	short.Store(l.cfg.ID, true)
	waitFor(t, 5*time.Second, "DISK_FULL on the short leader", func() bool { // the guard re-reads free space every 100 ms
		r := call(t, "POST", base+"/v1/topics/orders/messages", "application/json", []byte(`{"messages":[{"value":"x"}]}`))
		return r.status == http.StatusInsufficientStorage || r.status == http.StatusMisdirectedRequest
	})
	var next *Broker
	waitFor(t, 15*time.Second, "a new leader with room", func() bool {
		for _, b := range bs {
			if b != l && b.node.IsLeader() {
				next = b
				return true
			}
		}
		return false
	})
	if r := call(t, "POST", "http://"+next.Addr()+"/v1/topics/orders/messages", "application/json", []byte(`{"messages":[{"value":"x"}]}`)); r.status != http.StatusOK {
		t.Fatalf("produce on the new leader: %d %s", r.status, r.body)
	}
}

// TestUnsentResponseCharged: a fetch answer the client has not read yet
// stays charged to the in-flight budget (fetches are refused with
// OVERLOADED meanwhile, instead of building more answers in memory); once
// the reader goes away the charge is released and fetches are served.
func TestUnsentResponseCharged(t *testing.T) {
	const perClient = 4 << 20
	bs := startGroup(t, 1, func(c *Config) {
		c.MaxRequestBytes = 2 << 20
		c.Admission.MaxInflightBytes = 64 << 20
		c.Admission.MaxInflightBytesPerClient = perClient
	})
	addr := bs[0].Addr()
	base := "http://" + addr
	if r := call(t, "POST", base+"/v1/topics", "application/json", []byte(`{"name":"big","queues":1}`)); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	value := strings.Repeat("v", 100<<10)
	body := []byte(`{"messages":[` + strings.TrimSuffix(strings.Repeat(`{"value":"`+value+`"},`, 19), ",") + `]}`)
	for range 6 { // ~11 MiB: more than loopback's socket buffers take
		if r := call(t, "POST", base+"/v1/topics/big/messages", "application/json", body); r.status != http.StatusOK {
			t.Fatalf("produce: %d %.200s", r.status, r.body)
		}
	}
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /v1/topics/big/queues/0/batches?offset=0&max_bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n", 10<<20)
	waitFor(t, 15*time.Second, "the unread answer charged", func() bool { return bs[0].http.InflightBytes() > perClient })
	expectCode(t, call(t, "GET", base+"/v1/topics/big/queues/0/messages?offset=0&max_messages=1", "", nil),
		http.StatusServiceUnavailable, wire.CodeOverloaded)
	slow.Close()
	waitFor(t, 10*time.Second, "the charge released", func() bool { return bs[0].http.InflightBytes() == 0 })
	if r := call(t, "GET", base+"/v1/topics/big/queues/0/messages?offset=0&max_messages=1", "", nil); r.status != http.StatusOK {
		t.Fatalf("fetch after the reader left: %d %.200s", r.status, r.body)
	}
}
