package signing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"sealmail/edxml"
)

// Document is what the issuing organ's outgoing register (sổ đi) assigns
// to a document before it is sealed.
type Document struct {
	Number  int          // số, sequential per organ and year
	Code    string       // ký hiệu, e.g. "STTTT-VP"; Agency.Code when empty
	Agency  Agency       // issuing organ
	To      []Organ      // recipients (nơi nhận)
	Subject string       // trích yếu
	Signer  SignerInfo   // competent person who signed the document
	Type    DocumentType // tên loại, e.g. {1, "Công văn"}
	Date    time.Time    // ngày ban hành, in the organ's time zone; the stamping time when zero
	Place   string       // địa danh, optional
	// PDF, when set, signs every PDF attachment inside as well (see
	// PDFStamp), before the message is sealed.
	PDF *PDFStamp
	// Bussiness, for an update or a replacement, names the document it
	// corrects (Manifest.Bussiness); nil for a new document.
	Bussiness *edxml.Bussiness
}

// Stamp seals msg, a complete RFC 5322 message with at least one
// attachment, as official document doc. It returns a multipart/signed
// message whose signed part holds the original body parts, a Vietnamese and
// English stamp text and manifest.xml, signed by seal at now.
//
// Top-level fields other than Content-* are kept; Subject gains a
// "[số/ký hiệu] " prefix and Official-Document-Id is added. Those fields
// are outside the signature, as in all S/MIME: Verify checks them against
// the signed manifest. The From: address must be the seal's.
func Stamp(ctx context.Context, msg []byte, seal *Seal, doc Document, now time.Time) ([]byte, error) {
	out, err := stamp(ctx, msg, seal, doc, now)
	if err != nil {
		return nil, fmt.Errorf("signing: stamp: %w", err)
	}
	return out, nil
}

func stamp(ctx context.Context, msg []byte, seal *Seal, doc Document, now time.Time) ([]byte, error) {
	msg = crlf(msg)
	top, err := parsePart(msg, 0)
	if err != nil {
		return nil, err
	}
	h := mail.Header{Header: message.Header{Header: top.header}}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 {
		return nil, errors.New("message needs exactly one From: address")
	}
	addr := from[0].Address
	switch {
	case !hasEmail(seal.Cert, addr):
		return nil, fmt.Errorf("seal certifies %v, not From: %s", seal.Cert.EmailAddresses, addr)
	case organID(seal.Cert) != "" && organID(seal.Cert) != doc.Agency.OrganID:
		return nil, fmt.Errorf("seal belongs to organ %s, not %s", organID(seal.Cert), doc.Agency.OrganID)
	case h.Get("Message-Id") == "":
		return nil, errors.New("message has no Message-ID for receipts to refer to")
	case top.mediaType == "multipart/signed":
		return nil, errors.New("message is already signed")
	case doc.Number < 1:
		return nil, fmt.Errorf("document number %d: numbers start at 1", doc.Number)
	case doc.Agency.OrganID == "":
		return nil, errors.New("document has no issuing OrganID")
	}
	code := doc.Code
	if code == "" {
		code = doc.Agency.Code
	}
	if code == "" {
		return nil, errors.New("document has no code notation (ký hiệu)")
	}
	date := doc.Date
	if date.IsZero() {
		date = now
	}

	// A multipart/mixed body is unpacked so its parts sit beside the stamp
	// text and the manifest; any other body becomes a single part.
	kids := top.kids
	if top.mediaType != "multipart/mixed" {
		kids = []*part{contentOnly(top)}
	}
	atts := attachments(kids)
	if len(atts) == 0 {
		return nil, errors.New("message has no attachment")
	}
	notation := Notation(doc.Number, code)
	m := &Manifest{Version: ManifestVersion, MessageHeader: edxml.MessageHeader{
		From:             Organ{OrganID: doc.Agency.OrganID, OrganName: doc.Agency.OrganName, Email: addr},
		To:               doc.To,
		Code:             Code{CodeNumber: codeNumber(doc.Number), CodeNotation: code},
		PromulgationInfo: PromulgationInfo{Place: doc.Place, PromulgationDate: date.Format(edxml.DateLayout)},
		DocumentType:     doc.Type,
		Subject:          doc.Subject,
		SignerInfo:       doc.Signer,
		ToPlaces:         Places(doc.To),
		OtherInfo:        OtherInfo{PromulgationAmount: max(len(doc.To), 1)},
		DocumentID:       DocumentID(doc.Agency.OrganID, date, doc.Number, code),
	}, Bussiness: doc.Bussiness, Attachments: make([]Attachment, len(atts))}
	if m.Bussiness != nil {
		m.Bussiness.DocumentID = m.DocumentID
	}
	// Every file after the main document is an appendix (phụ lục).
	for _, p := range atts[1:] {
		m.OtherInfo.Appendixes = append(m.OtherInfo.Appendixes, p.filename())
	}
	// PDFs are signed inside as they are written; the other attachments
	// are hashed on another core meanwhile. The manifest goes last, so it
	// can wait for both.
	st := &pdfStamper{ctx: ctx, seal: seal, doc: doc, notation: notation, now: now}
	room := 16 << 10 // for the new parts
	var others []int
	for i, p := range atts {
		if doc.PDF == nil || !p.isPDF() {
			others = append(others, i)
			continue
		}
		room += base64Size(updateRoom)
		p.write = func(w io.Writer) (err error) {
			m.Attachments[i], err = st.write(w, p)
			return err
		}
	}
	hashed := make(chan error, 1)
	go func() {
		for _, i := range others {
			a, err := digest(atts[i])
			if err != nil {
				hashed <- err
				return
			}
			m.Attachments[i] = a
		}
		hashed <- nil
	}()

	// Allocated, not grown: Grow clears the buffer, which fresh memory
	// needs not.
	out := bytes.NewBuffer(make([]byte, 0, len(msg)+growth(kids)+room))
	if err := writeTopFields(out, h, "["+notation+"] ", doc.Subject); err != nil {
		return nil, err
	}
	if err := writeField(out, "Official-Document-Id", encodeWord(m.DocumentID)); err != nil {
		return nil, err
	}
	parts := append(partWriters(kids),
		func(w io.Writer) error { return writeTextPart(w, stampText(m, date, now)) },
		func(w io.Writer) error {
			if err := <-hashed; err != nil {
				return err
			}
			return writeXMLPart(w, manifestName, m)
		})
	if err := writeSigned(ctx, out, seal, now, parts...); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Places is the "Nơi nhận" list of edXML's ToPlaces: each recipient by its
// organ's name, or its address when it has none.
func Places(to []Organ) []string {
	var out []string
	for _, o := range to {
		if o.OrganName != "" {
			out = append(out, o.OrganName)
		} else {
			out = append(out, o.Email)
		}
	}
	return out
}

// writeTopFields copies the message's header fields, minus those that
// described the old body, and prefixes the subject with the document
// number. A message without a subject gets fallback.
func writeTopFields(w io.Writer, h mail.Header, prefix, fallback string) error {
	subject := fallback
	if h.Has("Subject") {
		subject, _ = h.Subject() // on an unknown charset, the raw text is the best there is
	}
	if !strings.HasPrefix(subject, prefix) {
		subject = prefix + subject
	}
	subjectDone := false
	for f := h.Fields(); f.Next(); {
		k := f.Key()
		switch {
		case k == "Mime-Version", strings.HasPrefix(k, "Content-"):
		case k == "Subject":
			if subjectDone {
				continue
			}
			subjectDone = true
			if err := writeField(w, "Subject", encodeWord(subject)); err != nil {
				return err
			}
		default:
			raw, err := f.Raw()
			if err != nil {
				return err
			}
			if _, err := w.Write(raw); err != nil {
				return err
			}
		}
	}
	if subjectDone {
		return nil
	}
	return writeField(w, "Subject", encodeWord(subject))
}

// contentOnly returns p with only its Content-* fields, for a body that
// becomes one part of the signed entity.
func contentOnly(p *part) *part {
	c := *p
	c.header = p.header.Copy()
	for f := c.header.Fields(); f.Next(); {
		if !strings.HasPrefix(f.Key(), "Content-") {
			f.Del()
		}
	}
	return &c
}

// growth estimates how much re-encoding enlarges parts: base64 adds a third
// to binary, quoted-printable about half to Vietnamese text. Base64 input is
// usually copied as is.
func growth(parts []*part) int {
	n := 0
	for _, p := range parts {
		if p.cte() != "base64" {
			n += len(p.body) / 2
		}
		n += growth(p.kids)
	}
	return n
}

// writePart writes p so that 7-bit relays pass it unchanged, which S/MIME
// needs. Multiparts get fresh boundaries. Leaves already safe for 7-bit
// transport are copied; the rest are re-encoded.
func writePart(w io.Writer, p *part) error {
	if p.write != nil {
		return p.write(w)
	}
	h := p.header.Copy()
	if p.kids != nil {
		return writeMultipart(w, h, p.mediaType, p.params, partWriters(p.kids))
	}
	switch cte := p.cte(); {
	case cte == "base64" && p.isAttachment() && shortLines(p.body, lineLen):
		// The large common case, kept to one cheap scan: digest decodes
		// the body, so bad base64 still fails Stamp.
	case (cte == "" || cte == "7bit" || cte == "quoted-printable" || cte == "base64") && is7bit(p.body):
		// message/rfc822 may only travel like this (RFC 2046 §5.2.1).
	default:
		return reencode(w, h, p)
	}
	if err := textproto.WriteHeader(w, h); err != nil {
		return err
	}
	_, err := w.Write(p.body)
	return err
}

// reencode writes a leaf's content quoted-printable if it is body text and
// base64 otherwise.
func reencode(w io.Writer, h textproto.Header, p *part) error {
	var body bytes.Buffer
	if err := decodeBody(p.cte(), p.body, &body); err != nil {
		return fmt.Errorf("part %s: %w", p.mediaType, err)
	}
	h.Del("Content-Transfer-Encoding")
	if strings.HasPrefix(p.mediaType, "text/") && !p.isAttachment() {
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		if err := textproto.WriteHeader(w, h); err != nil {
			return err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write(body.Bytes()); err != nil {
			return err
		}
		return qp.Close()
	}
	// Attachments are base64 even when textual: quoted-printable would
	// canonicalize their line ends and change the bytes the manifest hashed.
	h.Set("Content-Transfer-Encoding", "base64")
	if err := textproto.WriteHeader(w, h); err != nil {
		return err
	}
	return writeBase64(w, body.Bytes())
}

func partWriters(ps []*part) []func(io.Writer) error {
	ws := make([]func(io.Writer) error, len(ps))
	for i, p := range ps {
		ws[i] = func(w io.Writer) error { return writePart(w, p) }
	}
	return ws
}

// stampText is the human-readable stamp, in Vietnamese and English.
func stampText(m *Manifest, date, now time.Time) string {
	no := m.Code.CodeNumber + "/" + m.Code.CodeNotation
	zone := "UTC" + now.Format("-07:00")
	n := strconv.Itoa(len(m.Attachments))
	return "Văn bản số " + no + " ngày " + date.Format("02/01/2006") + " của " + m.From.OrganName + ".\r\n" +
		"Trích yếu: " + m.Subject + "\r\n" +
		"Đã đóng dấu số (chữ ký số của cơ quan) lúc " + now.Format("15:04:05 ngày 02/01/2006") + " (" + zone + ").\r\n" +
		"Mã định danh văn bản: " + m.DocumentID + "\r\n" +
		"Danh mục " + n + " tệp đính kèm và mã băm SHA-256: manifest.xml. Chữ ký số S/MIME: smime.p7s.\r\n" +
		"\r\n" +
		"Official document No. " + no + " dated " + date.Format(time.DateOnly) + ", issued by " + m.From.OrganName + ".\r\n" +
		"Digitally sealed by the issuing organ at " + now.Format("2006-01-02 15:04:05") + " (" + zone + ").\r\n" +
		"Document ID: " + m.DocumentID + "\r\n" +
		"Attachments (" + n + ") and their SHA-256 digests: manifest.xml. S/MIME signature: smime.p7s.\r\n"
}
