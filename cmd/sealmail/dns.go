package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"sealmail/autoconfig"
	"sealmail/certs"
	"sealmail/config"
	"sealmail/mailauth"
)

var dnsCmd = &command{name: "dns", short: "print every DNS record to publish for a hosted domain", run: dnsMain}

func dnsMain(ctx context.Context, args []string) error {
	f := newFlags("dns", "DOMAIN [--json]\n\n"+
		"Prints, as zone-file lines, every record the domain needs: MX, SPF, DKIM, DMARC,\n"+
		"the SRV records mail clients look up (RFC 6186), the autoconfig and autodiscover\n"+
		"names, MTA-STS and TLS reporting. Ports are those of sealmail.toml.")
	asJSON := f.Bool("json", false, "print the records as a JSON array of {name, type, value, why}")
	pos, s, err := f.parseOpen(args, 1, 1)
	if err != nil {
		return err
	}
	defer s.Close()
	domain := strings.ToLower(strings.TrimSuffix(pos[0], "."))
	if _, err := s.Domain(ctx, domain); err != nil {
		return fmt.Errorf("%s: %w; 'sealmail domain list' shows the hosted domains", domain, err)
	}
	c, err := config.Load(*f.data)
	if err != nil {
		return err
	}
	names, values, err := mailauth.PublicRecords(filepath.Join(*f.data, dkimDir), domain)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("%s has no DKIM key; create one with 'sealmail dkim keygen %s' first", domain, domain)
	}
	var dkim []autoconfig.Record
	for i := range names {
		dkim = append(dkim, autoconfig.Record{Name: names[i], Type: "TXT", Value: values[i], Why: "DKIM: receivers check the signature of mail from " + domain})
	}
	local, err := certs.IssuedLocally(c.Path(c.TLS.Cert), c.Path(certs.CAFile))
	if err != nil {
		return fmt.Errorf("reading the TLS certificate: %w", err)
	}
	srv := autoconfig.Server{Host: c.Hostname, IMAPS: portOf(c.IMAPSAddr), IMAP: portOf(c.IMAPAddr),
		Submissions: portOf(c.SubmissionsAddr), Submission: portOf(c.SubmissionAddr), HTTPS: portOf(c.HTTPSAddr)}
	rs := autoconfig.Records(domain, srv, dkim, autoconfig.MTASTSMode(!local))
	if *asJSON {
		type recordJSON struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Value string `json:"value"`
			Why   string `json:"why"`
		}
		out := make([]recordJSON, len(rs))
		for i, r := range rs {
			out[i] = recordJSON{r.Name, r.Type, r.Value, r.Why}
		}
		return printJSON(out)
	}
	fmt.Printf("; DNS records for %s (sealmail dns). %s itself needs A/AAAA records\n; with the server's public addresses, and a PTR record naming it.\n", domain, c.Hostname)
	for _, r := range rs {
		fmt.Printf("; %s\n%s\n", r.Why, r)
	}
	return nil
}

// portOf returns the port of a listener address, 0 when it is off.
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
