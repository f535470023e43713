package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"sealmail/edxml"
	"sealmail/mailstore"
	"sealmail/signing"
)

// PackageFile is the name under which a document imported from edXML
// carries its package, so that the register keeps what arrived.
const PackageFile = "goi-tin.edxml"

// ExportEdXML writes a register line's document as an edXML package: the
// header from its signed manifest and register line, and its files as
// sealed (each PDF with its signatures inside). With sign, the package
// carries an XML-DSig signature by the agency's seal (signing.SignEdXML).
// A document imported from edXML is exported as the package that arrived,
// with the sender's signature if it had one, and is not signed again.
func (r *Registry) ExportEdXML(ctx context.Context, e mailstore.DocEntry, sign bool) ([]byte, error) {
	orig, err := r.Store.DocOriginal(ctx, e.ID)
	if errors.Is(err, mailstore.ErrNotFound) {
		return nil, fmt.Errorf("registry: %s: no electronic original is kept (a paper document, or registered before originals were kept)", e.Notation)
	}
	if err != nil {
		return nil, err
	}
	m, files, err := signing.Contents(orig)
	if err != nil {
		if pkg := importedPackage(orig); pkg != nil {
			if sign {
				return nil, fmt.Errorf("registry: %s was received as an edXML package from %s: it is exported as it arrived, not signed again", e.Notation, e.Organ)
			}
			return pkg, nil
		}
		return nil, fmt.Errorf("registry: %s: the original is not a sealed document: %w", e.Notation, err)
	}
	// The manifest's header is edXML's; one sealed by an earlier version
	// (manifest version 1) lacks what the register knows.
	h := &m.MessageHeader
	if _, err := m.Date(r.loc()); err != nil {
		return nil, fmt.Errorf("registry: %s: %w", e.Notation, err)
	}
	if h.DocumentType.TypeName == "" {
		h.DocumentType = docType(e.DocType)
	}
	if len(h.ToPlaces) == 0 {
		h.ToPlaces = signing.Places(m.To)
	}
	if h.OtherInfo.PromulgationAmount == 0 {
		h.OtherInfo.PromulgationAmount = max(e.Copies, 1)
	}
	if len(h.OtherInfo.Appendixes) == 0 && len(files) > 1 {
		for _, f := range files[1:] { // every file after the main document is an appendix
			h.OtherInfo.Appendixes = append(h.OtherInfo.Appendixes, f.Name)
		}
	}
	pkg := &edxml.Package{Envelope: edxml.Envelope{Header: edxml.EnvelopeHeader{
		MessageHeader: h,
		Trace: &edxml.TraceHeaderList{
			TraceHeaders: []edxml.TraceHeader{{OrganID: m.From.OrganID, Timestamp: e.Time.In(r.loc()).Format(edxml.TimeLayout)}},
			Bussiness:    bussiness(m),
		},
	}}}
	for i, f := range files {
		sum := sha256.Sum256(f.Data)
		pkg.Attachments = append(pkg.Attachments, edxml.Attachment{ContentType: f.ContentType, AttachmentName: f.Name, Data: f.Data,
			ContentID: fmt.Sprintf("%d.%s", i+1, hex.EncodeToString(sum[:8]))})
	}
	data, err := edxml.Marshal(pkg)
	if err != nil || !sign {
		return data, err
	}
	return r.SignEdXML(e.Domain, data)
}

// SignEdXML signs an edXML package or status message with domain's seal
// (signing.SignEdXML).
func (r *Registry) SignEdXML(domain string, data []byte) ([]byte, error) {
	seal, err := r.seal(domain)
	if err != nil {
		return nil, fmt.Errorf("registry: %s's seal: %w", domain, err)
	}
	return signing.SignEdXML(data, seal)
}

// docType is the edXML DocumentType of a register's tên loại. The type
// table of the standard was not at hand: 1 with the register's name, and
// "Công văn" (what a release by mail is) when it has none.
func docType(name string) edxml.DocumentType {
	return edxml.DocumentType{Type: 1, TypeName: cmpOr(name, "Công văn")}
}

func cmpOr(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// ErrNoRecipients reports a document package imported for no address.
var ErrNoRecipients = fmt.Errorf("%w: a document is imported for the hosted addresses it is delivered to; none given", ErrRejected)

// Imported is what ImportEdXML did.
type Imported struct {
	Result *signing.Result // the verification of the files (a document), of the XML signature (a status)
	// Entries are the incoming register lines, one per receiving agency,
	// none when refused; for a status, the line it was recorded against.
	Entries []mailstore.DocEntry
	Status  *edxml.Status // the status message imported, if it was one
	Before  bool          // imported before: nothing was done
}

// ImportEdXML receives an edXML package for the addresses to (hosted
// here), as Incoming receives a sealed message: its PDF files are verified
// (signatures, changes after signing, the last signature the sending
// agency's, chaining to its seal CA, a signer's on the main document), and
// so is its XML-DSig signature when it has one (signing.VerifyEdXML; one
// is required with RequireEdXMLSignature); then it is registered under the next incoming number, delivered to the
// recipients and the clerks' "Văn bản đến" and answered with a signed
// receipt (01), in one transaction; or it is quarantined with a notice and
// answered 02. The sender is the agency whose official address is
// From/Email: a hosted domain or a peer with a seal CA. Importing the same
// package again does nothing. An update or replacement (BussinessDocType
// 2, 3) is received the same way and linked, as one that came by mail, to
// the document its ReplacementInfo names; a recall (1) is carried out as
// the status 13 it means (importRecall). An error wrapping ErrRejected
// means the package cannot be taken at all (malformed, from an unknown
// agency, for addresses not hosted here). A status message is recorded
// instead (importStatus).
func (r *Registry) ImportEdXML(ctx context.Context, data []byte, to []string) (*Imported, error) {
	pkg, err := edxml.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	h := pkg.Envelope.Header.MessageHeader
	if h == nil {
		return r.importStatus(ctx, pkg, data, to)
	}
	from, err := r.sender(ctx, h.From)
	if err != nil {
		return nil, err
	}
	domain := domainOf(from)
	now := r.now()
	opts, err := r.VerifyOptions(ctx, domain)
	if err != nil {
		return nil, err
	}
	opts.Now = now
	xsig, signed := signing.VerifyEdXML(data, from, h.From.OrganID, opts, r.RequireEdXMLSignature)
	if signed != nil {
		// From here on only what the signature covers is read.
		if pkg, err = edxml.Parse(signed); err != nil {
			return nil, fmt.Errorf("%w: the signed content: %v", ErrRejected, err)
		}
		if h = pkg.Envelope.Header.MessageHeader; h == nil || !strings.EqualFold(strings.TrimSpace(h.From.Email), from) {
			return nil, fmt.Errorf("%w: the signed content is not the package's", ErrRejected)
		}
	}
	if !strings.HasPrefix(h.DocumentID, h.From.OrganID+",") {
		return nil, fmt.Errorf("%w: DocumentId %q is not one of %s's", ErrRejected, h.DocumentID, h.From.OrganID)
	}
	b := pkg.Bussiness()
	switch b.BussinessDocType {
	case edxml.DocRecall:
		return r.importRecall(ctx, pkg, from, xsig, data, to)
	case edxml.DocUpdate, edxml.DocReplace:
		// It is linked as a correction that came by mail is (linked),
		// to another document of the same organ.
		if len(b.ReplacementInfoList) == 0 || strings.TrimSpace(b.ReplacementInfoList[0].DocumentID) == "" {
			return nil, fmt.Errorf("%w: BussinessDocType %d (update, replace) names no document it corrects "+
				"(TraceHeaderList/Bussiness/ReplacementInfoList/ReplacementInfo/DocumentId); "+
				"gói tin đính chính, thay thế không nêu văn bản được đính chính, thay thế", ErrRejected, b.BussinessDocType)
		}
		if old := b.ReplacementInfoList[0].DocumentID; !strings.HasPrefix(old, h.From.OrganID+",") || old == h.DocumentID {
			return nil, fmt.Errorf("%w: ReplacementInfo/DocumentId %q is not another document of %s's", ErrRejected, old, h.From.OrganID)
		}
	}
	if len(to) == 0 {
		return nil, ErrNoRecipients
	}
	local, targets, remote, err := r.resolve(ctx, to)
	if err != nil {
		return nil, err
	}
	if len(remote) > 0 || len(local) == 0 {
		return nil, fmt.Errorf("%w: %s: not hosted here", ErrRejected, strings.Join(remote, ", "))
	}
	groups, err := r.byAgency(ctx, local, targets)
	if err != nil {
		return nil, err
	}
	out := &Imported{}
	for _, g := range groups {
		es, err := r.Store.Docs(ctx, mailstore.DocQuery{Domain: g.domain.Name, Direction: mailstore.DocIn, DocumentID: h.DocumentID})
		if err != nil {
			return nil, err
		}
		if len(es) > 0 {
			out.Before, out.Entries = true, append(out.Entries, es...)
		}
	}
	if out.Before {
		return out, nil
	}

	files := make([]signing.File, len(pkg.Attachments))
	for i, a := range pkg.Attachments {
		files[i] = signing.File{Name: a.AttachmentName, ContentType: a.ContentType, Data: a.Data}
	}
	res, _ := signing.VerifyFiles(from, files, opts)
	verr := res.Add(xsig)
	res.Manifest = packageManifest(h, files)
	if b.BussinessDocType != edxml.DocNew {
		res.Manifest.Bussiness = &b
	}
	r.count("verified", map[bool]string{true: "pass", false: "fail"}[verr == nil])
	messageID := edxmlMessageID(h.DocumentID, domain)
	msg, err := packageMessage(pkg, from, local, messageID, now, data)
	if err != nil {
		return nil, err
	}
	mh, _, err := splitHeader(msg)
	if err != nil {
		return nil, err
	}
	in := &arrival{h: mh, msg: msg, from: from, messageID: messageID, now: now, res: res, err: verr}
	err = r.run(ctx, func(p *step) error { return r.arrive(ctx, in, groups, p) })
	if errors.Is(err, mailstore.ErrExists) {
		out.Before, err = true, nil
	}
	if err != nil {
		return nil, err
	}
	out.Result = res
	for _, g := range groups {
		e, err := r.Store.DocByMessage(ctx, mailstore.DocRef{Domain: g.domain.Name, Direction: mailstore.DocIn, MessageID: messageID})
		if errors.Is(err, mailstore.ErrNotFound) {
			continue // refused
		}
		if err != nil {
			return nil, err
		}
		out.Entries = append(out.Entries, e)
	}
	return out, nil
}

// importRecall files a recall package (BussinessDocType 1) from agency
// from as the status 13 it means, on the path a status message takes
// (fileStatus): the incoming line of the document it names is withdrawn,
// its copies moved, and the sender answered 15 or 16. A recall carries no
// PDF signature to check; an XML-DSig signature, when present, must verify
// (xsig), and one is required under RequireEdXMLSignature, as for a status.
func (r *Registry) importRecall(ctx context.Context, pkg *edxml.Package, from string, xsig signing.Check, data []byte, to []string) (*Imported, error) {
	h, b := pkg.Envelope.Header.MessageHeader, pkg.Bussiness()
	res := &signing.Result{From: from, Domain: domainOf(from)}
	if err := res.Add(xsig); err != nil {
		return nil, fmt.Errorf("%w: recall from %s: %s: %s", ErrRejected, from, xsig.Reason, xsig.Detail)
	}
	id := h.DocumentID
	if b.DocumentID != "" && b.DocumentID != id {
		return nil, fmt.Errorf("%w: the recall names %s in MessageHeader/DocumentId and %s in Bussiness/DocumentId", ErrRejected, id, b.DocumentID)
	}
	// The time the sender recalled it makes the same recall imported again
	// "already recorded" (statusRecorded).
	var at string
	for _, th := range pkg.Envelope.Header.Trace.TraceHeaders {
		if th.OrganID == h.From.OrganID {
			at = th.Timestamp
		}
	}
	if at == "" {
		return nil, fmt.Errorf("%w: the recall has no TraceHeader of %s saying when it was sent", ErrRejected, h.From.OrganID)
	}
	s := &edxml.Status{
		ResponseFor: edxml.ResponseFor{OrganID: h.From.OrganID, Code: strings.Trim(h.Code.CodeNumber+"/"+h.Code.CodeNotation, "/"),
			PromulgationDate: h.PromulgationInfo.PromulgationDate, DocumentID: id},
		From: h.From, StatusCode: edxml.StatusRecallRequest, Description: b.BussinessDocReason, Timestamp: at, StaffInfo: b.StaffInfo,
	}
	return r.fileStatus(ctx, s, from, res, data, to)
}

// sender checks the agency an edXML package or status comes from and
// returns its official address: From/Email names a hosted domain or a
// peer, whose organ is From/OrganId.
func (r *Registry) sender(ctx context.Context, o edxml.Organ) (string, error) {
	from := strings.ToLower(strings.TrimSpace(o.Email))
	domain := domainOf(from)
	if domain == "" {
		return "", fmt.Errorf("%w: From/Email is empty: the sending agency's official address names whose seal to trust", ErrRejected)
	}
	if known, err := r.knownAgency(ctx, domain); err != nil {
		return "", err
	} else if !known {
		return "", fmt.Errorf("%w: %s is not a known agency; add it with 'sealmail peer add %s --organ-id ID --seal-ca FILE'", ErrRejected, domain, domain)
	}
	if id, err := r.organID(ctx, domain); err != nil {
		return "", err
	} else if id != "" && id != o.OrganID {
		return "", fmt.Errorf("%w: From/OrganId %s is not %s's organ (%s)", ErrRejected, o.OrganID, domain, id)
	}
	return from, nil
}

// organID is the organ a hosted domain or a peer is registered with.
func (r *Registry) organID(ctx context.Context, domain string) (string, error) {
	if d, err := r.Store.Domain(ctx, domain); err == nil {
		return d.OrganID, nil
	} else if !errors.Is(err, mailstore.ErrNotFound) {
		return "", err
	}
	p, err := r.Store.Peer(ctx, domain)
	if errors.Is(err, mailstore.ErrNotFound) {
		return "", nil
	}
	return p.OrganID, err
}

// edxmlMessageID is the Message-ID a document from edXML is registered and
// acknowledged under: the same for the same document, so that importing
// it again is seen, and known to the sender, whose register matches the
// receipt by it.
func edxmlMessageID(documentID, domain string) string {
	sum := sha256.Sum256([]byte(documentID))
	return "<edxml." + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
}

// packageManifest is the package's header as the register reads a
// manifest, with the files' digests.
func packageManifest(h *edxml.MessageHeader, files []signing.File) *signing.Manifest {
	m := &signing.Manifest{Version: signing.ManifestVersion, MessageHeader: *h}
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		m.Attachments = append(m.Attachments, signing.Attachment{FileName: f.Name, ContentType: f.ContentType,
			Size: int64(len(f.Data)), SHA256: hex.EncodeToString(sum[:])})
	}
	return m
}

// packageMessage is the mail a package is delivered as: a bilingual text
// naming the document, its files, and the package itself.
func packageMessage(pkg *edxml.Package, from string, to []string, messageID string, now time.Time, data []byte) ([]byte, error) {
	h := pkg.Envelope.Header.MessageHeader
	var mh mail.Header
	mh.SetDate(now)
	mh.SetAddressList("From", []*mail.Address{{Name: h.From.OrganName, Address: from}})
	var rcpts []*mail.Address
	for _, a := range to {
		rcpts = append(rcpts, &mail.Address{Address: a})
	}
	mh.SetAddressList("To", rcpts)
	mh.SetSubject(h.Subject)
	mh.Set("Message-Id", messageID)
	mh.Set(fieldDocumentID, h.DocumentID)
	var b bytes.Buffer
	w, tw, err := textWriter(&b, mh)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(tw, "Văn bản điện tử nhận qua gói tin edXML / official document received as an edXML package\r\n\r\n"+
		"Cơ quan ban hành / issued by: %s (%s)\r\nSố, ký hiệu / number: %s/%s\r\nNgày / date: %s\r\n"+
		"Trích yếu / subject: %s\r\nNgười ký / signed by: %s %s\r\nMã văn bản / document ID: %s\r\n",
		h.From.OrganName, h.From.OrganID, h.Code.CodeNumber, h.Code.CodeNotation, h.PromulgationInfo.PromulgationDate,
		h.Subject, h.SignerInfo.Position, h.SignerInfo.FullName, h.DocumentID)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	for _, a := range pkg.Attachments {
		if err := attachFile(w, a.AttachmentName, cmpOr(a.ContentType, "application/octet-stream"), a.Data); err != nil {
			return nil, err
		}
	}
	if err := attachFile(w, PackageFile, "application/xml", data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// attachFile adds a base64 attachment to w.
func attachFile(w *mail.Writer, name, contentType string, data []byte) error {
	var ah mail.AttachmentHeader
	ah.SetContentType(contentType, nil)
	ah.SetFilename(name)
	ah.Set("Content-Transfer-Encoding", "base64")
	aw, err := w.CreateAttachment(ah)
	if err != nil {
		return err
	}
	if _, err := aw.Write(data); err != nil {
		return err
	}
	return aw.Close()
}

// importedPackage returns the edXML package a message made by
// packageMessage carries, or nil.
func importedPackage(msg []byte) []byte {
	mr, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		return nil
	}
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil
		}
		if ah, ok := p.Header.(*mail.AttachmentHeader); ok {
			if name, _ := ah.Filename(); name == PackageFile {
				var b bytes.Buffer
				if _, err := b.ReadFrom(p.Body); err != nil {
					return nil
				}
				return b.Bytes()
			}
		}
	}
}

// StatusMessage is one status message of a document, as edXML.
type StatusMessage struct {
	Status Status
	Data   []byte
}

// StatusMessages writes every status of a register line (Statuses: those
// received for a document sent, those sent for a document received, and a
// recall) as an edXML status message from the agency that said it. A
// registration receipt (03) is written as 01 and 03: it says both.
func (r *Registry) StatusMessages(ctx context.Context, e mailstore.DocEntry) ([]StatusMessage, error) {
	organ, date := strings.SplitN(e.DocumentID, ",", 2)[0], e.DocDate
	if t, err := time.Parse(time.DateOnly, e.DocDate); err == nil {
		date = t.Format(edxml.DateLayout)
	}
	sts, err := r.Statuses(ctx, e)
	if err != nil {
		return nil, err
	}
	var out []StatusMessage
	for _, st := range sts {
		from := edxml.Organ{Email: st.Agency}
		if id, err := r.organID(ctx, domainOf(st.Agency)); err != nil {
			return nil, err
		} else if id != "" {
			from.OrganID = id
		}
		if d, err := r.Store.Domain(ctx, domainOf(st.Agency)); err == nil {
			from.OrganName = d.OrganName
		} else if p, err := r.Store.Peer(ctx, domainOf(st.Agency)); err == nil {
			from.OrganName = p.OrganName
		}
		if from.OrganID == "" {
			return nil, fmt.Errorf("registry: %s has no organ ID: run 'sealmail peer add %s --organ-id ID' (or 'domain update')", domainOf(st.Agency), domainOf(st.Agency))
		}
		codes := []string{st.Code}
		if st.Code == edxml.StatusRegistered && st.Event == string(signing.ContentConsignment) {
			codes = []string{edxml.StatusArrived, edxml.StatusRegistered}
		}
		for _, code := range codes {
			s := edxml.Status{
				ResponseFor: edxml.ResponseFor{OrganID: organ, Code: e.Notation, PromulgationDate: date, DocumentID: e.DocumentID},
				From:        from, StatusCode: code,
				Description: joinNonEmpty(": ", edxml.StatusNames[code][0], st.Reason),
				StaffInfo:   &edxml.StaffInfo{Email: st.Agency},
			}
			data, err := edxml.Marshal(edxml.NewStatus(s, st.Time.In(r.loc())))
			if err != nil {
				return nil, fmt.Errorf("registry: status %s from %s: %w", code, st.Agency, err)
			}
			st := st
			st.Code, st.Name = code, edxml.StatusNames[code]
			out = append(out, StatusMessage{Status: st, Data: data})
		}
	}
	return out, nil
}

// bussiness is what a sealed document does, for its edXML package: new,
// or an update or replacement of the document its manifest names.
func bussiness(m *signing.Manifest) edxml.Bussiness {
	b := edxml.Bussiness{BussinessDocType: edxml.DocNew}
	if m.Bussiness != nil {
		b = *m.Bussiness
	}
	b.DocumentID = cmpOr(b.DocumentID, m.DocumentID)
	return b
}
