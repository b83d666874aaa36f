package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// API keys.
const (
	produceKey          int16 = 0
	fetchKey            int16 = 1
	listOffsetsKey      int16 = 2
	metadataKey         int16 = 3
	offsetCommitKey     int16 = 8
	offsetFetchKey      int16 = 9
	findCoordinatorKey  int16 = 10
	joinGroupKey        int16 = 11
	heartbeatKey        int16 = 12
	leaveGroupKey       int16 = 13
	syncGroupKey        int16 = 14
	describeGroupsKey   int16 = 15
	listGroupsKey       int16 = 16
	saslHandshakeKey    int16 = 17
	apiVersionsKey      int16 = 18
	createTopicsKey     int16 = 19
	deleteTopicsKey     int16 = 20
	initProducerIDKey   int16 = 22
	offsetForEpochKey   int16 = 23
	describeConfigsKey  int16 = 32
	deleteGroupsKey     int16 = 42
	saslAuthenticateKey int16 = 36
)

// supported lists the keys and versions this listener answers, the
// versions franz-go, sarama and librdkafka negotiate. Versions that name
// topics by id only (Fetch 13+, Produce 12+?, DeleteTopics 6+) are not
// offered, so clients use names. Transactions are not offered.
var supported = map[int16][2]int16{
	produceKey:          {3, 11},
	fetchKey:            {4, 12},
	listOffsetsKey:      {1, 7},
	metadataKey:         {0, 12},
	offsetCommitKey:     {0, 8},
	offsetFetchKey:      {0, 7},
	findCoordinatorKey:  {0, 4},
	joinGroupKey:        {0, 9},
	heartbeatKey:        {0, 4},
	leaveGroupKey:       {0, 5},
	syncGroupKey:        {0, 5},
	describeGroupsKey:   {0, 5},
	listGroupsKey:       {0, 4},
	saslHandshakeKey:    {1, 1},
	apiVersionsKey:      {0, 3},
	createTopicsKey:     {0, 7},
	deleteTopicsKey:     {0, 5},
	initProducerIDKey:   {0, 4},
	offsetForEpochKey:   {0, 4},
	describeConfigsKey:  {0, 4},
	deleteGroupsKey:     {0, 2},
	saslAuthenticateKey: {0, 2},
}

// handle answers one request. An error closes the connection, which is
// how Kafka brokers answer a request they cannot parse or do not support.
func (c *conn) handle(r *request) (kmsg.Response, error) {
	if r.key == apiVersionsKey {
		return c.apiVersions(r), nil
	}
	rng, ok := supported[r.key]
	if !ok || r.body == nil || r.version < rng[0] || r.version > rng[1] {
		return nil, fmt.Errorf("unsupported request key %d (%s) v%d", r.key, kmsg.NameForKey(r.key), r.version)
	}
	if !c.authed && r.key != saslHandshakeKey && r.key != saslAuthenticateKey {
		return nil, fmt.Errorf("%s before SASL authentication", kmsg.NameForKey(r.key))
	}
	ctx := c.ctx
	switch req := r.body.(type) {
	case *kmsg.SASLHandshakeRequest:
		return c.saslHandshake(req), nil
	case *kmsg.SASLAuthenticateRequest:
		return c.saslAuthenticate(req)
	case *kmsg.MetadataRequest:
		return c.s.metadata(ctx, req), nil
	case *kmsg.ProduceRequest:
		resp := c.s.produce(ctx, req)
		if req.Acks == 0 {
			return nil, nil
		}
		return resp, nil
	case *kmsg.FetchRequest:
		return c.s.fetch(ctx, req, &c.arena), nil
	case *kmsg.ListOffsetsRequest:
		return c.s.listOffsets(ctx, req), nil
	case *kmsg.InitProducerIDRequest:
		return c.s.initProducerID(ctx, req, c.token), nil
	case *kmsg.CreateTopicsRequest:
		return c.s.createTopics(ctx, req), nil
	case *kmsg.DeleteTopicsRequest:
		return c.s.deleteTopics(ctx, req), nil
	case *kmsg.DescribeConfigsRequest:
		return c.s.describeConfigs(ctx, req), nil
	case *kmsg.OffsetForLeaderEpochRequest:
		return c.s.offsetForLeaderEpoch(ctx, req), nil
	case *kmsg.FindCoordinatorRequest:
		return c.s.findCoordinator(ctx, req), nil
	case *kmsg.JoinGroupRequest:
		return c.s.groups.join(ctx, req, r.clientID, c.remote), nil
	case *kmsg.SyncGroupRequest:
		return c.s.groups.sync(ctx, req), nil
	case *kmsg.HeartbeatRequest:
		return c.s.groups.heartbeat(ctx, req), nil
	case *kmsg.LeaveGroupRequest:
		return c.s.groups.leave(ctx, req), nil
	case *kmsg.OffsetCommitRequest:
		return c.s.groups.offsetCommit(ctx, req), nil
	case *kmsg.OffsetFetchRequest:
		return c.s.groups.offsetFetch(ctx, req), nil
	case *kmsg.DescribeGroupsRequest:
		return c.s.groups.describe(ctx, req), nil
	case *kmsg.ListGroupsRequest:
		return c.s.groups.list(ctx, req), nil
	case *kmsg.DeleteGroupsRequest:
		return c.s.groups.deleteGroups(ctx, req), nil
	}
	return nil, fmt.Errorf("no handler for %s", kmsg.NameForKey(r.key))
}

func (c *conn) apiVersions(r *request) kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	rng := supported[apiVersionsKey]
	if r.body == nil || r.version < rng[0] || r.version > rng[1] {
		resp.SetVersion(0) // UNSUPPORTED_VERSION is answered in v0
		resp.ErrorCode = errUnsupportedVersion
	} else {
		resp.SetVersion(r.version)
	}
	keys := make([]int16, 0, len(supported))
	for k := range supported {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		v := supported[k]
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, v[0], v[1]
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	return resp
}

// saslHandshake accepts PLAIN: the password is a LedgerMQ token (the user
// name is not checked; the token names the principal).
func (c *conn) saslHandshake(req *kmsg.SASLHandshakeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = []string{"PLAIN"}
	if req.Mechanism != "PLAIN" {
		resp.ErrorCode = errUnsupportedSASLMech
		return resp
	}
	c.saslMech = req.Mechanism
	return resp
}

func (c *conn) saslAuthenticate(req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if c.saslMech != "PLAIN" {
		resp.ErrorCode = errIllegalSASLState
		resp.ErrorMessage = strp("SaslAuthenticate before a PLAIN SaslHandshake")
		return resp, nil
	}
	parts := bytes.SplitN(req.SASLAuthBytes, []byte{0}, 3)
	if len(parts) != 3 {
		resp.ErrorCode = errSASLAuthFailed
		resp.ErrorMessage = strp("malformed PLAIN authentication")
		return resp, nil
	}
	id, err := c.s.svc.Authenticate(string(parts[2]), "", c.remote)
	if err != nil {
		resp.ErrorCode, _ = codeFor(c.s.svc, err, onCluster)
		resp.ErrorCode = errSASLAuthFailed
		resp.ErrorMessage = strp("authentication failed: the password must be a valid LedgerMQ token")
		return resp, nil
	}
	c.ctx, c.authed, c.token = service.WithIdentity(c.ctx, id), true, string(parts[2])
	return resp, nil
}

// leaderInfo is the group's Raft leader as Kafka metadata shows it.
type leaderInfo struct {
	id      int32  // -1: none known, or its Kafka address is not known yet
	addr    string // its Kafka address
	epoch   int32  // the Raft term
	isSelf  bool
	brokers []kmsg.MetadataResponseBroker
	members []int32 // every member's id (replicas)
	inSync  []int32 // the reachable members (ISR)
}

func (s *Server) leader() leaderInfo {
	cs := s.svc.ClusterStatus()
	li := leaderInfo{id: -1, epoch: int32(cs.Term)}
	for _, n := range cs.Nodes {
		id := nodeID(n.ID)
		li.members = append(li.members, id)
		if n.Reachable {
			li.inSync = append(li.inSync, id)
		}
		host, port, ok := splitHostPort(n.KafkaAddr)
		if !ok {
			continue
		}
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = id, host, port
		li.brokers = append(li.brokers, b)
		if n.ID == cs.Leader {
			li.id, li.addr = id, n.KafkaAddr
		}
	}
	li.isSelf = cs.Leader == cs.AnsweredBy && s.svc.Node().IsLeader()
	return li
}

// settledLeader is leader, except while this follower knows no leader or
// the one it knows does not accept connections (its process is gone): then
// it waits, at most leaderWait, for the group to elect one. A client that
// lost its leader asks for metadata at once and many (franz-go, librdkafka)
// do not ask again for seconds; answering with the dead leader would cost
// them that long, while the election takes a few hundred milliseconds.
func (s *Server) settledLeader(ctx context.Context) leaderInfo {
	li := s.leader()
	if li.isSelf {
		return li
	}
	deadline := time.Now().Add(leaderWait)
	dead := li.id
	if li.id >= 0 && s.accepts(li.addr) {
		return li
	}
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return li
		case <-time.After(20 * time.Millisecond):
		}
		li = s.leader()
		if li.id >= 0 && li.id != dead && (li.isSelf || s.accepts(li.addr)) {
			return li
		}
	}
	return li
}

const leaderWait = 3 * time.Second

// accepts reports whether addr takes a TCP connection within 200 ms.
func (s *Server) accepts(addr string) bool {
	if addr == "" {
		return false
	}
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (s *Server) metadata(ctx context.Context, req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	li := s.settledLeader(ctx)
	resp.Brokers = li.brokers
	resp.ClusterID = strp(s.cfg.ClusterID)
	resp.ControllerID = li.id
	var infos []wire.TopicInfo
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) { // v0: empty is all
		infos = s.svc.ListTopics(ctx)
	} else {
		for _, t := range req.Topics {
			if t.Topic == nil {
				continue
			}
			info, err := s.svc.DescribeTopicAt(ctx, *t.Topic, 0, 0)
			// A follower may not have applied a topic the leader created a
			// moment ago (clients create, then ask any broker): it looks
			// again for a heartbeat or two before saying it is unknown.
			for wait := 0; err != nil && !li.isSelf && wait < 10 && s.svc.AsError(err).Code == wire.CodeTopicNotFound; wait++ {
				time.Sleep(30 * time.Millisecond)
				info, err = s.svc.DescribeTopicAt(ctx, *t.Topic, 0, 0)
			}
			if err != nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = t.Topic
				mt.ErrorCode, _ = codeFor(s.svc, err, onTopic)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			infos = append(infos, info)
		}
	}
	for _, info := range infos {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = strp(info.Name)
		for q := 0; q < info.Queues; q++ {
			p := kmsg.NewMetadataResponseTopicPartition()
			p.Partition, p.Leader, p.LeaderEpoch = int32(q), li.id, li.epoch
			p.Replicas, p.ISR = li.members, li.inSync
			if li.id < 0 {
				p.ErrorCode = errLeaderNotAvailable
			}
			mt.Partitions = append(mt.Partitions, p)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp
}

// produce stores every partition's batches as one log entry (one
// ProduceBatches call): partitions succeed or fail on their own.
func (s *Server) produce(ctx context.Context, req *kmsg.ProduceRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	if req.TransactionID != nil {
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, errTransactionalIDAuth
				rp.ErrorMessage = strp("transactions are not supported")
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	type slot struct{ t, p, first, n int } // a partition's parts
	var parts []wire.ProducePart
	var slots []slot
	now := time.Now()
	// One budget of decompressed bytes for the whole request, however many
	// partitions it names.
	limit := s.svc.BatchRecordsLimit()
	for ti, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		for pi, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
			batches, used, err := parseBatches(p.Records, limit, now)
			limit -= used
			if err == nil && len(parts)+len(batches) > wire.MaxProduceParts {
				err = fmt.Errorf("%w: more than %d batches in one request", errTooLarge, wire.MaxProduceParts)
			}
			var enc [][]byte
			for _, b := range batches {
				if err != nil {
					break
				}
				prod := wire.Producer{}
				if b.producerID >= 0 {
					prod = wire.Producer{ID: uint64(b.producerID), Sequence: uint64(uint32(b.baseSequence))}
				}
				var e []byte
				e, err = wire.Encode(b.msgs, storeCodec(b.codec), prod, s.svc.GroupID(), now)
				enc = append(enc, e)
			}
			if err != nil {
				rt.Partitions[pi].ErrorCode, _ = codeFor(s.svc, err, onTopic)
				rt.Partitions[pi].ErrorMessage = strp(err.Error())
				continue
			}
			slots = append(slots, slot{t: ti, p: pi, first: len(parts), n: len(enc)})
			for _, e := range enc {
				parts = append(parts, wire.ProducePart{Topic: t.Topic, Queue: int(p.Partition), Batch: e})
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(parts) == 0 {
		return resp
	}
	results, err := s.svc.ProduceBatches(ctx, parts)
	for _, sl := range slots {
		rp := &resp.Topics[sl.t].Partitions[sl.p]
		if err != nil {
			code, msg := codeFor(s.svc, err, onTopic)
			rp.ErrorCode, rp.ErrorMessage = code, strp(msg)
			continue
		}
		for i := sl.first; i < sl.first+sl.n; i++ {
			if r := results[i]; r.Err != nil {
				code, msg := codeFor(s.svc, r.Err, onTopic)
				rp.ErrorCode, rp.ErrorMessage = code, strp(msg)
				break
			}
			if i == sl.first {
				rp.BaseOffset = int64(results[i].Stored.BaseOffset)
			}
		}
	}
	return resp
}

// topicRanges caches topic descriptions within one request.
type topicRanges struct {
	s     *Server
	ctx   context.Context
	infos map[string]*wire.TopicInfo
}

func (tr *topicRanges) queue(topic string, q int32) (wire.QueueInfo, error) {
	if tr.infos == nil {
		tr.infos = map[string]*wire.TopicInfo{}
	}
	info := tr.infos[topic]
	if info == nil {
		i, err := tr.s.svc.DescribeTopicAt(tr.ctx, topic, 0, 0)
		if err != nil {
			return wire.QueueInfo{}, err
		}
		info = &i
		tr.infos[topic] = info
	}
	if q < 0 || int(q) >= len(info.QueueInfo) {
		return wire.QueueInfo{}, service.Errorf(wire.CodeQueueNotFound, "%s has no partition %d", topic, q)
	}
	return info.QueueInfo[q], nil
}

// epochCheck compares a client's leader epoch with the term.
func epochCheck(clientEpoch, term int32) int16 {
	switch {
	case clientEpoch < 0:
		return errNone
	case clientEpoch < term:
		return errFencedLeaderEpoch
	case clientEpoch > term:
		return errUnknownLeaderEpoch
	}
	return errNone
}

// fetch answers a Fetch; the records are appended to *arena (a pooled
// buffer the caller returns once the answer is written).
func (s *Server) fetch(ctx context.Context, req *kmsg.FetchRequest, arena *[]byte) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	li := s.leader()
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 50 << 20
	}
	// First pass: what is there now. If it is less than MinBytes, wait
	// (at most MaxWaitMillis) for any partition to get data, then read
	// again.
	size := s.fetchPass(ctx, req, resp, li, maxBytes, arena)
	if size == 0 || size < int(req.MinBytes) {
		if wait := time.Duration(req.MaxWaitMillis) * time.Millisecond; wait > 0 && s.awaitData(ctx, req, resp, wait) {
			resp.Topics = nil
			*arena = (*arena)[:0]
			s.fetchPass(ctx, req, resp, li, maxBytes, arena)
		}
	}
	return resp
}

// fetchPass fills resp with every partition's batches, at most maxBytes
// in all (always at least one batch), and returns the bytes.
func (s *Server) fetchPass(ctx context.Context, req *kmsg.FetchRequest, resp *kmsg.FetchResponse, li leaderInfo, maxBytes int, arena *[]byte) int {
	tr := topicRanges{s: s, ctx: ctx}
	size := 0
	for _, t := range req.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = s.fetchPartition(ctx, &tr, t.Topic, p, &rp, li, maxBytes-size, size == 0, arena)
			if rp.RecordBatches == nil {
				rp.RecordBatches = []byte{} // librdkafka refuses a null record set
			}
			size += len(rp.RecordBatches)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return size
}

func (s *Server) fetchPartition(ctx context.Context, tr *topicRanges, topic string, p kmsg.FetchRequestTopicPartition,
	rp *kmsg.FetchResponseTopicPartition, li leaderInfo, room int, first bool, arena *[]byte) int16 {
	if !li.isSelf {
		return errNotLeader
	}
	if code := epochCheck(p.CurrentLeaderEpoch, li.epoch); code != errNone {
		return code
	}
	qi, err := tr.queue(topic, p.Partition)
	if err != nil {
		code, _ := codeFor(s.svc, err, onTopic)
		return code
	}
	rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = int64(qi.Next), int64(qi.Next), int64(qi.Earliest)
	if p.FetchOffset < 0 || uint64(p.FetchOffset) < qi.Earliest || uint64(p.FetchOffset) > qi.Next {
		return errOffsetOutOfRange
	}
	if uint64(p.FetchOffset) == qi.Next {
		return errNone
	}
	want := min(int(p.PartitionMaxBytes), room)
	if want <= 0 && !first {
		return errNone
	}
	f, err := s.svc.Fetch(ctx, service.FetchRequest{Topic: topic, Queue: int(p.Partition), Offset: uint64(p.FetchOffset), MaxBytes: max(want, 1)})
	if err != nil {
		code, _ := codeFor(s.svc, err, onTopic)
		return code
	}
	limit := s.svc.BatchRecordsLimit()
	// Appended to the request's arena: a buffer reused across requests
	// (fresh memory costs more than the copy on a VM; docs/benchmarks.md).
	start := len(*arena)
	out := *arena
	for _, b := range f.Batches {
		h, msgs, err := wire.Decode(b.Data, limit, limit)
		if err != nil {
			s.logger.Error("kafka fetch: a stored batch does not decode", "topic", topic, "queue", p.Partition, "offset", b.BaseOffset, "err", err)
			return errCorruptMessage
		}
		mark := len(out)
		out = appendBatch(out, b.BaseOffset, h, msgs, li.epoch)
		if mark > start && len(out)-start > want {
			out = out[:mark]
			break
		}
	}
	*arena = out
	rp.RecordBatches = out[start:len(out):len(out)]
	return errNone
}

// awaitData waits until one of the request's partitions has data past its
// fetch offset, for at most wait; false if none got any.
func (s *Server) awaitData(ctx context.Context, req *kmsg.FetchRequest, resp *kmsg.FetchResponse, wait time.Duration) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type key struct {
		topic string
		q     int32
	}
	// Only partitions whose first pass was clean and empty are waited on.
	clean := map[key]bool{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == errNone && len(p.RecordBatches) == 0 {
				clean[key{t.Topic, p.Partition}] = true
			}
		}
	}
	got := make(chan bool, len(clean))
	n := 0
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if !clean[key{t.Topic, p.Partition}] {
				continue
			}
			n++
			go func(topic string, q int32, off int64) {
				f, err := s.svc.Peek(ctx, service.FetchRequest{Topic: topic, Queue: int(q), Offset: uint64(off), Wait: wait, MaxBytes: 1})
				got <- err == nil && len(f.Batches) > 0
			}(t.Topic, p.Partition, p.FetchOffset)
		}
	}
	found := false
	for i := 0; i < n; i++ {
		if <-got && !found {
			found = true
			cancel() // the others stop waiting; they are still drained below
		}
	}
	return found
}

func (s *Server) listOffsets(ctx context.Context, req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	li := s.leader()
	tr := topicRanges{s: s, ctx: ctx}
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.LeaderEpoch = p.Partition, li.epoch
			rp.ErrorCode = s.listOffset(ctx, &tr, t.Topic, p, &rp, li)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (s *Server) listOffset(ctx context.Context, tr *topicRanges, topic string, p kmsg.ListOffsetsRequestTopicPartition,
	rp *kmsg.ListOffsetsResponseTopicPartition, li leaderInfo) int16 {
	if !li.isSelf {
		return errNotLeader
	}
	if code := epochCheck(p.CurrentLeaderEpoch, li.epoch); code != errNone {
		return code
	}
	qi, err := tr.queue(topic, p.Partition)
	if err != nil {
		code, _ := codeFor(s.svc, err, onTopic)
		return code
	}
	rp.Timestamp = -1
	switch p.Timestamp {
	case -1, -3: // latest; max timestamp: the end (records are in time order per producer)
		rp.Offset = int64(qi.Next)
	case -2: // earliest
		rp.Offset = int64(qi.Earliest)
	default:
		if p.Timestamp < 0 {
			return errInvalidRequest
		}
		at := time.UnixMilli(p.Timestamp)
		f, err := s.svc.Peek(ctx, service.FetchRequest{Topic: topic, Queue: int(p.Partition), Time: &at, MaxBytes: 1})
		if err != nil {
			code, _ := codeFor(s.svc, err, onTopic)
			return code
		}
		rp.Offset = int64(f.Offset)
		if f.Offset < qi.Next {
			rp.Timestamp = p.Timestamp
		}
	}
	return errNone
}

func (s *Server) initProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest, token string) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = errTransactionalIDAuth // transactions are not supported
		return resp
	}
	if err := s.svc.RequireLeader(); err != nil { // any broker may answer: forward.go
		if li := s.settledLeader(ctx); !li.isSelf {
			if r, err := s.forward(ctx, li.addr, req, token); err == nil {
				return r
			} else if !errors.Is(err, errNoForward) {
				s.logger.Debug("kafka: forwarding InitProducerId failed", "leader", li.addr, "err", err)
			}
		}
	}
	id, err := s.svc.InitProducer(ctx)
	if err != nil {
		resp.ErrorCode, _ = codeFor(s.svc, err, onCluster)
		if resp.ErrorCode == errNotLeader || resp.ErrorCode == errLeaderNotAvailable {
			resp.ErrorCode = errNotCoordinator // clients look up the coordinator again
		}
		return resp
	}
	if id > 1<<63-1 {
		resp.ErrorCode = errUnknownServer
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = int64(id), 0
	return resp
}

// topicConfig reads the topic configs LedgerMQ has from CreateTopics'
// key/value pairs.
func topicConfig(c *topics.Config, cfgs []kmsg.CreateTopicsRequestTopicConfig) error {
	for _, kv := range cfgs {
		if kv.Value == nil {
			continue
		}
		v := *kv.Value
		num := func() (int64, error) {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %q is not a number", kv.Name, v)
			}
			return n, nil
		}
		var err error
		switch kv.Name {
		case "retention.ms":
			c.RetentionMs, err = num()
		case "retention.bytes":
			c.RetentionBytes, err = num()
		case "max.message.bytes":
			var n int64
			n, err = num()
			c.MaxMessageBytes = int(n)
		case "cleanup.policy":
			if v != "delete" {
				err = fmt.Errorf("cleanup.policy %q is not supported (only delete)", v)
			}
		default:
			// Other settings (segment sizes, min.insync.replicas, ...)
			// are the broker's own in LedgerMQ; accepted and ignored.
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) createTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	nodes := len(s.svc.ClusterStatus().Nodes)
	for _, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		fail := func(code int16, msg string) {
			rt.ErrorCode, rt.ErrorMessage = code, strp(msg)
		}
		c := topics.Config{Name: t.Topic, Queues: int(t.NumPartitions)}
		switch {
		case t.NumPartitions == -1:
			c.Queues = 0 // the default
		case t.NumPartitions <= 0:
			fail(errInvalidPartitions, "the number of partitions must be positive")
		case t.ReplicationFactor != -1 && int(t.ReplicationFactor) != nodes:
			fail(errInvalidReplication, fmt.Sprintf("every topic has the group's replication factor %d", nodes))
		case len(t.ReplicaAssignment) > 0:
			fail(errInvalidRequest, "manual replica assignment is not supported")
		}
		if rt.ErrorCode == errNone {
			if err := topicConfig(&c, t.Configs); err != nil {
				fail(errInvalidConfig, err.Error())
			}
		}
		if rt.ErrorCode == errNone && req.ValidateOnly {
			if err := topics.CheckNewName("topic", t.Topic); err != nil {
				fail(errInvalidTopic, err.Error())
			} else if _, err := s.svc.DescribeTopicAt(ctx, t.Topic, 0, 0); err == nil {
				fail(errTopicAlreadyExists, "topic exists")
			}
		} else if rt.ErrorCode == errNone {
			info, err := s.svc.CreateTopic(ctx, c)
			if err != nil {
				code, msg := codeFor(s.svc, err, onTopic)
				if code == errInvalidRequest {
					code = errInvalidTopic
				}
				fail(code, msg)
			} else {
				rt.NumPartitions = int32(info.Queues)
			}
		}
		if rt.ErrorCode == errNone {
			rt.ReplicationFactor = int16(nodes)
			if rt.NumPartitions == 0 {
				rt.NumPartitions = int32(max(c.Queues, topics.DefaultQueues))
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (s *Server) deleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	names := req.TopicNames // v0-5
	if req.Version >= 6 {
		names = nil
		for _, t := range req.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	for _, name := range names {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic = strp(name)
		if err := s.svc.DeleteTopic(ctx, name); err != nil {
			code, msg := codeFor(s.svc, err, onTopic)
			rt.ErrorCode, rt.ErrorMessage = code, strp(msg)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (s *Server) describeConfigs(ctx context.Context, req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	nodes := len(s.svc.ClusterStatus().Nodes)
	for _, r := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		var kv [][2]string
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			info, err := s.svc.DescribeTopicAt(ctx, r.ResourceName, 0, 0)
			if err != nil {
				code, msg := codeFor(s.svc, err, onTopic)
				rr.ErrorCode, rr.ErrorMessage = code, strp(msg)
				break
			}
			kv = [][2]string{{"cleanup.policy", "delete"}, {"retention.ms", strconv.FormatInt(info.RetentionMs, 10)},
				{"retention.bytes", strconv.FormatInt(info.RetentionBytes, 10)},
				{"max.message.bytes", strconv.Itoa(info.MaxMessageBytes)},
				{"min.insync.replicas", strconv.Itoa(nodes/2 + 1)}, {"compression.type", "producer"},
				{"message.timestamp.type", "CreateTime"}}
		case kmsg.ConfigResourceTypeBroker:
			kv = [][2]string{{"auto.create.topics.enable", "false"}, {"default.replication.factor", strconv.Itoa(nodes)},
				{"num.partitions", strconv.Itoa(topics.DefaultQueues)}, {"min.insync.replicas", strconv.Itoa(nodes/2 + 1)}}
		default:
			rr.ErrorCode, rr.ErrorMessage = errInvalidRequest, strp("only topic and broker configs are described")
		}
		want := map[string]bool{}
		for _, n := range r.ConfigNames {
			want[n] = true
		}
		for _, p := range kv {
			if len(want) > 0 && !want[p[0]] {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ReadOnly = p[0], strp(p[1]), true
			c.Source = kmsg.ConfigSourceDefaultConfig
			rr.Configs = append(rr.Configs, c)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// offsetForLeaderEpoch: LedgerMQ serves only committed records, which no
// leader change truncates, so the end offset of any epoch up to the
// current term is the partition's end: a client validating its position
// after a failover never finds a divergence.
func (s *Server) offsetForLeaderEpoch(ctx context.Context, req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	li := s.leader()
	tr := topicRanges{s: s, ctx: ctx}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition = p.Partition
			rp.LeaderEpoch, rp.EndOffset = -1, -1
			switch {
			case !li.isSelf:
				rp.ErrorCode = errNotLeader
			case epochCheck(p.CurrentLeaderEpoch, li.epoch) != errNone:
				rp.ErrorCode = epochCheck(p.CurrentLeaderEpoch, li.epoch)
			case p.LeaderEpoch > li.epoch:
				rp.ErrorCode = errNone // unknown epoch: -1/-1, as Kafka answers
			default:
				qi, err := tr.queue(t.Topic, p.Partition)
				if err != nil {
					rp.ErrorCode, _ = codeFor(s.svc, err, onTopic)
					break
				}
				rp.LeaderEpoch, rp.EndOffset = li.epoch, int64(qi.Next)
				if p.LeaderEpoch < li.epoch {
					rp.LeaderEpoch = p.LeaderEpoch
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (s *Server) findCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	li := s.settledLeader(ctx)
	var host string
	var port int32
	for _, b := range li.brokers {
		if b.NodeID == li.id {
			host, port = b.Host, b.Port
		}
	}
	answer := func(key string) (int16, *string) {
		if req.CoordinatorType != 0 {
			return errInvalidRequest, strp("only group coordinators exist (no transactions)")
		}
		if err := s.svc.Authorize(ctx, wire.OpDescribe, wire.ResourceGroup, key); err != nil {
			code, msg := codeFor(s.svc, err, onGroup)
			return code, strp(msg)
		}
		if li.id < 0 {
			return errCoordinatorNotAvail, strp("no leader")
		}
		return errNone, nil
	}
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, k := range keys {
		code, msg := answer(k)
		if req.Version < 4 {
			resp.ErrorCode, resp.ErrorMessage = code, msg
			resp.NodeID, resp.Host, resp.Port = li.id, host, port
			if code != errNone {
				resp.NodeID, resp.Host, resp.Port = -1, "", -1
			}
			continue
		}
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.ErrorCode, c.ErrorMessage = k, code, msg
		c.NodeID, c.Host, c.Port = li.id, host, port
		if code != errNone {
			c.NodeID, c.Host, c.Port = -1, "", -1
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp
}
