package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"sealmail/mailstore"
	"sealmail/signing"
)

// Outgoing turns a message a clerk submits into a sealed official document
// (see the package documentation) and returns what to deliver and queue:
// msg itself when it is not an official document, else the stamped message.
// from is the envelope sender, rcpts the envelope recipients.
func (r *Registry) Outgoing(ctx context.Context, acct mailstore.Account, from string, rcpts []string, msg []byte) ([]byte, error) {
	if acct.Role != mailstore.RoleClerk {
		return msg, nil
	}
	h, _, err := splitHeader(msg)
	if err != nil {
		return msg, nil // not a document; the server's own header checks answer for it
	}
	sender := singleFrom(h.Get("From"))
	if sender == "" || h.Has(fieldReceipt) {
		return msg, nil
	}
	d, err := r.Store.Domain(ctx, domainOf(sender))
	if errors.Is(err, mailstore.ErrNotFound) {
		return msg, nil
	}
	if err != nil {
		return nil, err
	}
	if d.OfficialAddress == "" || sender != d.OfficialAddress || !hasAttachment(msg) {
		return msg, nil
	}
	if d.OrganID == "" || d.Code == "" {
		return nil, fmt.Errorf("%w: %s has no organ ID or code notation; run 'sealmail domain update %s --organ-id ID --code CODE'",
			ErrRejected, d.Name, d.Name)
	}
	messageID := normID(h.Get("Message-Id"))
	if messageID == "" {
		return nil, fmt.Errorf("%w: the message has no Message-ID for receipts to refer to", ErrRejected)
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
	img, err := sealImage(r.DataDir, d.Name)
	if err != nil {
		return nil, err
	}
	subject, _ := h.Subject()
	sig := signer(h)
	date := now.In(r.loc())
	e, err := r.Store.Register(ctx, mailstore.DocEntry{
		Domain: d.Name, Direction: mailstore.DocOut, Year: date.Year(), MessageID: messageID,
		DocDate: date.Format(time.DateOnly), Time: now, Subject: subject, Signer: signerText(sig),
		Sender: acct.Address, Recipients: rcpts, Copies: len(rcpts), Status: StatusNumbered,
	}, func(e *mailstore.DocEntry) {
		e.Notation = signing.Notation(e.Number, d.Code)
		e.DocumentID = signing.DocumentID(d.OrganID, date, e.Number, d.Code)
	})
	if errors.Is(err, mailstore.ErrExists) {
		// The same message again (the client did not see our answer): it
		// keeps its number and date.
		r.log().Info("registry: resubmitted document", "doc", e.DocumentID, "message_id", messageID)
		if date, err = time.ParseInLocation(time.DateOnly, e.DocDate, r.loc()); err != nil {
			return nil, fmt.Errorf("registry: entry %d date: %w", e.ID, err)
		}
	} else if err != nil {
		return nil, err
	}
	doc := signing.Document{Number: e.Number, Agency: Agency(d), To: r.organs(ctx, h), Subject: subject, Signer: sig, Date: date,
		PDF: &signing.PDFStamp{Profile: r.PDF.Profile, SealImage: img}}
	stamped, files, err := r.stamp(ctx, msg, seal, doc, d.Name, now)
	if err != nil {
		e.Status, e.Notes = StatusVoid, "not sealed: "+err.Error()
		if uerr := r.Store.UpdateDoc(ctx, e); uerr != nil {
			return nil, errors.Join(err, uerr)
		}
		// The time-stamping authority may answer later; the same message
		// sent again keeps its number.
		if errors.Is(err, signing.ErrTimestamp) {
			return nil, fmt.Errorf("registry: %s: %w", e.DocumentID, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	if _, err := r.deliver(ctx, stamped, now, []mailstore.Target{{AccountID: acct.ID, Mailbox: OutFolder, Flags: []string{`\Seen`}}}); err != nil {
		return nil, err
	}
	ev := signing.Evidence{Event: signing.SubmissionAcceptance, DocumentID: e.DocumentID, MessageID: messageID,
		Files: files, Time: now, Server: r.Hostname, From: sender, To: rcpts}
	receipt, err := signing.Receipt(ctx, seal, ev, now)
	if err != nil {
		return nil, err
	}
	if _, err := r.deliver(ctx, receipt, now, []mailstore.Target{{AccountID: acct.ID}}); err != nil {
		return nil, err
	}
	if err := r.evidence(ctx, d.Name, mailstore.EvidenceIssued, ev, "", receipt); err != nil {
		return nil, err
	}
	e.Status, e.Files = StatusSent, docFiles(files)
	if err := r.Store.UpdateDoc(ctx, e); err != nil {
		return nil, err
	}
	r.log().Info("registry: document sealed", "doc", e.DocumentID, "number", e.Notation, "clerk", acct.Address,
		"envelope_from", from, "rcpts", len(rcpts))
	return stamped, nil
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

// deliver stores msg for targets whatever their quota: a registered document
// or a receipt must not bounce. An account gone since is logged, not failed.
func (r *Registry) deliver(ctx context.Context, msg []byte, now time.Time, targets []mailstore.Target) ([]mailstore.Delivered, error) {
	for i := range targets {
		targets[i].IgnoreQuota = true
	}
	ds, err := r.Store.Deliver(ctx, msg, now, targets)
	if err != nil {
		return nil, err
	}
	for i, d := range ds {
		if d.Err != nil {
			r.log().Warn("registry: deliver", "account_id", targets[i].AccountID, "mailbox", targets[i].Mailbox, "err", d.Err)
		}
	}
	return ds, nil
}

// evidence appends a receipt issued or received to the evidence chain.
func (r *Registry) evidence(ctx context.Context, domain, origin string, ev signing.Evidence, note string, receipt []byte) error {
	reason := ev.Reason
	if note != "" {
		reason = joinNonEmpty("; ", reason, note)
	}
	_, err := r.Store.AppendEvidence(ctx, mailstore.Evidence{Domain: domain, Time: ev.Time, Origin: origin, Event: string(ev.Event),
		DocumentID: ev.DocumentID, MessageID: normID(ev.MessageID), StatusCode: ev.StatusCode, Reason: reason,
		Sender: ev.From, Recipients: ev.To, Receipt: receipt})
	return err
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
