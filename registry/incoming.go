package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"sealmail/edxml"
	"sealmail/mailstore"
	"sealmail/signing"
)

// Concerns reports whether Incoming may handle a message with this header
// (or whole message): the SMTP server reads a large message into memory for
// Incoming only then.
func Concerns(header []byte) bool {
	h, _, err := splitHeader(header)
	return err == nil && concerns(h)
}

func concerns(h mail.Header) bool {
	return h.Has(fieldReceipt) || h.Has(fieldDocumentID) || h.Has(fieldDocument)
}

// Incoming handles a message arriving for local recipients if it is an
// official document, a claim to be one, or a receipt (see the package
// documentation). rcpts are the local recipient addresses, targets the
// mailboxes the server would deliver to. When handled is true the registry
// has delivered everything itself, and queued msg for remote, the same
// transaction's recipients on other servers, in the same commit: a failure
// leaves neither, so the sender's retry duplicates nothing. An error is
// temporary: reply 4xx and deliver nothing; when the sender retries, a
// document already registered keeps its number.
func (r *Registry) Incoming(ctx context.Context, mailFrom string, rcpts []string, targets []mailstore.Target, remote []string, msg []byte) (handled bool, err error) {
	h, _, err := splitHeader(msg)
	if err != nil || !concerns(h) {
		return false, nil
	}
	isReceipt := h.Has(fieldReceipt)
	groups, err := r.byAgency(ctx, rcpts, targets)
	if err != nil || len(groups) == 0 {
		return false, err
	}
	from := singleFrom(h.Get("From"))
	opts, err := r.VerifyOptions(ctx, domainOf(from))
	if err != nil {
		return false, err
	}
	now := r.now()
	opts.Now = now
	in := &arrival{h: h, msg: msg, from: from, mailFrom: mailFrom, messageID: normID(h.Get("Message-Id")), now: now}
	build := func(p *step) error { return r.receipt(ctx, in, opts, groups, p) }
	if !isReceipt {
		in.res, in.err = signing.Verify(msg, opts)
		if in.err == nil {
			r.count("verified", "pass")
		} else {
			r.count("verified", "fail")
		}
		build = func(p *step) error { return r.arrive(ctx, in, groups, p) }
	}
	err = r.run(ctx, func(p *step) error {
		if err := build(p); err != nil {
			return err
		}
		// A step that files nothing was done before (the sender's retry),
		// and the copy for remote queued with it.
		if filed := len(p.Entries) + len(p.Updates) + len(p.Deliveries) + len(p.Evidence) + len(p.Acks); filed > 0 && len(remote) > 0 {
			p.Queue = append(p.Queue, mailstore.QueuedMessage{From: mailFrom, Rcpts: remote, Content: msg})
		}
		return nil
	})
	if errors.Is(err, mailstore.ErrExists) {
		// Done before: the sender retried after a crash or a lost answer.
		r.log().Info("registry: already handled", "message_id", in.messageID, "from", from, "envelope_from", mailFrom)
		return true, nil
	}
	return true, err
}

// arrive builds the step of a document (or a claim to be one) arriving for
// groups: registered and delivered, or quarantined, and answered.
func (r *Registry) arrive(ctx context.Context, in *arrival, groups []*agency, p *step) error {
	for _, g := range groups {
		var err error
		if in.err == nil {
			err = r.accept(ctx, in, g, p)
		} else {
			err = r.refuse(ctx, in, g, documentWords, p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// arrival is a message being received, with what verification said.
type arrival struct {
	h         mail.Header
	msg       []byte
	from      string // From: address
	mailFrom  string // envelope sender, for the log
	messageID string
	now       time.Time
	res       *signing.Result
	err       error
}

// agency is the part of a delivery that goes to one hosted agency: each
// registers and acknowledges it on its own.
type agency struct {
	domain  mailstore.Domain
	rcpts   []string
	targets []mailstore.Target
}

// byAgency splits the recipients and targets by receiving agency.
func (r *Registry) byAgency(ctx context.Context, rcpts []string, targets []mailstore.Target) ([]*agency, error) {
	var groups []*agency
	byDomain := map[string]*agency{}
	owner := map[int64]*agency{}
	for _, rcpt := range rcpts {
		name := domainOf(rcpt)
		g := byDomain[name]
		if g == nil {
			d, err := r.Store.Domain(ctx, name)
			if errors.Is(err, mailstore.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			g = &agency{domain: d}
			byDomain[name] = g
			groups = append(groups, g)
		}
		g.rcpts = append(g.rcpts, strings.ToLower(rcpt))
		accts, _, err := r.Store.Resolve(ctx, rcpt)
		if err != nil && !errors.Is(err, mailstore.ErrNotFound) {
			return nil, err
		}
		for _, a := range accts {
			if owner[a.ID] == nil {
				owner[a.ID] = g
			}
		}
	}
	for _, t := range targets {
		g := owner[t.AccountID]
		if g == nil && len(groups) > 0 {
			g = groups[0] // the server resolved it differently; it still gets the message
		}
		if g != nil {
			g.targets = append(g.targets, t)
		}
	}
	return groups, nil
}

// accept registers a verified document in g's incoming register, delivers it
// marked as such and acknowledges it to the sender, in step p. A document
// g registered before is left as it is.
func (r *Registry) accept(ctx context.Context, in *arrival, g *agency, p *step) error {
	m := in.res.Manifest
	ref := mailstore.DocRef{Domain: g.domain.Name, Direction: mailstore.DocIn, MessageID: in.messageID}
	if in.messageID != "" {
		if e, err := r.Store.DocByMessage(ctx, ref); err == nil {
			r.log().Info("registry: document already registered", "doc", m.DocumentID, "so_den", e.Number, "domain", g.domain.Name)
			return nil
		} else if !errors.Is(err, mailstore.ErrNotFound) {
			return err
		}
	}
	date := in.now.In(r.loc())
	number, err := r.Store.NextDocNumber(ctx, g.domain.Name, mailstore.DocIn, mailstore.SeriesOrdinary, date.Year())
	if err != nil {
		return err
	}
	e := mailstore.DocEntry{
		Domain: g.domain.Name, Direction: mailstore.DocIn, Year: date.Year(), Number: number,
		Notation: m.Code.CodeNumber + "/" + m.Code.CodeNotation, DocumentID: m.DocumentID, MessageID: in.messageID,
		DocDate: docDate(m), DocType: m.DocumentType.TypeName, Time: in.now, Subject: m.Subject, Signer: signerText(m.SignerInfo),
		Organ: m.From.OrganName, Sender: in.from, Recipients: g.rcpts, Copies: 1, Status: StatusReceived,
		Files: docFiles(manifestFiles(m)), Notes: pdfNotes(in.res),
	}
	if err := r.linked(ctx, g, m, &e, p); err != nil {
		return err
	}
	verdict := "pass" + param("organ", m.From.OrganID) + param("doc", e.Notation) + param("so-den", strconv.Itoa(e.Number))
	if n := pdfNotes(in.res); n != "" {
		// The names stay in the register: a header line must stay short.
		sigs := 0
		for _, p := range in.res.PDFs {
			sigs += len(p.Signatures)
		}
		verdict += param("pdf", fmt.Sprintf("%d file(s), %d signature(s) verified", len(in.res.PDFs), sigs))
	}
	out, err := setVerdict(in.msg, verdict)
	if err != nil {
		return err
	}
	targets := slices.Clone(g.targets)
	clerks, err := r.Store.Clerks(ctx, g.domain.Name)
	if err != nil {
		return err
	}
	for _, c := range clerks {
		targets = append(targets, mailstore.Target{AccountID: c.ID, Mailbox: InFolder})
	}
	p.Entries = append(p.Entries, mailstore.NewDoc{DocEntry: e, Original: out})
	p.deliver(out, in.now, targets)
	p.done = append(p.done, func() {
		r.log().Info("registry: document received", "doc", m.DocumentID, "so_den", number, "domain", g.domain.Name,
			"from", in.from, "envelope_from", in.mailFrom)
	})
	// Registered as it arrived, in one step: one receipt says so, with 03
	// (đã tiếp nhận, vào sổ), which includes 01 (đã đến).
	ev := signing.Evidence{Event: signing.ContentConsignment, StatusCode: edxml.StatusRegistered, DocumentID: m.DocumentID, MessageID: in.messageID,
		Files: manifestFiles(m), Time: in.now, Server: r.Hostname, From: in.from, To: g.rcpts}
	return r.answer(ctx, g, ev, &ref, p)
}

// documentWords and receiptWords name what a quarantine notice is about.
var (
	documentWords = [2]string{"Văn bản điện tử", "official document"}
	receiptWords  = [2]string{"Biên nhận văn bản điện tử", "document receipt"}
)

// refuse puts a notice with the failed message in the recipients'
// quarantine and, for a document, tells the sender why, in step p. The same
// document refused again is not answered again.
func (r *Registry) refuse(ctx context.Context, in *arrival, g *agency, what [2]string, p *step) error {
	from := g.domain.OfficialAddress
	if from == "" {
		from = "postmaster@" + g.domain.Name
	}
	host := r.Hostname
	if host == "" {
		host = g.domain.Name
	}
	n, err := notice(from, g.rcpts, what, in.res, in.msg, in.now, host)
	if err != nil {
		return err
	}
	targets := slices.Clone(g.targets)
	for i := range targets {
		targets[i].Mailbox = QuarantineFolder
	}
	p.deliver(n, in.now, targets)
	reason := failures(in.res)
	p.done = append(p.done, func() {
		r.log().Warn("registry: quarantined", "what", what[1], "domain", g.domain.Name, "from", in.from, "envelope_from", in.mailFrom,
			"message_id", in.messageID, "failed", reason)
	})
	if what != documentWords {
		return nil // a receipt is never answered
	}
	docID, _ := in.h.Text(fieldDocumentID)
	var files []signing.FileDigest
	if in.res.Manifest != nil {
		docID, files = in.res.Manifest.DocumentID, manifestFiles(in.res.Manifest)
	}
	ev := signing.Evidence{Event: signing.ContentConsignmentFailure, StatusCode: edxml.StatusRefused, Reason: reason, DocumentID: strings.TrimSpace(docID),
		MessageID: in.messageID, Files: files, Time: in.now, Server: r.Hostname, From: in.from, To: g.rcpts}
	if p.Once == nil && in.messageID != "" {
		p.Once = &mailstore.Evidence{Domain: g.domain.Name, Origin: mailstore.EvidenceIssued, Event: string(ev.Event),
			DocumentID: ev.DocumentID, MessageID: in.messageID, StatusCode: ev.StatusCode, Sender: ev.From}
	}
	return r.answer(ctx, g, ev, nil, p)
}

// answer sends the sender's agency a receipt for ev, signed with g's seal,
// and records it as evidence and, for a registered document (entry not
// nil), as the entry's acknowledgement, in step p. A receipt that cannot be
// made is recorded with the reason: the document is delivered regardless.
func (r *Registry) answer(ctx context.Context, g *agency, ev signing.Evidence, entry *mailstore.DocRef, p *step) error {
	var note string
	known, err := r.knownAgency(ctx, domainOf(ev.From))
	switch {
	case err != nil:
		return err
	case !known:
		note = "no receipt: the sender is not a known agency"
	case ev.MessageID == "":
		note = "no receipt: the message has no Message-ID"
	default:
		if err := r.notify(ctx, g.domain.Name, ev, p); errors.Is(err, errUnsigned) {
			note = err.Error()
		} else if err != nil {
			return err
		}
	}
	if note != "" {
		p.done = append(p.done, func() {
			r.log().Warn("registry: receipt", "event", ev.Event, "doc", ev.DocumentID, "to", ev.From, "problem", note)
		})
		p.Evidence = append(p.Evidence, evidenceRow(g.domain.Name, mailstore.EvidenceIssued, ev, note, nil))
	}
	if entry != nil {
		p.Acks = append(p.Acks, mailstore.EntryAck{Ref: *entry,
			Ack: mailstore.DocAck{Party: ev.From, StatusCode: ev.StatusCode, Reason: joinNonEmpty("; ", ev.Reason, note), Time: ev.Time}})
	}
	return nil
}

// errUnsigned marks a receipt or notice that could not be signed.
var errUnsigned = errors.New("no receipt")

// notify signs ev with domain's seal, records it as evidence issued and
// sends it to ev.Addressees() in step p: queued for other servers, filed at
// once for agencies hosted here. An error wrapping errUnsigned means it
// could not be signed, and nothing was added.
func (r *Registry) notify(ctx context.Context, domain string, ev signing.Evidence, p *step) error {
	seal, err := r.seal(domain)
	if err != nil {
		return fmt.Errorf("%w: %s has no usable seal: %v", errUnsigned, domain, err)
	}
	msg, err := signing.Receipt(ctx, seal, ev, ev.Time)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnsigned, err)
	}
	p.Evidence = append(p.Evidence, evidenceRow(domain, mailstore.EvidenceIssued, ev, "", msg))
	attester := seal.Cert.EmailAddresses[0]
	return r.route(ctx, attester, ev.Addressees(), msg, p, func(to *agency) error {
		return r.file(ctx, to, &ev, attester, msg, ev.Time, p)
	})
}

// receipt records a peer's receipt or notice in step p: for a document this
// server sent, filed with the clerk who sent it; a recall, carried out
// (file). One that came before (the peer's server sent it again) is
// recorded once.
func (r *Registry) receipt(ctx context.Context, in *arrival, opts signing.VerifyOptions, groups []*agency, p *step) error {
	ev, res, err := signing.ParseReceipt(in.msg, opts)
	if err != nil {
		in.res = res
		for _, g := range groups {
			if err := r.refuse(ctx, in, g, receiptWords, p); err != nil {
				return err
			}
		}
		return nil
	}
	start := len(p.Evidence)
	for _, g := range groups {
		if err := r.file(ctx, g, ev, in.from, in.msg, in.now, p); err != nil {
			return err
		}
	}
	for _, e := range p.Evidence[start:] {
		if e.Origin == mailstore.EvidenceReceived {
			p.Once = &e
			break
		}
	}
	return nil
}

// fileReceipt records in step p, for agency g, a receipt attester signed:
// the acknowledgement of the document it answers, the evidence, and the
// receipt itself in the mailboxes of g's recipients and of the clerk who
// sent the document.
func (r *Registry) fileReceipt(ctx context.Context, g *agency, ev *signing.Evidence, attester string, msg []byte, now time.Time, p *step) error {
	targets := slices.Clone(g.targets)
	e, note, err := r.matchReceipt(ctx, g, ev, attester, p)
	if err != nil {
		return err
	}
	if e != nil {
		ref := refOf(*e)
		for _, u := range p.Updates {
			if u.Ref == ref && u.Status != "" {
				e.Status = u.Status // changed in this step (a recall answered at once by an agency hosted here)
			}
		}
		ack := mailstore.DocAck{Party: attester, StatusCode: ev.StatusCode, Reason: ev.Reason, Time: ev.Time}
		acks := slices.Clone(e.Acks)
		for _, a := range p.Acks {
			if a.Ref == ref {
				acks = append(acks, a.Ack)
			}
		}
		if u := r.senderUpdate(e, ev, attester, append(acks, ack)); u != nil {
			p.Updates = append(p.Updates, *u)
		}
		p.Acks = append(p.Acks, mailstore.EntryAck{Ref: ref, Ack: ack})
		if clerk, err := r.Store.Account(ctx, e.Sender); err == nil {
			if !slices.ContainsFunc(targets, func(t mailstore.Target) bool { return t.AccountID == clerk.ID && t.Mailbox == "" }) {
				targets = append(targets, mailstore.Target{AccountID: clerk.ID})
			}
		} else if !errors.Is(err, mailstore.ErrNotFound) {
			return err
		}
	} else {
		p.done = append(p.done, func() {
			r.log().Warn("registry: receipt matches no document sent", "doc", ev.DocumentID, "from", attester, "problem", note)
		})
	}
	// The evidence names the receipt's own attester, not the original sender.
	rec := *ev
	rec.From, rec.To = attester, []string{ev.From}
	p.Evidence = append(p.Evidence, evidenceRow(g.domain.Name, mailstore.EvidenceReceived, rec, note, msg))
	p.deliver(msg, now, targets)
	return nil
}

// matchReceipt finds the outgoing register entry a receipt answers: same
// document and message, and the receipt comes from one of its recipients'
// domains. It returns nil and why when there is none.
func (r *Registry) matchReceipt(ctx context.Context, g *agency, ev *signing.Evidence, attester string, p *step) (*mailstore.DocEntry, string, error) {
	es, err := r.Store.Docs(ctx, mailstore.DocQuery{Domain: g.domain.Name, Direction: mailstore.DocOut, DocumentID: ev.DocumentID})
	if err != nil {
		return nil, "", err
	}
	// A document released in the same step as its receipt is not stored yet.
	if e := p.pending(mailstore.DocRef{Domain: g.domain.Name, Direction: mailstore.DocOut, MessageID: normID(ev.MessageID)}); e != nil && e.DocumentID == ev.DocumentID {
		es = append(es, *e)
	}
	for _, e := range es {
		// A document sent as edXML is acknowledged under the Message-ID the
		// recipient gave it on import.
		if id := normID(ev.MessageID); e.MessageID != id && id != edxmlMessageID(e.DocumentID, g.domain.Name) {
			continue
		}
		if !slices.ContainsFunc(e.Recipients, func(rc string) bool { return domainOf(rc) == domainOf(attester) }) {
			return nil, "unmatched: " + attester + " was not sent the document", nil
		}
		return &e, "", nil
	}
	return nil, "unmatched: no such document sent", nil
}

// docDate is the register's form of the manifest's promulgation date,
// YYYY-MM-DD; a date that does not parse is kept as it came.
func docDate(m *signing.Manifest) string {
	if t, err := m.Date(time.UTC); err == nil {
		return t.Format(time.DateOnly)
	}
	return m.PromulgationInfo.PromulgationDate
}

func manifestFiles(m *signing.Manifest) []signing.FileDigest {
	out := make([]signing.FileDigest, len(m.Attachments))
	for i, a := range m.Attachments {
		out[i] = signing.FileDigest{Name: a.FileName, SHA256: a.SHA256}
	}
	return out
}

// pdfNotes is what verification found inside the PDF files, in Vietnamese:
// who signed each and when, for the register and the recipients.
func pdfNotes(res *signing.Result) string {
	if c := res.Check(signing.CheckPDF); c != nil && c.Status == signing.Pass {
		return "Chữ ký số trong tệp PDF: " + c.Detail
	}
	return ""
}
