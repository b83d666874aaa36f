package consumer

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRebalanceStorm applies random joins (some static, replacing a
// member), rejoins, leaves, releases, topic creations and deletions,
// commits and resets to two fresh states and to a copy restored from a
// snapshot (again every 64 steps), and checks after every step: the three
// encode to the same bytes; every queue has exactly one owner; a group's
// generation goes up by exactly one at each change of members or owners
// and not otherwise; a commit is accepted exactly when its member owns
// every queue in it (delivering or revoking) and its generation is one
// the group has had, and a refused one moves no offset. Replay a failure
// with -consumer.seed.
func TestRebalanceStorm(t *testing.T) {
	seed := cmp.Or(*stormSeed, uint64(time.Now().UnixNano()))
	t.Logf("seed %d (replay with -consumer.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	topics := map[string]int{"t0": 3}
	count := counter(topics)
	a, b := New(count), New(count)
	c := restoredCopy(t, a)
	names := []string{"t0", "t1", "t2", "t3"}
	groups := []string{"g0", "g1", "g2"}
	pick := func(ss []string) string { return ss[rng.IntN(len(ss))] }
	gens := map[string][]uint64{} // every generation a group has had
	for step := range 1500 {
		g := pick(groups)
		before := map[string]GroupView{}
		for _, v := range a.List() {
			before[v.Name] = v
		}
		cur := before[g]
		var memberIDs []string
		for _, m := range cur.Members {
			memberIDs = append(memberIDs, m.ID)
		}
		encBefore := encoded(a)
		var desc string
		var commit *CommitCmd // the step's commit, if it is one
		var apply func(s *State) (any, error)
		changed := map[string]bool{} // groups whose membership changes if the op succeeds
		switch op := rng.IntN(10); {
		case op < 3 || len(memberIDs) == 0 && op < 6: // join, or rejoin with new topics
			subs := []string{pick(names)}
			if rng.IntN(2) == 0 {
				subs = append(subs, pick(names))
			}
			id := ""
			if len(memberIDs) > 0 && rng.IntN(3) == 0 {
				id = pick(memberIDs)
			}
			cmd := JoinCmd{Group: g, MemberID: id, Topics: subs, SessionTimeoutMs: 1000}
			if rng.IntN(3) == 0 {
				cmd.InstanceID = pick([]string{"i1", "i2"})
			}
			desc, changed[g] = fmt.Sprintf("join %+v", cmd), true
			apply = func(s *State) (any, error) { return s.Join(cmd) }
		case op < 5: // leave, sometimes of a member that is not there
			id := "m999"
			if len(memberIDs) > 0 && rng.IntN(5) > 0 {
				id = pick(memberIDs)
			}
			cmd := LeaveCmd{Group: g, MemberID: id}
			desc, changed[g] = fmt.Sprintf("leave %+v", cmd), true
			apply = func(s *State) (any, error) { return nil, s.Leave(cmd) }
		case op < 6 && rng.IntN(2) == 0 && len(memberIDs) > 0: // release some revoking queues, and maybe a foreign one
			id := pick(memberIDs)
			cmd := ReleaseCmd{Group: g, MemberID: id}
			for _, q := range cur.Revoking[id] {
				if rng.IntN(3) > 0 {
					cmd.Queues = append(cmd.Queues, q)
					cmd.Offsets = append(cmd.Offsets, Offset{q.Topic, q.Queue, rng.Uint64N(1000)})
				}
			}
			if rng.IntN(3) == 0 { // often not its own, sometimes one it is revoking after all
				cmd.Queues = append(cmd.Queues, TQ{pick(names), rng.IntN(6)})
			}
			for _, q := range cmd.Queues {
				changed[g] = changed[g] || containsTQ(cur.Revoking[id], q)
			}
			desc = fmt.Sprintf("release %+v", cmd)
			apply = func(s *State) (any, error) { return s.Release(cmd) }
		case op < 6: // create or delete a topic
			name := pick(names)
			if _, ok := topics[name]; ok {
				delete(topics, name)
			} else {
				topics[name] = rng.IntN(6) + 1
			}
			for _, v := range before {
				for _, m := range v.Members {
					if containsString(m.Topics, name) {
						changed[v.Name] = true
					}
				}
			}
			desc = fmt.Sprintf("topic %s now %v", name, topics)
			apply = func(s *State) (any, error) { s.TopicChanged(name); return nil, nil }
		case op < 9: // commit, often with a stale generation or a foreign queue
			cmd := CommitCmd{Group: g, MemberID: "m1", Generation: cur.Generation}
			if len(memberIDs) > 0 {
				cmd.MemberID = pick(memberIDs)
			}
			if h := gens[g]; len(h) > 0 && rng.IntN(3) == 0 {
				cmd.Generation = h[rng.IntN(len(h))]
			}
			for _, q := range append(cur.Assignment[cmd.MemberID], cur.Revoking[cmd.MemberID]...) {
				if rng.IntN(2) == 0 {
					cmd.Offsets = append(cmd.Offsets, Offset{q.Topic, q.Queue, rng.Uint64N(1000)})
				}
			}
			if rng.IntN(4) == 0 {
				cmd.Offsets = append(cmd.Offsets, Offset{pick(names), rng.IntN(6), 1})
			}
			commit = &cmd
			desc = fmt.Sprintf("commit %+v", cmd)
			apply = func(s *State) (any, error) { return nil, s.Commit(cmd) }
		default: // reset
			cmd := ResetCmd{Group: g, Offsets: []Offset{{pick(names), rng.IntN(6), rng.Uint64N(1000)}}}
			desc = fmt.Sprintf("reset %+v", cmd)
			apply = func(s *State) (any, error) { return nil, s.Reset(cmd) }
		}
		res, err := apply(a)
		for _, s := range []*State{b, c} {
			r2, err2 := apply(s)
			if fmt.Sprint(r2, err2) != fmt.Sprint(res, err) {
				t.Fatalf("step %d %s: replicas answer %v, %v and %v, %v", step, desc, res, err, r2, err2)
			}
		}
		ea := encoded(a)
		if !bytes.Equal(ea, encoded(b)) || !bytes.Equal(ea, encoded(c)) {
			t.Fatalf("step %d %s: replicas diverged", step, desc)
		}
		if err != nil && !bytes.Equal(ea, encBefore) {
			t.Fatalf("step %d %s: refused (%v), yet the state changed", step, desc, err)
		}
		if commit != nil {
			owned := map[TQ]bool{}
			for _, q := range append(cur.Assignment[commit.MemberID], cur.Revoking[commit.MemberID]...) {
				owned[q] = true
			}
			ok := containsString(memberIDs, commit.MemberID) && commit.Generation > 0 && commit.Generation <= cur.Generation
			for _, o := range commit.Offsets {
				ok = ok && owned[TQ{o.Topic, o.Queue}]
			}
			if ok != (err == nil) {
				t.Fatalf("step %d %s: answered %v; the member owns %v", step, desc, err, owned)
			}
		}
		for _, v := range a.List() {
			checkOwners(t, v, topics)
			old := before[v.Name]
			want := old.Generation
			if changed[v.Name] && err == nil {
				want++
			}
			if v.Generation != want {
				t.Fatalf("step %d %s: group %s at generation %d, want %d", step, desc, v.Name, v.Generation, want)
			}
			if v.Generation != old.Generation {
				gens[v.Name] = append(gens[v.Name], old.Generation)
			}
			if commit != nil && err != nil && !equalOffsets(v.Offsets, old.Offsets) {
				t.Fatalf("step %d %s: a refused commit moved group %s's offsets", step, desc, v.Name)
			}
		}
		if step%64 == 63 {
			c = restoredCopy(t, a)
		}
	}
}

// stormSeed replays a TestRebalanceStorm run; 0 picks a new seed.
var stormSeed = flag.Uint64("consumer.seed", 0, "seed of TestRebalanceStorm (0: a new one each run)")
