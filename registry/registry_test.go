package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/emersion/go-message"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sealmail/internal/testtool"
	"sealmail/mailstore"
	"sealmail/signing"
)

const subject = "Về việc triển khai hệ thống thư điện tử công vụ năm 2026"

// TestExchange sends a document from a.test to a staff member of b.test and
// checks every register, folder, receipt and evidence row on both sides.
func TestExchange(t *testing.T) {
	ctx := context.Background()
	x := newExchange(t)
	a, b := x.a, x.b
	att := signedPDF(t, 1, 40<<10)
	msg := docMessage(t, a.domain.OfficialAddress, b.staff.Address, subject, file{"Công văn 01 - Kế hoạch.pdf", att})
	out := x.submit(t, a, a.clerk, []string{b.staff.Address}, msg)

	wantID := "000.00.12.H10,2026/11/28,01/STTTT-VP"
	if got := header(t, out, "Official-Document-Id"); got != wantID {
		t.Errorf("Official-Document-Id %q, want %q", got, wantID)
	}
	// Sender's register and folders.
	outReg := docs(t, a, mailstore.DocOut)
	if len(outReg) != 1 {
		t.Fatalf("A's outgoing register: %+v", outReg)
	}
	e := outReg[0]
	if e.Number != 1 || e.Notation != "01/STTTT-VP" || e.DocumentID != wantID || e.Status != StatusSent || e.Year != 2026 ||
		e.DocDate != "2026-11-28" || e.Subject != subject || e.Signer != "Giám đốc Nguyễn Văn An" || e.Sender != a.clerk.Address ||
		!slices.Equal(e.Recipients, []string{b.staff.Address}) || e.Copies != 1 {
		t.Errorf("outgoing entry: %+v", e)
	}
	// The registry signed the PDF inside: the file sent is the signer's plus
	// the agency's signature.
	sent := attachment(t, out, "Công văn 01 - Kế hoạch.pdf")
	if !bytes.HasPrefix(sent, att) {
		t.Error("the sent PDF does not keep the signer's revision")
	}
	if len(e.Files) != 1 || e.Files[0].SHA256 != sum(sent) || e.Files[0].Name != "Công văn 01 - Kế hoạch.pdf" {
		t.Errorf("outgoing entry files: %+v", e.Files)
	}
	if len(e.Acks) != 1 || e.Acks[0].Party != b.domain.OfficialAddress || e.Acks[0].StatusCode != "03" {
		t.Errorf("outgoing entry acknowledgements: %+v", e.Acks)
	}
	if filed := folder(t, a, a.clerk, OutFolder); len(filed) != 1 || !bytes.Equal(filed[0], out) {
		t.Errorf("Văn bản đi holds %d messages, want the stamped one", len(filed))
	}
	inbox := folder(t, a, a.clerk, mailstore.Inbox)
	if len(inbox) != 2 {
		t.Fatalf("clerk's INBOX holds %d messages, want 2 receipts", len(inbox))
	}
	for i, ev := range []signing.Event{signing.SubmissionAcceptance, signing.ContentConsignment} {
		if got := header(t, inbox[i], fieldReceipt); !strings.HasPrefix(got, string(ev)+"; doc=") {
			t.Errorf("receipt %d: %s %q, want %s", i, fieldReceipt, got, ev)
		}
	}
	// The acceptance receipt verifies with A's own CA.
	opts, err := a.reg.VerifyOptions(ctx, a.domain.Name)
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = t0
	if ev, res, err := signing.ParseReceipt(inbox[0], opts); err != nil || ev.DocumentID != wantID || len(ev.Files) != 1 {
		t.Errorf("acceptance receipt: %v\n%s", err, res)
	}

	// Recipient's register and folders.
	inReg := docs(t, b, mailstore.DocIn)
	if len(inReg) != 1 {
		t.Fatalf("B's incoming register: %+v", inReg)
	}
	in := inReg[0]
	if in.Number != 1 || in.Notation != "01/STTTT-VP" || in.DocumentID != wantID || in.Organ != a.domain.OrganName ||
		in.Sender != a.domain.OfficialAddress || in.DocDate != "2026-11-28" || in.Subject != subject || in.Status != StatusReceived ||
		in.MessageID != e.MessageID || len(in.Files) != 1 || in.Files[0].SHA256 != sum(sent) {
		t.Errorf("incoming entry: %+v", in)
	}
	if len(in.Acks) != 1 || in.Acks[0].Party != a.domain.OfficialAddress || in.Acks[0].StatusCode != "03" {
		t.Errorf("incoming entry acknowledgements: %+v", in.Acks)
	}
	got := folder(t, b, b.staff, mailstore.Inbox)
	if len(got) != 1 {
		t.Fatalf("recipient's INBOX holds %d messages", len(got))
	}
	wantVerdict := `Official-Document: pass; organ=000.00.12.H10; doc="01/STTTT-VP"; so-den=1; pdf="1 file(s), 2 signature(s) verified"` + "\r\n"
	if !bytes.HasPrefix(got[0], []byte(wantVerdict)) || !bytes.Equal(got[0][len(wantVerdict):], out) {
		t.Errorf("delivered document does not start with %q followed by the stamped message:\n%.300s", wantVerdict, got[0])
	}
	bopts, err := b.reg.VerifyOptions(ctx, a.domain.Name)
	if err != nil {
		t.Fatal(err)
	}
	bopts.Now = t0
	res, err := signing.Verify(got[0], bopts)
	if err != nil {
		t.Fatalf("the verdict field broke the signature: %v\n%s", err, res)
	}
	// Nơi nhận names the To: addressee by its organ.
	if to := res.Manifest.To; len(to) != 1 || to[0] != (signing.Organ{OrganID: "000.00.13.H10", OrganName: "Sở Tài chính", Email: b.staff.Address}) {
		t.Errorf("manifest To: %+v", to)
	}
	if n := len(folder(t, b, b.clerk, InFolder)); n != 1 {
		t.Errorf("B's clerk has %d documents in %s, want 1", n, InFolder)
	}
	if n := len(folder(t, b, b.staff, QuarantineFolder)); n != 0 {
		t.Errorf("%d messages quarantined", n)
	}

	// Evidence on both sides.
	for _, c := range []struct {
		s    *side
		want []string
	}{
		{a, []string{"issued SubmissionAcceptance", "received ContentConsignment"}},
		{b, []string{"issued ContentConsignment"}},
	} {
		evs, err := c.s.store.Evidence(ctx, mailstore.EvidenceQuery{DocumentID: wantID})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, ev := range evs {
			kinds = append(kinds, ev.Origin+" "+ev.Event)
			if len(ev.Receipt) == 0 {
				t.Errorf("%s: evidence %d keeps no receipt", c.s.domain.Name, ev.ID)
			}
		}
		if !slices.Equal(kinds, c.want) {
			t.Errorf("%s evidence: %v, want %v", c.s.domain.Name, kinds, c.want)
		}
		if n, _, err := c.s.store.VerifyEvidence(ctx); err != nil || n != len(c.want) {
			t.Errorf("%s evidence chain: %d rows, %v", c.s.domain.Name, n, err)
		}
	}

	// The next document takes the next number on both sides.
	x.submit(t, a, a.clerk, []string{b.staff.Address}, docMessage(t, a.domain.OfficialAddress, b.staff.Address, "Thứ hai", file{"b.pdf", signedPDF(t, 2, 1000)}))
	if r := docs(t, a, mailstore.DocOut); len(r) != 2 || r[1].Notation != "02/STTTT-VP" {
		t.Errorf("second outgoing: %+v", r)
	}
	if r := docs(t, b, mailstore.DocIn); len(r) != 2 || r[1].Number != 2 || r[1].Notation != "02/STTTT-VP" {
		t.Errorf("second incoming: %+v", r)
	}
}

// TestNotADocument: only a clerk's message From the official address with an
// attachment is sealed.
func TestNotADocument(t *testing.T) {
	x := newExchange(t)
	a, b := x.a, x.b
	att := file{"cv.pdf", signedPDF(t, 1, 100)}
	for _, c := range []struct {
		name string
		acct mailstore.Account
		msg  []byte
	}{
		{"staff", a.staff, docMessage(t, a.domain.OfficialAddress, b.staff.Address, subject, att)},
		{"clerk's own address", a.clerk, docMessage(t, a.clerk.Address, b.staff.Address, subject, att)},
		{"no attachment", a.clerk, docMessage(t, a.domain.OfficialAddress, b.staff.Address, subject)},
	} {
		out, err := x.outgoing(a, c.acct, []string{b.staff.Address}, c.msg)
		if err != nil || out != nil {
			t.Errorf("%s: handled as a document (%v)", c.name, err)
		}
	}
	if r := docs(t, a, mailstore.DocOut); len(r) != 0 {
		t.Errorf("registered: %+v", r)
	}
	// Ordinary mail passes Incoming untouched.
	handled, err := b.reg.Incoming(context.Background(), a.staff.Address, []string{b.staff.Address}, nil, nil,
		docMessage(t, a.staff.Address, b.staff.Address, subject, att))
	if handled || err != nil {
		t.Errorf("ordinary mail: handled %v, %v", handled, err)
	}
}

// TestNoSeal: a document from an agency without a seal is refused for good.
func TestNoSeal(t *testing.T) {
	x := newExchange(t)
	a := x.a
	if err := os.RemoveAll(SealDir(a.dir, a.domain.Name)); err != nil {
		t.Fatal(err)
	}
	_, err := x.outgoing(a, a.clerk, []string{x.b.staff.Address},
		docMessage(t, a.domain.OfficialAddress, x.b.staff.Address, subject, file{"cv.pdf", signedPDF(t, 1, 100)}))
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "seal init") {
		t.Errorf("no seal: %v", err)
	}
	if r := docs(t, a, mailstore.DocOut); len(r) != 0 {
		t.Errorf("registered without a seal: %+v", r)
	}
	if n, ok := a.counts("stamped refused"), a.counts("stamped ok"); n != 1 || ok != 0 {
		t.Errorf("counted %d refused and %d stamped, want 1 refused", n, ok)
	}
}

// TestConcurrentClerks: 50 clerks sending at once get 50 distinct
// consecutive numbers.
func TestConcurrentClerks(t *testing.T) {
	ctx := context.Background()
	x := newExchange(t)
	a := x.a
	const n = 50
	var nas []mailstore.NewAccount
	var addrs []string
	for i := range n {
		addr := fmt.Sprintf("clerk%02d@%s", i, a.domain.Name)
		nas = append(nas, mailstore.NewAccount{Address: addr, Password: "pw", Role: mailstore.RoleClerk})
		addrs = append(addrs, addr)
	}
	clerks, err := a.store.AddAccounts(ctx, nas)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.store.AddAlias(ctx, a.domain.OfficialAddress, addrs); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i, c := range clerks {
		wg.Go(func() {
			msg := docMessage(t, a.domain.OfficialAddress, x.b.staff.Address, fmt.Sprintf("Văn bản %d", i), file{"cv.pdf", signedPDF(t, byte(i), 2000)})
			out, err := x.outgoing(a, c, []string{x.b.staff.Address}, msg)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = header(t, out, "Official-Document-Id")
		})
	}
	wg.Wait()
	reg := docs(t, a, mailstore.DocOut)
	if len(reg) != n {
		t.Fatalf("%d register entries, want %d", len(reg), n)
	}
	for i, e := range reg {
		if e.Number != i+1 || e.Status != StatusSent || !slices.Contains(ids, e.DocumentID) {
			t.Errorf("entry %d: number %d, status %s, document %s", i, e.Number, e.Status, e.DocumentID)
		}
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != n {
		t.Errorf("document IDs repeat: %v", ids)
	}
}

// TestResubmission: the same message submitted again keeps its number.
func TestResubmission(t *testing.T) {
	x := newExchange(t)
	a := x.a
	msg := docMessage(t, a.domain.OfficialAddress, x.b.staff.Address, subject, file{"cv.pdf", signedPDF(t, 1, 100)})
	first := x.submit(t, a, a.clerk, []string{x.b.staff.Address}, msg)
	x.clock.Set(t0.Add(time.Hour))
	again, err := x.outgoing(a, a.clerk, []string{x.b.staff.Address}, msg)
	if err != nil {
		t.Fatal(err)
	}
	if header(t, first, "Official-Document-Id") != header(t, again, "Official-Document-Id") {
		t.Errorf("resubmission got another document ID")
	}
	if r := docs(t, a, mailstore.DocOut); len(r) != 1 {
		t.Errorf("%d entries after resubmission", len(r))
	}
	// The recipient gets the same document twice: one number.
	if err := x.Enqueue(context.Background(), a.domain.OfficialAddress, []string{x.b.staff.Address}, again); err != nil {
		t.Fatal(err)
	}
	if r := docs(t, x.b, mailstore.DocIn); len(r) != 1 {
		t.Errorf("%d incoming entries for one document", len(r))
	}
	// Stamped once, verified each time it came.
	if n := a.counts("stamped ok"); n != 1 {
		t.Errorf("counted %d documents stamped, want 1", n)
	}
	if n := x.b.counts("verified pass"); n != 2 {
		t.Errorf("counted %d documents verified, want 2", n)
	}
}

// TestIncomingLocalAndRemote: a document that arrives for a recipient here
// and one on another server is filed and queued in one commit (issue 15,
// defect 11): the queue holds the remote copy once Incoming returns, and a
// sender's retry adds neither a local copy nor a queue entry.
func TestIncomingLocalAndRemote(t *testing.T) {
	x := newExchange(t)
	a, b := x.a, x.b
	ctx := context.Background()
	msg := docMessage(t, a.domain.OfficialAddress, b.staff.Address, subject, file{"cv.pdf", signedPDF(t, 1, 100)})
	var sealed []byte
	x.held(t, func() { sealed = x.submit(t, a, a.clerk, []string{b.staff.Address, "c@other.test"}, msg) })
	x.held(t, func() {
		for try := range 2 {
			handled, err := b.reg.Incoming(ctx, a.domain.OfficialAddress, []string{b.staff.Address},
				[]mailstore.Target{{AccountID: b.staff.ID}}, []string{"c@other.test"}, sealed)
			if !handled || err != nil {
				t.Fatalf("try %d: handled %v, %v", try, handled, err)
			}
			es, err := b.store.Queue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The copy for c@other.test, and the receipt to a.
			var copies []mailstore.QueueEntry
			for _, e := range es {
				if len(e.Rcpts) == 1 && e.Rcpts[0].Addr == "c@other.test" && e.From == a.domain.OfficialAddress {
					copies = append(copies, e)
				}
			}
			if len(copies) != 1 || len(es) != 2 {
				t.Fatalf("try %d: queue %+v, want one copy for c@other.test and a receipt", try, es)
			}
			if got, err := b.store.QueueContent(ctx, copies[0].ID); err != nil || !bytes.Equal(got, sealed) {
				t.Fatalf("try %d: queued content differs (%v)", try, err)
			}
			if n := len(folder(t, b, b.staff, mailstore.Inbox)); n != 1 {
				t.Fatalf("try %d: %d copies in the recipient's INBOX", try, n)
			}
			if r := docs(t, b, mailstore.DocIn); len(r) != 1 {
				t.Fatalf("try %d: %d incoming entries", try, len(r))
			}
		}
	})
}

// TestYearRollover: numbers start again at 1 on 1 January, in Vietnam's time.
func TestYearRollover(t *testing.T) {
	x := newExchange(t)
	a, b := x.a, x.b
	send := func(at time.Time) string {
		x.clock.Set(at)
		out := x.submit(t, a, a.clerk, []string{b.staff.Address},
			docMessage(t, a.domain.OfficialAddress, b.staff.Address, subject, file{"cv.pdf", signedPDF(t, 1, 100)}))
		return header(t, out, "Official-Document-Id")
	}
	eve := time.Date(2026, 12, 31, 23, 50, 0, 0, ICT)
	send(eve)
	if id := send(eve.Add(time.Minute)); id != "000.00.12.H10,2026/12/31,02/STTTT-VP" {
		t.Errorf("second of 2026: %s", id)
	}
	// 17:30 UTC on 31 December is already 1 January in Hanoi.
	if id := send(time.Date(2026, 12, 31, 17, 30, 0, 0, time.UTC)); id != "000.00.12.H10,2027/01/01,01/STTTT-VP" {
		t.Errorf("first of 2027: %s", id)
	}
	in := docs(t, b, mailstore.DocIn)
	if len(in) != 3 || in[2].Year != 2027 || in[2].Number != 1 || in[1].Number != 2 {
		t.Errorf("incoming register across the year: %+v", in)
	}
}

// TestQuarantine sends documents that must fail, each for its own reason: the
// recipient finds a notice in quarantine, nothing is registered, and the
// sender (if it is a known agency) gets a failure receipt with the reason.
func TestQuarantine(t *testing.T) {
	att := signedPDF(t, 1, 20<<10)
	other := signedPDF(t, 9, 20<<10)
	// stampedBy stamps a document From agency ag with seal, as a rogue or
	// misconfigured server would.
	stampedBy := func(t *testing.T, ag signing.Agency, seal *signing.Seal, to string, at time.Time) []byte {
		msg := docMessage(t, ag.OfficialAddress, to, subject, file{"cv.pdf", att})
		out, err := signing.Stamp(t.Context(), msg, seal, signing.Document{Number: 7, Agency: ag, Subject: subject}, at)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	agencyC := signing.Agency{Domain: "c.test", OrganID: "000.00.14.H10", OrganName: "Sở Giáo dục", Code: "SGD-VP", OfficialAddress: "vanthu@c.test"}
	agencyX := signing.Agency{Domain: "x.test", OrganID: "000.00.99.H10", OrganName: "Mạo danh", Code: "X", OfficialAddress: "vanthu@x.test"}

	for _, tc := range []struct {
		name string
		// make returns the message b.test receives.
		make    func(t *testing.T, x *exchange) []byte
		reason  string // failed checks as the receipt gives them
		matched bool   // the receipt answers an entry in A's register
		to      string // where the failure receipt goes; "" none
	}{
		{"flipped byte", func(t *testing.T, x *exchange) []byte {
			return rewritePart(t, x.sealed(t, att), "cv.pdf", func(b []byte) []byte { b[1000] ^= 1; return b })
		}, "signature: digest-mismatch; manifest: hash-mismatch", true, "vanthu@a.test"},
		{"forged manifest", func(t *testing.T, x *exchange) []byte {
			// The attachment replaced and the manifest made to match it.
			var sealed, forged []byte
			m := rewritePart(t, x.sealed(t, att), "cv.pdf", func(b []byte) []byte {
				sealed = slices.Clone(b)
				forged = append(slices.Clone(other), make([]byte, len(b))...)[:len(b)]
				return forged
			})
			return rewritePart(t, m, "manifest.xml", func(b []byte) []byte {
				return bytes.Replace(b, []byte(sum(sealed)), []byte(sum(forged)), 1)
			})
		}, "signature: digest-mismatch", true, "vanthu@a.test"},
		{"revoked", func(t *testing.T, x *exchange) []byte {
			x.revokeA(t)
			return x.sealed(t, att)
		}, "revocation: revoked", true, "vanthu@a.test"},
		{"expired", func(t *testing.T, x *exchange) []byte {
			// A's seal, from a CA set up three years ago, expired last year.
			if err := os.RemoveAll(SealDir(x.a.dir, x.a.domain.Name)); err != nil {
				t.Fatal(err)
			}
			seal, err := InitSeal(x.a.dir, x.a.domain, t0.AddDate(-3, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			x.trust(t, x.b, x.a)
			// A's own registry refuses to seal with it; a misconfigured
			// server might not.
			msg := docMessage(t, x.a.domain.OfficialAddress, x.b.staff.Address, subject, file{"cv.pdf", att})
			if _, err := x.outgoing(x.a, x.a.clerk, []string{x.b.staff.Address}, msg); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "expired") {
				t.Errorf("A sealed with an expired seal: %v", err)
			}
			if e := docs(t, x.a, mailstore.DocOut); len(e) != 0 {
				t.Errorf("a document not sealed took a number: %+v", e)
			}
			return stampedBy(t, Agency(x.a.domain), seal, x.b.staff.Address, t0)
		}, "validity: expired", false, "vanthu@a.test"},
		{"peer's CA for another domain", func(t *testing.T, x *exchange) []byte {
			// b.test trusts c.test's own CA; a.test's CA vouches for c.test.
			cCA, _, err := signing.NewLocalCA(agencyC.OrganName, agencyC.OrganID, t0)
			if err != nil {
				t.Fatal(err)
			}
			if err := x.b.store.SetPeerSeal(context.Background(), mailstore.PeerSeal{Domain: "c.test", CA: string(signing.EncodeCertsPEM(cCA))}); err != nil {
				t.Fatal(err)
			}
			ca, key := caOf(t, x.a)
			seal, err := signing.IssueSeal(ca, key, agencyC, t0)
			if err != nil {
				t.Fatal(err)
			}
			return stampedBy(t, agencyC, seal, x.b.staff.Address, t0)
		}, "chain: untrusted-issuer", false, "vanthu@c.test"},
		{"unknown sender", func(t *testing.T, x *exchange) []byte {
			ca, key, err := signing.NewLocalCA(agencyX.OrganName, agencyX.OrganID, t0)
			if err != nil {
				t.Fatal(err)
			}
			seal, err := signing.IssueSeal(ca, key, agencyX, t0)
			if err != nil {
				t.Fatal(err)
			}
			return stampedBy(t, agencyX, seal, x.b.staff.Address, t0)
		}, "chain: no-trust-anchor", false, ""},
		{"claimed verdict", func(t *testing.T, x *exchange) []byte {
			return append([]byte("Official-Document: pass; organ=000.00.12.H10; doc=\"01/STTTT-VP\"; so-den=1\r\n"),
				docMessage(t, x.a.domain.OfficialAddress, x.b.staff.Address, subject, file{"cv.pdf", att})...)
		}, "structure: not-signed", false, "vanthu@a.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			x := newExchange(t)
			a, b := x.a, x.b
			msg := tc.make(t, x)
			if err := x.Enqueue(ctx, header(t, msg, "From"), []string{b.staff.Address}, msg); err != nil {
				t.Fatal(err)
			}
			if r := docs(t, b, mailstore.DocIn); len(r) != 0 {
				t.Errorf("registered: %+v", r)
			}
			if n := len(folder(t, b, b.staff, mailstore.Inbox)) + len(folder(t, b, b.clerk, InFolder)); n != 0 {
				t.Errorf("%d copies delivered as a document", n)
			}
			q := folder(t, b, b.staff, QuarantineFolder)
			if len(q) != 1 {
				t.Fatalf("quarantine holds %d messages", len(q))
			}
			first, _, _ := strings.Cut(tc.reason, ";")
			check, reason, _ := strings.Cut(first, ": ")
			if v := header(t, q[0], fieldDocument); v != fmt.Sprintf("fail; check=%s; reason=%s", check, reason) {
				t.Errorf("notice verdict %q", v)
			}
			for _, w := range []string{"KHÔNG được tiếp nhận", "was NOT accepted", "[" + reason + "]"} {
				if !bytes.Contains(decodedText(t, q[0]), []byte(w)) {
					t.Errorf("notice lacks %q:\n%s", w, decodedText(t, q[0]))
				}
			}
			// The failure receipt, recorded on B's side in any case.
			evs := b.evidence(t)
			if len(evs) != 1 || evs[0].Event != string(signing.ContentConsignmentFailure) || evs[0].StatusCode != "02" ||
				!strings.HasPrefix(evs[0].Reason, tc.reason) {
				for _, ev := range evs {
					t.Errorf("B's evidence: %d %s %s %q", ev.ID, ev.Event, ev.StatusCode, ev.Reason)
				}
				t.Fatalf("want one %s with reason %q", signing.ContentConsignmentFailure, tc.reason)
			}
			switch tc.to {
			case "":
				if len(evs[0].Receipt) != 0 || len(x.other) != 0 || len(a.evidence(t)) != 0 {
					t.Error("a receipt went to an unknown sender")
				}
			case "vanthu@c.test":
				if len(x.other) != 1 {
					t.Fatalf("%d messages for c.test", len(x.other))
				}
				opts, _ := a.reg.VerifyOptions(ctx, "b.test")
				opts.Now = t0
				ev, res, err := signing.ParseReceipt(x.other[0], opts)
				if err != nil || ev.Reason != tc.reason || ev.From != "vanthu@c.test" {
					t.Errorf("receipt to c.test: %+v %v\n%s", ev, err, res)
				}
			default:
				got := a.evidence(t)
				last := got[len(got)-1]
				if last.Origin != mailstore.EvidenceReceived || last.Event != string(signing.ContentConsignmentFailure) ||
					last.Reason != joinNonEmpty("; ", tc.reason, map[bool]string{false: "unmatched: no such document sent"}[tc.matched]) {
					t.Errorf("A's evidence of the failure receipt: %s %s %q", last.Origin, last.Event, last.Reason)
				}
				if !tc.matched {
					break
				}
				e := docs(t, a, mailstore.DocOut)[0]
				if len(e.Acks) != 1 || e.Acks[0].StatusCode != "02" || e.Acks[0].Reason != tc.reason {
					t.Errorf("A's register entry acknowledgements: %+v", e.Acks)
				}
				inbox := folder(t, a, a.clerk, mailstore.Inbox)
				if len(inbox) != 2 || !strings.HasPrefix(header(t, inbox[1], fieldReceipt), string(signing.ContentConsignmentFailure)) {
					t.Errorf("the clerk's INBOX lacks the failure receipt (%d messages)", len(inbox))
				}
			}
		})
	}
}

// TestForgedReceipt: a receipt that does not verify is quarantined and
// changes no register.
func TestForgedReceipt(t *testing.T) {
	x := newExchange(t)
	a, b := x.a, x.b
	ctx := context.Background()
	out := x.sealed(t, signedPDF(t, 1, 100))
	// A receipt signed by an untrusted seal that claims to be b.test's.
	ca, key, err := signing.NewLocalCA("Giả mạo", "000.00.13.H10", t0)
	if err != nil {
		t.Fatal(err)
	}
	seal, err := signing.IssueSeal(ca, key, Agency(b.domain), t0)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := signing.Receipt(t.Context(), seal, signing.Evidence{Event: signing.ContentConsignment, StatusCode: "01",
		DocumentID: header(t, out, "Official-Document-Id"), MessageID: header(t, out, "Message-Id"), Time: t0,
		From: a.domain.OfficialAddress, To: []string{b.staff.Address}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Enqueue(ctx, b.domain.OfficialAddress, []string{a.domain.OfficialAddress}, forged); err != nil {
		t.Fatal(err)
	}
	if e := docs(t, a, mailstore.DocOut)[0]; len(e.Acks) != 0 {
		t.Errorf("a forged receipt acknowledged the document: %+v", e.Acks)
	}
	if q := folder(t, a, a.clerk, QuarantineFolder); len(q) != 1 || !bytes.Contains(decodedText(t, q[0]), []byte("[untrusted-issuer]")) {
		t.Errorf("forged receipt not quarantined with its reason")
	}
	if evs := a.evidence(t); len(evs) != 1 {
		t.Errorf("A's evidence holds %d rows, want only the acceptance", len(evs))
	}
}

// TestOpenSSLVerifiesFiledCopy: what the clerk keeps in "Văn bản đi" is
// S/MIME that OpenSSL accepts with the agency's CA.
func TestOpenSSLVerifiesFiledCopy(t *testing.T) {
	path := testtool.Path(t, "openssl", "openssl")
	x := newExchange(t)
	a := x.a
	x.submit(t, a, a.clerk, []string{x.b.staff.Address},
		docMessage(t, a.domain.OfficialAddress, x.b.staff.Address, subject, file{"cv.pdf", signedPDF(t, 1, 30<<10)}))
	filed := folder(t, a, a.clerk, OutFolder)
	if len(filed) != 1 {
		t.Fatalf("Văn bản đi holds %d messages", len(filed))
	}
	dir := t.TempDir()
	eml := filepath.Join(dir, "doc.eml")
	if err := os.WriteFile(eml, filed[0], 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(SealDir(a.dir, a.domain.Name), CACertFile)
	// OpenSSL checks the certificate at its own clock, which is today: the
	// pilot seal was issued at t0, possibly in the future, so check
	// certificate times at t0.
	cmd := exec.Command(path, "smime", "-verify", "-in", eml, "-CAfile", ca, "-purpose", "smimesign",
		"-attime", fmt.Sprint(t0.Unix()), "-out", filepath.Join(dir, "content"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl smime -verify: %v\n%s", err, out)
	}
	content := readFile(t, filepath.Join(dir, "content"))
	if !bytes.Contains(content, []byte("manifest.xml")) {
		t.Errorf("verified content lacks the manifest:\n%.500s", content)
	}
}

// sealed has a.test's clerk submit a document to b.test's staff member and
// returns the stamped message without delivering it.
func (x *exchange) sealed(t *testing.T, att []byte) []byte {
	t.Helper()
	a := x.a
	var out []byte
	x.held(t, func() {
		var err error
		out, err = x.outgoing(a, a.clerk, []string{x.b.staff.Address},
			docMessage(t, a.domain.OfficialAddress, x.b.staff.Address, subject, file{"cv.pdf", att}))
		if err != nil {
			t.Fatal(err)
		}
	})
	return out
}

// revokeA revokes a.test's seal in a CRL that b.test reads from its CRL
// directory.
func (x *exchange) revokeA(t *testing.T) {
	t.Helper()
	ca, key := caOf(t, x.a)
	seal, err := LoadSeal(x.a.dir, x.a.domain.Name)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: t0.Add(-time.Hour), NextUpdate: t0.AddDate(0, 0, 7),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: seal.Cert.SerialNumber, RevocationTime: t0.Add(-time.Hour)}},
	}, ca, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := CRLDir(x.b.dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.pem"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// evidence returns every evidence row of a side.
func (s *side) evidence(t *testing.T) []mailstore.Evidence {
	t.Helper()
	evs, err := s.store.Evidence(context.Background(), mailstore.EvidenceQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return evs
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
