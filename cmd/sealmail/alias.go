package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"sealmail/mailstore"
)

var aliasCmd = &command{name: "alias", short: "manage aliases (lists and forwarding addresses)", sub: []*command{
	{name: "add", short: "add targets to an alias, creating it", run: aliasAdd},
	{name: "list", short: "list aliases and their targets", run: aliasList.run},
	{name: "remove", short: "remove an alias with all its targets", run: aliasRemove},
}}

func aliasAdd(ctx context.Context, args []string) error {
	f := newFlags("alias add", "ADDRESS TARGET...\n\n"+
		"ADDRESS may be @DOMAIN, the domain's catch-all. TARGETs are accounts, other\n"+
		"aliases, or addresses elsewhere (forwarded).")
	pos, s, err := f.parseOpen(args, 2, -1)
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

var aliasList = listCommand[mailstore.Alias, aliasJSON]{
	name:     "alias list",
	jsonHelp: "print JSON",
	fetch:    (*mailstore.Store).Aliases,
	toJSON:   func(a mailstore.Alias) aliasJSON { return aliasJSON(a) },
	header:   "ALIAS\tTARGETS",
	row: func(a mailstore.Alias) string {
		return fmt.Sprintf("%s\t%s", a.Address, strings.Join(a.Targets, ", "))
	},
}

func aliasRemove(ctx context.Context, args []string) error {
	f := newFlags("alias remove", "ADDRESS")
	pos, s, err := f.parseOpen(args, 1, 1)
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
