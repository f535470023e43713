package mailauth

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"

	"sealmail/resolve"
)

var clientIP = net.ParseIP("192.0.2.10")

func TestSPF(t *testing.T) {
	r := &resolve.Static{
		TXT: map[string][]string{
			"pass.test":   {"v=spf1 ip4:192.0.2.0/24 -all"},
			"fail.test":   {"v=spf1 ip4:198.51.100.1 -all"},
			"soft.test":   {"v=spf1 ~all"},
			"inc.test":    {"v=spf1 include:pass.test -all"},
			"mx.test":     {"v=spf1 mx/24 -all"},
			"redir.test":  {"v=spf1 redirect=pass.test"},
			"macro.test":  {"v=spf1 exists:%{i}.ok.macro.test -all"},
			"two.test":    {"v=spf1 -all", "v=spf1 +all"},
			"loop.test":   {"v=spf1 include:loop.test -all"},
			"a6.test":     {"v=spf1 a:host.a6.test//64 -all"},
			"badinc.test": {"v=spf1 include:nospf.test -all"},
			"nospf.test":  {"something else"},
		},
		MX: map[string][]*net.MX{"mx.test": {{Host: "mail.mx.test", Pref: 1}}},
		IP: map[string][]net.IP{
			"mail.mx.test":             {net.ParseIP("192.0.2.200")},
			"192.0.2.10.ok.macro.test": {net.ParseIP("127.0.0.2")},
			"host.a6.test":             {net.ParseIP("2001:db8::1")},
		},
	}
	for _, c := range []struct {
		sender string
		ip     net.IP
		want   authres.ResultValue
	}{
		{"a@pass.test", clientIP, authres.ResultPass},
		{"a@fail.test", clientIP, authres.ResultFail},
		{"a@soft.test", clientIP, authres.ResultSoftFail},
		{"a@inc.test", clientIP, authres.ResultPass},
		{"a@mx.test", clientIP, authres.ResultPass},
		{"a@redir.test", clientIP, authres.ResultPass},
		{"a@macro.test", clientIP, authres.ResultPass},
		{"a@macro.test", net.ParseIP("192.0.2.11"), authres.ResultFail},
		{"a@two.test", clientIP, authres.ResultPermError},
		{"a@loop.test", clientIP, authres.ResultPermError},
		{"a@a6.test", net.ParseIP("2001:db8::abcd"), authres.ResultPass},
		{"a@a6.test", clientIP, authres.ResultFail},
		{"a@badinc.test", clientIP, authres.ResultPermError},
		{"a@nothing.test", clientIP, authres.ResultNone},
		{"", clientIP, authres.ResultPass}, // null sender: the HELO name is checked
	} {
		got, why := spfCheck(context.Background(), r, c.ip, "pass.test", c.sender)
		if got != c.want {
			t.Errorf("%s from %s: %s (%s), want %s", c.sender, c.ip, got, why, c.want)
		}
	}
}

func msgFrom(from string) []byte {
	return []byte("From: " + from + "\r\nTo: b@example.test\r\nSubject: hi\r\nDate: Sat, 28 Nov 2026 10:00:00 +0700\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n")
}

func TestDMARC(t *testing.T) {
	ctx := context.Background()
	r := &resolve.Static{TXT: map[string][]string{
		"reject.test":          {"v=spf1 ip4:192.0.2.10 -all"},
		"_dmarc.reject.test":   {"v=DMARC1; p=reject"},
		"_dmarc.quar.test":     {"v=DMARC1; p=quarantine"},
		"_dmarc.org.test":      {"v=DMARC1; p=none; sp=reject"},
		"_dmarc.strict.test":   {"v=DMARC1; p=reject; aspf=s"},
		"strict.test":          {"v=spf1 ip4:192.0.2.10 -all"},
		"sub.strict.test":      {"v=spf1 ip4:192.0.2.10 -all"},
		"_dmarc.nopolicy.test": {"not dmarc"},
	}}
	c := &Checker{Resolver: r, Hostname: "mx.example.test"}
	for _, tc := range []struct {
		mailFrom, from string
		want           Verdict
		dmarc          string
	}{
		{"a@reject.test", "a@reject.test", Accept, "dmarc=pass"}, // SPF aligned
		{"a@other.test", "a@reject.test", Reject, "dmarc=fail"},  // not aligned, no DKIM
		{"a@other.test", "a@quar.test", Quarantine, "dmarc=fail"},
		{"a@other.test", "a@sub.org.test", Reject, "dmarc=fail"},     // subdomain policy from the organisational domain
		{"a@sub.strict.test", "a@strict.test", Reject, "dmarc=fail"}, // strict SPF alignment
		{"a@other.test", "a@nopolicy.test", Accept, "dmarc=none"},
	} {
		hdr, v, reason := c.Check(ctx, clientIP, "mail.other.test", tc.mailFrom, bytes.NewReader(msgFrom(tc.from)))
		if v != tc.want || !strings.Contains(hdr, tc.dmarc) || !strings.HasPrefix(hdr, "Authentication-Results: mx.example.test;") {
			t.Errorf("%s / %s: %v %q, header %s", tc.mailFrom, tc.from, v, reason, hdr)
		}
		if v != Accept && !strings.Contains(reason, "DMARC") {
			t.Errorf("reason %q", reason)
		}
	}
	// Local policy overrides.
	c.Policy = "none"
	if _, v, _ := c.Check(ctx, clientIP, "h", "a@other.test", bytes.NewReader(msgFrom("a@reject.test"))); v != Accept {
		t.Errorf("policy none: %v", v)
	}
	c.Policy = "quarantine"
	if _, v, _ := c.Check(ctx, clientIP, "h", "a@other.test", bytes.NewReader(msgFrom("a@reject.test"))); v != Quarantine {
		t.Errorf("policy quarantine: %v", v)
	}
}

// hanging never answers until the context ends.
type hanging struct{}

func (hanging) LookupMX(ctx context.Context, _ string) ([]*net.MX, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (hanging) LookupIP(ctx context.Context, _ string) ([]net.IP, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (hanging) LookupTXT(ctx context.Context, _ string) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestDeadResolverIsTempError(t *testing.T) {
	c := &Checker{Resolver: resolve.NewCache(hanging{}, 50*time.Millisecond), Hostname: "mx.example.test"}
	signed := signedMessage(t)
	start := time.Now()
	hdr, v, _ := c.Check(context.Background(), clientIP, "h", "a@example.test", bytes.NewReader(signed))
	if v != Accept || !strings.Contains(hdr, "spf=temperror") || !strings.Contains(hdr, "dkim=temperror") || !strings.Contains(hdr, "dmarc=temperror") {
		t.Errorf("dead resolver: %v %s", v, hdr)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("check took %v with a dead resolver", d)
	}
	// DNS off: everything none, nothing looked up.
	c.Resolver = resolve.Off{}
	hdr, v, _ = c.Check(context.Background(), clientIP, "h", "a@example.test", bytes.NewReader(signed))
	if v != Accept || !strings.Contains(hdr, "dkim=none") || !strings.Contains(hdr, "spf=none") || !strings.Contains(hdr, "dmarc=none") {
		t.Errorf("dns off: %v %s", v, hdr)
	}
}

func signedMessage(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	if _, _, err := GenerateKey(dir, "example.test", "s1"); err != nil {
		t.Fatal(err)
	}
	out, err := sign(&Signer{Dir: dir}, msgFrom("a@example.test"))
	if err != nil || !bytes.HasPrefix(out, []byte("DKIM-Signature:")) {
		t.Fatalf("sign: %v", err)
	}
	return out
}

func TestSignRoundTrip(t *testing.T) {
	dir := t.TempDir()
	name, value, err := GenerateKey(dir, "example.test", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := GenerateKey(dir, "example.test", "s1"); err == nil {
		t.Error("keygen overwrote a key")
	}
	s := &Signer{Dir: dir}
	out, err := sign(s, msgFrom("Nguyễn Văn A <a@example.test>"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"Message-ID", "Subject", "From", "To", "Date"} {
		if !bytes.Contains(out[:bytes.Index(out, []byte("\r\n\r\n"))], []byte(h)) {
			t.Errorf("signature does not cover %s", h)
		}
	}
	c := &Checker{Resolver: &resolve.Static{TXT: map[string][]string{name: {value}, "_dmarc.example.test": {"v=DMARC1; p=reject"}}}, Hostname: "mx"}
	hdr, v, _ := c.Check(context.Background(), clientIP, "h", "bounce@elsewhere.test", bytes.NewReader(out))
	if v != Accept || !strings.Contains(hdr, "dkim=pass") || !strings.Contains(hdr, "dmarc=pass") {
		t.Errorf("round trip: %v %s", v, hdr)
	}
	// No key for the From domain: unchanged.
	plain := msgFrom("a@unknown.test")
	if out, err := sign(s, plain); err != nil || !bytes.Equal(out, plain) {
		t.Errorf("signed without a key: %v", err)
	}
}

// sign returns msg behind its DKIM-Signature, as the relay sends it, or msg
// unchanged when there is no key for its From domain.
func sign(s *Signer, msg []byte) ([]byte, error) {
	field, err := s.Signature(msg, bytes.NewReader(msg))
	if err != nil || field == "" {
		return msg, err
	}
	return append([]byte(field), msg...), nil
}
