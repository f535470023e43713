package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"sealmail/mailstore"
)

var domainCmd = &command{name: "domain", short: "add, list or remove hosted mail domains", sub: []*command{
	{name: "add", short: "host a domain (an agency)", run: domainAdd},
	{name: "list", short: "list hosted domains", run: domainList},
	{name: "remove", short: "stop hosting a domain that has no accounts left", run: domainRemove},
}}

func domainAdd(ctx context.Context, args []string) error {
	f := newFlags("domain add", "DOMAIN [--organ-id ID] [--organ-name NAME]")
	domain := domainFlags(f)
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.AddDomain(ctx, domain(pos[0])); err != nil {
		if errors.Is(err, mailstore.ErrExists) {
			return fmt.Errorf("domain %s is already hosted here; see 'sealmail domain list'", pos[0])
		}
		return err
	}
	fmt.Printf("added domain %s\n", pos[0])
	return nil
}

// domainFlags adds the flags describing a domain's agency to f. The function
// it returns, called after parsing, makes the domain.
func domainFlags(f *flags) func(name string) mailstore.Domain {
	id := f.String("organ-id", "", "the agency's organ `ID`, e.g. 000.00.12.H10")
	organ := f.String("organ-name", "", "the agency's official `NAME`")
	return func(name string) mailstore.Domain {
		return mailstore.Domain{Name: name, OrganID: *id, OrganName: *organ}
	}
}

// domainJSON is a domain in 'domain list --json'; scripts rely on its keys.
type domainJSON struct {
	Name            string    `json:"name"`
	OrganID         string    `json:"organ_id"`
	OrganName       string    `json:"organ_name"`
	Code            string    `json:"code"`
	OfficialAddress string    `json:"official_address"`
	Created         time.Time `json:"created"`
}

func domainList(ctx context.Context, args []string) error {
	f := newFlags("domain list", "[--json]")
	asJSON := f.Bool("json", false, "print JSON")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	ds, err := s.Domains(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]domainJSON, len(ds))
		for i, d := range ds {
			out[i] = domainJSON(d)
		}
		return printJSON(out)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "DOMAIN\tORGAN ID\tORGAN NAME")
	for _, d := range ds {
		fmt.Fprintf(w, "%s\t%s\t%s\n", d.Name, d.OrganID, d.OrganName)
	}
	return w.Flush()
}

func domainRemove(ctx context.Context, args []string) error {
	f := newFlags("domain remove", "DOMAIN")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.RemoveDomain(ctx, pos[0]); err != nil {
		if errors.Is(err, mailstore.ErrNotFound) {
			return fmt.Errorf("domain %s is not hosted here; see 'sealmail domain list'", pos[0])
		}
		return err
	}
	fmt.Printf("removed domain %s\n", pos[0])
	return nil
}
