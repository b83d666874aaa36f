package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// Issue 15: mqctl's terminal ergonomics against a real 3-node group:
// `mqctl top` shows the topics' sizes and rates and the groups' lag as
// `mqctl group describe` does, and the bash, zsh and fish completion
// scripts complete commands, flags, flag values and the group's own topic,
// group and node names in the real shells.

func TestMqctlTopAndCompletion(t *testing.T) {
	if testing.Short() {
		t.Skip("runs OS processes")
	}
	g := newGroupWithTopic(t, 3, "orders", 3)
	brokers := strings.Join([]string{g.api[g.ids[0]], g.api[g.ids[1]], g.api[g.ids[2]]}, ",")
	var in strings.Builder
	for i := range 600 {
		fmt.Fprintf(&in, "m%d\n", i)
	}
	mqctl(t, brokers, in.String(), "produce", "orders")
	mqctl(t, brokers, "", "consume", "orders", "--group", "billing", "--count", "250", "--values-only")
	var gi wire.GroupInfo
	if err := json.Unmarshal([]byte(mqctl(t, brokers, "", "--format", "json", "group", "describe", "billing")), &gi); err != nil {
		t.Fatal(err)
	}
	var lag uint64
	for _, q := range gi.Queues {
		lag += q.Lag
	}
	if lag != 350 {
		t.Fatalf("group describe says lag %d, want 350", lag)
	}
	// Every node's /metrics shows the lag mqctl group describe shows.
	for _, id := range g.ids {
		waitUntil(t, 5*time.Second, id+"'s /metrics showing the group's lag", func() bool {
			r, err := http.Get("http://" + g.api[id] + "/metrics")
			if err != nil {
				return false
			}
			defer r.Body.Close()
			body, _ := io.ReadAll(r.Body)
			for _, q := range gi.Queues {
				line := fmt.Sprintf("ledgermq_consumer_group_lag_messages{group=\"billing\",topic=\"orders\",queue=\"%d\"} %d\n", q.Queue, q.Lag)
				if !strings.Contains(string(body), line) {
					return false
				}
			}
			return true
		})
	}

	// top, text: two frames; the topic's messages and size, the group's lag.
	out := mqctl(t, brokers, "", "top", "--count", "2", "--interval", "300ms")
	frames := strings.Split(out, "LedgerMQ group ")
	if len(frames) != 3 {
		t.Fatalf("want 2 frames:\n%s", out)
	}
	last := frames[2]
	if !regexp.MustCompile(`(?m)^orders\s+3\s+600\s+0\.0\s+\S+ KiB$`).MatchString(last) {
		t.Fatalf("topic row (3 queues, 600 messages, 0.0/s) missing:\n%s", last)
	}
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^billing\s+0\s+orders\s+%d\s+0\.0$`, lag)).MatchString(last) {
		t.Fatalf("group row (lag %d, 0.0/s) missing:\n%s", lag, last)
	}
	if !strings.Contains(last, "3/3 nodes up") {
		t.Fatalf("header lacks 3/3 nodes up:\n%s", last)
	}

	// top, JSON, while messages arrive: rates appear in the second frame.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			var b strings.Builder
			for k := range 100 {
				fmt.Fprintf(&b, "x%d-%d\n", i, k)
			}
			cmd := exec.Command(binary(t, "mqctl"), "--brokers", brokers, "produce", "orders")
			cmd.Stdin = strings.NewReader(b.String())
			cmd.Run()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	dec := json.NewDecoder(strings.NewReader(mqctl(t, brokers, "", "--format", "json", "top", "--count", "2", "--interval", "700ms", "--topic", "orders")))
	<-done
	var f1, f2 topFrame
	if err := dec.Decode(&f1); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&f2); err != nil {
		t.Fatal(err)
	}
	if len(f1.Topics) != 1 || f1.Topics[0].InPerSecond != nil || len(f2.Topics) != 1 || f2.Topics[0].InPerSecond == nil {
		t.Fatalf("frames %+v then %+v: want a rate in the second only", f1, f2)
	}
	if f2.Topics[0].Messages <= f1.Topics[0].Messages || *f2.Topics[0].InPerSecond <= 0 {
		t.Fatalf("messages %d then %d at %v/s while producing", f1.Topics[0].Messages, f2.Topics[0].Messages, *f2.Topics[0].InPerSecond)
	}

	// Completion in the real shells, mqctl on PATH.
	bin := t.TempDir()
	if err := os.Symlink(binary(t, "mqctl"), filepath.Join(bin, "mqctl")); err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	os.WriteFile(filepath.Join(files, "events.txt"), nil, 0o644)
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "MQ_BROKERS="+brokers)
	script := func(shell string) string {
		p := filepath.Join(t.TempDir(), "mqctl."+shell)
		os.WriteFile(p, []byte(mqctl(t, brokers, "", "completion", shell)), 0o644)
		return p
	}
	cases := []struct{ line, want string }{
		{"mqctl to", "token top topic"},
		{"mqctl topic ", "create delete describe list"},
		{"mqctl topic describe ", "orders"},
		{"mqctl topic create x --q", "--queues"},
		{"mqctl --format ", "json text"},
		{"mqctl produce orders --compression z", "zstd"},
		{"mqctl consume orders --group ", "billing"},
		{"mqctl group describe b", "billing"},
		{"mqctl cluster transfer-leadership --to ", strings.Join(g.ids, " ")},
		{"mqctl completion ", "bash fish zsh"},
		{"mqctl produce orders --file " + files + "/ev", files + "/events.txt"},
	}
	shells := map[string]func(path, line string) string{
		"bash": func(path, line string) string {
			return `source ` + path + `; read -ra COMP_WORDS <<< "$LINE"; [[ "$LINE" == *" " ]] && COMP_WORDS+=(""); ` +
				`COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _mqctl; printf '%s\n' "${COMPREPLY[@]}"`
		},
		// zsh's completion system is not loaded here: compadd and _files
		// are stood in for, printing what they are given.
		"zsh": func(path, line string) string {
			return `compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }; ` +
				`_files() { print -l -- ${(M)$(print -l $PREFIX*)}; }; source ` + path + `; ` +
				`words=(${(z)LINE}); [[ "$LINE" == *" " ]] && words+=(""); CURRENT=${#words}; PREFIX=$words[-1]; _mqctl`
		},
		"fish": func(path, line string) string {
			return `source ` + path + `; complete -C"$LINE"`
		},
	}
	for shell, prog := range shells {
		sh, err := exec.LookPath(shell)
		if err != nil {
			t.Errorf("%s is not installed (.ci/run installs bash, zsh and fish): its completion is untested", shell)
			continue
		}
		path := script(shell)
		for _, c := range cases {
			cmd := exec.Command(sh, "-c", prog(path, c.line))
			cmd.Env = append(env, "LINE="+c.line)
			outb, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s: %q: %v\n%s", shell, c.line, err, outb)
				continue
			}
			got := strings.Fields(string(outb))
			for i := range got { // fish prints "candidate<TAB>description"
				got[i], _, _ = strings.Cut(got[i], "\t")
			}
			slices.Sort(got)
			if strings.Join(got, " ") != c.want {
				t.Errorf("%s completes %q to %q, want %q", shell, c.line, strings.Join(got, " "), c.want)
			}
		}
	}
}

type topFrame struct {
	Topics []struct {
		Name        string   `json:"name"`
		Messages    uint64   `json:"messages"`
		InPerSecond *float64 `json:"in_per_second"`
	} `json:"topics"`
}
