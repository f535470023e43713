package signing

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// manifestName is the file name of the manifest part in a stamped message.
const manifestName = "manifest.xml"

// Manifest is the signed description of a stamped document. Element names
// follow edXML (QCVN 102:2016/BTTTT); the document is not a full edXML
// package, only its header fields plus the attachment digests.
type Manifest struct {
	XMLName          xml.Name         `xml:"Manifest" json:"-"`
	From             Organ            `xml:"From" json:"from"`
	To               []Organ          `xml:"To" json:"to,omitempty"`
	DocumentID       string           `xml:"DocumentId" json:"documentId"`
	Code             Code             `xml:"Code" json:"code"`
	PromulgationInfo PromulgationInfo `xml:"PromulgationInfo" json:"promulgationInfo"`
	Subject          string           `xml:"Subject" json:"subject"`
	SignerInfo       SignerInfo       `xml:"SignerInfo" json:"signerInfo"`
	Attachments      []Attachment     `xml:"Attachments>Attachment" json:"attachments"`
}

// Organ identifies a sending or receiving organ.
type Organ struct {
	OrganID   string `xml:"OrganId" json:"organId"`
	OrganName string `xml:"OrganName" json:"organName"`
	Email     string `xml:"Email,omitempty" json:"email,omitempty"`
}

// Code is the document's "số và ký hiệu", e.g. number "123", notation "STTTT-VP".
type Code struct {
	CodeNumber   string `xml:"CodeNumber" json:"codeNumber"`
	CodeNotation string `xml:"CodeNotation" json:"codeNotation"`
}

// PromulgationInfo says where and when the document was issued. The date is
// an xs:date (YYYY-MM-DD) in the issuing organ's time zone.
type PromulgationInfo struct {
	Place            string `xml:"Place,omitempty" json:"place,omitempty"`
	PromulgationDate string `xml:"PromulgationDate" json:"promulgationDate"`
}

// SignerInfo names the competent person who signed the document.
type SignerInfo struct {
	Position string `xml:"Position" json:"position"`
	FullName string `xml:"FullName" json:"fullName"`
}

// Attachment is one attached file and the SHA-256 of its decoded content,
// so a recipient can check a saved file without any mail software.
type Attachment struct {
	FileName    string `xml:"FileName" json:"fileName"`
	ContentType string `xml:"ContentType" json:"contentType"`
	Size        int64  `xml:"Size" json:"size"`
	SHA256      string `xml:"SHA256" json:"sha256"`
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
