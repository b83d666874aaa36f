package fsm

import (
	"fmt"

	"github.com/ledgermq/ledgermq/auth"
	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
)

// Machine is the broker group's replicated state: topics and consumer
// groups, driven by the commands in the registry.
type Machine struct {
	topics *topics.State
	groups *consumer.State
	auth   *auth.State   // issue 12
	table  [256]*command // by code; nil for unknown codes
}

var _ replication.StateMachine = (*Machine)(nil)

// New returns an empty state machine.
func New() *Machine {
	t := topics.New()
	m := &Machine{topics: t, auth: auth.New(), groups: consumer.New(func(name string) (int, bool) {
		top, err := t.Lookup(name)
		if err != nil {
			return 0, false
		}
		return top.Queues, true
	})}
	for _, c := range m.commands() { // codes are unique: TestRegistry
		m.table[c.code] = &c
	}
	return m
}

// Topics returns the topic state, for readers.
func (m *Machine) Topics() *topics.State { return m.topics }

// Groups returns the consumer-group state, for readers.
func (m *Machine) Groups() *consumer.State { return m.groups }

// Auth returns the authentication and authorization state, for readers.
func (m *Machine) Auth() *auth.State { return m.auth }

// Apply implements replication.StateMachine: one result per command, the
// command's typed result or an error.
func (m *Machine) Apply(cmds []replication.Command) []any {
	out := make([]any, len(cmds))
	for i, c := range cmds {
		out[i] = m.apply(c.Index, c.Data)
	}
	return out
}

func (m *Machine) apply(index uint64, data []byte) any {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty entry at %d", ErrBadCommand, index)
	}
	c := m.table[data[0]]
	if c == nil {
		return fmt.Errorf("%w: unknown command code %d at %d", ErrBadCommand, data[0], index)
	}
	return c.apply(index, data[1:])
}

// CommandName names the command in a log entry ("" if unknown), for tools.
func (m *Machine) CommandName(data []byte) string {
	if len(data) == 0 || m.table[data[0]] == nil {
		return ""
	}
	return m.table[data[0]].name
}
