package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sealmail/mailauth"
)

// TestDomainAddIDN: a Vietnamese domain name is kept, keyed and published
// in its A-label form, the one DNS and DKIM verifiers look up.
func TestDomainAddIDN(t *testing.T) {
	data := setupData(t)
	out := ok(t, "", "domain", "add", "Sở.vn", "--data", data)
	for _, want := range []string{"added domain xn--s-lym.vn", "sealmail._domainkey.xn--s-lym.vn."} {
		if !strings.Contains(out, want) {
			t.Errorf("domain add Sở.vn: %q missing in\n%s", want, out)
		}
	}
	if _, err := os.Stat(mailauth.KeyPath(filepath.Join(data, dkimDir), "xn--s-lym.vn", mailauth.DefaultSelector)); err != nil {
		t.Errorf("DKIM key: %v", err)
	}
	fails(t, "", []string{"domain", "add", "sở.vn", "--data", data}, "already hosted")
}

// TestInputValidation: what an admin types wrong is refused with a message
// naming the problem, and nothing changes (issue 15 defect 10).
func TestInputValidation(t *testing.T) {
	data := setupData(t)
	s := openStore(t, data)
	ctx := context.Background()
	domains := func() []domainJSON {
		return decode[[]domainJSON](t, ok(t, "", "domain", "list", "--json", "--data", data))
	}
	users := func() []accountJSON {
		return decode[[]accountJSON](t, ok(t, "", "user", "list", "--json", "--data", data))
	}
	aliases := func() []aliasJSON {
		return decode[[]aliasJSON](t, ok(t, "", "alias", "list", "--json", "--data", data))
	}

	// Domains: a path is no domain, and the DKIM key is not written outside DATA/dkim.
	for _, d := range []string{"../etc", "a/b.example", "-x.example", "x..example", "sở\u200d.vn", "under_score.example"} {
		// The message quotes the name as Go does, invisible characters escaped.
		fails(t, "", []string{"domain", "add", d, "--data", data}, "domain", strings.Trim(strconv.Quote(d), `"`))
	}
	if ds := domains(); len(ds) != 1 {
		t.Errorf("domains after refused adds: %+v", ds)
	}
	if _, err := os.Stat(filepath.Join(data, "etc.sealmail.key")); err == nil {
		t.Error("domain add ../etc wrote a key outside DATA/dkim")
	}
	// A domain whose DKIM key cannot be written is not added either.
	dkim := filepath.Join(data, "dkim")
	if err := os.Rename(dkim, dkim+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dkim, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "", []string{"domain", "add", "so.example", "--data", data}, "domain so.example not added", "DKIM key")
	if ds := domains(); len(ds) != 1 {
		t.Errorf("domain without its DKIM key kept: %+v", ds)
	}
	os.Remove(dkim)
	if err := os.Rename(dkim+".away", dkim); err != nil {
		t.Fatal(err)
	}

	// Accounts: lookalikes and paths are refused; Vietnamese names round-trip.
	ok(t, "", "user", "add", "admin@agency.example", "--data", data)
	for _, c := range []struct{ address, want string }{
		{"аdmin@agency.example", "mixes Cyrillic"}, // Cyrillic а
		{"pαypal@agency.example", "mixes Latin"},
		{"../../etc@agency.example", "a dot may not start"},
		{"a/b@agency.example", `contains '/'`},
		{"x@../etc", `contains '/'`},
	} {
		fails(t, "", []string{"user", "add", c.address, "--data", data}, c.address, c.want)
	}
	out := ok(t, "", "user", "add", "nguyễn.thị.hương@agency.example", "--name", "Nguyễn Thị Hương (Phòng Tổ chức)", "--data", data)
	printedPassword(t, out)
	if us := users(); len(us) != 2 || us[1].Address != "nguyễn.thị.hương@agency.example" || us[1].Name != "Nguyễn Thị Hương (Phòng Tổ chức)" {
		t.Errorf("accounts: %+v", us)
	}

	// A CSV import with one bad line creates nothing.
	csv := filepath.Join(t.TempDir(), "staff.csv")
	if err := os.WriteFile(csv, []byte("address,name\nb@agency.example,Trần Văn B\nаdmin2@agency.example,X\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "", []string{"user", "import", csv, "--data", data}, "staff.csv:3", "mixes")
	if us := users(); len(us) != 2 {
		t.Errorf("accounts after a refused import: %+v", us)
	}

	// Quotas that do not fit are refused, not stored negative.
	for _, q := range []string{"9999999999TiB", "1e30", "8388608TiB", "Inf", "NaN"} {
		fails(t, "", []string{"user", "quota", "admin@agency.example", q, "--data", data}, "quota")
		fails(t, "", []string{"user", "add", "q@agency.example", "--quota", q, "--data", data}, "quota")
	}
	ok(t, "", "user", "quota", "admin@agency.example", "8388607TiB", "--data", data)
	if a, err := s.Account(ctx, "admin@agency.example"); err != nil || a.Quota != 8388607<<40 {
		t.Errorf("the largest quota: %+v %v", a, err)
	}

	// Aliases: loops, chains too deep and unknown local targets are refused
	// when added, not found later as "No such user".
	ok(t, "", "alias", "add", "a1@agency.example", "admin@agency.example", "--data", data)
	ok(t, "", "alias", "add", "a2@agency.example", "a1@agency.example", "someone@elsewhere.example", "--data", data)
	fails(t, "", []string{"alias", "add", "a1@agency.example", "a2@agency.example", "--data", data},
		"alias loop: a1@agency.example → a2@agency.example → a1@agency.example")
	fails(t, "", []string{"alias", "add", "self@agency.example", "self@agency.example", "--data", data}, "alias loop: self@agency.example → self@agency.example")
	fails(t, "", []string{"alias", "add", "x@agency.example", "nobody@agency.example", "--data", data},
		"alias x@agency.example would reach nobody: nobody@agency.example is neither an account nor an alias")
	fails(t, "", []string{"alias", "add", "аll@agency.example", "admin@agency.example", "--data", data}, "mixes")
	prev := "admin@agency.example"
	for i := range 8 { // a chain of 8 aliases resolves (mailstore's maxAliasDepth)
		name := "chain" + string(rune('a'+i)) + "@agency.example"
		ok(t, "", "alias", "add", name, prev, "--data", data)
		prev = name
	}
	fails(t, "", []string{"alias", "add", "chainz@agency.example", prev, "--data", data}, "deeper than 8 aliases")
	as := aliases()
	if len(as) != 10 || as[0].Address != "a1@agency.example" || len(as[0].Targets) != 1 {
		t.Errorf("aliases after refused adds: %+v", as)
	}
	// What was accepted resolves.
	if accts, remote, err := s.Resolve(ctx, "a2@agency.example"); err != nil || len(accts) != 1 || len(remote) != 1 {
		t.Errorf("resolve a2: %v %v %v", accts, remote, err)
	}
}
