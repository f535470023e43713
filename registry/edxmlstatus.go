package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"sealmail/edxml"
	"sealmail/mailstore"
	"sealmail/signing"
)

// StatusFile is the name under which a status message imported from edXML
// is delivered to the clerks, and kept in the evidence.
const StatusFile = "trang-thai.edxml"

// statusEvents are the evidence events the edXML status codes are recorded
// as, the same as those of the notices and receipts that travel by mail.
var statusEvents = map[string]signing.Event{
	edxml.StatusArrived:       signing.ContentConsignment,
	edxml.StatusRefused:       signing.Returned,
	edxml.StatusRegistered:    signing.Registered,
	edxml.StatusAssigned:      signing.Assigned,
	edxml.StatusProcessing:    signing.InProgress,
	edxml.StatusDone:          signing.Done,
	edxml.StatusRecallRequest: signing.RecallRequest,
	edxml.StatusRecallAgreed:  signing.RecallAgreed,
	edxml.StatusRecallRefused: signing.RecallRefused,
}

// importStatus records an edXML status message as a status that came by
// mail would be (file): one from an agency a document was sent to (01–06,
// 15, 16) against the outgoing register line, with the line's status
// following (returned, recalled); a recall request (13) from the agency
// that sent a document against the incoming line, which is withdrawn and
// answered 15 or 16. The status must come from a known agency (From/Email,
// From/OrganId), be about a document of the register here, and come from
// one of its recipients (or its sender, for 13); its XML-DSig signature is
// checked as a document's. A status that does not qualify is refused
// (ErrRejected) and changes nothing; the same status imported again is
// recorded once. to, when given, names the agency whose register holds
// the document.
func (r *Registry) importStatus(ctx context.Context, pkg *edxml.Package, data []byte, to []string) (*Imported, error) {
	s := pkg.Envelope.Header.Status
	from, err := r.sender(ctx, s.From)
	if err != nil {
		return nil, err
	}
	now := r.now()
	opts, err := r.VerifyOptions(ctx, domainOf(from))
	if err != nil {
		return nil, err
	}
	opts.Now = now
	xsig, signed := signing.VerifyEdXML(data, from, s.From.OrganID, opts, r.RequireEdXMLSignature)
	res := &signing.Result{From: from, Domain: domainOf(from)}
	if err := res.Add(xsig); err != nil {
		return nil, fmt.Errorf("%w: status %s from %s: %s: %s", ErrRejected, s.StatusCode, from, xsig.Reason, xsig.Detail)
	}
	if signed != nil {
		// From here on only what the signature covers is read.
		if pkg, err = edxml.Parse(signed); err != nil {
			return nil, fmt.Errorf("%w: the signed content: %v", ErrRejected, err)
		}
		if s = pkg.Envelope.Header.Status; s == nil || !strings.EqualFold(strings.TrimSpace(s.From.Email), from) {
			return nil, fmt.Errorf("%w: the signed content is not the package's", ErrRejected)
		}
	}
	return r.fileStatus(ctx, s, from, res, data, to)
}

// fileStatus records status s, which agency from said (verified: res),
// as importStatus describes; data is the package it came in, kept with
// the evidence. A recall package (BussinessDocType 1) is filed here too,
// as the status 13 it means.
func (r *Registry) fileStatus(ctx context.Context, s *edxml.Status, from string, res *signing.Result, data []byte, to []string) (*Imported, error) {
	now := r.now()
	event := statusEvents[s.StatusCode] // edxml.Parse took only known codes
	at, err := time.ParseInLocation(edxml.TimeLayout, s.Timestamp, r.loc())
	if err != nil {
		return nil, fmt.Errorf("%w: Status/Timestamp: %v", ErrRejected, err)
	}
	domain := ""
	if len(to) > 0 {
		domain = domainOf(strings.ToLower(to[0]))
	}
	dir := mailstore.DocOut
	if event == signing.RecallRequest {
		dir = mailstore.DocIn
	}
	e, err := r.Entry(ctx, domain, dir, s.ResponseFor.DocumentID)
	switch {
	case errors.Is(err, mailstore.ErrNotFound) && dir == mailstore.DocOut:
		return nil, fmt.Errorf("%w: status %s from %s is about %s, which this server did not send (no such line in the outgoing register): %v",
			ErrRejected, s.StatusCode, from, s.ResponseFor.DocumentID, err)
	case errors.Is(err, mailstore.ErrNotFound):
		return nil, fmt.Errorf("%w: %s recalls %s, which this server did not receive: %v", ErrRejected, from, s.ResponseFor.DocumentID, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	if dir == mailstore.DocOut && !slices.ContainsFunc(e.Recipients, func(rc string) bool { return domainOf(rc) == domainOf(from) }) {
		return nil, fmt.Errorf("%w: status %s from %s: %s was not sent to %s (recipients: %s)",
			ErrRejected, s.StatusCode, from, e.Notation, domainOf(from), strings.Join(e.Recipients, ", "))
	}
	if dir == mailstore.DocIn && domainOf(e.Sender) != domainOf(from) {
		return nil, fmt.Errorf("%w: %s recalls %s, which %s sent, not it", ErrRejected, from, e.Notation, e.Sender)
	}
	out := &Imported{Result: res, Status: s, Entries: []mailstore.DocEntry{e}}
	if done, err := r.statusRecorded(ctx, e, from, s.StatusCode, at); err != nil || done {
		out.Before = done
		return out, err
	}
	d, err := r.Store.Domain(ctx, e.Domain)
	if err != nil {
		return nil, err
	}
	msg, err := statusMessage(s, from, cmpOr(d.OfficialAddress, e.Sender), data, now)
	if err != nil {
		return nil, err
	}
	ev := signing.Evidence{Event: event, StatusCode: s.StatusCode, Reason: statusReason(s), DocumentID: e.DocumentID,
		MessageID: e.MessageID, Files: fileDigests(e.Files), Time: at, Server: r.Hostname}
	if dir == mailstore.DocOut {
		// Said to the sender (this agency) by the recipient from.
		ev.From, ev.To = e.Sender, []string{from}
		if d.OfficialAddress != "" {
			ev.From = d.OfficialAddress
		}
	} else {
		ev.From, ev.To = from, e.Recipients
	}
	g := &agency{domain: d, rcpts: e.Recipients}
	if dir == mailstore.DocIn {
		// A recall's notice reaches those the document reached, as by mail.
		if _, g.targets, _, err = r.resolve(ctx, e.Recipients); err != nil {
			return nil, err
		}
	}
	err = r.run(ctx, func(p *step) error {
		start := len(p.Evidence)
		if err := r.file(ctx, g, &ev, from, msg, now, p); err != nil {
			return err
		}
		for _, row := range p.Evidence[start:] {
			if row.Origin == mailstore.EvidenceReceived {
				p.Once = &row
				break
			}
		}
		return nil
	})
	if errors.Is(err, mailstore.ErrExists) {
		out.Before, err = true, nil
	}
	if err != nil {
		return nil, err
	}
	e, err = r.Store.DocByMessage(ctx, refOf(e))
	if err != nil {
		return nil, err
	}
	out.Entries = []mailstore.DocEntry{e}
	return out, nil
}

// statusRecorded tells whether register line e's evidence already has the
// status code from agency from at time at (to the second, as edXML writes
// it): imported before, or come by mail. A registration receipt by mail
// (03, ContentConsignment) says 01 and 03 at once. edXML timestamps carry
// no zone: both sides are read in the registry's (Vietnam time).
func (r *Registry) statusRecorded(ctx context.Context, e mailstore.DocEntry, from, code string, at time.Time) (bool, error) {
	rows, err := r.Store.Evidence(ctx, mailstore.EvidenceQuery{Domain: e.Domain, DocumentID: e.DocumentID})
	if err != nil {
		return false, err
	}
	for _, row := range rows {
		if row.Origin != mailstore.EvidenceReceived || !strings.EqualFold(row.Sender, from) || !row.Time.Truncate(time.Second).Equal(at) {
			continue
		}
		if row.StatusCode == code || (row.StatusCode == edxml.StatusRegistered && row.Event == string(signing.ContentConsignment) &&
			(code == edxml.StatusArrived || code == edxml.StatusRegistered)) {
			return true, nil
		}
	}
	return false, nil
}

// statusReason is what a status says beyond its code: its Description
// without the code's name, which StatusMessages puts first.
func statusReason(s *edxml.Status) string {
	d := strings.TrimSpace(s.Description)
	name := edxml.StatusNames[s.StatusCode][0]
	if d == name {
		return ""
	}
	return strings.TrimPrefix(d, name+": ")
}

// statusMessage is the mail an imported status is filed as, for the
// clerks and the evidence: a bilingual text and the status package.
func statusMessage(s *edxml.Status, from, to string, data []byte, now time.Time) ([]byte, error) {
	names := edxml.StatusNames[s.StatusCode]
	sum := sha256.Sum256(data)
	var mh mail.Header
	mh.SetDate(now)
	mh.SetAddressList("From", []*mail.Address{{Name: s.From.OrganName, Address: from}})
	mh.SetAddressList("To", []*mail.Address{{Address: to}})
	mh.SetSubject(fmt.Sprintf("Trạng thái văn bản / document status %s (%s / %s): %s", s.StatusCode, names[0], names[1], s.ResponseFor.DocumentID))
	mh.Set("Message-Id", "<edxml-status."+hex.EncodeToString(sum[:16])+"@"+domainOf(from)+">")
	mh.Set(fieldDocumentID, s.ResponseFor.DocumentID)
	var b bytes.Buffer
	w, tw, err := textWriter(&b, mh)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(tw, "Trạng thái văn bản nhận qua gói tin edXML / document status received as an edXML package\r\n\r\n"+
		"Văn bản / document: %s (%s)\r\nCơ quan / agency: %s (%s, %s)\r\nTrạng thái / status: %s %s / %s\r\n"+
		"Thời điểm / time: %s\r\nNội dung / description: %s\r\n",
		s.ResponseFor.DocumentID, s.ResponseFor.Code, s.From.OrganName, s.From.OrganID, from, s.StatusCode, names[0], names[1],
		s.Timestamp, s.Description)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := attachFile(w, StatusFile, "application/xml", data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
