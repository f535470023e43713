package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sealmail/certs"
	"sealmail/config"
	"sealmail/mailauth"
	"sealmail/mailstore"
)

var initCmd = &command{name: "init", short: "create a data directory: configuration, database, domain, TLS certificate, DKIM key", run: initData}

var quickstartCmd = &command{name: "quickstart", short: "set up a demo server on 127.0.0.1 (first run) and serve it", run: quickstart}

func initData(ctx context.Context, args []string) error {
	f := newFlags("init", "--domain DOMAIN [--hostname HOST] [--organ-id ID] [--organ-name NAME] [--data DIR]")
	domain := f.String("domain", "", "the first mail `DOMAIN` to host, e.g. agency.example (required)")
	hostname := f.String("hostname", "", "this server's `HOST` name (default mail.DOMAIN)")
	newDomain := domainFlags(f)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *domain == "" {
		return f.errorf("--domain is required")
	}
	if *hostname == "" {
		*hostname = "mail." + *domain
	}
	dir := *f.data
	if err := create(ctx, dir, config.Default(*hostname), newDomain(*domain), nil); err != nil {
		return err
	}
	fmt.Printf("Next: add accounts with 'sealmail user add NAME@%s --data %s',\n"+
		"then start the server with 'sealmail serve --data %s'.\n", *domain, dir, dir)
	return nil
}

// create sets up the data directory dir: the configuration c, the database
// with domain d, a self-signed certificate and a DKIM key for d. then, if not
// nil, runs with the open store before the configuration is written. On any
// error create removes what it made, so the command can simply be run again.
func create(ctx context.Context, dir string, c config.Config, d mailstore.Domain, then func(*mailstore.Store) error) (err error) {
	if ok, err := hasSetup(dir); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%s already holds a sealmail setup; refusing to overwrite it "+
			"(use another --data directory, or remove %s first if you really mean to start over)", dir, dir)
	}
	if _, _, err := mailstore.SplitAddress("postmaster@" + d.Name); err != nil || !strings.Contains(d.Name, ".") {
		return fmt.Errorf("--domain %q is not a domain name such as agency.example", d.Name)
	}
	entries, err := os.ReadDir(dir)
	existed := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	defer func() {
		if err == nil {
			return
		}
		if !existed {
			os.RemoveAll(dir)
			return
		}
		// Remove only what create added to a directory that was there before.
		made, _ := os.ReadDir(dir)
		for _, e := range made {
			if !slices.ContainsFunc(entries, func(o fs.DirEntry) bool { return o.Name() == e.Name() }) {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}()

	c.Dir = dir
	if err := c.Check(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	names := []string{c.Hostname}
	for _, n := range append(certs.DomainNames(d.Name), "localhost", "127.0.0.1") {
		if n != c.Hostname {
			names = append(names, n)
		}
	}
	if err := certs.Create(c.Path(certs.CAFile), c.Path(certs.CAKeyFile), c.Path(c.TLS.Cert), c.Path(c.TLS.Key), names); err != nil {
		return fmt.Errorf("writing the TLS certificates: %w", err)
	}
	rrName, rrValue, err := mailauth.GenerateKey(filepath.Join(dir, dkimDir), d.Name, mailauth.DefaultSelector)
	if err != nil {
		return fmt.Errorf("creating the DKIM key: %w", err)
	}
	s, err := mailstore.Open(dir, mailstore.Options{})
	if err != nil {
		return err
	}
	err = s.AddDomain(ctx, d)
	if err == nil && then != nil {
		err = then(s)
	}
	if err := errors.Join(err, s.Close()); err != nil {
		return err
	}
	if err := config.Write(dir, c); err != nil {
		return err
	}
	fmt.Printf("created the sealmail data directory %s:\n", dir)
	fmt.Printf("  %-20s configuration for host %s; edit it to change listeners and limits\n", config.FileName, c.Hostname)
	fmt.Printf("  %-20s the mail store, hosting domain %s\n", mailstore.DBFile, d.Name)
	fmt.Printf("  %-20s the server's TLS certificate for %s, renewed automatically\n", c.TLS.Cert, strings.Join(names, ", "))
	fmt.Printf("  %-20s its private key; configure a pair from a public CA in [tls] to replace both\n", c.TLS.Key)
	fmt.Printf("  %-20s the local CA that issued it: staff import this file (also offered on the\n", certs.CAFile)
	fmt.Printf("  %-20s portal) so that clients trust the server; peers pass it to 'peer add --tls-ca'\n", "")
	fmt.Printf("  %-20s %s, the DKIM key signing mail from %s\n", dkimDir+"/",
		filepath.Base(mailauth.KeyPath(dkimDir, d.Name, mailauth.DefaultSelector)), d.Name)
	fmt.Printf("Publish this DNS record so that other servers can verify mail from %s:\n\n%s\n\n",
		d.Name, mailauth.ZoneRecord(rrName, rrValue))
	return nil
}

// The demo setup of quickstart.
const (
	demoDomain   = "example.test"
	demoAddress  = "demo@" + demoDomain
	demoPassword = "quickstart-password" // file in the data directory
)

func quickstart(ctx context.Context, args []string) error {
	f := newFlags("quickstart", "[--data DIR]\n\n"+
		"On the first run, sets up DIR for domain "+demoDomain+" with listeners on 127.0.0.1 high\n"+
		"ports and a user "+demoAddress+"; then, and on later runs, prints how to\n"+
		"configure a mail client and serves until interrupted.")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	dir := *f.data
	ok, err := hasSetup(dir)
	if err != nil {
		return err
	}
	if !ok {
		c := config.Default("mail." + demoDomain)
		c.SMTPAddr = "127.0.0.1:2525"
		c.SubmissionAddr = "127.0.0.1:2587"
		c.SubmissionsAddr = "127.0.0.1:2465"
		c.IMAPAddr = "127.0.0.1:2143"
		c.IMAPSAddr = "127.0.0.1:2993"
		c.HTTPSAddr = "127.0.0.1:2443"
		c.HTTPAddr = "127.0.0.1:2080"
		// A demo domain that does not exist has no business sending mail out.
		c.DNS = "off"
		addDemo := func(s *mailstore.Store) error {
			pw := newPassword()
			// Written first: an account whose password is lost is no demo.
			if err := os.WriteFile(filepath.Join(dir, demoPassword), []byte(pw+"\n"), 0o600); err != nil {
				return err
			}
			_, err := s.AddAccount(ctx, mailstore.NewAccount{Address: demoAddress, Name: "Demo", Role: mailstore.RoleStaff, Password: pw})
			return err
		}
		if err := create(ctx, dir, c, mailstore.Domain{Name: demoDomain}, addDemo); err != nil {
			return err
		}
		fmt.Println()
	}
	c, err := config.Load(dir)
	if err != nil {
		return err
	}
	pw, err := os.ReadFile(filepath.Join(dir, demoPassword))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	printClientSetup(c, strings.TrimSpace(string(pw)))
	return serve(ctx, c)
}

// printClientSetup tells how to point a mail client at the server.
func printClientSetup(c *config.Config, password string) {
	fmt.Println("Configure a mail client with:")
	for _, l := range []struct{ what, addr string }{
		{"IMAP, STARTTLS", c.IMAPAddr},
		{"IMAP, TLS", c.IMAPSAddr},
		{"SMTP submission, STARTTLS", c.SubmissionAddr},
		{"SMTP submission, TLS", c.SubmissionsAddr},
		{"SMTP from other servers", c.SMTPAddr},
		{"web (autoconfig, CA)", c.HTTPSAddr},
	} {
		if l.addr != "" {
			fmt.Printf("  %-27s %s\n", l.what, l.addr)
		}
	}
	fmt.Printf("  %-27s %s\n", "user", demoAddress)
	if password != "" {
		fmt.Printf("  %-27s %s   (kept in %s; delete the file once noted)\n", "password", password, filepath.Join(c.Dir, demoPassword))
	} else {
		fmt.Printf("  %-27s (no longer stored; set one with 'sealmail user passwd %s --data %s')\n", "password", demoAddress, c.Dir)
	}
	fmt.Printf("Clients trust the server once they import the local CA %s.\n", c.Path(certs.CAFile))
}
