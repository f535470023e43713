// Package edxml reads and writes edXML, the package in which Vietnamese
// document management systems exchange official documents and their status
// (QCVN 102:2016/BTTTT, amended 2022): a MessageHeader describing the
// document, a TraceHeaderList saying what the package does (a new document,
// a recall, an update, a replacement), a manifest of attachments and the
// attachments themselves, base64 inside the XML.
//
// The element names and their order follow the SDK-derived samples gathered
// in the research notes (the standard's text itself was not at hand). The
// XML-DSig signature some hubs add is signing's concern (SignEdXML,
// VerifyEdXML): this package ignores it; the legal signatures are inside
// the PDF files.
package edxml

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Namespace is the edXML namespace.
const Namespace = "http://www.mic.gov.vn/TBT/QCVN_102_2016"

const xlinkNamespace = "http://www.w3.org/1999/xlink"

// Date and time layouts of the SDK samples.
const (
	DateLayout = "2006/01/02"
	TimeLayout = "2006/01/02 15:04:05"
)

// Field limits of the hubs' checkers.
const (
	MaxSubject        = 500
	MaxPlace          = 150
	MaxAttachmentName = 200
)

// Business document types (BussinessDocType), after Decree 30/2020 Art. 18.
const (
	DocNew     = 0 // văn bản mới
	DocRecall  = 1 // thu hồi
	DocUpdate  = 2 // cập nhật
	DocReplace = 3 // thay thế
)

// Package is one edXML document package.
type Package struct {
	XMLName     xml.Name     `xml:"http://www.mic.gov.vn/TBT/QCVN_102_2016 edXML"`
	Envelope    Envelope     `xml:"edXMLEnvelope"`
	Attachments []Attachment `xml:"AttachmentEncoded>Attachment"`
}

// Envelope holds the header and the manifest.
type Envelope struct {
	Header EnvelopeHeader `xml:"edXMLHeader"`
	Body   Body           `xml:"edXMLBody"`
}

// EnvelopeHeader is a document's header, or a status message's.
type EnvelopeHeader struct {
	MessageHeader *MessageHeader   `xml:"MessageHeader,omitempty"`
	Status        *Status          `xml:"Status,omitempty"`
	Trace         *TraceHeaderList `xml:"TraceHeaderList,omitempty"`
}

// Body is the manifest of the attachments.
type Body struct {
	Manifest Manifest `xml:"edXMLManifest"`
}

// Manifest lists the attachments.
type Manifest struct {
	Version    string      `xml:"version,attr"`
	References []Reference `xml:"Reference"`
}

// Reference points at an attachment by its content ID.
type Reference struct {
	Href           string `xml:"http://www.w3.org/1999/xlink href,attr"`
	Type           string `xml:"http://www.w3.org/1999/xlink type,attr"`
	Description    string `xml:"Description,omitempty"`
	AttachmentName string `xml:"AttachmentName"`
	ContentType    string `xml:"ContentType"`
	ContentID      string `xml:"ContentId"`
}

// Attachment is one attached file. Data is its decoded content; it travels
// base64 in ContentTransferEncoded.
type Attachment struct {
	ContentType    string `xml:"ContentType"`
	ContentID      string `xml:"ContentId"`
	Description    string `xml:"Description,omitempty"`
	Encoded        string `xml:"ContentTransferEncoded"`
	AttachmentName string `xml:"AttachmentName"`
	Data           []byte `xml:"-"`
}

// MessageHeader describes a document.
type MessageHeader struct {
	From             Organ            `xml:"From" json:"from"`
	To               []Organ          `xml:"To" json:"to"`
	Code             Code             `xml:"Code" json:"code"`
	PromulgationInfo PromulgationInfo `xml:"PromulgationInfo" json:"promulgationInfo"`
	DocumentType     DocumentType     `xml:"DocumentType" json:"documentType"`
	Subject          string           `xml:"Subject" json:"subject"`
	Content          string           `xml:"Content,omitempty" json:"content,omitempty"`
	SignerInfo       SignerInfo       `xml:"SignerInfo" json:"signerInfo"`
	DueDate          string           `xml:"DueDate,omitempty" json:"dueDate,omitempty"`
	ToPlaces         []string         `xml:"ToPlaces>Place" json:"toPlaces"`
	OtherInfo        OtherInfo        `xml:"OtherInfo" json:"otherInfo"`
	ResponseFor      []ResponseFor    `xml:"ResponseFor,omitempty" json:"responseFor,omitempty"`
	SteeringType     int              `xml:"SteeringType" json:"steeringType"`
	DocumentID       string           `xml:"DocumentId" json:"documentId"`
}

// Organ is a sending or receiving agency.
type Organ struct {
	OrganID              string `xml:"OrganId" json:"organId"`
	OrganizationInCharge string `xml:"OrganizationInCharge,omitempty" json:"organizationInCharge,omitempty"`
	OrganName            string `xml:"OrganName" json:"organName"`
	OrganAdd             string `xml:"OrganAdd,omitempty" json:"organAdd,omitempty"`
	Email                string `xml:"Email,omitempty" json:"email,omitempty"`
	Telephone            string `xml:"Telephone,omitempty" json:"telephone,omitempty"`
	Fax                  string `xml:"Fax,omitempty" json:"fax,omitempty"`
	Website              string `xml:"Website,omitempty" json:"website,omitempty"`
}

// Code is the document's số và ký hiệu.
type Code struct {
	CodeNumber   string `xml:"CodeNumber" json:"codeNumber"`
	CodeNotation string `xml:"CodeNotation" json:"codeNotation"`
}

// PromulgationInfo is where and when the document was issued; the date is
// DateLayout.
type PromulgationInfo struct {
	Place            string `xml:"Place,omitempty" json:"place,omitempty"`
	PromulgationDate string `xml:"PromulgationDate" json:"promulgationDate"`
}

// DocumentType is the document's type (tên loại): Type a code, TypeName its
// name, e.g. "Công văn".
type DocumentType struct {
	Type     int    `xml:"Type" json:"type"`
	TypeName string `xml:"TypeName" json:"typeName"`
}

// SignerInfo is the person with authority who signed.
type SignerInfo struct {
	Competence string `xml:"Competence,omitempty" json:"competence,omitempty"`
	Position   string `xml:"Position" json:"position"`
	FullName   string `xml:"FullName" json:"fullName"`
}

// OtherInfo carries the register's remaining columns.
type OtherInfo struct {
	Priority             int      `xml:"Priority" json:"priority"`
	SphereOfPromulgation string   `xml:"SphereOfPromulgation,omitempty" json:"sphereOfPromulgation,omitempty"`
	TyperNotation        string   `xml:"TyperNotation,omitempty" json:"typerNotation,omitempty"`
	PromulgationAmount   int      `xml:"PromulgationAmount" json:"promulgationAmount"`
	PageAmount           int      `xml:"PageAmount" json:"pageAmount"`
	Appendixes           []string `xml:"Appendixes>Appendix,omitempty" json:"appendixes,omitempty"`
}

// ResponseFor names the document a package or status answers.
type ResponseFor struct {
	OrganID          string `xml:"OrganId"`
	Code             string `xml:"Code"`
	PromulgationDate string `xml:"PromulgationDate"`
	DocumentID       string `xml:"DocumentId"`
}

// TraceHeaderList is the package's route and business purpose.
type TraceHeaderList struct {
	TraceHeaders []TraceHeader `xml:"TraceHeader"`
	Bussiness    Bussiness     `xml:"Bussiness"`
}

// TraceHeader is one organ the package passed, and when (TimeLayout).
type TraceHeader struct {
	OrganID   string `xml:"OrganId"`
	Timestamp string `xml:"Timestamp"`
}

// Bussiness (sic, as the standard spells it) says what the package does:
// BussinessDocType is DocNew, DocRecall, DocUpdate or DocReplace.
type Bussiness struct {
	BussinessDocType    int               `xml:"BussinessDocType"`
	BussinessDocReason  string            `xml:"BussinessDocReason,omitempty"`
	DocumentID          string            `xml:"DocumentId"`
	Paper               int               `xml:"Paper"`
	ReplacementInfoList []ReplacementInfo `xml:"ReplacementInfoList>ReplacementInfo,omitempty"`
	StaffInfo           *StaffInfo        `xml:"StaffInfo,omitempty"`
}

// ReplacementInfo names a document an update or replacement corrects.
type ReplacementInfo struct {
	DocumentID string   `xml:"DocumentId"`
	OrganIDs   []string `xml:"OrganIdList>OrganId"`
}

// StaffInfo is the person behind a package or status.
type StaffInfo struct {
	Department string `xml:"Department,omitempty"`
	Staff      string `xml:"Staff,omitempty"`
	Mobile     string `xml:"Mobile,omitempty"`
	Email      string `xml:"Email,omitempty"`
}

// Marshal writes p as an edXML document, encoding each attachment's Data.
func Marshal(p *Package) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	q := *p
	q.Envelope.Body.Manifest = Manifest{Version: "1.0"}
	q.Attachments = make([]Attachment, len(p.Attachments))
	for i, a := range p.Attachments {
		a.Encoded = base64.StdEncoding.EncodeToString(a.Data)
		q.Attachments[i] = a
		q.Envelope.Body.Manifest.References = append(q.Envelope.Body.Manifest.References, Reference{
			Href: "cid:" + a.ContentID, Type: "simple", Description: a.Description,
			AttachmentName: a.AttachmentName, ContentType: a.ContentType, ContentID: a.ContentID})
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(&q); err != nil {
		return nil, fmt.Errorf("edxml: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// Parse reads an edXML document and decodes its attachments. It checks
// what a receiving system relies on: the namespace, a header naming the
// sender and the document, and a manifest whose every reference is
// attached, once.
func Parse(data []byte) (*Package, error) {
	var p Package
	if err := xml.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("edxml: not an edXML package: %w", err)
	}
	byID := map[string]int{}
	for i := range p.Attachments {
		a := &p.Attachments[i]
		if _, dup := byID[a.ContentID]; dup || a.ContentID == "" {
			return nil, fmt.Errorf("edxml: attachment %q: missing or repeated ContentId %q", a.AttachmentName, a.ContentID)
		}
		byID[a.ContentID] = i
		var err error
		if a.Data, err = base64.StdEncoding.DecodeString(stripSpace(a.Encoded)); err != nil {
			return nil, fmt.Errorf("edxml: attachment %q: %w", a.AttachmentName, err)
		}
		a.Encoded = ""
	}
	refs := p.Envelope.Body.Manifest.References
	if len(refs) != len(p.Attachments) {
		return nil, fmt.Errorf("edxml: the manifest lists %d attachment(s), the package carries %d", len(refs), len(p.Attachments))
	}
	for _, r := range refs {
		id := strings.TrimPrefix(r.Href, "cid:")
		if id != r.ContentID {
			return nil, fmt.Errorf("edxml: manifest reference %q does not match its ContentId %q", r.Href, r.ContentID)
		}
		i, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("edxml: the manifest lists %q (%s), which is not attached", r.AttachmentName, id)
		}
		if a := p.Attachments[i]; a.AttachmentName != r.AttachmentName {
			return nil, fmt.Errorf("edxml: attachment %s is named %q, the manifest says %q", id, a.AttachmentName, r.AttachmentName)
		}
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return &p, nil
}

// check tells what makes a package unusable.
func (p *Package) check() error {
	h, s := p.Envelope.Header.MessageHeader, p.Envelope.Header.Status
	switch {
	case h == nil && s == nil:
		return errors.New("edxml: the header has neither a MessageHeader nor a Status")
	case h != nil && s != nil:
		return errors.New("edxml: the header has both a MessageHeader and a Status")
	case s != nil:
		return s.check()
	}
	switch {
	case h.From.OrganID == "" || h.From.OrganName == "":
		return errors.New("edxml: MessageHeader/From needs OrganId and OrganName")
	case h.DocumentID == "":
		return errors.New("edxml: MessageHeader/DocumentId is empty")
	case strings.TrimSpace(h.Subject) == "":
		return errors.New("edxml: MessageHeader/Subject is empty")
	case utf8.RuneCountInString(h.Subject) > MaxSubject:
		return fmt.Errorf("edxml: Subject has %d characters, at most %d", utf8.RuneCountInString(h.Subject), MaxSubject)
	case h.Code.CodeNumber == "" || h.Code.CodeNotation == "":
		return errors.New("edxml: MessageHeader/Code needs CodeNumber and CodeNotation")
	}
	if _, err := time.Parse(DateLayout, h.PromulgationInfo.PromulgationDate); err != nil {
		return fmt.Errorf("edxml: PromulgationDate %q is not yyyy/MM/dd", h.PromulgationInfo.PromulgationDate)
	}
	for _, pl := range h.ToPlaces {
		if utf8.RuneCountInString(pl) > MaxPlace {
			return fmt.Errorf("edxml: ToPlaces/Place %q is longer than %d characters", pl, MaxPlace)
		}
	}
	if t := p.Envelope.Header.Trace; t != nil && (t.Bussiness.BussinessDocType < DocNew || t.Bussiness.BussinessDocType > DocReplace) {
		return fmt.Errorf("edxml: BussinessDocType %d is not 0-3", t.Bussiness.BussinessDocType)
	}
	for _, a := range p.Attachments {
		if a.AttachmentName == "" || utf8.RuneCountInString(a.AttachmentName) > MaxAttachmentName {
			return fmt.Errorf("edxml: attachment name %q is empty or longer than %d characters", a.AttachmentName, MaxAttachmentName)
		}
	}
	return nil
}

// Bussiness returns the package's business type and reason: a package
// without a TraceHeaderList is a new document.
func (p *Package) Bussiness() Bussiness {
	if t := p.Envelope.Header.Trace; t != nil {
		return t.Bussiness
	}
	return Bussiness{BussinessDocType: DocNew}
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}
