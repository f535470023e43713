package e2e_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"sealmail/certs"
	"sealmail/imapd"
	"sealmail/mailauth"
	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/relay"
	"sealmail/resolve"
	"sealmail/smtpd"
)

// instance is one sealmail server composed in-process as 'sealmail serve'
// wires it (store, SMTP MX and submission, IMAP, outbound queue, document
// registry whose DataDir is the instance's data directory), listening on
// 127.0.0.1 free ports. Two of them, each the other's peer, are the closed
// network between two agencies. Build with newInstance, join with peer, then
// start.
type instance struct {
	domain  string
	store   *mailstore.Store
	queue   *relay.Queue
	smtp    *smtpd.Server
	imap    *imapd.Server
	docs    *registry.Registry
	dns     *resolve.Static // answers only what peer put in: no real DNS
	certPEM string          // the local CA that issued the server certificate, a peer's --tls-ca
	client  *tls.Config     // trusts only certPEM, for test clients
	dkim    [2]string       // DKIM TXT record name and value

	mx, submission, imapAddr string
	mxl                      net.Listener
	serveErrs                chan error
}

// newInstance sets up domain with accounts for users (local parts, password
// "pw"), a TLS certificate for mail.DOMAIN and 127.0.0.1, and a DKIM key.
func newInstance(t testing.TB, domain string, users ...string) *instance {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.AddDomain(ctx, mailstore.Domain{Name: domain}); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if _, err := s.AddAccount(ctx, mailstore.NewAccount{Address: u + "@" + domain, Password: "pw", Name: "Nguyễn " + u}); err != nil {
			t.Fatal(err)
		}
	}
	x := &instance{domain: domain, store: s, dns: &resolve.Static{TXT: map[string][]string{}}}
	x.certPEM, x.client = localCA(t, dir, "mail."+domain)
	kp, err := tls.LoadX509KeyPair(filepath.Join(dir, "mail."+domain+".pem"), filepath.Join(dir, "mail."+domain+".key"))
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
	dkimDir := filepath.Join(dir, "dkim")
	if x.dkim[0], x.dkim[1], err = mailauth.GenerateKey(dkimDir, domain, mailauth.DefaultSelector); err != nil {
		t.Fatal(err)
	}

	log := testLogger(t).With("instance", domain)
	host := "mail." + domain
	x.queue = &relay.Queue{Store: s, Resolver: x.dns, Hostname: host, DKIM: &mailauth.Signer{Dir: dkimDir},
		Logger: log.With("server", "relay"), DialTimeout: 5 * time.Second, CommandTimeout: 10 * time.Second}
	x.docs = &registry.Registry{Store: s, DataDir: dir, Hostname: host, Queue: x.queue, Logger: log.With("server", "registry"),
		PDF: registry.PDFPolicy{TrustRoots: []*x509.Certificate{national().Cert}}}
	x.smtp = &smtpd.Server{Store: s, TLSConfig: serverTLS, Hostname: host, Logger: log.With("server", "smtp"),
		CommandTimeout: 10 * time.Second, Queue: x.queue,
		Inbound: &mailauth.Checker{Resolver: x.dns, Hostname: host}, Registry: x.docs}
	x.imap = &imapd.Server{Store: s, TLSConfig: serverTLS, Logger: log.With("server", "imap")}
	x.mxl = listen(t, "127.0.0.1:0")
	x.mx = x.mxl.Addr().String()
	return x
}

// localCA sets up TLS as 'sealmail init' does: a local CA and a server
// certificate it issued for name and 127.0.0.1, in dir as NAME.pem and
// NAME.key. It returns the CA's PEM (what 'sealmail peer add --tls-ca' is given)
// and a client configuration that trusts only that CA.
func localCA(t testing.TB, dir, name string) (string, *tls.Config) {
	t.Helper()
	ca := filepath.Join(dir, name+"-ca.pem")
	err := certs.Create(ca, filepath.Join(dir, name+"-ca-key.pem"), filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key"),
		[]string{name, "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return string(b), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// peer makes other a peer of x, as 'sealmail peer add' would with
// --relay OTHER-MX --tls-ca OTHER-CERT, and publishes other's DKIM record in
// x's DNS. When other is an agency it adds, as an administrator copies them
// from the other agency, --organ-id, --organ-name and --seal-ca OTHER's seal
// CA. Call it before start, after agency.
func (x *instance) peer(t testing.TB, other *instance) {
	t.Helper()
	ctx := context.Background()
	d, err := other.store.Domain(ctx, other.domain)
	if err != nil {
		t.Fatal(err)
	}
	p := mailstore.Peer{Domain: other.domain, Relay: other.mx, TLSCA: other.certPEM, OrganID: d.OrganID, OrganName: d.OrganName}
	if err := x.store.AddPeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	x.dns.TXT[other.dkim[0]] = []string{other.dkim[1]}
	ca, err := registry.SealCA(other.docs.DataDir, other.domain)
	if errors.Is(err, fs.ErrNotExist) {
		return // not an agency: plain mail only
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := x.store.SetPeerSeal(ctx, mailstore.PeerSeal{Domain: other.domain, CA: string(ca)}); err != nil {
		t.Fatal(err)
	}
}

// agency makes x's domain an agency, as 'sealmail domain update' and
// 'sealmail seal init' would: organ details, a pilot seal, and the official
// address vanthu@DOMAIN, an alias owned by a new clerk account "clerk".
// Call it before peer.
func (x *instance) agency(t testing.TB, organID, organName, code string) mailstore.Domain {
	t.Helper()
	ctx := context.Background()
	d := mailstore.Domain{Name: x.domain, OrganID: organID, OrganName: organName, Code: code, OfficialAddress: "vanthu@" + x.domain}
	clerk := "clerk@" + x.domain
	if _, err := x.store.AddAccount(ctx, mailstore.NewAccount{Address: clerk, Password: "pw", Name: "Văn thư", Role: mailstore.RoleClerk}); err != nil {
		t.Fatal(err)
	}
	if err := x.store.AddAlias(ctx, d.OfficialAddress, []string{clerk}); err != nil {
		t.Fatal(err)
	}
	if err := x.store.UpdateDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := registry.InitSeal(x.docs.DataDir, d, time.Now()); err != nil {
		t.Fatal(err)
	}
	return d
}

// start serves MX, submission (STARTTLS) and IMAP and runs the queue until
// the test ends.
func (x *instance) start(t testing.TB) {
	t.Helper()
	lsub, limap := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	x.submission, x.imapAddr = lsub.Addr().String(), limap.Addr().String()
	x.serveErrs = make(chan error, 4)
	go func() { x.serveErrs <- x.smtp.ServeSubmission(lsub, false) }()
	go func() { x.serveErrs <- x.imap.Serve(limap) }()
	x.serveMX(t)
	ctx, stopQueue := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { queued <- x.queue.Run(ctx) }()
	t.Cleanup(func() {
		sctx := context.Background() // Shutdown must end by itself
		serr := x.smtp.Shutdown(sctx)
		if err := errors.Join(serr, x.imap.Shutdown(sctx)); err != nil {
			t.Errorf("%s: shutdown: %v", x.domain, err)
		}
		stopQueue()
		if err := <-queued; err != nil {
			t.Errorf("%s: queue: %v", x.domain, err)
		}
	})
}

// serveMX serves the MX listener, opening it again on the same address if
// stopMX closed it.
func (x *instance) serveMX(t testing.TB) {
	t.Helper()
	if x.mxl == nil {
		x.mxl = listen(t, x.mx)
	}
	l := x.mxl
	go func() { x.serveErrs <- x.smtp.ServeMX(l) }()
}

// stopMX closes the MX listener: the server is down for other servers.
func (x *instance) stopMX(t testing.TB) {
	t.Helper()
	x.mxl.Close()
	if err := <-x.serveErrs; err == nil || errors.Is(err, smtpd.ErrServerClosed) {
		t.Fatalf("%s: ServeMX returned %v after its listener closed", x.domain, err)
	}
	x.mxl = nil
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() }) // in case it is never served
	return l
}

// submit sends msg as user over the submission port, with STARTTLS and AUTH
// as a mail client does.
func (x *instance) submit(t testing.TB, user string, to []string, msg string) {
	t.Helper()
	x.submitFrom(t, user, user+"@"+x.domain, to, msg)
}

// submitFrom is submit with another envelope sender user owns, such as an
// alias.
func (x *instance) submitFrom(t testing.TB, user, from string, to []string, msg string) {
	t.Helper()
	c, err := smtp.DialStartTLS(x.submission, x.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	login := user + "@" + x.domain
	if err := c.Auth(sasl.NewPlainClient("", login, "pw")); err != nil {
		t.Fatalf("auth %s: %v", login, err)
	}
	if err := c.SendMail(from, to, strings.NewReader(msg)); err != nil {
		t.Fatalf("submit as %s from %s to %v: %v", login, from, to, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// inbox returns the messages in user's INBOX, read over IMAP with STARTTLS.
func (x *instance) inbox(t testing.TB, user string) [][]byte {
	t.Helper()
	return x.folder(t, user, "INBOX")
}

// login opens an IMAP session of user's over STARTTLS.
func (x *instance) login(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialStartTLS(x.imapAddr, &imapclient.Options{TLSConfig: x.client})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user+"@"+x.domain, "pw").Wait(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

// file does over IMAP what a civil servant does with a document in INBOX:
// copies every message to each of copies, then moves them all to the
// mailbox to; mailboxes not there yet are created first.
func (x *instance) file(t testing.TB, user, to string, copies ...string) {
	t.Helper()
	c := x.login(t, user)
	defer c.Close()
	for _, mb := range append(copies, to) {
		var ierr *imap.Error
		if err := c.Create(mb, nil).Wait(); err != nil && !(errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists) {
			t.Fatalf("%s: create %q: %v", user, mb, err)
		}
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var all imap.SeqSet
	all.AddRange(1, 0) // 1:*
	for _, mb := range copies {
		if _, err := c.Copy(all, mb).Wait(); err != nil {
			t.Fatalf("%s: copy to %q: %v", user, mb, err)
		}
	}
	if _, err := c.Move(all, to).Wait(); err != nil {
		t.Fatalf("%s: move to %q: %v", user, to, err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

// folder returns the messages in one of user's mailboxes, read over IMAP with
// STARTTLS; it fails the test if there is no such mailbox.
func (x *instance) folder(t testing.TB, user, mailbox string) [][]byte {
	t.Helper()
	c := x.login(t, user)
	defer c.Close()
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("%s: select %q: %v", user, mailbox, err)
	}
	var out [][]byte
	if sel.NumMessages > 0 {
		var all imap.SeqSet
		all.AddRange(1, 0) // 1:*
		msgs, err := c.Fetch(all, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			for _, b := range m.BodySection {
				out = append(out, b.Bytes)
			}
		}
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	return out
}

// queued returns x's outbound queue.
func (x *instance) queued(t testing.TB) []mailstore.QueueEntry {
	t.Helper()
	es, err := x.store.Queue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// testLogger sends logs to the test's log, shown when it fails; benchmarks
// log nothing.
func testLogger(t testing.TB) *slog.Logger {
	if _, ok := t.(*testing.B); ok {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// pair starts agency-a.test (user nam) and agency-b.test (user lan), each the
// other's peer.
func pair(t testing.TB) (a, b *instance) {
	t.Helper()
	a, b = newInstance(t, "agency-a.test", "nam"), newInstance(t, "agency-b.test", "lan")
	a.peer(t, b)
	b.peer(t, a)
	a.start(t)
	b.start(t)
	return a, b
}
