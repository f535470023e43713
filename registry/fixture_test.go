package registry

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"sealmail/mailstore"
	"sealmail/signing"
	"sealmail/signing/signingtest"
)

// t0 is the pilot's clock: 28 Nov 2026, 09:30 in Hanoi.
var t0 = time.Date(2026, 11, 28, 9, 30, 0, 0, ICT)

// clock is the time both agencies' registries see.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// side is one agency: its own store, data directory and registry.
type side struct {
	reg          *Registry
	store        *mailstore.Store
	dir          string
	domain       mailstore.Domain
	clerk, staff mailstore.Account

	countMu sync.Mutex
	counted map[string]int // "action result" as told to Registry.Counted
}

// counts returns how many documents the side's registry counted as
// "action result".
func (sd *side) counts(what string) int {
	sd.countMu.Lock()
	defer sd.countMu.Unlock()
	return sd.counted[what]
}

// exchange is two agencies, a.test and b.test, that trust each other's
// seals, with Send wired to the other's Incoming: an exchange without SMTP.
// Mail for any other domain lands in other.
type exchange struct {
	a, b  *side
	clock *clock
	mu    sync.Mutex
	other [][]byte
	// pumping, again and hold: see Wake.
	pumpMu               sync.Mutex
	pumping, again, hold bool
	pumpErr              error
}

func newExchange(t testing.TB) *exchange {
	t.Helper()
	x := &exchange{clock: &clock{t: t0}}
	x.a = x.newSide(t, mailstore.Domain{Name: "a.test", OrganID: "000.00.12.H10", OrganName: "Sở Thông tin và Truyền thông", Code: "STTTT-VP"})
	x.b = x.newSide(t, mailstore.Domain{Name: "b.test", OrganID: "000.00.13.H10", OrganName: "Sở Tài chính", Code: "STC-VP"})
	x.trust(t, x.a, x.b)
	x.trust(t, x.b, x.a)
	return x
}

func (x *exchange) newSide(t testing.TB, d mailstore.Domain) *side {
	t.Helper()
	ctx := context.Background()
	d.OfficialAddress = "vanthu@" + d.Name
	dir := t.TempDir()
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.AddDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	accts, err := s.AddAccounts(ctx, []mailstore.NewAccount{
		{Address: "clerk@" + d.Name, Password: "pw", Role: mailstore.RoleClerk, Name: "Văn thư"},
		{Address: "nam@" + d.Name, Password: "pw", Role: mailstore.RoleStaff, Name: "Nguyễn Văn Nam"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The official address is an alias the clerk owns.
	if err := s.AddAlias(ctx, d.OfficialAddress, []string{accts[0].Address}); err != nil {
		t.Fatal(err)
	}
	if _, err := InitSeal(dir, d, t0.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	sd := &side{store: s, dir: dir, domain: d, clerk: accts[0], staff: accts[1], counted: map[string]int{}}
	sd.reg = &Registry{Store: s, DataDir: dir, Hostname: "mail." + d.Name, Queue: x, Now: x.clock.Now,
		Logger: discard, PDF: PDFPolicy{TrustRoots: []*x509.Certificate{authority().ca.Cert}},
		Counted: func(action, result string) {
			sd.countMu.Lock()
			sd.counted[action+" "+result]++
			sd.countMu.Unlock()
		}}
	return sd
}

// trust makes from a peer of to, with its organ, whose seals chain to
// from's CA: what 'sealmail peer add DOMAIN --organ-id ID --organ-name NAME
// --seal-ca FILE' does.
func (x *exchange) trust(t testing.TB, to, from *side) {
	t.Helper()
	err := to.store.AddPeer(context.Background(), mailstore.Peer{Domain: from.domain.Name, OrganID: from.domain.OrganID, OrganName: from.domain.OrganName})
	if err != nil && !errors.Is(err, mailstore.ErrExists) {
		t.Fatal(err)
	}
	ca, err := SealCA(from.dir, from.domain.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := to.store.SetPeerSeal(context.Background(), mailstore.PeerSeal{Domain: from.domain.Name, CA: string(ca)}); err != nil {
		t.Fatal(err)
	}
}

// Wake is both registries' outbound queue: it hands what each store queued
// to the side hosting each recipient, as the relay and the other server's
// SMTP server would, until nothing is left (unless hold is set). A Wake
// while another pumps makes that one look again.
func (x *exchange) Wake() {
	x.pumpMu.Lock()
	if x.pumping || x.hold {
		x.again = true
		x.pumpMu.Unlock()
		return
	}
	x.pumping = true
	x.pumpMu.Unlock()
	for {
		for _, s := range []*side{x.a, x.b} {
			x.drain(s)
		}
		x.pumpMu.Lock()
		if !x.again || x.hold {
			x.pumping = false
			x.pumpMu.Unlock()
			return
		}
		x.again = false
		x.pumpMu.Unlock()
	}
}

func (x *exchange) drain(s *side) {
	ctx := context.Background()
	es, err := s.store.Queue(ctx)
	if err != nil {
		x.pumpErr = err
		return
	}
	for _, e := range es {
		msg, err := s.store.QueueContent(ctx, e.ID)
		if err == nil {
			var rcpts []string
			for _, r := range e.Rcpts {
				rcpts = append(rcpts, r.Addr)
			}
			err = x.Enqueue(ctx, e.From, rcpts, msg)
		}
		if err == nil {
			err = s.store.RemoveQueue(ctx, e.ID)
		}
		if err != nil {
			x.pumpMu.Lock()
			x.pumpErr = err
			x.pumpMu.Unlock()
		}
	}
}

// held runs f with deliveries held, then drops what was queued meanwhile:
// a message sealed and not sent.
func (x *exchange) held(t testing.TB, f func()) {
	t.Helper()
	x.pumpMu.Lock()
	x.hold = true
	x.pumpMu.Unlock()
	f()
	ctx := context.Background()
	for _, s := range []*side{x.a, x.b} {
		es, err := s.store.Queue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if err := s.store.RemoveQueue(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	x.pumpMu.Lock()
	x.hold, x.again = false, false
	x.pumpMu.Unlock()
}

// Enqueue delivers a message as the relay would: it delivers to the side hosting
// each recipient as its SMTP server would, through Incoming.
func (x *exchange) Enqueue(ctx context.Context, from string, rcpts []string, msg []byte) error {
	for _, s := range []*side{x.a, x.b} {
		var mine []string
		for _, r := range rcpts {
			if domainOf(r) == s.domain.Name {
				mine = append(mine, r)
			}
		}
		if len(mine) > 0 {
			if err := s.receive(ctx, from, mine, msg); err != nil {
				return err
			}
		}
	}
	for _, r := range rcpts {
		if d := domainOf(r); d != x.a.domain.Name && d != x.b.domain.Name {
			x.mu.Lock()
			x.other = append(x.other, msg)
			x.mu.Unlock()
			break
		}
	}
	return nil
}

// receive is what smtpd does with a message for local recipients.
func (s *side) receive(ctx context.Context, from string, rcpts []string, msg []byte) error {
	var targets []mailstore.Target
	seen := map[int64]bool{}
	for _, r := range rcpts {
		accts, _, err := s.store.Resolve(ctx, r)
		if err != nil {
			return err
		}
		for _, a := range accts {
			if !seen[a.ID] {
				seen[a.ID] = true
				targets = append(targets, mailstore.Target{AccountID: a.ID})
			}
		}
	}
	handled, err := s.reg.Incoming(ctx, from, rcpts, targets, nil, msg)
	if err != nil || handled {
		return err
	}
	_, err = s.store.Deliver(ctx, msg, time.Now(), targets)
	return err
}

// submit is what smtpd does with a document a clerk submits: Outgoing,
// which delivers and queues it; the queue is pumped before it returns.
func (x *exchange) submit(t testing.TB, s *side, acct mailstore.Account, rcpts []string, msg []byte) []byte {
	t.Helper()
	out, err := x.outgoing(s, acct, rcpts, msg)
	if err != nil {
		t.Fatalf("outgoing: %v", err)
	}
	if out == nil {
		t.Fatalf("outgoing: not a document")
	}
	if x.pumpErr != nil {
		t.Fatalf("send: %v", x.pumpErr)
	}
	return out
}

// outgoing calls s's Outgoing with the recipients split as smtpd splits
// them: those s hosts and the others.
func (x *exchange) outgoing(s *side, acct mailstore.Account, rcpts []string, msg []byte) ([]byte, error) {
	var local, remote []string
	for _, r := range rcpts {
		if domainOf(r) == s.domain.Name {
			local = append(local, r)
		} else {
			remote = append(remote, r)
		}
	}
	return s.reg.Outgoing(context.Background(), acct, s.domain.OfficialAddress, local, remote, msg)
}

type file struct {
	name string
	data []byte
}

var discard = slog.New(slog.DiscardHandler)

// docMessage builds a message as a mail client would, with attachments.
func docMessage(t testing.TB, from, to, subject string, files ...file) []byte {
	t.Helper()
	var h mail.Header
	h.SetDate(t0)
	h.SetAddressList("From", []*mail.Address{{Name: "Văn thư", Address: from}})
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	h.SetSubject(subject)
	h.SetMessageID(fmt.Sprintf("%d.%d@%s", time.Now().UnixNano(), rand.Int64(), domainOf(from)))
	h.Set(fieldSigner, "Giám đốc; Nguyễn Văn An")
	var fs []signingtest.File
	for _, f := range files {
		fs = append(fs, signingtest.File{Name: f.name, Type: "application/pdf", Data: f.data})
	}
	return signingtest.Message(t, h, "Kính gửi Sở Tài chính,\nSở gửi kèm công văn.\n", fs...)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// folder returns the contents of an account's mailbox, oldest first.
func folder(t testing.TB, s *side, acct mailstore.Account, name string) [][]byte {
	t.Helper()
	ctx := context.Background()
	mb, err := s.store.Mailbox(ctx, acct.ID, name)
	if err != nil {
		return nil
	}
	var out [][]byte
	err = s.store.Fetch(ctx, mb.ID, nil, mailstore.FetchContent, func(it mailstore.Item) error {
		out = append(out, it.Content)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func header(t testing.TB, msg []byte, key string) string {
	t.Helper()
	h, _, err := splitHeader(msg)
	if err != nil {
		t.Fatal(err)
	}
	return h.Get(key)
}

func docs(t testing.TB, s *side, dir mailstore.Direction) []mailstore.DocEntry {
	t.Helper()
	es, err := s.store.Docs(context.Background(), mailstore.DocQuery{Domain: s.domain.Name, Direction: dir})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// caOf loads a side's pilot CA and its key.
func caOf(t testing.TB, s *side) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	dir := SealDir(s.dir, s.domain.Name)
	certs, err := signing.ParseCertsPEM(readFile(t, filepath.Join(dir, CACertFile)))
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.ParseKeyPEM(readFile(t, filepath.Join(dir, CAKeyFile)))
	if err != nil {
		t.Fatal(err)
	}
	return certs[0], key
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rewritePart decodes the base64 body of the part whose file name is name,
// passes it through f and encodes it back with the same line length: an
// attacker's edit that keeps the MIME structure intact.
func rewritePart(t testing.TB, msg []byte, name string, f func([]byte) []byte) []byte {
	t.Helper()
	i := bytes.Index(msg, []byte("filename="+name))
	if i < 0 {
		i = bytes.Index(msg, []byte(`filename="`+name+`"`))
	}
	if i < 0 {
		t.Fatalf("no part named %s", name)
	}
	start := i + bytes.Index(msg[i:], []byte("\r\n\r\n")) + 4
	end := start + bytes.Index(msg[start:], []byte("\r\n--"))
	body := msg[start:end]
	lineLen := bytes.Index(body, []byte("\r\n"))
	raw, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(body), "\r\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString(f(raw))
	var b bytes.Buffer
	for len(enc) > lineLen {
		b.WriteString(enc[:lineLen] + "\r\n")
		enc = enc[lineLen:]
	}
	b.WriteString(enc)
	out := append([]byte{}, msg[:start]...)
	out = append(out, b.Bytes()...)
	return append(out, msg[end:]...)
}

// decodedText returns the decoded text/plain parts of msg.
func decodedText(t testing.TB, msg []byte) []byte {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := p.Header.(*mail.InlineHeader); ok {
			if ct, _, _ := h.ContentType(); ct == "text/plain" {
				b, err := io.ReadAll(p.Body)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b...)
			}
		}
	}
}

// authority is the person with authority whose signature the main PDF of every
// test document carries, certified by a national CA both agencies trust.
var authority = sync.OnceValue(func() *testSigner {
	t := &testing.T{}
	ca := signingtest.NewCA(t, t0)
	cert, key := ca.Person(t, "Nguyễn Văn An", "Sở Thông tin và Truyền thông", t0)
	return &testSigner{ca: ca, seal: &signing.Seal{Cert: cert, Chain: []*x509.Certificate{ca.Cert}, Key: key}}
})

type testSigner struct {
	ca   *signingtest.CA
	seal *signing.Seal
}

// signedPDF returns a two-page letter of about size bytes, signed by the
// signer where the letter leaves room for it.
func signedPDF(t testing.TB, seed byte, size int) []byte {
	t.Helper()
	out, err := signing.SignPDF(context.Background(), signingtest.Letter(seed, size, 2), authority().seal, signing.PDFSignOptions{
		Field: "Signer", Name: "Nguyễn Văn An",
		Appearance: &signing.Appearance{Page: -1, Rect: signingtest.SignerRect, Image: signingtest.SignatureImage()},
	}, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
