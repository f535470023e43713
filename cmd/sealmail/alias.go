package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"sealmail/mailstore"
)

var aliasCmd = &command{name: "alias", short: "manage aliases (lists and forwarding addresses)", sub: []*command{
	{name: "add", short: "add targets to an alias, creating it", run: aliasAdd},
	{name: "list", short: "list aliases and their targets", run: aliasList},
	{name: "remove", short: "remove an alias with all its targets", run: aliasRemove},
}}

func aliasAdd(ctx context.Context, args []string) error {
	f := newFlags("alias add", "ADDRESS TARGET...\n\n"+
		"ADDRESS may be @DOMAIN, the domain's catch-all. TARGETs are accounts, other\n"+
		"aliases, or addresses elsewhere (forwarded).")
	pos, err := f.parse(args, 2, -1)
	if err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := checkDomain(ctx, s, aliasDomainAddress(pos[0])); err != nil {
		return err
	}
	if err := s.AddAlias(ctx, pos[0], pos[1:]); err != nil {
		if errors.Is(err, mailstore.ErrExists) {
			return fmt.Errorf("%s is an account; an alias needs an address of its own", pos[0])
		}
		return err
	}
	fmt.Printf("%s now goes to %s\n", pos[0], strings.Join(pos[1:], ", "))
	return nil
}

// aliasDomainAddress turns a catch-all "@domain" into an address of that domain.
func aliasDomainAddress(a string) string {
	if strings.HasPrefix(a, "@") {
		return "postmaster" + a
	}
	return a
}

// aliasJSON is an alias in 'alias list --json'; scripts rely on its keys.
type aliasJSON struct {
	Address string   `json:"address"`
	Targets []string `json:"targets"`
}

func aliasList(ctx context.Context, args []string) error {
	f := newFlags("alias list", "[--json]")
	asJSON := f.Bool("json", false, "print JSON")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	as, err := s.Aliases(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]aliasJSON, len(as))
		for i, a := range as {
			out[i] = aliasJSON(a)
		}
		return printJSON(out)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ALIAS\tTARGETS")
	for _, a := range as {
		fmt.Fprintf(w, "%s\t%s\n", a.Address, strings.Join(a.Targets, ", "))
	}
	return w.Flush()
}

func aliasRemove(ctx context.Context, args []string) error {
	f := newFlags("alias remove", "ADDRESS")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.RemoveAlias(ctx, pos[0]); err != nil {
		if errors.Is(err, mailstore.ErrNotFound) {
			return fmt.Errorf("there is no alias %s; see 'sealmail alias list'", pos[0])
		}
		return err
	}
	fmt.Printf("removed alias %s\n", pos[0])
	return nil
}
