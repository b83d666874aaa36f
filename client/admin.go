package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ledgermq/ledgermq/wire"
)

// Admin manages a broker group: topics, consumer groups, the group's
// members and its leadership, and its security: API tokens, ACLs and the
// groups of principals (admin_auth.go). It is to Producer and Consumer what franz-go's
// kadm is to kgo: typed calls over the same transport, which finds the
// leader by itself and follows failovers.
//
//	adm, err := client.NewAdmin(brokers)
//	if err != nil { ... }
//	defer adm.Close()
//	info, err := adm.CreateTopic(ctx, wire.CreateTopicRequest{Name: "orders", Queues: 8})
//
// or, sharing a producer's connections and what it knows of the leader:
//
//	adm := p.Admin()
//
// Reads (List*, Describe*, ClusterStatus) go to the leader when it is known
// and otherwise to any broker; failures a resend may cure (no connection,
// 503, 5xx, a lost answer) are resent with backoff until ctx ends. Writes
// (CreateTopic, DeleteTopic, ResetOffsets, TransferLeadership,
// CreateToken, RevokeToken) go to the leader: a 421 NOT_LEADER answer sends them to the leader it names, and
// they are resent only when the broker guarantees the attempt changed
// nothing (Error.NotApplied and Error.Retriable, or no connection was
// made). A write that may have been applied is never resent: its error
// wraps ErrUnknownOutcome (and the broker's *Error, if it answered).
// Idempotent writes (AddACL, RemoveACLs, SetPrincipalGroups) are resent
// like reads. UNAUTHENTICATED and FORBIDDEN answers are never resent.
//
// Every call retries until ctx ends: give ctx a deadline. A broker's error
// answer is returned as an *Error (see ErrorCode); other failures are
// wrapped with the operation. An Admin is safe for concurrent use.
type Admin struct {
	conn *conn
	own  bool // the Admin made conn: Close releases it
}

// NewAdmin returns an admin client of the brokers (host:port or
// http(s)://host:port; any or all members of the group) with its own
// transport. It makes no request until it is used.
func NewAdmin(brokers []string, opts ...Opt) (*Admin, error) {
	cfg := defaultConnConfig()
	for _, o := range opts {
		o.applyConn(&cfg)
	}
	c, err := newConn(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledgermq: new admin: %w", err)
	}
	return &Admin{conn: c, own: true}, nil
}

// Admin returns an admin client sharing p's transport: its brokers, HTTP
// connections, options and the leader it follows. Closing it does nothing;
// p owns the transport.
func (p *Producer) Admin() *Admin { return &Admin{conn: p.conn} }

// Admin returns an admin client sharing c's transport, like
// (*Producer).Admin.
func (c *Consumer) Admin() *Admin { return &Admin{conn: c.conn} }

// Close releases the idle connections of an Admin made by NewAdmin.
func (a *Admin) Close() {
	if a.own {
		a.conn.close()
	}
}

// TransferResult is the answer of a leadership transfer: the new leader's
// node id and API address as the old leader knows them. LeaderAPI is ""
// when the old leader has not learned it yet; both are "" when the
// transfer completed but no new leader was heard from within 10 s (ask
// ClusterStatus).
type TransferResult struct {
	Leader    string `json:"leader"`
	LeaderAPI string `json:"leader_api"`
}

// ListTopics returns every topic's settings (GET /v1/topics).
func (a *Admin) ListTopics(ctx context.Context) ([]wire.TopicInfo, error) {
	l, err := read[wire.TopicList](ctx, a, "list topics", "/v1/topics")
	if err != nil {
		return nil, err
	}
	return l.Topics, nil
}

// ListTopicsQueues is ListTopics with each topic's queue offsets and
// stored bytes (GET /v1/topics?queues=true), in one request.
func (a *Admin) ListTopicsQueues(ctx context.Context) ([]wire.TopicInfo, error) {
	l, err := readQuery[wire.TopicList](ctx, a, "list topics", "/v1/topics", url.Values{"queues": {"true"}})
	if err != nil {
		return nil, err
	}
	return l.Topics, nil
}

// DescribeTopic returns a topic's settings and each queue's offset range
// (GET /v1/topics/{topic}). A topic that does not exist gives an *Error
// with code TOPIC_NOT_FOUND.
func (a *Admin) DescribeTopic(ctx context.Context, topic string) (*wire.TopicInfo, error) {
	return read[wire.TopicInfo](ctx, a, "describe topic "+topic, topicPath(topic))
}

// DescribeTopicAt is DescribeTopic as of position token minIndex (a
// Result's or a CreateTopic answer's Index; 0: none): the broker that
// answers has applied every write up to it, so the answer shows them,
// whichever broker answers. A broker behind the token waits for it (up to
// 5 s) or refuses with a retriable UNAVAILABLE, which is resent until ctx
// ends.
func (a *Admin) DescribeTopicAt(ctx context.Context, topic string, minIndex uint64) (*wire.TopicInfo, error) {
	return readQuery[wire.TopicInfo](ctx, a, "describe topic "+topic, topicPath(topic), minIndexQuery(nil, minIndex))
}

// minIndexQuery adds min_index=n to q (made if nil) unless n is 0.
func minIndexQuery(q url.Values, n uint64) url.Values {
	if n == 0 {
		return q
	}
	if q == nil {
		q = url.Values{}
	}
	q.Set("min_index", strconv.FormatUint(n, 10))
	return q
}

// CreateTopic creates a topic (POST /v1/topics); settings left zero take
// the brokers' defaults, which the answer shows, with the Index at which
// the topic was created (a position token). An existing topic gives
// TOPIC_EXISTS, also after a first attempt whose outcome was unknown.
func (a *Admin) CreateTopic(ctx context.Context, req wire.CreateTopicRequest) (*wire.TopicInfo, error) {
	return write[wire.TopicInfo](ctx, a, "create topic "+req.Name, http.MethodPost, "/v1/topics", req, retryUnapplied)
}

// DeleteTopic deletes a topic and its queues (DELETE /v1/topics/{topic}).
func (a *Admin) DeleteTopic(ctx context.Context, topic string) error {
	_, err := write[struct{}](ctx, a, "delete topic "+topic, http.MethodDelete, topicPath(topic), nil, retryUnapplied)
	return err
}

// ListGroups returns every consumer group with its members and queues
// (GET /v1/groups).
func (a *Admin) ListGroups(ctx context.Context) ([]wire.GroupInfo, error) {
	l, err := read[wire.GroupList](ctx, a, "list groups", "/v1/groups")
	if err != nil {
		return nil, err
	}
	return l.Groups, nil
}

// DescribeGroup returns a consumer group's members and, per queue, its
// owner, committed offset and lag (GET /v1/groups/{group}). An unknown
// group gives GROUP_NOT_FOUND.
func (a *Admin) DescribeGroup(ctx context.Context, group string) (*wire.GroupInfo, error) {
	return read[wire.GroupInfo](ctx, a, "describe group "+group, groupPath(group))
}

// ResetOffsets sets the committed offset of every queue of req.Topic for a
// group that has no members (POST /v1/groups/{group}/reset-offsets) and
// returns the group as it is then. req.To is "earliest", "latest", "time"
// (with Timestamp, RFC 3339) or "offset" (with Offset). A group with
// members gives GROUP_ACTIVE.
func (a *Admin) ResetOffsets(ctx context.Context, group string, req wire.ResetOffsetsRequest) (*wire.GroupInfo, error) {
	return write[wire.GroupInfo](ctx, a, "reset offsets of group "+group, http.MethodPost, groupPath(group)+"/reset-offsets", req, retryUnapplied)
}

// ClusterStatus returns the broker group as the answering node sees it:
// the leader, the term and each node's role and log indexes
// (GET /v1/cluster).
func (a *Admin) ClusterStatus(ctx context.Context) (*wire.ClusterStatus, error) {
	return read[wire.ClusterStatus](ctx, a, "cluster status", "/v1/cluster")
}

// TransferLeadership asks the leader to hand leadership over to node to
// ("": the most up-to-date follower) and waits for the transfer
// (POST /v1/cluster/transfer-leadership). Later calls go to the new leader.
func (a *Admin) TransferLeadership(ctx context.Context, to string) (*TransferResult, error) {
	tr, err := write[TransferResult](ctx, a, "transfer leadership", http.MethodPost, "/v1/cluster/transfer-leadership",
		wire.TransferRequest{To: to}, retryUnapplied)
	if err != nil {
		return nil, err
	}
	a.conn.leaderMoved(tr.LeaderAPI)
	return tr, nil
}

func topicPath(topic string) string { return "/v1/topics/" + url.PathEscape(topic) }

func groupPath(group string) string { return "/v1/groups/" + url.PathEscape(group) }

// read GETs path from any broker and decodes the answer as a T.
func read[T any](ctx context.Context, a *Admin, op, path string) (*T, error) {
	return readQuery[T](ctx, a, op, path, nil)
}

// readQuery is read with query parameters.
func readQuery[T any](ctx context.Context, a *Admin, op, path string, query url.Values) (*T, error) {
	var v T
	if err := a.conn.getJSON(ctx, path, query, &v); err != nil {
		return nil, opError(op, err)
	}
	return &v, nil
}

// write sends in (nil: no body) to the leader and decodes the answer as a
// T. It resends what retry allows (retryUnapplied: only what was
// certainly not applied; retryAll: idempotent calls); any failure is
// reported, marked as of unknown outcome unless the broker said it applied
// nothing.
func write[T any](ctx context.Context, a *Admin, op, method, path string, in any, retry retryMode) (*T, error) {
	resp, err := send(ctx, a, op, method, path, in, retry)
	if err != nil {
		return nil, err
	}
	var v T
	if len(resp.body) == 0 {
		return &v, nil
	}
	if err := decodeJSON(resp, &v); err != nil {
		return nil, opError(op, err)
	}
	return &v, nil
}

// send is write without decoding the answer.
func send(ctx context.Context, a *Admin, op, method, path string, in any, retry retryMode) (*response, error) {
	r := &request{method: method, path: path, write: true, retry: retry}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("ledgermq: %s: %w", op, err)
		}
		r.body, r.contentType = b, "application/json"
	}
	resp, err := a.conn.do(ctx, r)
	if err != nil {
		if !IsNotApplied(err) {
			return nil, &unknownOutcomeError{op: op, err: err}
		}
		return nil, opError(op, err)
	}
	return resp, nil
}

// opError returns err as it is when it is a broker's *Error (its code and
// message say what failed), else wrapped with the operation.
func opError(op string, err error) error {
	if _, ok := err.(*Error); ok || err == nil {
		return err
	}
	return fmt.Errorf("ledgermq: %s: %w", op, err)
}
