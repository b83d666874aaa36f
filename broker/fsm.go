package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
)

// stateMachine is the broker's replicated state: it dispatches committed
// commands by their first byte to the state machines that own them.
type stateMachine struct {
	topics *topics.State
	groups *consumer.State
}

var _ replication.StateMachine = (*stateMachine)(nil)

func newStateMachine() *stateMachine {
	t := topics.New()
	return &stateMachine{topics: t, groups: consumer.New(func(name string) (int, bool) {
		top, err := t.Lookup(name)
		if err != nil {
			return 0, false
		}
		return top.Queues, true
	})}
}

func (s *stateMachine) Apply(cmds []replication.Command) []any {
	out := make([]any, len(cmds))
	for i, c := range cmds {
		if len(c.Data) == 0 {
			out[i] = fmt.Errorf("%w: empty command", topics.ErrBadCommand)
			continue
		}
		switch typ := c.Data[0]; typ {
		case topics.CmdProduce, topics.CmdInitProducer:
			out[i] = s.topics.Apply(c.Index, c.Data)
		case topics.CmdCreateTopic, topics.CmdDeleteTopic:
			out[i] = s.topics.Apply(c.Index, c.Data)
			if _, failed := out[i].(error); !failed {
				s.groups.TopicChanged(topicOf(c.Data, out[i]))
			}
		case consumer.CmdJoin, consumer.CmdLeave, consumer.CmdCommit, consumer.CmdReset:
			out[i] = s.groups.Apply(c.Index, c.Data)
		default:
			out[i] = fmt.Errorf("%w: unknown command type %d", topics.ErrBadCommand, typ)
		}
	}
	return out
}

// topicOf names the topic a successful create or delete touched.
func topicOf(cmd []byte, res any) string {
	if t, ok := res.(*topics.Topic); ok {
		return t.Name
	}
	return string(cmd[1:]) // delete carries the name
}

// Snapshot layout: u64 length | topics snapshot | u64 length | groups.
func (s *stateMachine) Snapshot() (replication.Snapshot, error) {
	return &snapshot{topics: s.topics.Snapshot(), groups: s.groups.Snapshot()}, nil
}

func (s *stateMachine) Restore(r io.Reader, _ replication.RestoreInfo) error {
	tb, err := readFramed(r)
	if err != nil {
		return fmt.Errorf("broker: restore topics: %w", err)
	}
	gb, err := readFramed(r)
	if err != nil {
		return fmt.Errorf("broker: restore groups: %w", err)
	}
	if err := s.topics.Restore(bytes.NewReader(tb)); err != nil {
		return err
	}
	return s.groups.Restore(bytes.NewReader(gb))
}

func readFramed(r io.Reader) ([]byte, error) {
	var n [8]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.LittleEndian.Uint64(n[:])
	if size > 1<<34 {
		return nil, fmt.Errorf("section of %d bytes", size)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}

type snapshot struct {
	topics *topics.Snap
	groups []byte
}

func (s *snapshot) Persist(w io.Writer) error {
	var tb bytes.Buffer
	if err := s.topics.Persist(&tb); err != nil {
		return err
	}
	for _, sec := range [][]byte{tb.Bytes(), s.groups} {
		if err := binary.Write(w, binary.LittleEndian, uint64(len(sec))); err != nil {
			return err
		}
		if _, err := w.Write(sec); err != nil {
			return err
		}
	}
	return nil
}

func (s *snapshot) Release() {}
