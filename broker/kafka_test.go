package broker

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ledgermq/ledgermq/internal/testnet"
)

// Issue 14: what the Kafka listener does with bad input. Raw requests over
// TCP (kmsg encodes them), against an in-process group; the e2e tests in
// cmd/broker use real clients.

type kconn struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dialKafka(t *testing.T, addr string) *kconn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &kconn{t: t, c: c}
}

// frame sends a raw request frame.
func (k *kconn) frame(b []byte) error {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	_, err := k.c.Write(append(out, b...))
	return err
}

// request sends req at version v and decodes the answer into resp; an
// error is the connection's (closed by the broker).
func (k *kconn) request(req kmsg.Request, v int16) (kmsg.Response, error) {
	req.SetVersion(v)
	k.corr++
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(v))
	b = binary.BigEndian.AppendUint32(b, uint32(k.corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	if err := k.frame(req.AppendTo(b)); err != nil {
		return nil, err
	}
	k.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(k.c, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(k.c, body); err != nil {
		return nil, err
	}
	if int32(binary.BigEndian.Uint32(body)) != k.corr {
		k.t.Fatalf("correlation id %d, want %d", binary.BigEndian.Uint32(body), k.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(v)
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:] // empty tagged fields of response header v1
	}
	if err := resp.ReadFrom(body); err != nil {
		k.t.Fatalf("decoding %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// closed reports whether the broker closed the connection.
func (k *kconn) closed() bool {
	k.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := k.c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func kafkaGroup(t *testing.T, tweak func(*Config)) (*Broker, string) {
	t.Helper()
	addr := testnet.FreeAddrs(t, 1)[0]
	bs := startGroup(t, 1, func(c *Config) {
		c.KafkaListen = addr
		if tweak != nil {
			tweak(c)
		}
	})
	waitFor(t, 10*time.Second, "the Kafka address known", func() bool {
		st := bs[0].Service().ClusterStatus()
		return len(st.Nodes) == 1 && st.Nodes[0].KafkaAddr == addr && st.Leader != ""
	})
	return bs[0], addr
}

func produceReq(topic string, part int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = part, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// kafkaRecords is a valid uncompressed batch of one record.
func kafkaRecords(value string) []byte { return kafkaBatchOf([]byte(value), 1, false) }

// kafkaBatchOf is a batch of n records of value, gzip-compressed if asked.
func kafkaBatchOf(value []byte, n int, gz bool) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		rec := kmsg.Record{Value: value, OffsetDelta: int32(i)}
		body := rec.AppendTo(nil)
		rec.Length = int32(len(body) - len(binary.AppendVarint(nil, 0)))
		recs = rec.AppendTo(recs)
	}
	attrs := int16(0)
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(recs)
		w.Close()
		recs, attrs = b.Bytes(), 1
	}
	rb := kmsg.RecordBatch{Magic: 2, Attributes: attrs, PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(n), LastOffsetDelta: int32(n - 1), FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(), Records: recs}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32c(b[21:]))
	return b
}

func TestKafkaBadInput(t *testing.T) {
	b, addr := kafkaGroup(t, nil)
	k := dialKafka(t, addr)
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "t", 2, -1
	create.Topics = append(create.Topics, ct)
	r, err := k.request(create, 4)
	if err != nil || r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, r)
	}
	stored := func() uint64 {
		info, err := b.Service().DescribeTopic("t")
		if err != nil {
			t.Fatal(err)
		}
		return info.QueueInfo[0].Next + info.QueueInfo[1].Next
	}
	partErr := func(r kmsg.Response) int16 { return r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode }
	good := kafkaRecords("v")
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 0xff
	old := append([]byte(nil), good...)
	old[16] = 1
	for _, c := range []struct {
		name  string
		req   *kmsg.ProduceRequest
		want  int16
		write bool
	}{
		{"unknown topic", produceReq("nope", 0, good), 3, false},
		{"unknown partition", produceReq("t", 7, good), 3, false},
		{"bad CRC", produceReq("t", 0, corrupt), 2, false},
		{"message set v1", produceReq("t", 0, old), 35, false},
		{"truncated", produceReq("t", 0, good[:30]), 2, false},
		{"valid", produceReq("t", 1, good), 0, true},
	} {
		before := stored()
		r, err := k.request(c.req, 7)
		if err != nil {
			t.Fatalf("%s: connection: %v", c.name, err)
		}
		if got := partErr(r); got != c.want {
			t.Fatalf("%s: error code %d, want %d", c.name, got, c.want)
		}
		if after := stored(); (after != before) != c.write {
			t.Fatalf("%s: stored %d -> %d", c.name, before, after)
		}
	}
	// One request's decompressed records share one budget (4 x the
	// request bound, 4 MiB here), whatever the number of partitions: three
	// partitions of 1.5 MiB each (gzip makes them small on the wire), the
	// third is refused MESSAGE_TOO_LARGE and not stored.
	bomb := kafkaBatchOf(make([]byte, 1<<19), 3, true)
	multi := produceReq("t", 0, bomb)
	for _, q := range []int32{1, 0} {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = q, bomb
		multi.Topics[0].Partitions = append(multi.Topics[0].Partitions, rp)
	}
	before := stored()
	r, err = k.request(multi, 7)
	if err != nil {
		t.Fatal(err)
	}
	codes := []int16{}
	for _, p := range r.(*kmsg.ProduceResponse).Topics[0].Partitions {
		codes = append(codes, p.ErrorCode)
	}
	if fmt.Sprint(codes) != "[0 0 10]" || stored() != before+6 {
		t.Fatalf("three 1.5 MiB partitions: codes %v, stored %d -> %d", codes, before, stored())
	}
	// Fetch at a bad offset: OFFSET_OUT_OF_RANGE with the watermarks.
	f := kmsg.NewPtrFetchRequest()
	f.MaxBytes, f.MinBytes = 1<<20, 0
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 1, 99, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	r, err = k.request(f, 11)
	if err != nil {
		t.Fatal(err)
	}
	if p := r.(*kmsg.FetchResponse).Topics[0].Partitions[0]; p.ErrorCode != 1 || p.HighWatermark != 4 {
		t.Fatalf("fetch at 99: %+v", p)
	}
	// An unsupported version closes the connection; a new one is served.
	if _, err := k.request(kmsg.NewPtrMetadataRequest(), 13); err == nil {
		t.Fatal("Metadata v13 was answered")
	}
	k = dialKafka(t, addr)
	av, err := k.request(kmsg.NewPtrApiVersionsRequest(), 3)
	if err != nil || av.(*kmsg.ApiVersionsResponse).ErrorCode != 0 || len(av.(*kmsg.ApiVersionsResponse).ApiKeys) < 15 {
		t.Fatalf("api versions: %v %+v", err, av)
	}
	// ApiVersions of a version newer than ours: v0 answer with UNSUPPORTED_VERSION.
	req := kmsg.NewPtrApiVersionsRequest()
	raw := binary.BigEndian.AppendUint16(nil, 18)
	raw = binary.BigEndian.AppendUint16(raw, 99)
	raw = binary.BigEndian.AppendUint32(raw, 5)
	raw = binary.BigEndian.AppendUint16(raw, 0xffff)
	if err := k.frame(append(raw, 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	io.ReadFull(k.c, size[:])
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	io.ReadFull(k.c, body)
	resp := req.ResponseKind()
	resp.SetVersion(0)
	if err := resp.ReadFrom(body[4:]); err != nil || resp.(*kmsg.ApiVersionsResponse).ErrorCode != 35 {
		t.Fatalf("ApiVersions v99: %v %+v", err, resp)
	}
	// Garbage, an oversize frame and a truncated header close the
	// connection; the broker goes on serving.
	for name, frame := range map[string][]byte{
		"garbage body": append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), 7), 0, 0, 0, 1, 0, 0, 0xde, 0xad),
		"short header": {0, 3},
	} {
		k := dialKafka(t, addr)
		k.frame(frame)
		if !k.closed() {
			t.Fatalf("%s: connection not closed", name)
		}
	}
	k = dialKafka(t, addr)
	k.c.Write(binary.BigEndian.AppendUint32(nil, 1<<30))
	if !k.closed() {
		t.Fatal("a 1 GiB frame header did not close the connection")
	}
	k = dialKafka(t, addr)
	if _, err := k.request(kmsg.NewPtrMetadataRequest(), 9); err != nil {
		t.Fatalf("the broker stopped serving: %v", err)
	}
}

func TestKafkaConnectionLimit(t *testing.T) {
	_, addr := kafkaGroup(t, func(c *Config) { c.Admission.MaxConnsPerIP = 2 })
	a, b := dialKafka(t, addr), dialKafka(t, addr)
	for _, k := range []*kconn{a, b} {
		if _, err := k.request(kmsg.NewPtrApiVersionsRequest(), 3); err != nil {
			t.Fatal(err)
		}
	}
	c := dialKafka(t, addr)
	if !c.closed() {
		t.Fatal("a third connection from one address was served")
	}
	a.c.Close()
	waitFor(t, 5*time.Second, "a connection slot", func() bool {
		d := dialKafka(t, addr)
		_, err := d.request(kmsg.NewPtrApiVersionsRequest(), 3)
		return err == nil
	})
}

func TestKafkaSASLRequiredWithAuth(t *testing.T) {
	_, addr := kafkaGroup(t, func(c *Config) {
		c.Auth.Enabled = true
		c.Auth.Superusers = []string{"User:admin"}
		c.Auth.BootstrapToken = "lmq_0123456789abcdef_" + fmt.Sprintf("%032x", 42)
	})
	k := dialKafka(t, addr)
	if _, err := k.request(kmsg.NewPtrApiVersionsRequest(), 3); err != nil {
		t.Fatal(err)
	}
	if _, err := k.request(kmsg.NewPtrMetadataRequest(), 9); err == nil {
		t.Fatal("Metadata before SASL was answered")
	}
	// Wrong token, then the bootstrap token.
	for i, pw := range []string{"lmq_0123456789abcdef_" + fmt.Sprintf("%032x", 7), "lmq_0123456789abcdef_" + fmt.Sprintf("%032x", 42)} {
		k := dialKafka(t, addr)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Mechanism = "PLAIN"
		if r, err := k.request(hs, 1); err != nil || r.(*kmsg.SASLHandshakeResponse).ErrorCode != 0 {
			t.Fatalf("handshake: %v %+v", err, r)
		}
		au := kmsg.NewPtrSASLAuthenticateRequest()
		au.SASLAuthBytes = []byte("\x00admin\x00" + pw)
		r, err := k.request(au, 2)
		if err != nil {
			t.Fatal(err)
		}
		code := r.(*kmsg.SASLAuthenticateResponse).ErrorCode
		if i == 0 {
			if code != 58 {
				t.Fatalf("a wrong token: code %d", code)
			}
			continue
		}
		if code != 0 {
			t.Fatalf("the bootstrap token: code %d", code)
		}
		if m, err := k.request(kmsg.NewPtrMetadataRequest(), 9); err != nil || len(m.(*kmsg.MetadataResponse).Brokers) != 1 {
			t.Fatalf("metadata after SASL: %v %+v", err, m)
		}
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// TestKafkaFetchMetrics: a Kafka fetch that long-polls for a record counts
// that record once in the fetch metrics: the front-end's wait for data and
// its timestamp lookups are not fetches of their own.
func TestKafkaFetchMetrics(t *testing.T) {
	b, addr := kafkaGroup(t, nil)
	k := dialKafka(t, addr)
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "m", 1, -1
	create.Topics = append(create.Topics, ct)
	if r, err := k.request(create, 4); err != nil || r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, r)
	}
	m := b.Service().Metrics
	msgs0, fetches0 := m.FetchedMsgs.Load(), m.FetchLatency.Count()

	f := kmsg.NewPtrFetchRequest()
	f.MaxBytes, f.MinBytes, f.MaxWaitMillis = 1<<20, 1, 5000
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "m"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 0, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	done := make(chan kmsg.Response, 1)
	go func() {
		r, err := k.request(f, 11)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	time.Sleep(300 * time.Millisecond) // the fetch is waiting for data
	p := dialKafka(t, addr)
	if r, err := p.request(produceReq("m", 0, kafkaRecords("v")), 7); err != nil ||
		r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %v %+v", err, r)
	}
	r := <-done
	if r == nil || len(r.(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("the long poll returned no record: %+v", r)
	}
	if got := m.FetchedMsgs.Load() - msgs0; got != 1 {
		t.Errorf("fetched messages counted %d, want 1", got)
	}
	if got := m.FetchLatency.Count() - fetches0; got != 1 {
		t.Errorf("fetch durations observed %d, want 1", got)
	}
}
