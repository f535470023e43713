package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"sealmail/mailstore"
	"sealmail/signing"
)

// Paper is a paper document for a register. Decree 30/2020 numbers paper
// and electronic documents in one series a year (Art. 15.1, 22.2), so a
// clerk records each paper document here as it is issued or arrives.
type Paper struct {
	Domain    string
	Direction mailstore.Direction
	// Confidential puts it in the separate series of confidential (mật)
	// documents, which never travel by mail.
	Confidential bool
	DocType      string // tên loại: Công văn, Quyết định, Tờ trình, ...
	Subject      string // trích yếu
	Signer       string
	// Incoming only: the issuing organ, the document's own số/ký hiệu and
	// date. An outgoing document is numbered and dated here.
	Organ    string
	Notation string
	Date     time.Time
	// Recipients are the places it goes (out) or the units or people it is
	// passed to (in).
	Recipients []string
	FiledWith  string // đơn vị, người nhận bản lưu (out)
	Copies     int    // số lượng bản
	Notes      string
}

// StatusPaper marks a paper document's register line.
const StatusPaper = "paper"

// RegisterPaper gives p the next number of its register and records it.
// An outgoing document gets the notation number/code of its agency and
// today's date; an incoming one keeps its own.
func (r *Registry) RegisterPaper(ctx context.Context, p Paper) (mailstore.DocEntry, error) {
	if strings.TrimSpace(p.Subject) == "" {
		return mailstore.DocEntry{}, errors.New("registry: a paper document needs its subject (trích yếu)")
	}
	d, err := r.Store.Domain(ctx, p.Domain)
	if err != nil {
		return mailstore.DocEntry{}, fmt.Errorf("registry: %s: %w", p.Domain, err)
	}
	now := r.now()
	today := now.In(r.loc())
	series := mailstore.SeriesOrdinary
	if p.Confidential {
		series = mailstore.SeriesConfidential
	}
	copies := p.Copies
	if copies <= 0 {
		copies = max(1, len(p.Recipients))
	}
	e := mailstore.DocEntry{
		Domain: d.Name, Direction: p.Direction, Series: series, Medium: mailstore.MediumPaper,
		Year: today.Year(), Time: now, DocType: p.DocType, Subject: p.Subject, Signer: p.Signer,
		Recipients: p.Recipients, FiledWith: p.FiledWith, Copies: copies, Status: StatusPaper, Notes: p.Notes,
	}
	var fill func(*mailstore.DocEntry)
	switch p.Direction {
	case mailstore.DocOut:
		if d.Code == "" {
			return mailstore.DocEntry{}, fmt.Errorf("registry: %s has no document code; set it with 'sealmail domain update %s --code NOTATION'", d.Name, d.Name)
		}
		e.DocDate = today.Format(time.DateOnly)
		e.Sender = d.OfficialAddress
		fill = func(e *mailstore.DocEntry) {
			e.Notation = signing.Notation(e.Number, d.Code)
			if d.OrganID != "" {
				e.DocumentID = signing.DocumentID(d.OrganID, today, e.Number, d.Code)
			}
		}
	case mailstore.DocIn:
		if p.Organ == "" || p.Notation == "" || p.Date.IsZero() {
			return mailstore.DocEntry{}, errors.New("registry: an incoming paper document needs its issuing organ, number and notation, and date")
		}
		e.Organ, e.Notation, e.DocDate = p.Organ, p.Notation, p.Date.Format(time.DateOnly)
	default:
		return mailstore.DocEntry{}, fmt.Errorf("registry: register %q: want out or in", p.Direction)
	}
	return r.Store.Register(ctx, e, fill)
}
