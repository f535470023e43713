package registry

import (
	"bytes"
	"context"
	"crypto/rand"
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

// A document's life after it was registered (Decree 30/2020 Art. 18.4,
// 21.2, 23.4): the sender recalls it, the recipient returns it or reports
// how far it is processed. Each of these is a notice signed with the
// agency's seal and carried between servers as receipts are
// (signing.Receipt, with the event's edXML status code), verified on
// arrival, and recorded as one step with the register change it causes:
// the notice is queued exactly when the change is committed.

// Folder the recipients' copies of a recalled document are moved to.
const RecalledFolder = "Văn bản thu hồi"

// keepOnRecall are the special-use mailboxes a recall leaves its copies in.
// Every other copy the agency's accounts hold — in INBOX, in a folder a
// civil servant filed it in, in the clerks' "Văn bản đến" — moves to
// RecalledFolder, where no one takes it for a document in force; the
// register keeps the original. A copy in Trash was thrown away: moving it
// would bring it back into view.
var keepOnRecall = []string{`\Trash`}

// Register statuses of the lifecycle, besides StatusSent and
// StatusReceived.
const (
	StatusRecalling  = "recalling"  // out: recall sent, not every recipient agency withdrew it yet
	StatusRecalled   = "recalled"   // out: every recipient agency withdrew it
	StatusReturned   = "returned"   // out: every recipient agency returned it; in: returned to the sender
	StatusWithdrawn  = "withdrawn"  // in: withdrawn at the sender's request, kept with its evidence
	StatusAssigned   = "assigned"   // in: 04, assigned for processing
	StatusProcessing = "processing" // in: 05
	StatusDone       = "done"       // in: 06
)

// States are the processing states a receiving clerk reports (doc state),
// with the event and edXML status code sent back for each.
var States = map[string]struct {
	Event signing.Event
	Code  string
}{
	StatusAssigned:   {signing.Assigned, edxml.StatusAssigned},
	StatusProcessing: {signing.InProgress, edxml.StatusProcessing},
	StatusDone:       {signing.Done, edxml.StatusDone},
}

// active are the statuses of an incoming document that may still be
// processed, returned (received only) or recalled.
var active = []string{StatusReceived, StatusAssigned, StatusProcessing, StatusDone}

// ErrState marks a lifecycle action the document's register line does not
// allow (a document recalled twice, a withdrawn one reported done).
var ErrState = errors.New("not allowed in the document's state")

// Entry returns the one line of a register that holds documentID, in
// domain's register or, with domain "", in any hosted agency's.
func (r *Registry) Entry(ctx context.Context, domain string, dir mailstore.Direction, documentID string) (mailstore.DocEntry, error) {
	es, err := r.Store.Docs(ctx, mailstore.DocQuery{Domain: domain, Direction: dir, DocumentID: documentID})
	if err != nil {
		return mailstore.DocEntry{}, err
	}
	name := map[mailstore.Direction]string{mailstore.DocOut: "outgoing (sổ đi)", mailstore.DocIn: "incoming (sổ đến)"}[dir]
	switch {
	case len(es) == 0:
		return mailstore.DocEntry{}, fmt.Errorf("registry: no document %s in the %s register here: %w", documentID, name, mailstore.ErrNotFound)
	case len(es) > 1:
		var ds []string
		for _, e := range es {
			ds = append(ds, e.Domain)
		}
		return mailstore.DocEntry{}, fmt.Errorf("registry: document %s is in the %s registers of %s: name the domain", documentID, name, strings.Join(ds, ", "))
	}
	e := es[0]
	if e.Medium == mailstore.MediumPaper || e.MessageID == "" {
		return mailstore.DocEntry{}, fmt.Errorf("registry: %s is a paper document: its recall, return and status go on paper: %w", documentID, ErrState)
	}
	return e, nil
}

func refOf(e mailstore.DocEntry) mailstore.DocRef {
	return mailstore.DocRef{Domain: e.Domain, Direction: e.Direction, MessageID: e.MessageID}
}

func fileDigests(fs []mailstore.DocFile) []signing.FileDigest {
	out := make([]signing.FileDigest, len(fs))
	for i, f := range fs {
		out[i] = signing.FileDigest{Name: f.Name, SHA256: f.SHA256}
	}
	return out
}

// when is how notes in the register date what happened.
func (r *Registry) when(t time.Time) string {
	return t.In(r.loc()).Format("02/01/2006 15:04")
}

// Recall asks every agency a released document went to to withdraw it
// (thu hồi, Decree 30/2020 Art. 18.4.b): a notice with status 13 and the
// reason, signed with the agency's seal, to the recipients of each agency,
// committed with the register line's new status (recalling) and the
// evidence. Each receiving server withdraws its copy and answers 15, or 16
// with its reason; the answers are recorded as they arrive, and the line
// becomes recalled when every agency withdrew it.
func (r *Registry) Recall(ctx context.Context, domain, documentID, reason string) (mailstore.DocEntry, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return mailstore.DocEntry{}, errors.New("registry: a recall needs its reason (lý do thu hồi)")
	}
	e, err := r.Entry(ctx, domain, mailstore.DocOut, documentID)
	if err != nil {
		return e, err
	}
	if e.Status != StatusSent {
		return e, fmt.Errorf("registry: %s is %s, not sent: %w", e.Notation, e.Status, ErrState)
	}
	d, err := r.Store.Domain(ctx, e.Domain)
	if err != nil {
		return e, err
	}
	now := r.now()
	err = r.run(ctx, func(p *step) error {
		// The line's update first: answers from agencies hosted here are
		// filed in this step, after it.
		p.Updates = append(p.Updates, mailstore.DocUpdate{Ref: refOf(e), Status: StatusRecalling, When: []string{StatusSent},
			Note: "Thu hồi / recalled " + r.when(now) + ": " + reason})
		for _, rcpts := range byDomain(e.Recipients) {
			ev := signing.Evidence{Event: signing.RecallRequest, StatusCode: edxml.StatusRecallRequest, Reason: reason,
				DocumentID: e.DocumentID, MessageID: e.MessageID, Files: fileDigests(e.Files), Time: now, Server: r.Hostname,
				From: d.OfficialAddress, To: rcpts}
			if err := r.notify(ctx, d.Name, ev, p); err != nil {
				return err
			}
		}
		p.done = append(p.done, func() {
			r.log().Info("registry: document recalled", "doc", e.DocumentID, "domain", e.Domain, "rcpts", len(e.Recipients))
		})
		return nil
	})
	if errors.Is(err, mailstore.ErrExists) {
		return e, fmt.Errorf("registry: %s was recalled or changed meanwhile: %w", e.Notation, ErrState)
	}
	if err != nil {
		return e, err
	}
	return r.Store.DocByMessage(ctx, refOf(e))
}

// byDomain groups addresses by domain, in the order the domains first
// appear.
func byDomain(addrs []string) [][]string {
	var out [][]string
	at := map[string]int{}
	for _, a := range addrs {
		d := domainOf(a)
		i, ok := at[d]
		if !ok {
			i = len(out)
			at[d] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], a)
	}
	return out
}

// file records in step p, for agency g, a receipt or notice attester signed
// (verified): a recall is carried out, anything else answers a document g
// sent.
func (r *Registry) file(ctx context.Context, g *agency, ev *signing.Evidence, attester string, msg []byte, now time.Time, p *step) error {
	if ev.Event == signing.RecallRequest {
		return r.withdraw(ctx, g, ev, attester, msg, now, p)
	}
	return r.fileReceipt(ctx, g, ev, attester, msg, now, p)
}

// withdraw carries out a recall at agency g in step p (Art. 18.4.b): the
// incoming register line is marked withdrawn, kept with its evidence, and
// every copy g's accounts hold moves to "Văn bản thu hồi" (keepOnRecall); the
// recall itself goes to the recipients and the clerks; and the sender is
// answered 15 (agreed), or 16 with the reason when g has no such document
// from it.
func (r *Registry) withdraw(ctx context.Context, g *agency, ev *signing.Evidence, attester string, msg []byte, now time.Time, p *step) error {
	// The request first: the step's Once is the first evidence received.
	req := *ev
	req.From = attester
	p.Evidence = append(p.Evidence, evidenceRow(g.domain.Name, mailstore.EvidenceReceived, req, "", msg))
	answer := signing.Evidence{Event: signing.RecallAgreed, StatusCode: edxml.StatusRecallAgreed, DocumentID: ev.DocumentID,
		MessageID: ev.MessageID, Files: ev.Files, Time: now, Server: r.Hostname, From: ev.From, To: g.rcpts}
	e, why, err := r.recalled(ctx, g, ev, attester)
	if err != nil {
		return err
	}
	var ref *mailstore.DocRef
	switch {
	case e == nil:
		answer.Event, answer.StatusCode, answer.Reason = signing.RecallRefused, edxml.StatusRecallRefused, why
	case e.Status == StatusWithdrawn:
		ref = new(refOf(*e)) // recalled again: still withdrawn
	case e.Status == StatusReturned:
		answer.Event, answer.StatusCode = signing.RecallRefused, edxml.StatusRecallRefused
		answer.Reason = "Văn bản đã được trả lại nơi gửi / the document was returned to the sender"
		ref = new(refOf(*e))
	default:
		ref = new(refOf(*e))
		p.Updates = append(p.Updates, mailstore.DocUpdate{Ref: *ref, Status: StatusWithdrawn, When: []string{e.Status},
			Note: "Thu hồi theo yêu cầu của / recalled by " + attester + " " + r.when(ev.Time) + ": " + ev.Reason})
		p.Moves = append(p.Moves, mailstore.DocMove{Ref: *ref, To: RecalledFolder, Keep: keepOnRecall})
	}
	targets := slices.Clone(g.targets)
	clerks, err := r.Store.Clerks(ctx, g.domain.Name)
	if err != nil {
		return err
	}
	for _, c := range clerks {
		if !slices.ContainsFunc(targets, func(t mailstore.Target) bool { return t.AccountID == c.ID && t.Mailbox == "" }) {
			targets = append(targets, mailstore.Target{AccountID: c.ID})
		}
	}
	p.deliver(msg, now, targets)
	p.done = append(p.done, func() {
		r.log().Info("registry: recall", "doc", ev.DocumentID, "domain", g.domain.Name, "from", attester, "answer", answer.StatusCode, "reason", answer.Reason)
	})
	return r.answer(ctx, g, answer, ref, p)
}

// recalled finds the incoming register line of g a recall attester signed
// is about: the same document and message, from attester's agency. It
// returns nil and why when there is none.
func (r *Registry) recalled(ctx context.Context, g *agency, ev *signing.Evidence, attester string) (*mailstore.DocEntry, string, error) {
	es, err := r.Store.Docs(ctx, mailstore.DocQuery{Domain: g.domain.Name, Direction: mailstore.DocIn, DocumentID: ev.DocumentID})
	if err != nil {
		return nil, "", err
	}
	for _, e := range es {
		if e.MessageID != normID(ev.MessageID) && e.MessageID != edxmlMessageID(ev.DocumentID, domainOf(attester)) {
			continue
		}
		if domainOf(e.Sender) != domainOf(attester) {
			return nil, "Văn bản không do " + domainOf(attester) + " gửi / the document was not sent by " + domainOf(attester), nil
		}
		return &e, "", nil
	}
	return nil, "Không có văn bản " + ev.DocumentID + " trong sổ văn bản đến / no such document in the incoming register", nil
}

// Return sends a received document back to its sender the day it arrived
// (trả lại, Decree 30/2020 Art. 21.2.b: sent to the wrong agency, or not
// fit to be received): a notice with status 02 and the reason, committed
// with the register line's new status (returned). The sender's register
// shows it returned.
func (r *Registry) Return(ctx context.Context, domain, documentID, reason string) (mailstore.DocEntry, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return mailstore.DocEntry{}, errors.New("registry: a return needs its reason (lý do trả lại)")
	}
	e, err := r.Entry(ctx, domain, mailstore.DocIn, documentID)
	if err != nil {
		return e, err
	}
	if e.Status != StatusReceived {
		return e, fmt.Errorf("registry: %s is %s: only a document just received can be returned: %w", e.Notation, e.Status, ErrState)
	}
	now := r.now()
	if !midnight(e.Time.In(r.loc())).Equal(midnight(now.In(r.loc()))) {
		return e, fmt.Errorf("registry: %s arrived on %s: a document is returned the day it arrives (Decree 30/2020 Art. 21.2); "+
			"văn bản chỉ được trả lại trong ngày nhận: %w", e.Notation, e.Time.In(r.loc()).Format("02/01/2006"), ErrState)
	}
	ev := signing.Evidence{Event: signing.Returned, StatusCode: edxml.StatusRefused, Reason: reason}
	return r.report(ctx, e, ev, StatusReturned, []string{StatusReceived}, "Trả lại / returned "+r.when(now)+": "+reason)
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// SetState records how far a received document is processed (Art. 23.4:
// assigned, processing, done) and reports it to the sender with status 04,
// 05 or 06, in one step.
func (r *Registry) SetState(ctx context.Context, domain, documentID, state string) (mailstore.DocEntry, error) {
	st, ok := States[state]
	if !ok {
		return mailstore.DocEntry{}, fmt.Errorf("registry: state %q: want assigned, processing or done", state)
	}
	e, err := r.Entry(ctx, domain, mailstore.DocIn, documentID)
	if err != nil {
		return e, err
	}
	if e.Status == state || !slices.Contains(active, e.Status) {
		return e, fmt.Errorf("registry: %s is %s already: %w", e.Notation, e.Status, ErrState)
	}
	return r.report(ctx, e, signing.Evidence{Event: st.Event, StatusCode: st.Code}, state, active, "")
}

// report sets a received document's status and sends its sender the notice
// ev (Event, StatusCode, Reason), in one step.
func (r *Registry) report(ctx context.Context, e mailstore.DocEntry, ev signing.Evidence, status string, when []string, note string) (mailstore.DocEntry, error) {
	if known, err := r.knownAgency(ctx, domainOf(e.Sender)); err != nil {
		return e, err
	} else if !known {
		return e, fmt.Errorf("registry: %s was sent by %s, not a known agency: there is no one to notify; "+
			"add it with 'sealmail peer add %s --organ-id ID --seal-ca FILE'", e.Notation, e.Sender, domainOf(e.Sender))
	}
	d, err := r.Store.Domain(ctx, e.Domain)
	if err != nil {
		return e, err
	}
	// The notice must go: a seal that cannot sign fails the step.
	if _, err := r.seal(d.Name); err != nil {
		return e, fmt.Errorf("registry: %s has no usable seal: %w", d.Name, err)
	}
	now := r.now()
	ev.DocumentID, ev.MessageID, ev.Files, ev.Time, ev.Server, ev.From, ev.To = e.DocumentID, e.MessageID, fileDigests(e.Files), now, r.Hostname, e.Sender, e.Recipients
	ref := refOf(e)
	err = r.run(ctx, func(p *step) error {
		p.Updates = append(p.Updates, mailstore.DocUpdate{Ref: ref, Status: status, When: when, Note: note})
		p.done = append(p.done, func() {
			r.log().Info("registry: document status", "doc", e.DocumentID, "domain", e.Domain, "status", ev.StatusCode)
		})
		return r.answer(ctx, &agency{domain: d}, ev, &ref, p)
	})
	if errors.Is(err, mailstore.ErrExists) {
		return e, fmt.Errorf("registry: %s changed meanwhile: %w", e.Notation, ErrState)
	}
	if err != nil {
		return e, err
	}
	return r.Store.DocByMessage(ctx, ref)
}

// senderUpdate is what an answer from attester changes in the register line
// e of the document it answers, besides its acknowledgement: a note for a
// return or a recall answered, and the status once every recipient agency
// returned it (returned) or withdrew it (recalled). acks are the answers
// recorded so far, this step's included.
func (r *Registry) senderUpdate(e *mailstore.DocEntry, ev *signing.Evidence, attester string, acks []mailstore.DocAck) *mailstore.DocUpdate {
	u := &mailstore.DocUpdate{Ref: refOf(*e)}
	switch ev.StatusCode {
	case edxml.StatusRefused:
		u.Note = "Bị trả lại bởi / returned by " + attester + " " + r.when(ev.Time) + ": " + ev.Reason
	case edxml.StatusRecallAgreed:
		u.Note = attester + " đồng ý thu hồi / withdrew it " + r.when(ev.Time)
	case edxml.StatusRecallRefused:
		u.Note = attester + " từ chối thu hồi / refused the recall " + r.when(ev.Time) + ": " + ev.Reason
	}
	latest := map[string]string{} // recipient domain → its latest status code
	for _, a := range acks {
		latest[domainOf(a.Party)] = a.StatusCode
	}
	all := func(code string) bool {
		for _, rcpts := range byDomain(e.Recipients) {
			if latest[domainOf(rcpts[0])] != code {
				return false
			}
		}
		return true
	}
	switch {
	case e.Status == StatusRecalling && all(edxml.StatusRecallAgreed):
		u.Status = StatusRecalled
	case e.Status == StatusSent && all(edxml.StatusRefused):
		u.Status = StatusReturned
	case e.Status == StatusReturned && ev.StatusCode != edxml.StatusRefused:
		u.Status = StatusSent // an agency took it after all (a genuine copy after a forged one)
	}
	if u.Note == "" && u.Status == "" {
		return nil
	}
	return u
}

// Status is one status of a document as an agency's evidence records it:
// sent or received, by whom, when.
type Status struct {
	Time     time.Time `json:"time"`
	Code     string    `json:"code"`
	Name     [2]string `json:"name"`     // Vietnamese, English
	Event    string    `json:"event"`    // the receipt's or notice's event
	Received bool      `json:"received"` // from another agency (false: sent from here)
	Agency   string    `json:"agency"`   // the agency that says it
	Reason   string    `json:"reason,omitempty"`
}

// Statuses lists every status of register line e that its agency's
// evidence holds (by document ID, which names the issuing organ), oldest
// first: those received from the agencies it was sent to (or
// from its sender), and those sent from here.
func (r *Registry) Statuses(ctx context.Context, e mailstore.DocEntry) ([]Status, error) {
	evs, err := r.Store.Evidence(ctx, mailstore.EvidenceQuery{Domain: e.Domain, DocumentID: e.DocumentID})
	if err != nil {
		return nil, err
	}
	d, err := r.Store.Domain(ctx, e.Domain)
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, ev := range evs {
		// A recall is the sender's to send and the recipient's to receive,
		// every other status the other way round: so a document an agency
		// sends itself lists each status once on each line.
		sent := (ev.Event == string(signing.RecallRequest)) == (e.Direction == mailstore.DocOut)
		if ev.StatusCode == "" || sent != (ev.Origin == mailstore.EvidenceIssued) {
			continue // the sender's own acceptance receipt, or the other line's
		}
		s := Status{Time: ev.Time, Code: ev.StatusCode, Name: edxml.StatusNames[ev.StatusCode], Event: ev.Event,
			Received: ev.Origin == mailstore.EvidenceReceived, Agency: cmpOr(d.OfficialAddress, d.Name), Reason: ev.Reason}
		if s.Received {
			s.Agency = ev.Sender
		}
		out = append(out, s)
	}
	return out, nil
}

// Header fields a clerk sets on a release that corrects a document released
// before (Decree 30/2020 Art. 18.3): its DocumentId, and why.
const (
	fieldUpdates  = "Official-Document-Updates"  // đính chính, cập nhật: edXML BussinessDocType 2
	fieldReplaces = "Official-Document-Replaces" // thay thế: 3
	fieldReason   = "Official-Document-Reason"
)

// correction is what a release corrects: the register line of the
// document it updates or replaces, and why.
type correction struct {
	relation string // mailstore.RelationUpdates or RelationReplaces
	old      mailstore.DocEntry
	reason   string
}

// correction reads the fields of a release that corrects a document domain
// released before; nil for a new document. A document that is not in
// domain's outgoing register, or was recalled, is refused.
func (r *Registry) correction(ctx context.Context, h mail.Header, domain string) (*correction, error) {
	upd, _ := h.Text(fieldUpdates)
	rep, _ := h.Text(fieldReplaces)
	upd, rep = strings.TrimSpace(upd), strings.TrimSpace(rep)
	if upd == "" && rep == "" {
		return nil, nil
	}
	if upd != "" && rep != "" {
		return nil, fmt.Errorf("%w: a document updates (%s) or replaces (%s) another, not both", ErrRejected, fieldUpdates, fieldReplaces)
	}
	c := &correction{relation: mailstore.RelationUpdates}
	id := upd
	if rep != "" {
		c.relation, id = mailstore.RelationReplaces, rep
	}
	reason, _ := h.Text(fieldReason)
	if c.reason = strings.TrimSpace(reason); c.reason == "" {
		return nil, fmt.Errorf("%w: an update or replacement needs its reason in %s (lý do đính chính, thay thế)", ErrRejected, fieldReason)
	}
	old, err := r.Entry(ctx, domain, mailstore.DocOut, id)
	if errors.Is(err, mailstore.ErrNotFound) || errors.Is(err, ErrState) {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	if err != nil {
		return nil, err
	}
	if old.Status == StatusVoid || old.Status == StatusRecalled || old.Status == StatusRecalling {
		return nil, fmt.Errorf("%w: %s is %s: there is nothing to correct", ErrRejected, old.Notation, old.Status)
	}
	c.old = old
	return c, nil
}

// bussiness is the manifest's account of the correction, naming the
// organs the new document goes to.
func (c *correction) bussiness(to []signing.Organ) *edxml.Bussiness {
	typ := edxml.DocUpdate
	if c.relation == mailstore.RelationReplaces {
		typ = edxml.DocReplace
	}
	ri := edxml.ReplacementInfo{DocumentID: c.old.DocumentID}
	for _, o := range to {
		if o.OrganID != "" && !slices.Contains(ri.OrganIDs, o.OrganID) {
			ri.OrganIDs = append(ri.OrganIDs, o.OrganID)
		}
	}
	return &edxml.Bussiness{BussinessDocType: typ, BussinessDocReason: c.reason, ReplacementInfoList: []edxml.ReplacementInfo{ri}}
}

// note is the register note linking a correction and what it corrects:
// on the new document's line (forward) or the old one's.
func (c *correction) note(other string, forward bool) string {
	return relationNote(c.relation, other, c.reason, forward)
}

func relationNote(relation, other, reason string, forward bool) string {
	var words [2]string
	switch {
	case relation == mailstore.RelationUpdates && forward:
		words = [2]string{"Đính chính văn bản", "updates"}
	case relation == mailstore.RelationUpdates:
		words = [2]string{"Được đính chính bởi", "updated by"}
	case forward:
		words = [2]string{"Thay thế văn bản", "replaces"}
	default:
		words = [2]string{"Được thay thế bởi", "replaced by"}
	}
	if reason == "" { // a package from other software may give none
		return words[0] + " / " + words[1] + " " + other
	}
	return words[0] + " / " + words[1] + " " + other + ": " + reason
}

// linked is what an arriving document that corrects another changes in
// g's incoming register, in step p: the new line names the old one, and
// the old one, when g received it from the same sender, the new one.
func (r *Registry) linked(ctx context.Context, g *agency, m *signing.Manifest, e *mailstore.DocEntry, p *step) error {
	b := m.Bussiness
	if b == nil || (b.BussinessDocType != edxml.DocUpdate && b.BussinessDocType != edxml.DocReplace) || len(b.ReplacementInfoList) == 0 {
		return nil
	}
	e.Relation, e.Related = mailstore.RelationUpdates, b.ReplacementInfoList[0].DocumentID
	if b.BussinessDocType == edxml.DocReplace {
		e.Relation = mailstore.RelationReplaces
	}
	e.Notes = joinNonEmpty("; ", e.Notes, relationNote(e.Relation, e.Related, b.BussinessDocReason, true))
	olds, err := r.Store.Docs(ctx, mailstore.DocQuery{Domain: g.domain.Name, Direction: mailstore.DocIn, DocumentID: e.Related})
	if err != nil {
		return err
	}
	for _, old := range olds {
		if domainOf(old.Sender) == domainOf(e.Sender) && old.MessageID != "" {
			p.Updates = append(p.Updates, mailstore.DocUpdate{Ref: refOf(old),
				Note: relationNote(e.Relation, e.DocumentID, b.BussinessDocReason, false) + " (số đến " + fmt.Sprint(e.Number) + ")"})
		}
	}
	return nil
}

// Correct releases a document that updates or replaces (relation) the one
// domain released as oldID (Decree 30/2020 Art. 18.3), as its clerk would
// by mail: From the official address, to the same recipients, with files
// (the main PDF first, signed by the person with authority), subject (the
// old one's when empty) and the reason. Outgoing numbers, seals and sends
// it; both registers link the two documents. It returns the new line.
func (r *Registry) Correct(ctx context.Context, domain, oldID, relation, reason, subject string, files []signing.File) (mailstore.DocEntry, error) {
	old, err := r.Entry(ctx, domain, mailstore.DocOut, oldID)
	if err != nil {
		return mailstore.DocEntry{}, err
	}
	if len(files) == 0 {
		return mailstore.DocEntry{}, errors.New("registry: the new document needs its files, the main PDF first")
	}
	d, err := r.Store.Domain(ctx, old.Domain)
	if err != nil {
		return mailstore.DocEntry{}, err
	}
	clerk, err := r.Store.Account(ctx, old.Sender)
	if err != nil {
		return mailstore.DocEntry{}, fmt.Errorf("registry: %s was released by %s: %w", old.Notation, old.Sender, err)
	}
	field := map[string]string{mailstore.RelationUpdates: fieldUpdates, mailstore.RelationReplaces: fieldReplaces}[relation]
	if field == "" {
		return mailstore.DocEntry{}, fmt.Errorf("registry: relation %q: want %s or %s", relation, mailstore.RelationUpdates, mailstore.RelationReplaces)
	}
	var h mail.Header
	h.SetDate(r.now())
	h.SetAddressList("From", []*mail.Address{{Name: d.OrganName, Address: d.OfficialAddress}})
	var to []*mail.Address
	for _, a := range old.Recipients {
		to = append(to, &mail.Address{Address: a})
	}
	h.SetAddressList("To", to)
	h.SetSubject(cmpOr(strings.TrimSpace(subject), old.Subject))
	messageID := strings.ToLower(rand.Text()) + "@" + d.Name
	h.SetMessageID(messageID)
	h.SetText(field, old.DocumentID)
	h.SetText(fieldReason, reason)
	var b bytes.Buffer
	w, tw, err := textWriter(&b, h)
	if err != nil {
		return mailstore.DocEntry{}, err
	}
	fmt.Fprintf(tw, "%s\r\n", relationNote(relation, old.Notation+" ("+old.DocumentID+")", reason, true))
	if err := tw.Close(); err != nil {
		return mailstore.DocEntry{}, err
	}
	for _, f := range files {
		if err := attachFile(w, f.Name, cmpOr(f.ContentType, "application/pdf"), f.Data); err != nil {
			return mailstore.DocEntry{}, err
		}
	}
	if err := w.Close(); err != nil {
		return mailstore.DocEntry{}, err
	}
	local, _, remote, err := r.resolve(ctx, old.Recipients)
	if err != nil {
		return mailstore.DocEntry{}, err
	}
	sealed, err := r.Outgoing(ctx, clerk, d.OfficialAddress, local, remote, b.Bytes())
	if err != nil {
		return mailstore.DocEntry{}, err
	}
	if sealed == nil {
		return mailstore.DocEntry{}, fmt.Errorf("registry: %s cannot release documents (a clerk of %s with its official address)", clerk.Address, d.Name)
	}
	return r.Store.DocByMessage(ctx, mailstore.DocRef{Domain: d.Name, Direction: mailstore.DocOut, MessageID: normID(messageID)})
}
