package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sealmail/autoconfig"
	"sealmail/internal/testtool"
	"sealmail/mailauth"
)

func TestDNS(t *testing.T) {
	data := setupData(t)
	out := ok(t, "", "dns", "agency.example", "--data", data)
	_, dkim, err := mailauth.PublicRecords(filepath.Join(data, dkimDir), "agency.example")
	if err != nil || len(dkim) != 1 {
		t.Fatalf("DKIM records: %v %v", dkim, err)
	}
	policy := autoconfig.MTASTSPolicy("mail.agency.example", "testing")
	for _, want := range []string{
		"agency.example.\t3600\tIN\tMX\t10 mail.agency.example.\n",
		"agency.example.\t3600\tIN\tTXT\t( \"v=spf1 mx -all\" )\n",
		"sealmail._domainkey.agency.example.\t3600\tIN\tTXT\t" + mailauth.TXTStrings(dkim[0]) + "\n",
		"_dmarc.agency.example.\t3600\tIN\tTXT\t( \"v=DMARC1; p=quarantine;",
		"_imaps._tcp.agency.example.\t3600\tIN\tSRV\t0 1 993 mail.agency.example.\n",
		"_imap._tcp.agency.example.\t3600\tIN\tSRV\t10 1 143 mail.agency.example.\n",
		"_submissions._tcp.agency.example.\t3600\tIN\tSRV\t0 1 465 mail.agency.example.\n",
		"_submission._tcp.agency.example.\t3600\tIN\tSRV\t10 1 587 mail.agency.example.\n",
		"_pop3s._tcp.agency.example.\t3600\tIN\tSRV\t0 0 0 .\n",
		"autoconfig.agency.example.\t3600\tIN\tCNAME\tmail.agency.example.\n",
		"autodiscover.agency.example.\t3600\tIN\tCNAME\tmail.agency.example.\n",
		"_autodiscover._tcp.agency.example.\t3600\tIN\tSRV\t0 1 443 mail.agency.example.\n",
		"mta-sts.agency.example.\t3600\tIN\tCNAME\tmail.agency.example.\n",
		"_mta-sts.agency.example.\t3600\tIN\tTXT\t( \"v=STSv1; id=" + autoconfig.MTASTSID(policy) + "\" )\n",
		"; MTA-STS (RFC 8461), mode testing\n",
		"_smtp._tls.agency.example.\t3600\tIN\tTXT\t( \"v=TLSRPTv1; rua=mailto:postmaster@agency.example\" )\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("sealmail dns lacks %q:\n%s", want, out)
		}
	}

	// BIND reads the records as a zone (with the SOA and NS a zone has anyway).
	checkzone := testtool.Path(t, "named-checkzone", "bind9-utils")
	zone := filepath.Join(t.TempDir(), "zone")
	head := "$TTL 3600\n@ IN SOA ns.agency.example. hostmaster.agency.example. 1 3600 600 86400 3600\n@ IN NS ns.agency.example.\n" +
		"ns IN A 192.0.2.1\nmail IN A 192.0.2.2\n"
	if err := os.WriteFile(zone, []byte(head+out), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(checkzone, "-k", "fail", "-i", "local", "agency.example", zone).CombinedOutput(); err != nil {
		t.Errorf("named-checkzone: %v\n%s\n%s", err, b, out)
	}

	// With the web listener off, nothing points clients at it.
	path := filepath.Join(data, "sealmail.toml")
	conf := strings.Replace(string(readAll(t, path)), `https-addr = ":443"`, `https-addr = ""`, 1)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	recs := decode[[]struct{ Name, Type, Value, Why string }](t, ok(t, "", "dns", "agency.example", "--json", "--data", data))
	for _, r := range recs {
		if strings.HasPrefix(r.Name, "autoconfig.") || strings.HasPrefix(r.Name, "_mta-sts.") {
			t.Errorf("with https-addr off: %+v", r)
		}
	}
	if len(recs) != 11 || recs[0].Type != "MX" {
		t.Errorf("--json: %+v", recs)
	}
	fails(t, "", []string{"dns", "other.example", "--data", data}, "other.example", "not found", "domain list")
}
