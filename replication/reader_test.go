package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/commitlog"
)

// errSM is what the scripted state machine returns for "err:" commands.
var errSM = errors.New("state machine refused")

// scriptedAnswer makes the test state machine's result a function of the
// command: "str:x" answers "x", "err:" errSM, "nil" nil, "int:" 42, and
// anything else the command's index.
func scriptedAnswer(c Command) any {
	s := string(c.Data)
	switch {
	case strings.HasPrefix(s, "str:"):
		return strings.TrimPrefix(s, "str:")
	case strings.HasPrefix(s, "err:"):
		return fmt.Errorf("applying %q: %w", s, errSM)
	case s == "nil":
		return nil
	case strings.HasPrefix(s, "int:"):
		return 42
	}
	return c.Index
}

// scriptedLeader starts a one-node group whose state machine answers with
// scriptedAnswer.
func scriptedLeader(t *testing.T) *Node {
	t.Helper()
	c := newCluster(t, 1, clusterOpts{inmem: true})
	l := c.leader(10 * time.Second)
	c.sms[l.ID()].setAnswer(scriptedAnswer)
	return l
}

func TestProposeAs(t *testing.T) {
	l := scriptedLeader(t)
	ctx := context.Background()
	tests := []struct {
		data    string
		want    string
		wantErr error // nil: success
		errHas  []string
	}{
		{data: "str:hello", want: "hello"},
		{data: "str:", want: ""},
		{data: "nil", want: ""}, // a nil result is the zero value, not ErrBadResult
		{data: "err:x", wantErr: errSM, errHas: []string{`applying "err:x"`}},
		{data: "int:1", wantErr: ErrBadResult, errHas: []string{"answered int", "want string"}},
		{data: "other", wantErr: ErrBadResult, errHas: []string{"answered uint64", "want string"}},
	}
	for _, tc := range tests {
		t.Run(tc.data, func(t *testing.T) {
			got, err := ProposeAs[string](ctx, l, []byte(tc.data))
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("ProposeAs = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ProposeAs error %v, want %v", err, tc.wantErr)
			}
			if got != "" {
				t.Fatalf("ProposeAs returned %q with an error", got)
			}
			if tc.wantErr != ErrBadResult && errors.Is(err, ErrBadResult) {
				t.Fatalf("state machine error reported as a bad result: %v", err)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not mention %q", err, s)
				}
			}
		})
	}

	// Other result types: a numeric type, an interface the result satisfies
	// and the index fallback that names the entry it was proposed at.
	if n, err := ProposeAs[int](ctx, l, []byte("int:")); err != nil || n != 42 {
		t.Fatalf("ProposeAs[int] = %d, %v", n, err)
	}
	if s, err := ProposeAs[fmt.Stringer](ctx, l, []byte("nil")); err != nil || s != nil {
		t.Fatalf("ProposeAs[fmt.Stringer] of nil = %v, %v", s, err)
	}
	idx, err := ProposeAs[uint64](ctx, l, []byte("index"))
	if err != nil {
		t.Fatal(err)
	}
	if data, err := l.ReadEntry(idx); err != nil || string(data) != "index" {
		t.Fatalf("the entry the state machine named: %q, %v", data, err)
	}
	_, err = ProposeAs[int](ctx, l, []byte("str:x"))
	if !errors.Is(err, ErrBadResult) || !strings.Contains(err.Error(), fmt.Sprintf("entry %d ", idx+1)) {
		t.Fatalf("bad result error %q does not name entry %d", err, idx+1)
	}
}

func TestProposeAsRefusedOffLeader(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{inmem: true})
	l := c.leader(10 * time.Second)
	ctx := context.Background()
	for _, n := range c.running() {
		if n == l {
			continue
		}
		_, err := ProposeAs[int](ctx, n, []byte("x"))
		var nle *NotLeaderError
		if !errors.As(err, &nle) || errors.Is(err, ErrBadResult) {
			t.Fatalf("follower ProposeAs: %v", err)
		}
		break
	}
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := ProposeAs[int](expired, l, []byte("late")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("ProposeAs with an expired context: %v", err)
	}
	if got, err := ProposeAs[int](ctx, l, []byte("counted")); err != nil || got < 1 {
		t.Fatalf("leader ProposeAs = %d, %v", got, err)
	}
	c.kill(l.ID())
	if _, err := ProposeAs[int](ctx, l, []byte("closed")); !errors.Is(err, ErrClosed) {
		t.Fatalf("ProposeAs on a stopped node: %v", err)
	}
}

func TestReadEntries(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{inmem: true})
	l := c.leader(10 * time.Second)
	ctx := context.Background()
	proposed := map[uint64]string{}
	for i := 0; i < 30; i++ {
		data := fmt.Sprintf("cmd-%02d-%s", i, strings.Repeat("z", i*10))
		res, err := l.Propose(ctx, []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		proposed[res.Index] = data
	}
	c.waitConverged(10 * time.Second)

	for _, n := range c.running() {
		if got := n.FirstIndex(); got != 1 {
			t.Fatalf("%s FirstIndex = %d, want 1", n.ID(), got)
		}
		st := n.LogStats()
		if st.FirstIndex != 1 || st.LastIndex != n.log.LastIndex() || st.Segments < 1 || st.Bytes <= 0 {
			t.Fatalf("%s LogStats = %+v (log last %d)", n.ID(), st, n.log.LastIndex())
		}
		all := readAll(t, n, 512)
		if uint64(len(all)) != st.LastIndex {
			t.Fatalf("%s: scanned %d entries, log ends at %d", n.ID(), len(all), st.LastIndex)
		}
		internal := 0
		for i, e := range all {
			if e.Index != uint64(i+1) || e.Term == 0 {
				t.Fatalf("%s: entry %d is %+v", n.ID(), i+1, e)
			}
			want, isProposal := proposed[e.Index]
			if e.Command != isProposal {
				t.Fatalf("%s: entry %d Command=%v, proposed=%v", n.ID(), e.Index, e.Command, isProposal)
			}
			if !e.Command {
				internal++
				continue
			}
			if string(e.Data) != want {
				t.Fatalf("%s: entry %d data %q, want %q", n.ID(), e.Index, e.Data, want)
			}
			data, err := n.ReadEntry(e.Index)
			if err != nil || string(data) != want {
				t.Fatalf("%s: ReadEntry(%d) = %q, %v", n.ID(), e.Index, data, err)
			}
		}
		// The bootstrap configuration and the first leader's no-op at least.
		if all[0].Command || internal < 2 {
			t.Fatalf("%s: %d internal entries, first %+v", n.ID(), internal, all[0])
		}
	}

	// ReadEntries' data belongs to the caller: changing it changes no
	// later read. (ReadEntry's is read-only: recent entries are shared with
	// the entry cache.)
	var idx uint64
	for i := range proposed {
		idx = max(idx, i)
	}
	es, _ := l.ReadEntries(idx, 1<<20)
	es[0].Data[0] = '!'
	if again, _ := l.ReadEntry(idx); string(again) != proposed[idx] {
		t.Fatalf("ReadEntry(%d) after the caller changed an earlier copy: %q", idx, again)
	}
}

// readAll scans a node's log with ReadEntries, maxBytes at a time, checking
// that every call returns at least one entry.
func readAll(t *testing.T, n *Node, maxBytes int) []Entry {
	t.Helper()
	var all []Entry
	for from := n.FirstIndex(); from <= n.LogStats().LastIndex; {
		es, err := n.ReadEntries(from, maxBytes)
		if err != nil {
			t.Fatalf("%s: ReadEntries(%d): %v", n.ID(), from, err)
		}
		if len(es) == 0 || es[0].Index != from {
			t.Fatalf("%s: ReadEntries(%d) returned %d entries starting %+v", n.ID(), from, len(es), es)
		}
		all = append(all, es...)
		from += uint64(len(es))
	}
	return all
}

func TestReadEntryOutOfRange(t *testing.T) {
	l := scriptedLeader(t)
	if _, err := l.Propose(context.Background(), []byte("one")); err != nil {
		t.Fatal(err)
	}
	last := l.LogStats().LastIndex
	tests := []struct {
		name  string
		read  func() error
		want  error
		label string
	}{
		{"entry 0", func() error { _, err := l.ReadEntry(0); return err }, commitlog.ErrBeforeFirst, "read entry 0"},
		{"entry past last", func() error { _, err := l.ReadEntry(last + 1); return err }, commitlog.ErrAfterLast, fmt.Sprintf("read entry %d", last+1)},
		{"entries from 0", func() error { _, err := l.ReadEntries(0, 1<<20); return err }, commitlog.ErrBeforeFirst, "read entries from 0"},
		{"entries past last", func() error { _, err := l.ReadEntries(last+1, 1<<20); return err }, commitlog.ErrAfterLast, fmt.Sprintf("read entries from %d", last+1)},
	}
	for _, tc := range tests {
		err := tc.read()
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "replication: "+tc.label) {
			t.Errorf("%s: %v, want %v labelled %q", tc.name, err, tc.want, tc.label)
		}
	}
	// A budget smaller than any entry still returns one entry.
	if es, err := l.ReadEntries(1, 1); err != nil || len(es) != 1 || es[0].Index != 1 {
		t.Fatalf("ReadEntries(1, 1) = %+v, %v", es, err)
	}
}
