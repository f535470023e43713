package signing

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"
)

// Event is an ETSI EN 319 532 (Registered Electronic Mail) evidence event.
type Event string

const (
	SubmissionAcceptance      Event = "SubmissionAcceptance"      // sender's server accepted the document
	ContentConsignment        Event = "ContentConsignment"        // recipient's server put it in the mailbox
	ContentConsignmentFailure Event = "ContentConsignmentFailure" // it could not be delivered

	// The document's lifecycle after it was registered (Decree 30/2020 Art.
	// 18.4, 21.2.b, 23.4), each with its edXML status code: notices signed
	// and carried as receipts are.
	RecallRequest Event = "RecallRequest" // 13: the sender recalls the document (to the recipients)
	RecallAgreed  Event = "RecallAgreed"  // 15: the recipient withdrew it
	RecallRefused Event = "RecallRefused" // 16: the recipient could not
	Returned      Event = "Returned"      // 02: the recipient's clerk returned it
	Assigned      Event = "Assigned"      // 04: assigned for processing
	InProgress    Event = "InProgress"    // 05
	Done          Event = "Done"          // 06
	// Registered is a status 03 said on its own (an edXML status message);
	// a registration receipt by mail is ContentConsignment with 03, and
	// says 01 as well.
	Registered Event = "Registered"
)

// eventTitles are the human-readable names of events, Vietnamese first.
var eventTitles = map[Event][2]string{
	SubmissionAcceptance:      {"Hệ thống đã nhận văn bản để chuyển đi", "accepted for delivery"},
	ContentConsignment:        {"Văn bản đã được chuyển vào hộp thư nơi nhận", "delivered to the recipient's mailbox"},
	ContentConsignmentFailure: {"Không chuyển được văn bản đến nơi nhận", "could not be delivered"},
	RecallRequest:             {"Nơi gửi thu hồi văn bản", "recalled by the sender"},
	RecallAgreed:              {"Nơi nhận đồng ý thu hồi, đã hủy văn bản trên hệ thống", "withdrawn by the recipient, who agreed to the recall"},
	RecallRefused:             {"Nơi nhận từ chối thu hồi", "not withdrawn: the recipient refused the recall"},
	Returned:                  {"Nơi nhận trả lại văn bản", "returned by the recipient"},
	Assigned:                  {"Nơi nhận đã phân công xử lý", "assigned for processing by the recipient"},
	InProgress:                {"Nơi nhận đang xử lý", "being processed by the recipient"},
	Done:                      {"Nơi nhận đã xử lý xong", "processed by the recipient"},
	Registered:                {"Nơi nhận đã vào sổ văn bản đến", "registered by the recipient"},
}

// notices are the events that tell of a document's lifecycle rather than of
// its delivery: their text says "notice", not "receipt".
var notices = map[Event]bool{RecallRequest: true, RecallAgreed: true, RecallRefused: true, Returned: true,
	Assigned: true, InProgress: true, Done: true}

// Addressees returns whom a receipt or notice of ev goes to: the recipients
// for a recall, which the sender sends them; the original sender for every
// other event, which answers the document.
func (ev *Evidence) Addressees() []string {
	if ev.Event == RecallRequest {
		return ev.To
	}
	return []string{ev.From}
}

// Title returns the event's name in Vietnamese and English; an event this
// version does not know is named as it is.
func (e Event) Title() (vi, en string) {
	if t, ok := eventTitles[e]; ok {
		return t[0], t[1]
	}
	return string(e), string(e)
}

// evidenceName is the file name of the evidence part of a receipt.
const evidenceName = "evidence.xml"

// Evidence is what a receipt attests, in the manner of PEC's daticert.xml.
type Evidence struct {
	XMLName    xml.Name     `xml:"Evidence" json:"-"`
	Event      Event        `xml:"Event" json:"event"`
	StatusCode string       `xml:"StatusCode" json:"statusCode"` // edXML status: "01" arrived, "02" refused
	Reason     string       `xml:"Reason,omitempty" json:"reason,omitempty"`
	DocumentID string       `xml:"DocumentId" json:"documentId"`
	MessageID  string       `xml:"MessageId" json:"messageId"` // of the original message
	Files      []FileDigest `xml:"Files>File" json:"files"`
	Time       time.Time    `xml:"Time" json:"time"`
	Server     string       `xml:"Server" json:"server"` // host name of the attesting server
	From       string       `xml:"From" json:"from"`     // original sender, who receives the receipt
	To         []string     `xml:"To" json:"to"`         // original recipients (of the agency attesting, for an answer)
}

// FileDigest names a file of the original document and its SHA-256.
type FileDigest struct {
	Name   string `xml:"Name" json:"name"`
	SHA256 string `xml:"SHA256" json:"sha256"`
}

// Receipt returns a receipt or notice for ev, addressed to ev.Addressees()
// and signed by the attesting server's seal, as an S/MIME message: multipart/signed over
// multipart/mixed{text/plain in Vietnamese and English, evidence.xml}. It
// refers to the original message by In-Reply-To and References, and carries
// "Official-Document-Receipt: <event>; doc=<DocumentID>" for filters.
func Receipt(ctx context.Context, seal *Seal, ev Evidence, now time.Time) ([]byte, error) {
	titles, ok := eventTitles[ev.Event]
	from := ""
	if len(seal.Cert.EmailAddresses) > 0 {
		from = seal.Cert.EmailAddresses[0]
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("signing: receipt: unknown event %q", ev.Event)
	case ev.MessageID == "" || ev.From == "" || len(ev.Addressees()) == 0:
		return nil, errors.New("signing: receipt: evidence needs MessageID, From and, for a recall, To")
	case !strings.Contains(from, "@"):
		return nil, errors.New("signing: receipt: seal certificate has no e-mail address")
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	orig := "<" + strings.Trim(ev.MessageID, "<> ") + ">"
	// mime formats the doc parameter (quoting, RFC 2231 for non-ASCII); the
	// event keeps its ETSI spelling, which FormatMediaType would lower-case.
	param := strings.TrimPrefix(mime.FormatMediaType("x", map[string]string{"doc": ev.DocumentID}), "x")
	var out bytes.Buffer
	for _, f := range [][2]string{
		{"From", from},
		{"To", strings.Join(ev.Addressees(), ", ")},
		{"Subject", encodeWord(titles[0] + " / " + titles[1] + ": " + ev.DocumentID)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-Id", "<" + rand.Text() + from[strings.LastIndexByte(from, '@'):] + ">"},
		{"In-Reply-To", orig},
		{"References", orig},
		{"Official-Document-Receipt", string(ev.Event) + param},
	} {
		if err := writeField(&out, f[0], f[1]); err != nil {
			return nil, fmt.Errorf("signing: receipt: %w", err)
		}
	}
	err := writeSigned(ctx, &out, seal, now,
		func(w io.Writer) error { return writeTextPart(w, receiptText(ev, titles, notices[ev.Event])) },
		func(w io.Writer) error { return writeXMLPart(w, evidenceName, ev) })
	if err != nil {
		return nil, fmt.Errorf("signing: receipt: %w", err)
	}
	return out.Bytes(), nil
}

func receiptText(ev Evidence, titles [2]string, notice bool) string {
	t := ev.Time.Format("15:04:05 02/01/2006") + " (UTC" + ev.Time.Format("-07:00") + ")"
	n := strconv.Itoa(len(ev.Files))
	to := strings.Join(ev.To, ", ")
	status := ev.StatusCode
	if ev.Reason != "" {
		status += " (" + ev.Reason + ")"
	}
	lead := [2]string{"Biên nhận điện tử: " + titles[0], "Electronic receipt: the document was " + titles[1]}
	if notice {
		lead = [2]string{"Thông báo về văn bản điện tử: " + titles[0], "Official document notice: the document was " + titles[1]}
	}
	return lead[0] + ".\r\n" +
		"Văn bản: " + ev.DocumentID + "\r\n" +
		"Thư gốc: " + ev.MessageID + "\r\n" +
		"Nơi gửi: " + ev.From + "; nơi nhận: " + to + "\r\n" +
		"Thời điểm: " + t + "; máy chủ: " + ev.Server + "\r\n" +
		"Mã trạng thái: " + status + "\r\n" +
		"Mã băm SHA-256 của " + n + " tệp: evidence.xml. Chữ ký số S/MIME: smime.p7s.\r\n" +
		"\r\n" +
		lead[1] + ".\r\n" +
		"Document: " + ev.DocumentID + "\r\n" +
		"Original message: " + ev.MessageID + "\r\n" +
		"Sender: " + ev.From + "; recipients: " + to + "\r\n" +
		"Time: " + ev.Time.Format(time.RFC3339) + "; server: " + ev.Server + "\r\n" +
		"Status code: " + status + "\r\n" +
		"SHA-256 digests of the " + n + " files: evidence.xml. S/MIME signature: smime.p7s.\r\n"
}

// ParseReceipt verifies a receipt as Verify verifies a document, with the
// evidence check in place of the manifest check, and returns its evidence.
// The evidence is nil unless the receipt verified.
func ParseReceipt(msg []byte, opts VerifyOptions) (*Evidence, *Result, error) {
	var ev *Evidence
	res, err := verify(msg, opts, CheckEvidence, func(env *envelope, _ *x509.Certificate) (string, error) {
		root, err := parsePart(env.entity, 0)
		if err != nil {
			return "", fail(ReasonNoEvidence, "signed part: %v", err)
		}
		p, _, err := xmlPart(root, evidenceName)
		if err != nil {
			return "", fail(ReasonNoEvidence, "%v", err)
		}
		e := new(Evidence)
		if err := decodeXML(p, e); err != nil {
			return "", fail(ReasonBadEvidence, "%v", err)
		}
		if _, ok := eventTitles[e.Event]; !ok {
			return "", fail(ReasonBadEvidence, "unknown event %q", e.Event)
		}
		if v := env.header.Get("Official-Document-Receipt"); v != "" {
			_, params, err := mime.ParseMediaType(v)
			if err != nil || params["doc"] != e.DocumentID {
				return "", fail(ReasonDocumentIDMismatch, "Official-Document-Receipt: %q, evidence is for %q", v, e.DocumentID)
			}
		}
		ev = e
		return fmt.Sprintf("%s for %s", e.Event, e.DocumentID), nil
	})
	if err != nil {
		return nil, res, err
	}
	return ev, res, nil
}
