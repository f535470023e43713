package imapd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/config"
	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
	"sealmail/throttle"
)

// env is a running server with two accounts, nam@ and lan@example.test
// (password "pw"), on a STARTTLS and an implicit-TLS port.
type env struct {
	store    *mailstore.Store
	srv      *Server
	accts    []mailstore.Account
	plain    string // STARTTLS address
	tls      string // implicit TLS address
	certFile string
	client   *tls.Config
}

func newEnv(t testing.TB, configure ...func(*Server)) *env {
	t.Helper()
	return newEnvAt(t, t.TempDir(), configure...)
}

// newEnvAt is newEnv on the store in dir, which may already hold the accounts.
func newEnvAt(t testing.TB, dir string, configure ...func(*Server)) *env {
	t.Helper()
	store, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{store: store}
	if a, err := store.Account(context.Background(), "nam@example.test"); err == nil {
		b, err := store.Account(context.Background(), "lan@example.test")
		if err != nil {
			t.Fatal(err)
		}
		e.accts = []mailstore.Account{a, b}
	} else {
		e.accts = storetest.Setup(t, store, "nam@example.test", "lan@example.test")
	}

	certDir := t.TempDir()
	e.certFile = filepath.Join(certDir, "cert.pem")
	keyFile := filepath.Join(certDir, "key.pem")
	if err := config.WriteSelfSigned(e.certFile, keyFile, []string{"127.0.0.1", "localhost"}); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(e.certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(e.certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	e.client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	e.srv = &Server{
		Store:     store,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, f := range configure {
		f(e.srv)
	}
	lp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lt, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.plain, e.tls = lp.Addr().String(), lt.Addr().String()
	var wg sync.WaitGroup
	for _, serve := range []func() error{func() error { return e.srv.Serve(lp) }, func() error { return e.srv.ServeTLS(lt) }} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serve(); !errors.Is(err, ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		if err := e.srv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		wg.Wait()
	})
	return e
}

// dial connects over implicit TLS and logs in as user@example.test.
func (e *env) dial(t testing.TB, user string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(e.tls, &imapclient.Options{TLSConfig: e.client, UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user+"@example.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) deliver(t testing.TB, acct mailstore.Account, mailbox string, raw []byte) uint32 {
	t.Helper()
	ds, err := e.store.Deliver(context.Background(), raw, time.Time{}, []mailstore.Target{{AccountID: acct.ID, Mailbox: mailbox}})
	if err != nil || ds[0].Err != nil {
		t.Fatalf("deliver: %v %v", err, ds)
	}
	return ds[0].UID
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func isCode(err error, code imap.ResponseCode) bool {
	var e *imap.Error
	return errors.As(err, &e) && e.Code == code
}

func TestSTARTTLSAndCapabilities(t *testing.T) {
	e := newEnv(t)
	c, err := imapclient.DialInsecure(e.plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps := must[imap.CapSet](t)(c.Capability().Wait())
	if !caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.CapStartTLS) || caps.Has(imap.Cap("AUTH=PLAIN")) {
		t.Errorf("cleartext capabilities: %v", caps)
	}
	if err := c.Login("nam@example.test", "pw").Wait(); !isCode(err, imap.ResponseCodePrivacyRequired) {
		t.Errorf("cleartext login: %v", err)
	}

	s, err := imapclient.DialStartTLS(e.plain, &imapclient.Options{TLSConfig: e.client})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if caps := must[imap.CapSet](t)(s.Capability().Wait()); !caps.Has(imap.Cap("AUTH=PLAIN")) || caps.Has(imap.CapLoginDisabled) {
		t.Errorf("capabilities after STARTTLS: %v", caps)
	}
	if err := s.Login("nam@example.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	caps = must[imap.CapSet](t)(s.Capability().Wait())
	for _, want := range []imap.Cap{"IMAP4rev1", "IMAP4rev2", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "SPECIAL-USE", "CREATE-SPECIAL-USE",
		"LIST-EXTENDED", "LIST-STATUS", "CHILDREN", "ESEARCH", "SEARCHRES", "STATUS=SIZE", "LITERAL+", "UNSELECT", "ENABLE",
		"UTF8=ACCEPT", "BINARY", "APPENDLIMIT", "CONDSTORE", "QRESYNC"} {
		if !caps.Has(want) {
			t.Errorf("missing capability %s in %v", want, caps)
		}
	}
	for _, not := range []imap.Cap{"NOTIFY", "QUOTASET"} {
		if caps.Has(not) {
			t.Errorf("advertises unimplemented %s", not)
		}
	}
	if limit, ok := caps.AppendLimit(); !ok || limit == nil || *limit != defaultMaxMessageSize {
		t.Errorf("APPENDLIMIT %v", limit)
	}
}

// After the free failures a further attempt fails at once with UNAVAILABLE,
// whatever the spelling of the name, until the wait is over.
func TestLoginThrottle(t *testing.T) {
	now := time.Unix(1e9, 0)
	logins := throttle.NewLogins()
	logins.Free, logins.Now = 2, func() time.Time { return now }
	e := newEnv(t, func(s *Server) { s.Logins = logins })
	c, err := imapclient.DialTLS(e.tls, &imapclient.Options{TLSConfig: e.client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		if err := c.Login("nam@example.test", "wrong").Wait(); !isCode(err, imap.ResponseCodeAuthenticationFailed) {
			t.Fatalf("bad password: %v", err)
		}
	}
	for _, name := range []string{"nam@example.test", " NAM@Example.Test ", "Nam@EXAMPLE.test\t"} {
		if err := c.Login(name, "pw").Wait(); !isCode(err, imap.ResponseCodeUnavailable) {
			t.Fatalf("login as %q right after the free failures: %v", name, err)
		}
	}
	now = now.Add(time.Second)
	if err := c.Login(" NAM@example.test", "pw").Wait(); err != nil {
		t.Fatalf("right password after the wait: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.IdleTimeout = 300 * time.Millisecond })
	a := e.dial(t, "nam", nil)
	<-a.Closed() // the idle timeout, nothing else, ends it
}

func TestMailboxes(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t, "nam", nil)
	names := []string{"Văn bản đến", "Văn bản đến/2026/Sở Tài chính", "Lưu trữ"}
	for _, n := range names {
		if err := c.Create(n, nil).Wait(); err != nil {
			t.Fatalf("create %q: %v", n, err)
		}
	}
	if err := c.Create("Văn bản đến", nil).Wait(); !isCode(err, imap.ResponseCodeAlreadyExists) {
		t.Errorf("duplicate create: %v", err)
	}
	if err := c.Create("Báo cáo", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrFlagged}}).Wait(); err == nil {
		t.Error("unsupported special use accepted")
	}

	list := func(pattern string, o *imap.ListOptions) map[string]*imap.ListData {
		m := map[string]*imap.ListData{}
		for _, d := range must[[]*imap.ListData](t)(c.List("", pattern, o).Collect()) {
			m[d.Mailbox] = d
		}
		return m
	}
	all := list("*", nil)
	for _, n := range append(names, "INBOX", "Sent", "Văn bản đến/2026") {
		if all[n] == nil {
			t.Errorf("LIST * misses %q (got %v)", n, keys(all))
		}
	}
	has := func(d *imap.ListData, a imap.MailboxAttr) bool {
		for _, x := range d.Attrs {
			if strings.EqualFold(string(x), string(a)) {
				return true
			}
		}
		return false
	}
	if d := all["Văn bản đến"]; d == nil || !has(d, imap.MailboxAttrHasChildren) || d.Delim != '/' {
		t.Errorf("parent: %+v", d)
	}
	if d := all["Lưu trữ"]; d == nil || !has(d, imap.MailboxAttrHasNoChildren) {
		t.Errorf("leaf: %+v", d)
	}
	if d := all["Sent"]; d == nil || !has(d, imap.MailboxAttrSent) {
		t.Errorf("Sent lacks \\Sent: %+v", d)
	}
	if top := list("%", nil); top["Văn bản đến/2026"] != nil || top["Văn bản đến"] == nil {
		t.Errorf("LIST %% returned %v", keys(top))
	}
	if su := list("*", &imap.ListOptions{SelectSpecialUse: true}); len(su) != 5 || su["INBOX"] != nil {
		t.Errorf("LIST (SPECIAL-USE): %v", keys(su))
	}
	st := list("INBOX", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, Size: true}})
	if d := st["INBOX"]; d == nil || d.Status == nil || d.Status.NumMessages == nil || *d.Status.NumMessages != 0 {
		t.Errorf("LIST-STATUS: %+v", d)
	}

	// Subscriptions: CREATE subscribes nothing, SUBSCRIBE does.
	for _, n := range []string{"Văn bản đến", "Lưu trữ"} {
		if err := c.Subscribe(n).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Unsubscribe("Lưu trữ").Wait(); err != nil {
		t.Fatal(err)
	}
	sub := list("*", &imap.ListOptions{SelectSubscribed: true})
	if sub["Lưu trữ"] != nil || sub["Văn bản đến"] == nil || !has(sub["Văn bản đến"], imap.MailboxAttrSubscribed) ||
		sub["Văn bản đến/2026/Sở Tài chính"] != nil {
		t.Errorf("LIST (SUBSCRIBED): %v", keys(sub))
	}

	// Rename carries children; deleting leaves the children listed under a \Noselect level.
	if err := c.Rename("Văn bản đến", "Lưu trữ/Đến", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	all = list("*", nil)
	if all["Lưu trữ/Đến/2026/Sở Tài chính"] == nil || all["Văn bản đến"] != nil {
		t.Errorf("after rename: %v", keys(all))
	}
	if err := c.Delete("Lưu trữ/Đến").Wait(); err != nil {
		t.Fatal(err)
	}
	if d := list("Lưu trữ/%", nil)["Lưu trữ/Đến"]; d == nil || !has(d, imap.MailboxAttrNoSelect) {
		t.Errorf("deleted parent with children: %+v", d)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Error("INBOX deleted")
	}
	if err := c.Delete("Nowhere").Wait(); !isCode(err, imap.ResponseCodeNonExistent) {
		t.Errorf("delete missing: %v", err)
	}

	// INBOX rename moves its messages to the new mailbox and leaves INBOX empty.
	e.deliver(t, e.accts[0], "", storetest.Msg("a@b.test", "nam@example.test", "old", "x"))
	if err := c.Rename("inbox", "Cũ", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	s := must[*imap.StatusData](t)(c.Status("Cũ", &imap.StatusOptions{NumMessages: true}).Wait())
	i := must[*imap.StatusData](t)(c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait())
	if *s.NumMessages != 1 || *i.NumMessages != 0 {
		t.Errorf("INBOX rename: new %d, INBOX %d", *s.NumMessages, *i.NumMessages)
	}

	ns := must[*imap.NamespaceData](t)(c.Namespace().Wait())
	if len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Errorf("namespace %+v", ns)
	}
}

func keys(m map[string]*imap.ListData) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// raw is a line-level IMAP conversation, to see the exact bytes a client that
// predates UTF-8 gets.
type raw struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
	n int
}

func (e *env) raw(t *testing.T) *raw {
	c, err := tls.Dial("tcp", e.tls, e.client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, r: bufio.NewReader(c)}
	r.line()
	return r
}

func (r *raw) line() string {
	r.t.Helper()
	// Generous for a loaded machine, yet shorter than the server's 30 s
	// command timeout, which tests rely on not reaching.
	r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return l
}

// cmd sends a command and returns the untagged lines and the tagged status.
func (r *raw) cmd(s string) ([]string, string) {
	r.t.Helper()
	r.n++
	tag := fmt.Sprintf("a%d", r.n)
	fmt.Fprintf(r.c, "%s %s\r\n", tag, s)
	var lines []string
	for {
		l := r.line()
		if strings.HasPrefix(l, tag+" ") {
			return lines, strings.TrimSpace(strings.TrimPrefix(l, tag+" "))
		}
		lines = append(lines, strings.TrimSpace(l))
	}
}

func TestVietnameseNamesUTF7AndUTF8(t *testing.T) {
	e := newEnv(t)
	r := e.raw(t)
	if _, st := r.cmd(`LOGIN nam@example.test pw`); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	// "Công văn" in modified UTF-7, as a rev1 client sends it.
	const utf7 = "C&APQ-ng v&AQM-n"
	if _, st := r.cmd(`CREATE "` + utf7 + `"`); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	if _, err := e.store.Mailbox(context.Background(), e.accts[0].ID, "Công văn"); err != nil {
		t.Fatalf("stored name: %v", err)
	}
	lines, _ := r.cmd(`LIST "" "C*"`)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], `"`+utf7+`"`) {
		t.Errorf("rev1 LIST: %q", lines)
	}
	if _, st := r.cmd(`SELECT "` + utf7 + `"`); !strings.HasPrefix(st, "OK") {
		t.Errorf("select by UTF-7 name: %s", st)
	}
	r.cmd(`ENABLE UTF8=ACCEPT`)
	lines, _ = r.cmd(`LIST "" "C*"`)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], `"Công văn"`) {
		t.Errorf("UTF-8 LIST: %q", lines)
	}
	if _, st := r.cmd(`STATUS "Công văn" (MESSAGES)`); !strings.HasPrefix(st, "OK") {
		t.Errorf("status by UTF-8 name: %s", st)
	}
}

func TestAppendFetch(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.MaxMessageSize = 1 << 20 })
	c := e.dial(t, "nam", nil)
	msg := []byte("From: =?utf-8?q?Nguy=E1=BB=85n_V=C4=83n_A?= <a@example.test>\r\nTo: nam@example.test\r\nSubject: =?utf-8?b?" +
		"VsSDbiBi4bqjbiB24buBIMSQw6AgTuG6tW5n?=\r\nDate: Sat, 28 Nov 2026 10:00:00 +0700\r\nMessage-ID: <m1@example.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nxin ch=C3=A0o\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=cv.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n")
	date := time.Date(2026, 11, 27, 8, 30, 0, 0, time.FixedZone("", 7*3600))
	ap := c.Append("Archive", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged, "$CongViec"}, Time: date})
	ap.Write(msg)
	ap.Close()
	ad := must[*imap.AppendData](t)(ap.Wait())
	if ad.UID != 1 || ad.UIDValidity == 0 {
		t.Errorf("APPENDUID %+v", ad)
	}
	ap = c.Append("Nowhere", int64(len(msg)), nil)
	ap.Write(msg)
	ap.Close()
	if _, err := ap.Wait(); !isCode(err, imap.ResponseCodeTryCreate) {
		t.Errorf("append to missing mailbox: %v", err)
	}

	must[*imap.SelectData](t)(c.Select("Archive", nil).Wait())
	msgs := must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{
			{Peek: true},
			{Specifier: imap.PartSpecifierHeader, Peek: true},
			{Part: []int{1}, Peek: true},
			{Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 10}},
			{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true},
		},
		BinarySection:     []*imap.FetchItemBinarySection{{Part: []int{1}, Peek: true}, {Part: []int{2}, Peek: true}},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{2}}},
	}).Collect())
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.UID != 1 || m.RFC822Size != int64(len(msg)) || !m.InternalDate.Equal(date) {
		t.Errorf("uid %d size %d date %v", m.UID, m.RFC822Size, m.InternalDate)
	}
	// \Recent: this IMAP4rev1 session is the first to see the message.
	if fmt.Sprint(m.Flags) != `[\Flagged $CongViec \Recent]` {
		t.Errorf("flags %v", m.Flags)
	}
	if m.Envelope == nil || m.Envelope.Subject != "Văn bản về Đà Nẵng" || m.Envelope.From[0].Name != "Nguyễn Văn A" ||
		m.Envelope.MessageID != "m1@example.test" || m.Envelope.Date.Unix() != time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("envelope %+v", m.Envelope)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 2 || mp.Subtype != "mixed" {
		t.Fatalf("bodystructure %#v", m.BodyStructure)
	}
	if p := mp.Children[1].(*imap.BodyStructureSinglePart); p.Disposition() == nil || p.Disposition().Value != "attachment" || p.Encoding != "base64" {
		t.Errorf("attachment part %+v", p)
	}
	if p := mp.Children[0].(*imap.BodyStructureSinglePart); p.Text == nil || p.Params["charset"] != "utf-8" {
		t.Errorf("text part %+v", p)
	}
	sec := m.BodySection
	if string(sec[0].Bytes) != string(msg) {
		t.Error("BODY[] not byte-exact")
	}
	if !strings.HasPrefix(string(sec[1].Bytes), "From:") || !strings.HasSuffix(string(sec[1].Bytes), "\r\n\r\n") {
		t.Errorf("BODY[HEADER] %q", sec[1].Bytes)
	}
	if string(sec[2].Bytes) != "xin ch=C3=A0o" {
		t.Errorf("BODY[1] %q", sec[2].Bytes)
	}
	if string(sec[3].Bytes) != string(msg[6:16]) {
		t.Errorf("BODY[]<6.10> %q", sec[3].Bytes)
	}
	if !strings.HasPrefix(string(sec[4].Bytes), "Subject:") || strings.Contains(string(sec[4].Bytes), "From:") {
		t.Errorf("HEADER.FIELDS %q", sec[4].Bytes)
	}
	if string(m.BinarySection[0].Bytes) != "xin chào" || string(m.BinarySection[1].Bytes) != "%PDF-" {
		t.Errorf("BINARY %q %q", m.BinarySection[0].Bytes, m.BinarySection[1].Bytes)
	}
	if m.BinarySectionSize[0].Size != 5 {
		t.Errorf("BINARY.SIZE %d", m.BinarySectionSize[0].Size)
	}

	// A non-PEEK body fetch sets \Seen and says so.
	msgs = must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierText}}}).Collect())
	if len(msgs) != 1 || !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("BODY[TEXT] did not report \\Seen: %+v", msgs)
	}

	// Quota.
	if err := e.store.SetQuota(context.Background(), "nam@example.test", int64(len(msg))+10); err != nil {
		t.Fatal(err)
	}
	ap = c.Append("INBOX", int64(len(msg)), nil)
	ap.Write(msg)
	ap.Close()
	if _, err := ap.Wait(); !isCode(err, imap.ResponseCodeOverQuota) {
		t.Errorf("append over quota: %v", err)
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "INBOX").Wait(); !isCode(err, imap.ResponseCodeOverQuota) {
		t.Errorf("copy over quota: %v", err)
	}
	// APPENDLIMIT.
	big := make([]byte, 2<<20)
	ap = c.Append("INBOX", int64(len(big)), nil)
	ap.Write(big)
	ap.Close()
	if _, err := ap.Wait(); !isCode(err, imap.ResponseCodeTooBig) {
		t.Errorf("append over APPENDLIMIT: %v", err)
	}
}

// day is t's calendar date, as SEARCH dates are given.
func day(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func TestMalformedMessage(t *testing.T) {
	e := newEnv(t)
	broken := []byte("Subject: broken\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nunterminated")
	e.deliver(t, e.accts[0], "", broken)
	e.deliver(t, e.accts[0], "", storetest.Msg("a@b.test", "nam@example.test", "fine", "ok"))
	c := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
	msgs := must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{
		Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{{Peek: true}, {Part: []int{1, 2}, Peek: true}},
	}).Collect())
	if len(msgs) != 2 || string(msgs[0].BodySection[0].Bytes) != string(broken) {
		t.Fatalf("broken message: %+v", msgs)
	}
	if _, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BinarySection: []*imap.FetchItemBinarySection{{Part: []int{1}, Peek: true}}}).Collect(); !isCode(err, imap.ResponseCodeUnknownCTE) {
		t.Errorf("BINARY of x-uuencode: %v", err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Errorf("session broken after bad message: %v", err)
	}
}

func TestStoreCopyMoveExpunge(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.deliver(t, e.accts[0], "", storetest.Msg("a@b.test", "nam@example.test", fmt.Sprintf("m%d", i+1), "body"))
	}
	var expunged []uint32
	var mu sync.Mutex
	c := e.dial(t, "nam", &imapclient.UnilateralDataHandler{Expunge: func(n uint32) { mu.Lock(); expunged = append(expunged, n); mu.Unlock() }})
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())

	msgs := must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen, "ViecGap"}}, nil).Collect())
	if len(msgs) != 2 || fmt.Sprint(msgs[0].Flags) != `[\Seen ViecGap \Recent]` {
		t.Errorf("STORE +FLAGS: %+v", msgs)
	}
	msgs = must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect())
	if len(msgs) != 0 {
		t.Errorf(".SILENT answered %+v", msgs)
	}
	msgs = must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{imap.FlagAnswered}}, nil).Collect())
	if len(msgs) != 1 || fmt.Sprint(msgs[0].Flags) != `[\Answered \Recent]` {
		t.Errorf("STORE FLAGS: %+v", msgs)
	}

	cd := must[*imap.CopyData](t)(c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait())
	if cd.UIDValidity == 0 || cd.SourceUIDs.String() != "1:2" || cd.DestUIDs.String() != "1:2" {
		t.Errorf("COPYUID %+v", cd)
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "Nowhere").Wait(); !isCode(err, imap.ResponseCodeTryCreate) {
		t.Errorf("copy to missing: %v", err)
	}
	md := must[*imapclient.MoveData](t)(c.Move(imap.SeqSetNum(3), "Trash").Wait())
	if md.SourceUIDs.String() != "3" || md.DestUIDs.String() != "1" {
		t.Errorf("MOVE COPYUID %+v", md)
	}
	mu.Lock()
	if len(expunged) != 1 || expunged[0] != 3 {
		t.Errorf("MOVE expunges %v, want exactly [3]", expunged)
	}
	expunged = nil
	mu.Unlock()

	// UID EXPUNGE removes only the listed \Deleted messages.
	must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(1, 2, 3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect())
	gone := must[[]uint32](t)(c.UIDExpunge(imap.UIDSetNum(4)).Collect())
	if len(gone) != 1 || gone[0] != 3 {
		t.Errorf("UID EXPUNGE 4: %v", gone)
	}
	gone = must[[]uint32](t)(c.Expunge().Collect())
	if len(gone) != 2 || gone[0] != 1 || gone[1] != 1 {
		t.Errorf("EXPUNGE: %v", gone)
	}
	if n := c.Mailbox().NumMessages; n != 1 {
		t.Errorf("%d messages left, want 1", n)
	}

	// CLOSE expunges silently.
	must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect())
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatal(err)
	}
	st := must[*imap.StatusData](t)(c.Status("INBOX", &imap.StatusOptions{NumMessages: true, Size: true}).Wait())
	if *st.NumMessages != 0 || *st.Size != 0 {
		t.Errorf("after CLOSE: %d messages, %d bytes", *st.NumMessages, *st.Size)
	}
}

func TestExamineReadOnly(t *testing.T) {
	e := newEnv(t)
	e.deliver(t, e.accts[0], "", storetest.Msg("a@b.test", "nam@example.test", "s", "b"))
	c := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait())
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err == nil {
		t.Error("STORE in EXAMINE")
	}
	if _, err := c.Expunge().Collect(); err == nil {
		t.Error("EXPUNGE in EXAMINE")
	}
	if _, err := c.Move(imap.SeqSetNum(1), "Trash").Wait(); err == nil {
		t.Error("MOVE in EXAMINE")
	}
	// Reading the body does not set \Seen either.
	must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect())
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Errorf("CLOSE in EXAMINE: %v", err)
	}
	st := must[*imap.StatusData](t)(c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait())
	if *st.NumMessages != 1 || *st.NumUnseen != 1 {
		t.Errorf("EXAMINE changed the mailbox: %d messages, %d unseen", *st.NumMessages, *st.NumUnseen)
	}
}

func TestSearch(t *testing.T) {
	e := newEnv(t)
	a := e.accts[0]
	e.deliver(t, a, "", storetest.Msg("Trần Thị Đào <dao@example.test>", "nam@example.test", "Công văn về Đà Nẵng", "Kính gửi Sở Tài chính."))
	e.deliver(t, a, "", storetest.Msg("b@example.test", "nam@example.test", "Họp giao ban", "Lịch họp tuần sau tại Hà Nội, chuẩn bị báo cáo."))
	e.deliver(t, a, "", []byte("From: c@example.test\r\nTo: nam@example.test\r\nSubject: old\r\nDate: Mon, 01 Jan 2024 09:00:00 +0700\r\nX-Priority: 1\r\n\r\nHẹn gặp ở Đà Nẵng\r\n"))
	c := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
	must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen, "GapNhat"}}, nil).Collect())

	search := func(c2 *imap.SearchCriteria) []uint32 {
		t.Helper()
		return must[*imap.SearchData](t)(c.Search(c2, nil).Wait()).AllSeqNums()
	}
	cases := []struct {
		name string
		c    imap.SearchCriteria
		want string
	}{
		{"text da nang", imap.SearchCriteria{Text: []string{"da nang"}}, "[1 3]"},
		{"subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "DA NANG"}}}, "[1]"},
		{"body", imap.SearchCriteria{Body: []string{"hà nội"}}, "[2]"},
		{"from", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "tran thi dao"}}}, "[1]"},
		{"header", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Priority", Value: ""}}}, "[3]"},
		{"seen", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, "[2]"},
		{"unseen", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, "[1 3]"},
		{"keyword", imap.SearchCriteria{Flag: []imap.Flag{"gapnhat"}}, "[2]"},
		{"not", imap.SearchCriteria{Not: []imap.SearchCriteria{{Text: []string{"đà nẵng"}}}}, "[2]"},
		{"or", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagSeen}}, {Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "old"}}}}}}, "[2 3]"},
		{"sentbefore", imap.SearchCriteria{SentBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, "[3]"},
		{"sentsince", imap.SearchCriteria{SentSince: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, "[1 2]"},
		{"since today", imap.SearchCriteria{Since: day(time.Now().Add(-24 * time.Hour))}, "[1 2 3]"},
		{"before", imap.SearchCriteria{Before: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, "[]"},
		{"larger", imap.SearchCriteria{Larger: 1}, "[1 2 3]"},
		{"smaller", imap.SearchCriteria{Smaller: 10}, "[]"},
		{"seq", imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 2, Stop: 0}}}}, "[2 3]"},
		{"uid", imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(1, 3)}}, "[1 3]"},
		{"nothing", imap.SearchCriteria{Text: []string{"xyzzy"}}, "[]"},
	}
	for _, tc := range cases {
		if got := fmt.Sprint(search(&tc.c)); got != tc.want && !(tc.want == "[]" && got == "[]") {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}

	// ESEARCH and SEARCHRES (imapclient cannot send SAVE).
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	r.cmd("SELECT INBOX")
	lines, _ := r.cmd(`UID SEARCH RETURN (SAVE MIN MAX COUNT) TEXT "da nang"`)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], "UID MIN 1 MAX 3 COUNT 2") {
		t.Errorf("ESEARCH: %q", lines)
	}
	lines, _ = r.cmd("FETCH $ (FLAGS)")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "* 1 FETCH (UID 1 ") || !strings.HasPrefix(lines[1], "* 3 FETCH (UID 3 ") {
		t.Errorf("FETCH $: %q", lines)
	}
	lines, _ = r.cmd("SEARCH $ UNSEEN")
	if len(lines) != 1 || lines[0] != "* SEARCH 1 3" {
		t.Errorf("SEARCH $ UNSEEN: %q", lines)
	}
	lines, _ = r.cmd("SEARCH RETURN (SAVE MIN) FROM b@example.test")
	lines, _ = r.cmd("UID FETCH $ (UID)")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "* 2 FETCH (UID 2") {
		t.Errorf("UID FETCH $ after SAVE MIN: %q", lines)
	}
}

func TestConcurrentSessionsAndIdle(t *testing.T) {
	e := newEnv(t)
	a := e.accts[0]
	for i := range 3 {
		e.deliver(t, a, "", storetest.Msg("a@b.test", "nam@example.test", fmt.Sprintf("m%d", i+1), "b"))
	}
	type event struct {
		kind string
		n    uint32
		uid  imap.UID
	}
	events := make(chan event, 100)
	h := &imapclient.UnilateralDataHandler{
		Expunge: func(n uint32) { events <- event{"expunge", n, 0} },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				events <- event{"exists", *d.NumMessages, 0}
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			buf, _ := m.Collect()
			if buf != nil && buf.Flags != nil {
				events <- event{"flags", m.SeqNum, buf.UID}
			}
		},
	}
	idler := e.dial(t, "nam", h)
	must[*imap.SelectData](t)(idler.Select("INBOX", nil).Wait())
	other := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(other.Select("INBOX", nil).Wait())

	// A change made before IDLE is pushed as IDLE starts.
	must[[]*imapclient.FetchMessageBuffer](t)(other.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect())
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}
	// How soon each event comes is mailbench's imap-idle figure (docs/benchmarks.md); here, that it comes.
	expect := func(want event) {
		t.Helper()
		if got := <-events; got.kind != want.kind || got.n != want.n || (want.uid != 0 && got.uid != want.uid) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	expect(event{"flags", 3, 3})

	// New mail from SMTP reaches the idler within a second.
	start := time.Now()
	e.deliver(t, a, "", storetest.Msg("x@y.test", "nam@example.test", "new", "b"))
	expect(event{"exists", 4, 0})
	t.Logf("new mail reached IDLE after %v", time.Since(start))

	// Another session's expunge of message 2, then a flag change on what is now 3 (UID 4).
	must[[]*imapclient.FetchMessageBuffer](t)(other.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect())
	expect(event{"flags", 2, 2})
	must[[]uint32](t)(other.Expunge().Collect())
	expect(event{"expunge", 2, 0})
	// other has not yet heard of UID 4: a NOOP announces it.
	if err := other.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if n := other.Mailbox().NumMessages; n != 3 {
		t.Errorf("other sees %d messages", n)
	}
	must[[]*imapclient.FetchMessageBuffer](t)(other.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect())
	expect(event{"flags", 3, 4})
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}

	// Outside IDLE, changes arrive with the next command, sequence numbers right.
	must[[]*imapclient.FetchMessageBuffer](t)(other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect())
	must[[]uint32](t)(other.Expunge().Collect())
	// FETCH may not carry the expunge; NOOP must.
	must[[]*imapclient.FetchMessageBuffer](t)(idler.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true}).Collect())
	if err := idler.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	var sawExpunge bool
	for len(events) > 0 {
		ev := <-events
		if ev.kind == "expunge" {
			if ev.n != 1 {
				t.Errorf("expunge seq %d, want 1", ev.n)
			}
			sawExpunge = true
		}
	}
	if !sawExpunge || idler.Mailbox().NumMessages != 2 {
		t.Errorf("idler after NOOP: expunge seen %v, %d messages", sawExpunge, idler.Mailbox().NumMessages)
	}
	uids := must[*imap.SearchData](t)(idler.UIDSearch(&imap.SearchCriteria{}, nil).Wait()).AllUIDs()
	if fmt.Sprint(uids) != "[3 4]" {
		t.Errorf("idler UIDs %v", uids)
	}
}

func TestSelectedMailboxDeleted(t *testing.T) {
	e := newEnv(t)
	a := e.accts[0]
	e.deliver(t, a, "Dự án", storetest.Msg("a@b.test", "nam@example.test", "s", "b"))
	e.deliver(t, a, "Dự án", storetest.Msg("a@b.test", "nam@example.test", "s2", "b"))
	var expunges int
	c := e.dial(t, "nam", &imapclient.UnilateralDataHandler{Expunge: func(uint32) { expunges++ }})
	must[*imap.SelectData](t)(c.Select("Dự án", nil).Wait())
	if err := e.store.DeleteMailbox(context.Background(), a.ID, "Dự án"); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if expunges != 2 || c.Mailbox().NumMessages != 0 {
		t.Errorf("after delete: %d expunges, %d messages", expunges, c.Mailbox().NumMessages)
	}
	if msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true}).Collect(); err == nil && len(msgs) > 0 {
		t.Errorf("fetch in deleted mailbox: %+v", msgs)
	}
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
}

// TestSelectFromCounters checks what SELECT reports from the store's counters
// and UID runs, with gaps in the UIDs: the first unseen message's sequence
// number, UIDNEXT, and keywords in FLAGS.
func TestSelectFromCounters(t *testing.T) {
	e := newEnv(t)
	a := e.accts[0]
	for i := 0; i < 6; i++ {
		e.deliver(t, a, "", storetest.Msg("x@example.test", "nam@example.test", fmt.Sprint("m", i), "b"))
	}
	c := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
	must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(1, 2, 4), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect())
	must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, "Gấp"}}, nil).Collect())
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	// Left: UIDs 3 (seen), 5, 6.
	d := must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
	if d.NumMessages != 3 || d.UIDNext != 7 || !slices.Contains(d.Flags, "Gấp") {
		t.Errorf("SELECT: %+v", d)
	}
	// imapclient does not parse UNSEEN (IMAP4rev1 only).
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	if lines, _ := r.cmd("SELECT INBOX"); !slices.Contains(lines, "* OK [UNSEEN 2] First unseen message") {
		t.Errorf("SELECT, raw: %q", lines)
	}
	uids := must[*imap.SearchData](t)(c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()).AllUIDs()
	if fmt.Sprint(uids) != "[3 5 6]" {
		t.Errorf("UIDs after SELECT: %v", uids)
	}
	st := must[*imap.StatusData](t)(c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true}).Wait())
	if *st.NumMessages != 3 || *st.NumUnseen != 2 || st.UIDNext != 7 {
		t.Errorf("STATUS: %d messages, %d unseen, uidnext %d", *st.NumMessages, *st.NumUnseen, st.UIDNext)
	}
}

// TestSearchFields checks issue 12's SEARCH cases on the wire: TEXT finds
// words of any header field, FROM finds display names and comments, and
// diacritics fold (đ→d).
func TestSearchFields(t *testing.T) {
	e := newEnv(t)
	a := e.accts[0]
	e.deliver(t, a, "", []byte("From: \"Nguyễn Văn A\" <a@x.example> (Phòng TC)\r\nTo: nam@example.test\r\nSubject: Đề nghị\r\nX-Phan-Loai: Hỏa tốc\r\n\r\nNội dung\r\n"))
	e.deliver(t, a, "", storetest.Msg("b@example.test", "nam@example.test", "Khác", "Hỏa tốc không?"))
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	r.cmd("SELECT INBOX")
	for cmd, want := range map[string]string{
		`UID SEARCH TEXT "hoa toc"`:                 "* SEARCH 1 2",
		`UID SEARCH HEADER X-Phan-Loai "Hỏa"`:       "* SEARCH 1",
		`UID SEARCH FROM "phong tc"`:                "* SEARCH 1",
		`UID SEARCH FROM "Nguyễn Văn A"`:            "* SEARCH 1",
		`UID SEARCH FROM "x.example"`:               "* SEARCH 1",
		`UID SEARCH SUBJECT "de nghi"`:              "* SEARCH 1",
		`UID SEARCH BODY "hoa toc" NOT FROM "x.ex"`: "* SEARCH 2",
		`UID SEARCH FROM "guyen van"`:               "* SEARCH 1", // a substring inside a word
	} {
		if lines, _ := r.cmd(cmd); len(lines) != 1 || lines[0] != want {
			t.Errorf("%s: %q, want %q", cmd, lines, want)
		}
	}
}

// IDLE holds no read buffer while it waits (imapserver's awaitInput) and
// polls only when the store signals: DONE sent together with IDLE and the
// next command, IDLE with no mailbox selected, and a mailbox deleted by
// another session during IDLE all end as they should.
func TestIdleEdges(t *testing.T) {
	e := newEnv(t)
	a := e.accts[0]
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	fmt.Fprintf(r.c, "i1 IDLE\r\nDONE\r\ni2 NOOP\r\n")
	for _, want := range []string{"+ ", "i1 OK", "i2 OK"} {
		if l := r.line(); !strings.HasPrefix(l, want) {
			t.Fatalf("got %q, want %q", l, want)
		}
	}
	other := e.dial(t, "nam", nil)
	if err := other.Create("Tam", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, a, "Tam", storetest.Msg("a@b.test", "nam@example.test", "m1", "b"))
	if _, st := r.cmd(`SELECT Tam`); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	fmt.Fprintf(r.c, "i3 IDLE\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	if err := other.Delete("Tam").Wait(); err != nil {
		t.Fatal(err)
	}
	if l := r.line(); !strings.HasPrefix(l, "* 1 EXPUNGE") {
		t.Fatalf("after DELETE: %q", l)
	}
	e.deliver(t, a, "", storetest.Msg("a@b.test", "nam@example.test", "m2", "b"))
	fmt.Fprintf(r.c, "DONE\r\ni4 NOOP\r\n")
	for _, want := range []string{"i3 OK", "i4 OK"} {
		if l := r.line(); !strings.HasPrefix(l, want) {
			t.Fatalf("got %q, want %q", l, want)
		}
	}
}

// A client that leaves in the middle of IDLE while mail arrives: the
// session's Idle must be over before its Close runs (under -race, a data race
// on the selected mailbox showed they overlapped).
func TestIdleClientLeaves(t *testing.T) {
	e := newEnv(t)
	a := e.accts[0]
	for i := range 5 {
		r := e.raw(t)
		r.cmd("LOGIN nam@example.test pw")
		r.cmd("SELECT INBOX")
		fmt.Fprintf(r.c, "i IDLE\r\n")
		if l := r.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("IDLE: %q", l)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for j := range 10 {
				msg := storetest.Msg("a@b.test", "nam@example.test", fmt.Sprintf("m%d-%d", i, j), "b")
				if _, err := e.store.Deliver(context.Background(), msg, time.Time{}, []mailstore.Target{{AccountID: a.ID}}); err != nil {
					t.Errorf("deliver: %v", err)
				}
			}
		}()
		r.c.Close()
		<-done
	}
	// The server's shutdown at cleanup waits for every session to end.
}
