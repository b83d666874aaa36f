package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	sdk "github.com/ledgermq/ledgermq/client"
	"gopkg.in/yaml.v3"
)

// The config file: named contexts, as kubectl's kubeconfig, each saying
// how to reach one broker group.
//
//	current-context: prod
//	contexts:
//	  - name: prod
//	    brokers: [b1.example.com:7001, b2.example.com:7001]   # or "b1:7001,b2:7001"
//	    ca: ca.crt          # relative paths are relative to this file
//	    cert: alice.crt
//	    key: alice.key
//	    token: lmq_<id>_<secret>
//
// Each setting is taken from its flag, else its environment variable, else
// the context (--context, else current-context), else the default.

// fileConfig is the config file.
type fileConfig struct {
	CurrentContext string        `yaml:"current-context,omitempty" json:"current-context,omitempty"`
	Contexts       []contextConf `yaml:"contexts" json:"contexts"`
}

// contextConf is one named context.
type contextConf struct {
	Name    string     `yaml:"name" json:"name"`
	Brokers brokerList `yaml:"brokers,omitempty" json:"brokers,omitempty"`
	CA      string     `yaml:"ca,omitempty" json:"ca,omitempty"`
	Cert    string     `yaml:"cert,omitempty" json:"cert,omitempty"`
	Key     string     `yaml:"key,omitempty" json:"key,omitempty"`
	Token   string     `yaml:"token,omitempty" json:"token,omitempty"`
}

// brokerList is a YAML list of addresses or one comma-separated string.
type brokerList []string

func (b *brokerList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*b = splitList(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*b = l
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// configPath is the config file to use and whether it was named
// (--config, MQ_CONFIG): a named file must exist, the default one may not.
func (a *app) configPath() (string, bool) {
	switch {
	case a.configFile != "":
		return a.configFile, true
	case a.getenv("MQ_CONFIG") != "":
		return a.getenv("MQ_CONFIG"), true
	}
	dir := a.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		dir = filepath.Join(a.getenv("HOME"), ".config")
	}
	return filepath.Join(dir, "ledgermq", "mqctl.yaml"), false
}

// loadConfig reads the config file; a missing default file is an empty one.
func (a *app) loadConfig() (*fileConfig, string, error) {
	path, named := a.configPath()
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !named:
		return &fileConfig{}, path, nil
	case err != nil:
		return nil, path, fmt.Errorf("config file: %w", err)
	}
	var fc fileConfig
	if err := yaml.Unmarshal(b, &fc); err != nil {
		return nil, path, fmt.Errorf("config file %s: %w", path, err)
	}
	seen := map[string]bool{}
	for _, c := range fc.Contexts {
		if c.Name == "" || seen[c.Name] {
			return nil, path, fmt.Errorf("config file %s: context names must be given and unique (%q)", path, c.Name)
		}
		seen[c.Name] = true
	}
	return &fc, path, nil
}

// context returns the context --context names, else current-context; nil
// when neither is set.
func (a *app) context(fc *fileConfig, path string) (*contextConf, error) {
	name := a.contextName
	if name == "" {
		name = fc.CurrentContext
	}
	if name == "" {
		return nil, nil
	}
	for i := range fc.Contexts {
		if c := &fc.Contexts[i]; c.Name == name {
			// Files named in a context are relative to the config file.
			for _, p := range []*string{&c.CA, &c.Cert, &c.Key} {
				if *p != "" && !filepath.IsAbs(*p) {
					*p = filepath.Join(filepath.Dir(path), *p)
				}
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("context %q is not in %s", name, path)
}

// connection is how mqctl reaches the brokers, resolved from flags,
// environment, context and defaults.
type connection struct {
	brokers         []string
	ca, cert, key   string
	token           string
	tls             *tls.Config // nil: plain HTTP unless a broker says https://
	useTLS          bool
	contextName     string // the context used, "" for none
	brokersFromFlag bool
}

// resolve works out the connection settings: flag > env > context >
// default.
func (a *app) resolve() (*connection, error) {
	fc, path, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	ctx, err := a.context(fc, path)
	if err != nil {
		return nil, err
	}
	var cc contextConf
	conn := &connection{}
	if ctx != nil {
		cc, conn.contextName = *ctx, ctx.Name
	}
	pick := func(flagVal, env, fromContext, def string) string {
		for _, v := range []string{flagVal, a.getenv(env), fromContext} {
			if v != "" {
				return v
			}
		}
		return def
	}
	a.brokers = pick(a.brokers, "MQ_BROKERS", strings.Join(cc.Brokers, ","), defaultBrokers)
	conn.brokers = splitList(a.brokers)
	conn.ca = pick(a.ca, "MQ_CA", cc.CA, "")
	conn.cert = pick(a.cert, "MQ_CERT", cc.Cert, "")
	conn.key = pick(a.key, "MQ_KEY", cc.Key, "")
	conn.token = pick(a.token, "MQ_TOKEN", cc.Token, "")
	if (conn.cert == "") != (conn.key == "") {
		return nil, errors.New("--cert and --key go together: give both or neither")
	}
	if conn.ca == "" && conn.cert == "" {
		return conn, nil
	}
	conn.useTLS = true
	conn.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if conn.ca != "" {
		pem, err := os.ReadFile(conn.ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		conn.tls.RootCAs = x509.NewCertPool()
		if !conn.tls.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca: %s holds no PEM certificate", conn.ca)
		}
	}
	if conn.cert != "" {
		kp, err := tls.LoadX509KeyPair(conn.cert, conn.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		conn.tls.Certificates = []tls.Certificate{kp}
	}
	return conn, nil
}

// sdkOptions are the SDK options conn asks for.
func (c *connection) sdkOptions() []sdk.Opt {
	var o []sdk.Opt
	if c.useTLS {
		o = append(o, sdk.WithTLS(c.tls))
	}
	if c.token != "" {
		o = append(o, sdk.WithToken(c.token))
	}
	return o
}

func (a *app) configCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("mqctl", "config: missing subcommand: view or use-context")
	}
	switch args[0] {
	case "view":
		return a.configView(args[1:])
	case "use-context":
		return a.useContext(args[1:])
	}
	return usagef("mqctl", "config: unknown subcommand %q: want view or use-context", args[0])
}

// parseLocal parses a command that makes no request: no client is built.
func (a *app) parseLocal(fs *flag.FlagSet, args []string, nargs int, argNames string) ([]string, error) {
	return a.parseWith(fs, args, nargs, argNames, false)
}

func (a *app) configView(args []string) error {
	fs := a.flagSet(cmdSpec{"config view", "",
		"Shows the config file (tokens redacted) and the context in use."})
	if _, err := a.parseLocal(fs, args, 0, ""); err != nil {
		return err
	}
	fc, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	for i := range fc.Contexts {
		fc.Contexts[i].Token = redact(fc.Contexts[i].Token)
	}
	if a.json() {
		return printJSON(a.stdout, fc)
	}
	current := a.contextName
	if current == "" {
		current = fc.CurrentContext
	}
	fmt.Fprintf(a.stdout, "Config file %s.\n", path)
	if len(fc.Contexts) == 0 {
		fmt.Fprintln(a.stdout, "No contexts.")
		return nil
	}
	fmt.Fprintln(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CURRENT\tNAME\tBROKERS\tCA\tCERT\tKEY\tTOKEN")
	for _, c := range fc.Contexts {
		mark := ""
		if c.Name == current {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, c.Name, orDash(strings.Join(c.Brokers, ",")),
			orDash(c.CA), orDash(c.Cert), orDash(c.Key), orDash(c.Token))
	}
	return tw.Flush()
}

// redact keeps a token's id (lmq_<id>_) and hides its secret.
func redact(tok string) string {
	if tok == "" {
		return ""
	}
	if rest, ok := strings.CutPrefix(tok, "lmq_"); ok {
		if id, _, ok := strings.Cut(rest, "_"); ok {
			return "lmq_" + id + "_REDACTED"
		}
	}
	return "REDACTED"
}

func (a *app) useContext(args []string) error {
	fs := a.flagSet(cmdSpec{"config use-context", "NAME",
		"Makes NAME the current context of the config file."})
	pos, err := a.parseLocal(fs, args, 1, "context NAME")
	if err != nil {
		return err
	}
	name := pos[0]
	fc, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	found := false
	for _, c := range fc.Contexts {
		found = found || c.Name == name
	}
	if !found {
		return fmt.Errorf("context %q is not in %s", name, path)
	}
	if err := setCurrentContext(path, name); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Switched to context %q.\n", name)
	return nil
}

// setCurrentContext rewrites current-context in the file at path, keeping
// the rest as it is (comments too), atomically and with the file's mode.
func setCurrentContext(path, name string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: not a YAML mapping", path)
	}
	m := doc.Content[0]
	set := false
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "current-context" {
			m.Content[i+1].SetString(name)
			set = true
		}
	}
	if !set {
		k, v := &yaml.Node{}, &yaml.Node{}
		k.SetString("current-context")
		v.SetString(name)
		m.Content = append([]*yaml.Node{k, v}, m.Content...)
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mqctl-*.yaml")
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return fmt.Errorf("config file: %w", err)
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return fmt.Errorf("config file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	return nil
}
