package fsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/ledgermq/ledgermq/auth"
	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
)

// ErrBadCommand: a log entry is not a command this version knows, or its
// payload does not decode. It changes nothing.
var ErrBadCommand = errors.New("fsm: malformed command")

// Code is the first byte of every command in the log. Codes are part of
// the on-disk format: never reuse or renumber one.
type Code byte

// The commands. Topics use 1-15, consumer groups 16-31, auth 32-47.
const (
	CodeCreateTopic  Code = 1
	CodeDeleteTopic  Code = 2
	CodeProduce      Code = 3
	CodeInitProducer Code = 4
	// Codes 16-18 are the first group protocol's join, leave and commit
	// (before the two-step handover): still applied, with that protocol's
	// rules, so that logs written by earlier versions replay to the state
	// they acknowledged (consumer.State.JoinV1). This version writes 19-24.
	CodeJoinGroupV1     Code = 16
	CodeLeaveGroupV1    Code = 17
	CodeCommitOffsetsV1 Code = 18
	CodeResetOffsets    Code = 19
	CodeReleaseQueues   Code = 20
	CodeJoinGroup       Code = 21
	CodeLeaveGroup      Code = 22
	CodeCommitOffsets   Code = 23
	CodeDeleteGroup     Code = 24

	// issue 12: authentication and authorization
	CodeCreateToken        Code = 32
	CodeRevokeToken        Code = 33
	CodeAddACL             Code = 34
	CodeDeleteACL          Code = 35
	CodeSetPrincipalGroups Code = 36
)

// Op is a command with request type Req and result type Res.
type Op[Req, Res any] struct {
	code   Code
	name   string
	encode func(dst []byte, r Req) []byte
}

// Code returns the op's command code.
func (o Op[Req, Res]) Code() Code { return o.code }

// Name returns the op's name, as logs and metrics show it.
func (o Op[Req, Res]) Name() string { return o.name }

// Encode builds the command: the code byte, then the payload.
func (o Op[Req, Res]) Encode(r Req) []byte { return o.encode([]byte{byte(o.code)}, r) }

// Done is the result of commands that answer nothing but success.
type Done struct{}

// The ops, one per command code.
var (
	CreateTopic   = Op[topics.Config, *topics.Topic]{CodeCreateTopic, "create_topic", topics.AppendCreate}
	DeleteTopic   = Op[string, Done]{CodeDeleteTopic, "delete_topic", topics.AppendDelete}
	Produce       = Op[topics.ProduceCmd, []topics.ProduceResult]{CodeProduce, "produce", topics.AppendProduce}
	InitProducer  = Op[int64, uint64]{CodeInitProducer, "init_producer", topics.AppendInitProducer}
	JoinGroup     = Op[consumer.JoinCmd, consumer.Membership]{CodeJoinGroup, "join_group", consumer.AppendPayload[consumer.JoinCmd]}
	LeaveGroup    = Op[consumer.LeaveCmd, Done]{CodeLeaveGroup, "leave_group", consumer.AppendPayload[consumer.LeaveCmd]}
	CommitOffsets = Op[consumer.CommitCmd, Done]{CodeCommitOffsets, "commit_offsets", consumer.AppendPayload[consumer.CommitCmd]}
	ResetOffsets  = Op[consumer.ResetCmd, Done]{CodeResetOffsets, "reset_offsets", consumer.AppendPayload[consumer.ResetCmd]}
	ReleaseQueues = Op[consumer.ReleaseCmd, consumer.Membership]{CodeReleaseQueues, "release_queues", consumer.AppendPayload[consumer.ReleaseCmd]}
	DeleteGroup   = Op[consumer.DeleteGroupCmd, Done]{CodeDeleteGroup, "delete_group", consumer.AppendPayload[consumer.DeleteGroupCmd]}

	// issue 12: auth (the token's secret is hashed before it is proposed)
	CreateToken        = Op[auth.CreateTokenCmd, Done]{CodeCreateToken, "create_token", auth.AppendPayload[auth.CreateTokenCmd]}
	RevokeToken        = Op[auth.RevokeTokenCmd, Done]{CodeRevokeToken, "revoke_token", auth.AppendPayload[auth.RevokeTokenCmd]}
	AddACL             = Op[auth.ACLCmd, bool]{CodeAddACL, "add_acl", auth.AppendPayload[auth.ACLCmd]}
	DeleteACL          = Op[auth.ACLCmd, int]{CodeDeleteACL, "delete_acl", auth.AppendPayload[auth.ACLCmd]}
	SetPrincipalGroups = Op[auth.SetGroupsCmd, Done]{CodeSetPrincipalGroups, "set_principal_groups", auth.AppendPayload[auth.SetGroupsCmd]}

	// The first group protocol's commands: applied when replaying logs of
	// earlier versions, never proposed by this one.
	JoinGroupV1     = Op[consumer.JoinCmd, consumer.Membership]{CodeJoinGroupV1, "join_group_v1", consumer.AppendPayload[consumer.JoinCmd]}
	LeaveGroupV1    = Op[consumer.LeaveCmd, Done]{CodeLeaveGroupV1, "leave_group_v1", consumer.AppendPayload[consumer.LeaveCmd]}
	CommitOffsetsV1 = Op[consumer.CommitCmd, Done]{CodeCommitOffsetsV1, "commit_offsets_v1", consumer.AppendPayload[consumer.CommitCmd]}
)

// command is one row of the registry: how to decode and apply a code.
type command struct {
	code  Code
	name  string
	apply func(index uint64, payload []byte) any // result or error
}

// handle makes a registry row for op from its payload decoder and its
// typed applier.
func handle[Req, Res any](op Op[Req, Res], decode func([]byte) (Req, error), apply func(uint64, Req) (Res, error)) command {
	return command{code: op.code, name: op.name, apply: func(index uint64, payload []byte) any {
		req, err := decode(payload)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadCommand, op.name, err)
		}
		res, err := apply(index, req)
		if err != nil {
			return err
		}
		return res
	}}
}

// commands is the registry: every command this version applies.
func (m *Machine) commands() []command {
	return []command{
		handle(CreateTopic, topics.DecodeCreate, m.createTopic),
		handle(DeleteTopic, topics.DecodeDelete, m.deleteTopic),
		handle(Produce, topics.DecodeProduce, func(index uint64, c topics.ProduceCmd) ([]topics.ProduceResult, error) {
			return m.topics.Produce(index, c), nil
		}),
		handle(InitProducer, topics.DecodeInitProducer, func(_ uint64, ms int64) (uint64, error) { return m.topics.InitProducer(ms) }),
		handle(JoinGroup, consumer.DecodePayload[consumer.JoinCmd], func(_ uint64, c consumer.JoinCmd) (consumer.Membership, error) {
			return m.groups.Join(c)
		}),
		handle(LeaveGroup, consumer.DecodePayload[consumer.LeaveCmd], done(m.groups.Leave)),
		handle(CommitOffsets, consumer.DecodePayload[consumer.CommitCmd], done(m.groups.Commit)),
		handle(ResetOffsets, consumer.DecodePayload[consumer.ResetCmd], done(m.groups.Reset)),
		handle(ReleaseQueues, consumer.DecodePayload[consumer.ReleaseCmd], func(_ uint64, c consumer.ReleaseCmd) (consumer.Membership, error) {
			return m.groups.Release(c)
		}),
		handle(DeleteGroup, consumer.DecodePayload[consumer.DeleteGroupCmd], done(m.groups.DeleteGroup)),
		handle(JoinGroupV1, consumer.DecodePayload[consumer.JoinCmd], func(_ uint64, c consumer.JoinCmd) (consumer.Membership, error) {
			return m.groups.JoinV1(c)
		}),
		handle(LeaveGroupV1, consumer.DecodePayload[consumer.LeaveCmd], done(m.groups.LeaveV1)),
		handle(CommitOffsetsV1, consumer.DecodePayload[consumer.CommitCmd], done(m.groups.CommitV1)),
		// issue 12: auth
		handle(CreateToken, auth.DecodePayload[auth.CreateTokenCmd], done(m.auth.CreateToken)),
		handle(RevokeToken, auth.DecodePayload[auth.RevokeTokenCmd], done(m.auth.RevokeToken)),
		handle(AddACL, auth.DecodePayload[auth.ACLCmd], func(_ uint64, c auth.ACLCmd) (bool, error) { return m.auth.AddACL(c) }),
		handle(DeleteACL, auth.DecodePayload[auth.ACLCmd], func(_ uint64, c auth.ACLCmd) (int, error) { return m.auth.DeleteACL(c) }),
		handle(SetPrincipalGroups, auth.DecodePayload[auth.SetGroupsCmd], done(m.auth.SetGroups)),
	}
}

func done[Req any](f func(Req) error) func(uint64, Req) (Done, error) {
	return func(_ uint64, r Req) (Done, error) { return Done{}, f(r) }
}

func (m *Machine) createTopic(index uint64, c topics.Config) (*topics.Topic, error) {
	t, err := m.topics.Create(index, c)
	if err == nil {
		m.groups.TopicChanged(t.Name)
	}
	return t, err
}

func (m *Machine) deleteTopic(_ uint64, name string) (Done, error) {
	err := m.topics.Delete(name)
	if err == nil {
		m.groups.TopicChanged(name)
	}
	return Done{}, err
}

// Propose replicates req as op's command through node and returns its
// typed result once it is committed and applied.
func Propose[Req, Res any](ctx context.Context, node *replication.Node, op Op[Req, Res], req Req) (Res, error) {
	return replication.ProposeAs[Res](ctx, node, op.Encode(req))
}

// ProposeIndexed is Propose that also returns the log index at which the
// command committed: a position token for read-your-writes (a node that
// has applied that index shows the command's effect). The index is
// returned with the state machine's error too (the entry committed and
// was applied, refused), and is 0 when the proposal itself failed.
func ProposeIndexed[Req, Res any](ctx context.Context, node *replication.Node, op Op[Req, Res], req Req) (Res, uint64, error) {
	var zero Res
	res, err := node.Propose(ctx, op.Encode(req))
	if err != nil {
		return zero, res.Index, err
	}
	switch r := res.Response.(type) {
	case nil:
		return zero, res.Index, nil
	case Res:
		return r, res.Index, nil
	}
	return zero, res.Index, fmt.Errorf("%w: entry %d answered %T, want %T", replication.ErrBadResult, res.Index, res.Response, zero)
}
