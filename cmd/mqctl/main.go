// Command mqctl is LedgerMQ's command-line client. It manages topics,
// produces and consumes messages, shows the broker group's state and
// manages consumer groups through the SDK (package client) only: its
// Producer (idempotent binary batches), Consumer (binary fetches) and Admin
// (topics, groups, cluster). They find the group's leader by themselves
// and follow failovers: give mqctl any or all brokers of the group.
//
// Run `mqctl help` for the commands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	sdk "github.com/ledgermq/ledgermq/client"
)

// defaultBrokers is the local group started by `broker dev`.
const defaultBrokers = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

const usageText = `mqctl is the command-line client of LedgerMQ.

Usage:
  mqctl [global flags] <command> [arguments] [flags]

Commands:
  topic create NAME [--queues N] [--retention D] [--retention-bytes N] [--max-message-bytes N]
  topic list
  topic describe NAME
  topic delete NAME
  produce TOPIC [--file F] [--key K] [--header k=v]... [--queue Q] [--batch-size N]
                [--compression none|gzip|snappy|s2|zstd]
  consume TOPIC [--queue Q] [--offset N | --from-beginning | --from-end | --from-time T]
                [--count N] [--follow] [--values-only] [--min-index I]
  consume TOPIC --group G [--from-beginning | --from-end | --from-time T] [--count N] [--follow]
                [--min-index I]
  group list
  group describe GROUP
  group reset-offsets GROUP --topic T (--to-earliest | --to-latest | --to-time T | --to-offset N)
  cluster status
  cluster transfer-leadership [--to ID]
  whoami
  token create --principal User:NAME [--description D]
  token list
  token revoke ID
  acl list [--principal P] [--topic T | --group G | --cluster]
  acl add --principal P (--topic T | --group G | --cluster) [--prefixed] --operation OP [--deny]
  acl remove --principal P (--topic T | --group G | --cluster) [--prefixed] --operation OP [--deny]
  principal groups get User:NAME
  principal groups set User:NAME [Group:G...]
  config view
  config use-context NAME
  top [--interval D] [--count N] [--group G]...
  completion bash|zsh|fish
  help

Global flags (also accepted after the command):
  --brokers host:port[,host:port...]  brokers of the group; any of them will do, mqctl
                                      finds the leader (env MQ_BROKERS; default
                                      ` + defaultBrokers + `)
  --format text|json                  text for people (default); json prints the API's JSON
  --timeout D                         how long one request may take, retries and leader
                                      changes included (default 10s)
  --ca FILE                           PEM CA certificate the brokers' certificates are
                                      verified with; means TLS (env MQ_CA)
  --cert FILE, --key FILE             client certificate and key (PEM), the principal
                                      User:<CN>; means TLS (env MQ_CERT, MQ_KEY)
  --token T                           API token lmq_<id>_<secret> (env MQ_TOKEN; prefer
                                      the env or the config file: flags show in ps)
  --context NAME                      the config file's context to use (default: its
                                      current-context)
  --config FILE                       the config file (env MQ_CONFIG; default
                                      ~/.config/ledgermq/mqctl.yaml)

An https:// broker address, --ca or --cert means TLS. Each setting comes from its
flag, else its environment variable, else the context, else the default. A context
file (kubectl-style):

  current-context: prod
  contexts:
    - name: prod
      brokers: b1.example.com:7001,b2.example.com:7001,b3.example.com:7001
      ca: ca.crt                  # relative to the config file
      token: lmq_<id>_<secret>

Examples:
  mqctl topic create orders --queues 4 --retention 7d
  mqctl topic list
  mqctl topic describe orders
  mqctl --format json topic describe orders
  seq 1 100000 | mqctl produce orders          # the summary ends "(index I)"
  mqctl consume orders --count 100000 --min-index I
  mqctl produce orders --key user-42 --header source=cli --file events.txt
  mqctl consume orders --from-beginning --count 10
  mqctl consume orders --queue 2 --offset 1000 --values-only
  mqctl consume orders --from-time 2025-01-02T15:04:05Z --format json
  mqctl consume orders --from-end --follow
  mqctl consume orders --group billing --follow
  mqctl group describe billing
  mqctl group reset-offsets billing --topic orders --to-time 2025-01-02T00:00:00Z
  mqctl cluster status
  mqctl cluster transfer-leadership --to n2
  mqctl topic delete orders
  mqctl --context prod whoami
  mqctl token create --principal User:ci --description "CI pipeline"
  mqctl acl add --principal User:ci --topic orders --operation produce
  mqctl acl add --principal Group:ops --topic orders- --prefixed --operation all
  mqctl principal groups set User:alice Group:ops

Run 'mqctl <command> -h' for a command's flags. Exit status: 0 on success,
1 on failure (the message names the API error code), 2 on a usage error,
130 when interrupted.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		stderrTTY: isTerminal(os.Stderr),
		getenv:    os.Getenv,
	}
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// app holds one invocation's I/O and configuration; there is no global
// mutable state.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stderrTTY      bool // progress lines are drawn only on a terminal
	getenv         func(string) string

	// Global flags.
	brokers     string
	format      string
	timeout     time.Duration
	ca          string
	cert        string
	key         string
	token       string
	contextName string
	configFile  string

	conn *connection // how the brokers are reached; set by setup

	brokerList []string   // --brokers, split; set by setup
	admin      *sdk.Admin // set by setup once the flags are parsed
	// sdkOpts are added to the options of the SDK's admin client,
	// producers and consumers; tests shorten their backoff.
	sdkOpts []sdk.Opt

	// minIndex is the highest position token (log index) a write of this
	// invocation was acknowledged at: its reads wait for it, so they show
	// those writes whichever broker answers.
	minIndex uint64
}

// wrote records that a write was acknowledged at index.
func (a *app) wrote(index uint64) { a.minIndex = max(a.minIndex, index) }

// errHelp ends a run that printed help: exit status 0.
var errHelp = errors.New("help requested")

// usageError is a command line mqctl cannot run: exit status 2.
type usageError struct {
	cmd string // "mqctl topic create"
	err error
}

func (e *usageError) Error() string { return e.err.Error() }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

// run executes one command line and returns the exit status.
func (a *app) run(ctx context.Context, args []string) int {
	err := a.dispatch(ctx, args)
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "mqctl: %v\nRun '%s -h' for usage.\n", err, ue.cmd)
		return 2
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		fmt.Fprintln(a.stderr, "mqctl: interrupted")
		return 130
	}
	fmt.Fprintf(a.stderr, "mqctl: %v\n", err)
	return 1
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	a.format, a.timeout = "text", 10*time.Second
	fs := flag.NewFlagSet("mqctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.globalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(a.stdout, usageText)
			return errHelp
		}
		return &usageError{cmd: "mqctl", err: err}
	}
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usageText)
		return usagef("mqctl", "no command given")
	}
	switch args[0] {
	case "help":
		fmt.Fprint(a.stdout, usageText)
		return errHelp
	case "topic", "topics":
		return a.topicCmd(ctx, args[1:])
	case "produce":
		return a.produceCmd(ctx, args[1:])
	case "consume":
		return a.consumeCmd(ctx, args[1:])
	case "cluster":
		return a.clusterCmd(ctx, args[1:])
	case "group", "groups":
		return a.groupCmd(ctx, args[1:])
	case "config":
		return a.configCmd(ctx, args[1:])
	case "whoami":
		return a.whoami(ctx, args[1:])
	case "token", "tokens":
		return a.tokenCmd(ctx, args[1:])
	case "acl", "acls":
		return a.aclCmd(ctx, args[1:])
	case "principal":
		return a.principalCmd(ctx, args[1:])
	case "top":
		return a.topCmd(ctx, args[1:])
	case "completion":
		return a.completionCmd(args[1:])
	case "__complete": // for the completion scripts
		return a.complete(ctx, args[1:])
	}
	return usagef("mqctl", "unknown command %q", args[0])
}

// globalFlags binds the global flags to a; every command's flag set has
// them too, so they may follow the command, but for those the command
// gives a meaning of its own (ownFlags).
func (a *app) globalFlags(fs *flag.FlagSet) {
	own := ownFlags(fs.Name())
	str := func(p *string, name, usage string) {
		if !slices.Contains(own, name) {
			fs.StringVar(p, name, *p, usage)
		}
	}
	str(&a.brokers, "brokers", "comma-separated broker API addresses `host:port,...`")
	str(&a.format, "format", "output `format`: text or json")
	fs.DurationVar(&a.timeout, "timeout", a.timeout, "time limit of one request, retries included")
	str(&a.ca, "ca", "PEM `file` of the CA that signed the brokers' certificates")
	str(&a.cert, "cert", "PEM `file` of the client certificate")
	str(&a.key, "key", "PEM `file` of the client certificate's key")
	str(&a.token, "token", "API `token`")
	str(&a.contextName, "context", "the config file's context `NAME` to use")
	str(&a.configFile, "config", "the config `file`")
}

// ownFlags are the global flags command (its flag set's name) uses for a
// meaning of its own: after `produce`, --key is the messages' key, so the
// client key goes before the command (mqctl --key F produce), in MQ_KEY or
// in the context.
func ownFlags(command string) []string {
	if command == "mqctl produce" {
		return []string{"key"}
	}
	return nil
}

// globalFlagNames are the flags every command takes.
var globalFlagNames = []string{"brokers", "format", "timeout", "ca", "cert", "key", "token", "context", "config"}

func isGlobalFlag(name string) bool { return slices.Contains(globalFlagNames, name) }

// cmdSpec describes a command for its flag set and its -h output.
type cmdSpec struct {
	name    string // "topic create"
	args    string // "NAME"
	summary string
}

// flagSet returns a flag set for a command, with the global flags.
func (a *app) flagSet(spec cmdSpec) *flag.FlagSet {
	fs := flag.NewFlagSet("mqctl "+spec.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The flag package calls Usage on every error; it prints to the
	// output, discarded but for -h.
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mqctl %s %s\n\n%s\n", spec.name, spec.args, spec.summary)
		printFlags(fs.Output(), fs)
	}
	a.globalFlags(fs)
	return fs
}

// printFlags lists a command's own flags (the global ones are in `mqctl help`).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if isGlobalFlag(f.Name) && !slices.Contains(ownFlags(fs.Name()), f.Name) {
			return
		}
		if first {
			fmt.Fprintln(w, "\nFlags:")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%-26s %s\n", line, usage)
	})
	fmt.Fprintln(w, "\nGlobal flags (--brokers, --format, --timeout, --ca, --cert, --key, --token, --context, --config): see 'mqctl help'.")
}

// parse parses a command's arguments, flags and positional arguments in
// any order ("--" ends the flags), checks that there are nargs positional
// arguments (-n: at least n) and builds the client.
func (a *app) parse(fs *flag.FlagSet, args []string, nargs int, argNames string) ([]string, error) {
	return a.parseWith(fs, args, nargs, argNames, true)
}

// parseWith is parse that builds the client only when connect is true.
func (a *app) parseWith(fs *flag.FlagSet, args []string, nargs int, argNames string, connect bool) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	cmd := fs.Name()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(a.stdout)
			fs.Usage()
			return nil, errHelp
		}
		return nil, &usageError{cmd: cmd, err: err}
	}
	if nargs < 0 && len(pos) >= -nargs { // -n: at least n
		nargs = len(pos)
	}
	if len(pos) != nargs {
		if len(pos) < max(nargs, -nargs) {
			return nil, usagef(cmd, "%s: missing %s", strings.TrimPrefix(cmd, "mqctl "), argNames)
		}
		return nil, usagef(cmd, "%s: unexpected argument %q", strings.TrimPrefix(cmd, "mqctl "), pos[nargs])
	}
	if !connect {
		return pos, a.checkFormat()
	}
	if err := a.setup(); err != nil {
		return nil, &usageError{cmd: cmd, err: err}
	}
	return pos, nil
}

// parseInterspersed is fs.Parse that also accepts flags after positional
// arguments. It returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		used := len(args) - len(rest)
		if used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// checkFormat checks --format.
func (a *app) checkFormat() error {
	if a.format != "text" && a.format != "json" {
		return fmt.Errorf("--format must be text or json, not %q", a.format)
	}
	return nil
}

// setup checks the global flags, resolves the connection (flags,
// environment, config file context) and builds the admin client.
func (a *app) setup() error {
	if err := a.checkFormat(); err != nil {
		return err
	}
	if a.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	conn, err := a.resolve()
	if err != nil {
		return err
	}
	a.conn, a.brokerList = conn, conn.brokers
	if len(a.brokerList) == 0 {
		return errors.New("--brokers: no broker given")
	}
	adm, err := sdk.NewAdmin(a.brokerList, a.opts()...)
	if err != nil {
		return fmt.Errorf("--brokers: %w", err)
	}
	a.admin = adm
	return nil
}

// opts are the SDK options of every client mqctl makes.
func (a *app) opts() []sdk.Opt {
	o := []sdk.Opt{sdk.WithRequestTimeout(a.timeout)}
	if a.conn != nil {
		o = append(o, a.conn.sdkOptions()...)
	}
	return append(o, a.sdkOpts...)
}

func (a *app) json() bool { return a.format == "json" }

// printJSON prints an API answer, indented, as the API sent it.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
