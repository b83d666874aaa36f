package broker

import (
	"fmt"
	"io"

	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
)

// stateMachine is the broker's replicated state: it dispatches committed
// commands by their first byte to the state machines that own them.
type stateMachine struct {
	topics *topics.State
}

var _ replication.StateMachine = (*stateMachine)(nil)

func (s *stateMachine) Apply(cmds []replication.Command) []any {
	out := make([]any, len(cmds))
	for i, c := range cmds {
		if len(c.Data) == 0 {
			out[i] = fmt.Errorf("%w: empty command", topics.ErrBadCommand)
			continue
		}
		switch c.Data[0] {
		case topics.CmdCreateTopic, topics.CmdDeleteTopic, topics.CmdProduce, topics.CmdInitProducer:
			out[i] = s.topics.Apply(c.Index, c.Data)
		default:
			out[i] = fmt.Errorf("%w: unknown command type %d", topics.ErrBadCommand, c.Data[0])
		}
	}
	return out
}

func (s *stateMachine) Snapshot() (replication.Snapshot, error) {
	return &snapshot{topics: s.topics.Snapshot()}, nil
}

func (s *stateMachine) Restore(r io.Reader, _ replication.RestoreInfo) error {
	return s.topics.Restore(r)
}

type snapshot struct {
	topics *topics.Snap
}

func (s *snapshot) Persist(w io.Writer) error { return s.topics.Persist(w) }
func (s *snapshot) Release()                  {}
