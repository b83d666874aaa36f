package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Shell completion. `mqctl completion bash|zsh|fish` prints a script that
// asks mqctl itself what fits the word being completed: the hidden command
// `mqctl __complete WORD...` (the words after mqctl, the last one the
// partial word, maybe empty) prints one candidate per line. Commands come
// from the command table below; each command's flags from its own flag set
// (its -h output), so they cannot drift; topic, group, node and context
// names from the brokers and the config file, when they answer quickly.

// argKind is what a positional argument or a flag value names.
type argKind int

const (
	argNone argKind = iota
	argTopic
	argGroup
	argNode
	argContext
	argFile
	argShell
)

// command is one command line of the table: its words and what its
// positional arguments name.
type command struct {
	path string
	args []argKind
}

// commandTable lists every command mqctl runs (the usage text's list).
func commandTable() []command {
	return []command{
		{"topic create", nil}, {"topic list", nil}, {"topic describe", []argKind{argTopic}}, {"topic delete", []argKind{argTopic}},
		{"produce", []argKind{argTopic}}, {"consume", []argKind{argTopic}},
		{"group list", nil}, {"group describe", []argKind{argGroup}}, {"group reset-offsets", []argKind{argGroup}},
		{"cluster status", nil}, {"cluster transfer-leadership", nil},
		{"top", nil},
		{"whoami", nil},
		{"token create", nil}, {"token list", nil}, {"token revoke", nil},
		{"acl list", nil}, {"acl add", nil}, {"acl remove", nil},
		{"principal groups get", nil}, {"principal groups set", nil},
		{"config view", nil}, {"config use-context", []argKind{argContext}},
		{"completion", []argKind{argShell}},
		{"help", nil},
	}
}

// flagValues says what a flag's value names, where completion can help.
func flagValues(flag string) (argKind, []string) {
	switch flag {
	case "topic":
		return argTopic, nil
	case "group":
		return argGroup, nil
	case "to":
		return argNode, nil
	case "context":
		return argContext, nil
	case "file", "ca", "cert", "key", "config":
		return argFile, nil
	case "format":
		return argNone, []string{"text", "json"}
	case "compression":
		return argNone, []string{"none", "gzip", "snappy", "s2", "zstd"}
	case "operation":
		return argNone, []string{"all", "read", "write", "produce", "consume", "describe", "create", "delete", "alter", "cluster_action"}
	}
	return argNone, nil
}

// filesDirective, printed alone, asks the shell to complete file names.
const filesDirective = ":files"

// flagSpec is a flag of a command: its name and whether it takes a value.
type flagSpec struct {
	name  string
	value bool
}

var usageFlag = regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+)( \S+)?`)

// commandFlags returns a command's flags from its -h output, global flags
// included.
func (a *app) commandFlags(ctx context.Context, path string) []flagSpec {
	sub := &app{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
	sub.run(ctx, append(strings.Fields(path), "-h"))
	var out []flagSpec
	for _, m := range usageFlag.FindAllStringSubmatch(sub.stdout.(*bytes.Buffer).String(), -1) {
		out = append(out, flagSpec{m[1], m[2] != ""})
	}
	for _, g := range globalFlagNames {
		if !slices.ContainsFunc(out, func(f flagSpec) bool { return f.name == g }) {
			out = append(out, flagSpec{g, true})
		}
	}
	return out
}

// complete prints the candidates for the last of words.
func (a *app) complete(ctx context.Context, words []string) error {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, prev := words[len(words)-1], words[:len(words)-1]
	// Global flags given so far, for the lookups' connection.
	var globals []string
	// Walk the words before: command words, flags (with their values) and
	// positional arguments.
	var path []string
	var positional []string
	var leaf *command
	table := commandTable()
	flags := a.commandFlags(ctx, "")
	expectValue := ""
	for _, w := range prev {
		if expectValue != "" {
			if isGlobalFlag(expectValue) {
				globals = append(globals, "--"+expectValue, w)
			}
			expectValue = ""
			continue
		}
		if strings.HasPrefix(w, "-") && w != "-" && w != "--" {
			name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if hasValue {
				if isGlobalFlag(name) {
					globals = append(globals, w)
				}
				continue
			}
			for _, f := range flags {
				if f.name == name && f.value {
					expectValue = name
				}
			}
			continue
		}
		if leaf != nil {
			positional = append(positional, w)
			continue
		}
		path = append(path, w)
		p := strings.Join(path, " ")
		for i := range table {
			if table[i].path == p {
				leaf = &table[i]
				flags = a.commandFlags(ctx, p)
			}
		}
	}
	var cands []string
	var kind argKind
	switch {
	case expectValue != "":
		var fixed []string
		kind, fixed = flagValues(expectValue)
		cands = fixed
	case strings.HasPrefix(cur, "-"):
		for _, f := range flags {
			cands = append(cands, "--"+f.name)
		}
	case leaf == nil:
		prefix := strings.Join(path, " ")
		seen := map[string]bool{}
		for _, c := range table {
			rest, ok := strings.CutPrefix(c.path, prefix)
			if prefix != "" && (!ok || !strings.HasPrefix(rest, " ")) {
				continue
			}
			next := strings.Fields(rest)[0]
			if !seen[next] {
				seen[next] = true
				cands = append(cands, next)
			}
		}
	case len(positional) < len(leaf.args):
		kind = leaf.args[len(positional)]
	}
	switch kind {
	case argFile:
		fmt.Fprintln(a.stdout, filesDirective)
		return nil
	case argShell:
		cands = []string{"bash", "zsh", "fish"}
	case argContext:
		if fc, _, err := a.loadConfig(); err == nil {
			for _, c := range fc.Contexts {
				cands = append(cands, c.Name)
			}
		}
	case argTopic, argGroup, argNode:
		cands = a.remoteNames(ctx, globals, kind)
	}
	for _, c := range cands {
		if strings.HasPrefix(c, cur) {
			fmt.Fprintln(a.stdout, c)
		}
	}
	return nil
}

// remoteNames asks the brokers for topic, group or node names, giving up
// quickly: completion must not hang on an unreachable group.
func (a *app) remoteNames(ctx context.Context, globals []string, kind argKind) []string {
	fs := a.flagSet(cmdSpec{name: "__complete"})
	if fs.Parse(globals) != nil {
		return nil
	}
	a.timeout = 2 * time.Second
	if a.setup() != nil {
		return nil
	}
	defer a.admin.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out []string
	switch kind {
	case argTopic:
		ts, _ := a.admin.ListTopics(ctx)
		for _, t := range ts {
			out = append(out, t.Name)
		}
	case argGroup:
		gs, _ := a.admin.ListGroups(ctx)
		for _, g := range gs {
			out = append(out, g.Group)
		}
	case argNode:
		if cs, err := a.admin.ClusterStatus(ctx); err == nil {
			for _, n := range cs.Nodes {
				out = append(out, n.ID)
			}
		}
	}
	return out
}

// completionCmd prints the completion script of a shell.
func (a *app) completionCmd(args []string) error {
	fs := a.flagSet(cmdSpec{"completion", "bash|zsh|fish",
		"Prints a shell completion script. Load it with\n" +
			"  bash: source <(mqctl completion bash)      (or save it in /etc/bash_completion.d/mqctl)\n" +
			"  zsh:  source <(mqctl completion zsh)       (or save it as _mqctl in a directory of $fpath)\n" +
			"  fish: mqctl completion fish > ~/.config/fish/completions/mqctl.fish"})
	pos, err := a.parseLocal(fs, args, 1, "SHELL")
	if err != nil {
		return err
	}
	script, ok := map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}[pos[0]]
	if !ok {
		return usagef("mqctl completion", "completion: unknown shell %q: want bash, zsh or fish", pos[0])
	}
	_, err = fmt.Fprint(a.stdout, script)
	return err
}

const bashCompletion = `# bash completion for mqctl: source <(mqctl completion bash)
_mqctl() {
	local cur words cword
	cur="${COMP_WORDS[COMP_CWORD]}"
	local IFS=$'\n'
	local out
	out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
	if [[ "$out" == ":files" ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		compopt -o filenames 2>/dev/null
		return
	fi
	COMPREPLY=($(compgen -W "$out" -- "$cur"))
}
complete -F _mqctl mqctl
`

const zshCompletion = `#compdef mqctl
# zsh completion for mqctl: source <(mqctl completion zsh)
_mqctl() {
	local -a cands
	local out
	out=$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null) || return
	if [[ "$out" == ":files" ]]; then
		_files
		return
	fi
	cands=("${(@f)out}")
	compadd -- $cands
}
if [[ "$funcstack[1]" == "_mqctl" ]]; then
	_mqctl "$@"
else
	compdef _mqctl mqctl
fi
`

const fishCompletion = `# fish completion for mqctl: mqctl completion fish > ~/.config/fish/completions/mqctl.fish
function __mqctl_complete
	set -l words (commandline -opc)
	set -l cur (commandline -ct)
	set -l out (mqctl __complete $words[2..-1] "$cur" 2>/dev/null)
	if test "$out" = ":files"
		__fish_complete_path "$cur"
		return
	end
	printf '%s\n' $out
end
complete -c mqctl -f -a '(__mqctl_complete)'
`
