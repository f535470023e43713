package signing

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
)

func testEvidence() Evidence {
	return Evidence{
		Event:      ContentConsignment,
		StatusCode: "01",
		DocumentID: "000.00.12.H10,2026/11/28,123/QĐ-STTTT",
		MessageID:  "cv123.20261128@stttt.hanoi.gov.vn",
		Files:      []FileDigest{{Name: "Công văn.pdf", SHA256: strings.Repeat("ab", 32)}},
		Time:       testNow.Add(2 * time.Second),
		Server:     "mail.stc.hanoi.gov.vn",
		From:       agencyA.OfficialAddress,
		To:         []string{agencyB.OfficialAddress},
	}
}

// The recipient's server B attests delivery to the sender A.
func TestReceiptRoundTrip(t *testing.T) {
	b := newPKI(t, agencyB, testNow, testNow)
	ev := testEvidence()
	msg, err := Receipt(t.Context(), b.seal, ev, testNow.Add(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	sevenBit(t, msg)
	got, res, err := ParseReceipt(msg, options(testNow.Add(time.Minute), map[Agency]*pki{agencyB: b}))
	if err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	if !got.Time.Equal(ev.Time) {
		t.Errorf("time %v, want %v", got.Time, ev.Time)
	}
	got.XMLName, got.Time = ev.XMLName, ev.Time // zone names do not survive RFC 3339
	if !reflect.DeepEqual(*got, ev) {
		t.Errorf("evidence\n%+v\nwant\n%+v", *got, ev)
	}
	wantChecks(t, res, map[string]Reason{CheckSignature: "", CheckChain: "", CheckEmail: "", CheckEvidence: ""})

	r, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header
	if v := h.Get("Official-Document-Receipt"); v != `ContentConsignment; doc*=utf-8''000.00.12.H10%2C2026%2F11%2F28%2C123%2FQ%C4%90-STTTT` {
		t.Errorf("Official-Document-Receipt: %s", v)
	}
	for _, k := range []string{"In-Reply-To", "References"} {
		if ids, _ := h.MsgIDList(k); len(ids) != 1 || ids[0] != ev.MessageID {
			t.Errorf("%s: %v", k, ids)
		}
	}
	if to, _ := h.AddressList("To"); len(to) != 1 || to[0].Address != agencyA.OfficialAddress {
		t.Errorf("To: %v", to)
	}
	if s, _ := h.Subject(); !strings.Contains(s, "delivered") || !strings.Contains(s, "hộp thư") {
		t.Errorf("Subject: %s", s)
	}

	dir := t.TempDir()
	writeFile(t, dir, "ca.pem", EncodeCertsPEM(b.ca))
	writeFile(t, dir, "receipt.eml", msg)
	out, err := openssl(t, dir, "smime", "-verify", "-CAfile", "ca.pem", "-attime", strconv.FormatInt(testNow.Unix(), 10), "-in", "receipt.eml", "-out", "text")
	if err != nil {
		t.Errorf("openssl: %v\n%s", err, out)
	}
}

func TestReceiptTampered(t *testing.T) {
	b := newPKI(t, agencyB, testNow, testNow)
	msg, err := Receipt(t.Context(), b.seal, testEvidence(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	opts := options(testNow, map[Agency]*pki{agencyB: b})
	// Pretend the document was refused: the text part says "01" in QP.
	forged := replaceOnce(t, msg, "tr=E1=BA=A1ng th=C3=A1i: 01", "tr=E1=BA=A1ng th=C3=A1i: 02")
	ev, res, err := ParseReceipt(forged, opts)
	if err == nil || ev != nil {
		t.Fatalf("tampered receipt accepted\n%s", res)
	}
	wantChecks(t, res, map[string]Reason{CheckSignature: ReasonDigestMismatch})

	// The filter header is unsigned but must agree with the evidence.
	forged = replaceOnce(t, msg, "123%2FQ%C4%90-STTTT", "124%2FQ%C4%90-STTTT")
	_, res, _ = ParseReceipt(forged, opts)
	wantChecks(t, res, map[string]Reason{CheckSignature: "", CheckEvidence: ReasonDocumentIDMismatch})

	// A stamped document is not a receipt.
	a := newPKI(t, agencyA, testNow, testNow)
	_, res, _ = ParseReceipt(stamped(t, a.seal, testNow), options(testNow, map[Agency]*pki{agencyA: a}))
	wantChecks(t, res, map[string]Reason{CheckSignature: "", CheckEvidence: ReasonNoEvidence})
}

func TestReceiptRejects(t *testing.T) {
	b := newPKI(t, agencyB, testNow, testNow)
	for name, mutate := range map[string]func(*Evidence){
		"unknown event": func(e *Evidence) { e.Event = "ReadReceipt" },
		"no message id": func(e *Evidence) { e.MessageID = "" },
		"no sender":     func(e *Evidence) { e.From = "" },
	} {
		ev := testEvidence()
		mutate(&ev)
		if _, err := Receipt(t.Context(), b.seal, ev, testNow); err == nil {
			t.Errorf("%s: receipt issued", name)
		}
	}
}
