package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"sealmail/mailstore"
	"sealmail/signing"
)

// Outgoing handles a message a clerk submits if it is an official document
// (see the package documentation): it numbers and seals it and, in one store
// transaction, registers it, files the sealed copy and the clerk's receipt,
// delivers it to the recipients hosted here (local, through their own
// registers) and queues it for the others (remote), and returns the sealed
// document; the server then has nothing left to do. It returns nil when the
// message is not an official document: the server delivers it as usual.
// from is the envelope sender. A message sent again after it was released
// (the client missed the answer) is not released twice: Outgoing returns
// the document as it was sealed.
func (r *Registry) Outgoing(ctx context.Context, acct mailstore.Account, from string, local, remote []string, msg []byte) (_ []byte, err error) {
	defer func() {
		if errors.Is(err, ErrRejected) {
			r.count("stamped", "refused")
		}
	}()
	if acct.Role != mailstore.RoleClerk {
		return nil, nil
	}
	h, _, err := splitHeader(msg)
	if err != nil {
		return nil, nil // not a document; the server's own header checks answer for it
	}
	sender := singleFrom(h.Get("From"))
	if sender == "" || h.Has(fieldReceipt) {
		return nil, nil
	}
	d, err := r.Store.Domain(ctx, domainOf(sender))
	if errors.Is(err, mailstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if d.OfficialAddress == "" || sender != d.OfficialAddress || !hasAttachment(msg) {
		return nil, nil
	}
	if d.OrganID == "" || d.Code == "" {
		return nil, fmt.Errorf("%w: %s has no organ ID or code notation; run 'sealmail domain update %s --organ-id ID --code CODE'",
			ErrRejected, d.Name, d.Name)
	}
	messageID := normID(h.Get("Message-Id"))
	if messageID == "" {
		return nil, fmt.Errorf("%w: the message has no Message-ID for receipts to refer to", ErrRejected)
	}
	if e, err := r.Store.DocByMessage(ctx, mailstore.DocRef{Domain: d.Name, Direction: mailstore.DocOut, MessageID: messageID}); err == nil {
		// The same message again (the client did not see our answer): it
		// was registered, delivered and queued in one transaction.
		if e.Status == StatusVoid {
			return nil, fmt.Errorf("%w: %s was not sealed: %s", ErrRejected, e.DocumentID, e.Notes)
		}
		r.log().Info("registry: resubmitted document", "doc", e.DocumentID, "message_id", messageID)
		return r.Store.DocOriginal(ctx, e.ID)
	} else if !errors.Is(err, mailstore.ErrNotFound) {
		return nil, err
	}
	seal, err := r.seal(d.Name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no seal; run 'sealmail seal init %s' or 'sealmail seal import %s'", ErrRejected, d.Name, d.Name, d.Name)
	}
	if err != nil {
		return nil, err
	}
	now := r.now()
	// The agency signs only what the person with authority signed (Decree
	// 30 Art. 14, 32.2.d): checked before a number is taken, so a refused
	// release uses none.
	if !r.PDF.AllowUnsigned {
		opts, err := r.VerifyOptions(ctx, d.Name)
		if err != nil {
			return nil, err
		}
		opts.Now = now
		if _, err := signing.CheckSigner(msg, signing.SignerPolicy{Roots: r.PDF.trustPool(), Verify: opts}); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRejected, err)
		}
	}
	fix, err := r.correction(ctx, h, d.Name)
	if err != nil {
		return nil, err
	}
	img, err := sealImage(r.DataDir, d.Name)
	if err != nil {
		return nil, err
	}
	rel := &release{acct: acct, domain: d, seal: seal, sender: sender, envFrom: from, local: local, remote: remote,
		h: h, msg: msg, messageID: messageID, img: img, now: now, fix: fix}
	err = r.run(ctx, func(p *step) error { return r.release(ctx, rel, p) })
	if errors.Is(err, mailstore.ErrExists) {
		// Released meanwhile by the same message on another connection.
		e, err := r.Store.DocByMessage(ctx, mailstore.DocRef{Domain: d.Name, Direction: mailstore.DocOut, MessageID: messageID})
		if err != nil {
			return nil, err
		}
		return r.Store.DocOriginal(ctx, e.ID)
	}
	if err != nil {
		return nil, err
	}
	r.count("stamped", "ok")
	return rel.sealed, nil
}

// release is a document being released.
type release struct {
	acct          mailstore.Account
	domain        mailstore.Domain
	seal          *signing.Seal
	sender        string // the official address
	envFrom       string
	local, remote []string
	h             mail.Header
	msg           []byte
	messageID     string
	img           image.Image
	now           time.Time
	sealed        []byte      // the document as sealed by the last build
	fix           *correction // what it updates or replaces, if anything
}

// release builds the step of a release under the next number: the number
// goes into the seal, so a number taken meanwhile means sealing again.
func (r *Registry) release(ctx context.Context, rel *release, p *step) error {
	d, now := rel.domain, rel.now
	date := now.In(r.loc())
	number, err := r.Store.NextDocNumber(ctx, d.Name, mailstore.DocOut, mailstore.SeriesOrdinary, date.Year())
	if err != nil {
		return err
	}
	rcpts := append(slices.Clone(rel.local), rel.remote...)
	subject, _ := rel.h.Subject()
	sig := signer(rel.h)
	e := mailstore.DocEntry{
		Domain: d.Name, Direction: mailstore.DocOut, Year: date.Year(), Number: number, MessageID: rel.messageID,
		Notation: signing.Notation(number, d.Code), DocumentID: signing.DocumentID(d.OrganID, date, number, d.Code),
		DocDate: date.Format(time.DateOnly), Time: now, Subject: subject, Signer: signerText(sig),
		Sender: rel.acct.Address, Recipients: rcpts, Copies: len(rcpts), Status: StatusSent,
	}
	doc := signing.Document{Number: number, Agency: Agency(d), To: r.organs(ctx, rel.h), Subject: subject, Signer: sig, Type: docType(""), Date: date,
		PDF: &signing.PDFStamp{Profile: r.PDF.Profile, SealImage: rel.img}}
	if f := rel.fix; f != nil {
		e.Relation, e.Related = f.relation, f.old.DocumentID
		e.Notes = joinNonEmpty("; ", e.Notes, f.note(f.old.DocumentID, true))
		doc.Bussiness = f.bussiness(doc.To)
		p.Updates = append(p.Updates, mailstore.DocUpdate{Ref: refOf(f.old), Note: f.note(e.DocumentID, false)})
	}
	stamped, files, err := r.stamp(ctx, rel.msg, rel.seal, doc, d.Name, now)
	if err != nil {
		// No number is taken for a document that could not be sealed.
		if errors.Is(err, signing.ErrTimestamp) {
			return fmt.Errorf("registry: %s: %w", e.DocumentID, err)
		}
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	e.Files, rel.sealed = docFiles(files), stamped
	p.Entries = append(p.Entries, mailstore.NewDoc{DocEntry: e, Original: stamped})
	p.deliver(stamped, now, []mailstore.Target{{AccountID: rel.acct.ID, Mailbox: OutFolder, Flags: []string{`\Seen`}}})
	ev := signing.Evidence{Event: signing.SubmissionAcceptance, DocumentID: e.DocumentID, MessageID: rel.messageID,
		Files: files, Time: now, Server: r.Hostname, From: rel.sender, To: rcpts}
	receipt, err := signing.Receipt(ctx, rel.seal, ev, now)
	if err != nil {
		return err
	}
	p.deliver(receipt, now, []mailstore.Target{{AccountID: rel.acct.ID}})
	p.Evidence = append(p.Evidence, evidenceRow(d.Name, mailstore.EvidenceIssued, ev, "", receipt))
	if len(rel.remote) > 0 {
		p.Queue = append(p.Queue, mailstore.QueuedMessage{From: rel.envFrom, Rcpts: rel.remote, Content: stamped})
	}
	if len(rel.local) > 0 {
		if err := r.arriveHere(ctx, rel, stamped, p); err != nil {
			return err
		}
	}
	p.done = append(p.done, func() {
		r.log().Info("registry: document sealed", "doc", e.DocumentID, "number", e.Notation, "clerk", rel.acct.Address,
			"envelope_from", rel.envFrom, "rcpts", len(rcpts))
	})
	return nil
}

// arriveHere adds to step p the arrival of a document released here at the
// agencies hosted here it is addressed to, each verifying it as a peer
// would.
func (r *Registry) arriveHere(ctx context.Context, rel *release, stamped []byte, p *step) error {
	local, targets, _, err := r.resolve(ctx, rel.local)
	if err != nil {
		return err
	}
	groups, err := r.byAgency(ctx, local, targets)
	if err != nil || len(groups) == 0 {
		return err
	}
	h, _, err := splitHeader(stamped)
	if err != nil {
		return err
	}
	opts, err := r.VerifyOptions(ctx, rel.domain.Name)
	if err != nil {
		return err
	}
	opts.Now = rel.now
	in := &arrival{h: h, msg: stamped, from: rel.sender, mailFrom: rel.envFrom, messageID: rel.messageID, now: rel.now}
	in.res, in.err = signing.Verify(stamped, opts)
	return r.arrive(ctx, in, groups, p)
}

// stamp seals msg and verifies the result as a recipient will, so that a
// seal that has expired or does not match fails here rather than at every
// recipient. It returns the digests of the files the manifest lists.
func (r *Registry) stamp(ctx context.Context, msg []byte, seal *signing.Seal, doc signing.Document, domain string, now time.Time) ([]byte, []signing.FileDigest, error) {
	stamped, err := signing.Stamp(ctx, msg, seal, doc, now)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	anchor := seal.Cert
	if len(seal.Chain) > 0 {
		anchor = seal.Chain[len(seal.Chain)-1]
	}
	pool.AddCert(anchor)
	res, err := signing.Verify(stamped, signing.VerifyOptions{Roots: map[string]*x509.CertPool{domain: pool}, TSARoots: r.TSARoots, Now: now,
		PDF: &signing.PDFPolicy{TrustRoots: r.PDF.TrustRoots, RequireSigner: !r.PDF.AllowUnsigned}})
	if err != nil {
		return nil, nil, fmt.Errorf("the sealed document does not verify: %s", failures(res))
	}
	return stamped, manifestFiles(res.Manifest), nil
}

// organs names the addressees of To: and Cc: as the manifest lists them
// (nơi nhận): hosted agencies and peers by their organ, anyone else by
// address only. Envelope recipients would reveal Bcc: to everyone.
func (r *Registry) organs(ctx context.Context, h mail.Header) []signing.Organ {
	var out []signing.Organ
	for _, key := range []string{"To", "Cc"} {
		for _, v := range h.Values(key) {
			list, err := addressParser.ParseList(v)
			if err != nil {
				continue
			}
			for _, a := range list {
				o := signing.Organ{Email: strings.ToLower(a.Address)}
				if d, err := r.Store.Domain(ctx, domainOf(o.Email)); err == nil {
					o.OrganID, o.OrganName = d.OrganID, d.OrganName
				} else if p, err := r.Store.Peer(ctx, domainOf(o.Email)); err == nil {
					o.OrganID, o.OrganName = p.OrganID, p.OrganName
				}
				out = append(out, o)
			}
		}
	}
	return out
}

func docFiles(fs []signing.FileDigest) []mailstore.DocFile {
	out := make([]mailstore.DocFile, len(fs))
	for i, f := range fs {
		out[i] = mailstore.DocFile{Name: f.Name, SHA256: f.SHA256}
	}
	return out
}

// evidenceRow is the evidence of a receipt issued or received.
func evidenceRow(domain, origin string, ev signing.Evidence, note string, receipt []byte) mailstore.Evidence {
	reason := ev.Reason
	if note != "" {
		reason = joinNonEmpty("; ", reason, note)
	}
	return mailstore.Evidence{Domain: domain, Time: ev.Time, Origin: origin, Event: string(ev.Event),
		DocumentID: ev.DocumentID, MessageID: normID(ev.MessageID), StatusCode: ev.StatusCode, Reason: reason,
		Sender: ev.From, Recipients: ev.To, Receipt: receipt}
}

func joinNonEmpty(sep string, ss ...string) string {
	out := ""
	for _, s := range ss {
		if s == "" {
			continue
		}
		if out != "" {
			out += sep
		}
		out += s
	}
	return out
}
