package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"sealmail/mailauth"
	"sealmail/mailstore"
)

var domainCmd = &command{name: "domain", short: "add, list or remove hosted mail domains", sub: []*command{
	{name: "add", short: "host a domain (an agency)", run: domainAdd},
	{name: "update", short: "set a domain's agency details (organ, code, official address)", run: domainUpdate},
	{name: "list", short: "list hosted domains", run: domainList.run},
	{name: "remove", short: "stop hosting a domain that has no accounts left", run: domainRemove},
}}

func domainAdd(ctx context.Context, args []string) error {
	f := newFlags("domain add", "DOMAIN [--organ-id ID] [--organ-name NAME]")
	domain := domainFlags(f)
	pos, s, err := f.parseOpen(args, 1, 1)
	if err != nil {
		return err
	}
	defer s.Close()
	name := mailstore.DomainName(pos[0])
	if err := s.AddDomain(ctx, domain(name)); err != nil {
		if errors.Is(err, mailstore.ErrExists) {
			return fmt.Errorf("domain %s is already hosted here; see 'sealmail domain list'", name)
		}
		return err
	}
	rrName, rrValue, err := mailauth.GenerateKey(filepath.Join(*f.data, dkimDir), name, mailauth.DefaultSelector)
	if err != nil && !errors.Is(err, fs.ErrExist) { // a key kept from before the domain was removed is reused
		// All or nothing: a domain without its key would sign nothing.
		if rerr := s.RemoveDomain(ctx, name); rerr != nil {
			return fmt.Errorf("creating the DKIM key of %s failed: %w; removing the domain again failed too: %v", name, err, rerr)
		}
		return fmt.Errorf("domain %s not added: creating its DKIM key failed: %w", name, err)
	}
	fmt.Printf("added domain %s\n", name)
	if err == nil {
		fmt.Printf("Publish this DNS record so that other servers can verify mail from %s:\n\n%s\n", name, mailauth.ZoneRecord(rrName, rrValue))
	}
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

func domainUpdate(ctx context.Context, args []string) error {
	f := newFlags("domain update", "DOMAIN [--organ-id ID] [--organ-name NAME] [--code NOTATION] [--official-address ADDRESS]\n\n"+
		"Only the details given change.")
	id := f.String("organ-id", "", "the agency's organ `ID`, e.g. 000.00.12.H10")
	organ := f.String("organ-name", "", "the agency's official `NAME`")
	code := f.String("code", "", "the code `NOTATION` (ký hiệu) of its documents, e.g. STTTT-VP")
	official := f.String("official-address", "", "the `ADDRESS` its documents are sent from, e.g. vanthu@DOMAIN")
	pos, s, err := f.parseOpen(args, 1, 1)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := s.Domain(ctx, pos[0])
	if errors.Is(err, mailstore.ErrNotFound) {
		return fmt.Errorf("domain %s is not hosted here; see 'sealmail domain list'", pos[0])
	}
	if err != nil {
		return err
	}
	set := map[string]*string{"organ-id": &d.OrganID, "organ-name": &d.OrganName, "code": &d.Code, "official-address": &d.OfficialAddress}
	given := map[string]*string{"organ-id": id, "organ-name": organ, "code": code, "official-address": official}
	changed := false
	f.Visit(func(fl *flag.Flag) {
		if p := set[fl.Name]; p != nil {
			*p, changed = strings.TrimSpace(*given[fl.Name]), true
		}
	})
	if !changed {
		return f.errorf("nothing to update; give --organ-id, --organ-name, --code or --official-address")
	}
	// The seal certifies the official address, and a seal names one domain.
	if a := d.OfficialAddress; a != "" && !strings.HasSuffix(strings.ToLower(a), "@"+d.Name) {
		return fmt.Errorf("--official-address %s is not an address of %s", a, d.Name)
	}
	if err := s.UpdateDomain(ctx, d); err != nil {
		return err
	}
	fmt.Printf("updated domain %s\n", d.Name)
	return nil
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

var domainList = listCommand[mailstore.Domain, domainJSON]{
	name:     "domain list",
	jsonHelp: "print JSON",
	fetch:    (*mailstore.Store).Domains,
	toJSON:   func(d mailstore.Domain) domainJSON { return domainJSON(d) },
	header:   "DOMAIN\tORGAN ID\tORGAN NAME",
	row: func(d mailstore.Domain) string {
		return fmt.Sprintf("%s\t%s\t%s", d.Name, d.OrganID, d.OrganName)
	},
}

func domainRemove(ctx context.Context, args []string) error {
	f := newFlags("domain remove", "DOMAIN")
	pos, s, err := f.parseOpen(args, 1, 1)
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
