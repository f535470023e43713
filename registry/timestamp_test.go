package registry

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/signing"
	"sealmail/signing/signingtest"
)

// TestTimestamped: with a TSA configured, documents and receipts carry
// timestamps that the other side checks, and so does the agency's PAdES
// signature inside the PDF (B-T), whose time B's register records.
func TestTimestamped(t *testing.T) {
	ctx := context.Background()
	x := newExchange(t)
	a, b := x.a, x.b
	tsa := signingtest.NewTSA(t, t0.Add(time.Second))
	for _, s := range []*side{a, b} {
		s.reg.Timestamper = &signing.TSAClient{URL: tsa.URL, Roots: tsa.Roots}
		s.reg.TSARoots = tsa.Roots
	}
	a.reg.PDF.Profile = signing.ProfilePAdES
	msg := docMessage(t, a.domain.OfficialAddress, b.staff.Address, subject, file{"cv.pdf", signedPDF(t, 1, 1000)})
	out := x.submit(t, a, a.clerk, []string{b.staff.Address}, msg)

	opts, err := b.reg.VerifyOptions(ctx, a.domain.Name)
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = t0
	if res, err := signing.Verify(out, opts); err != nil || res.Check(signing.CheckTimestamp).Status != signing.Pass {
		t.Errorf("document: %v\n%s", err, res)
	}
	if r := docs(t, b, mailstore.DocIn); len(r) != 1 || r[0].Status != StatusReceived ||
		!strings.Contains(r[0].Notes, "ký bởi Sở Thông tin và Truyền thông lúc "+signing.ISOTime(t0.Add(time.Second))+" (dấu thời gian)") {
		t.Errorf("B's incoming register: %+v", r)
	}
	// B's delivery receipt, in A's clerk's inbox beside A's own acceptance.
	opts, err = a.reg.VerifyOptions(ctx, b.domain.Name)
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = t0
	found := false
	for _, m := range folder(t, a, a.clerk, "INBOX") {
		if header(t, m, "From") != b.domain.OfficialAddress {
			continue
		}
		found = true
		if _, res, err := signing.ParseReceipt(m, opts); err != nil || res.Check(signing.CheckTimestamp).Status != signing.Pass {
			t.Errorf("receipt: %v\n%s", err, res)
		}
	}
	if !found {
		t.Error("no receipt from B")
	}
}

// TestTSADown: a TSA that does not answer fails submission temporarily, and
// the message sent again once it answers keeps its number.
func TestTSADown(t *testing.T) {
	x := newExchange(t)
	a := x.a
	down := httptest.NewServer(nil)
	down.Close()
	a.reg.Timestamper = &signing.TSAClient{URL: down.URL}
	msg := docMessage(t, a.domain.OfficialAddress, x.b.staff.Address, subject, file{"cv.pdf", signedPDF(t, 1, 100)})
	_, err := x.outgoing(a, a.clerk, []string{x.b.staff.Address}, msg)
	if err == nil || errors.Is(err, ErrRejected) || !errors.Is(err, signing.ErrTimestamp) {
		t.Fatalf("TSA down: %v, want a temporary time-stamping error", err)
	}
	tsa := signingtest.NewTSA(t, t0)
	a.reg.Timestamper = &signing.TSAClient{URL: tsa.URL}
	out := x.submit(t, a, a.clerk, []string{x.b.staff.Address}, msg)
	if r := docs(t, a, mailstore.DocOut); len(r) != 1 || r[0].Status != StatusSent || r[0].Number != 1 {
		t.Errorf("register after retry: %+v", r)
	}
	if got := header(t, out, "Official-Document-Id"); got != "000.00.12.H10,2026/11/28,01/STTTT-VP" {
		t.Errorf("retry got %q", got)
	}
}
