package mailstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Message is a message's per-mailbox state.
type Message struct {
	UID          uint32
	Flags        []string
	InternalDate time.Time
	Size         int64
	ModSeq       int64
}

// Target is one mailbox a delivered message goes to.
type Target struct {
	AccountID int64
	// Mailbox is the mailbox's name; empty means INBOX. It is created if missing.
	Mailbox string
	Flags   []string
	// IgnoreQuota delivers even over quota: for server-written notices (bounces,
	// receipts) that must reach the user whatever the quota.
	IgnoreQuota bool
	// Origin, for a migrated message, is recorded with it; a target whose
	// Origin was recorded before gets ErrImported and no second copy.
	Origin *Origin
}

// Delivered says where a message landed for one target, or why it did not.
type Delivered struct {
	MailboxID   int64
	UIDValidity uint32
	UID         uint32
	Err         error // ErrOverQuota, ErrNotFound (account gone), ErrImported, or nil
	// Overfilled says the message was delivered over the target's quota
	// (Delivery.Overfill).
	Overfilled bool
}

// Content is a message to store, read from R (Size bytes) twice: once to hash
// and parse it, once into the blob store. A message on disk (an SMTP spool
// file) is so stored without ever being in memory whole.
type Content struct {
	R    io.ReaderAt
	Size int64
	b    []byte // the content, when in memory
}

// Bytes is Content in memory.
func Bytes(b []byte) Content { return Content{R: bytes.NewReader(b), Size: int64(len(b)), b: b} }

// Delivery is one message for local mailboxes, the outbound queue, or both:
// Accept stores it for all of them in one transaction, so that a failure
// leaves either every copy or none, and a client's retry never duplicates
// the local ones.
type Delivery struct {
	Content Content
	Date    time.Time // the internal date; zero means now
	Targets []Target
	// Overfill delivers to targets over quota after all when another target
	// or the queue takes the message: SMTP answers once for all recipients,
	// so the choice is a mailbox over its quota or a bounce to the sender
	// for a message most recipients have. Quota is still enforced at RCPT
	// and whenever the message fits no one.
	Overfill bool
	// From and Remote, if Remote is not empty, queue the message for outbound
	// delivery to Remote with envelope sender From.
	From   string
	Remote []string
}

// Accepted says what became of a Delivery.
type Accepted struct {
	Delivered []Delivered // one per target, in order
	QueueID   int64       // the queue entry for Remote, or 0
}

// Accept stores a Delivery and returns when it is durable for every target
// without an error and for the queue. A target over quota, or whose account
// has gone, gets its own error without failing the others; when every target
// fails and nothing is queued, nothing is stored.
func (s *Store) Accept(ctx context.Context, d Delivery) (Accepted, error) {
	if len(d.Targets) == 0 && len(d.Remote) == 0 {
		return Accepted{}, fmt.Errorf("%w: no targets and no recipients", ErrInvalid)
	}
	b, err := newBlob(d.Content)
	if err != nil {
		return Accepted{}, fmt.Errorf("mailstore: deliver: %w", err)
	}
	date := d.Date
	if date.IsZero() {
		date = time.Now()
	}
	flagSets := make([]string, len(d.Targets))
	for i, t := range d.Targets {
		flagSets[i] = joinFlags(t.Flags)
	}
	queued := 0
	if len(d.Remote) > 0 {
		queued = 1
	}
	var out Accepted
	out.Delivered = make([]Delivered, len(d.Targets))
	err = s.storeContent(ctx, []*incoming{b}, func(tx *sql.Tx) error {
		out.QueueID = 0
		for i := range out.Delivered {
			out.Delivered[i] = Delivered{}
		}
		// Count a reference per target up front: failures are the exception.
		refs := len(d.Targets) + queued
		blobID, err := s.insertBlob(tx, b, refs)
		if err != nil {
			return err
		}
		n := 0
		var full []int
		deliver := func(i int, ignoreQuota bool) error {
			t := d.Targets[i]
			mb, err := targetMailbox(tx, t)
			if err != nil {
				out.Delivered[i].Err = err
				return nil
			}
			if t.Origin != nil {
				if err := importedBefore(tx, t.AccountID, t.Origin); err != nil {
					if !errors.Is(err, ErrImported) {
						return err
					}
					out.Delivered[i].Err = err
					return nil
				}
			}
			if err := charge(tx, t.AccountID, b.size, ignoreQuota || t.IgnoreQuota); err != nil {
				out.Delivered[i].Err = err
				if errors.Is(err, ErrOverQuota) {
					full = append(full, i)
				}
				return nil
			}
			uid, err := insertMessage(tx, mb, blobID, flagSets[i], date, b.size)
			if err != nil {
				return err
			}
			if t.Origin != nil {
				if err := recordOrigin(tx, t.AccountID, t.Origin); err != nil {
					return err
				}
			}
			out.Delivered[i] = Delivered{MailboxID: mb.ID, UIDValidity: mb.UIDValidity, UID: uid, Overfilled: ignoreQuota}
			n++
			return nil
		}
		for i := range d.Targets {
			if err := deliver(i, false); err != nil {
				return err
			}
		}
		fault("accept:delivered")
		if queued > 0 {
			if out.QueueID, err = insertQueue(tx, d.From, d.Remote, blobID, now()); err != nil {
				return err
			}
		}
		if d.Overfill && n+queued > 0 {
			for _, i := range slices.Clone(full) {
				if err := deliver(i, true); err != nil {
					return err
				}
			}
		}
		if n+queued == 0 {
			return errAllFailed
		}
		if n+queued < refs {
			_, err = tx.Exec(`UPDATE blobs SET refs = refs - ? WHERE id=?`, refs-n-queued, blobID)
		}
		return err
	})
	if errors.Is(err, errAllFailed) {
		// Nothing stored: the per-target errors say why (storeContent
		// queued the content just written for reclaim).
		return out, nil
	}
	if err != nil {
		return Accepted{}, fmt.Errorf("mailstore: deliver: %w", err)
	}
	return out, nil
}

// Deliver stores one message for several targets, its content once: Accept
// of a message in memory for local targets only.
func (s *Store) Deliver(ctx context.Context, content []byte, date time.Time, targets []Target) ([]Delivered, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: no targets", ErrInvalid)
	}
	a, err := s.Accept(ctx, Delivery{Content: Bytes(content), Date: date, Targets: targets})
	return a.Delivered, err
}

// errAllFailed rolls back a delivery whose every target failed, so no blob is left
// with no reference.
var errAllFailed = errors.New("no target accepted the message")

// Append stores a message in one mailbox (IMAP APPEND).
func (s *Store) Append(ctx context.Context, accountID int64, mailbox string, content []byte, flags []string, date time.Time) (Delivered, error) {
	d, err := s.Deliver(ctx, content, date, []Target{{AccountID: accountID, Mailbox: mailbox, Flags: flags}})
	if err != nil {
		return Delivered{}, err
	}
	return d[0], d[0].Err
}

func targetMailbox(tx *sql.Tx, t Target) (Mailbox, error) {
	name := CanonicalName(t.Mailbox)
	if name == "" {
		name = Inbox
	}
	m, err := scanMailbox(tx.QueryRow(`SELECT `+mailboxCols+` FROM mailboxes WHERE account_id=? AND name=?`, t.AccountID, name))
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM accounts WHERE id=?`, t.AccountID).Scan(&n); err != nil {
			return Mailbox{}, err
		}
		if n == 0 {
			return Mailbox{}, fmt.Errorf("account %d: %w", t.AccountID, ErrNotFound)
		}
		if err := checkMailboxName(name); err != nil {
			return Mailbox{}, err
		}
		if err := createParents(tx, t.AccountID, name, true); err != nil {
			return Mailbox{}, err
		}
		return createMailbox(tx, t.AccountID, name, "", true)
	}
	return m, err
}

// charge adds size bytes to an account's usage, unless that would exceed its
// quota (ignoreQuota: charge anyway), in one statement.
func charge(tx *sql.Tx, accountID, size int64, ignoreQuota bool) error {
	r, err := tx.Exec(`UPDATE accounts SET used = used + ?1 WHERE id = ?2 AND (?3 OR quota = 0 OR used + ?1 <= quota)`, size, accountID, ignoreQuota)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 1 {
		return nil
	}
	var quota, used int64
	if err := tx.QueryRow(`SELECT quota, used FROM accounts WHERE id=?`, accountID).Scan(&quota, &used); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("account %d: %w", accountID, ErrNotFound)
		}
		return err
	}
	return fmt.Errorf("%w: %d of %d bytes used, message is %d", ErrOverQuota, used, quota, size)
}

// insertMessage adds a message row, taking the next UID. The caller accounts
// for the blob reference and the account's usage (charge).
func insertMessage(tx *sql.Tx, mb Mailbox, blobID int64, flags string, date time.Time, size int64) (uint32, error) {
	var uid uint32
	if err := tx.QueryRow(`UPDATE mailboxes SET uidnext = uidnext + 1 WHERE id=? RETURNING uidnext - 1`, mb.ID).Scan(&uid); err != nil {
		return 0, err
	}
	ch, err := addChange(tx, mb.ID, uid, changeNew)
	if err != nil {
		return 0, err
	}
	_, offset := date.Zone()
	_, err = tx.Exec(`INSERT INTO messages (mailbox_id, uid, blob_id, flags, internal_date, internal_tz, size, modseq) VALUES (?,?,?,?,?,?,?,?)`,
		mb.ID, uid, blobID, flags, date.Unix(), offset, size, ch)
	if err != nil {
		return 0, err
	}
	return uid, addKeywords(tx, mb.ID, flags)
}

// addKeywords records the keywords among flags (space separated) as used in
// the mailbox, for View. Counters and UID runs need no such call: triggers on
// messages keep them (schema/0004_counters.sql).
func addKeywords(tx *sql.Tx, mailboxID int64, flags string) error {
	for _, f := range splitFlags(flags) {
		if strings.HasPrefix(f, `\`) {
			continue
		}
		if _, err := tx.Exec(`INSERT OR IGNORE INTO mailbox_keywords (mailbox_id, keyword) VALUES (?,?)`, mailboxID, f); err != nil {
			return err
		}
	}
	return nil
}

// blob is message content ready to store: hashed and parsed outside the
// transaction, so the writer goroutine spends its time only on SQL.
type incoming struct {
	hash      Sum
	loc       string // where the blob store put it (putContent)
	content   Content
	size      int64
	envelope  []byte
	structure []byte
}

// newBlob hashes and parses content, reading it where it lies: a spooled
// 50 MiB message costs a few buffers, not its size.
func newBlob(content Content) (*incoming, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(content.R, 0, content.Size)); err != nil {
		return nil, fmt.Errorf("reading the message: %w", err)
	}
	env, st, err := parseContent(content, nil)
	if err != nil {
		return nil, err
	}
	b := &incoming{content: content, size: content.Size, envelope: encodeEnvelope(&env)}
	b.structure, _ = json.Marshal(st)
	h.Sum(b.hash[:0])
	return b, nil
}

// reader reads the content from its start.
func (b *incoming) reader() io.Reader { return io.NewSectionReader(b.content.R, 0, b.size) }

func (b *incoming) ref() Ref { return Ref{Sum: b.hash, Loc: b.loc} }

// storeContent puts the blobs' content in the blob store and runs fn, which
// refers to it (through insertBlob), in a write transaction. The content is
// synced with the rest of fn's group commit before that commits. Should
// reclaim delete a content between the Put and fn (it was the last copy of
// an expunged message), fn finds out and the whole is done again.
func (s *Store) storeContent(ctx context.Context, blobs []*incoming, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var refs []Ref
		if refs, err = s.putContent(ctx, blobs); err != nil {
			return s.classify(err)
		}
		fault("content:put")
		err = s.writeContent(ctx, refs, fn)
		if err != nil {
			// What was put for nothing goes the way of reclaimed content,
			// unless something else refers to it by then.
			s.forget(refs...)
		}
		if !errors.Is(err, errContentGone) {
			return err
		}
	}
	return err
}

// putContent puts the blobs' content in the blob store, noting where each
// went. If one fails, those put before it are left for reclaim.
func (s *Store) putContent(ctx context.Context, blobs []*incoming) ([]Ref, error) {
	refs := make([]Ref, 0, len(blobs))
	for _, b := range blobs {
		loc, err := s.blobs.Put(ctx, b.hash, b.reader(), b.size)
		if err != nil {
			s.forget(refs...)
			return nil, err
		}
		b.loc = loc
		refs = append(refs, b.ref())
	}
	return refs, nil
}

// errContentGone says content put for an operation was reclaimed before the
// operation's transaction; storeContent puts it again.
var errContentGone = errors.New("content reclaimed meanwhile")

// insertBlob records b's content unless it is already there, adding refs
// references, and queues it for indexing when new. It returns the blob's id.
func (s *Store) insertBlob(tx *sql.Tx, b *incoming, refs int) (int64, error) {
	var id int64
	var total int
	var loc string
	err := tx.QueryRow(`INSERT INTO blobs (hash, size, refs, envelope, structure, loc) VALUES (?,?,?,?,?,?)
		ON CONFLICT (hash) DO UPDATE SET refs = refs + excluded.refs RETURNING id, refs, loc`,
		b.hash[:], b.size, refs, b.envelope, b.structure, b.loc).Scan(&id, &total, &loc)
	if err != nil {
		return id, err
	}
	if total != refs {
		// Already referenced, so reclaim cannot have touched the copy the
		// metadata names (and it is indexed or queued). A second copy, from
		// a blob store that keeps one per Put, is not needed.
		if loc != b.loc {
			_, err = tx.Exec(`INSERT OR IGNORE INTO blob_reclaim (hash, loc, since) VALUES (?,?,?)`, b.hash[:], b.loc, now())
		}
		return id, err
	}
	// New to the metadata: reclaim may have deleted this content after our
	// Put. It deletes only inside a write transaction that saw no reference,
	// so checking here, under the same write lock, settles it.
	if err := s.claimContent(tx, b.ref(), b.size); err != nil {
		return 0, err
	}
	_, err = tx.Exec(`INSERT INTO unindexed (blob_id) VALUES (?)`, id)
	return id, err
}

// releaseBlobs drops references; content nobody references any more leaves
// the metadata and is queued for reclaim, which deletes it after this commit.
func releaseBlobs(tx *sql.Tx, counts map[int64]int) error {
	for id, n := range counts {
		var refs int
		var hash []byte
		var size int64
		var loc string
		if err := tx.QueryRow(`UPDATE blobs SET refs = refs - ? WHERE id=? RETURNING refs, hash, size, loc`, n, id).Scan(&refs, &hash, &size, &loc); err != nil {
			return err
		}
		if refs <= 0 {
			if _, err := tx.Exec(`DELETE FROM blobs WHERE id=?`, id); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT OR IGNORE INTO blob_reclaim (hash, loc, since) VALUES (?,?,?)`, hash, loc, now()); err != nil {
				return err
			}
			r, err := tx.Exec(`DELETE FROM unindexed WHERE blob_id=?`, id)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				// The index row goes before the content (its text is read
				// again to remove it), so the reclaimer waits for it.
				if _, err := tx.Exec(`INSERT OR IGNORE INTO fts_garbage (docid, hash, size, loc) VALUES (?,?,?,?)`, id, hash, size, loc); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Messages lists a mailbox's messages by UID.
func (s *Store) Messages(ctx context.Context, mailboxID int64) ([]Message, error) {
	out, err := queryAll(ctx, s, scanMessage, `SELECT uid, flags, internal_date, internal_tz, size, modseq FROM messages WHERE mailbox_id=? ORDER BY uid`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("mailstore: messages: %w", err)
	}
	return out, nil
}

func scanMessage(sc scanner) (Message, error) {
	var m Message
	var flags string
	var date int64
	var tz sql.NullInt64
	err := sc.Scan(&m.UID, &flags, &date, &tz, &m.Size, &m.ModSeq)
	m.Flags = splitFlags(flags)
	m.InternalDate = internalDate(date, tz)
	return m, err
}

// internalDate is a stored internal date in its zone; one stored without a
// zone (schema/0014) is in the server's.
func internalDate(unix int64, tz sql.NullInt64) time.Time {
	t := time.Unix(unix, 0)
	if tz.Valid {
		return t.In(zone(tz.Int64))
	}
	return t
}

// Item is what Fetch returns for one message.
type Item struct {
	Message
	Envelope  *Envelope // with FetchEnvelope
	Structure *Part     // with FetchStructure
	// Content is the whole message, with FetchContent, checked against its
	// sum. If it could not be read, Err says why (ErrContentMissing,
	// ErrContentCorrupt, a read error) and the other fields are still valid.
	Content []byte
	Err     error
	// Ref names the content, for ranged reads with ReadContent.
	Ref ContentRef
}

// What a Fetch reads beyond the per-mailbox state.
const (
	FetchEnvelope = 1 << iota
	FetchStructure
	FetchContent
)

// Fetch calls fn for each message of a mailbox whose UID is in uids (all if uids
// is nil), in UID order, with what the what bits ask for. It streams: content of
// a large mailbox is never all in memory at once.
func (s *Store) Fetch(ctx context.Context, mailboxID int64, uids []uint32, what int, fn func(Item) error) error {
	return s.FetchChanged(ctx, mailboxID, uids, 0, what, fn)
}

// FetchChanged is Fetch of the messages whose modseq is above since only
// (CONDSTORE's CHANGEDSINCE, a QRESYNC resync): an index finds them, so a
// few changes in a large mailbox cost a few rows.
func (s *Store) FetchChanged(ctx context.Context, mailboxID int64, uids []uint32, since int64, what int, fn func(Item) error) error {
	cols := `m.uid, m.flags, m.internal_date, m.internal_tz, m.size, m.modseq, b.hash, b.size, b.loc`
	if what&FetchEnvelope != 0 {
		cols += `, b.envelope`
	}
	if what&FetchStructure != 0 {
		cols += `, b.structure`
	}
	cond, args := uidCond("m.uid", uids)
	from := `messages m`
	if since > 0 {
		cond += ` AND m.modseq > ?`
		args = append(args, since)
		if uids == nil {
			// Without it SQLite walks the UID index to save a sort.
			from = `messages m INDEXED BY messages_modseq`
		}
	}
	q := `SELECT ` + cols + ` FROM ` + from + ` JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id=? AND ` + cond + ` ORDER BY m.uid`
	args = append([]any{mailboxID}, args...)
	err := s.read(ctx, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var seen uint32
		var it Item
		var flags string
		var date int64
		// Envelope and structure are decoded before the next row, so they
		// need no copy of their own.
		var env, st, hash sql.RawBytes
		var tz sql.NullInt64
		dst := []any{&it.UID, &flags, &date, &tz, &it.Size, &it.ModSeq, &hash, &it.Ref.Size, &it.Ref.Loc}
		if what&FetchEnvelope != 0 {
			dst = append(dst, &env)
		}
		if what&FetchStructure != 0 {
			dst = append(dst, &st)
		}
		for rows.Next() {
			it = Item{}
			if err := rows.Scan(dst...); err != nil {
				return err
			}
			if it.UID <= seen {
				continue // already delivered to fn before a retry
			}
			seen = it.UID
			it.Flags = splitFlags(flags)
			it.InternalDate = internalDate(date, tz)
			copy(it.Ref.Sum[:], hash)
			if what&FetchContent != 0 {
				it.Content, it.Err = s.loadContent(ctx, it.Ref)
			}
			// Stored metadata that does not decode (it never should) reads as
			// empty rather than failing the whole listing.
			if env != nil {
				if it.Envelope, err = decodeEnvelope(env); err != nil {
					it.Envelope = new(Envelope)
				}
			}
			if st != nil {
				it.Structure = new(Part)
				json.Unmarshal(st, it.Structure)
			}
			if err := fn(it); err != nil {
				return &fnError{err}
			}
		}
		return rows.Err()
	})
	var fe *fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	if err != nil {
		return fmt.Errorf("mailstore: fetch: %w", err)
	}
	return nil
}

// fnError carries a callback's error through read's retry loop untouched.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// uidCond turns a UID list (nil: all) into a compact SQL condition. A few runs
// of consecutive UIDs become BETWEENs, so "1:*" over 10,000 messages is one
// range, not 10,000 parameters. Many runs (every tenth message, or "1:*" over a
// mailbox with many gaps) become one JSON parameter: an OR per run would hit
// SQLite's expression depth limit of 1000.
func uidCond(col string, uids []uint32) (string, []any) {
	if uids == nil {
		return "1", nil
	}
	if len(uids) == 0 {
		return "0", nil
	}
	sorted := append([]uint32(nil), uids...)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var conds []string
	var args []any
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		if i == j {
			conds = append(conds, col+`=?`)
			args = append(args, sorted[i])
		} else {
			conds = append(conds, col+` BETWEEN ? AND ?`)
			args = append(args, sorted[i], sorted[j])
		}
		if len(conds) > maxRuns {
			b, _ := json.Marshal(sorted)
			return col + ` IN (SELECT value FROM json_each(?))`, []any{string(b)}
		}
		i = j + 1
	}
	return "(" + strings.Join(conds, " OR ") + ")", args
}

// maxRuns is how many UID runs uidCond writes out as SQL terms.
const maxRuns = 64

// FlagOp says how StoreFlags combines flags.
type FlagOp int

const (
	FlagsAdd FlagOp = iota
	FlagsRemove
	FlagsSet
)

// StoreFlags changes the flags of messages and returns their new state (only of
// messages whose flags actually changed).
func (s *Store) StoreFlags(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags []string) ([]Message, error) {
	changed, _, err := s.StoreFlagsIf(ctx, mailboxID, uids, op, flags, -1)
	return changed, err
}

// StoreFlagsIf is StoreFlags for the messages whose modseq is at most
// unchangedSince (CONDSTORE's UNCHANGEDSINCE; negative: all). The others are
// left alone and returned as modified; the check and the change are one
// transaction, so no concurrent change slips between them.
func (s *Store) StoreFlagsIf(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags []string, unchangedSince int64) (changed []Message, modified []uint32, err error) {
	cond, args := uidCond("uid", uids)
	err = s.write(ctx, func(tx *sql.Tx) error {
		changed, modified = changed[:0], modified[:0]
		rows, err := tx.Query(`SELECT uid, flags, internal_date, internal_tz, size, modseq FROM messages WHERE mailbox_id=? AND `+cond+` ORDER BY uid`, append([]any{mailboxID}, args...)...)
		if err != nil {
			return err
		}
		var cur []Message
		for rows.Next() {
			m, err := scanMessage(rows)
			if err != nil {
				rows.Close()
				return err
			}
			cur = append(cur, m)
		}
		rows.Close()
		if op != FlagsRemove && len(cur) > 0 {
			if err := addKeywords(tx, mailboxID, joinFlags(flags)); err != nil {
				return err
			}
		}
		for _, m := range cur {
			if unchangedSince >= 0 && m.ModSeq > unchangedSince {
				modified = append(modified, m.UID)
				continue
			}
			nf := applyFlags(m.Flags, op, flags)
			if joinFlags(nf) == joinFlags(m.Flags) {
				continue
			}
			ch, err := addChange(tx, mailboxID, m.UID, changeFlags)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(`UPDATE messages SET flags=?, modseq=? WHERE mailbox_id=? AND uid=?`, joinFlags(nf), ch, mailboxID, m.UID); err != nil {
				return err
			}
			m.Flags, m.ModSeq = nf, ch
			changed = append(changed, m)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("mailstore: store flags: %w", err)
	}
	return changed, modified, nil
}

// CanonicalFlag spells system flags in their standard case; keywords keep theirs.
func CanonicalFlag(f string) string {
	for _, sys := range []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, `\Recent`} {
		if strings.EqualFold(f, sys) {
			return sys
		}
	}
	return f
}

func applyFlags(cur []string, op FlagOp, flags []string) []string {
	has := func(list []string, f string) bool {
		for _, x := range list {
			if strings.EqualFold(x, f) {
				return true
			}
		}
		return false
	}
	var out []string
	switch op {
	case FlagsSet:
		out = nil
		for _, f := range flags {
			if !has(out, f) {
				out = append(out, CanonicalFlag(f))
			}
		}
	case FlagsAdd:
		out = append(out, cur...)
		for _, f := range flags {
			if !has(out, f) {
				out = append(out, CanonicalFlag(f))
			}
		}
	case FlagsRemove:
		for _, f := range cur {
			if !has(flags, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

func joinFlags(flags []string) string {
	var out []string
	for _, f := range flags {
		f = CanonicalFlag(strings.TrimSpace(f))
		if f == "" || f == `\Recent` || strings.ContainsAny(f, " \t\r\n()") {
			continue
		}
		dup := false
		for _, o := range out {
			if strings.EqualFold(o, f) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}

func splitFlags(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

// UIDPair maps a source UID to the UID of its copy.
type UIDPair struct{ Src, Dst uint32 }

// Copy copies messages to another mailbox of the same account, sharing content.
// It fails with ErrOverQuota, copying nothing, if the copies do not fit.
func (s *Store) Copy(ctx context.Context, srcID int64, uids []uint32, dstID int64) (uint32, []UIDPair, error) {
	return s.transfer(ctx, srcID, uids, dstID, false)
}

// Move moves messages to another mailbox of the same account.
func (s *Store) Move(ctx context.Context, srcID int64, uids []uint32, dstID int64) (uint32, []UIDPair, error) {
	return s.transfer(ctx, srcID, uids, dstID, true)
}

func (s *Store) transfer(ctx context.Context, srcID int64, uids []uint32, dstID int64, move bool) (uint32, []UIDPair, error) {
	var pairs []UIDPair
	var validity uint32
	cond, args := uidCond("uid", uids)
	err := s.write(ctx, func(tx *sql.Tx) error {
		pairs = pairs[:0]
		dst, err := scanMailbox(tx.QueryRow(`SELECT `+mailboxCols+` FROM mailboxes WHERE id=?`, dstID))
		if err != nil {
			return fmt.Errorf("destination mailbox: %w", ErrNotFound)
		}
		validity = dst.UIDValidity
		if move {
			pairs, err = moveWhere(tx, srcID, dstID, cond, args...)
			return err
		}
		rows, err := tx.Query(`SELECT uid, blob_id, flags, internal_date, internal_tz, size FROM messages WHERE mailbox_id=? AND `+cond+` ORDER BY uid`, append([]any{srcID}, args...)...)
		if err != nil {
			return err
		}
		type row struct {
			uid        uint32
			blob       int64
			flags      string
			date, size int64
			tz         sql.NullInt64
		}
		var rs []row
		var total int64
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.uid, &r.blob, &r.flags, &r.date, &r.tz, &r.size); err != nil {
				rows.Close()
				return err
			}
			rs = append(rs, r)
			total += r.size
		}
		rows.Close()
		if err := charge(tx, dst.AccountID, total, false); err != nil {
			return err
		}
		for _, r := range rs {
			uid, err := insertMessage(tx, dst, r.blob, r.flags, internalDate(r.date, r.tz), r.size)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(`UPDATE blobs SET refs = refs + 1 WHERE id=?`, r.blob); err != nil {
				return err
			}
			pairs = append(pairs, UIDPair{r.uid, uid})
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("mailstore: copy: %w", err)
	}
	return validity, pairs, nil
}

// moveWhere moves the messages of src matching cond to dst: new UIDs in dst,
// expunged from src, content untouched. Quota is unchanged when both mailboxes
// belong to one account, which is the only case IMAP allows.
func moveWhere(tx *sql.Tx, srcID, dstID int64, cond string, args ...any) ([]UIDPair, error) {
	rows, err := tx.Query(`SELECT id, uid, size FROM messages WHERE mailbox_id=? AND `+cond+` ORDER BY uid`, append([]any{srcID}, args...)...)
	if err != nil {
		return nil, err
	}
	type row struct {
		id   int64
		uid  uint32
		size int64
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.uid, &r.size); err != nil {
			rows.Close()
			return nil, err
		}
		rs = append(rs, r)
	}
	rows.Close()
	if len(rs) > 0 {
		if _, err := tx.Exec(`INSERT OR IGNORE INTO mailbox_keywords (mailbox_id, keyword)
			SELECT ?, keyword FROM mailbox_keywords WHERE mailbox_id=?`, dstID, srcID); err != nil {
			return nil, err
		}
	}
	var pairs []UIDPair
	for _, r := range rs {
		var uid uint32
		if err := tx.QueryRow(`UPDATE mailboxes SET uidnext = uidnext + 1 WHERE id=? RETURNING uidnext - 1`, dstID).Scan(&uid); err != nil {
			return nil, err
		}
		if _, err := addChange(tx, srcID, r.uid, changeExpunge); err != nil {
			return nil, err
		}
		ch, err := addChange(tx, dstID, uid, changeNew)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(`UPDATE messages SET mailbox_id=?, uid=?, modseq=? WHERE id=?`, dstID, uid, ch, r.id); err != nil {
			return nil, err
		}
		pairs = append(pairs, UIDPair{r.uid, uid})
	}
	return pairs, nil
}

// Expunge removes messages for good: those with UIDs in uids that carry \Deleted,
// or every \Deleted message if uids is nil. It returns the removed UIDs.
func (s *Store) Expunge(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error) {
	c, args := uidCond("uid", uids)
	cond := `mailbox_id=? AND instr(' '||flags||' ', ' \Deleted ') > 0 AND ` + c
	args = append([]any{mailboxID}, args...)
	var out []uint32
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = expungeWhere(tx, mailboxID, cond, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mailstore: expunge: %w", err)
	}
	return out, nil
}

// expungeWhere deletes the messages of a mailbox matching cond, releasing their
// content and quota, and records the expunges.
func expungeWhere(tx *sql.Tx, mailboxID int64, cond string, args ...any) ([]uint32, error) {
	rows, err := tx.Query(`SELECT uid, blob_id, size FROM messages WHERE `+cond+` ORDER BY uid`, args...)
	if err != nil {
		return nil, err
	}
	var uids []uint32
	blobs := map[int64]int{}
	var size int64
	for rows.Next() {
		var uid uint32
		var b, sz int64
		if err := rows.Scan(&uid, &b, &sz); err != nil {
			rows.Close()
			return nil, err
		}
		uids = append(uids, uid)
		blobs[b]++
		size += sz
	}
	rows.Close()
	if len(uids) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(`DELETE FROM messages WHERE `+cond, args...); err != nil {
		return nil, err
	}
	for _, uid := range uids {
		if _, err := addChange(tx, mailboxID, uid, changeExpunge); err != nil {
			return nil, err
		}
	}
	if _, err := tx.Exec(`UPDATE accounts SET used = max(0, used - ?) WHERE id = (SELECT account_id FROM mailboxes WHERE id=?)`, size, mailboxID); err != nil {
		return nil, err
	}
	return uids, releaseBlobs(tx, blobs)
}

// StorageStats describes how content is stored, for tests and the admin.
type StorageStats struct {
	Messages     int64 // message rows in all mailboxes
	Blobs        int64 // distinct contents
	Refs         int64 // sum of reference counts; equals Messages when consistent
	ContentBytes int64 // bytes of distinct content
	Indexed      int64 // contents in the full-text index (reclaimed ones leave it in the background)
}

// StorageStats counts stored messages and content.
func (s *Store) StorageStats(ctx context.Context) (StorageStats, error) {
	var st StorageStats
	err := s.read(ctx, func(db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM messages), COUNT(*), COALESCE(SUM(refs),0), COALESCE(SUM(size),0),
			(SELECT COUNT(*) FROM fts_docsize) FROM blobs`).
			Scan(&st.Messages, &st.Blobs, &st.Refs, &st.ContentBytes, &st.Indexed)
	})
	return st, err
}
