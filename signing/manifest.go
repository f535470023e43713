package signing

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"sealmail/edxml"
)

// manifestName is the file name of the manifest part in a stamped message.
const manifestName = "manifest.xml"

// ManifestVersion is the form of manifest.xml Stamp writes: 2, the edXML
// MessageHeader and edXMLManifest element names (QCVN 102:2016/BTTTT).
// Version 1, the same facts under names of our own (no version
// attribute), is still read: documents sealed before, kept in registers
// and mailboxes or sent by peers that have not upgraded, must verify.
const ManifestVersion = 2

// Manifest is the signed description of a stamped document: its edXML
// MessageHeader, so that a recipient can copy it into an edXML package
// as it is, and the files with their digests. On the wire (version 2):
//
//	<Manifest xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016" version="2">
//	  <MessageHeader>From, To, Code, PromulgationInfo, DocumentType, Subject,
//	    SignerInfo, ToPlaces, OtherInfo, SteeringType, DocumentId</MessageHeader>
//	  <Bussiness>only for an update or a replacement</Bussiness>
//	  <edXMLManifest version="1.0">
//	    <Reference><AttachmentName/><ContentType/><Size/><SHA256/></Reference>...
//	  </edXMLManifest>
//	</Manifest>
//
// Size and SHA256 have no edXML counterpart: they are why the manifest is
// signed. PromulgationDate is edxml.DateLayout (yyyy/MM/dd) in memory
// whatever the version read.
type Manifest struct {
	Version int `json:"version"` // the form it was read in, 1 or 2
	edxml.MessageHeader
	// Bussiness, for a document that updates (BussinessDocType 2) or
	// replaces (3) one released before, names that one and says why
	// (Decree 30/2020 Art. 18.3); nil for a new document.
	Bussiness   *edxml.Bussiness `json:"bussiness,omitempty"`
	Attachments []Attachment     `json:"attachments"`
}

// The manifest's header types are edXML's.
type (
	Organ            = edxml.Organ
	Code             = edxml.Code
	PromulgationInfo = edxml.PromulgationInfo
	SignerInfo       = edxml.SignerInfo
	DocumentType     = edxml.DocumentType
	OtherInfo        = edxml.OtherInfo
)

// Attachment is one attached file and the SHA-256 of its decoded content,
// so a recipient can check a saved file without any mail software.
type Attachment struct {
	FileName    string `json:"fileName"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// manifestV2 is the wire form of version 2.
type manifestV2 struct {
	XMLName   xml.Name            `xml:"http://www.mic.gov.vn/TBT/QCVN_102_2016 Manifest"`
	Version   string              `xml:"version,attr"`
	Header    edxml.MessageHeader `xml:"MessageHeader"`
	Bussiness *edxml.Bussiness    `xml:"Bussiness,omitempty"`
	Files     struct {
		Version    string        `xml:"version,attr"`
		References []referenceV2 `xml:"Reference"`
	} `xml:"edXMLManifest"`
}

type referenceV2 struct {
	FileName    string `xml:"AttachmentName"`
	ContentType string `xml:"ContentType"`
	Size        int64  `xml:"Size"`
	SHA256      string `xml:"SHA256"`
}

// manifestV1 is the wire form of version 1: the header's fields at the top
// level, files under names of our own, the date YYYY-MM-DD.
type manifestV1 struct {
	From             Organ            `xml:"From"`
	To               []Organ          `xml:"To"`
	DocumentID       string           `xml:"DocumentId"`
	Code             Code             `xml:"Code"`
	PromulgationInfo PromulgationInfo `xml:"PromulgationInfo"`
	Subject          string           `xml:"Subject"`
	SignerInfo       SignerInfo       `xml:"SignerInfo"`
	Attachments      []struct {
		FileName    string `xml:"FileName"`
		ContentType string `xml:"ContentType"`
		Size        int64  `xml:"Size"`
		SHA256      string `xml:"SHA256"`
	} `xml:"Attachments>Attachment"`
}

// MarshalXML writes m as version 2, whatever version it was read in.
func (m Manifest) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	w := manifestV2{Version: strconv.Itoa(ManifestVersion), Header: m.MessageHeader, Bussiness: m.Bussiness}
	w.Files.Version = "1.0"
	for _, a := range m.Attachments {
		w.Files.References = append(w.Files.References, referenceV2(a))
	}
	return e.Encode(w)
}

// UnmarshalXML reads either version, by the root's version attribute.
func (m *Manifest) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if start.Name.Local != "Manifest" {
		return fmt.Errorf("expected element <Manifest>, not <%s>", start.Name.Local)
	}
	version := ""
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == "version" {
			version = a.Value
		}
	}
	switch version {
	case "":
		var w manifestV1
		if err := d.DecodeElement(&w, &start); err != nil {
			return err
		}
		*m = Manifest{Version: 1, MessageHeader: edxml.MessageHeader{From: w.From, To: w.To, DocumentID: w.DocumentID,
			Code: w.Code, PromulgationInfo: w.PromulgationInfo, Subject: w.Subject, SignerInfo: w.SignerInfo}}
		if t, err := time.Parse(time.DateOnly, w.PromulgationInfo.PromulgationDate); err == nil {
			m.PromulgationInfo.PromulgationDate = t.Format(edxml.DateLayout)
		}
		for _, a := range w.Attachments {
			m.Attachments = append(m.Attachments, Attachment(a))
		}
	case "2":
		var w manifestV2
		if err := d.DecodeElement(&w, &start); err != nil {
			return err
		}
		*m = Manifest{Version: 2, MessageHeader: w.Header, Bussiness: w.Bussiness}
		for _, r := range w.Files.References {
			m.Attachments = append(m.Attachments, Attachment(r))
		}
	default:
		return fmt.Errorf("manifest version %q is newer than this server reads (1 and 2)", version)
	}
	return nil
}

// Date is the document's promulgation date, in loc.
func (m *Manifest) Date(loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation(edxml.DateLayout, m.PromulgationInfo.PromulgationDate, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("promulgation date %q is not yyyy/MM/dd", m.PromulgationInfo.PromulgationDate)
	}
	return t, nil
}

// Notation formats "số/ký hiệu". Numbers below 10 take a leading zero, as
// Decree 30/2020/NĐ-CP Art. 15 numbers documents from 01.
func Notation(number int, code string) string {
	return codeNumber(number) + "/" + code
}

func codeNumber(n int) string {
	return fmt.Sprintf("%02d", n)
}

// DocumentID returns the edXML DocumentId "OrganId,YYYY/MM/DD,số/ký hiệu",
// e.g. "000.00.12.H10,2026/11/28,123/STTTT-VP". date is taken in its own
// location, which should be the issuing organ's.
func DocumentID(organID string, date time.Time, number int, code string) string {
	return organID + "," + date.Format("2006/01/02") + "," + Notation(number, code)
}

// checkAttachments compares what the manifest lists with what the message
// carries. Entries pair up by file name, in order when names repeat.
func checkAttachments(listed, got []Attachment) error {
	used := make([]bool, len(got))
	for _, l := range listed {
		i := -1
		for j, g := range got {
			if !used[j] && g.FileName == l.FileName {
				i = j
				break
			}
		}
		if i < 0 {
			return fail(ReasonAttachmentMissing, "%q is listed but not attached", l.FileName)
		}
		used[i] = true
		g := got[i]
		if g.Size != l.Size {
			return fail(ReasonSizeMismatch, "%q has %d bytes, manifest says %d", l.FileName, g.Size, l.Size)
		}
		if !strings.EqualFold(g.SHA256, l.SHA256) {
			return fail(ReasonHashMismatch, "%q has SHA-256 %s, manifest says %s", l.FileName, g.SHA256, l.SHA256)
		}
	}
	for j, g := range got {
		if !used[j] {
			return fail(ReasonAttachmentExtra, "%q is attached but not listed", g.FileName)
		}
	}
	return nil
}
