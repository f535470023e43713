package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrNumberTaken reports that a register line of a DocCommit did not carry
// the register's next number: someone took it since NextDocNumber. The
// caller builds its commit again with the new number.
var ErrNumberTaken = errors.New("register number taken meanwhile")

// DocCommit is one step of the registry — a document released, received,
// answered or withdrawn — with everything that step changes: the register
// lines, the copies delivered, the messages queued for other servers (the
// document itself, receipts), the evidence and the acknowledgements.
// CommitDoc applies it in one transaction, so that after a crash at any
// point either all of it is there or none of it is: no document registered
// and not delivered, none delivered and not registered, and no receipt
// queued twice or lost.
type DocCommit struct {
	// Entries are new register lines. Each Number must be the next number
	// of its register (NextDocNumber); Notation, DocumentID and the content
	// delivered may be derived from it.
	Entries []NewDoc
	// Updates change the status and notes of existing lines (a document
	// recalled, returned, in progress).
	Updates    []DocUpdate
	Deliveries []DocDelivery
	Queue      []QueuedMessage
	Evidence   []Evidence
	Acks       []EntryAck
	// Moves move messages already delivered (a recalled document's copies)
	// to another mailbox.
	Moves []DocMove
	// Once, if set, makes the commit happen once: when evidence with its
	// Domain, Origin, Event, DocumentID, MessageID, StatusCode, Sender and
	// Time is already recorded, CommitDoc changes nothing and returns
	// ErrExists. A receipt that arrives twice is recorded once.
	Once *Evidence
}

// NewDoc is a new register line and the content it was delivered as,
// which the register keeps (DocOriginal).
type NewDoc struct {
	DocEntry
	Original []byte
}

// DocRef names a register line by what both sides know of it.
type DocRef struct {
	Domain    string
	Direction Direction
	MessageID string
}

// DocUpdate sets a register line's status and appends to its notes.
type DocUpdate struct {
	Ref    DocRef
	Status string // "" keeps it
	Note   string // appended to the notes, "; " between
	// When, if not empty, are the statuses the line may have: with any
	// other CommitDoc fails with ErrExists, changing nothing (a recall or
	// return done meanwhile by another process).
	When []string
}

// EntryAck is an acknowledgement of a register line, new or existing.
type EntryAck struct {
	Ref DocRef
	Ack DocAck
}

// DocDelivery is one content delivered to several mailboxes.
type DocDelivery struct {
	Content []byte
	Date    time.Time
	Targets []Target
}

// QueuedMessage is a message for the outbound queue.
type QueuedMessage struct {
	From    string
	Rcpts   []string
	Content []byte
}

// DocMove moves every copy of a register line's original (a recalled
// document) that an account of the line's domain holds, in whatever
// mailbox it was delivered, filed or copied to, into the mailbox To of the
// same account, created when missing. Copies already in To stay, and so do
// those in a mailbox whose special-use attribute is in Keep (\Trash: what
// the user threw away is not brought back into view).
type DocMove struct {
	Ref  DocRef
	To   string
	Keep []string
}

// DocCommitted is what CommitDoc did: the new lines with their IDs, where
// each delivery landed (per target, as Deliver reports it), and the number
// of messages moved.
type DocCommitted struct {
	Entries    []DocEntry
	Deliveries [][]Delivered
	Moved      int
}

// NextDocNumber returns the number the next line of a register's series
// will take.
func (s *Store) NextDocNumber(ctx context.Context, domain string, dir Direction, series string, year int) (int, error) {
	var n int
	err := s.read(ctx, func(db *sql.DB) error {
		err := db.QueryRowContext(ctx, `SELECT last + 1 FROM doc_numbers WHERE domain=? AND direction=? AND series=? AND year=?`,
			normAddr(domain), dir, series, year).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			n, err = 1, nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("mailstore: next number of %s %s %d: %w", domain, dir, year, err)
	}
	return n, nil
}

// DocByMessage returns the line of a register that holds a message.
func (s *Store) DocByMessage(ctx context.Context, ref DocRef) (DocEntry, error) {
	es, err := s.Docs(ctx, DocQuery{Domain: ref.Domain, Direction: ref.Direction, MessageID: ref.MessageID})
	if err != nil {
		return DocEntry{}, err
	}
	if len(es) == 0 {
		return DocEntry{}, fmt.Errorf("mailstore: register %s %s: message %s: %w", ref.Domain, ref.Direction, ref.MessageID, ErrNotFound)
	}
	return es[0], nil
}

// CommitDoc applies c in one transaction (see DocCommit). It fails with
// ErrExists, changing nothing, when a register already holds the message of
// one of c.Entries (the step was done before) or c.Once is recorded, and
// with ErrNumberTaken when a number is no longer the next.
func (s *Store) CommitDoc(ctx context.Context, c DocCommit) (DocCommitted, error) {
	for i := range c.Entries {
		e := &c.Entries[i]
		e.Domain = normAddr(e.Domain)
		if e.Medium == "" {
			e.Medium = MediumElectronic
		}
		if e.Domain == "" || (e.Direction != DocOut && e.Direction != DocIn) || e.Year < 1 || e.Number < 1 ||
			(e.Series != SeriesOrdinary && e.Series != SeriesConfidential) || (e.Medium != MediumElectronic && e.Medium != MediumPaper) {
			return DocCommitted{}, fmt.Errorf("mailstore: commit document: %w: domain %q, direction %q, series %q, medium %q, year %d, number %d",
				ErrInvalid, e.Domain, e.Direction, e.Series, e.Medium, e.Year, e.Number)
		}
	}
	// Content is hashed and parsed here, so that the writer spends its
	// time on SQL only.
	var blobs []*incoming
	byHash := map[Sum]*incoming{}
	add := func(content []byte) *incoming {
		b, _ := newBlob(Bytes(content)) // read from memory: cannot fail
		if old := byHash[b.hash]; old != nil {
			return old
		}
		byHash[b.hash] = b
		blobs = append(blobs, b)
		return b
	}
	var p docBlobs
	for _, e := range c.Entries {
		var b *incoming
		if e.Original != nil {
			b = add(e.Original)
		}
		p.entries = append(p.entries, b)
	}
	for _, d := range c.Deliveries {
		var b *incoming
		if len(d.Targets) > 0 {
			b = add(d.Content)
		}
		p.deliveries = append(p.deliveries, b)
	}
	for _, q := range c.Queue {
		p.queue = append(p.queue, add(q.Content))
	}
	var out DocCommitted
	err := s.storeContent(ctx, blobs, func(tx *sql.Tx) error {
		var err error
		out, err = s.commitDoc(tx, &c, &p)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrExists) || errors.Is(err, ErrNumberTaken) {
			return DocCommitted{}, err
		}
		return DocCommitted{}, fmt.Errorf("mailstore: commit document: %w", err)
	}
	return out, nil
}

// docBlobs is the content of a DocCommit's entries, deliveries and queued
// messages, in their order (nil where there is none).
type docBlobs struct{ entries, deliveries, queue []*incoming }

func (s *Store) commitDoc(tx *sql.Tx, c *DocCommit, p *docBlobs) (DocCommitted, error) {
	var out DocCommitted
	if c.Once != nil {
		o := c.Once
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM doc_evidence WHERE domain=? AND origin=? AND event=? AND document_id=?
			AND message_id=? AND status_code=? AND sender=? AND time=?`,
			normAddr(o.Domain), o.Origin, o.Event, o.DocumentID, o.MessageID, o.StatusCode, o.Sender, o.Time.UnixNano()).Scan(&n); err != nil {
			return out, err
		}
		if n > 0 {
			return out, fmt.Errorf("evidence %s %s of %s: %w", o.Event, o.StatusCode, o.DocumentID, ErrExists)
		}
	}
	for i, ne := range c.Entries {
		e := ne.DocEntry
		if e.MessageID != "" {
			var id int64
			err := tx.QueryRow(`SELECT id FROM doc_register WHERE domain=? AND direction=? AND message_id=?`, e.Domain, e.Direction, e.MessageID).Scan(&id)
			if err == nil {
				return out, fmt.Errorf("register %s %s: message %s is entry %d: %w", e.Domain, e.Direction, e.MessageID, id, ErrExists)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return out, err
			}
		}
		var last int
		err := tx.QueryRow(`SELECT last FROM doc_numbers WHERE domain=? AND direction=? AND series=? AND year=?`,
			e.Domain, e.Direction, e.Series, e.Year).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			last, err = 0, nil
		}
		if err != nil {
			return out, err
		}
		if e.Number != last+1 {
			return out, fmt.Errorf("register %s %s%s %d: number %d, next is %d: %w", e.Domain, e.Direction, e.Series, e.Year, e.Number, last+1, ErrNumberTaken)
		}
		if _, err := tx.Exec(`INSERT INTO doc_numbers (domain, direction, series, year, last) VALUES (?,?,?,?,?)
			ON CONFLICT (domain, direction, series, year) DO UPDATE SET last = excluded.last`,
			e.Domain, e.Direction, e.Series, e.Year, e.Number); err != nil {
			return out, err
		}
		if err := insertDoc(tx, &e); err != nil {
			return out, err
		}
		if b := p.entries[i]; b != nil {
			blobID, err := s.insertBlob(tx, b, 1)
			if err != nil {
				return out, err
			}
			if _, err := tx.Exec(`UPDATE doc_register SET blob_id=? WHERE id=?`, blobID, e.ID); err != nil {
				return out, err
			}
		}
		out.Entries = append(out.Entries, e)
	}
	for _, u := range c.Updates {
		id, err := docID(tx, u.Ref)
		if err != nil {
			return out, err
		}
		if len(u.When) > 0 {
			var status string
			if err := tx.QueryRow(`SELECT status FROM doc_register WHERE id=?`, id).Scan(&status); err != nil {
				return out, err
			}
			if !slices.Contains(u.When, status) {
				return out, fmt.Errorf("register %s %s: message %s is %s now: %w", u.Ref.Domain, u.Ref.Direction, u.Ref.MessageID, status, ErrExists)
			}
		}
		if _, err := tx.Exec(`UPDATE doc_register SET status = CASE WHEN ?1 = '' THEN status ELSE ?1 END,
			notes = CASE WHEN ?2 = '' THEN notes WHEN notes = '' THEN ?2 ELSE notes || '; ' || ?2 END WHERE id=?3`,
			u.Status, u.Note, id); err != nil {
			return out, err
		}
	}
	for _, a := range c.Acks {
		id, err := docID(tx, a.Ref)
		if err != nil {
			return out, err
		}
		if err := upsertAck(tx, id, a.Ack); err != nil {
			return out, err
		}
	}
	for i, d := range c.Deliveries {
		ds, err := s.deliverTx(tx, d, p.deliveries[i])
		if err != nil {
			return out, err
		}
		out.Deliveries = append(out.Deliveries, ds)
	}
	for i, q := range c.Queue {
		blobID, err := s.insertBlob(tx, p.queue[i], 1)
		if err != nil {
			return out, err
		}
		if _, err := insertQueue(tx, q.From, q.Rcpts, blobID, now()); err != nil {
			return out, err
		}
	}
	for _, m := range c.Moves {
		n, err := moveCopies(tx, m)
		if err != nil {
			return out, err
		}
		out.Moved += n
	}
	for _, e := range c.Evidence {
		if _, err := appendEvidence(tx, e); err != nil {
			return out, err
		}
	}
	return out, nil
}

func docID(tx *sql.Tx, ref DocRef) (int64, error) {
	var id int64
	err := tx.QueryRow(`SELECT id FROM doc_register WHERE domain=? AND direction=? AND message_id=?`,
		normAddr(ref.Domain), ref.Direction, ref.MessageID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("register %s %s: message %s: %w", ref.Domain, ref.Direction, ref.MessageID, ErrNotFound)
	}
	return id, err
}

// deliverTx stores one content for its targets in tx, as Deliver does; a
// target whose account has gone or is over quota gets its own error.
func (s *Store) deliverTx(tx *sql.Tx, d DocDelivery, b *incoming) ([]Delivered, error) {
	if len(d.Targets) == 0 {
		return nil, nil
	}
	date := d.Date
	if date.IsZero() {
		date = time.Now()
	}
	out := make([]Delivered, len(d.Targets))
	blobID, err := s.insertBlob(tx, b, len(d.Targets))
	if err != nil {
		return nil, err
	}
	failed := 0
	for i, t := range d.Targets {
		mb, err := targetMailbox(tx, t)
		if err == nil {
			err = charge(tx, t.AccountID, int64(len(d.Content)), t.IgnoreQuota)
		}
		if err != nil {
			out[i].Err = err
			failed++
			continue
		}
		uid, err := insertMessage(tx, mb, blobID, joinFlags(t.Flags), date, int64(len(d.Content)))
		if err != nil {
			return nil, err
		}
		out[i] = Delivered{MailboxID: mb.ID, UIDValidity: mb.UIDValidity, UID: uid}
	}
	if failed > 0 {
		if err := releaseBlobs(tx, map[int64]int{blobID: failed}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moveCopies does a DocMove.
func moveCopies(tx *sql.Tx, m DocMove) (int, error) {
	id, err := docID(tx, m.Ref)
	if err != nil {
		return 0, err
	}
	var blobID sql.NullInt64
	if err := tx.QueryRow(`SELECT blob_id FROM doc_register WHERE id=?`, id).Scan(&blobID); err != nil || !blobID.Valid {
		return 0, err // a line without its original has no copies to find
	}
	// Copies are found by content: a copy the user filed or copied
	// (IMAP MOVE, COPY, even APPEND) shares the line's blob.
	cond, args := "", []any{blobID.Int64, normAddr(m.Ref.Domain), CanonicalName(m.To)}
	if len(m.Keep) > 0 {
		cond = ` AND mb.special_use NOT IN (` + placeholders(len(m.Keep)) + `)`
		for _, k := range m.Keep {
			args = append(args, k)
		}
	}
	rows, err := tx.Query(`SELECT mb.id, mb.account_id, m.uid FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
		JOIN accounts a ON a.id = mb.account_id
		WHERE m.blob_id=? AND a.domain=? AND mb.name<>?`+cond+` ORDER BY mb.id, m.uid`, args...)
	if err != nil {
		return 0, err
	}
	type src struct {
		mailbox, account int64
		uids             []any
	}
	var srcs []*src
	for rows.Next() {
		var mb, acct int64
		var uid uint32
		if err := rows.Scan(&mb, &acct, &uid); err != nil {
			rows.Close()
			return 0, err
		}
		if len(srcs) == 0 || srcs[len(srcs)-1].mailbox != mb {
			srcs = append(srcs, &src{mailbox: mb, account: acct})
		}
		srcs[len(srcs)-1].uids = append(srcs[len(srcs)-1].uids, uid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, sr := range srcs {
		dst, err := targetMailbox(tx, Target{AccountID: sr.account, Mailbox: m.To})
		if err != nil {
			return 0, err
		}
		pairs, err := moveWhere(tx, sr.mailbox, dst.ID, `uid IN (`+placeholders(len(sr.uids))+`)`, sr.uids...)
		if err != nil {
			return 0, err
		}
		n += len(pairs)
	}
	return n, nil
}

func placeholders(n int) string {
	if n == 0 {
		return "NULL"
	}
	return strings.Repeat("?,", n-1) + "?"
}

// DocOriginal returns the content a register line was delivered as, and
// ErrNotFound for a line that has none (a paper document, an older line).
func (s *Store) DocOriginal(ctx context.Context, id int64) ([]byte, error) {
	var hash []byte
	var c ContentRef
	err := s.read(ctx, func(db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT b.hash, b.size, b.loc FROM doc_register d JOIN blobs b ON b.id = d.blob_id WHERE d.id=?`, id).Scan(&hash, &c.Size, &c.Loc)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mailstore: original of register entry %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("mailstore: original of register entry %d: %w", id, err)
	}
	copy(c.Sum[:], hash)
	return s.loadContent(ctx, c)
}
