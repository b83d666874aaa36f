package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	sdk "github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/wire"
)

// The security commands: whoami, token, acl, principal (docs/security.md).

func (a *app) whoami(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"whoami", "", "Shows the principal the brokers take you for, its groups and whether it is a superuser."})
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	var w *wire.WhoAmI
	if err := a.call(ctx, func(ctx context.Context) (err error) { w, err = a.admin.WhoAmI(ctx); return err }); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, w)
	}
	fmt.Fprintln(a.stdout, w.Principal)
	if len(w.Groups) > 0 {
		fmt.Fprintf(a.stdout, "Groups: %s\n", strings.Join(w.Groups, ", "))
	}
	if w.Superuser {
		fmt.Fprintln(a.stdout, "Superuser: allowed everything.")
	}
	return nil
}

func (a *app) tokenCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("mqctl", "token: missing subcommand: create, list or revoke")
	}
	switch args[0] {
	case "create":
		return a.tokenCreate(ctx, args[1:])
	case "list", "ls":
		return a.tokenList(ctx, args[1:])
	case "revoke":
		return a.tokenRevoke(ctx, args[1:])
	}
	return usagef("mqctl", "token: unknown subcommand %q: want create, list or revoke", args[0])
}

func (a *app) tokenCreate(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"token create", "--principal User:NAME [--description D]",
		"Creates an API token for a principal and prints it: it is shown this once."})
	principal := fs.String("principal", "", "the `User:NAME` the token stands for (required)")
	desc := fs.String("description", "", "what the token is for, `D`")
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	if !strings.HasPrefix(*principal, "User:") || len(*principal) == len("User:") {
		return usagef(fs.Name(), "token create: --principal must be User:NAME, not %q", *principal)
	}
	var ti *wire.TokenInfo
	err := a.call(ctx, func(ctx context.Context) (err error) {
		ti, err = a.admin.CreateToken(ctx, *principal, *desc)
		return err
	})
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, ti)
	}
	fmt.Fprintf(a.stdout, "Created token %s for %s. It is shown this once; keep it secret:\n%s\n", ti.ID, ti.Principal, ti.Token)
	return nil
}

func (a *app) tokenList(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"token list", "", "Lists the API tokens (never their secrets)."})
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	var ts []wire.TokenInfo
	if err := a.call(ctx, func(ctx context.Context) (err error) { ts, err = a.admin.ListTokens(ctx); return err }); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, wire.TokenList{Tokens: ts})
	}
	if len(ts) == 0 {
		fmt.Fprintln(a.stdout, "No tokens.")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRINCIPAL\tCREATED\tDESCRIPTION")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Principal, t.Created.UTC().Format(time.RFC3339), orDash(t.Description))
	}
	return tw.Flush()
}

func (a *app) tokenRevoke(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"token revoke", "ID", "Revokes an API token: every broker refuses it within a second."})
	pos, err := a.parse(fs, args, 1, "token ID")
	if err != nil {
		return err
	}
	if err := a.call(ctx, func(ctx context.Context) error { return a.admin.RevokeToken(ctx, pos[0]) }); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, wire.TokenRevoked{ID: pos[0], Revoked: true})
	}
	fmt.Fprintf(a.stdout, "Revoked token %s.\n", pos[0])
	return nil
}

func (a *app) aclCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("mqctl", "acl: missing subcommand: list, add or remove")
	}
	switch args[0] {
	case "list", "ls":
		return a.aclList(ctx, args[1:])
	case "add":
		return a.aclChange(ctx, args[1:], true)
	case "remove", "rm":
		return a.aclChange(ctx, args[1:], false)
	}
	return usagef("mqctl", "acl: unknown subcommand %q: want list, add or remove", args[0])
}

// resourceFlags are --topic, --group and --cluster: at most one.
type resourceFlags struct {
	topic, group string
	cluster      bool
}

func (r *resourceFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&r.topic, "topic", "", "the topic `T` (with --prefixed: topics starting with T; * every topic)")
	fs.StringVar(&r.group, "group", "", "the consumer group `G` (with --prefixed: groups starting with G; * every group)")
	fs.BoolVar(&r.cluster, "cluster", false, "the cluster")
}

// resource returns the resource type and name given, "" when none.
func (r *resourceFlags) resource() (typ, name string, err error) {
	n := 0
	for _, set := range []bool{r.topic != "", r.group != "", r.cluster} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return "", "", fmt.Errorf("give one of --topic, --group and --cluster")
	case r.topic != "":
		return wire.ResourceTopic, r.topic, nil
	case r.group != "":
		return wire.ResourceGroup, r.group, nil
	case r.cluster:
		return wire.ResourceCluster, "*", nil
	}
	return "", "", nil
}

func (a *app) aclList(ctx context.Context, args []string) error {
	fs := a.flagSet(cmdSpec{"acl list", "[--principal P] [--topic T | --group G | --cluster]",
		"Lists the ACLs, all or those of a principal and/or resource."})
	principal := fs.String("principal", "", "only the ACLs of `P` (User:NAME, Group:NAME or User:*)")
	var rf resourceFlags
	rf.bind(fs)
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	typ, name, err := rf.resource()
	if err != nil {
		return usagef(fs.Name(), "acl list: %v", err)
	}
	f := sdk.ACLFilter{Principal: *principal, ResourceType: typ}
	if typ != wire.ResourceCluster {
		f.Resource = name
	}
	var acls []wire.ACL
	if err := a.call(ctx, func(ctx context.Context) (err error) { acls, err = a.admin.ListACLs(ctx, f); return err }); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, wire.ACLList{ACLs: acls})
	}
	return writeACLs(a.stdout, acls)
}

func writeACLs(w io.Writer, acls []wire.ACL) error {
	if len(acls) == 0 {
		fmt.Fprintln(w, "No ACLs.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRINCIPAL\tRESOURCE\tPATTERN\tOPERATION\tEFFECT")
	for _, c := range acls {
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\n", c.Principal, c.ResourceType, c.Resource, c.Pattern, c.Operation, c.Effect)
	}
	return tw.Flush()
}

var operations = []string{wire.OpProduce, wire.OpConsume, wire.OpDescribe, wire.OpCreate, wire.OpDelete, wire.OpAlter, wire.OpAdmin, wire.OpAll}

func (a *app) aclChange(ctx context.Context, args []string, add bool) error {
	verb, summary := "remove", "Removes an ACL (the one matching every flag)."
	if add {
		verb, summary = "add", "Adds an ACL: allows (or with --deny denies) a principal an operation on a\n"+
			"resource. Deny beats allow; without a matching allow, a request is denied."
	}
	fs := a.flagSet(cmdSpec{"acl " + verb, "--principal P (--topic T | --group G | --cluster) [--prefixed] --operation OP [--deny]", summary})
	principal := fs.String("principal", "", "`P`: User:NAME, Group:NAME or User:* (required)")
	var rf resourceFlags
	rf.bind(fs)
	prefixed := fs.Bool("prefixed", false, "the name is a prefix")
	op := fs.String("operation", "", "`OP`: "+strings.Join(operations, ", ")+" (required)")
	deny := fs.Bool("deny", false, "deny rather than allow")
	if _, err := a.parse(fs, args, 0, ""); err != nil {
		return err
	}
	typ, name, err := rf.resource()
	switch {
	case err != nil:
		return usagef(fs.Name(), "acl %s: %v", verb, err)
	case typ == "":
		return usagef(fs.Name(), "acl %s: give one of --topic, --group and --cluster", verb)
	case *principal == "":
		return usagef(fs.Name(), "acl %s: --principal is required", verb)
	case !slices.Contains(operations, *op):
		return usagef(fs.Name(), "acl %s: --operation must be one of %s, not %q", verb, strings.Join(operations, ", "), *op)
	}
	acl := wire.ACL{Principal: *principal, ResourceType: typ, Resource: name, Pattern: wire.PatternLiteral,
		Operation: *op, Effect: wire.EffectAllow}
	if *prefixed {
		acl.Pattern = wire.PatternPrefixed
	}
	if *deny {
		acl.Effect = wire.EffectDeny
	}
	what := fmt.Sprintf("%s %s %s on %s %s", acl.Effect, acl.Principal, acl.Operation, acl.ResourceType, acl.Resource)
	if acl.Pattern == wire.PatternPrefixed {
		what += "*"
	}
	if add {
		var created bool
		if err := a.call(ctx, func(ctx context.Context) (err error) { created, err = a.admin.AddACL(ctx, acl); return err }); err != nil {
			return err
		}
		if a.json() {
			return printJSON(a.stdout, acl)
		}
		if created {
			fmt.Fprintf(a.stdout, "Added ACL: %s.\n", what)
		} else {
			fmt.Fprintf(a.stdout, "The ACL exists already: %s.\n", what)
		}
		return nil
	}
	var n int
	if err := a.call(ctx, func(ctx context.Context) (err error) { n, err = a.admin.RemoveACLs(ctx, acl); return err }); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, wire.ACLDeleted{Deleted: n})
	}
	if n == 0 {
		fmt.Fprintf(a.stdout, "No such ACL: %s.\n", what)
	} else {
		fmt.Fprintf(a.stdout, "Removed ACL: %s.\n", what)
	}
	return nil
}

func (a *app) principalCmd(ctx context.Context, args []string) error {
	if len(args) < 2 || args[0] != "groups" || (args[1] != "get" && args[1] != "set") {
		return usagef("mqctl", "principal: want 'principal groups get User:NAME' or 'principal groups set User:NAME [Group:G...]'")
	}
	if args[1] == "get" {
		fs := a.flagSet(cmdSpec{"principal groups get", "User:NAME", "Shows the groups a principal is a member of."})
		pos, err := a.parse(fs, args[2:], 1, "principal User:NAME")
		if err != nil {
			return err
		}
		var groups []string
		if err := a.call(ctx, func(ctx context.Context) (err error) { groups, err = a.admin.PrincipalGroups(ctx, pos[0]); return err }); err != nil {
			return err
		}
		return a.printGroups(pos[0], groups)
	}
	fs := a.flagSet(cmdSpec{"principal groups set", "User:NAME [Group:G...]",
		"Makes a principal a member of exactly the groups given (none: of no group)."})
	pos, err := a.parse(fs, args[2:], -1, "principal User:NAME")
	if err != nil {
		return err
	}
	for _, g := range pos[1:] {
		if !strings.HasPrefix(g, "Group:") || len(g) == len("Group:") {
			return usagef(fs.Name(), "principal groups set: %q is not Group:NAME", g)
		}
	}
	if err := a.call(ctx, func(ctx context.Context) error { return a.admin.SetPrincipalGroups(ctx, pos[0], pos[1:]) }); err != nil {
		return err
	}
	return a.printGroups(pos[0], pos[1:])
}

func (a *app) printGroups(principal string, groups []string) error {
	if a.json() {
		return printJSON(a.stdout, wire.PrincipalGroups{Principal: principal, Groups: append([]string{}, groups...)})
	}
	if len(groups) == 0 {
		fmt.Fprintf(a.stdout, "%s is in no group.\n", principal)
		return nil
	}
	fmt.Fprintf(a.stdout, "%s is in %s.\n", principal, strings.Join(groups, ", "))
	return nil
}
