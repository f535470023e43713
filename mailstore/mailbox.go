package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Separator divides mailbox names into a hierarchy.
const Separator = "/"

// Inbox is the name of every account's incoming mailbox.
const Inbox = "INBOX"

// Mailbox is one folder of an account.
type Mailbox struct {
	ID          int64
	AccountID   int64
	Name        string // UTF-8, Separator-delimited; "INBOX" is always spelled so
	UIDValidity uint32
	UIDNext     uint32
	// ModSeq is the id of the last change to the mailbox (see Changes): it only grows,
	// across all mailboxes, so a session that remembers it can ask what happened since.
	ModSeq     int64
	Subscribed bool
	SpecialUse string // \Sent, \Drafts, ... or ""
}

// Status counts a mailbox's messages.
type Status struct {
	Messages uint32
	Unseen   uint32
	Deleted  uint32
	Size     int64
}

// CanonicalName spells INBOX in capitals, whatever the case given, as IMAP requires,
// and trims a trailing separator.
func CanonicalName(name string) string {
	name = strings.TrimSuffix(name, Separator)
	if strings.EqualFold(name, Inbox) {
		return Inbox
	}
	if len(name) > len(Inbox) && strings.EqualFold(name[:len(Inbox)+1], Inbox+Separator) {
		return Inbox + name[len(Inbox):]
	}
	return name
}

func checkMailboxName(name string) error {
	if name == "" || strings.HasPrefix(name, Separator) || strings.Contains(name, Separator+Separator) {
		return fmt.Errorf("%w: mailbox name %q", ErrInvalid, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '*' || r == '%' {
			return fmt.Errorf("%w: mailbox name %q contains %q", ErrInvalid, name, r)
		}
	}
	return nil
}

// A mailbox's modseq is its newest change's id, read from the index on
// changes rather than kept in a column every delivery would have to update.
const mailboxCols = `id, account_id, name, uidvalidity, uidnext,
	(SELECT COALESCE(MAX(c.id), 0) FROM changes c WHERE c.mailbox_id = mailboxes.id), subscribed, special_use`

func scanMailbox(sc scanner) (Mailbox, error) {
	var m Mailbox
	err := sc.Scan(&m.ID, &m.AccountID, &m.Name, &m.UIDValidity, &m.UIDNext, &m.ModSeq, &m.Subscribed, &m.SpecialUse)
	return m, err
}

// Mailboxes lists an account's mailboxes by name.
func (s *Store) Mailboxes(ctx context.Context, accountID int64) ([]Mailbox, error) {
	out, err := queryAll(ctx, s, scanMailbox, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id=? ORDER BY name`, accountID)
	if err != nil {
		return nil, fmt.Errorf("mailstore: mailboxes: %w", err)
	}
	return out, nil
}

// Mailbox returns an account's mailbox by name.
func (s *Store) Mailbox(ctx context.Context, accountID int64, name string) (Mailbox, error) {
	name = CanonicalName(name)
	return queryOne(ctx, s, scanMailbox, fmt.Sprintf("mailbox %q", name), `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id=? AND name=?`, accountID, name)
}

// MailboxByID returns a mailbox by its id.
func (s *Store) MailboxByID(ctx context.Context, id int64) (Mailbox, error) {
	return queryOne(ctx, s, scanMailbox, fmt.Sprintf("mailbox %d", id), `SELECT `+mailboxCols+` FROM mailboxes WHERE id=?`, id)
}

// SpecialMailbox returns the account's mailbox with a special-use attribute
// (e.g. \Sent), whatever it is named.
func (s *Store) SpecialMailbox(ctx context.Context, accountID int64, use string) (Mailbox, error) {
	return queryOne(ctx, s, scanMailbox, "mailbox "+use, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id=? AND special_use=? ORDER BY id LIMIT 1`, accountID, use)
}

// MailboxStatus counts the messages of a mailbox, from counters kept up to
// date by every change (schema/0004_counters.sql), so it costs the same for
// ten messages as for a million.
func (s *Store) MailboxStatus(ctx context.Context, mailboxID int64) (Status, error) {
	return queryOne(ctx, s, scanStatus, fmt.Sprintf("status of mailbox %d", mailboxID),
		`SELECT `+statusCols+` FROM mailboxes WHERE id=?`, mailboxID)
}

const statusCols = `n_messages, n_unseen, n_deleted, bytes`

func scanStatus(sc scanner) (st Status, err error) {
	return st, sc.Scan(&st.Messages, &st.Unseen, &st.Deleted, &st.Size)
}

// UIDRange is a run of consecutive UIDs, First through Last.
type UIDRange struct{ First, Last uint32 }

// View is what a client needs to open a mailbox, read in one snapshot: the
// mailbox (its ModSeq is the last change the rest reflects), its counts, its
// UIDs, the UID of its first unseen message (0: none) and the keywords its
// messages use. Its cost grows with the number of keywords and of changes
// since the mailbox was last opened, not with the number of messages: UIDs
// is shared by every View of the mailbox in that state (uidset.go).
type View struct {
	Mailbox
	Status
	UIDs        *UIDSet
	FirstUnseen uint32
	Keywords    []string
}

// View reads a mailbox's View.
func (s *Store) View(ctx context.Context, mailboxID int64) (View, error) {
	var v View
	err := s.read(ctx, func(db *sql.DB) error {
		tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		v = View{}
		row := tx.QueryRowContext(ctx, `SELECT `+mailboxCols+`, `+statusCols+`,
			(SELECT COALESCE(MIN(uid), 0) FROM messages WHERE mailbox_id=mailboxes.id AND instr(' '||flags||' ', ' \Seen ') = 0)
			FROM mailboxes WHERE id=?`, mailboxID)
		err = row.Scan(&v.ID, &v.AccountID, &v.Name, &v.UIDValidity, &v.UIDNext, &v.ModSeq, &v.Subscribed, &v.SpecialUse,
			&v.Messages, &v.Unseen, &v.Deleted, &v.Size, &v.FirstUnseen)
		if err != nil {
			return err
		}
		if v.UIDs, err = s.uidSet(ctx, tx, v.Mailbox); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT keyword FROM mailbox_keywords WHERE mailbox_id=? ORDER BY keyword`, mailboxID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			v.Keywords = append(v.Keywords, k)
		}
		return rows.Err()
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return View{}, fmt.Errorf("mailbox %d: %w", mailboxID, ErrNotFound)
	case err != nil:
		return View{}, fmt.Errorf("mailstore: view of mailbox %d: %w", mailboxID, err)
	}
	return v, nil
}

// CheckCounters recomputes every mailbox's counters, UID runs and keywords
// from its messages and reports each mismatch; nil means all agree.
func (s *Store) CheckCounters(ctx context.Context) error {
	var problems []error
	err := s.read(ctx, func(db *sql.DB) error {
		problems = problems[:0]
		for _, c := range []struct{ what, query string }{
			{"counters", `SELECT mb.id, printf('%d %d %d %d %d', mb.n_messages, mb.n_unseen, mb.n_deleted, mb.bytes, mb.deleted_bytes),
				printf('%d %d %d %d %d', COUNT(m.id), COALESCE(SUM(instr(' '||m.flags||' ', ' \Seen ') = 0), 0),
					COALESCE(SUM(instr(' '||m.flags||' ', ' \Deleted ') > 0), 0), COALESCE(SUM(m.size), 0),
					COALESCE(SUM(iif(instr(' '||m.flags||' ', ' \Deleted ') > 0, m.size, 0)), 0))
				FROM mailboxes mb LEFT JOIN messages m ON m.mailbox_id = mb.id GROUP BY mb.id
				HAVING mb.n_messages != COUNT(m.id) OR mb.n_unseen != COALESCE(SUM(instr(' '||m.flags||' ', ' \Seen ') = 0), 0)
					OR mb.n_deleted != COALESCE(SUM(instr(' '||m.flags||' ', ' \Deleted ') > 0), 0)
					OR mb.bytes != COALESCE(SUM(m.size), 0)
					OR mb.deleted_bytes != COALESCE(SUM(iif(instr(' '||m.flags||' ', ' \Deleted ') > 0, m.size, 0)), 0)`},
			{"UID runs", `WITH want AS (SELECT mailbox_id, MIN(uid) AS first, MAX(uid) AS last FROM
					(SELECT mailbox_id, uid, uid - ROW_NUMBER() OVER (PARTITION BY mailbox_id ORDER BY uid) AS run FROM messages)
					GROUP BY mailbox_id, run),
				have AS (SELECT mailbox_id, first, last FROM uid_ranges),
				diff AS (SELECT *, 'missing' AS k FROM (SELECT * FROM want EXCEPT SELECT * FROM have)
					UNION ALL SELECT *, 'extra' FROM (SELECT * FROM have EXCEPT SELECT * FROM want))
				SELECT mailbox_id, COALESCE(group_concat(iif(k = 'extra', first || ':' || last, NULL)), ''),
					COALESCE(group_concat(iif(k = 'missing', first || ':' || last, NULL)), '')
				FROM diff GROUP BY mailbox_id`},
			{"keywords", `WITH RECURSIVE split(mailbox_id, word, rest) AS (
					SELECT mailbox_id, '', flags || ' ' FROM messages WHERE flags != ''
					UNION ALL
					SELECT mailbox_id, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1) FROM split WHERE rest != '')
				SELECT DISTINCT s.mailbox_id, '', s.word FROM split s
				WHERE s.word != '' AND substr(s.word, 1, 1) != '\'
					AND NOT EXISTS (SELECT 1 FROM mailbox_keywords k WHERE k.mailbox_id = s.mailbox_id AND k.keyword = s.word)`},
		} {
			rows, err := db.QueryContext(ctx, c.query)
			if err != nil {
				return fmt.Errorf("%s: %w", c.what, err)
			}
			for rows.Next() {
				var id int64
				var have, want string
				if err := rows.Scan(&id, &have, &want); err != nil {
					rows.Close()
					return err
				}
				problems = append(problems, fmt.Errorf("mailbox %d: %s %s, messages say %s", id, c.what, have, want))
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mailstore: check counters: %w", err)
	}
	return errors.Join(problems...)
}

// CreateMailbox creates a mailbox, and any missing parents, for an account,
// subscribed: what the server or an administrator creates should show in
// clients that list subscribed mailboxes only.
func (s *Store) CreateMailbox(ctx context.Context, accountID int64, name, specialUse string) (Mailbox, error) {
	return s.createMailbox(ctx, accountID, name, specialUse, true)
}

// CreateMailboxUnsubscribed is CreateMailbox for a client's IMAP CREATE,
// which subscribes nothing (RFC 3501 6.3.3, as Dovecot and Cyrus do): the
// client subscribes the mailbox itself if it wants to. A name that was
// subscribed before (its mailbox deleted) stays subscribed.
func (s *Store) CreateMailboxUnsubscribed(ctx context.Context, accountID int64, name, specialUse string) (Mailbox, error) {
	return s.createMailbox(ctx, accountID, name, specialUse, false)
}

func (s *Store) createMailbox(ctx context.Context, accountID int64, name, specialUse string, subscribe bool) (Mailbox, error) {
	name = CanonicalName(name)
	if err := checkMailboxName(name); err != nil {
		return Mailbox{}, err
	}
	var m Mailbox
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := createParents(tx, accountID, name, subscribe); err != nil {
			return err
		}
		var err error
		m, err = createMailbox(tx, accountID, name, specialUse, subscribe)
		return err
	})
	if isUnique(err) {
		return Mailbox{}, fmt.Errorf("mailbox %q: %w", name, ErrExists)
	}
	return m, err
}

// createParents creates the missing ancestors of name, so that LIST shows a tree.
func createParents(tx *sql.Tx, accountID int64, name string, subscribe bool) error {
	parts := strings.Split(name, Separator)
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], Separator)
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM mailboxes WHERE account_id=? AND name=?`, accountID, parent).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := createMailbox(tx, accountID, parent, "", subscribe); err != nil {
				return err
			}
		}
	}
	return nil
}

func createMailbox(tx *sql.Tx, accountID int64, name, specialUse string, subscribe bool) (Mailbox, error) {
	v, err := nextUIDValidity(tx)
	if err != nil {
		return Mailbox{}, err
	}
	// A subscription kept for the name (its mailbox was deleted) is now the
	// new mailbox's own.
	kept, err := tx.Exec(`DELETE FROM subscriptions WHERE account_id=? AND name=?`, accountID, name)
	if err != nil {
		return Mailbox{}, err
	}
	if n, _ := kept.RowsAffected(); n > 0 {
		subscribe = true
	}
	r, err := tx.Exec(`INSERT INTO mailboxes (account_id, name, uidvalidity, special_use, subscribed) VALUES (?,?,?,?,?)`,
		accountID, name, v, specialUse, subscribe)
	if err != nil {
		return Mailbox{}, err
	}
	id, _ := r.LastInsertId()
	return Mailbox{ID: id, AccountID: accountID, Name: name, UIDValidity: v, UIDNext: 1, Subscribed: subscribe, SpecialUse: specialUse}, nil
}

// nextUIDValidity never repeats a value, even for a mailbox deleted and re-created
// within the same second, so clients always notice that their cache is stale.
func nextUIDValidity(tx *sql.Tx) (uint32, error) {
	var v int64
	err := tx.QueryRow(`INSERT INTO counters (name, value) VALUES ('uidvalidity', ?)
		ON CONFLICT(name) DO UPDATE SET value = max(value + 1, excluded.value) RETURNING value`, time.Now().Unix()).Scan(&v)
	return uint32(v), err
}

// DeleteMailbox deletes a mailbox and its messages. INBOX cannot be deleted. Child
// mailboxes stay.
func (s *Store) DeleteMailbox(ctx context.Context, accountID int64, name string) error {
	name = CanonicalName(name)
	if name == Inbox {
		return fmt.Errorf("%w: INBOX cannot be deleted", ErrMailboxInUse)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRow(`SELECT id FROM mailboxes WHERE account_id=? AND name=?`, accountID, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("mailbox %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return err
		}
		// The subscription outlives the mailbox (RFC 3501 6.3.6).
		if _, err := tx.Exec(`INSERT OR IGNORE INTO subscriptions (account_id, name)
			SELECT account_id, name FROM mailboxes WHERE id=? AND subscribed`, id); err != nil {
			return err
		}
		return deleteMailbox(tx, id)
	})
}

// deleteMailbox removes a mailbox's messages (releasing their content) and the
// mailbox itself, and records that sessions watching it must end.
func deleteMailbox(tx *sql.Tx, id int64) error {
	if _, err := expungeWhere(tx, id, `mailbox_id=?`, id); err != nil {
		return err
	}
	if _, err := addChange(tx, id, 0, changeMailboxDeleted); err != nil {
		return err
	}
	_, err := tx.Exec(`DELETE FROM mailboxes WHERE id=?`, id)
	return err
}

// RenameMailbox renames a mailbox and its children. Renaming INBOX moves its
// messages to a new mailbox and leaves INBOX empty (RFC 9051 6.3.6).
func (s *Store) RenameMailbox(ctx context.Context, accountID int64, oldName, newName string) error {
	oldName, newName = CanonicalName(oldName), CanonicalName(newName)
	if err := checkMailboxName(newName); err != nil {
		return err
	}
	if newName == Inbox || strings.HasPrefix(newName, oldName+Separator) {
		return fmt.Errorf("%w: cannot rename %q to %q", ErrInvalid, oldName, newName)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRow(`SELECT id FROM mailboxes WHERE account_id=? AND name=?`, accountID, oldName).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("mailbox %q: %w", oldName, ErrNotFound)
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM mailboxes WHERE account_id=? AND name=?`, accountID, newName).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("mailbox %q: %w", newName, ErrExists)
		}
		if oldName == Inbox {
			dst, err := createMailbox(tx, accountID, newName, "", true)
			if err != nil {
				return err
			}
			_, err = moveWhere(tx, id, dst.ID, `mailbox_id=?`, id)
			return err
		}
		// substr counts characters, so lengths come from SQLite too, not len().
		if _, err := tx.Exec(`UPDATE mailboxes SET name = ?1 || substr(name, length(?2) + 1)
			WHERE account_id=?3 AND (name=?2 OR substr(name, 1, length(?4)) = ?4)`,
			newName, oldName, accountID, oldName+Separator); err != nil {
			return err
		}
		return createParents(tx, accountID, newName, true)
	})
	if isUnique(err) {
		return fmt.Errorf("mailbox %q: %w", newName, ErrExists)
	}
	return err
}

// SetSubscribed subscribes or unsubscribes a mailbox.
func (s *Store) SetSubscribed(ctx context.Context, accountID int64, name string, on bool) error {
	name = CanonicalName(name)
	return s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`UPDATE mailboxes SET subscribed=? WHERE account_id=? AND name=?`, on, accountID, name)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n > 0 || on {
			return mustAffect(r, "mailbox "+name)
		}
		// Unsubscribing a name whose mailbox was deleted.
		r, err = tx.Exec(`DELETE FROM subscriptions WHERE account_id=? AND name=?`, accountID, name)
		if err != nil {
			return err
		}
		return mustAffect(r, "subscription "+name)
	})
}

// Subscriptions returns the subscribed names that are no mailbox: mailboxes
// deleted while subscribed.
func (s *Store) Subscriptions(ctx context.Context, accountID int64) ([]string, error) {
	out, err := queryAll(ctx, s, func(r scanner) (string, error) {
		var name string
		err := r.Scan(&name)
		return name, err
	}, `SELECT name FROM subscriptions WHERE account_id=? ORDER BY name`, accountID)
	if err != nil {
		return nil, fmt.Errorf("mailstore: subscriptions: %w", err)
	}
	return out, nil
}
