package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"sealmail/config"
	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
	"sealmail/throttle"
)

// env is a running server on 127.0.0.1 with its three ports.
type env struct {
	store     *mailstore.Store
	srv       *Server
	mx        string // port 25 role
	sub       string // 587, STARTTLS
	subs      string // 465, implicit TLS
	clientTLS *tls.Config
	certPath  string
	accounts  []mailstore.Account
	serveErrs chan error
}

// fakeQueue counts the wake-ups of the relay; the store holds the queue.
type fakeQueue struct{ wakes atomic.Int32 }

func (q *fakeQueue) Wake() { q.wakes.Add(1) }

type queued struct {
	from  string
	rcpts []string
	msg   []byte
}

// queued lists what the store queued for the relay.
func (e *env) queued(t testing.TB) []queued {
	t.Helper()
	ctx := context.Background()
	entries, err := e.store.Queue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []queued
	for _, en := range entries {
		msg, err := e.store.QueueContent(ctx, en.ID)
		if err != nil {
			t.Fatal(err)
		}
		q := queued{from: en.From, msg: msg}
		for _, r := range en.Rcpts {
			q.rcpts = append(q.rcpts, r.Addr)
		}
		out = append(out, q)
	}
	return out
}

func openStore(t testing.TB, dir string) *mailstore.Store {
	t.Helper()
	st, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// testTLS writes a self-signed certificate for 127.0.0.1 and returns the
// server's configuration and a client's that trusts it.
func testTLS(t testing.TB, dir string) (server, client *tls.Config, certPath string) {
	t.Helper()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := config.WriteSelfSigned(certPath, keyPath, []string{"mail.example.test", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, ServerName: "mail.example.test"}, certPath
}

// start runs srv (filled with defaults for what is unset) on three fresh ports,
// with accounts a@, b@ and c@example.test (password "pw").
func start(t testing.TB, srv *Server) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{srv: srv, serveErrs: make(chan error, 3)}
	if srv.Store == nil {
		srv.Store = openStore(t, dir)
		t.Cleanup(func() { srv.Store.Close() })
	}
	e.store = srv.Store
	e.accounts = storetest.Setup(t, e.store, "a@example.test", "b@example.test", "c@example.test")
	var serverTLS *tls.Config
	serverTLS, e.clientTLS, e.certPath = testTLS(t, dir)
	if srv.TLSConfig == nil {
		srv.TLSConfig = serverTLS
	}
	if srv.Hostname == "" {
		srv.Hostname = "mail.example.test"
	}
	if srv.Logger == nil {
		srv.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if srv.Logins == nil {
		srv.Logins = throttle.NewLogins()
	}
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	lmx, lsub, lsubs := listen(), listen(), listen()
	e.mx, e.sub, e.subs = lmx.Addr().String(), lsub.Addr().String(), lsubs.Addr().String()
	go func() { e.serveErrs <- srv.ServeMX(lmx) }()
	go func() { e.serveErrs <- srv.ServeSubmission(lsub, false) }()
	go func() { e.serveErrs <- srv.ServeSubmission(lsubs, true) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for range 3 {
			if err := <-e.serveErrs; !errors.Is(err, ErrServerClosed) {
				t.Errorf("serve returned %v, want ErrServerClosed", err)
			}
		}
	})
	return e
}

// testWriter sends server logs to the test's log, shown when it fails.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// dialMX connects to the MX port in clear.
func (e *env) dialMX(t testing.TB) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(e.mx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialSubmit connects to 587, starts TLS and logs in as user.
func (e *env) dialSubmit(t testing.TB, user string) *smtp.Client {
	t.Helper()
	c, err := smtp.DialStartTLS(e.sub, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Auth(sasl.NewPlainClient("", user, "pw")); err != nil {
		t.Fatalf("auth %s: %v", user, err)
	}
	return c
}

// send runs one transaction and returns the first error.
func send(c *smtp.Client, from string, to []string, msg string) error {
	return c.SendMail(from, to, strings.NewReader(msg))
}

// wantCode checks that err is an SMTP reply with this code and enhanced code.
func wantCode(t testing.TB, err error, code int, enhanced string) *smtp.SMTPError {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want SMTP error %d %s", err, code, enhanced)
	}
	got := fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	if se.Code != code || (enhanced != "" && got != enhanced) {
		t.Fatalf("got %d %s %q, want %d %s", se.Code, got, se.Message, code, enhanced)
	}
	return se
}

// inbox returns the messages in an account's mailbox, with content.
func (e *env) mailbox(t testing.TB, address, name string) []mailstore.Item {
	t.Helper()
	ctx := context.Background()
	a, err := e.store.Account(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := e.store.Mailbox(ctx, a.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	var items []mailstore.Item
	err = e.store.Fetch(ctx, mb.ID, nil, mailstore.FetchContent|mailstore.FetchEnvelope, func(it mailstore.Item) error {
		items = append(items, it)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func (e *env) inbox(t testing.TB, address string) []mailstore.Item {
	return e.mailbox(t, address, mailstore.Inbox)
}

// raw is a hand-driven SMTP connection, for what go-smtp's client cannot say
// (BDAT, pipelining, lies, garbage).
type raw struct {
	t    testing.TB
	conn net.Conn
	r    *textproto.Reader
}

func dialRaw(t testing.TB, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return dialRawConn(t, c)
}

func dialRawConn(t testing.TB, c net.Conn) *raw {
	t.Helper()
	r := dialRawConnNoGreeting(t, c)
	r.expect(220)
	return r
}

func dialRawConnNoGreeting(t testing.TB, c net.Conn) *raw {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &raw{t: t, conn: c, r: textproto.NewReader(bufio.NewReader(c))}
}

// reply reads one (possibly multi-line) reply.
func (r *raw) reply() (int, string) {
	r.t.Helper()
	code, msg, err := r.r.ReadResponse(0)
	if err != nil && code == 0 {
		r.t.Fatalf("reading reply: %v", err)
	}
	return code, msg
}

func (r *raw) expect(code int) string {
	r.t.Helper()
	got, msg := r.reply()
	if got != code {
		r.t.Fatalf("got %d %s, want %d", got, msg, code)
	}
	return msg
}

func (r *raw) write(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.conn, s); err != nil {
		r.t.Fatal(err)
	}
}

// cmd sends a line and returns the reply.
func (r *raw) cmd(line string) (int, string) {
	r.t.Helper()
	r.write(line + "\r\n")
	return r.reply()
}

// ok sends a line that must succeed.
func (r *raw) ok(line string) string {
	r.t.Helper()
	code, msg := r.cmd(line)
	if code < 200 || code > 399 {
		r.t.Fatalf("%s: %d %s", line, code, msg)
	}
	return msg
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func msgFrom(from, to, subject string) string {
	return string(storetest.Msg(from, to, subject, "Kính gửi các đơn vị."))
}
