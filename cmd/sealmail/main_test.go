package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sealmail/certs"
	"sealmail/config"
	"sealmail/mailauth"
	"sealmail/mailstore"
)

// bin is the sealmail binary under test, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sealmail-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "sealmail")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sealmail:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	stdout, stderr string
	code           int
}

// cmdFor prepares a run of sealmail in a fresh working directory, with
// $SEALMAIL_DATA unset so that only --data chooses the data directory.
func cmdFor(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "SEALMAIL_DATA=") })
	return cmd
}

// sealmail runs the binary with stdin and returns what it did.
func sealmail(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := cmdFor(t, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
	if err != nil && r.code < 0 {
		t.Fatalf("sealmail %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs sealmail and fails the test unless it succeeds silently on stderr.
func ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := sealmail(t, stdin, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("sealmail %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs sealmail, expects exit status 1 and an error on stderr that
// contains each of want, and returns the stderr.
func fails(t *testing.T, stdin string, args []string, want ...string) string {
	t.Helper()
	r := sealmail(t, stdin, args...)
	if r.code != 1 {
		t.Fatalf("sealmail %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "sealmail: ") {
		t.Errorf("sealmail %s: stderr does not start with 'sealmail: ': %q", strings.Join(args, " "), r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("sealmail %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, r.stderr)
		}
	}
	return r.stderr
}

// setupData sets up a data directory for agency.example and returns it.
func setupData(t *testing.T) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	ok(t, "", "init", "--data", data, "--domain", "agency.example")
	return data
}

// openStore opens the data directory's store in the test process, beside any
// sealmail process using it.
func openStore(t *testing.T, data string) *mailstore.Store {
	t.Helper()
	s, err := mailstore.Open(data, mailstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func decode[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	return v
}

var passwordLine = regexp.MustCompile(`(?m)^password: (\S+)$`)

// printedPassword returns the password a command printed.
func printedPassword(t *testing.T, out string) string {
	t.Helper()
	m := passwordLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no password printed:\n%s", out)
	}
	if len(m[1]) != 16 || strings.ContainsAny(m[1], "0O1lI") {
		t.Errorf("generated password %q: want 16 unambiguous characters", m[1])
	}
	return m[1]
}

func checkLogin(t *testing.T, s *mailstore.Store, address, password string) {
	t.Helper()
	if _, err := s.Authenticate(context.Background(), address, password); err != nil {
		t.Errorf("log in as %s with %q: %v", address, password, err)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}

func TestInit(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	out := ok(t, "", "init", "--data", data, "--domain", "agency.example",
		"--organ-id", "000.00.12.H10", "--organ-name", "Sở Thông tin và Truyền thông")
	for _, w := range []string{config.FileName, mailstore.DBFile, "tls/cert.pem", "tls/key.pem", "mail.agency.example, autoconfig.agency.example, autodiscover.agency.example, mta-sts.agency.example, localhost, 127.0.0.1", "tls/ca.pem"} {
		if !strings.Contains(out, w) {
			t.Errorf("init output lacks %q:\n%s", w, out)
		}
	}
	checkMode(t, data, 0o700)
	checkMode(t, filepath.Join(data, "tls/key.pem"), 0o600)
	checkDKIM(t, out, filepath.Join(data, "dkim"), "agency.example")
	c, err := config.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "mail.agency.example" {
		t.Errorf("hostname %q, want mail.agency.example", c.Hostname)
	}
	m := &certs.Manager{CertFile: c.Path(c.TLS.Cert), KeyFile: c.Path(c.TLS.Key), CAFile: c.Path(certs.CAFile), CAKeyFile: c.Path(certs.CAKeyFile),
		Logger: slog.New(slog.DiscardHandler)}
	if err := m.Load(); err != nil {
		t.Errorf("the certificate init wrote does not load: %v", err)
	}
	if _, ok := m.CAPEM(); !ok {
		t.Error("init made no local CA that issued the server certificate")
	}
	ds := decode[[]domainJSON](t, ok(t, "", "domain", "list", "--json", "--data", data))
	if len(ds) != 1 || ds[0].Name != "agency.example" || ds[0].OrganID != "000.00.12.H10" || ds[0].OrganName != "Sở Thông tin và Truyền thông" {
		t.Errorf("domains after init: %+v", ds)
	}

	before, _ := os.ReadFile(filepath.Join(data, config.FileName))
	fails(t, "", []string{"init", "--data", data, "--domain", "other.example"}, "already holds a sealmail setup", "refusing to overwrite")
	after, _ := os.ReadFile(filepath.Join(data, config.FileName))
	if !bytes.Equal(before, after) {
		t.Error("a refused init changed the configuration")
	}

	t.Run("Hostname", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		ok(t, "", "init", "--domain", "agency.example", "--data", data, "--hostname", "mx1.agency.example")
		c, err := config.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		if c.Hostname != "mx1.agency.example" {
			t.Errorf("hostname %q", c.Hostname)
		}
	})
	t.Run("NoDomain", func(t *testing.T) {
		fails(t, "", []string{"init", "--data", filepath.Join(t.TempDir(), "d")}, "--domain is required", "usage: sealmail init")
	})
	t.Run("BadDomainLeavesNothing", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "d")
		fails(t, "", []string{"init", "--data", data, "--domain", "no dots"}, "not a domain name")
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("a failed init left %s behind: %v", data, err)
		}
	})
}

// checkDKIM checks that init made a private DKIM key for domain in dir and
// printed the TXT record publishing its public half.
func checkDKIM(t *testing.T, out, dir, domain string) {
	t.Helper()
	path := mailauth.KeyPath(dir, domain, mailauth.DefaultSelector)
	checkMode(t, path, 0o600)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(mailauth.DefaultSelector+"._domainkey."+domain+".") + ` +IN +TXT +\(?((?: *"[^"]*")+) *\)?$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no DKIM TXT record for %s printed:\n%s", domain, out)
	}
	var value strings.Builder
	for _, q := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(m[1], -1) {
		value.WriteString(q[1])
	}
	if want := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub); value.String() != want {
		t.Errorf("printed DKIM record %q\nwant %q", value.String(), want)
	}
}

func TestNoSetup(t *testing.T) {
	data := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{
		{"user", "list"}, {"domain", "add", "x.example"}, {"alias", "list"}, {"backup", filepath.Join(t.TempDir(), "b")}, {"serve"},
	} {
		fails(t, "", append(args, "--data", data), "holds no sealmail setup", "sealmail init")
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("commands on a missing setup created %s: %v", data, err)
	}
}

func TestDataDefault(t *testing.T) {
	cmd := cmdFor(t, "init", "--domain", "agency.example")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "sealmail-data", config.FileName)); err != nil {
		t.Errorf("init without --data or $SEALMAIL_DATA: %v", err)
	}
	env := cmdFor(t, "domain", "list", "--json")
	env.Env = append(env.Env, "SEALMAIL_DATA="+filepath.Join(cmd.Dir, "sealmail-data"))
	out, err := env.Output()
	if err != nil {
		t.Fatalf("domain list with $SEALMAIL_DATA: %v", err)
	}
	if ds := decode[[]domainJSON](t, string(out)); len(ds) != 1 {
		t.Errorf("domain list with $SEALMAIL_DATA: %+v", ds)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"user", "--help"}, {"user", "add", "--help"}, {"serve", "--help"}, {"backup", "-h"}} {
		out := ok(t, "", args...)
		if !strings.HasPrefix(out, "usage: sealmail") {
			t.Errorf("sealmail %s: %q", strings.Join(args, " "), out)
		}
	}
	fails(t, "", nil, "missing command")
	fails(t, "", []string{"frobnicate"}, `unknown command "frobnicate"`, "sealmail --help")
	fails(t, "", []string{"user", "frobnicate"}, `unknown command "user frobnicate"`, "sealmail user --help")
	fails(t, "", []string{"user", "add"}, "user add: missing arguments", "usage: sealmail user add ADDRESS")
	fails(t, "", []string{"user", "add", "a@x.example", "b@x.example"}, `unexpected argument "b@x.example"`)
	fails(t, "", []string{"user", "list", "--bogus"}, "flag provided but not defined: -bogus", "usage: sealmail user list")
}

func TestDomain(t *testing.T) {
	data := setupData(t)
	out := ok(t, "", "domain", "add", "so.example", "--data", data, "--organ-id", "000.00.13.H10", "--organ-name", "Sở Nội vụ")
	if !strings.Contains(out, "sealmail._domainkey.so.example") {
		t.Errorf("domain add printed no DKIM record:\n%s", out)
	}
	if fi, err := os.Stat(filepath.Join(data, "dkim", "so.example.sealmail.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("DKIM key of the new domain: %v %v", fi, err)
	}
	fails(t, "", []string{"domain", "add", "--data", data, "so.example"}, "domain so.example is already hosted here")
	ds := decode[[]domainJSON](t, ok(t, "", "domain", "list", "--data", data, "--json"))
	if len(ds) != 2 || ds[1].Name != "so.example" || ds[1].OrganName != "Sở Nội vụ" || ds[1].OrganID != "000.00.13.H10" {
		t.Errorf("domain list --json: %+v", ds)
	}
	if out := ok(t, "", "domain", "list", "--data", data); !strings.Contains(out, "so.example") || !strings.Contains(out, "Sở Nội vụ") {
		t.Errorf("domain list:\n%s", out)
	}

	ok(t, "", "user", "add", "a@so.example", "--data", data)
	fails(t, "", []string{"domain", "remove", "so.example", "--data", data}, "still has 1 accounts")
	ok(t, "", "user", "remove", "a@so.example", "--yes", "--data", data)
	ok(t, "", "domain", "remove", "so.example", "--data", data)
	fails(t, "", []string{"domain", "remove", "so.example", "--data", data}, "domain so.example is not hosted here", "sealmail domain list")
	if ds := decode[[]domainJSON](t, ok(t, "", "domain", "list", "--json", "--data", data)); len(ds) != 1 {
		t.Errorf("after remove: %+v", ds)
	}
}

func TestUser(t *testing.T) {
	data := setupData(t)
	s := openStore(t, data)

	// Flags after the positional argument, as admins type them.
	out := ok(t, "", "user", "add", "a@agency.example", "--role", "clerk", "--data", data, "--name", "Nguyễn Văn A", "--quota", "2GiB")
	checkLogin(t, s, "a@agency.example", printedPassword(t, out))
	out = ok(t, "secret pass\r\n", "user", "add", "--password-stdin", "b@agency.example", "--data", data)
	if strings.Contains(out, "password:") {
		t.Errorf("--password-stdin printed a password:\n%s", out)
	}
	checkLogin(t, s, "b@agency.example", "secret pass")
	ok(t, "no newline", "user", "add", "c@agency.example", "--data", data, "--password-stdin")
	checkLogin(t, s, "c@agency.example", "no newline")

	fails(t, "", []string{"user", "add", "x@x.test", "--data", data}, "domain x.test is not hosted here; add it with 'sealmail domain add x.test'")
	fails(t, "", []string{"user", "add", "a@agency.example", "--data", data}, "account a@agency.example already exists")
	fails(t, "", []string{"user", "add", "d@agency.example", "--role", "boss", "--data", data}, `role "boss"`, "staff, clerk or admin")
	fails(t, "", []string{"user", "add", "d@agency.example", "--quota", "lots", "--data", data}, "quota", "GiB")
	fails(t, "", []string{"user", "add", "not-an-address", "--data", data}, "not a mail address")
	fails(t, "\n", []string{"user", "add", "d@agency.example", "--password-stdin", "--data", data}, "--password-stdin", "empty")

	us := decode[[]accountJSON](t, ok(t, "", "user", "list", "--json", "--data", data))
	if len(us) != 3 {
		t.Fatalf("user list --json: %+v", us)
	}
	if a := us[0]; a.Address != "a@agency.example" || a.Name != "Nguyễn Văn A" || a.Role != "clerk" || a.Quota != 2<<30 || a.Disabled {
		t.Errorf("user list --json: %+v", a)
	}
	if b := us[1]; b.Role != "staff" || b.Quota != 0 {
		t.Errorf("user list --json: %+v", b)
	}
	out = ok(t, "", "user", "list", "--data", data)
	if !strings.Contains(out, "0 B / 2 GiB") || !strings.Contains(out, "0 B / unlimited") || !strings.Contains(out, "Nguyễn Văn A") {
		t.Errorf("user list:\n%s", out)
	}

	ok(t, "", "user", "disable", "b@agency.example", "--data", data)
	if _, err := s.Authenticate(context.Background(), "b@agency.example", "secret pass"); err != mailstore.ErrDisabled {
		t.Errorf("log in to a disabled account: %v", err)
	}
	if us := decode[[]accountJSON](t, ok(t, "", "user", "list", "--json", "--data", data)); !us[1].Disabled {
		t.Errorf("user list after disable: %+v", us[1])
	}
	ok(t, "", "user", "enable", "--data", data, "b@agency.example")
	checkLogin(t, s, "b@agency.example", "secret pass")
	fails(t, "", []string{"user", "disable", "nobody@agency.example", "--data", data}, "there is no account nobody@agency.example")

	ok(t, "", "user", "quota", "b@agency.example", "500MiB", "--data", data)
	if a, err := s.Account(context.Background(), "b@agency.example"); err != nil || a.Quota != 500<<20 {
		t.Errorf("after user quota 500MiB: %+v, %v", a, err)
	}
	ok(t, "", "user", "quota", "--data", data, "b@agency.example", "0")
	if a, err := s.Account(context.Background(), "b@agency.example"); err != nil || a.Quota != 0 {
		t.Errorf("after user quota 0: %+v, %v", a, err)
	}
	fails(t, "", []string{"user", "quota", "b@agency.example", "lots", "--data", data}, "quota", "0 for no limit")
	fails(t, "", []string{"user", "quota", "nobody@agency.example", "1GiB", "--data", data}, "there is no account nobody@agency.example")

	ok(t, "new secret\n", "user", "passwd", "b@agency.example", "--password-stdin", "--data", data)
	checkLogin(t, s, "b@agency.example", "new secret")
	checkLogin(t, s, "b@agency.example", printedPassword(t, ok(t, "", "user", "passwd", "b@agency.example", "--data", data)))

	fails(t, "", []string{"user", "remove", "b@agency.example", "--data", data}, "--yes")
	if _, err := s.Account(context.Background(), "b@agency.example"); err != nil {
		t.Errorf("user remove without --yes removed the account: %v", err)
	}
	ok(t, "", "user", "remove", "--yes", "b@agency.example", "--data", data)
	if _, err := s.Account(context.Background(), "b@agency.example"); err == nil {
		t.Error("user remove --yes kept the account")
	}
	fails(t, "", []string{"user", "remove", "b@agency.example", "--yes", "--data", data}, "there is no account b@agency.example")
}

func TestImport(t *testing.T) {
	data := setupData(t)
	s := openStore(t, data)
	ctx := context.Background()
	write := func(name, content string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noAccounts := func() {
		t.Helper()
		if as, err := s.Accounts(ctx); err != nil || len(as) != 0 {
			t.Errorf("a failed import left accounts: %v %v", as, err)
		}
	}

	bad := write("bad.csv", "address,name,role,quota,password\n"+
		"a@agency.example,A,staff,1GiB,pw-a\n"+
		"b@agency.example,B,boss,,\n")
	fails(t, "", []string{"user", "import", bad, "--data", data}, "bad.csv:3:", `role "boss"`)
	noAccounts()

	unhosted := write("unhosted.csv", "address,password\na@agency.example,pw\nb@x.test,pw\n")
	fails(t, "", []string{"user", "import", "--data", data, unhosted}, "unhosted.csv:3:", "domain x.test is not hosted here")
	noAccounts()

	dup := write("dup.csv", "address\na@agency.example\nA@agency.example\n")
	fails(t, "", []string{"user", "import", dup, "--data", data}, "dup.csv:3:", "already on line 2")
	noAccounts()

	fails(t, "", []string{"user", "import", write("h.csv", "email,name\nx@agency.example,X\n"), "--data", data}, "h.csv:1:", `unknown column "email"`)
	noAccounts()

	ok(t, "pw\n", "user", "add", "taken@agency.example", "--password-stdin", "--data", data)
	taken := write("taken.csv", "address,password\na@agency.example,pw\ntaken@agency.example,pw\n")
	fails(t, "", []string{"user", "import", taken, "--data", data}, "taken.csv:3:", "taken@agency.example already exists")
	if as, _ := s.Accounts(ctx); len(as) != 1 {
		t.Errorf("a failed import left accounts: %v", as)
	}
	ok(t, "", "user", "remove", "taken@agency.example", "--yes", "--data", data)

	good := write("staff.csv", "address,name,role,quota,password\n"+
		"a@agency.example,Nguyễn Văn A,clerk,1GiB,given pw\n"+
		"\"b@agency.example\",\"Trần Thị B, phó phòng\",,,\n"+
		"c@agency.example,C,admin,512MiB,\n")
	out := ok(t, "", "user", "import", good, "--data", data)
	m := regexp.MustCompile(`are in (\S+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("import printed no password file:\n%s", out)
	}
	checkMode(t, m[1], 0o600)
	fh, err := os.Open(m[1])
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(fh).ReadAll()
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "address" || rows[1][0] != "b@agency.example" || rows[2][0] != "c@agency.example" {
		t.Fatalf("password file: %q", rows)
	}
	for _, r := range rows[1:] {
		checkLogin(t, s, r[0], r[1])
	}
	checkLogin(t, s, "a@agency.example", "given pw")
	us := decode[[]accountJSON](t, ok(t, "", "user", "list", "--json", "--data", data))
	if len(us) != 3 || us[0].Role != "clerk" || us[0].Quota != 1<<30 || us[1].Name != "Trần Thị B, phó phòng" || us[1].Role != "staff" ||
		us[2].Role != "admin" || us[2].Quota != 512<<20 {
		t.Errorf("imported: %+v", us)
	}
}

func TestAlias(t *testing.T) {
	data := setupData(t)
	ok(t, "", "user", "add", "a@agency.example", "--data", data)
	ok(t, "", "user", "add", "b@agency.example", "--data", data)
	ok(t, "", "alias", "add", "all@agency.example", "a@agency.example", "--data", data, "b@agency.example")
	ok(t, "", "alias", "add", "@agency.example", "a@agency.example", "--data", data)
	fails(t, "", []string{"alias", "add", "all@x.test", "a@agency.example", "--data", data}, "domain x.test is not hosted here; add it with 'sealmail domain add x.test'")
	fails(t, "", []string{"alias", "add", "a@agency.example", "b@agency.example", "--data", data}, "a@agency.example is an account")
	fails(t, "", []string{"alias", "add", "lonely@agency.example", "--data", data}, "missing arguments")

	as := decode[[]aliasJSON](t, ok(t, "", "alias", "list", "--json", "--data", data))
	want := []aliasJSON{{"@agency.example", []string{"a@agency.example"}}, {"all@agency.example", []string{"a@agency.example", "b@agency.example"}}}
	if fmt.Sprint(as) != fmt.Sprint(want) {
		t.Errorf("alias list --json: %+v, want %+v", as, want)
	}
	if out := ok(t, "", "alias", "list", "--data", data); !strings.Contains(out, "all@agency.example  a@agency.example, b@agency.example") {
		t.Errorf("alias list:\n%s", out)
	}
	ok(t, "", "alias", "remove", "all@agency.example", "--data", data)
	fails(t, "", []string{"alias", "remove", "all@agency.example", "--data", data}, "there is no alias all@agency.example")
	if as := decode[[]aliasJSON](t, ok(t, "", "alias", "list", "--json", "--data", data)); len(as) != 1 {
		t.Errorf("after remove: %+v", as)
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		role string
		yes  bool
	}{
		{[]string{"a", "--role", "clerk", "b"}, []string{"a", "b"}, "clerk", false},
		{[]string{"--yes", "a", "-role=admin"}, []string{"a"}, "admin", true},
		{[]string{"a", "b", "--yes"}, []string{"a", "b"}, "", true},
		{[]string{"a", "--", "--yes", "-x"}, []string{"a", "--yes", "-x"}, "", false},
		{[]string{"--role", "x", "--", "-"}, []string{"-"}, "x", false},
	} {
		f := newFlags("test", "")
		role := f.String("role", "", "")
		yes := f.Bool("yes", false, "")
		pos, err := f.parse(tc.args, 0, -1)
		if err != nil || !slices.Equal(pos, tc.pos) || *role != tc.role || *yes != tc.yes {
			t.Errorf("parse %q: %q role=%q yes=%v err=%v", tc.args, pos, *role, *yes, err)
		}
	}
}
