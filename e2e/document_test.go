package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"sealmail/internal/testtool"
	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/signing"
	"sealmail/signing/signingtest"
)

const (
	officialA = "vanthu@agency-a.test"
	officialB = "vanthu@agency-b.test"
	lan       = "lan@agency-b.test"
	subject   = "Về việc triển khai hệ thống thư điện tử công vụ năm 2026"
)

// agencies starts agency-a.test and agency-b.test as two agencies (see
// agency), each the other's peer with its seal trusted, as pair does for
// plain mail. B has a staff member, lan; A has nam.
func agencies(t *testing.T) (a, b *instance) {
	t.Helper()
	a, b = newInstance(t, "agency-a.test", "nam"), newInstance(t, "agency-b.test", "lan")
	a.agency(t, "000.00.12.H10", "Sở Thông tin và Truyền thông", "STTTT-VP")
	b.agency(t, "000.00.13.H10", "Sở Tài chính", "STC-VP")
	a.peer(t, b)
	b.peer(t, a)
	a.start(t)
	b.start(t)
	return a, b
}

// document is a message as a clerk's mail client writes it to release an
// official document: From: the official address, with a PDF attached.
func document(t *testing.T, from, to, file string, pdf []byte) string {
	t.Helper()
	var h gomail.Header
	h.SetDate(time.Now())
	h.SetAddressList("From", []*gomail.Address{{Name: "Văn thư", Address: from}})
	h.SetAddressList("To", []*gomail.Address{{Address: to}})
	h.SetSubject(subject)
	h.SetMessageID(fmt.Sprintf("%d@agency-a.test", time.Now().UnixNano()))
	h.Set("Official-Document-Signer", "Giám đốc; Nguyễn Văn An")
	return string(signingtest.Message(t, h, "Kính gửi Sở Tài chính,\r\nSở Thông tin và Truyền thông gửi kèm kế hoạch triển khai.\r\n",
		signingtest.File{Name: file, Type: "application/pdf", Data: pdf}))
}

// national is the national CA that certifies the person with authority who
// signs every test document; both agencies trust it (documents.trust-roots).
var national = sync.OnceValue(func() *signingtest.CA { return signingtest.NewCA(&testing.T{}, time.Now()) })

// pdf returns a three-page letter with about n bytes of image data, signed
// visibly by the director where the letter leaves room for it.
func pdf(n int) []byte {
	t := &testing.T{}
	cert, key := national().Person(t, "Nguyễn Văn An", "Sở Thông tin và Truyền thông", time.Now())
	out, err := signing.SignPDF(context.Background(), signingtest.Letter(1, n, 3), &signing.Seal{Cert: cert, Key: key}, signing.PDFSignOptions{
		Field: "Signer", Name: "Nguyễn Văn An",
		Appearance: &signing.Appearance{Page: -1, Rect: signingtest.SignerRect, Image: signingtest.SignatureImage()},
	}, time.Now())
	if err != nil {
		panic(err)
	}
	return out
}

// attachment returns the decoded attachment called name in msg.
func attachment(t *testing.T, msg []byte, name string) []byte {
	t.Helper()
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	e.Walk(func(_ []int, p *message.Entity, err error) error {
		_, params, _ := p.Header.ContentDisposition()
		if err == nil && params["filename"] == name {
			got, err = io.ReadAll(p.Body)
		}
		return err
	})
	if got == nil {
		t.Fatalf("no attachment %s", name)
	}
	return got
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// register returns x's outgoing or incoming register.
func (x *instance) register(t testing.TB, dir mailstore.Direction) []mailstore.DocEntry {
	t.Helper()
	es, err := x.store.Docs(context.Background(), mailstore.DocQuery{Domain: x.domain, Direction: dir})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// ack returns party's acknowledgement in the only entry of x's outgoing
// register. The party's receipt comes back through its queue: wait for that
// (delivered) first.
func (x *instance) ack(t testing.TB, party string) mailstore.DocAck {
	t.Helper()
	es := x.register(t, mailstore.DocOut)
	if len(es) != 1 {
		t.Fatalf("%s's outgoing register: %+v", x.domain, es)
	}
	i := slices.IndexFunc(es[0].Acks, func(a mailstore.DocAck) bool { return a.Party == party })
	if i < 0 {
		t.Fatalf("%s's outgoing register has no acknowledgement from %s: %+v", x.domain, party, es[0].Acks)
	}
	return es[0].Acks[i]
}

// evidence checks that x's evidence chain verifies and holds exactly want
// ("ORIGIN EVENT STATUS" rows, oldest first), each keeping its signed
// receipt.
func (x *instance) evidence(t *testing.T, want ...string) {
	t.Helper()
	ctx := context.Background()
	evs, err := x.store.Evidence(ctx, mailstore.EvidenceQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, strings.TrimSpace(ev.Origin+" "+ev.Event+" "+ev.StatusCode))
		if len(ev.Receipt) == 0 {
			t.Errorf("%s: evidence %d (%s) keeps no receipt", x.domain, ev.ID, ev.Event)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s evidence: %q, want %q", x.domain, got, want)
	}
	if n, _, err := x.store.VerifyEvidence(ctx); err != nil || n != len(evs) {
		t.Errorf("%s evidence chain: %d rows verified of %d: %v", x.domain, n, len(evs), err)
	}
}

func headerOf(t testing.TB, msg []byte) mail.Header {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("%v\n%.500s", err, msg)
	}
	return m.Header
}

// TestOfficialDocument: A's clerk releases a document over A's submission
// port; A numbers and seals it, B verifies, registers and delivers it, and
// B's receipt comes back over SMTP to A's register, with the evidence of
// every step on both sides.
func TestOfficialDocument(t *testing.T) {
	a, b := agencies(t)
	att := pdf(40 << 10)
	const file = "Kế hoạch 01 - triển khai.pdf"
	a.submitFrom(t, "clerk", officialA, []string{lan}, document(t, officialA, lan, file, att))

	// A's registry numbered and sealed it before the submission's 250.
	outReg := a.register(t, mailstore.DocOut)
	if len(outReg) != 1 {
		t.Fatalf("A's outgoing register: %+v", outReg)
	}
	e := outReg[0]
	if e.Number != 1 || e.Notation != "01/STTTT-VP" || e.Status != registry.StatusSent || e.Sender != "clerk@agency-a.test" ||
		!slices.Equal(e.Recipients, []string{lan}) || e.Subject != subject || !strings.HasPrefix(e.DocumentID, "000.00.12.H10,") {
		t.Errorf("A's outgoing entry: %+v", e)
	}
	filed := a.folder(t, "clerk", registry.OutFolder)
	if len(filed) != 1 {
		t.Fatalf("A's clerk has %d messages in %s, want the stamped copy", len(filed), registry.OutFolder)
	}
	// A signed the PDF inside, after the director: the file sent keeps his
	// revision and adds the agency's.
	sent := attachment(t, filed[0], file)
	if !bytes.HasPrefix(sent, att) {
		t.Error("the sent PDF does not keep the signer's revision")
	}
	if len(e.Files) != 1 || e.Files[0].Name != file || e.Files[0].SHA256 != sum(sent) {
		t.Errorf("A's outgoing entry files: %+v", e.Files)
	}
	if id := headerOf(t, filed[0]).Get("Official-Document-Id"); id != e.DocumentID {
		t.Errorf("the filed copy has Official-Document-Id %q, want %q", id, e.DocumentID)
	}
	t.Run("openssl", func(t *testing.T) {
		opensslVerify(t, filed[0], filepath.Join(registry.SealDir(a.docs.DataDir, a.domain), registry.CACertFile))
	})

	// B has it once A's queue is empty: B stores before its 250.
	a.delivered(t)
	inReg := b.register(t, mailstore.DocIn)
	if len(inReg) != 1 {
		t.Fatalf("B's incoming register: %+v", inReg)
	}
	in := inReg[0]
	if in.Number != 1 || in.Notation != e.Notation || in.DocumentID != e.DocumentID || in.MessageID != e.MessageID ||
		in.Status != registry.StatusReceived || in.Sender != officialA || in.Organ != "Sở Thông tin và Truyền thông" ||
		!slices.Equal(in.Recipients, []string{lan}) || len(in.Files) != 1 || in.Files[0].SHA256 != sum(sent) ||
		!strings.Contains(in.Notes, "ký bởi Nguyễn Văn An") {
		t.Errorf("B's incoming entry: %+v", in)
	}
	got := b.inbox(t, "lan")
	if len(got) != 1 {
		t.Fatalf("lan's INBOX holds %d messages, want the document", len(got))
	}
	h := headerOf(t, got[0])
	if v, want := h.Get("Official-Document"), `pass; organ=000.00.12.H10; doc="01/STTTT-VP"; so-den=1; pdf="1 file(s), 2 signature(s) verified"`; v != want {
		t.Errorf("Official-Document: %q, want %q", v, want)
	}
	if ar := h.Get("Authentication-Results"); !strings.Contains(ar, "dkim=pass header.d=agency-a.test") {
		t.Errorf("Authentication-Results: %q, want A's DKIM signature verified", ar)
	}
	// What lan's mail client checks: the seal still holds after relaying
	// added its trace, DKIM signature and verdicts.
	opts, err := b.docs.VerifyOptions(context.Background(), a.domain)
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = time.Now()
	res, err := signing.Verify(got[0], opts)
	if err != nil {
		t.Fatalf("the delivered document does not verify at B: %v\n%s", err, res)
	}
	if m := res.Manifest; m.DocumentID != e.DocumentID || len(m.Attachments) != 1 || m.Attachments[0].SHA256 != sum(sent) ||
		len(m.To) != 1 || m.To[0].OrganName != "Sở Tài chính" {
		t.Errorf("manifest: %+v", m)
	}
	// What lan's PDF reader checks in the file she saves: poppler and qpdf.
	t.Run("pdfsig", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "saved.pdf")
		if err := os.WriteFile(path, attachment(t, got[0], file), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(testtool.Path(t, "pdfsig", "poppler-utils"), "-nocert", path).CombinedOutput()
		if err != nil || strings.Count(string(out), "Signature Validation: Signature is Valid.") != 2 ||
			!strings.Contains(string(out), "Signer Certificate Common Name: Nguyễn Văn An") ||
			!strings.Contains(string(out), "- Signer Certificate Common Name: Sở Thông tin và Truyền thông\n") ||
			!strings.HasSuffix(strings.TrimSpace(string(out)), "Total document signed\n  - Signature Validation: Signature is Valid.") {
			t.Errorf("pdfsig: %v\n%s", err, out)
		}
		out, err = exec.Command(testtool.Path(t, "qpdf", "qpdf"), "--check", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No syntax or stream encoding errors found") {
			t.Errorf("qpdf --check: %v\n%s", err, out)
		}
	})
	if n := len(b.folder(t, "clerk", registry.InFolder)); n != 1 {
		t.Errorf("B's clerk has %d documents in %s, want 1", n, registry.InFolder)
	}

	// B queued its ContentConsignment receipt before its 250 to A; A
	// records it before its 250 to B.
	b.delivered(t)
	if ack := a.ack(t, officialB); ack.StatusCode != "03" || ack.Reason != "" {
		t.Errorf("A's register records B's acknowledgement as %+v, want status 03 (registered)", ack)
	}
	receipts := a.inbox(t, "clerk")
	if len(receipts) != 2 {
		t.Fatalf("A's clerk's INBOX holds %d messages, want 2 receipts", len(receipts))
	}
	for i, ev := range []signing.Event{signing.SubmissionAcceptance, signing.ContentConsignment} {
		if v := headerOf(t, receipts[i]).Get("Official-Document-Receipt"); !strings.HasPrefix(v, string(ev)+";") {
			t.Errorf("A's clerk's receipt %d: Official-Document-Receipt %q, want %s", i, v, ev)
		}
	}
	a.evidence(t, "issued SubmissionAcceptance", "received ContentConsignment 03")
	b.evidence(t, "issued ContentConsignment 03")
}

// TestTamperedDocument: a copy of A's sealed document with one bit of its
// attachment flipped, sent to B's MX as A's official address, is registered
// nowhere at B, reaches its recipient only as a quarantine notice naming the
// failed check, and is refused back to A with a signed receipt that A's
// register records. The genuine document, delivered afterwards, still takes
// B's first incoming number.
func TestTamperedDocument(t *testing.T) {
	ctx := context.Background()
	a, b := agencies(t)
	// B's MX is down, so the genuine document waits in A's queue (for
	// relay.MinBackoff) while a tampered copy of it reaches B first.
	b.stopMX(t)
	a.submitFrom(t, "clerk", officialA, []string{lan}, document(t, officialA, lan, "cv.pdf", pdf(30<<10)))
	a.deferred(t)
	filed := a.folder(t, "clerk", registry.OutFolder)
	if len(filed) != 1 {
		t.Fatalf("A's clerk has %d messages in %s", len(filed), registry.OutFolder)
	}
	b.serveMX(t)
	inject(t, b, officialA, lan, flipBit(t, filed[0]))

	// B answered 250 after quarantining it.
	if n := len(b.register(t, mailstore.DocIn)); n != 0 {
		t.Errorf("B's incoming register holds %d entries after the tampered copy", n)
	}
	if n := len(b.inbox(t, "lan")); n != 0 {
		t.Errorf("lan's INBOX holds %d messages, want none", n)
	}
	quarantined := b.folder(t, "lan", registry.QuarantineFolder)
	if len(quarantined) != 1 {
		t.Fatalf("lan's %s holds %d messages, want the notice", registry.QuarantineFolder, len(quarantined))
	}
	if v, want := headerOf(t, quarantined[0]).Get("Official-Document"), "fail; check=signature; reason=digest-mismatch"; v != want {
		t.Errorf("the notice's Official-Document: %q, want %q", v, want)
	}
	if text := noticeText(t, quarantined[0]); !strings.Contains(text, "KHÔNG được tiếp nhận") ||
		!strings.Contains(text, "check failed (signature)") {
		t.Errorf("the notice does not name the failed check:\n%s", text)
	}

	// B's ContentConsignmentFailure receipt is recorded in A's register.
	b.delivered(t)
	if ack := a.ack(t, officialB); ack.StatusCode != "02" || !strings.Contains(ack.Reason, "signature: digest-mismatch") {
		t.Errorf("A's register records B's answer as %+v, want status 02 naming the failed check", ack)
	}
	a.evidence(t, "issued SubmissionAcceptance", "received ContentConsignmentFailure 02")
	b.evidence(t, "issued ContentConsignmentFailure 02")
	// Returned automatically: A's register shows it.
	if e := a.register(t, mailstore.DocOut)[0]; e.Status != registry.StatusReturned || !strings.Contains(e.Notes, "returned by "+officialB) {
		t.Errorf("A's line after the automatic return: %+v", e)
	}

	// What 'sealmail queue retry' does: the genuine document goes now.
	if err := a.store.RetryQueueAll(ctx); err != nil {
		t.Fatal(err)
	}
	a.queue.Wake()
	a.delivered(t)
	if r := b.register(t, mailstore.DocIn); len(r) != 1 || r[0].Number != 1 {
		t.Fatalf("B's incoming register after the genuine document: %+v", r)
	}
	if got := b.inbox(t, "lan"); len(got) != 1 || !strings.Contains(headerOf(t, got[0]).Get("Official-Document"), "so-den=1;") {
		t.Errorf("lan's INBOX holds %d messages, want the genuine document as so-den=1", len(got))
	}
	b.delivered(t)
	if ack := a.ack(t, officialB); ack.StatusCode != "03" {
		t.Errorf("A's register records B's answer as %+v once the genuine document arrived, want status 03", ack)
	}
	if e := a.register(t, mailstore.DocOut)[0]; e.Status != registry.StatusSent {
		t.Errorf("A's line once the genuine document arrived: %+v", e)
	}
}

// flipBit flips one bit of the attachment in a sealed message: it changes a
// base64 digit of the application/pdf part to its neighbour, which decodes to
// the same bytes but one.
func flipBit(t *testing.T, msg []byte) []byte {
	t.Helper()
	i := bytes.Index(msg, []byte("Content-Type: application/pdf"))
	if i < 0 {
		t.Fatalf("no PDF part in\n%.2000s", msg)
	}
	body := i + bytes.Index(msg[i:], []byte("\r\n\r\n")) + 4
	const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	at := body + 40 // inside the first line, far from any padding
	d := strings.IndexByte(digits, msg[at])
	if d < 0 {
		t.Fatalf("%q is not a base64 digit", msg[at])
	}
	out := bytes.Clone(msg)
	out[at] = digits[d^1]
	return out
}

// inject sends msg to x's MX port as another server would, with MAIL FROM
// from and STARTTLS.
func inject(t *testing.T, x *instance, from, to string, msg []byte) {
	t.Helper()
	c, err := smtp.DialStartTLS(x.mx, x.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail(from, []string{to}, bytes.NewReader(msg)); err != nil {
		t.Fatalf("MX of %s: %v", x.domain, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// noticeText returns the text part of a quarantine notice.
func noticeText(t *testing.T, msg []byte) string {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no text part in the notice: %v", err)
		}
		if _, ok := p.Header.(*gomail.InlineHeader); ok {
			b, err := io.ReadAll(p.Body)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

// opensslVerify checks a sealed message as any S/MIME tool would, against
// the agency's seal CA file.
func opensslVerify(t *testing.T, msg []byte, caFile string) {
	t.Helper()
	path := testtool.Path(t, "openssl", "openssl")
	dir := t.TempDir()
	eml, content := filepath.Join(dir, "doc.eml"), filepath.Join(dir, "content")
	if err := os.WriteFile(eml, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "smime", "-verify", "-in", eml, "-CAfile", caFile, "-purpose", "smimesign", "-out", content).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl smime -verify: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(content); err != nil || !bytes.Contains(b, []byte("manifest.xml")) {
		t.Errorf("openssl's verified content lacks the manifest (%v):\n%.500s", err, b)
	}
}
