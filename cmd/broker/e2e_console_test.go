package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ledgermq/ledgermq/internal/cluster"
	"github.com/ledgermq/ledgermq/wire"
)

// Issue 15: the web console driven by a real headless browser (Debian's
// chromium through the DevTools protocol) against three broker processes
// with --auth. Screenshots go to $LEDGERMQ_CONSOLE_SHOTS when set (that is
// how docs/console/*.png are made), else to a temporary directory.

// chromiumPath finds the browser; .ci/run installs Debian's chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium in PATH: install it (Debian: apt-get install chromium); .ci/run does")
	return ""
}

// browser starts a headless chromium and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// consoleGroup is a 3-node group of broker processes with --auth.
func consoleGroup(t *testing.T) (*authGroup, *group) {
	t.Helper()
	tok, path := bootstrapToken(t)
	c := startCluster(t, cluster.Options{Bin: binary(t, "broker"), Nodes: 3, Dir: t.TempDir(), LogLevel: logLevel(),
		Args: []string{"--auth", "--superusers", "User:admin", "--bootstrap-token-file", path}})
	ag := &authGroup{t: t, c: c, admin: tok, hc: &http.Client{Timeout: 5 * time.Second}}
	g := &group{t: t, c: c, api: map[string]string{}, ids: c.IDs()}
	for _, id := range g.ids {
		g.api[id] = c.API(id)
	}
	return ag, g
}

// leaderID asks a node which node leads ("" when it knows none).
func (g *authGroup) leaderID(id string) string {
	st, b := g.do(id, "GET", "/v1/cluster", g.admin, nil)
	var cs wire.ClusterStatus
	if st != http.StatusOK || json.Unmarshal(b, &cs) != nil {
		return ""
	}
	return cs.Leader
}

// shot saves a screenshot of the page and checks it is a real image.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // let a refresh in flight land
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil || img.Bounds().Dx() < 800 {
		t.Fatalf("screenshot %s is not a page-sized PNG (%v)", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// textOf returns the text content of the first element matching sel.
func textOf(ctx context.Context, sel string) (string, error) {
	return chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
}

// waitText polls until the text of sel satisfies ok, without reloading
// the page: the console's live view must bring the change by itself.
func waitText(t *testing.T, ctx context.Context, sel, what string, d time.Duration, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := textOf(tctx, sel)
		cancel()
		if err == nil && ok(s) {
			return s
		}
		last = s
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %q never came (last %q)", sel, what, last)
	return ""
}

func uiRun(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestConsole: in a real browser, against a follower's console (so every
// write is forwarded to the leader): sign in with a token, create a topic,
// see messages produced through the API, browse them (JSON pretty-printed,
// binary as hex, newest N), watch a consumer group's lag fall to 0 in the
// live view, transfer leadership; then a principal allowed to describe one
// topic only sees that topic and is refused a delete.
func TestConsole(t *testing.T) {
	shots := os.Getenv("LEDGERMQ_CONSOLE_SHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	ag, g := consoleGroup(t)
	waitUntil(t, 20*time.Second, "a leader", func() bool { return ag.leaderID(g.ids[0]) != "" })
	leader := ag.leaderID(g.ids[0])
	follower := g.ids[0]
	if follower == leader {
		follower = g.ids[1]
	}
	ui := "http://" + g.api[follower] + "/ui/"
	ctx := browser(t)

	// Sign in.
	uiRun(t, ctx, "open the console", chromedp.Navigate(ui+"#/topics"), chromedp.WaitVisible(chromedp.CSS("#login")))
	uiRun(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#token"), ag.admin), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#create-topic")))
	waitText(t, ctx, "#who", "User:admin", 10*time.Second, func(s string) bool { return strings.HasPrefix(s, "User:admin") })

	// Create a topic through the form.
	const topic = "console-orders"
	uiRun(t, ctx, "create a topic",
		chromedp.SendKeys(chromedp.CSS("#topic-name"), topic),
		chromedp.SetValue(chromedp.CSS("#topic-queues"), "3"),
		chromedp.Click(chromedp.CSS(`#create-topic button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-topic="`+topic+`"]`)))
	st, b := ag.do(leader, "GET", "/v1/topics/"+topic, ag.admin, nil)
	var ti wire.TopicInfo
	if st != http.StatusOK || json.Unmarshal(b, &ti) != nil || ti.Queues != 3 {
		t.Fatalf("the topic the console created: %d %s", st, b)
	}

	// Produce through the API: 40 JSON messages with keys and a header to
	// queue 0, one binary message to queue 1.
	var msgs []wire.ProduceMessage
	for i := range 40 {
		k, v, q := fmt.Sprintf("cust-%d", i%4), fmt.Sprintf(`{"n":%d,"item":"book"}`, i), 0
		msgs = append(msgs, wire.ProduceMessage{Key: &k, Value: &v, Queue: &q, Headers: map[string]string{"source": "web"}})
	}
	bin, q1 := "AAECA/7/", 1 // bytes 00 01 02 03 fe ff
	msgs = append(msgs, wire.ProduceMessage{ValueBase64: &bin, Queue: &q1})
	ag.write("POST", "/v1/topics/"+topic+"/messages", ag.admin, wire.ProduceRequest{Messages: msgs}, 10*time.Second)
	row := `tr[data-topic="` + topic + `"] td:nth-child(3)`
	waitText(t, ctx, row, "41 messages", 15*time.Second, func(s string) bool { return s == "41" })
	shot(t, ctx, shots, "topics")
	// The topic's page: per queue offsets (queue 0 holds 40, queue 1 one).
	uiRun(t, ctx, "topic page", chromedp.Navigate(ui+"#/topics/"+topic), chromedp.WaitVisible(chromedp.CSS(`#queues tr[data-queue="2"]`)))
	waitText(t, ctx, `#queues tr[data-queue="0"] td:nth-child(4)`, "40 messages in queue 0", 10*time.Second, func(s string) bool { return s == "40" })
	if n, _ := textOf(ctx, `#queues tr[data-queue="1"] td:nth-child(3)`); n != "1" {
		t.Fatalf("queue 1's next offset shown as %q, want 1", n)
	}
	shot(t, ctx, shots, "topic")

	// Browse: from offset 0 of queue 0, JSON pretty-printed.
	uiRun(t, ctx, "browse queue 0", chromedp.Navigate(ui+"#/messages?topic="+topic+"&queue=0&offset=0"),
		chromedp.WaitVisible(chromedp.CSS(`#messages tr[data-offset="39"]`)))
	v, err := textOf(ctx, `#messages tr[data-offset="7"] td.value pre`)
	if err != nil || !strings.Contains(v, "\"n\": 7,\n") || !strings.Contains(v, `"item": "book"`) {
		t.Fatalf("message 7 shown as %q (%v), want pretty-printed JSON", v, err)
	}
	k, _ := textOf(ctx, `#messages tr[data-offset="7"] td:nth-child(3)`)
	h, _ := textOf(ctx, `#messages tr[data-offset="7"] td:nth-child(4)`)
	if k != "cust-3" || h != "source: web" {
		t.Fatalf("message 7's key %q and headers %q", k, h)
	}
	shot(t, ctx, shots, "messages")
	// The newest 5.
	uiRun(t, ctx, "newest 5", chromedp.SetValue(chromedp.CSS("#msg-from"), "newest"), chromedp.SetValue(chromedp.CSS("#msg-max"), "5"),
		chromedp.Click(chromedp.CSS("#msg-fetch")))
	waitText(t, ctx, "#msg-count", "the newest 5", 10*time.Second, func(s string) bool { return strings.HasPrefix(s, "5 messages · next offset 40") })
	if first, _ := textOf(ctx, "#messages tbody tr:first-child td:first-child"); first != "35" {
		t.Fatalf("the newest 5 start at offset %q, want 35", first)
	}
	// The binary message of queue 1, as hex.
	uiRun(t, ctx, "binary as hex", chromedp.SetValue(chromedp.CSS("#msg-from"), "offset"), chromedp.SetValue(chromedp.CSS("#msg-queue"), "1"),
		chromedp.SetValue(chromedp.CSS("#msg-offset"), "0"), chromedp.Click(chromedp.CSS("#msg-fetch")),
		chromedp.WaitVisible(chromedp.CSS(`#messages tr[data-offset="0"] pre.hex`)))
	if hx, _ := textOf(ctx, `#messages tr[data-offset="0"] pre.hex`); !strings.Contains(hx, "00 01 02 03 fe ff") {
		t.Fatalf("binary value shown as %q", hx)
	}

	// A consumer group: a member joins and commits 10 of 40 on queue 0;
	// the group page shows lag 30 (+1 on queue 1), then, without a reload,
	// 0 once it commits to the ends.
	const grp = "console-billing"
	var m wire.Membership
	json.Unmarshal(ag.write("POST", "/v1/groups/"+grp+"/members", ag.admin, wire.JoinGroupRequest{Topics: []string{topic}, SessionTimeoutMs: 120000}, 10*time.Second), &m)
	commit := func(off0, off1 uint64) {
		ag.write("POST", "/v1/groups/"+grp+"/offsets", ag.admin, wire.CommitRequest{MemberID: m.MemberID, Generation: m.Generation,
			Offsets: []wire.CommitOffset{{Topic: topic, Queue: 0, Offset: off0}, {Topic: topic, Queue: 1, Offset: off1}, {Topic: topic, Queue: 2, Offset: 0}}}, 10*time.Second)
	}
	commit(10, 0)
	uiRun(t, ctx, "open the group", chromedp.Navigate(ui+"#/groups/"+grp), chromedp.WaitVisible(chromedp.CSS("#group-lag")))
	waitText(t, ctx, "#group-lag", "lag 31", 10*time.Second, func(s string) bool { return s == "31" })
	shot(t, ctx, shots, "group-lagging")
	commit(40, 1)
	waitText(t, ctx, "#group-lag", "lag 0", 10*time.Second, func(s string) bool { return s == "0" })
	shot(t, ctx, shots, "group")
	uiRun(t, ctx, "groups list", chromedp.Navigate(ui+"#/groups"), chromedp.WaitVisible(chromedp.CSS(`tr[data-group="`+grp+`"]`)))
	shot(t, ctx, shots, "groups")

	// Transfer leadership to the node serving the console.
	uiRun(t, ctx, "cluster page", chromedp.Navigate(ui+"#/cluster"), chromedp.WaitVisible(chromedp.CSS(`button[data-test="transfer-`+follower+`"]`)))
	waitText(t, ctx, "#leader", leader, 10*time.Second, func(s string) bool { return s == leader })
	shot(t, ctx, shots, "cluster")
	uiRun(t, ctx, "make leader", chromedp.Click(chromedp.CSS(`button[data-test="transfer-`+follower+`"]`)))
	waitText(t, ctx, "#leader", follower, 20*time.Second, func(s string) bool { return s == follower })
	for _, id := range g.ids {
		waitUntil(t, 10*time.Second, id+" naming the new leader", func() bool { return ag.leaderID(id) == follower })
	}
	// The live view settles on the new term: one leader row, the others
	// followers in the same term.
	waitUntil(t, 10*time.Second, "one leader row", func() bool {
		ectx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		n, err := chromedp.Run(ectx, chromedp.Evaluate[int](`document.querySelectorAll('#nodes span.role.leader').length`))
		return err == nil && n == 1
	})
	shot(t, ctx, shots, "cluster-transferred")

	// A principal that may describe one topic sees only that one, and a
	// delete it may not do is refused with the API's error.
	var carol wire.TokenInfo
	json.Unmarshal(ag.write("POST", "/v1/auth/tokens", ag.admin, wire.TokenRequest{Principal: "User:carol"}, 10*time.Second), &carol)
	ag.write("POST", "/v1/topics", ag.admin, wire.CreateTopicRequest{Name: "secret", Queues: 1}, 10*time.Second)
	ag.write("POST", "/v1/acls", ag.admin, wire.ACL{Principal: "User:carol", ResourceType: wire.ResourceTopic, Resource: topic, Operation: wire.OpDescribe}, 10*time.Second)
	ag.expectACLs(1, 10*time.Second)
	ctx2, cancel2 := chromedp.NewContext(ctx) // a new tab: its own session storage
	defer cancel2()
	// The first action on a context opens its tab, which then lives as long
	// as that action's context: open it with ctx2 itself, not a timeout.
	if err := chromedp.Do(ctx2); err != nil {
		t.Fatalf("open a second tab: %v", err)
	}
	uiRun(t, ctx2, "carol signs in", chromedp.Navigate(ui+"#/topics"), chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#token"), carol.Token), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-topic="`+topic+`"]`)))
	ectx, ecancel := context.WithTimeout(ctx2, 10*time.Second)
	n, err := chromedp.Run(ectx, chromedp.Evaluate[int](`document.querySelectorAll('#topics tbody tr[data-topic]').length`))
	ecancel()
	if err != nil || n != 1 {
		t.Fatalf("carol sees %d topics, want only %s", n, topic)
	}
	uiRun(t, ctx2, "carol deletes", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`window.confirm = () => true, true`)(ctx, t)
		return err
	}),
		chromedp.Click(chromedp.CSS(`button[data-test="delete-`+topic+`"]`)))
	waitText(t, ctx2, "#toast", "FORBIDDEN", 10*time.Second, func(s string) bool { return strings.HasPrefix(s, wire.CodeForbidden+":") })
	shot(t, ctx2, shots, "forbidden")
	if st, _ := ag.do(leader, "GET", "/v1/topics/"+topic, ag.admin, nil); st != http.StatusOK {
		t.Fatalf("the topic carol could not delete: %d", st)
	}
}
