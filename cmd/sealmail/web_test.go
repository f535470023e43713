package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"sealmail/config"
	"sealmail/internal/testtool"
)

const host = "mail.agency.example"

// caPool is the local CA of data, the only root a staff member's client has.
func caPool(t *testing.T, data string) *x509.CertPool {
	t.Helper()
	return clientTLS(t, data).RootCAs
}

// webClient is an HTTPS client trusting only the local CA of data that sends
// every request, whatever its host name, to addr: as if DNS pointed the
// agency's names (autoconfig.DOMAIN, mta-sts.DOMAIN...) at the server.
func webClient(t *testing.T, data, addr string) *http.Client {
	t.Helper()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &http.Client{
		Transport: &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: caPool(t, data)}},
		// Redirects are checked, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       time.Minute,
	}
}

func get(t *testing.T, c *http.Client, method, url, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/xml")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestTrustLocalCA: a client that trusts only the exported CA reaches IMAP and
// submission by the host name and by the address, with Go's TLS and OpenSSL;
// a client that does not trust it is refused, and so is a wrong name.
func TestTrustLocalCA(t *testing.T) {
	openssl := testtool.Path(t, "openssl", "openssl")
	data := setupData(t)
	ok(t, "pw\n", "user", "add", "a@agency.example", "--password-stdin", "--data", data)
	srv := startServe(t, data)
	defer srv.stop(t)
	pool := caPool(t, data)
	for _, name := range []string{host, "127.0.0.1"} {
		cfg := &tls.Config{RootCAs: pool, ServerName: name}
		ic, err := imapclient.DialTLS(srv.addrs["imaps-addr"], &imapclient.Options{TLSConfig: cfg})
		if err != nil {
			t.Fatalf("IMAPS by %s: %v", name, err)
		}
		if err := ic.Login("a@agency.example", "pw").Wait(); err != nil {
			t.Errorf("IMAPS login by %s: %v", name, err)
		}
		ic.Close()
		sc, err := smtp.DialTLS(srv.addrs["submissions-addr"], cfg)
		if err != nil {
			t.Fatalf("submissions by %s: %v", name, err)
		}
		if err := sc.Auth(sasl.NewPlainClient("", "a@agency.example", "pw")); err != nil {
			t.Errorf("submissions auth by %s: %v", name, err)
		}
		sc.Close()
		sc, err = smtp.DialStartTLS(srv.addrs["submission-addr"], cfg)
		if err != nil {
			t.Fatalf("submission STARTTLS by %s: %v", name, err)
		}
		if err := sc.Auth(sasl.NewPlainClient("", "a@agency.example", "pw")); err != nil {
			t.Errorf("submission auth by %s: %v", name, err)
		}
		sc.Close()
	}
	// A client that does not trust the CA is refused, and the server says
	// why at info level, for IMAP, SMTP and HTTPS.
	for _, c := range []struct{ listener, protocol string }{{"imaps-addr", "imap"}, {"submissions-addr", "smtp"}, {"https-addr", "https"}} {
		if _, err := tls.Dial("tcp", srv.addrs[c.listener], &tls.Config{ServerName: host, RootCAs: x509.NewCertPool()}); err == nil {
			t.Errorf("%s: a client that does not trust the local CA accepted the server", c.listener)
		}
		srv.waitLog(t, `level=INFO msg="TLS handshake rejected" component=tls protocol=`+c.protocol+` listener=`+srv.addrs[c.listener]+
			` client=127.0.0.1 reason=untrusted-certificate`)
	}

	// The same with STARTTLS.
	untrusting := &tls.Config{ServerName: host, RootCAs: x509.NewCertPool()}
	if c, err := imapclient.DialStartTLS(srv.addrs["imap-addr"], &imapclient.Options{TLSConfig: untrusting}); err == nil {
		c.Close()
		t.Error("IMAP STARTTLS: a client that does not trust the local CA accepted the server")
	}
	if c, err := smtp.DialStartTLS(srv.addrs["submission-addr"], untrusting); err == nil {
		// go-smtp's client handshakes at the first command.
		if err := c.Noop(); err == nil {
			t.Error("submission STARTTLS: a client that does not trust the local CA accepted the server")
		}
		c.Close()
	}
	for _, c := range []struct{ listener, protocol string }{{"imap-addr", "imap"}, {"submission-addr", "smtp"}} {
		srv.waitLog(t, `protocol=`+c.protocol+` listener=`+srv.addrs[c.listener]+` client=127.0.0.1 reason=untrusted-certificate`)
	}

	caFile := filepath.Join(data, "tls/ca.pem")
	sClient := func(args ...string) (string, error) {
		cmd := exec.Command(openssl, append([]string{"s_client", "-verify_return_error", "-CAfile", caFile, "-brief"}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, c := range []struct{ listener, starttls string }{
		{"imaps-addr", ""}, {"submissions-addr", ""}, {"imap-addr", "imap"}, {"submission-addr", "smtp"},
	} {
		base := []string{"-connect", srv.addrs[c.listener]}
		if c.starttls != "" {
			base = append(base, "-starttls", c.starttls)
		}
		for _, v := range [][]string{{"-servername", host, "-verify_hostname", host}, {"-verify_ip", "127.0.0.1"}} {
			if out, err := sClient(append(base, v...)...); err != nil || !strings.Contains(out, "Verification: OK") {
				t.Errorf("openssl s_client %s %v: %v\n%s", c.listener, v, err, out)
			}
		}
	}
	if out, err := sClient("-connect", srv.addrs["imap-addr"], "-starttls", "imap", "-servername", "mail.other.example", "-verify_hostname", "mail.other.example"); err == nil {
		t.Errorf("openssl s_client accepted the certificate for a name it does not carry:\n%s", out)
	}
}

// The parts of Thunderbird's clientConfig v1.1 it reads
// (https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat).
type tbServer struct {
	Type           string `xml:"type,attr"`
	Hostname       string `xml:"hostname"`
	Port           int    `xml:"port"`
	SocketType     string `xml:"socketType"`
	Authentication string `xml:"authentication"`
	Username       string `xml:"username"`
}

type tbConfig struct {
	XMLName  xml.Name `xml:"clientConfig"`
	Version  string   `xml:"version,attr"`
	Provider struct {
		ID       string     `xml:"id,attr"`
		Domains  []string   `xml:"domain"`
		Incoming []tbServer `xml:"incomingServer"`
		Outgoing []tbServer `xml:"outgoingServer"`
	} `xml:"emailProvider"`
}

// Outlook's POX Autodiscover response, with its namespaces.
type adResponse struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName     xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
		DisplayName string   `xml:"User>DisplayName"`
		Account     struct {
			AccountType string `xml:"AccountType"`
			Action      string `xml:"Action"`
			Protocols   []struct {
				Type, Server, LoginName, SSL, Encryption, SPA, AuthRequired, DomainRequired string
				Port                                                                        int
			} `xml:"Protocol"`
		} `xml:"Account"`
	} `xml:"Response"`
}

// adRequest is the POX request Outlook posts.
func adRequest(address, schema string) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>%s</EMailAddress>
    <AcceptableResponseSchema>%s</AcceptableResponseSchema>
  </Request>
</Autodiscover>`, address, schema)
}

const outlookSchema = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

func TestWebAutoconfig(t *testing.T) {
	data := setupData(t)
	ok(t, "pw\n", "user", "add", "a@agency.example", "--name", "Nguyễn Văn Á", "--password-stdin", "--data", data)
	srv := startServe(t, data)
	defer srv.stop(t)
	web := webClient(t, data, srv.addrs["https-addr"])
	plain := webClient(t, data, srv.addrs["http-addr"])
	ports := map[string]int{}
	for _, k := range listenerKeys {
		ports[k] = port(t, srv.addrs[k])
	}

	// Thunderbird: on autoconfig.DOMAIN, and on the domain's .well-known
	// with the address; over HTTPS and plain HTTP.
	for _, u := range []string{
		"https://autoconfig.agency.example/mail/config-v1.1.xml?emailaddress=a%40agency.example",
		"https://mail.agency.example/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a%40agency.example",
		"http://autoconfig.agency.example/mail/config-v1.1.xml",
	} {
		c := web
		if strings.HasPrefix(u, "http:") {
			c = plain
		}
		resp, b := get(t, c, "GET", u, "")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
			t.Fatalf("GET %s: %s %s\n%s", u, resp.Status, resp.Header.Get("Content-Type"), b)
		}
		var cfg tbConfig
		if err := xml.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("%s: %v\n%s", u, err, b)
		}
		want := []tbServer{
			{"imap", host, ports["imaps-addr"], "SSL", "password-cleartext", "%EMAILADDRESS%"},
			{"imap", host, ports["imap-addr"], "STARTTLS", "password-cleartext", "%EMAILADDRESS%"},
			{"smtp", host, ports["submissions-addr"], "SSL", "password-cleartext", "%EMAILADDRESS%"},
			{"smtp", host, ports["submission-addr"], "STARTTLS", "password-cleartext", "%EMAILADDRESS%"},
		}
		got := append(cfg.Provider.Incoming, cfg.Provider.Outgoing...)
		if cfg.Version != "1.1" || cfg.Provider.ID != "agency.example" || len(cfg.Provider.Domains) != 1 ||
			cfg.Provider.Domains[0] != "agency.example" || len(got) != len(want) {
			t.Fatalf("%s: %+v", u, cfg)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: server %d is %+v, want %+v", u, i, got[i], want[i])
			}
		}
	}
	if resp, _ := get(t, web, "GET", "https://autoconfig.agency.example/mail/config-v1.1.xml?emailaddress=x%40other.example", ""); resp.StatusCode != 404 {
		t.Errorf("autoconfig for a domain not hosted: %s", resp.Status)
	}

	// Outlook.
	resp, b := get(t, web, "POST", "https://autodiscover.agency.example/autodiscover/autodiscover.xml", adRequest("A@agency.example", outlookSchema))
	if resp.StatusCode != 200 {
		t.Fatalf("autodiscover: %s\n%s", resp.Status, b)
	}
	var ad adResponse
	if err := xml.Unmarshal(b, &ad); err != nil {
		t.Fatalf("autodiscover: %v\n%s", err, b)
	}
	acct := ad.Response.Account
	if ad.Response.DisplayName != "Nguyễn Văn Á" || acct.AccountType != "email" || acct.Action != "settings" || len(acct.Protocols) != 2 {
		t.Fatalf("autodiscover: %+v\n%s", ad, b)
	}
	for i, want := range []struct {
		typ  string
		port int
	}{{"IMAP", ports["imaps-addr"]}, {"SMTP", ports["submissions-addr"]}} {
		p := acct.Protocols[i]
		if p.Type != want.typ || p.Server != host || p.Port != want.port || p.LoginName != "a@agency.example" ||
			p.SSL != "on" || p.Encryption != "SSL" || p.SPA != "off" || p.AuthRequired != "on" {
			t.Errorf("autodiscover protocol %d: %+v", i, p)
		}
	}
	for _, bad := range []string{"not xml", adRequest("", outlookSchema),
		adRequest("a@agency.example", "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006")} {
		if resp, _ := get(t, web, "POST", "https://autodiscover.agency.example/autodiscover/autodiscover.xml", bad); resp.StatusCode != 400 {
			t.Errorf("autodiscover of %q: %s", bad, resp.Status)
		}
	}

	// MTA-STS, only on mta-sts.DOMAIN; testing while the certificate is local.
	resp, b = get(t, web, "GET", "https://mta-sts.agency.example/.well-known/mta-sts.txt", "")
	if resp.StatusCode != 200 || string(b) != "version: STSv1\r\nmode: testing\r\nmx: "+host+"\r\nmax_age: 604800\r\n" {
		t.Errorf("mta-sts policy: %s %q", resp.Status, b)
	}
	if resp, _ := get(t, web, "GET", "https://"+host+"/.well-known/mta-sts.txt", ""); resp.StatusCode != 404 {
		t.Errorf("mta-sts policy on the mail host: %s", resp.Status)
	}

	// The CA and the Apple profile that carries it.
	caPEM := readAll(t, filepath.Join(data, "tls/ca.pem"))
	if resp, b := get(t, web, "GET", "https://"+host+"/ca.pem", ""); resp.StatusCode != 200 || !bytes.Equal(b, caPEM) {
		t.Errorf("ca.pem: %s\n%s", resp.Status, b)
	}
	checkMobileConfig(t, web, caPEM, ports)

	// The setup page; the home page (the portal's login), and its headers;
	// plain HTTP redirects there.
	resp, b = get(t, web, "GET", "https://"+host+"/setup", "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Thư điện tử") || !strings.Contains(string(b), "/ca.pem") {
		t.Errorf("setup: %s\n%s", resp.Status, b)
	}
	resp, b = get(t, web, "GET", "https://"+host+"/", "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `action="/login"`) || !strings.Contains(string(b), `href="/setup"`) {
		t.Errorf("home: %s\n%s", resp.Status, b)
	}
	for k, v := range map[string]string{"Content-Security-Policy": "default-src 'none'", "Strict-Transport-Security": "max-age=",
		"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
		if !strings.Contains(resp.Header.Get(k), v) {
			t.Errorf("home: %s: %q", k, resp.Header.Get(k))
		}
	}
	// Strict: no script of any kind (default-src 'none' covers them), nothing inline.
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") ||
		strings.Contains(csp, "*") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("home: Content-Security-Policy %q", csp)
	}
	resp, _ = get(t, plain, "GET", "http://"+host+"/x?y=1", "")
	if want := "https://" + host + ":" + strconv.Itoa(ports["https-addr"]) + "/x?y=1"; resp.StatusCode != 301 || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %s to %q, want 301 to %q", resp.Status, resp.Header.Get("Location"), want)
	}

	// curl, with nothing but the CA, resolving the agency's names to the server.
	curl := testtool.Path(t, "curl", "curl")
	https := strconv.Itoa(ports["https-addr"])
	out, err := exec.Command(curl, "--fail", "--silent", "--show-error", "--cacert", filepath.Join(data, "tls/ca.pem"),
		"--resolve", "autoconfig.agency.example:"+https+":127.0.0.1",
		"https://autoconfig.agency.example:"+https+"/mail/config-v1.1.xml").CombinedOutput()
	var cfg tbConfig
	if err != nil || xml.Unmarshal(out, &cfg) != nil || len(cfg.Provider.Incoming) != 2 || cfg.Provider.Incoming[0].Hostname != host {
		t.Errorf("curl autoconfig: %v\n%s", err, out)
	}
}

// checkMobileConfig reads the Apple profile with Python's plistlib (the
// property list format, as Apple defines it) and checks the mail account and
// that the CA payload is the local CA.
func checkMobileConfig(t *testing.T, web *http.Client, caPEM []byte, ports map[string]int) {
	t.Helper()
	python := testtool.Path(t, "python3", "python3")
	resp, b := get(t, web, "GET", "https://"+host+"/sealmail.mobileconfig?email=a%40agency.example", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("mobileconfig: %s %s\n%s", resp.Status, resp.Header.Get("Content-Type"), b)
	}
	f := filepath.Join(t.TempDir(), "p.mobileconfig")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `import plistlib, json, sys, base64
p = plistlib.load(open(sys.argv[1], "rb"))
for c in p["PayloadContent"]:
    if isinstance(c.get("PayloadContent"), bytes):
        c["PayloadContent"] = base64.b64encode(c["PayloadContent"]).decode()
print(json.dumps(p))`
	out, err := exec.Command(python, "-c", script, f).CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib: %v\n%s\n%s", err, out, b)
	}
	var p struct {
		PayloadType    string
		PayloadUUID    string
		PayloadContent []map[string]any
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	if p.PayloadType != "Configuration" || len(p.PayloadUUID) != 36 || len(p.PayloadContent) != 2 {
		t.Fatalf("profile: %s", out)
	}
	mail, ca := p.PayloadContent[0], p.PayloadContent[1]
	for k, v := range map[string]any{"PayloadType": "com.apple.mail.managed", "EmailAddress": "a@agency.example",
		"EmailAccountType": "EmailTypeIMAP", "IncomingMailServerHostName": host, "IncomingMailServerPortNumber": float64(ports["imaps-addr"]),
		"IncomingMailServerUseSSL": true, "OutgoingMailServerPortNumber": float64(ports["submissions-addr"]),
		"OutgoingMailServerUseSSL": true, "IncomingMailServerUsername": "a@agency.example", "EmailAccountName": "Nguyễn Văn Á"} {
		if mail[k] != v {
			t.Errorf("mail payload %s = %v, want %v", k, mail[k], v)
		}
	}
	blk, _ := pem.Decode(caPEM)
	der, _ := base64.StdEncoding.DecodeString(ca["PayloadContent"].(string))
	if ca["PayloadType"] != "com.apple.security.root" || !bytes.Equal(der, blk.Bytes) {
		t.Errorf("CA payload: %v (sha256 %x)", ca["PayloadType"], sha256.Sum256(der))
	}
}

// TestReload: after the administrator installs another certificate and
// sends SIGHUP, new connections get it while an open IMAP session goes on;
// changed keys that only a restart applies are named.
func TestReload(t *testing.T) {
	data := setupData(t)
	ok(t, "pw\n", "user", "add", "a@agency.example", "--password-stdin", "--data", data)
	srv := startServe(t, data)
	defer srv.stop(t)
	web := webClient(t, data, srv.addrs["https-addr"])
	ic, err := imapclient.DialTLS(srv.addrs["imaps-addr"], &imapclient.Options{TLSConfig: clientTLS(t, data)})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login("a@agency.example", "pw").Wait(); err != nil {
		t.Fatal(err)
	}

	// The administrator's own pair, written beside and moved over the files.
	tmp := t.TempDir()
	if err := config.WriteSelfSigned(filepath.Join(tmp, "c.pem"), filepath.Join(tmp, "k.pem"), []string{host}); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{"c.pem": "tls/cert.pem", "k.pem": "tls/key.pem"} {
		if err := os.WriteFile(filepath.Join(data, to), readAll(t, filepath.Join(tmp, from)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(data, config.FileName)
	conf := bytes.Replace(readAll(t, path), []byte(`log-level = "info"`), []byte(`log-level = "debug"`), 1)
	conf = bytes.Replace(conf, []byte(`max-recipients = 1000`), []byte(`max-recipients = 10`), 1)
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	srv.waitLog(t, "msg=reloaded")
	logs := srv.logs()
	if !strings.Contains(logs, "keys=limits.max-recipients") || strings.Contains(logs, "keys=log-level") {
		t.Errorf("reload did not name exactly the keys that need a restart:\n%s", logs)
	}

	// New handshakes get the new certificate.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readAll(t, filepath.Join(tmp, "c.pem")))
	c, err := tls.Dial("tcp", srv.addrs["imaps-addr"], &tls.Config{RootCAs: pool, ServerName: host})
	if err != nil {
		t.Fatalf("after SIGHUP, the new certificate is not served: %v", err)
	}
	c.Close()
	// The open session goes on.
	if err := ic.Noop().Wait(); err != nil {
		t.Errorf("the IMAP session open across SIGHUP: %v", err)
	}
	if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
		t.Errorf("the IMAP session open across SIGHUP: %v", err)
	}
	// No local CA to offer any more.
	if resp, _ := get(t, &http.Client{Transport: &http.Transport{DialContext: web.Transport.(*http.Transport).DialContext,
		TLSClientConfig: &tls.Config{RootCAs: pool}}}, "GET", "https://"+host+"/ca.pem", ""); resp.StatusCode != 404 {
		t.Errorf("ca.pem with the administrator's certificate: %s", resp.Status)
	}
}
