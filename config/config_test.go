package config

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c := Default("mail.agency.example")
	c.IMAPAddr = "127.0.0.1:1143"
	if err := Write(dir, c); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, c); err == nil {
		t.Fatal("Write overwrote an existing file")
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hostname != "mail.agency.example" || got.IMAPAddr != "127.0.0.1:1143" ||
		got.Limits.MaxMessageSize != 50<<20 || got.Limits.MaxRecipients != 1000 ||
		time.Duration(got.Relay.GiveUpAfter) != 120*time.Hour {
		t.Errorf("round trip: %+v", got)
	}
	if l := got.Limits; l.MaxUnauthPerIP != 100 || l.MaxConnsPerUserIP != 20 || l.MaxConnsPerUser != 100 ||
		l.MaxConns != 10000 || l.MaxConnsPerPeerIP != 500 || len(got.Warnings) != 0 {
		t.Errorf("connection limits: %+v, warnings %q", l, got.Warnings)
	}
	// The standard ports, the web's too (plain HTTP only redirects and
	// serves autoconfig); metrics stay on loopback.
	if got.SMTPAddr != ":25" || got.SubmissionAddr != ":587" || got.SubmissionsAddr != ":465" || got.IMAPSAddr != ":993" ||
		got.HTTPSAddr != ":443" || got.HTTPAddr != ":80" || got.MetricsAddr != "127.0.0.1:9390" {
		t.Errorf("listeners: %+v", got)
	}
	if got.Path("tls/cert.pem") != filepath.Join(dir, "tls/cert.pem") {
		t.Errorf("path: %s", got.Path("tls/cert.pem"))
	}
}

func TestRejects(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"hostname = \"h\"\nsmtp-adr = \":25\"\n", `unknown key "smtp-adr"`},
		{"hostname = \"h\"\n[limits]\nmax-message-size = \"lots\"\n", "max-message-size"},
		{"hostname = \"h\"\n[limits]\nmax-recipients = 0\n", "limits.max-recipients"},
		{"hostname = \"h\"\n[limits]\nmax-connections-per-ip = 0\n", "limits.max-connections-per-ip"},
		{"hostname = \"h\"\n[limits]\nmax-connections-per-user-ip = 0\n", "limits.max-connections-per-user-ip"},
		{"hostname = \"h\"\n[limits]\nmax-connections-per-user = 10\nmax-connections-per-user-ip = 20\n", "limits.max-connections-per-user"},
		{"hostname = \"h\"\n[limits]\nmax-connections = -1\n", "limits.max-connections"},
		{"hostname = \"h\"\nimap-addr = \"143\"\n", "imap-addr"},
		{"hostname = \"h\"\ndns = \"maybe\"\n", "dns"},
		{"hostname = \"h\"\nlog-level = \"loud\"\n", "log-level"},
		{"hostname = \n", "line 1"},
		{"hostname = \"h\"\n[documents]\ntsa-url = \"tsa.test/tsr\"\ntsa-ca = \"tsa.pem\"\n", "documents.tsa-url"},
		{"hostname = \"h\"\n[documents]\ntsa-url = \"http://tsa.test/tsr\"\n", "documents.tsa-ca"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, FileName), []byte(c.file), 0o600)
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), FileName) {
			t.Errorf("%q: error %v, want it to name %q and the file", c.file, err, c.want)
		}
	}
}

// A config written before connection limits followed logins keeps working:
// its per-IP limit caps connections not logged in, with a warning.
func TestOldConnectionLimitKey(t *testing.T) {
	for _, c := range []struct {
		file string
		want int
		warn string
	}{
		{"hostname = \"h\"\n[limits]\nmax-connections-per-ip = 50\n", 50, "rename it to max-unauthenticated-per-ip"},
		{"hostname = \"h\"\n[limits]\nmax-connections-per-ip = 50\nmax-unauthenticated-per-ip = 70\n", 70, "is ignored"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, FileName), []byte(c.file), 0o600)
		got, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got.Limits.MaxUnauthPerIP != c.want || got.Limits.MaxConnsPerUserIP != 20 || len(got.Warnings) != 1 ||
			!strings.Contains(got.Warnings[0], c.warn) || !strings.Contains(got.Warnings[0], "limits.max-connections-per-ip") {
			t.Errorf("%q: limits %+v, warnings %q", c.file, got.Limits, got.Warnings)
		}
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]Size{"2GiB": 2 << 30, "50MiB": 50 << 20, "1000": 1000, "1.5KiB": 1536, "10 MB": 10e6} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if Size(50<<20).String() != "50MiB" {
		t.Errorf("String: %s", Size(50<<20))
	}
}

func TestSelfSigned(t *testing.T) {
	dir := t.TempDir()
	c := Default("mail.test")
	c.Dir = dir
	if err := WriteSelfSigned(c.Path(c.TLS.Cert), c.Path(c.TLS.Key), []string{"mail.test", "localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(c.Path(c.TLS.Cert), c.Path(c.TLS.Key))
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if fi, _ := os.Stat(c.Path(c.TLS.Key)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode())
	}
	if err := WriteSelfSigned(c.Path(c.TLS.Cert), c.Path(c.TLS.Key), []string{"x"}); err == nil {
		t.Error("overwrote existing key")
	}
}

func TestTSARoots(t *testing.T) {
	dir := t.TempDir()
	c := Default("mail.test")
	c.Documents.TSAURL, c.Documents.TSACA = "http://tsa.test/tsr", "tsa.pem"
	if err := Write(dir, c); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Documents != c.Documents {
		t.Errorf("round trip: %+v", got.Documents)
	}
	if _, err := got.TSARoots(); err == nil || !strings.Contains(err.Error(), "documents.tsa-ca") {
		t.Errorf("missing file: %v", err)
	}
	if err := WriteSelfSigned(got.Path("tsa.pem"), got.Path("tsa.key"), []string{"tsa.test"}); err != nil {
		t.Fatal(err)
	}
	if pool, err := got.TSARoots(); err != nil || pool == nil {
		t.Errorf("TSARoots: %v, %v", pool, err)
	}
	got.Documents.TSACA = "tsa.key"
	if _, err := got.TSARoots(); err == nil {
		t.Error("a key file passed as roots")
	}
	got.Documents = Documents{}
	if pool, err := got.TSARoots(); pool != nil || err != nil {
		t.Errorf("unset: %v, %v", pool, err)
	}
}

func TestDocumentsPDF(t *testing.T) {
	dir := t.TempDir()
	c := Default("mail.test")
	if !c.Documents.RequireSignerSignature || c.Documents.PDFProfile != "adbe.pkcs7.detached" {
		t.Errorf("defaults: %+v", c.Documents)
	}
	c.Documents.PDFProfile, c.Documents.RequireSignerSignature, c.Documents.TrustRoots = "pades", false, "roots.pem"
	if err := Write(dir, c); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Documents != c.Documents {
		t.Errorf("round trip: %+v", got.Documents)
	}
	if _, err := got.TrustRoots(); err == nil || !strings.Contains(err.Error(), "documents.trust-roots") {
		t.Errorf("missing roots file: %v", err)
	}
	got.Documents.PDFProfile = "pdf"
	if err := got.Check(); err == nil || !strings.Contains(err.Error(), "documents.pdf-profile") {
		t.Errorf("bad profile: %v", err)
	}
}

func TestChanged(t *testing.T) {
	a, b := Default("mail.test"), Default("mail.test")
	if got := Changed(&a, &b); len(got) != 0 {
		t.Errorf("same configs: %v", got)
	}
	b.LogLevel = "debug"
	b.Limits.MaxRecipients = 5
	b.Documents.TSAURL = "http://tsa.test"
	got := strings.Join(Changed(&a, &b), " ")
	if got != "log-level limits.max-recipients documents.tsa-url" {
		t.Errorf("Changed: %q", got)
	}
}
