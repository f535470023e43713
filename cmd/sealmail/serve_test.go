package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"sealmail/config"
	"sealmail/internal/testwait"
	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// server is a running 'sealmail serve'.
type server struct {
	cmd   *exec.Cmd
	addrs map[string]string // bound address by listener key, e.g. "imaps-addr"
	done  chan error        // the process's exit
	mu    sync.Mutex
	log   strings.Builder
}

var listening = regexp.MustCompile(`msg=listening listener=(\S+) addr=(\S+)`)

// startServe starts 'sealmail serve' on data with every listener on a free
// loopback port, and waits until it serves.
func startServe(t *testing.T, data string) *server {
	t.Helper()
	args := []string{"serve", "--data", data, "--dns", "off"}
	for _, k := range listenerKeys {
		args = append(args, "--"+k, "127.0.0.1:0")
	}
	return start(t, cmdFor(t, args...))
}

// start starts cmd, a sealmail command that serves, and waits until it does.
func start(t *testing.T, cmd *exec.Cmd) *server {
	t.Helper()
	srv := &server{cmd: cmd, addrs: map[string]string{}, done: make(chan error, 1)}
	stderr, err := srv.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			srv.mu.Lock()
			srv.log.WriteString(line + "\n")
			if m := listening.FindStringSubmatch(line); m != nil {
				srv.addrs[m[1]] = m[2]
			}
			srv.mu.Unlock()
			if strings.Contains(line, "msg=\"sealmail started\"") {
				close(started)
			}
		}
		srv.done <- srv.cmd.Wait()
	}()
	t.Cleanup(func() {
		if srv.cmd.ProcessState == nil {
			srv.cmd.Process.Kill()
			<-srv.done
		}
	})
	select {
	case <-started:
	case err := <-srv.done:
		t.Fatalf("serve exited before serving: %v\n%s", err, srv.logs())
	}
	if len(srv.addrs) != len(listenerKeys) {
		t.Fatalf("serve logged %d listeners, want %d: %v", len(srv.addrs), len(listenerKeys), srv.addrs)
	}
	return srv
}

// waitLog waits until serve has logged a line containing s.
func (srv *server) waitLog(t *testing.T, s string) {
	t.Helper()
	testwait.For(t, fmt.Sprintf("serve to log %q", s), func() bool { return strings.Contains(srv.logs(), s) })
}

func (srv *server) logs() string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.log.String()
}

// stop sends SIGTERM and checks that serve exits 0.
func (srv *server) stop(t *testing.T) {
	t.Helper()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-srv.done; err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.logs())
	}
	if !strings.Contains(srv.logs(), "msg=stopped") {
		t.Errorf("serve did not log its clean stop:\n%s", srv.logs())
	}
}

// clientTLS trusts only the local CA of data, as staff who imported it do.
func clientTLS(t *testing.T, data string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(data, "tls/ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in tls/ca.pem")
	}
	return &tls.Config{RootCAs: pool}
}

// checkIMAP logs in over IMAPS and returns how many messages INBOX holds.
func checkIMAP(t *testing.T, srv *server, data, user, password string) uint32 {
	t.Helper()
	c, err := imapclient.DialTLS(srv.addrs["imaps-addr"], &imapclient.Options{TLSConfig: clientTLS(t, data)})
	if err != nil {
		t.Fatalf("imaps: %v", err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("imaps login: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("imaps select: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("imaps logout: %v", err)
	}
	return sel.NumMessages
}

// checkSubmission authenticates after STARTTLS on the submission port.
func checkSubmission(t *testing.T, srv *server, data, user, password string) {
	t.Helper()
	c, err := smtp.DialStartTLS(srv.addrs["submission-addr"], clientTLS(t, data))
	if err != nil {
		t.Fatalf("submission: %v", err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, password)); err != nil {
		t.Fatalf("submission auth: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("submission quit: %v", err)
	}
}

// checkMX sends a message from another server to a@agency.example over the
// MX port and checks that it arrives with its inbound checks recorded in a
// header field of its own.
func checkMX(t *testing.T, srv *server, data string) {
	t.Helper()
	c, err := smtp.Dial(srv.addrs["smtp-addr"])
	if err != nil {
		t.Fatalf("mx: %v", err)
	}
	defer c.Close()
	msg := storetest.Msg("x@other.example", "a@agency.example", "công văn", "nội dung")
	if err := c.SendMail("x@other.example", []string{"a@agency.example"}, bytes.NewReader(msg)); err != nil {
		t.Fatalf("mx: %v", err)
	}
	c.Quit()

	s := openStore(t, data)
	ctx := context.Background()
	acct, err := s.Account(ctx, "a@agency.example")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	err = s.Fetch(ctx, inbox.ID, nil, mailstore.FetchContent, func(it mailstore.Item) error {
		got = it.Content
		return nil
	})
	if err != nil || got == nil {
		t.Fatalf("the message sent to the MX port is not in INBOX: %v", err)
	}
	m, err := mail.ReadMessage(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("delivered message: %v\n%s", err, got)
	}
	if ar := m.Header.Get("Authentication-Results"); !strings.HasPrefix(ar, "mail.agency.example") || strings.Contains(ar, "Received") {
		t.Errorf("Authentication-Results: %q", ar)
	}
	if m.Header.Get("Received") == "" || m.Header.Get("Subject") == "" {
		t.Errorf("delivered header:\n%s", got)
	}
}

func TestServe(t *testing.T) {
	data := setupData(t)
	ok(t, "pw\n", "user", "add", "a@agency.example", "--password-stdin", "--data", data)
	srv := startServe(t, data)
	for _, k := range listenerKeys {
		if !strings.HasPrefix(srv.addrs[k], "127.0.0.1:") || strings.HasSuffix(srv.addrs[k], ":0") {
			t.Errorf("%s bound at %q", k, srv.addrs[k])
		}
	}
	if n := checkIMAP(t, srv, data, "a@agency.example", "pw"); n != 0 {
		t.Errorf("INBOX of a new account holds %d messages", n)
	}
	checkSubmission(t, srv, data, "a@agency.example", "pw")
	checkMX(t, srv, data)
	// The admin command works beside the running server.
	ok(t, "pw2\n", "user", "add", "b@agency.example", "--password-stdin", "--data", data)
	checkIMAP(t, srv, data, "b@agency.example", "pw2")
	srv.stop(t)
}

func TestServeErrors(t *testing.T) {
	data := setupData(t)
	fails(t, "", []string{"serve", "--data", data, "--imap-addr", "nonsense"}, `imap-addr: "nonsense" is not HOST:PORT`)
	fails(t, "", []string{"serve", "--data", data, "--dns", "sometimes"}, "dns:", "system, off or HOST:PORT")
	srv := startServe(t, data)
	taken := srv.addrs["imaps-addr"]
	fails(t, "", []string{"serve", "--data", data, "--smtp-addr", "127.0.0.1:0", "--submission-addr", "127.0.0.1:0",
		"--submissions-addr", "127.0.0.1:0", "--imap-addr", "127.0.0.1:0", "--imaps-addr", taken}, taken, "--imaps-addr")
	srv.stop(t)

	// The TSA roots are read at start, not at the first document.
	path := filepath.Join(data, config.FileName)
	conf := readAll(t, path)
	conf = bytes.Replace(conf, []byte(`tsa-url = ""`), []byte(`tsa-url = "http://127.0.0.1:9/tsr"`), 1)
	conf = bytes.Replace(conf, []byte(`tsa-ca = ""`), []byte(`tsa-ca = "tsa/roots.pem"`), 1)
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "", []string{"serve", "--data", data, "--smtp-addr", "127.0.0.1:0", "--submission-addr", "", "--submissions-addr", "",
		"--imap-addr", "", "--imaps-addr", ""}, "documents.tsa-ca", "roots.pem", "[documents]")
}

func TestBackup(t *testing.T) {
	data := setupData(t)
	ok(t, "pw\n", "user", "add", "a@agency.example", "--password-stdin", "--data", data)
	ok(t, "", "alias", "add", "all@agency.example", "a@agency.example", "--data", data)
	if err := os.WriteFile(filepath.Join(data, "tls", "extra.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	// This process holds the store open and keeps delivering while the
	// backup runs.
	s := openStore(t, data)
	ctx := context.Background()
	acct, err := s.Account(ctx, "a@agency.example")
	if err != nil {
		t.Fatal(err)
	}
	deliver := func() error {
		_, err := s.Deliver(ctx, storetest.Msg("x@other.example", "a@agency.example", "tin", "nội dung"), time.Now(),
			[]mailstore.Target{{AccountID: acct.ID}})
		return err
	}
	for range 10 {
		if err := deliver(); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	errc := make(chan error, 1)
	go func() {
		var err error
		for !stop.Load() && err == nil {
			err = deliver()
		}
		errc <- err
	}()
	dest := filepath.Join(t.TempDir(), "backup")
	out := ok(t, "", "backup", dest, "--data", data)
	stop.Store(true)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "sealmail serve --data "+dest) {
		t.Errorf("backup output:\n%s", out)
	}

	checkMode(t, dest, 0o700)
	checkMode(t, filepath.Join(dest, "tls/key.pem"), 0o600)
	checkMode(t, filepath.Join(dest, "tls/extra.pem"), 0o600)
	for _, name := range []string{mailstore.DBFile + "-wal", mailstore.DBFile + "-shm"} {
		if _, err := os.Stat(filepath.Join(dest, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("backup copied %s: %v", name, err)
		}
	}
	if _, err := config.Load(dest); err != nil {
		t.Errorf("backup configuration: %v", err)
	}
	b := openStore(t, dest)
	st, err := b.StorageStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages < 10 || st.Refs != st.Messages {
		t.Errorf("backup store: %+v, want at least 10 consistent messages", st)
	}
	if as, err := b.Aliases(ctx); err != nil || len(as) != 1 {
		t.Errorf("backup aliases: %v %v", as, err)
	}
	b.Close()

	fails(t, "", []string{"backup", dest, "--data", data}, dest+" already exists")
	fails(t, "", []string{"backup", filepath.Join(data, "inside"), "--data", data}, "inside the data directory")

	// The copy runs as is.
	srv := startServe(t, dest)
	if n := checkIMAP(t, srv, dest, "a@agency.example", "pw"); int64(n) != st.Messages {
		t.Errorf("serving the backup: INBOX holds %d messages, want %d", n, st.Messages)
	}
	srv.stop(t)
}

func TestQuickstart(t *testing.T) {
	// Quickstart listens on fixed ports, which tests must not take: hold its
	// first one (or find it taken) so that the first runs stop after setting up.
	block, err := net.Listen("tcp", "127.0.0.1:2525")
	if err == nil {
		defer block.Close()
	}
	dir := t.TempDir()
	quickstart := func() result {
		cmd := cmdFor(t, "quickstart")
		cmd.Dir = dir
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
	}
	r := quickstart()
	if r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:2525") {
		t.Fatalf("quickstart with port 2525 taken: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	data := filepath.Join(dir, "sealmail-data")
	for _, w := range []string{"127.0.0.1:2143", "127.0.0.1:2993", "127.0.0.1:2587", "127.0.0.1:2465", "127.0.0.1:2443", "demo@example.test", "tls/ca.pem"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("quickstart output lacks %q:\n%s", w, r.stdout)
		}
	}
	password := regexp.MustCompile(`password +(\S+)`).FindStringSubmatch(r.stdout)
	if password == nil {
		t.Fatalf("quickstart printed no password:\n%s", r.stdout)
	}
	checkMode(t, filepath.Join(data, "quickstart-password"), 0o600)
	checkDKIM(t, r.stdout, filepath.Join(data, "dkim"), "example.test")
	s := openStore(t, data)
	checkLogin(t, s, "demo@example.test", password[1])
	s.Close()

	// Again on the existing setup: the same information, nothing created anew.
	if r2 := quickstart(); r2.code != 1 || r2.stdout != r.stdout[strings.Index(r.stdout, "Configure a mail client"):] {
		t.Errorf("second quickstart: exit %d\n%s\nwant the client setup of the first:\n%s", r2.code, r2.stdout, r.stdout)
	}
	os.Remove(filepath.Join(data, "quickstart-password"))
	if r3 := quickstart(); strings.Contains(r3.stdout, password[1]) || !strings.Contains(r3.stdout, "no longer stored") {
		t.Errorf("quickstart without the password file:\n%s", r3.stdout)
	}

	// Moved to free ports, quickstart serves the demo account.
	conf := filepath.Join(data, config.FileName)
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	b = regexp.MustCompile(`"127\.0\.0\.1:\d+"`).ReplaceAll(b, []byte(`"127.0.0.1:0"`))
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := cmdFor(t, "quickstart")
	cmd.Dir = dir
	srv := start(t, cmd)
	checkIMAP(t, srv, data, "demo@example.test", password[1])
	srv.stop(t)
}
