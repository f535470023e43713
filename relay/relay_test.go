package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sealmail/config"
	"sealmail/internal/testlog"
	"sealmail/internal/testwait"
	"sealmail/mailauth"
	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
	"sealmail/resolve"
)

func inbox(t testing.TB, s *mailstore.Store, a mailstore.Account) [][]byte {
	t.Helper()
	ctx := context.Background()
	mb, err := s.Mailbox(ctx, a.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	if err := s.Fetch(ctx, mb.ID, nil, mailstore.FetchContent, func(it mailstore.Item) error {
		out = append(out, it.Content)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func queueLen(t testing.TB, s *mailstore.Store) int {
	t.Helper()
	es, err := s.Queue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestDeliverSignedOverTLS(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, "a@example.test")
	ts, _ := startServer(t, "mx.remote.test")
	dkimDir := t.TempDir()
	name, value, err := mailauth.GenerateKey(dkimDir, "example.test", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(mailauth.KeyPath(dkimDir, "example.test", "s1")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	r := mxTo("remote.test")
	q := &Queue{Store: s, Resolver: r, Hostname: "mail.example.test", Port: ts.port(), DKIM: &mailauth.Signer{Dir: dkimDir}}
	runQueue(t, q)
	msg := storetest.Msg("a@example.test", "x@remote.test, y@remote.test", "Công văn số 12", "Kính gửi quý cơ quan.")
	if err := q.Enqueue(ctx, "a@example.test", []string{"x@remote.test", "y@remote.test"}, msg); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "delivery", func() bool { return len(ts.messages()) == 1 && queueLen(t, s) == 0 })
	got := ts.messages()[0]
	if got.from != "a@example.test" || len(got.rcpts) != 2 || !got.tls {
		t.Fatalf("one transaction over TLS for both recipients expected, got from=%s rcpts=%v tls=%v", got.from, got.rcpts, got.tls)
	}
	if !bytes.HasSuffix(got.data, msg) || !bytes.HasPrefix(got.data, []byte("DKIM-Signature:")) {
		t.Fatalf("message not signed or altered:\n%s", got.data)
	}
	// The receiving side verifies it with the published record.
	r.TXT = map[string][]string{name: {value}}
	c := &mailauth.Checker{Resolver: r, Hostname: "mx.remote.test"}
	hdr, v, _ := c.Check(ctx, net.IPv4(127, 0, 0, 1), "mail.example.test", "a@example.test", bytes.NewReader(got.data))
	if !strings.Contains(hdr, "dkim=pass") || !strings.Contains(hdr, "header.d=example.test") || v != mailauth.Accept {
		t.Errorf("verification: %s (%v)", hdr, v)
	}
	// Tampering breaks it.
	bad := bytes.Replace(got.data, []byte("Kính gửi"), []byte("Kinh gui"), 1)
	if hdr, _, _ := c.Check(ctx, net.IPv4(127, 0, 0, 1), "mail.example.test", "a@example.test", bytes.NewReader(bad)); !strings.Contains(hdr, "dkim=fail") {
		t.Errorf("tampered message: %s", hdr)
	}
}

func TestDeferThenDeliver(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, "a@example.test")
	ts, _ := startServer(t)
	ts.setRcpt(func(string) error { return errTempRcpt })
	q := &Queue{Store: s, Resolver: mxTo("remote.test"), Hostname: "mail.example.test", Port: ts.port()}
	runQueue(t, q)
	start := time.Now()
	if err := q.Enqueue(ctx, "a@example.test", []string{"x@remote.test"}, storetest.Msg("a@example.test", "x@remote.test", "s", "b")); err != nil {
		t.Fatal(err)
	}
	var e mailstore.QueueEntry
	testwait.For(t, "a deferred attempt", func() bool {
		es, _ := s.Queue(ctx)
		if len(es) == 1 && es[0].Rcpts[0].Attempts == 1 {
			e = es[0]
			return true
		}
		return false
	})
	r := e.Rcpts[0]
	if r.Status != mailstore.RcptPending || !strings.Contains(r.LastError, "451") {
		t.Fatalf("after 4xx: %+v", r)
	}
	if wait := r.NextTry.Sub(start); wait < MinBackoff-2*time.Second || wait > MinBackoff+2*time.Second {
		t.Errorf("first retry in %v, want %v", wait, MinBackoff)
	}
	ts.setRcpt(nil)
	if err := s.RetryQueue(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	q.Wake()
	testwait.For(t, "delivery after retry", func() bool { return len(ts.messages()) == 1 && queueLen(t, s) == 0 })
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 5 * time.Minute, 2: 10 * time.Minute, 3: 20 * time.Minute, 6: 160 * time.Minute, 7: 4 * time.Hour, 30: 4 * time.Hour} {
		if got := backoff(n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

// dsnOf checks a notice's common structure and returns its text.
func dsnOf(t *testing.T, raw []byte) string {
	t.Helper()
	s := string(raw)
	for _, want := range []string{"Content-Type: multipart/report; report-type=delivery-status", "Content-Type: message/delivery-status",
		"Content-Type: text/rfc822-headers", "Auto-Submitted: auto-replied", "Reporting-MTA: dns; mail.example.test"} {
		if !strings.Contains(s, want) {
			t.Errorf("notice lacks %q:\n%s", want, s)
		}
	}
	return s
}

func TestBounce(t *testing.T) {
	ctx := context.Background()
	s, accts := openStore(t, "a@example.test")
	ts, _ := startServer(t)
	ts.setRcpt(func(to string) error {
		if strings.HasPrefix(to, "bad@") {
			return errNoUser
		}
		return nil
	})
	q := &Queue{Store: s, Resolver: mxTo("remote.test"), Hostname: "mail.example.test", Port: ts.port()}
	runQueue(t, q)
	msg := storetest.Msg("a@example.test", "bad@remote.test", "Báo cáo quý III", "nội dung")
	if err := q.Enqueue(ctx, "a@example.test", []string{"good@remote.test", "bad@remote.test"}, msg); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "bounce", func() bool { return len(inbox(t, s, accts[0])) == 1 && queueLen(t, s) == 0 })
	if got := ts.messages(); len(got) != 1 || len(got[0].rcpts) != 1 || got[0].rcpts[0] != "good@remote.test" {
		t.Fatalf("good recipient: %+v", got)
	}
	d := dsnOf(t, inbox(t, s, accts[0])[0])
	for _, want := range []string{"Final-Recipient: rfc822; bad@remote.test", "Action: failed", "Status: 5.1.1", "no such user",
		"Subject: Báo cáo quý III", "To: bad@remote.test", "Message-ID: <"} {
		if !strings.Contains(d, want) {
			t.Errorf("bounce lacks %q", want)
		}
	}
	if strings.Contains(d, "good@remote.test") {
		t.Error("bounce names the recipient that got the message")
	}
	text := decodedText(t, d)
	for _, want := range []string{"KHÔNG THỂ chuyển đến", "could NOT be", "Báo cáo quý III"} {
		if !strings.Contains(text, want) {
			t.Errorf("human part lacks %q:\n%s", want, text)
		}
	}
}

// decodedText returns the quoted-printable human part of a notice.
func decodedText(t *testing.T, d string) string {
	t.Helper()
	_, rest, ok := strings.Cut(d, "Content-Transfer-Encoding: quoted-printable\r\n\r\n")
	if !ok {
		t.Fatal("no human part")
	}
	part, _, _ := strings.Cut(rest, "\r\n--")
	var b bytes.Buffer
	if _, err := b.ReadFrom(qpReader(part)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestNoBounceForNullSender(t *testing.T) {
	ctx := context.Background()
	s, accts := openStore(t, "a@example.test")
	ts, _ := startServer(t)
	ts.setRcpt(func(string) error { return errNoUser })
	q := &Queue{Store: s, Resolver: mxTo("remote.test", "example.test"), Hostname: "mail.example.test", Port: ts.port()}
	runQueue(t, q)
	if err := q.Enqueue(ctx, "", []string{"bad@remote.test"}, storetest.Msg("MAILER-DAEMON@example.test", "bad@remote.test", "bounce", "x")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the entry to be dropped", func() bool { return queueLen(t, s) == 0 })
	time.Sleep(100 * time.Millisecond)
	if n := len(inbox(t, s, accts[0])); n != 0 || queueLen(t, s) != 0 {
		t.Errorf("a bounce was bounced: %d in INBOX, %d queued", n, queueLen(t, s))
	}
	if st, _ := s.StorageStats(ctx); st.Blobs != 0 {
		t.Errorf("content left behind: %+v", st)
	}
}

func TestGiveUpAndDelayWarning(t *testing.T) {
	ctx := context.Background()
	s, accts := openStore(t, "a@example.test")
	ts, _ := startServer(t)
	ts.setRcpt(func(string) error { return errTempRcpt })
	q := &Queue{Store: s, Resolver: mxTo("remote.test"), Hostname: "mail.example.test", Port: ts.port(), DelayWarning: time.Millisecond}
	runQueue(t, q)
	if err := q.Enqueue(ctx, "a@example.test", []string{"x@remote.test"}, storetest.Msg("a@example.test", "x@remote.test", "chậm", "b")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "delay warning", func() bool {
		es, _ := s.Queue(ctx)
		return len(inbox(t, s, accts[0])) == 1 && len(es) == 1 && es[0].Warned
	})
	d := dsnOf(t, inbox(t, s, accts[0])[0])
	if !strings.Contains(d, "Action: delayed") || !strings.Contains(d, "Will-Retry-Until:") || !strings.Contains(decodedText(t, d), "CHƯA chuyển được") {
		t.Errorf("delay warning:\n%s", d)
	}
	es, _ := s.Queue(ctx)
	if len(es) != 1 || !es[0].Warned {
		t.Fatalf("entry after warning: %+v", es)
	}
	// Only one warning, and giving up bounces.
	q.GiveUpAfter = time.Nanosecond
	if err := s.RetryQueue(ctx, es[0].ID); err != nil {
		t.Fatal(err)
	}
	q.Wake()
	testwait.For(t, "give-up bounce", func() bool { return len(inbox(t, s, accts[0])) == 2 && queueLen(t, s) == 0 })
	d = dsnOf(t, inbox(t, s, accts[0])[1])
	if !strings.Contains(d, "Action: failed") || !strings.Contains(d, "gave up after") || !strings.Contains(d, "Status: 4.3.0") {
		t.Errorf("give-up bounce:\n%s", d)
	}
}

func TestPeerTLS(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, "a@example.test")
	good, goodCA := startServer(t, "127.0.0.1")
	wrong, _ := startServer(t, "127.0.0.1")
	plain, _ := startServer(t)
	// The CA wrong's certificate does not chain to.
	dir := t.TempDir()
	if err := config.WriteSelfSigned(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	otherCA, _ := os.ReadFile(filepath.Join(dir, "c.pem"))
	for _, p := range []mailstore.Peer{
		{Domain: "good.test", Relay: good.addr, TLSCA: goodCA},
		{Domain: "wrong.test", Relay: wrong.addr, TLSCA: string(otherCA)},
		{Domain: "plain.test", Relay: plain.addr, TLSCA: string(otherCA)},
		{Domain: "byname.test", Relay: "localhost:" + good.port(), TLSCA: goodCA}, // cert has no name "localhost"
	} {
		if err := s.AddPeer(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// No DNS at all: peers only.
	q := &Queue{Store: s, Resolver: resolve.Off{}, Hostname: "mail.example.test"}
	runQueue(t, q)
	for _, to := range []string{"x@good.test", "x@wrong.test", "x@plain.test", "x@byname.test", "x@elsewhere.test"} {
		if err := q.Enqueue(ctx, "a@example.test", []string{to}, storetest.Msg("a@example.test", to, "s", "b")); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, "attempts", func() bool {
		es, _ := s.Queue(ctx)
		n := 0
		for _, e := range es {
			if e.Rcpts[0].Attempts > 0 {
				n++
			}
		}
		return len(good.messages()) == 1 && len(es) == 3 && n == 3
	})
	if m := good.messages()[0]; !m.tls || m.rcpts[0] != "x@good.test" {
		t.Errorf("peer verified by IP: %+v", m)
	}
	for _, ts := range []*testServer{wrong, plain} {
		ts.mu.Lock()
		if ts.sessions != 0 || len(ts.got) != 0 {
			t.Errorf("mail sent to a peer that failed TLS: %d sessions", ts.sessions)
		}
		ts.mu.Unlock()
	}
	es, _ := s.Queue(ctx)
	errs := map[string]string{}
	for _, e := range es {
		if e.Rcpts[0].Status != mailstore.RcptPending {
			t.Errorf("%s: %v, want pending", e.Rcpts[0].Addr, e.Rcpts[0].Status)
		}
		errs[e.Rcpts[0].Addr] = e.Rcpts[0].LastError
	}
	if !strings.Contains(errs["x@wrong.test"], "certificate") || !strings.Contains(errs["x@plain.test"], "STARTTLS") ||
		!strings.Contains(errs["x@byname.test"], "certificate") {
		t.Errorf("errors: %q", errs)
	}
	// A non-peer with DNS off fails at once and is bounced.
	if _, ok := errs["x@elsewhere.test"]; ok {
		t.Error("non-peer with DNS off still queued")
	}
}

func TestRoute(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	r := &resolve.Static{
		MX: map[string][]*net.MX{
			"multi.test":    {{Host: "backup.multi.test.", Pref: 20}, {Host: "primary.multi.test.", Pref: 10}, {Host: "gone.multi.test.", Pref: 15}},
			"null.test":     {{Host: ".", Pref: 0}},
			"deadhost.test": {{Host: "nowhere.deadhost.test.", Pref: 10}},
		},
		IP: map[string][]net.IP{
			"primary.multi.test": {net.ParseIP("127.0.0.1")},
			"backup.multi.test":  {net.ParseIP("127.0.0.2"), net.ParseIP("::1")},
			"bare.test":          {net.ParseIP("127.0.0.3")},
		},
	}
	q := &Queue{Store: s, Resolver: r, Port: "2525"}
	rt, err := q.route(ctx, "multi.test")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range rt.hops {
		got = append(got, h.name+"="+h.addr)
	}
	want := "primary.multi.test=127.0.0.1:2525 backup.multi.test=127.0.0.2:2525 backup.multi.test=[::1]:2525"
	if strings.Join(got, " ") != want || rt.tls != nil {
		t.Errorf("multi.test: %v", got)
	}
	if rt, err := q.route(ctx, "bare.test"); err != nil || len(rt.hops) != 1 || rt.hops[0].addr != "127.0.0.3:2525" {
		t.Errorf("implicit MX: %+v %v", rt, err)
	}
	for _, d := range []string{"null.test", "deadhost.test", "nxdomain.test"} {
		_, err := q.route(ctx, d)
		if re, ok := err.(*routeError); !ok || !re.perm {
			t.Errorf("%s: %v, want a permanent error", d, err)
		}
	}
	q.Resolver = failing{}
	if _, err := q.route(ctx, "multi.test"); err == nil || err.(*routeError).perm {
		t.Errorf("failing resolver: %v, want a temporary error", err)
	}
	// A peer wins over DNS.
	if err := s.AddPeer(ctx, mailstore.Peer{Domain: "multi.test", Relay: "10.1.2.3:25"}); err != nil {
		t.Fatal(err)
	}
	if rt, err := q.route(ctx, "multi.test"); err != nil || rt.tls == nil || len(rt.hops) != 1 || rt.hops[0].name != "10.1.2.3" {
		t.Errorf("peer route: %+v %v", rt, err)
	}
}

type failing struct{}

func (failing) LookupMX(context.Context, string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "server failure", IsTemporary: true}
}
func (failing) LookupIP(context.Context, string) ([]net.IP, error) {
	return nil, &net.DNSError{Err: "server failure", IsTemporary: true}
}
func (failing) LookupTXT(context.Context, string) ([]string, error) {
	return nil, &net.DNSError{Err: "server failure", IsTemporary: true}
}

func TestFallbackAcrossHosts(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, "a@example.test")
	ts, _ := startServer(t)
	r := &resolve.Static{
		MX: map[string][]*net.MX{"remote.test": {{Host: "dead.remote.test", Pref: 5}, {Host: "live.remote.test", Pref: 10}}},
		// Nothing listens on 127.0.0.2 at the test server's port.
		IP: map[string][]net.IP{"dead.remote.test": {net.ParseIP("127.0.0.2")}, "live.remote.test": {net.ParseIP("127.0.0.1")}},
	}
	q := &Queue{Store: s, Resolver: r, Hostname: "mail.example.test", Port: ts.port()}
	runQueue(t, q)
	if err := q.Enqueue(ctx, "a@example.test", []string{"x@remote.test"}, storetest.Msg("a@example.test", "x@remote.test", "s", "b")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "delivery to the second MX", func() bool { return len(ts.messages()) == 1 && queueLen(t, s) == 0 })
}

// TestPeerRelayDNSOff: with DNS off, a peer's relay named by host name is
// found in the hosts file, or fails with an error that says so; the system's
// resolver is never asked.
func TestPeerRelayDNSOff(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("# peers\n127.0.0.1 localhost\n10.9.8.7 mail.peer.test mail # the peer\n::1 MAIL.peer.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []mailstore.Peer{{Domain: "peer.test", Relay: "mail.peer.test:2525"}, {Domain: "lost.test", Relay: "mail.lost.test:25"}} {
		if err := s.AddPeer(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	q := &Queue{Store: s, Resolver: resolve.Off{Hosts: hosts}}
	rt, err := q.route(ctx, "peer.test")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range rt.hops {
		got = append(got, h.name+"="+h.addr)
	}
	if want := "mail.peer.test=10.9.8.7:2525 mail.peer.test=[::1]:2525"; strings.Join(got, " ") != want || rt.tls == nil {
		t.Errorf("peer by name: %v, want %s", got, want)
	}
	_, err = q.route(ctx, "lost.test")
	if re, ok := err.(*routeError); !ok || re.perm || !strings.Contains(re.msg, "mail.lost.test is not in "+hosts) {
		t.Errorf("peer not in the hosts file: %v", err)
	}
}

// TestDamagedContent: a queued message whose content was damaged in the blob
// store is never sent. The damage shows at the last read of the content,
// during DATA: the relay hangs up before the final dot, so the next hop
// drops what it got, and the attempt counts for no recipient.
func TestDamagedContent(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, "a@example.test")
	ts, _ := startServer(t)
	msg := storetest.Msg("a@example.test", "x@remote.test", "Công văn hỏng", strings.Repeat("Nội dung công văn.\r\n", 5000))
	id, err := s.Enqueue(ctx, "a@example.test", []string{"x@remote.test"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Damage(t, s.Blobs(), sha256.Sum256(msg), storetest.Garble) // same size: only the hash tells
	var logs testlog.Capture
	q := &Queue{Store: s, Resolver: mxTo("remote.test"), Hostname: "mail.example.test", Port: ts.port(), Logger: logs.Logger(slog.LevelInfo)}
	runQueue(t, q)
	testwait.For(t, "the attempt to fail", func() bool { return len(logs.Grep("relay: processing queue entry", "damaged")) > 0 })
	ts.mu.Lock()
	sessions := ts.sessions
	ts.mu.Unlock()
	if got := ts.messages(); len(got) != 0 || sessions != 1 {
		t.Errorf("the next hop took %d messages in %d sessions, want none in one", len(got), sessions)
	}
	e, err := s.QueueEntry(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.Rcpts[0]; r.Status != mailstore.RcptPending || r.Attempts != 0 {
		t.Errorf("recipient after the damaged content: %+v", r)
	}
}
