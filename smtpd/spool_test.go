package smtpd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"sealmail/internal/testwait"
)

// bigMessage is a message of about n bytes, lines of 76 characters.
func bigMessage(subject string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: x@remote.test\r\nTo: a@example.test\r\nSubject: %s\r\n\r\n", subject)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08d %s\r\n", i, strings.Repeat("q", 66))
	}
	return b.String()
}

// TestSpool: a message past the in-memory part goes through a spool file in
// SpoolDir, which is empty again afterwards, and is stored intact.
func TestSpool(t *testing.T) {
	dir := t.TempDir()
	e := start(t, &Server{SpoolDir: dir})
	for _, n := range []int{100, memPerMessage - 10, memPerMessage + 10, 3 << 20} {
		msg := bigMessage(fmt.Sprintf("size %d", n), n)
		if err := send(e.dialMX(t), "x@remote.test", []string{"a@example.test"}, msg); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		items := e.inbox(t, "a@example.test")
		got := items[len(items)-1].Content
		if !bytes.HasSuffix(got, []byte(msg)) || !bytes.HasPrefix(got, []byte("Received: ")) {
			t.Fatalf("%d bytes: stored %d bytes, not the message behind its trace field", n, len(got))
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
	if u := e.srv.inflight.used.Load(); u != 0 {
		t.Errorf("%d bytes still counted in flight", u)
	}
	if u := e.srv.memory.used.Load(); u != 0 {
		t.Errorf("%d bytes still counted in memory", u)
	}
}

// TestInFlightBudget: a SIZE that does not fit what is left of MaxInFlight is
// refused at MAIL with 452, a message that outgrows it gets 451 at the end of
// DATA, and the connection stays in step; once room returns, mail flows.
func TestInFlightBudget(t *testing.T) {
	e := start(t, &Server{SpoolDir: t.TempDir(), MaxInFlight: 3 << 20})
	// One client declares 2 MiB and holds it.
	holder := dialRaw(t, e.mx)
	holder.ok("EHLO big.test")
	holder.ok("MAIL FROM:<x@remote.test> SIZE=2097152")

	r := dialRaw(t, e.mx)
	r.ok("EHLO other.test")
	if code, msg := r.cmd("MAIL FROM:<x@remote.test> SIZE=2000000"); code != 452 || !strings.HasPrefix(msg, "4.3.1") {
		t.Fatalf("SIZE over the budget left: %d %s", code, msg)
	}
	// Without SIZE the message takes room as it grows, and runs out.
	r.ok("MAIL FROM:<x@remote.test>")
	r.ok("RCPT TO:<a@example.test>")
	r.ok("DATA")
	r.write(strings.ReplaceAll(bigMessage("too much", 2<<20), "\r\n.", "\r\n..") + ".\r\n")
	if code, msg := r.reply(); code != 451 || !strings.HasPrefix(msg, "4.3.1") {
		t.Fatalf("message over the budget: %d %s", code, msg)
	}
	r.ok("NOOP")
	// A small one still fits.
	r.ok("MAIL FROM:<x@remote.test> SIZE=1000")
	r.ok("RCPT TO:<a@example.test>")
	r.ok("DATA")
	r.write("Subject: small\r\n\r\nfits\r\n.\r\n")
	r.expect(250)

	holder.ok("RSET")
	r.ok("MAIL FROM:<x@remote.test> SIZE=2000000")
	r.ok("RCPT TO:<a@example.test>")
	r.ok("DATA")
	r.write(bigMessage("now it fits", 1900000) + ".\r\n")
	r.expect(250)
	if n := len(e.inbox(t, "a@example.test")); n != 2 {
		t.Errorf("stored %d messages, want 2", n)
	}
	holder.ok("QUIT")
	r.ok("QUIT")
	testwait.For(t, "the in-flight budget to be given back", func() bool { return e.srv.inflight.used.Load() == 0 })
}

// TestSpoolStreamed: a spooled message is delivered from its spool file, only
// its header in memory: the forged Authentication-Results field is removed
// there, the body stays as sent, and a submission's local copy and queue
// entry are the same bytes, stored once. A header that does not end within
// its 1 MiB is refused.
func TestSpoolStreamed(t *testing.T) {
	ctx := context.Background()
	q := &fakeQueue{}
	e := start(t, &Server{SpoolDir: t.TempDir(), Queue: q})
	body := bigMessage("x", 3<<20)
	_, body, _ = strings.Cut(body, "\r\n\r\n")
	head := "From: x@remote.test\r\nTo: a@example.test\r\nAuthentication-Results: mail.example.test; dkim=pass\r\n\theader.d=example.test\r\nSubject: streamed\r\n\r\n"
	if err := send(e.dialMX(t), "x@remote.test", []string{"a@example.test"}, head+body); err != nil {
		t.Fatal(err)
	}
	got := string(e.inbox(t, "a@example.test")[0].Content)
	want := "From: x@remote.test\r\nTo: a@example.test\r\nSubject: streamed\r\n\r\n" + body
	if !strings.HasPrefix(got, "Received: ") || !strings.HasSuffix(got, want) || strings.Contains(got, "dkim=pass") {
		t.Errorf("stored %d bytes, want the trace field, then the %d sent without the forged field", len(got), len(want))
	}

	msg := "From: a@example.test\r\nTo: b@example.test, partner@other.test\r\nSubject: both\r\n\r\n" + body
	if err := send(e.dialSubmit(t, "a@example.test"), "a@example.test", []string{"b@example.test", "partner@other.test"}, msg); err != nil {
		t.Fatal(err)
	}
	local := e.inbox(t, "b@example.test")[0]
	queued := e.queued(t)
	if len(queued) != 1 || !bytes.Equal(queued[0].msg, local.Content) || !bytes.HasSuffix(local.Content, []byte(body)) {
		t.Errorf("queued %d entries; local copy and queued copy differ or lost the body", len(queued))
	}
	if local.Envelope.Subject != "both" {
		t.Errorf("envelope %+v", local.Envelope)
	}
	if st, _ := e.store.StorageStats(ctx); st.Blobs != 2 || st.Refs != 3 {
		t.Errorf("storage %+v: want the MX message and one shared submission content", st)
	}

	r := dialRaw(t, e.mx)
	r.ok("EHLO long.test")
	r.ok("MAIL FROM:<x@remote.test>")
	r.ok("RCPT TO:<a@example.test>")
	r.ok("DATA")
	var long strings.Builder
	for long.Len() <= maxHeader {
		fmt.Fprintf(&long, "X-Filler-%d: %s\r\n", long.Len(), strings.Repeat("h", 60))
	}
	r.write(long.String() + ".\r\n")
	if code, msg := r.reply(); code != 552 || !strings.HasPrefix(msg, "5.3.4") {
		t.Errorf("header over 1 MiB: %d %s", code, msg)
	}
	r.ok("QUIT")
	testwait.For(t, "the in-flight budget to be given back", func() bool { return e.srv.inflight.used.Load() == 0 })
}
